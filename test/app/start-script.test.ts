/**
 * `npm start`'s launcher (scripts/start.mjs): the desktop app when an Electron binary and a display exist,
 * else the headless manager with a note saying why. Electron is a stand-in script here. Not tested: the
 * download attempt when no binary is installed (it would fetch ~100 MB where a network exists).
 */
import { execFile } from 'node:child_process';
import { chmod, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { assertCliBuilt, cliEnv, exitWithin, startForeground } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/manager.js';
import { randomPortRange } from '../helpers/standin.js';

const root = path.resolve(import.meta.dirname, '../..');
const START = path.join(root, 'scripts/start.mjs');
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await makeTempDir('fnwm-start-');
  dirs.push(dir);
  return dir;
}

describe.runIf(process.platform === 'linux')('npm start', () => {
  it('without a display: runs the headless manager and says why', async () => {
    assertCliBuilt();
    const dir = await tempDir();
    const env = { ...cliEnv(randomPortRange()), DISPLAY: undefined, WAYLAND_DISPLAY: undefined };
    const manager = await startForeground(['--dir', dir, '--host', '127.0.0.1', '--port', '0'], env, 10_000, [START]);
    expect(manager.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(manager.stderr()).toContain('npm start: not starting the desktop app because there is no display');
    manager.child.kill('SIGTERM');
    expect(await exitWithin(manager.exited, 10_000)).toEqual({ code: 0, signal: null });
  });

  it('with an Electron binary and a display: launches it on the project with the arguments', async () => {
    const dist = await tempDir();
    await writeFile(path.join(dist, 'electron'), '#!/bin/sh\necho "electron $*"\n');
    await chmod(path.join(dist, 'electron'), 0o755);
    const env = { ...process.env, ELECTRON_OVERRIDE_DIST_PATH: dist, DISPLAY: ':99', WAYLAND_DISPLAY: undefined };
    const { stdout } = await promisify(execFile)(process.execPath, [START, '--hidden'], { env });
    expect(stdout).toBe(`electron ${root} --hidden\n`);
  });
});
