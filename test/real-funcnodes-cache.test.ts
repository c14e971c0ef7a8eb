// The cached real FuncNodes (test/helpers/real-funcnodes.ts): built from the pin file, reused, and a clear
// failure when the package index cannot be reached.
import { createServer } from 'node:net';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { makeTempDir } from './helpers/manager.js';
import { installedVersions } from './helpers/python-env.js';
import { buildRealFuncnodes, realFuncnodes, type RealFuncnodes } from './helpers/real-funcnodes.js';

let fn: RealFuncnodes;
beforeAll(async () => {
  fn = await realFuncnodes();
}, 600_000);

describe('the pinned real FuncNodes', () => {
  it('is installed exactly at the pinned versions, with every pinned wheel kept for offline installs', async () => {
    const installed = await installedVersions(fn.python);
    const normalised = Object.fromEntries(Object.entries(installed).map(([name, version]) => [name.toLowerCase().replace(/[._-]+/g, '-'), version]));
    for (const name of ['funcnodes', 'funcnodes-core', 'funcnodes-worker', 'funcnodes-react-flow', 'uv']) {
      expect(fn.versions[name], name).toBeDefined();
      expect(normalised[name], name).toBe(fn.versions[name]);
    }
    const wheels = await readdir(fn.wheels);
    expect(wheels.some((name) => name.startsWith(`funcnodes-${fn.versions.funcnodes}-`))).toBe(true);
    const { stdout } = await execa(fn.uv, ['--version']);
    expect(stdout).toContain(fn.versions.uv);
  });

  it('is reused: a second lookup builds nothing and returns the same venv', async () => {
    const ready = path.join(fn.dir, 'ready');
    const before = (await stat(ready)).mtimeMs;
    const again = await buildRealFuncnodes();
    expect(again.python).toBe(fn.python);
    expect((await stat(ready)).mtimeMs).toBe(before);
  });

  describe('when the package index cannot be reached', () => {
    let root: string;
    let closedPort: number;
    beforeAll(async () => {
      root = await makeTempDir('fnwm-cache-');
      // A port that was free a moment ago: connections to it are refused.
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      closedPort = (server.address() as { port: number }).port;
      await new Promise((resolve) => server.close(resolve));
    });
    afterAll(() => rm(root, { recursive: true, force: true }));

    it('fails with one line naming the index, and leaves no half-built cache', async () => {
      const index = `http://127.0.0.1:${closedPort}/simple`;
      const env = { PATH: process.env.PATH, HOME: process.env.HOME, PIP_CONFIG_FILE: '/dev/null', PIP_INDEX_URL: index, PIP_RETRIES: '0', PIP_TIMEOUT: '2' };
      const error = await buildRealFuncnodes({ root, env }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).not.toContain('\n');
      expect(error!.message).toContain(`package index ${index}`);
      // Neither a half-built entry nor the lock is left.
      expect(await readdir(root)).toEqual([]);
    }, 60_000);
  });
});
