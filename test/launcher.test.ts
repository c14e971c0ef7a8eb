/**
 * The venv worker's launcher (src-main/core/python-env/launcher.ts), run by a real Python: it enters the
 * worker past the CLI's in-worker upgrade, keeps the CLI's "no worker" answer, and falls back to the
 * FuncNodes CLI (spec §4.4) with the same arguments where the names it needs do not exist.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandText, LAUNCHER, workerCommand } from '../src-main/core/python-env/launcher.js';
import type { WorkerConfig } from '../src-shared/protocol.js';
import { makeTempDir } from './helpers/manager.js';
import { standinPython } from './helpers/standin.js';

const UUID = 'a1b2c3';

describe('workerCommand', () => {
  const base = { uuid: UUID, type: 'WSWorker' } as WorkerConfig;
  it('keeps the original command line for a worker without a venv', () => {
    expect(workerCommand('/py', base, { configDir: '/cfg', debug: true })).toEqual({
      file: '/py',
      args: ['-m', 'funcnodes', '--debug', '--dir', '/cfg', 'worker', '--uuid', UUID, 'start'],
    });
  });
  it('runs the launcher for a venv worker, with the same CLI arguments after it', () => {
    const command = workerCommand('/venv/bin/python', { ...base, env_path: '/venv' }, { configDir: '/cfg', debug: false });
    expect(command.args).toEqual(['-P', '-c', LAUNCHER, '--dir', '/cfg', 'worker', '--uuid', UUID, 'start']);
    expect(commandText(command)).toBe(`/venv/bin/python -P -c <launcher> --dir /cfg worker --uuid ${UUID} start`);
  });
});

describe('the launcher, run by Python', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir();
    await mkdir(path.join(dir, 'workers'));
    // A venv worker (env_path) that exits with 7 once it runs: the stand-in CLI would first run
    // `python -m uv add funcnodes`, which this Python does not have, and exit 1.
    await writeFile(
      path.join(dir, 'workers', `worker_${UUID}.json`),
      JSON.stringify({ uuid: UUID, name: 'w', type: 'WSWorker', env_path: path.join(dir, 'venv'), standin: { exit_at: 'start', exit_code: 7 } }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const run = (python: string, uuid: string, env: Record<string, string> = {}) => {
    const { file, args } = workerCommand(python, { uuid, env_path: 'x' } as WorkerConfig, { configDir: dir, debug: false });
    return execa(file, args, { reject: false, cwd: dir, env: { FUNCNODES_CONFIG_DIR: dir, USE_SUBPROCESS_MONITOR: '0', ...env } });
  };

  it('enters the worker without the CLI\'s in-worker upgrade', async () => {
    const cli = await execa(standinPython, ['-m', 'funcnodes', '--dir', dir, 'worker', '--uuid', UUID, 'start'], { reject: false, cwd: dir });
    expect(cli.exitCode).toBe(1);
    expect(cli.stderr).toMatch(/Failed to call \S+ -m uv add funcnodes/);
    const launched = await run(standinPython, UUID);
    expect(launched.exitCode, launched.stderr).toBe(7);
    expect(launched.stderr).not.toMatch(/uv/);
  });

  it('answers an unknown uuid as the CLI does (exit 1)', async () => {
    const launched = await run(standinPython, 'unknown');
    expect(launched.exitCode).toBe(1);
    expect(launched.stderr.trim()).toBe('No worker found with the given uuid');
  });

  it('falls back to the FuncNodes CLI, in the same process with the same arguments, where the names are missing', async () => {
    // A `funcnodes` with only a CLI: no funcnodes.worker.worker_manager, no funcnodes_worker.
    const other = path.join(dir, 'other-layout');
    await mkdir(path.join(other, 'funcnodes'), { recursive: true });
    await writeFile(path.join(other, 'funcnodes', '__init__.py'), '');
    await writeFile(path.join(other, 'funcnodes', '__main__.py'), 'import json, os, sys\nprint(json.dumps([os.getpid(), sys.argv[1:]]))\nsys.exit(5)\n');
    const proc = run('python3', UUID, { PYTHONPATH: other });
    const launched = await proc;
    expect(launched.exitCode).toBe(5);
    const [pid, argv] = JSON.parse(launched.stdout) as [number, string[]];
    expect(pid).toBe(proc.pid);
    expect(argv).toEqual(['--dir', dir, 'worker', '--uuid', UUID, 'start']);
  });
});
