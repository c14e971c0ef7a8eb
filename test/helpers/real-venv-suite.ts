/**
 * The venv-worker suite of test/real-venv-*.test.ts: workers in their own venvs with the real FuncNodes
 * and the real uv (both from the pinned, cached wheels), made through the uv path (spec §4.2, with the
 * discovered interpreter, never a downloaded Python) or the pip path; starts with `update_on_startup` on
 * and off (once, in the manager; the launcher skips the real CLI's own upgrade); and (uv) a start with the
 * index unreachable.
 * Every install comes from the cached wheelhouse, offline. One file per installer, so they run in parallel.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManagerClient } from '../../src-main/core/hub/client.js';
import { isPidAlive } from '../../src-main/core/supervisor/liveness.js';
import type { WorkerConfig } from '../../src-shared/protocol.js';
import { activateWorker, deactivateWorker, makeTempDir, messageOf, startTestManager, type TestManager } from './manager.js';
import { installedVersions } from './python-env.js';
import { realFuncnodes, type RealFuncnodes } from './real-funcnodes.js';
import { freePort, offlineInstalls, realWorkerEnv, type Env } from './real-worker.js';

async function managerWith(fn: RealFuncnodes, uv: string | false, env: Env = {}, dir?: string): Promise<TestManager> {
  dir ??= await makeTempDir();
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: { uv } }));
  return startTestManager({ dir, env: await realWorkerEnv(fn, { ...offlineInstalls(fn), ...env }), timing: { stopMs: 15_000, killGraceMs: 2000 } });
}

async function createInVenv(client: ManagerClient, name: string): Promise<string> {
  client.send({ type: 'new_worker', kwargs: { name, in_venv: true } });
  const end = await client.until((frame) => {
    const msg = messageOf(frame);
    return msg?.type === 'worker_created' || msg?.type === 'error' ? msg : undefined;
  }, 240_000);
  if (end.type === 'error') throw new Error(`new_worker failed: ${end.message}`);
  return end.uuid;
}

const configOf = async (m: TestManager, uuid: string) => JSON.parse(await readFile(path.join(m.workersDir, `worker_${uuid}.json`), 'utf8')) as WorkerConfig;

async function setUpdates(m: TestManager, uuid: string, on: boolean): Promise<void> {
  const config = await configOf(m, uuid);
  config.update_on_startup = { funcnodes: on, 'funcnodes-core': on, 'funcnodes-worker': on };
  await writeFile(path.join(m.workersDir, `worker_${uuid}.json`), JSON.stringify(config, null, 2));
}

async function cmdline(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
}

/** How many updates the manager ran for `uuid` (its log line per update). */
const updates = (m: TestManager, uuid: string) => m.logs.filter((line) => line.includes(`Updating the environment of worker ${uuid}`)).length;

/** The worker's own log (the manager captures its output there). */
const workerLog = (m: TestManager, uuid: string) => readFile(path.join(m.workersDir, `worker_${uuid}`, 'worker.log'), 'utf8').catch(() => '');

/** Starts with updates `on`; checks it runs from its venv and stops it. Returns the start's progress texts. */
async function startAndStop(m: TestManager, client: ManagerClient, uuid: string): Promise<string[]> {
  const started = await activateWorker(client, uuid, 240_000);
  expect(started.error, `${started.error}\n${await workerLog(m, uuid)}`).toBeUndefined();
  const pid = started.data!.pid!;
  const venvPython = path.join(m.workersDir, `worker_${uuid}`, '.venv', 'bin', 'python');
  expect((await cmdline(pid))[0]).toBe(venvPython);
  await deactivateWorker(client, uuid);
  expect(isPidAlive(pid)).toBe(false);
  return started.frames.map(messageOf).flatMap((msg) => (msg?.type === 'progress' ? [msg.message] : []));
}

export function describeVenvWorker(installer: 'uv' | 'pip'): void {
  describe(`a venv worker made with ${installer} (real FuncNodes, offline from the pinned wheels)`, () => {
    let fn: RealFuncnodes;
    let m: TestManager;
    let client: ManagerClient;
    let uuid: string;
    beforeAll(async () => {
      fn = await realFuncnodes();
      m = await managerWith(fn, installer === 'uv' ? fn.uv : false);
      client = await m.connect();
    }, 600_000);
    afterAll(async () => {
      await m?.close();
      if (m) await rm(m.dir, { recursive: true, force: true });
    });
    it('is created with the pinned FuncNodes in <data>/.venv, on the discovered interpreter', async () => {
      uuid = await createInVenv(client, `venv-${installer}`);
      const dataDir = path.join(m.workersDir, `worker_${uuid}`);
      const config = await configOf(m, uuid);
      expect(config.env_path).toBe(path.join(dataDir, '.venv'));
      const installed = await installedVersions(path.join(dataDir, '.venv', 'bin', 'python'));
      for (const name of ['funcnodes', 'funcnodes-core', 'funcnodes-worker']) expect(installed[name], name).toBe(fn.versions[name]);
      const pyvenv = await readFile(path.join(dataDir, '.venv', 'pyvenv.cfg'), 'utf8');
      // Made from the discovered interpreter (FUNCNODES_PYTHON's base), not a Python uv downloaded.
      const base = (await readFile(path.join(path.dirname(path.dirname(fn.python)), 'pyvenv.cfg'), 'utf8')).match(/^home = (.*)$/m)![1];
      expect(pyvenv).toContain(`home = ${base}`);
      const pyproject = await readFile(path.join(dataDir, 'pyproject.toml'), 'utf8');
      expect(pyproject).toMatch(/funcnodes/);
      if (installer === 'uv') expect(await readFile(path.join(dataDir, 'uv.lock'), 'utf8')).toMatch(/name = "funcnodes"/);
    }, 300_000);

    it('starts with update_on_startup off: no update, in the manager or in the worker', async () => {
      await setUpdates(m, uuid, false);
      const updatesBefore = updates(m, uuid);
      const progress = await startAndStop(m, client, uuid);
      expect(progress.filter((text) => /^updating \S/.test(text))).toEqual([]);
      expect(updates(m, uuid)).toBe(updatesBefore);
    }, 300_000);

    it('starts with update_on_startup on: the manager updates once (uv project: the venv\'s own uv), the launcher skips the CLI\'s second upgrade', async () => {
      await setUpdates(m, uuid, true);
      const updatesBefore = updates(m, uuid);
      const dataDir = path.join(m.workersDir, `worker_${uuid}`);
      const lockBefore = await readFile(path.join(dataDir, 'uv.lock'), 'utf8').catch(() => undefined);
      const logsBefore = m.logs.length;
      const started = await activateWorker(client, uuid, 240_000);
      expect(started.error, `${started.error}\n${await workerLog(m, uuid)}`).toBeUndefined();
      const argv = await cmdline(started.data!.pid!);
      expect(argv[0]).toBe(path.join(dataDir, '.venv', 'bin', 'python'));
      expect(argv.slice(1, 3)).toEqual(['-P', '-c']);
      expect(argv.slice(-4)).toEqual(['worker', '--uuid', uuid, 'start']);
      await deactivateWorker(client, uuid);
      const progress = started.frames.map(messageOf).flatMap((msg) => (msg?.type === 'progress' ? [msg.message] : []));
      expect(progress).toEqual(expect.arrayContaining(['updating funcnodes', 'updating funcnodes-core', 'updating funcnodes-worker']));
      expect(updates(m, uuid)).toBe(updatesBefore + 1);
      const ran = m.logs.slice(logsBefore).filter((line) => line.includes('Running '));
      if (installer === 'uv') {
        // A uv project is updated through uv (uv sync would undo pip's changes), with the venv's own uv.
        expect(ran.some((line) => line.includes(`Running ${path.join(dataDir, '.venv', 'bin', 'uv')} add funcnodes`))).toBe(true);
      } else {
        // No uv.lock: pip, and the real CLI's `uv add/lock/sync` (which would write one) did not run.
        expect(ran.some((line) => line.includes(' -m pip install --upgrade funcnodes'))).toBe(true);
        expect(lockBefore).toBeUndefined();
        expect(existsSync(path.join(dataDir, 'uv.lock'))).toBe(false);
      }
      expect(await workerLog(m, uuid)).not.toMatch(/Failed to call/);
      const installed = await installedVersions(path.join(dataDir, '.venv', 'bin', 'python'));
      expect(installed.funcnodes).toBe(fn.versions.funcnodes);
    }, 300_000);

    if (installer !== 'uv') return;

    // The same worker, its manager restarted without the wheels and with the index a refused port.
    describe('when the package index cannot be reached', () => {
      beforeAll(async () => {
        await m.close();
        const index = `http://127.0.0.1:${await freePort()}/simple`;
        m = await managerWith(fn, fn.uv, { PIP_NO_INDEX: undefined, PIP_FIND_LINKS: undefined, PIP_INDEX_URL: index, PIP_RETRIES: '0', UV_NO_INDEX: undefined, UV_FIND_LINKS: undefined, UV_OFFLINE: undefined, UV_DEFAULT_INDEX: index, UV_HTTP_RETRIES: '0' }, m.dir);
        client = await m.connect();
      });

      it('starts with update_on_startup off', async () => {
        await setUpdates(m, uuid, false);
        await startAndStop(m, client, uuid);
      }, 120_000);

      it('starts with update_on_startup on: one update attempt, reported as an error progress, and the worker runs as it is', async () => {
        await setUpdates(m, uuid, true);
        const updatesBefore = updates(m, uuid);
        const started = await activateWorker(client, uuid, 120_000);
        expect(started.error, `${started.error}\n${await workerLog(m, uuid)}`).toBeUndefined();
        const failed = started.frames.map(messageOf).filter((msg) => msg?.type === 'progress' && msg.status === 'error');
        expect(failed).toHaveLength(1);
        expect(failed[0]?.type === 'progress' && failed[0].message).toMatch(/^Could not update the environment, starting with the installed versions/);
        expect(updates(m, uuid)).toBe(updatesBefore + 1);
        await deactivateWorker(client, uuid);
      }, 120_000);
    });
  });
}
