/**
 * The workers dir as shared with the Python CLI: tolerant reading (nothing crashes, nothing is silently
 * deleted), atomic creation that never clobbers an existing worker, copies from a reference, deletion that
 * never leaves the workers dir, and how the config dir and its defaults are found.
 */
import { execFileSync, spawn, type SpawnOptionsWithStdioTuple } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagerClient } from '../src-main/core/hub/client.js';
import { loadSettings } from '../src-main/core/registry/config.js';
import { silentLogger } from '../src-main/core/logs/log.js';
import { MAX_WORKER_JSON_BYTES, parsePidFile, Registry, workerPaths } from '../src-main/core/registry/registry.js';
import { assertCliBuilt, CLI, cliEnv } from './helpers/cli.js';
import { makeTempDir, readReset, readUntil, startTestManager, waitFor, type TestManager } from './helpers/manager.js';
import { randomPortRange } from './helpers/standin.js';

let manager: TestManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

const exists = (p: string) =>
  lstat(p).then(
    () => true,
    () => false,
  );

async function writeWorker(workersDir: string, uuid: string, extra: Record<string, unknown> = {}): Promise<void> {
  await writeFile(path.join(workersDir, `worker_${uuid}.json`), JSON.stringify({ type: 'WSWorker', uuid, name: uuid, ...extra }));
}

describe('tolerant reading', () => {
  it('lists valid workers, skips broken files (logged once), and deletes none of them', async () => {
    const dir = await makeTempDir();
    const workersDir = path.join(dir, 'workers');
    await mkdir(workersDir, { recursive: true });
    const files: Record<string, string> = {
      'worker_corrupt.json': '{"type": "WSWorker", "uuid": "corr',
      'worker_array.json': '[1, 2]',
      'worker_notype.json': '{"uuid": "notype"}',
      'worker_nouuid.json': '{"type": "WSWorker"}',
      'worker_mismatch.json': '{"type": "WSWorker", "uuid": "other"}',
      'worker_testworker.json': '{"type": "TestWorker", "uuid": "testworker"}',
      'worker_a.b.json': '{"type": "WSWorker", "uuid": "a.b"}',
      'worker_orphan.p': String(process.pid),
      'tmpab12cd34': '{"half": ',
      'worker-123.json': '{}',
    };
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(workersDir, name), content);
    // The minimal JSON of the reference's CLI tests (spec §10 C1).
    await writeFile(path.join(workersDir, 'worker_worker-123.json'), '{"uuid":"worker-123","name":"primary","type":"WSWorker","env_path":null}');
    manager = await startTestManager({ dir, supervisor: { observer: { safetyRescanMs: 100 } } });
    const client = await manager.connect();
    client.send('worker_status');
    const { found } = await readUntil(client, 'worker_status');
    expect(found.active).toEqual([]);
    expect(found.inactive).toEqual([{ uuid: 'worker-123', name: 'primary', type: 'WSWorker', env_path: null }]);
    await new Promise((r) => setTimeout(r, 500)); // several safety rescans
    const corruptLines = manager.logs.filter((l) => l.includes('worker_corrupt.json'));
    expect(corruptLines).toHaveLength(1);
    for (const name of ['worker_array.json', 'worker_notype.json', 'worker_nouuid.json', 'worker_mismatch.json', 'worker_testworker.json', 'worker_a.b.json']) {
      expect(manager.logs.filter((l) => l.includes(name)), name).toHaveLength(1);
    }
    for (const name of Object.keys(files)) expect(await exists(path.join(workersDir, name)), name).toBe(true);
  });

  it('removes a .p whose process is gone (it blocks the next start) but keeps one of a live process', async () => {
    const dir = await makeTempDir();
    const workersDir = path.join(dir, 'workers');
    await mkdir(workersDir, { recursive: true });
    await writeWorker(workersDir, 'stale', { host: '127.0.0.1', port: 1 });
    await writeWorker(workersDir, 'alive', { host: '127.0.0.1', port: 1 });
    await writeFile(path.join(workersDir, 'worker_stale.p'), '999999999');
    await writeFile(path.join(workersDir, 'worker_alive.p'), String(process.pid));
    manager = await startTestManager({ dir });
    expect(await exists(path.join(workersDir, 'worker_stale.p'))).toBe(false);
    expect(await exists(path.join(workersDir, 'worker_alive.p'))).toBe(true);
    const client = await manager.connect();
    client.send('worker_status');
    const { found } = await readUntil(client, 'worker_status');
    // Listed with the pid from .p (spec §3.4), inactive: nothing answers its uuid.
    expect(found.inactive.find((w) => w.uuid === 'alive')?.pid).toBe(process.pid);
  });
});

describe('files that are not what their names say', () => {
  it('skips a FIFO named like a worker JSON or .p instead of blocking the scan on it', async () => {
    const dir = await makeTempDir();
    const workersDir = path.join(dir, 'workers');
    await mkdir(workersDir, { recursive: true });
    await writeWorker(workersDir, 'fine');
    await writeWorker(workersDir, 'piped');
    execFileSync('mkfifo', [path.join(workersDir, 'worker_fifo.json'), path.join(workersDir, 'worker_piped.p')]);
    try {
      manager = await startTestManager({ dir });
      const client = await manager.connect();
      client.send('worker_status');
      const { found } = await readUntil(client, 'worker_status');
      expect(found.inactive.map((w) => w.uuid).sort()).toEqual(['fine', 'piped']);
      expect(manager.logs.filter((l) => l.includes('worker_fifo.json: it is not a regular file'))).toHaveLength(1);
      expect(manager.logs.filter((l) => l.includes('worker_piped.p: it is not a regular file'))).toHaveLength(1);
    } finally {
      // Before the fix a read hangs on each FIFO: a writer that opens and closes it lets those reads end.
      for (const name of ['worker_fifo.json', 'worker_piped.p']) {
        await (await open(path.join(workersDir, name), 'r+')).close();
        await rm(path.join(workersDir, name));
      }
    }
  });

  it('skips a worker JSON larger than the cap (reported once) and keeps the file', async () => {
    const dir = await makeTempDir();
    const workersDir = path.join(dir, 'workers');
    await mkdir(workersDir, { recursive: true });
    await writeWorker(workersDir, 'huge', { padding: 'x'.repeat(MAX_WORKER_JSON_BYTES) });
    await writeWorker(workersDir, 'small');
    manager = await startTestManager({ dir, supervisor: { observer: { safetyRescanMs: 100 } } });
    const client = await manager.connect();
    client.send('worker_status');
    const { found } = await readUntil(client, 'worker_status');
    expect(found.inactive.map((w) => w.uuid)).toEqual(['small']);
    await manager.service.supervisor.refresh('huge');
    await manager.service.supervisor.refresh('huge');
    expect(manager.logs.filter((l) => l.includes('worker_huge.json: it is'))).toHaveLength(1);
    expect(await exists(path.join(workersDir, 'worker_huge.json'))).toBe(true);
  });

  it('reads only a plain positive pid from a .p', () => {
    const table: [string, number | null][] = [
      ['4242', 4242],
      [' 4242\n', 4242],
      ['1', 1],
      ['0', null],
      ['-5', null],
      ['+5', null],
      ['1e3', null],
      ['0x10', null],
      ['1_000', null],
      ['12 34', null],
      ['12abc', null],
      ['99999999999999999999', null],
      ['4294967296', null],
      ['', null],
      ['hello', null],
    ];
    for (const [text, pid] of table) expect(parsePidFile(text), JSON.stringify(text)).toBe(pid);
  });

  it('a .p with garbage is no pid: the worker is inactive, and a start removes it and spawns', async () => {
    const dir = await makeTempDir();
    const workersDir = path.join(dir, 'workers');
    await mkdir(workersDir, { recursive: true });
    await writeWorker(workersDir, 'garbage', { host: '127.0.0.1', port: 1 });
    await writeFile(path.join(workersDir, 'worker_garbage.p'), 'not a pid at all');
    manager = await startTestManager({ dir });
    expect(manager.service.supervisor.describe('garbage')).toMatchObject({ state: 'inactive', adopted: false, pid: null });
    expect(manager.logs.filter((l) => l.includes('worker_garbage.p: it holds neither a pid nor a command'))).toHaveLength(1);
    const client = await manager.connect();
    client.send({ type: 'set_active', workerid: 'garbage' });
    const { found } = await readUntil(client, 'set_worker', 20_000);
    expect(found.data.uuid).toBe('garbage');
  });

  it('a .p holding a command for the worker (spec §2.5 inbox) still counts as possibly live', async () => {
    const registry = new Registry(await makeTempDir(), silentLogger);
    await writeFile(registry.paths('inbox').pidFile, '{"cmd": "stop_worker"}');
    expect(await registry.readPidFile('inbox')).toBeNull();
    await writeFile(registry.paths('inbox').pidFile, '');
    expect(await registry.readPidFile('inbox')).toBeNull();
    await writeFile(registry.paths('inbox').pidFile, '[1]');
    expect(await registry.readPidFile('inbox')).toBeUndefined();
  });
});

describe('a workers dir that cannot be read', () => {
  // Root reads any dir: as root the manager runs as nobody (setpriv); others can take their own permission.
  const asRoot = process.getuid?.() === 0;
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file));
  it.skipIf(process.platform === 'win32' || (asRoot && setpriv === undefined))('keeps the last known list and reports the failure', async () => {
    assertCliBuilt();
    const dir = await makeTempDir();
    const workersDir = path.join(dir, 'workers');
    await mkdir(workersDir, { recursive: true });
    await writeWorker(workersDir, 'known');
    if (asRoot) execFileSync('chown', ['-R', '65534:65534', dir]);
    const node = [process.execPath, CLI, 'startworkermanager', '--dir', dir, '--host', '127.0.0.1', '--port', '0'];
    const options: SpawnOptionsWithStdioTuple<'ignore', 'pipe', 'pipe'> = { env: cliEnv(randomPortRange()), stdio: ['ignore', 'pipe', 'pipe'] };
    const child =
      asRoot && setpriv !== undefined
        ? spawn(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', ...node], options)
        : spawn(process.execPath, node.slice(1), options);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const [first] = (await once(child.stdout, 'data')) as [Buffer];
      const client = await ManagerClient.connect(first.toString().trim());
      client.send('worker_status');
      expect((await readUntil(client, 'worker_status')).found.inactive.map((w) => w.uuid)).toEqual(['known']);
      // The dir's own attribute change is a watch event on it: a full rescan, whose readdir now fails.
      await chmod(workersDir, 0o000);
      await waitFor(() => stderr.includes(`Cannot list ${workersDir}: EACCES`), 10_000, 'the failure to be logged');
      const statuses = client.pending().filter((raw) => raw.includes('"worker_status"'));
      expect(statuses, 'no worker_status that drops every worker').toEqual([]);
      client.close();
    } finally {
      await chmod(workersDir, 0o700);
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });
});

describe('writes', () => {
  it('writes a new worker atomically: mode 0600, no temp files left', async () => {
    const dir = await makeTempDir();
    const registry = new Registry(dir, silentLogger);
    const created = await registry.create({ name: 'atomic', copyLib: false, copyNS: false }, { host: 'localhost', port: 9382 });
    expect((await readdir(dir)).sort()).toEqual([`worker_${created.uuid}`, `worker_${created.uuid}.json`]);
    expect(JSON.parse(await readFile(path.join(dir, `worker_${created.uuid}.json`), 'utf8'))).toEqual(created);
    expect((await stat(path.join(dir, `worker_${created.uuid}.json`))).mode & 0o777).toBe(0o600);
  });

  it('removes the new data dir, and what its setup made there, when a write after the setup fails', async () => {
    const dir = await makeTempDir();
    const registry = new Registry(dir, silentLogger);
    const creation = registry.create({ uuid: 'half', name: 'half', copyLib: false, copyNS: false }, { host: 'localhost', port: 9382 }, async (uuid, dataDir) => {
      await mkdir(path.join(dataDir, 'venv')); // a finished venv
      // Something in the way of the worker JSON: its write fails once the setup is done.
      await mkdir(path.join(dir, `worker_${uuid}.json`));
      return { env_path: 'venv' };
    });
    await expect(creation).rejects.toThrow();
    expect(await exists(path.join(dir, 'worker_half'))).toBe(false);
  });

  it('never clobbers an existing worker with new_worker', async () => {
    manager = await startTestManager();
    await writeWorker(manager.workersDir, 'taken', { name: 'original', custom: true });
    const client = await manager.connect();
    client.send({ type: 'new_worker', kwargs: { uuid: 'taken', name: 'intruder', in_venv: false } });
    const { found, before } = await readUntil(client, 'error');
    expect(found.message).toContain('already exists');
    expect(before.map((f) => f.kind === 'message' && f.message.type)).toEqual(['progress']);
    expect(JSON.parse(await client.nextText())).toMatchObject({ type: 'progress', message: '' });
    expect(JSON.parse(await readFile(path.join(manager.workersDir, 'worker_taken.json'), 'utf8'))).toMatchObject({ name: 'original', custom: true });
  });

  it('copies package_dependencies and the nodespace without meta from a reference', async () => {
    manager = await startTestManager();
    const deps = { 'funcnodes-basic': { package: 'funcnodes-basic', version: null } };
    await writeWorker(manager.workersDir, 'ref', { package_dependencies: deps });
    await mkdir(path.join(manager.workersDir, 'worker_ref'));
    const nodespace = { backend: { nodes: [1], edges: [] }, view: {}, meta: { id: 'abc' }, external_workers: {} };
    await writeFile(path.join(manager.workersDir, 'worker_ref', 'nodespace.json'), JSON.stringify(nodespace));
    const client = await manager.connect();
    client.send({ type: 'new_worker', kwargs: { name: 'copy', reference: 'ref', copyLib: true, copyNS: true, in_venv: false } });
    const { found } = await readUntil(client, 'worker_created');
    const p = workerPaths(manager.workersDir, found.uuid);
    expect(JSON.parse(await readFile(p.json, 'utf8'))).toMatchObject({ name: 'copy', package_dependencies: deps });
    const { meta: _meta, ...withoutMeta } = nodespace;
    expect(JSON.parse(await readFile(path.join(p.dataDir, 'nodespace.json'), 'utf8'))).toEqual(withoutMeta);
    // A missing reference is ignored, as in the original.
    client.send({ type: 'new_worker', kwargs: { name: 'noref', reference: 'missing', copyLib: true, in_venv: false } });
    expect((await readUntil(client, 'worker_created')).found.uuid).toMatch(/^noref_[0-9a-f]{16}$/);
  });
});

describe('confined deletion', () => {
  async function deleteVia(m: TestManager, uuid: string): Promise<void> {
    const client = await m.connect();
    client.send({ type: 'delete_worker', workerid: uuid });
    await readUntil(client, 'worker_deleted');
  }

  it('keeps a data_path outside the workers dir, an outside env_path, and symlink targets', async () => {
    manager = await startTestManager();
    const outside = await makeTempDir('fnwm-outside-');
    await writeFile(path.join(outside, 'canary'), 'keep');
    const w = manager.workersDir;
    await writeWorker(w, 'outside', { data_path: outside, env_path: path.join(outside, '.venv') });
    await writeWorker(w, 'self', { data_path: w });
    await writeWorker(w, 'neighbour', { data_path: path.join(w, 'worker_victim') });
    await writeWorker(w, 'victim');
    await mkdir(path.join(w, 'worker_victim'));
    await writeFile(path.join(w, 'worker_victim', 'nodespace.json'), '{}');
    await writeWorker(w, 'linked');
    await symlink(outside, path.join(w, 'worker_linked'));
    await writeWorker(w, 'escape', { data_path: path.join(w, 'worker_escape', '..', '..', '..', path.basename(outside)) });
    await manager.service.supervisor.refresh('outside', 'self', 'neighbour', 'victim', 'linked', 'escape');
    for (const uuid of ['outside', 'self', 'neighbour', 'linked', 'escape']) await deleteVia(manager, uuid);
    expect(await readFile(path.join(outside, 'canary'), 'utf8')).toBe('keep');
    expect(await exists(path.join(w, 'worker_victim', 'nodespace.json'))).toBe(true);
    expect(await exists(path.join(w, 'worker_victim.json'))).toBe(true);
    expect(await exists(path.join(w, 'worker_linked'))).toBe(false);
    expect(await exists(w)).toBe(true);
    expect((await readdir(w)).sort()).toEqual(['worker_victim', 'worker_victim.json']);
  });

  it('removes a custom data_path inside the workers dir', async () => {
    manager = await startTestManager();
    const custom = path.join(manager.workersDir, 'custom-data');
    await mkdir(custom);
    await writeWorker(manager.workersDir, 'custom', { data_path: custom });
    await manager.service.supervisor.refresh('custom');
    await deleteVia(manager, 'custom');
    expect(await exists(custom)).toBe(false);
  });

  it('removes the data dir before the JSON: a failed removal is an error with its cause, and a retry finishes', async () => {
    manager = await startTestManager();
    const w = manager.workersDir;
    await writeWorker(w, 'stuck');
    await mkdir(path.join(w, 'worker_stuck'));
    const locked = path.join(w, 'worker_stuck', 'locked');
    await writeFile(locked, 'data');
    await manager.service.supervisor.refresh('stuck');
    // Root ignores permissions, not the immutable flag; others cannot unlink from a read-only dir.
    const asRoot = process.getuid?.() === 0;
    const lock = (on: boolean) =>
      asRoot ? execFileSync('chattr', [on ? '+i' : '-i', locked]) : execFileSync('chmod', [on ? '500' : '700', path.dirname(locked)]);
    lock(true);
    const client = await manager.connect();
    try {
      client.send({ type: 'delete_worker', workerid: 'stuck' });
      const { found } = await readUntil(client, 'error');
      expect(found.message).toMatch(/^Could not delete worker stuck: cannot remove \S*worker_stuck: .+\. Its JSON is kept, so the delete can be tried again\.$/);
      await readReset(client);
      expect(await exists(path.join(w, 'worker_stuck.json'))).toBe(true);
      expect(manager.service.supervisor.find('stuck')).toBeDefined();
    } finally {
      lock(false);
    }
    client.send({ type: 'delete_worker', workerid: 'stuck' });
    await readUntil(client, 'worker_deleted');
    expect(await readdir(w)).toEqual([]);
  });

  it('deletes a worker that is on disk but not yet in the status (spec §4.8 step 1)', async () => {
    manager = await startTestManager({ supervisor: { observer: { debounceMs: 60_000 } } });
    await writeWorker(manager.workersDir, 'unseen');
    await deleteVia(manager, 'unseen');
    expect(await exists(path.join(manager.workersDir, 'worker_unseen.json'))).toBe(false);
  });
});

describe('config dir', () => {
  it('follows custom_config_dir, reads config.json.bu as a fallback, and never rewrites config.json', async () => {
    const base = await makeTempDir();
    const custom = await makeTempDir();
    const baseConfig = JSON.stringify({ custom_config_dir: custom, unknown: { keep: 1 } });
    await writeFile(path.join(base, 'config.json'), baseConfig);
    await writeFile(path.join(custom, 'config.json'), '{broken');
    await writeFile(path.join(custom, 'config.json.bu'), JSON.stringify({ worker_manager: { host: '127.0.0.1', port: 9555, allowed_origins: ['https://x.example'] } }));
    const settings = await loadSettings({}, { FUNCNODES_CONFIG_DIR: base });
    expect(settings).toMatchObject({ configDir: custom, workersDir: path.join(custom, 'workers'), host: '127.0.0.1', port: 9555, allowedOrigins: ['https://x.example'] });
    expect(await readFile(path.join(base, 'config.json'), 'utf8')).toBe(baseConfig);
    expect(await readFile(path.join(custom, 'config.json'), 'utf8')).toBe('{broken');
    // --dir beats the environment; --host/--port beat the file.
    const overridden = await loadSettings({ dir: custom, host: 'localhost', port: 0 }, { FUNCNODES_CONFIG_DIR: base });
    expect(overridden).toMatchObject({ configDir: custom, host: 'localhost', port: 0 });
  });

  it('defaults to ~/.funcnodes and localhost:9380, and in_venv from FUNCNODES_WORKER_IN_VENV', async () => {
    const home = await makeTempDir();
    const settings = await loadSettings({}, { HOME: home, FUNCNODES_WORKER_IN_VENV: 'no' });
    expect(settings.configDir.endsWith(path.join('.funcnodes'))).toBe(true);
    expect(settings).toMatchObject({ host: 'localhost', port: 9380, inVenvDefault: false });
    expect((await loadSettings({ dir: home }, { FUNCNODES_WORKER_IN_VENV: 'YES' })).inVenvDefault).toBe(true);
  });
});
