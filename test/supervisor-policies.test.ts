/**
 * Restart policy, backoff, crash loop and autostart (additive), through the real hub with the stand-in
 * worker as real processes.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManagerClient } from '../src-main/core/hub/client.js';
import { isPidAlive } from '../src-main/core/supervisor/liveness.js';
import WebSocket from 'ws';
import { workerUrl, type WorkerConfig } from '../src-shared/protocol.js';
import {
  createWorker,
  killWorkers,
  makeTempDir,
  readReset,
  readUntil,
  startTestManager,
  stateWhere,
  waitFor,
  type TestManager,
  type TestManagerOptions,
} from './helpers/manager.js';

const managers: TestManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});

async function start(options: TestManagerOptions = {}): Promise<TestManager> {
  const m = await startTestManager(options);
  managers.push(m);
  return m;
}

async function watch(client: ManagerClient): Promise<void> {
  client.send({ type: 'watch_workers' });
  await readUntil(client, 'worker_states');
}

async function activate(client: ManagerClient, uuid: string): Promise<number> {
  client.send({ type: 'set_active', workerid: uuid });
  const { found } = await readUntil(client, 'set_worker', 20_000);
  await readReset(client);
  return found.data.pid!;
}

/** What the FuncNodes web UI does to stop a worker: `stop_worker` to the worker itself, not to the manager. */
function stopFromWebUi(config: WorkerConfig): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(workerUrl(config)!);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'cmd', cmd: 'stop_worker', kwargs: {}, id: 'web-ui' }), () => resolve()));
    ws.on('error', reject);
  });
}

const spawns = (m: TestManager, uuid: string) => m.logs.filter((l) => l.includes(`Spawned worker ${uuid}`)).length;

describe('restart policy', () => {
  it('on-failure (the default) restarts a crashed worker after a 1 s backoff', async () => {
    const m = await start();
    const client = await m.connect();
    await watch(client);
    const uuid = await createWorker(client, m.workersDir, 'phoenix', { crash_after: 0.5 });
    const first = await activate(client, uuid);
    const backoff = await stateWhere(client, uuid, (r) => r.phase === 'backoff');
    expect(backoff).toMatchObject({ state: 'crashed', restart: 'on-failure', exit: { code: 3, signal: null } });
    expect(backoff.restart_at! - backoff.exit!.at).toBe(1000);
    const again = await stateWhere(client, uuid, (r) => r.state === 'active');
    expect(again.pid).not.toBe(first);
    expect(again.adopted).toBe(false);
    expect(isPidAlive(first)).toBe(false);
  });

  it('stops restarting after 5 unexpected exits within 60 s and says so', async () => {
    const m = await start({ timing: { backoffBaseMs: 100, backoffMaxMs: 400 } });
    const client = await m.connect();
    await watch(client);
    const uuid = await createWorker(client, m.workersDir, 'looping', { crash_after: 0.2 });
    await activate(client, uuid);
    const crashed = await stateWhere(client, uuid, (r) => r.phase === 'crashed', 60_000);
    expect(crashed.error).toBe('crash loop: 5 unexpected exits within 60 s (last: code 3); not restarting');
    expect(spawns(m, uuid)).toBe(5);
    // A start by hand is a fresh count: it runs again.
    await activate(client, uuid);
  });

  it('never leaves a crashed worker down', async () => {
    const m = await start();
    const client = await m.connect();
    await watch(client);
    const uuid = await createWorker(client, m.workersDir, 'once', { crash_after: 0.5 }, { workermanager: { restart: 'never' } });
    await activate(client, uuid);
    const crashed = await stateWhere(client, uuid, (r) => r.state === 'crashed');
    expect(crashed).toMatchObject({ phase: 'crashed', restart: 'never', restart_at: null });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // longer than the first backoff: nothing restarts
    expect(spawns(m, uuid)).toBe(1);
  });

  it('always still honours a stop sent to the worker itself (the FuncNodes web UI): exit code 0 is no failure', async () => {
    const m = await start();
    const client = await m.connect();
    await watch(client);
    const uuid = await createWorker(client, m.workersDir, 'web-ui');
    client.send({ type: 'set_worker_options', workerid: uuid, restart: 'always' });
    expect((await readUntil(client, 'worker_options')).found).toEqual({ type: 'worker_options', uuid, restart: 'always', autostart: 'never' });
    const pid = await activate(client, uuid);
    const config = m.service.supervisor.find(uuid)!.config;
    await stopFromWebUi(config);
    const stopped = await stateWhere(client, uuid, (r) => r.state === 'inactive');
    expect(stopped.exit).toMatchObject({ code: 0, signal: null });
    expect(isPidAlive(pid)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // longer than the first backoff: nothing restarts
    expect(spawns(m, uuid)).toBe(1);
    expect(m.service.supervisor.describe(uuid)?.state).toBe('inactive');
  });

  it('set_worker_options keeps the other keys of the JSON, and refuses bad values', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'opts', { boot_delay: 0.1 });
    // `true` means what it means to FuncNodes (normalize_autostart_policy): unless-stopped.
    client.send({ type: 'set_worker_options', workerid: uuid, autostart: true });
    expect((await readUntil(client, 'worker_options')).found).toEqual({ type: 'worker_options', uuid, restart: 'on-failure', autostart: 'unless-stopped' });
    const json = JSON.parse(await readFile(path.join(m.workersDir, `worker_${uuid}.json`), 'utf8')) as Record<string, unknown>;
    // Autostart is FuncNodes' own top-level key; the restart policy is ours, under `workermanager`.
    expect(json).toMatchObject({ uuid, name: 'opts', standin: { boot_delay: 0.1 }, autostart: 'unless-stopped', workermanager: { restart: 'on-failure' } });
    expect(json.workermanager).toEqual({ restart: 'on-failure' });
    client.send({ type: 'set_worker_options', workerid: uuid, autostart: 'sometimes' });
    expect((await readUntil(client, 'error')).found.message).toBe(
      'Invalid set_worker_options request: "autostart" must be one of never, always, unless-stopped (or true, false), got "sometimes".',
    );
    client.send({ type: 'set_worker_options', workerid: uuid, restart: 'sometimes' });
    expect((await readUntil(client, 'error')).found.message).toBe('Invalid set_worker_options request: "restart" must be one of never, on-failure, always, got "sometimes".');
    client.send({ type: 'set_worker_options', workerid: 'nobody', restart: 'never' });
    expect((await readUntil(client, 'error')).found.message).toBe('Worker nobody not found');
  });
});

describe('autostart', () => {
  it('starts the workers marked autostart when the manager starts, after adopting those that run', async () => {
    const dir = await makeTempDir();
    try {
      const first = await start({ dir, keepWorkers: true });
      const client = await first.connect();
      // Ports of their own: a second stand-in finding the first one's port taken on 127.0.0.1 may bind it on ::1.
      const cold = await createWorker(client, first.workersDir, 'cold', undefined, { port: first.ports.start + 10 });
      const warm = await createWorker(client, first.workersDir, 'warm', undefined, { port: first.ports.start + 20 });
      // One as FuncNodes' own CLI writes it (`funcnodes worker new --autostart`), one set through our hub.
      const coldJson = path.join(first.workersDir, `worker_${cold}.json`);
      await writeFile(coldJson, JSON.stringify({ ...(JSON.parse(await readFile(coldJson, 'utf8')) as object), autostart: 'unless-stopped' }));
      client.send({ type: 'set_worker_options', workerid: warm, autostart: 'always' });
      await readUntil(client, 'worker_options');
      const warmPid = await activate(client, warm);
      await first.service.stop('test');

      const second = await start({ dir });
      // Autostart runs after the first scan: it is under way or done when the manager is ready.
      await waitFor(() => second.service.supervisor.find(cold)?.active === true, 20_000, 'the autostarted worker to run');
      expect(second.service.supervisor.describe(cold)).toMatchObject({ state: 'active', adopted: false, autostart: 'unless-stopped' });
      // The one still running was adopted, not spawned again.
      expect(second.service.supervisor.describe(warm)).toMatchObject({ state: 'active', adopted: true, pid: warmPid });
      expect(spawns(second, warm)).toBe(0);
      expect(spawns(second, cold)).toBe(1);
    } finally {
      await killWorkers(path.join(dir, 'workers'));
    }
  });
});
