/**
 * `fnwm worker … open` with the built CLI and the manager it starts in the background: the worker is started,
 * the editor URL printed and handed to the system opener (a recording `xdg-open` on PATH); without the
 * editor package the command says which Python was checked and how to install it.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertCliBuilt, cliEnv, fnwm, freePort, show, stopManagersFor, writeManagerConfig, type Env } from './helpers/cli.js';
import { buildEditorWheels, makeEditorVenv } from './helpers/fake-editor.js';
import { killWorkers, makeTempDir, waitFor } from './helpers/manager.js';
import { randomPortRange, standinPython } from './helpers/standin.js';

describe('fnwm worker … open', () => {
  let root: string;
  const dirs: string[] = [];
  let editorPython: string;
  let binDir: string;

  beforeAll(async () => {
    assertCliBuilt();
    root = await makeTempDir('fnwm-cli-open-');
    const wheelhouse = path.join(root, 'wheels');
    await buildEditorWheels(wheelhouse);
    editorPython = await makeEditorVenv(path.join(root, 'venv'), wheelhouse);
    // The opener `open` runs on Linux: records its argument.
    binDir = path.join(root, 'bin');
    await mkdir(binDir);
    await writeFile(path.join(binDir, 'xdg-open'), `#!/bin/sh\nprintf '%s\\n' "$@" > "${path.join(root, 'opened')}"\n`);
    await chmod(path.join(binDir, 'xdg-open'), 0o755);
  }, 120_000);

  afterAll(async () => {
    for (const dir of dirs) {
      await stopManagersFor(dir);
      await killWorkers(path.join(dir, 'workers'));
    }
    await rm(root, { recursive: true, force: true });
  });

  async function configDir(python: string): Promise<{ dir: string; env: Env }> {
    const dir = await makeTempDir('fnwm-cli-open-dir-');
    dirs.push(dir);
    await writeManagerConfig(dir, await freePort());
    const base = cliEnv(randomPortRange(), { FUNCNODES_PYTHON: python });
    return { dir, env: { ...base, PATH: `${binDir}${path.delimiter}${base.PATH ?? ''}` } };
  }

  it('starts a stopped worker, prints the editor URL and opens it in the system browser', async () => {
    const { dir, env } = await configDir(editorPython);
    const created = await fnwm(['--dir', dir, 'worker', 'new', '--name', 'ed', '--not-in-venv'], env, 60_000);
    expect(created.exitCode, show(created)).toBe(0);
    const uuid = created.stdout.trim();

    const r = await fnwm(['--dir', dir, 'worker', '--name', 'ed', 'open'], env, 60_000);
    expect(r.exitCode, show(r)).toBe(0);
    const url = r.stdout.trim();
    expect(url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/editor/${uuid}/$`));
    expect(r.stderr).toMatch(new RegExp(`Worker ${uuid} is running at ws://`));
    await waitFor(async () => (await readFile(path.join(root, 'opened'), 'utf8').catch(() => '')).trim() === url);

    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`/editor/${uuid}/static/funcnodes_react_flow.es.js`);
    const status = await fnwm(['--dir', dir, 'worker', '--name', 'ed', 'status', '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ state: 'active' });

    // --print: the URL only, the opener is not run again.
    await rm(path.join(root, 'opened'));
    const printed = await fnwm(['--dir', dir, 'worker', '--uuid', uuid, 'open', '--print'], env, 60_000);
    expect(printed.exitCode, show(printed)).toBe(0);
    expect(printed.stdout.trim()).toBe(url);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(readFile(path.join(root, 'opened'))).rejects.toThrow();
  }, 120_000);

  it('without funcnodes-react-flow: exit 1 naming the Python checked and the install command', async () => {
    const { dir, env } = await configDir(standinPython);
    expect((await fnwm(['--dir', dir, 'worker', 'new', '--name', 'plain', '--not-in-venv'], env, 60_000)).exitCode).toBe(0);
    const r = await fnwm(['--dir', dir, 'worker', '--name', 'plain', 'open'], env, 60_000);
    expect(r.exitCode, show(r)).toBe(1);
    expect(r.stderr).toContain(`not installed in any environment checked: ${standinPython}`);
    expect(r.stderr).toContain(`${standinPython} -m pip install funcnodes-react-flow`);
    expect(r.stdout).toBe('');
  }, 120_000);
});
