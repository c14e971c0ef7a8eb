/**
 * The built `fnwm` CLI with per-worker venvs: `worker new` (a real venv, offline), `doctor`, the env
 * helpers `modules|py|pip` (output and exit codes passed through), `env history|rollback`.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertCliBuilt, cliEnv, fnwm, lines, show, stopManagersFor, writeManagerConfig, freePort, type CliResult, type Env } from './helpers/cli.js';
import { killWorkers, makeTempDir } from './helpers/manager.js';
import { buildWheels, offlinePip, writeOldPython } from './helpers/python-env.js';
import { randomPortRange } from './helpers/standin.js';

function expectOk(r: CliResult): void {
  expect(r.timedOut, show(r)).toBe(false);
  expect(r.exitCode, show(r)).toBe(0);
}

describe('fnwm with per-worker venvs', () => {
  let dir: string;
  let wheelhouse: string;
  let env: Env;
  const run = (...args: string[]) => fnwm(['--dir', dir, ...args], env, 120_000);

  beforeAll(async () => {
    assertCliBuilt();
    dir = await makeTempDir('fnwm-cli-venv-');
    wheelhouse = await makeTempDir('fnwm-wheels-');
    await buildWheels(wheelhouse, ['1.0.0']);
    await writeManagerConfig(dir, await freePort());
    env = cliEnv(randomPortRange(), offlinePip(wheelhouse));
  }, 60_000);

  afterAll(async () => {
    await stopManagersFor(dir);
    await killWorkers(path.join(dir, 'workers'));
    await rm(dir, { recursive: true, force: true });
    await rm(wheelhouse, { recursive: true, force: true });
  });

  it('doctor reports Python, funcnodes, uv, config dir and port; a too old Python is a problem', async () => {
    const r = await run('doctor');
    expectOk(r);
    expect(r.stdout).toContain(`config dir   ${dir}`);
    expect(r.stdout).toMatch(/manager +ws:\/\/127\.0\.0\.1:\d+ \(not running\)/);
    expect(r.stdout).toMatch(/python +.*standin\/python \(from FUNCNODES_PYTHON\): Python 3\.\d+\.\d+ at /);
    expect(r.stdout).toMatch(/funcnodes +imports \(version 0\.0\.0\+standin\)/);
    expect(r.stdout).toMatch(/uv +not found: venvs are made with python -m venv and pip/);
    expect(r.stdout).toContain(`PIP_FIND_LINKS=${wheelhouse}`);

    const old = await writeOldPython(dir);
    const bad = await fnwm(['--dir', dir, 'doctor'], { ...env, FUNCNODES_PYTHON: old });
    expect(bad.exitCode, show(bad)).toBe(1);
    expect(bad.stdout).toMatch(/problem: Python .*python-old is 3\.9\.2; FuncNodes needs 3\.11 or newer/);
  });

  it('worker new --name demo makes a venv; py, pip and modules run in it with their exit codes', async () => {
    const created = await run('worker', 'new', '--name', 'demo');
    expectOk(created);
    expect(lines(created.stderr)).toEqual(expect.arrayContaining(['Making virtual environment.', 'Adding funcnodes', 'Creating new worker.']));
    const uuid = created.stdout;
    const venv = path.join(dir, 'workers', `worker_${uuid}`, '.venv');

    const prefix = await run('worker', '--name', 'demo', 'py', '-c', 'import sys, funcnodes; print(sys.prefix); print(funcnodes.__file__)');
    expectOk(prefix);
    expect(lines(prefix.stdout)[0]).toBe(venv);
    expect(lines(prefix.stdout)[1]).toContain(path.join(venv, 'lib'));
    const exit = await run('worker', '--uuid', uuid, 'py', '--', '-c', 'import sys; print("bye"); sys.exit(7)');
    expect(exit.exitCode, show(exit)).toBe(7);
    expect(exit.stdout).toBe('bye');

    const pip = await run('worker', '--name', 'demo', 'pip', 'list', '--format', 'freeze');
    expectOk(pip);
    expect(lines(pip.stdout)).toEqual(expect.arrayContaining(['funcnodes==1.0.0', 'funcnodes-core==1.0.0']));
    // The stand-in funcnodes has no `modules` task: its argparse error and exit code 2 come through.
    const modules = await run('worker', '--name', 'demo', 'modules', 'list');
    expect(modules.exitCode, show(modules)).toBe(2);
    expect(modules.stderr).toMatch(/funcnodes: error: .*invalid choice: 'modules'/);
  }, 180_000);

  it('env history and rollback: nothing before a start, then the snapshot of the update undone', async () => {
    const none = await run('worker', '--name', 'demo', 'env', 'history');
    expectOk(none);
    expect(none.stdout).toMatch(/has no environment snapshots yet/);
    const noRollback = await run('worker', '--name', 'demo', 'env', 'rollback');
    expect(noRollback.exitCode, show(noRollback)).toBe(1);
    expect(noRollback.stderr).toMatch(/^fnwm: Could not roll back the environment of worker .*: There is no environment snapshot/m);

    await buildWheels(wheelhouse, ['1.1.0']);
    const started = await run('worker', '--name', 'demo', 'start');
    expectOk(started);
    expect(lines(started.stderr)).toEqual(expect.arrayContaining(['Updating worker.', 'updating funcnodes', 'Starting worker.']));
    expectOk(await run('worker', '--name', 'demo', 'stop'));
    const upgraded = await run('worker', '--name', 'demo', 'pip', 'list', '--format', 'freeze');
    expect(lines(upgraded.stdout)).toEqual(expect.arrayContaining(['funcnodes==1.1.0', 'funcnodes-core==1.1.0', 'funcnodes-worker==1.1.0']));

    const history = await run('worker', '--name', 'demo', 'env', 'history');
    expectOk(history);
    // Newest first: after the update (a start succeeded with it), then before it. 4 packages: uv is a
    // dependency of the test wheelhouse's funcnodes, as of the real one.
    const heads = lines(history.stdout).filter((line) => !line.startsWith('  '));
    expect(heads).toHaveLength(2);
    expect(heads[0]).toMatch(/^\d{8}T\d{9}Z\t\d{4}-.*Z\t4 packages\tstarted$/);
    expect(heads[1]).toMatch(/^\d{8}T\d{9}Z\t\d{4}-.*Z\t4 packages$/);
    expect(history.stdout).toContain('  funcnodes==1.0.0');
    const [good, before] = heads.map((line) => line.split('\t')[0]);
    // Default: the last versions a start succeeded with (here the current ones).
    const rolled = await run('worker', '--name', 'demo', 'env', 'rollback');
    expectOk(rolled);
    expect(rolled.stdout).toMatch(new RegExp(`environment restored to snapshot ${good}$`));
    const kept = await run('worker', '--name', 'demo', 'pip', 'list', '--format', 'freeze');
    expect(lines(kept.stdout)).toEqual(expect.arrayContaining(['funcnodes==1.1.0']));
    const unknown = await run('worker', '--name', 'demo', 'env', 'rollback', '--to', '20000101T000000000Z');
    expect(unknown.exitCode, show(unknown)).toBe(1);
    expect(unknown.stderr).toMatch(/There is no snapshot 20000101T000000000Z \(snapshots: .*\(started\)/);
    const to = await run('worker', '--name', 'demo', 'env', 'rollback', '--to', before);
    expectOk(to);
    expect(to.stdout).toMatch(new RegExp(`environment restored to snapshot ${before}$`));
    const restored = await run('worker', '--name', 'demo', 'pip', 'list', '--format', 'freeze');
    expect(lines(restored.stdout)).toEqual(expect.arrayContaining(['funcnodes==1.0.0', 'funcnodes-core==1.0.0', 'funcnodes-worker==1.0.0']));
  }, 180_000);

  it('a venv whose python is gone: the env helpers and doctor say so, doctor with the repair command for this worker', async () => {
    const uuid = lines((await run('worker', 'list')).stdout).find((line) => line.endsWith('\tdemo'))!.split('\t')[0];
    const venv = path.join(dir, 'workers', `worker_${uuid}`, '.venv');
    const healthy = await run('doctor');
    expect(healthy.stdout).toContain(`worker env   demo (${uuid}): ${venv}, funcnodes 0.0.0+standin`);
    expect(healthy.stdout).not.toMatch(/problem: worker/);

    await rm(path.join(venv, 'bin', 'python'));
    const r = await run('worker', '--name', 'demo', 'pip', 'list');
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^fnwm: The virtual environment of worker ${uuid} is broken: .*/bin/python is missing$`));
    const broken = await run('doctor');
    expect(broken.exitCode, show(broken)).toBe(1);
    expect(broken.stdout).toContain(`worker env   demo (${uuid}): broken: ${venv}/bin/python is missing`);
    expect(broken.stdout).toMatch(
      new RegExp(`^problem: worker demo \\(${uuid}\\): its virtual environment ${venv} is broken: .*missing\\. Repair it \\(".* -m venv ${venv}", then "fnwm worker --uuid ${uuid} pip install funcnodes"\\)`, 'm'),
    );
  });
});
