/**
 * Per-worker virtualenvs with real venvs and real offline pip installs from a local wheelhouse: creation
 * with progress, updates on start per `update_on_startup`, failures, snapshots and rollback, uv command
 * lines (through a stand-in uv), Python discovery.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ManagerClient } from '../src-main/core/hub/client.js';
import type { ParsedManagerFrame, ProgressMessage, WorkerConfig } from '../src-shared/protocol.js';
import { inspectPython, MIN_PYTHON } from '../src-main/core/python-env/discovery.js';
import { throttleLines } from '../src-main/core/python-env/installer.js';
import {
  activateWorker as start,
  collect,
  deactivateWorker as stop,
  makeTempDir,
  messageOf,
  readUntil,
  startTestManager,
  type TestManager,
} from './helpers/manager.js';
import { buildWheels, installedVersions, offlinePip, readUvCalls, standinUv, writeOldPython } from './helpers/python-env.js';

const initialCwd = process.cwd();

const progressOf = (frames: ParsedManagerFrame[]): ProgressMessage[] =>
  frames.map(messageOf).filter((m): m is ProgressMessage => m?.type === 'progress');

const texts = (frames: ParsedManagerFrame[]) => progressOf(frames).map((p) => p.message);

async function readConfig(workersDir: string, uuid: string): Promise<WorkerConfig> {
  return JSON.parse(await readFile(path.join(workersDir, `worker_${uuid}.json`), 'utf8')) as WorkerConfig;
}

async function editConfig(workersDir: string, uuid: string, edit: (config: WorkerConfig) => void): Promise<void> {
  const config = await readConfig(workersDir, uuid);
  edit(config);
  await writeFile(path.join(workersDir, `worker_${uuid}.json`), JSON.stringify(config, null, 2));
}

async function createInVenv(client: ManagerClient, name: string): Promise<{ uuid: string; before: ParsedManagerFrame[] }> {
  client.send({ type: 'new_worker', kwargs: { name, in_venv: true } });
  const { found, before } = await readUntil(client, 'worker_created', 120_000);
  return { uuid: found.uuid, before };
}

function venvPython(m: TestManager, uuid: string): string {
  return path.join(m.workersDir, `worker_${uuid}`, '.venv', 'bin', 'python');
}

const updateLines = (m: TestManager) => m.logs.filter((line) => line.includes('Updating the environment of worker'));

describe('a worker in its own venv (pip, offline)', () => {
  let wheelhouse: string;
  let m: TestManager;
  let client: ManagerClient;
  let uuid: string;

  beforeAll(async () => {
    wheelhouse = await makeTempDir('fnwm-wheels-');
    await buildWheels(wheelhouse, ['1.0.0']);
    m = await startTestManager({ env: offlinePip(wheelhouse) });
    client = await m.connect();
  }, 60_000);
  afterAll(async () => {
    await m?.close();
    await rm(wheelhouse, { recursive: true, force: true });
  });

  it('creates the venv with progress for every client, pyproject.toml next to .venv, env_path absolute', async () => {
    const watcher = await m.connect();
    watcher.send('worker_status');
    await readUntil(watcher, 'worker_status');
    const startedAt = Date.now();
    client.send({ type: 'new_worker', kwargs: { name: 'demo', in_venv: true } });
    // A client that subscribes in the middle of the install is shown the current step at once.
    const first = await client.until((f) => (messageOf(f)?.type === 'progress' ? f : undefined), 10_000);
    const late = await m.connect();
    late.send('worker_status');
    await readUntil(late, 'worker_status');
    const { found: current } = await readUntil(late, 'progress', 30_000);
    expect(current.message).not.toBe('');
    expect(current.blocking).toBe(true);

    const created = await readUntil(client, 'worker_created', 120_000);
    uuid = created.found.uuid;
    const elapsed = (Date.now() - startedAt) / 1000;
    const sequence = texts([first, ...created.before]);
    const steps = ['Making virtual environment.', 'Adding funcnodes', 'Writing configuration.', 'Creating new worker.'];
    expect(steps.map((s) => sequence.indexOf(s))).toEqual([...steps.map((s) => sequence.indexOf(s))].sort((a, b) => a - b));
    for (const step of steps) expect(sequence).toContain(step);
    // The installers' own lines come through (pip names what it installs), throttled to ~10 a second.
    expect(sequence.some((t) => /funcnodes/i.test(t) && !steps.includes(t))).toBe(true);
    expect(sequence.length).toBeLessThanOrEqual(10 * elapsed + 10);
    const { found: reset } = await readUntil(client, 'progress');
    expect(reset).toMatchObject({ message: '', blocking: false });
    // Every subscriber saw the same steps.
    const { before: watched } = await readUntil(watcher, 'worker_status', 10_000);
    expect(texts(watched)).toEqual(expect.arrayContaining(steps));

    const dataDir = path.join(m.workersDir, `worker_${uuid}`);
    const config = await readConfig(m.workersDir, uuid);
    expect(config.env_path).toBe(path.join(dataDir, '.venv'));
    expect(existsSync(path.join(dataDir, 'pyproject.toml'))).toBe(true);
    expect(await readFile(path.join(dataDir, 'pyproject.toml'), 'utf8')).toMatch(/dependencies = \["pip", "funcnodes"\]/);
    expect(existsSync(path.join(dataDir, '.venv', 'pyvenv.cfg'))).toBe(true);
    const versions = await installedVersions(venvPython(m, uuid));
    expect(versions).toMatchObject({ funcnodes: '1.0.0', 'funcnodes-core': '1.0.0', 'funcnodes-worker': '1.0.0' });
    expect(process.cwd()).toBe(initialCwd);
  }, 180_000);

  it('the stand-in CLI upgrades in the worker like the real one (`python -m uv add/lock/sync`), exits 1 when that fails, and can be told not to', async () => {
    const uvLog = path.join(m.dir, 'uv-in-worker.jsonl');
    // exit_at=start with code 7: the CLI got past its upgrade to the worker itself.
    const cli = (standin: object, extra: Record<string, string> = {}) =>
      execa(venvPython(m, uuid), ['-m', 'funcnodes', '--dir', m.dir, 'worker', '--uuid', uuid, 'start'], {
        reject: false,
        env: { ...offlinePip(wheelhouse), FNWM_UV_LOG: uvLog, FUNCNODES_STANDIN: JSON.stringify({ exit_at: 'start', exit_code: 7, ...standin }), ...extra },
      });
    const calls = async () => (existsSync(uvLog) ? (await readUvCalls(uvLog)).map((c) => c.argv.join(' ')) : []);
    const project = path.join(m.workersDir, `worker_${uuid}`);

    expect((await cli({})).exitCode).toBe(7);
    expect(await calls()).toEqual(
      ['funcnodes', 'funcnodes-core', 'funcnodes-worker'].flatMap((pkg) => [`add ${pkg}`, `lock --upgrade-package ${pkg}`, 'sync']),
    );
    expect((await readUvCalls(uvLog)).every((c) => c.cwd === project)).toBe(true);
    await rm(uvLog);

    const failed = await cli({}, { FNWM_UV_FAIL: 'add' });
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toMatch(/Failed to call \S+ -m uv add funcnodes/);
    expect(await calls()).toEqual(['add funcnodes']);
    await rm(uvLog);

    expect((await cli({ in_worker_upgrade: false }, { FNWM_UV_FAIL: 'add' })).exitCode).toBe(7);
    expect(await calls()).toEqual([]);
    await rm(path.join(project, 'uv.lock'), { force: true });
  }, 120_000);

  it('update_on_startup: each flag off and on, pinned and unpinned dependencies, once per start', async () => {
    await buildWheels(wheelhouse, ['1.1.0']);
    // Start 1: every flag off; an unpinned dependency gets the newest, a pinned one its pin.
    await editConfig(m.workersDir, uuid, (c) => {
      c.update_on_startup = { funcnodes: false, 'funcnodes-core': false, 'funcnodes-worker': false };
      c.package_dependencies = { 'fn-dep-a': { package: 'fn_dep_a', version: null }, 'fn-dep-b': { package: 'fn-dep-b', version: '1.0.0' } };
    });
    let run = await start(client, uuid);
    expect(run.ok, run.error).toBe(true);
    expect(texts(run.frames)).toEqual(expect.arrayContaining(['Activating worker.', 'Updating worker.', 'updating fn-dep-a', 'installing fn-dep-b==1.0.0', 'Starting worker.']));
    expect(texts(run.frames)).not.toContain('updating funcnodes');
    expect(await installedVersions(venvPython(m, uuid))).toMatchObject({
      funcnodes: '1.0.0',
      'funcnodes-core': '1.0.0',
      'funcnodes-worker': '1.0.0',
      'fn-dep-a': '1.1.0',
      'fn-dep-b': '1.0.0',
    });
    expect(updateLines(m)).toHaveLength(1);
    await stop(client, uuid);

    // Start 2: funcnodes on, the others off.
    await editConfig(m.workersDir, uuid, (c) => {
      c.update_on_startup = { funcnodes: true, 'funcnodes-core': false, 'funcnodes-worker': false };
      c.package_dependencies = {};
    });
    run = await start(client, uuid);
    expect(run.ok, run.error).toBe(true);
    expect(await installedVersions(venvPython(m, uuid))).toMatchObject({ funcnodes: '1.1.0', 'funcnodes-core': '1.0.0', 'funcnodes-worker': '1.0.0' });
    await stop(client, uuid);

    // Start 3: funcnodes-core's key missing (means true), funcnodes-worker off.
    await editConfig(m.workersDir, uuid, (c) => {
      c.update_on_startup = { funcnodes: false, 'funcnodes-worker': false };
    });
    run = await start(client, uuid);
    expect(run.ok, run.error).toBe(true);
    expect(texts(run.frames)).toContain('updating funcnodes-core');
    expect(await installedVersions(venvPython(m, uuid))).toMatchObject({ 'funcnodes-core': '1.1.0', 'funcnodes-worker': '1.0.0' });
    await stop(client, uuid);

    // Start 4, asked for twice at once: funcnodes-worker on; one shared start, one update.
    await editConfig(m.workersDir, uuid, (c) => {
      c.update_on_startup = { funcnodes: false, 'funcnodes-core': false, 'funcnodes-worker': true };
    });
    const other = await m.connect();
    const [a, b] = await Promise.all([start(client, uuid), start(other, uuid)]);
    expect(a.ok && b.ok, `${a.error} ${b.error}`).toBe(true);
    expect(await installedVersions(venvPython(m, uuid))).toMatchObject({ 'funcnodes-worker': '1.1.0' });
    expect(updateLines(m)).toHaveLength(4);
    // The worker really runs from its venv.
    const status = m.service.supervisor.find(uuid);
    expect(status?.active).toBe(true);
    const pid = status?.config.pid;
    expect(pid).toBeTypeOf('number');
    expect((await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0]).toBe(venvPython(m, uuid));
    await stop(client, uuid);
  }, 240_000);

  it('env history: a snapshot before and after each update, marked when a start succeeded with it; rollback --to one', async () => {
    client.send({ type: 'env_history', workerid: uuid });
    const { found: history } = await readUntil(client, 'env_history');
    // Start 1: before (as created) and after; starts 2-4: each "before" is the previous "after" (reused).
    expect(history.snapshots.map((s) => s.started)).toEqual([true, true, true, true, false]);
    expect(history.snapshots[0].packages).toEqual(expect.arrayContaining(['funcnodes-worker==1.1.0', 'funcnodes-core==1.1.0']));
    expect(history.snapshots[1].packages).toEqual(expect.arrayContaining(['funcnodes-worker==1.0.0', 'funcnodes-core==1.1.0']));

    client.send({ type: 'env_rollback', workerid: uuid, to: history.snapshots[1].id });
    const { found: done, before } = await readUntil(client, 'env_rolled_back', 120_000);
    expect(done.snapshot).toBe(history.snapshots[1].id);
    expect(texts(before)[0]).toMatch(/^Restoring the environment/);
    expect(await installedVersions(venvPython(m, uuid))).toMatchObject({ 'funcnodes-worker': '1.0.0', 'funcnodes-core': '1.1.0', funcnodes: '1.1.0' });
    await readUntil(client, 'progress'); // reset

    client.send({ type: 'env_rollback', workerid: uuid, to: 'latest' });
    const { found: invalid } = await readUntil(client, 'error');
    expect(invalid.message).toMatch(/^Invalid env_rollback request: "to" must be a snapshot id/);
  }, 120_000);

  it('an update that fails (package not in the index) is an error progress; the worker still starts', async () => {
    await editConfig(m.workersDir, uuid, (c) => {
      c.update_on_startup = { funcnodes: false, 'funcnodes-core': false, 'funcnodes-worker': false };
      c.package_dependencies = { missing: { package: 'fn-not-published', version: null } };
    });
    const run = await start(client, uuid);
    expect(run.ok, run.error).toBe(true);
    const failed = progressOf(run.frames).find((p) => p.status === 'error');
    expect(failed?.message).toMatch(/Could not update the environment.*fn-not-published/);
    expect(texts(run.frames).indexOf('Starting worker.')).toBeGreaterThan(texts(run.frames).indexOf(failed!.message));
    await stop(client, uuid);
  }, 120_000);

  it('a start that fails after an update says so and names the rollback; the default rollback restores the last started versions', async () => {
    await editConfig(m.workersDir, uuid, (c) => {
      c.update_on_startup = { funcnodes: true };
      c.package_dependencies = {};
      c.standin = { exit_at: 'start', exit_code: 1 };
    });
    try {
      const run = await start(client, uuid);
      expect(run.ok).toBe(false);
      expect(run.error).toMatch(
        new RegExp(
          `^Could not activate worker with id ${uuid}\\. The worker process exited during start \\(code 1\\)\\. ` +
            `Its environment was updated just before this start \\(snapshot (\\d{8}T\\d{9}Z) is the one before the update\\); ` +
            `"fnwm worker --uuid ${uuid} env rollback" restores the versions of the last successful start, "env rollback --to \\1" those before the update\\.`,
        ),
      );
      // funcnodes-worker went 1.0.0 -> 1.1.0 and the start failed: the newest snapshot is not marked.
      client.send({ type: 'env_history', workerid: uuid });
      const { found: history } = await readUntil(client, 'env_history');
      expect(history.snapshots[0].started).toBe(false);
      expect(history.snapshots[0].packages).toEqual(expect.arrayContaining(['funcnodes-worker==1.1.0']));
      const lastGood = history.snapshots.find((s) => s.started)!;
      expect(lastGood.packages).toEqual(expect.arrayContaining(['funcnodes-worker==1.0.0']));
      client.send({ type: 'env_rollback', workerid: uuid });
      const { found: done } = await readUntil(client, 'env_rolled_back', 120_000);
      expect(done.snapshot).toBe(lastGood.id);
      expect(await installedVersions(venvPython(m, uuid))).toMatchObject({ 'funcnodes-worker': '1.0.0' });
      await readUntil(client, 'progress'); // reset
    } finally {
      await editConfig(m.workersDir, uuid, (c) => {
        delete c.standin;
      });
    }
  }, 120_000);

  it('a start that fails after an update that changed nothing does not name the rollback', async () => {
    await editConfig(m.workersDir, uuid, (c) => {
      // funcnodes is already the newest: pip runs and says "Requirement already satisfied".
      c.update_on_startup = { funcnodes: true, 'funcnodes-core': false, 'funcnodes-worker': false };
      c.standin = { exit_at: 'start', exit_code: 1 };
    });
    try {
      const linesBefore = updateLines(m).length;
      const run = await start(client, uuid);
      expect(run.ok).toBe(false);
      expect(updateLines(m)).toHaveLength(linesBefore + 1);
      expect(texts(run.frames)).toContain('updating funcnodes');
      expect(run.error).toMatch(new RegExp(`^Could not activate worker with id ${uuid}\\. The worker process exited during start \\(code 1\\)\\.`));
      expect(run.error).not.toMatch(/rollback|updated just before/);
    } finally {
      await editConfig(m.workersDir, uuid, (c) => {
        delete c.standin;
      });
    }
  }, 120_000);

  it('a start that fails after an update that failed does not name the rollback (nothing was changed)', async () => {
    await editConfig(m.workersDir, uuid, (c) => {
      c.update_on_startup = { funcnodes: false, 'funcnodes-core': false, 'funcnodes-worker': false };
      c.package_dependencies = { missing: { package: 'fn-not-published', version: null } };
      c.standin = { exit_at: 'start', exit_code: 1 };
    });
    try {
      const run = await start(client, uuid);
      expect(run.ok).toBe(false);
      expect(progressOf(run.frames).find((p) => p.status === 'error')?.message).toMatch(/Could not update the environment.*fn-not-published/);
      // Why it failed (its exit and its own last words, not an earlier run's), and no rollback advice.
      expect(run.error).toBe(
        `Could not activate worker with id ${uuid}. The worker process exited during start (code 1). Its last output: standin: exit_at=start, exiting with code 1`,
      );
    } finally {
      await editConfig(m.workersDir, uuid, (c) => {
        delete c.standin;
      });
    }
  }, 120_000);

  it('rollback of a running worker is refused; a broken venv (python deleted) gives a clear error', async () => {
    await editConfig(m.workersDir, uuid, (c) => {
      c.package_dependencies = {};
    });
    expect((await start(client, uuid)).ok).toBe(true);
    client.send({ type: 'env_rollback', workerid: uuid });
    const { found: refused } = await readUntil(client, 'error');
    expect(refused.message).toMatch(/is running: stop it/);
    await stop(client, uuid);

    await rm(venvPython(m, uuid));
    const run = await start(client, uuid);
    expect(run.ok).toBe(false);
    expect(run.error).toMatch(new RegExp(`^Could not activate worker with id ${uuid}\\. Its virtual environment .* is broken: .*bin/python is missing`));
    // The repair command names this worker (it once printed a literal <uuid>).
    expect(run.error).toContain(`"fnwm worker --uuid ${uuid} pip install funcnodes"`);
  }, 120_000);
});

describe('creation failures', () => {
  it('an unreachable index: clear error with pip\'s last lines, progress reset, nothing left behind', async () => {
    // pip is pointed at a closed port as its index, with no local wheels.
    const m = await startTestManager({
      env: offlinePip('', { PIP_NO_INDEX: undefined, PIP_FIND_LINKS: undefined, PIP_INDEX_URL: 'http://127.0.0.1:9/simple', PIP_RETRIES: '0', PIP_TIMEOUT: '2' }),
    });
    try {
      const client = await m.connect();
      const watcher = await m.connect();
      watcher.send('worker_status');
      await readUntil(watcher, 'worker_status');
      client.send({ type: 'new_worker', kwargs: { name: 'offline', in_venv: true } });
      const { found: error, before } = await readUntil(client, 'error', 120_000);
      expect(error.message).toMatch(/^Could not create worker: ".*-m pip install funcnodes" failed \(exit 1\): .*funcnodes/);
      expect(texts(before)).toContain('Adding funcnodes');
      const { found: reset } = await readUntil(client, 'progress');
      expect(reset).toMatchObject({ message: '', blocking: false });
      // No ghost: the watcher never sees the worker, and the workers dir is empty.
      const watched = await collect(watcher, 1500);
      expect(watched.some((t) => t.includes('worker_status') && t.includes('offline'))).toBe(false);
      expect(await readdir(m.workersDir)).toEqual([]);
    } finally {
      await m.close();
    }
  }, 120_000);

  it('a manager that stops during a creation ends the installer and leaves nothing behind', async () => {
    const m = await startTestManager({ env: offlinePip('/nonexistent-fnwm-wheelhouse') });
    try {
      const client = await m.connect();
      client.send({ type: 'new_worker', kwargs: { name: 'interrupted', in_venv: true } });
      const { found } = await readUntil(client, 'progress');
      expect(found.message).toBe('Making virtual environment.');
      await m.service.stop('test');
      expect(await readdir(m.workersDir)).toEqual([]);
      expect(m.logs.some((line) => line.includes('new_worker failed') && line.includes('was cancelled'))).toBe(true);
    } finally {
      await m.close();
    }
  }, 60_000);

  it('a Python older than 3.11 is refused with a clear error', async () => {
    const dir = await makeTempDir();
    const oldPython = await writeOldPython(dir);
    const info = await inspectPython(oldPython, process.env);
    expect(info.problem).toMatch(/is 3\.9\.2; FuncNodes needs 3\.11 or newer/);
    const real = await inspectPython('python3', process.env);
    expect(real.problem).toBeUndefined();
    expect(real.version?.split('.').map(Number)[1]).toBeGreaterThanOrEqual(MIN_PYTHON[1]);
    const m = await startTestManager({ env: { FUNCNODES_PYTHON: oldPython } });
    try {
      const client = await m.connect();
      client.send({ type: 'new_worker', kwargs: { name: 'old', in_venv: true } });
      const { found } = await readUntil(client, 'error', 30_000);
      expect(found.message).toMatch(/^Could not create worker: Python .*python-old is 3\.9\.2/);
    } finally {
      await m.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('with uv (a stand-in that records its arguments: uv cannot be installed here)', () => {
  it('runs the original\'s uv steps in the data dir, two workers at once, the update triple on start, and starts with the index unreachable (one update attempt)', async () => {
    const wheelhouse = await makeTempDir('fnwm-wheels-');
    await buildWheels(wheelhouse, ['1.0.0']);
    const uvLog = path.join(wheelhouse, 'uv.log');
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: { uv: standinUv } }));
    const m = await startTestManager({ dir, env: offlinePip(wheelhouse, { FNWM_UV_LOG: uvLog }) });
    try {
      const [c1, c2] = [await m.connect(), await m.connect()];
      const [one, two] = await Promise.all([createInVenv(c1, 'uv-one'), createInVenv(c2, 'uv-two')]);
      const calls = await readUvCalls(uvLog);
      const py = m.service.python;
      for (const uuid of [one.uuid, two.uuid]) {
        const dataDir = path.join(m.workersDir, `worker_${uuid}`);
        const own = calls.filter((c) => c.cwd === dataDir).map((c) => c.argv.join(' '));
        expect(own).toEqual([
          `init --no-workspace --no-pin-python --no-readme --python ${py} --description A Funcnodes worker environment`,
          `venv --python ${py}`,
          'add pip',
          'lock --upgrade-package pip',
          'sync',
          'add funcnodes',
          'lock --upgrade-package funcnodes',
          'sync',
        ]);
        expect((await readConfig(m.workersDir, uuid)).env_path).toBe(path.join(dataDir, '.venv'));
        expect(existsSync(path.join(dataDir, 'pyproject.toml'))).toBe(true);
      }
      // Side by side, not one after the other: the second worker's first step came before the first's last.
      const firstOf = (uuid: string) => calls.findIndex((c) => c.cwd.endsWith(uuid));
      const lastOf = (uuid: string) => calls.findLastIndex((c) => c.cwd.endsWith(uuid));
      expect(Math.max(firstOf(one.uuid), firstOf(two.uuid))).toBeLessThan(Math.min(lastOf(one.uuid), lastOf(two.uuid)));
      await rm(uvLog);
      await editConfig(m.workersDir, one.uuid, (c) => {
        c.package_dependencies = { a: { package: 'fn-dep-a', version: null }, b: { package: 'fn-dep-b', version: '>=1.0' } };
      });
      const run = await start(c1, one.uuid);
      expect(run.ok, run.error).toBe(true);
      const dataDir = path.join(m.workersDir, `worker_${one.uuid}`);
      const venvPy = path.join(dataDir, '.venv', 'bin', 'python');
      const startCalls = await readUvCalls(uvLog);
      expect(startCalls.map((c) => c.cwd)).toEqual(startCalls.map(() => dataDir));
      expect(startCalls.map((c) => c.argv.join(' '))).toEqual([
        `pip freeze --python ${venvPy}`,
        'add funcnodes funcnodes-core funcnodes-worker fn-dep-a fn-dep-b>=1.0',
        'lock --upgrade-package funcnodes --upgrade-package funcnodes-core --upgrade-package funcnodes-worker --upgrade-package fn-dep-a',
        'sync',
        // The versions after the update: a rollback target, marked once the start succeeds.
        `pip freeze --python ${venvPy}`,
      ]);
      await stop(c1, one.uuid);

      // The index unreachable (uv add fails, in the manager and in the worker alike): the manager's one
      // update fails softly and the launcher starts the worker without the CLI's own upgrade, which would
      // have run `uv add funcnodes` again and exited 1 (the stand-in CLI test above).
      await m.close();
      const offline = await startTestManager({ dir, env: offlinePip(wheelhouse, { FNWM_UV_LOG: uvLog, FNWM_UV_FAIL: 'add' }) });
      try {
        await rm(uvLog);
        const c = await offline.connect();
        const run = await start(c, one.uuid);
        expect(run.ok, run.error).toBe(true);
        const failed = progressOf(run.frames).filter((p) => p.status === 'error');
        expect(failed.map((p) => p.message)).toEqual([expect.stringMatching(/^Could not update the environment, starting with the installed versions: .*uv.* add/)]);
        expect((await readUvCalls(uvLog)).map((c) => c.argv[0])).toEqual(['pip', 'add']);
        await stop(c, one.uuid);
      } finally {
        await offline.close();
      }
    } finally {
      await m.close();
      await rm(wheelhouse, { recursive: true, force: true });
    }
  }, 240_000);
});

describe('throttleLines', () => {
  it('sends at most one line per interval, and always the latest one in the end', () => {
    vi.useFakeTimers();
    try {
      const sent: string[] = [];
      const lines = throttleLines((l) => sent.push(l), 50);
      for (let i = 0; i < 100; i++) lines.line(`line ${i}`);
      expect(sent).toEqual(['line 0']);
      vi.advanceTimersByTime(49);
      expect(sent).toEqual(['line 0']);
      vi.advanceTimersByTime(1);
      expect(sent).toEqual(['line 0', 'line 99']);
      // A line within the interval after that waits for it; one after a quiet interval goes out at once.
      lines.line('line 100');
      vi.advanceTimersByTime(49);
      expect(sent).toEqual(['line 0', 'line 99']);
      vi.advanceTimersByTime(1);
      expect(sent).toEqual(['line 0', 'line 99', 'line 100']);
      vi.advanceTimersByTime(50);
      lines.line('line 101');
      expect(sent.at(-1)).toBe('line 101');
      // stop() drops a waiting line.
      lines.line('line 102');
      lines.stop();
      vi.advanceTimersByTime(1000);
      expect(sent.at(-1)).toBe('line 101');
    } finally {
      vi.useRealTimers();
    }
  });
});
