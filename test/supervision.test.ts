/**
 * Supervision with the stand-in worker as real processes: the additive worker_states / worker_log
 * messages, crash detection, output capture, coalesced starts, cancelled starts, adoption, shutdown
 * policy (stop children, --keep-workers, hard kill of the manager).
 */
import { appendFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManagerClient } from '../src-main/core/hub/client.js';
import { isPidAlive, probeWorker } from '../src-main/core/supervisor/liveness.js';
import { createLogger } from '../src-main/core/logs/log.js';
import type { ManagerInfoMessage, WorkerConfig, WorkerRuntime, WorkerStatesMessage } from '../src-shared/protocol.js';
import { startManagerService } from '../src-main/core/service/service.js';
import { assertCliBuilt, cliEnv, exitWithin, startForeground } from './helpers/cli.js';
import {
  collect,
  createWorker,
  killWorkers,
  makeTempDir,
  messageOf,
  NO_RESTART,
  readReset,
  readUntil,
  settlesWithin,
  startTestManager,
  stateWhere,
  testEnv,
  waitFor,
  type TestManager,
  type TestManagerOptions,
} from './helpers/manager.js';
import { randomPortRange, spawnStandin, standinArgs } from './helpers/standin.js';

const managers: TestManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});

const FAST = { stopMs: 3000, killGraceMs: 500, connectMs: 10_000, startMs: 15_000 };

async function start(extra: TestManagerOptions = {}): Promise<TestManager> {
  const m = await startTestManager({ ...extra, timing: { ...FAST, ...extra.timing } });
  managers.push(m);
  return m;
}

/** Opts in to worker_states; returns the manager_info and the first full table. */
async function watchStates(client: ManagerClient): Promise<{ info: ManagerInfoMessage; full: WorkerStatesMessage }> {
  client.send({ type: 'watch_workers' });
  const info = await readUntil(client, 'manager_info');
  const full = await readUntil(client, 'worker_states');
  expect(full.found.full).toBe(true);
  return { info: info.found, full: full.found };
}

async function activate(client: ManagerClient, uuid: string): Promise<WorkerConfig> {
  client.send({ type: 'set_active', workerid: uuid });
  return (await readUntil(client, 'set_worker', 20_000)).found.data;
}

describe('worker_states (additive, opt-in)', () => {
  it('is sent only to connections that ask, and follows a start and a stop through every state', async () => {
    const m = await start();
    const plain = await m.connect();
    plain.send('worker_status');
    await readUntil(plain, 'worker_status');
    const watcher = await m.connect();
    const { info, full } = await watchStates(watcher);
    expect(info).toMatchObject({ type: 'manager_info', py: m.service.python, config_dir: m.service.settings.configDir, in_venv_default: false, pid: process.pid });
    expect(full.workers).toEqual([]);

    const uuid = await createWorker(watcher, m.workersDir, 'lively', { boot_delay: 0.6 });
    expect((await stateWhere(watcher, uuid, (r) => r.state === 'inactive')).pid).toBeNull();
    watcher.send({ type: 'set_active', workerid: uuid });
    const starting = await stateWhere(watcher, uuid, (r) => r.state === 'starting' && r.pid !== null);
    expect(starting.adopted).toBe(false);
    const active = await stateWhere(watcher, uuid, (r) => r.state === 'active');
    expect(active.pid).toBe(starting.pid);
    expect(active.started_at).toBeGreaterThan(Date.now() - 20_000);
    watcher.send({ type: 'stop_worker', workerid: uuid });
    await stateWhere(watcher, uuid, (r) => r.state === 'stopping');
    const stopped = await stateWhere(watcher, uuid, (r) => r.state === 'inactive');
    // Asked to stop: an exit, not a crash.
    expect(stopped.exit).toMatchObject({ code: 0, signal: null });
    expect(stopped.pid).toBeNull();

    // The plain client saw only the original's message types.
    const types = new Set((await collect(plain, 100)).map((t) => (JSON.parse(t) as { type: string }).type));
    expect(types.has('worker_status')).toBe(true);
    for (const extra of ['manager_info', 'worker_states', 'worker_log']) expect(types.has(extra)).toBe(false);
  });

  it('reports a crash with its exit code and last output, broadcast by the exit event, not by polling', async () => {
    // Pid polling once a minute: only the child's exit event can deliver the news in time.
    const m = await start({ supervisor: { pidCheckMs: 60_000 } });
    const client = await m.connect();
    client.send('worker_status');
    await readUntil(client, 'worker_status');
    await watchStates(client);
    const uuid = await createWorker(client, m.workersDir, 'fragile', { crash_after: 1.5 }, NO_RESTART);
    const data = await activate(client, uuid);
    const crashed = await stateWhere(client, uuid, (r) => r.state === 'crashed', 10_000);
    expect(crashed.exit).toMatchObject({ code: 3, signal: null });
    expect(crashed.last_lines.join('\n')).toContain('crash_after: exiting without cleanup');
    expect(isPidAlive(data.pid!)).toBe(false);

    // SIGKILL of a running child: worker_status lists it inactive well before any poll could.
    const victim = await createWorker(client, m.workersDir, 'victim', undefined, NO_RESTART);
    const again = await activate(client, victim);
    expect(m.service.supervisor.describe(victim)).toMatchObject({ state: 'active', exit: null });
    process.kill(again.pid!, 'SIGKILL');
    await client.until((f) => (f.kind === 'message' && f.message.type === 'worker_status' && f.message.inactive.some((w) => w.uuid === victim) ? true : undefined), 5000);
    expect(m.service.supervisor.describe(victim)).toMatchObject({ state: 'crashed', exit: { signal: 'SIGKILL' } });
    // A new start forgets the crash.
    await activate(client, uuid);
    expect(m.service.supervisor.describe(uuid)).toMatchObject({ state: 'active', exit: null, error: null });
  });

  it('an adopted worker that dies goes straight from active to inactive', async () => {
    const m = await start({ supervisor: { pidCheckMs: 100 } });
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'outside');
    await watchStates(client);
    const outside = spawnStandin(standinArgs(m.dir, uuid), m.env);
    try {
      await stateWhere(client, uuid, (r) => r.state === 'active' && r.adopted);
      await collect(client, 300); // whatever else its start caused
      outside.child.kill('SIGKILL');
      const seen: WorkerRuntime[] = [];
      await stateWhere(client, uuid, (r) => {
        seen.push(r);
        return r.state === 'inactive';
      });
      expect(seen.map((r) => r.state)).toEqual(['inactive']);
    } finally {
      outside.child.kill('SIGKILL');
    }
  });
});

describe('adopted workers\' logs', () => {
  it('rotate like our children\'s while nobody watches them', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'adopted-log');
    client.close();
    const outside = spawnStandin(standinArgs(m.dir, uuid), m.env);
    try {
      await waitFor(() => m.service.supervisor.describe(uuid)?.adopted === true, 15_000, 'the adoption');
      const file = path.join(m.workersDir, `worker_${uuid}`, 'worker.log');
      // Its output, as a worker a previous manager started writes it (appended; 6 MiB > the 5 MiB rotation size).
      await appendFile(file, `${'adopted output line\n'.repeat(50_000)}`.repeat(7));
      // The copy to .1 comes first, the truncate of the live file after it.
      const rotated = async () => (await stat(file)).size < 5 * 1024 * 1024 && (await stat(`${file}.1`).then(() => true, () => false));
      await waitFor(rotated, 15_000, 'worker.log to be rotated');
    } finally {
      outside.child.kill('SIGKILL');
    }
  });
});

describe('watch requests that wait for the first scan', () => {
  it('are dropped when their socket closed meanwhile (nothing is left watching for a gone client)', async () => {
    const dir = await makeTempDir();
    const workersDir = path.join(dir, 'workers');
    await mkdir(workersDir, { recursive: true });
    // A worker whose pid (ours) is alive: the first scan probes it, and the probe answers only when let go.
    await writeFile(path.join(workersDir, 'worker_slow.json'), JSON.stringify({ type: 'WSWorker', uuid: 'slow', name: 'slow', pid: process.pid, host: '127.0.0.1', port: 1 }));
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    const service = await startManagerService({
      host: '127.0.0.1',
      port: 0,
      dir,
      env: testEnv(randomPortRange()),
      log: createLogger('debug', () => undefined),
      supervisor: { probe: () => gate.then(() => 'unreachable' as const) },
    });
    try {
      const gone = await ManagerClient.connect(service.url);
      gone.send({ type: 'watch_workers' });
      gone.close();
      await waitFor(() => gone.closed !== undefined, 5000, 'the socket to close');
      await new Promise((resolve) => setTimeout(resolve, 200)); // the manager's side of the close
      letGo();
      await service.ready;
      const deltas: unknown[] = [];
      service.supervisor.on('delta', (delta) => deltas.push(delta));
      // A change that every watcher would hear about.
      const other = await ManagerClient.connect(service.url);
      await createWorker(other, workersDir, 'news');
      other.close();
      await service.supervisor.settled();
      expect(deltas).toEqual([]);
    } finally {
      await service.stop('test done');
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('output capture', () => {
  it('writes each child output to <data dir>/worker.log and streams it to log watchers', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'chatty');
    await activate(client, uuid);
    client.send({ type: 'watch_logs', workerid: uuid, lines: 200 });
    const initial = await readUntil(client, 'worker_log');
    expect(initial.found.initial).toBe(true);
    const file = path.join(m.workersDir, `worker_${uuid}`, 'worker.log');
    await waitFor(async () => (await readFile(file, 'utf8')).includes('Server running on ws://'), 5000, 'the worker to log that it listens');
    const text = await readFile(file, 'utf8');
    expect(text).toContain(`--uuid ${uuid} start`);
    // A stop makes the worker say so; the watcher gets those lines live.
    client.send({ type: 'stop_worker', workerid: uuid });
    const live = await client.until((f) => {
      if (f.kind !== 'message' || f.message.type !== 'worker_log' || f.message.initial) return undefined;
      return f.message.lines.some((l) => /stop/i.test(l)) ? f.message : undefined;
    }, 10_000);
    expect(live.uuid).toBe(uuid);
    // An unknown worker gets an error, not a silent subscription.
    client.send({ type: 'watch_logs', workerid: 'nobody', lines: 10 });
    expect((await readUntil(client, 'error')).found.message).toBe('Worker nobody not found');
  });
});

describe('deadlines from config.json', () => {
  it('worker_manager.stop_timeout bounds the wait for a worker that ignores stop_worker', async () => {
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: { stop_timeout: 0.3 } }));
    const m = await startTestManager({ dir, timing: { killGraceMs: 500 } });
    managers.push(m);
    try {
      const client = await m.connect();
      const uuid = await createWorker(client, m.workersDir, 'stubborn', { ignore_stop: true });
      const { pid } = await activate(client, uuid);
      await readUntil(client, 'progress'); // set_active's closing reset
      client.send({ type: 'stop_worker', workerid: uuid });
      await readReset(client);
      // 0.3 s for the stop command, then SIGTERM (which it also ignores), 0.5 s, SIGKILL: the log names the 0.3 s.
      expect(isPidAlive(pid!), m.logs.join('\n')).toBe(false);
      expect(m.logs.some((l) => l.includes('still running 0.3 s after the stop command'))).toBe(true);
    } finally {
      await killWorkers(m.workersDir);
    }
  });
});

describe('concurrency', () => {
  it('coalesces concurrent set_active calls into one process whose progress and result reach every requester', async () => {
    const m = await start();
    const a = await m.connect();
    const b = await m.connect();
    const uuid = await createWorker(a, m.workersDir, 'once', { boot_delay: 0.5 });
    a.send({ type: 'set_active', workerid: uuid });
    b.send({ type: 'set_active', workerid: uuid });
    const [ra, rb] = await Promise.all([readUntil(a, 'set_worker', 20_000), readUntil(b, 'set_worker', 20_000)]);
    expect(ra.found.data.pid).toBe(rb.found.data.pid);
    expect(m.logs.filter((l) => l.includes(`Spawned worker ${uuid}`))).toHaveLength(1);
    const texts = (frames: typeof ra.before) => frames.flatMap((f) => (f.kind === 'message' && f.message.type === 'progress' ? [f.message.message] : []));
    expect(texts(rb.before)).toContain('Contacting worker.');
  });

  it('a stop during a start ends the start at once and the process it spawned', async () => {
    const m = await start({ timing: { connectMs: 60_000, startMs: 60_000 } });
    const client = await m.connect();
    const stopper = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'mute', { never_bind: true });
    await watchStates(client);
    client.send({ type: 'set_active', workerid: uuid });
    const starting = await stateWhere(client, uuid, (r) => r.state === 'starting' && r.pid !== null);
    stopper.send({ type: 'stop_worker', workerid: uuid });
    expect((await readUntil(client, 'error', 10_000)).found.message).toBe(
      `Could not activate worker with id ${uuid}. A stop was requested while it was starting.`,
    );
    await readUntil(stopper, 'progress'); // Stopping worker.
    expect((await readUntil(stopper, 'progress')).found.message).toBe('');
    expect(isPidAlive(starting.pid!)).toBe(false);
  });

  it('a stop that comes while the child is being spawned still ends the start at once', async () => {
    const m = await start({ timing: { connectMs: 60_000, startMs: 60_000 } });
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'mute', { never_bind: true });
    await watchStates(client);
    // The delta of entering `starting` is published before the spawn effect runs: the stop lands while
    // the child is being spawned (no pid yet), as a stop_worker can.
    let stopped: Promise<void> | undefined;
    m.service.supervisor.on('delta', (delta) => {
      const runtime = delta.workers.find((w) => w.uuid === uuid && w.phase === 'starting' && w.pid === null);
      if (runtime === undefined || stopped !== undefined) return;
      stopped = m.service.supervisor.stopWorker(uuid);
    });
    client.send({ type: 'set_active', workerid: uuid });
    expect((await readUntil(client, 'error', 10_000)).found.message).toBe(
      `Could not activate worker with id ${uuid}. A stop was requested while it was starting.`,
    );
    await stopped;
    const spawned = m.logs.find((l) => l.includes(`Spawned worker ${uuid}`));
    expect(spawned).toBeDefined();
    const spawnedPid = Number(/\(pid (\d+)\)/.exec(spawned!)![1]);
    expect(isPidAlive(spawnedPid)).toBe(false);
  });
});

describe('adoption and shutdown', () => {
  it('stops the workers it started when it stops, in parallel', async () => {
    // Workers that ignore stop are given up on (SIGTERM, which they ignore too), then killed.
    const m = await start({ timing: { stopMs: 1000, killGraceMs: 1000 } });
    const client = await m.connect();
    const uuids = [];
    for (const name of ['one', 'two', 'three']) uuids.push(await createWorker(client, m.workersDir, name, { ignore_stop: true }));
    const pids = [];
    for (const uuid of uuids) pids.push((await activate(client, uuid)).pid!);
    await m.service.stop('test');
    // In parallel, each was given up on before any exited; one after another, the first exits before the second is asked.
    const line = (uuid: string, text: RegExp) => m.logs.findIndex((l) => l.includes(uuid) && text.test(l));
    const givenUp = uuids.map((uuid) => line(uuid, /still running 1 s after the stop command/));
    const exited = uuids.map((uuid) => line(uuid, /\) exited \(/));
    expect([...givenUp, ...exited].every((i) => i >= 0), m.logs.join('\n')).toBe(true);
    expect(Math.max(...givenUp), 'stopped one after another').toBeLessThan(Math.min(...exited));
    for (const pid of pids) expect(isPidAlive(pid)).toBe(false);
    for (const uuid of uuids) await expect(stat(path.join(m.workersDir, `worker_${uuid}.p`))).rejects.toThrow();
  });

  it('a shutdown that begins while a start reads its JSON cancels that start and waits for it', async () => {
    const m = await start({ timing: { connectMs: 60_000, startMs: 60_000 } });
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'late');
    await m.service.supervisor.settled();
    // The stop arrives during the start's first await, before it has spawned anything.
    let stopped: Promise<void> | undefined;
    const read = m.service.registry.read.bind(m.service.registry);
    vi.spyOn(m.service.registry, 'read').mockImplementationOnce(async (id) => {
      const result = await read(id);
      stopped = m.service.stop('test');
      return result;
    });
    let settled = false;
    const activation = m.service.request({ type: 'set_active', workerid: uuid }, { send: () => undefined, subscribed: false });
    void activation.finally(() => (settled = true));
    await waitFor(() => stopped !== undefined, 5000, 'the start to read its JSON');
    await stopped;
    expect(settled).toBe(true);
    expect(m.logs.filter((l) => l.includes(`Spawned worker ${uuid}`))).toEqual([]);
  });

  it('--keep-workers still cancels starts in progress, and awaits them, before it stops', async () => {
    const m = await start({ keepWorkers: true, timing: { connectMs: 60_000, startMs: 60_000 } });
    const client = await m.connect();
    const kept = await createWorker(client, m.workersDir, 'kept');
    const keptPid = (await activate(client, kept)).pid!;
    const mute = await createWorker(client, m.workersDir, 'mute', { never_bind: true });
    await watchStates(client);
    client.send({ type: 'set_active', workerid: mute });
    const starting = await stateWhere(client, mute, (r) => r.state === 'starting' && r.pid !== null);
    await m.service.stop('test'); // within the test's 30 s, so not after the start's 60 s timeout
    // The cancelled start has ended its child; the running worker is kept.
    expect(isPidAlive(starting.pid!)).toBe(false);
    expect(isPidAlive(keptPid)).toBe(true);
  });

  it('--keep-workers leaves them running; the next manager adopts them, stops them by pid, and sees their exit', async () => {
    const dir = await makeTempDir();
    try {
      const first = await start({ dir, keepWorkers: true });
      const client = await first.connect();
      const uuid = await createWorker(client, first.workersDir, 'survivor');
      const { pid } = await activate(client, uuid);
      await first.service.stop('test');
      expect(isPidAlive(pid!)).toBe(true);

      const second = await start({ dir, supervisor: { pidCheckMs: 200 } });
      const watcher = await second.connect();
      const { full } = await watchStates(watcher);
      expect(full.workers.find((w) => w.uuid === uuid)).toMatchObject({ state: 'active', adopted: true, pid });
      // Its output still goes to the file, so the new manager can show it.
      watcher.send({ type: 'watch_logs', workerid: uuid, lines: 50 });
      expect((await readUntil(watcher, 'worker_log')).found.lines.join('\n')).toContain(`--uuid ${uuid} start`);
      watcher.send({ type: 'stop_worker', workerid: uuid });
      await stateWhere(watcher, uuid, (r) => r.state === 'inactive');
      expect(isPidAlive(pid!)).toBe(false);

      // An adopted worker that dies is noticed by pid polling.
      const outside = spawnStandin(standinArgs(dir, uuid), second.env);
      await stateWhere(watcher, uuid, (r) => r.state === 'active' && r.adopted);
      outside.child.kill('SIGKILL');
      await stateWhere(watcher, uuid, (r) => r.state === 'inactive', 3000);
    } finally {
      await killWorkers(path.join(dir, 'workers'));
    }
  });

  it('never stops a process that does not answer with the uuid and whose command line does not name it (its pid may be a stranger)', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'impostor', { wrong_uuid: 'someone-else' });
    // Started by name: nothing in its command line names the uuid, and it answers with another one.
    const outside = spawnStandin(['-m', 'funcnodes', '--dir', m.dir, 'worker', '--name', 'impostor', 'start'], m.env);
    try {
      await waitFor(() => m.service.supervisor.find(uuid)?.state.kind === 'unverified', 5000, 'its pid to be seen');
      client.send({ type: 'stop_worker', workerid: uuid });
      const { found } = await readUntil(client, 'error', 10_000);
      expect(found.message).toContain('does not answer with its uuid');
      expect(isPidAlive(outside.child.pid!)).toBe(true);
    } finally {
      outside.child.kill('SIGKILL');
    }
  });

  it('stops an adopted worker whose .p was caught mid-rewrite (no pid for a moment)', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'rewriting');
    const outside = spawnStandin(standinArgs(m.dir, uuid), m.env);
    try {
      await waitFor(() => m.service.supervisor.find(uuid)?.active === true, 10_000, 'it to be active');
      // What a read in the middle of the worker's rewrite sees: an empty .p.
      await writeFile(path.join(m.workersDir, `worker_${uuid}.p`), '');
      await waitFor(() => m.service.supervisor.find(uuid)?.config.pid === null, 5000, 'the empty .p to be read');
      client.send({ type: 'stop_worker', workerid: uuid });
      const frames = await readReset(client);
      expect(frames.map(messageOf).filter((f) => f?.type === 'error')).toEqual([]);
      expect(await settlesWithin(outside.exited, 5000)).toBe(true);
    } finally {
      outside.child.kill('SIGKILL');
    }
  });

  it('a hard-killed manager leaves its workers running, and the next manager adopts them', async () => {
    assertCliBuilt();
    const dir = await makeTempDir();
    const env = cliEnv(randomPortRange(), { FUNCNODES_WORKER_IN_VENV: '0' });
    try {
      const fg = await startForeground(['--dir', dir, '--host', '127.0.0.1', '--port', '0'], env);
      const client = await ManagerClient.connect(fg.url);
      const uuid = await createWorker(client, path.join(dir, 'workers'), 'orphan-to-be');
      const { pid } = await activate(client, uuid);
      client.close();
      fg.child.kill('SIGKILL');
      await exitWithin(fg.exited, 5000);
      expect(isPidAlive(pid!)).toBe(true);

      const next = await start({ dir });
      const watcher = await next.connect();
      const { full } = await watchStates(watcher);
      expect(full.workers.find((w) => w.uuid === uuid)).toMatchObject({ state: 'active', adopted: true, pid });
      // The worker kept working: it still answers (no broken pipe killed it).
      expect(await probeWorker(next.service.supervisor.find(uuid)!.config)).toBe('match');
    } finally {
      await killWorkers(path.join(dir, 'workers'));
    }
  });
});
