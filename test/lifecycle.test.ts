/**
 * Liveness and the worker lifecycle with the stand-in worker as a real child process: status from files
 * and probes, set_active, stop, restart and delete of running workers, the stand-in's failure modes, and
 * ending a process tree.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isPidAlive } from '../src-main/core/supervisor/liveness.js';
import { terminateTree } from '../src-main/core/supervisor/process-tree.js';
import type { ManagerClient } from '../src-main/core/hub/client.js';
import type { WorkerConfig, WorkerStatusMessage } from '../src-shared/protocol.js';
import { collect, createWorker as createWorkerIn, messageOf, readReset, readUntil, startTestManager, waitFor, type TestManager } from './helpers/manager.js';
import { spawnStandin, standinArgs, type StandinOptions } from './helpers/standin.js';

let manager: TestManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

const FAST = { stopMs: 3000, killGraceMs: 500, connectMs: 10_000, startMs: 15_000 };

async function start(extra: Parameters<typeof startTestManager>[0] = {}): Promise<TestManager> {
  manager = await startTestManager({ timing: FAST, ...extra });
  return manager;
}

async function subscribed(m: TestManager): Promise<ManagerClient> {
  const client = await m.connect();
  client.send('worker_status');
  await readUntil(client, 'worker_status');
  return client;
}

const createWorker = (client: ManagerClient, name: string, standin?: StandinOptions) => createWorkerIn(client, manager!.workersDir, name, standin);

/** Waits for a worker_status broadcast in which `uuid` has the wanted state. */
async function statusWhere(client: ManagerClient, uuid: string, state: 'active' | 'inactive', timeoutMs = 10_000): Promise<WorkerStatusMessage> {
  return client.until((frame) => {
    if (frame.kind !== 'message' || frame.message.type !== 'worker_status') return undefined;
    return frame.message[state].some((w) => w.uuid === uuid) ? frame.message : undefined;
  }, timeoutMs);
}

/** set_active up to its `set_worker`, then its closing reset (which must follow). */
async function activate(client: ManagerClient, uuid: string) {
  client.send({ type: 'set_active', workerid: uuid });
  const result = await readUntil(client, 'set_worker', 20_000);
  const reset = await readUntil(client, 'progress');
  expect(reset.found).toMatchObject({ message: '', blocking: false });
  return result;
}

const progressTexts = (frames: Awaited<ReturnType<typeof readUntil>>['before']) =>
  frames.flatMap((f) => (f.kind === 'message' && f.message.type === 'progress' ? [f.message.message] : []));

describe('set_active', () => {
  it('starts a worker created a moment ago, with the original message sequence', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, 'demo');
    await collect(client, 50); // the reset and the status reply of new_worker
    const { found, before } = await activate(client, uuid);
    const texts = progressTexts(before);
    expect(texts.slice(0, 3)).toEqual(['Activating worker.', 'Starting worker.', 'Contacting worker.']);
    // Runstates are relayed once each, never the stale `removed` and never a repeat.
    const runstates = texts.slice(3);
    expect(new Set(runstates).size).toBe(runstates.length);
    for (const text of runstates) expect(['starting - Loading packages', 'starting - Loading config', 'starting - Loading nodespace', 'running']).toContain(text);
    expect(before.every((f) => f.kind === 'message' && f.message.type === 'progress')).toBe(true);
    const onDisk = JSON.parse(await readFile(path.join(m.workersDir, `worker_${uuid}.json`), 'utf8')) as WorkerConfig;
    expect(found.data).toEqual(onDisk);
    expect(found.data.port).toBeGreaterThanOrEqual(m.ports.start);
    expect(isPidAlive(found.data.pid!)).toBe(true);
    // An active worker is contacted, not started again.
    const again = await activate(client, uuid);
    expect(progressTexts(again.before)).toEqual(['Activating worker.', 'Contacting worker.']);
    expect(again.found.data.pid).toBe(found.data.pid);
  });

  it('gives a browser-reachable host for a wildcard bind, keeping the file as is', async () => {
    const m = await start();
    const client = await m.connect();
    client.send({ type: 'new_worker', kwargs: { name: 'wild', host: '0.0.0.0', in_venv: false } });
    const { found: created } = await readUntil(client, 'worker_created');
    const { found } = await activate(client, created.uuid);
    expect(found.data.host).toBe('127.0.0.1');
    const onDisk = JSON.parse(await readFile(path.join(m.workersDir, `worker_${created.uuid}.json`), 'utf8')) as WorkerConfig;
    expect(onDisk.host).toBe('0.0.0.0');
  });

  it('fails at once, with the original error and a reset, when the worker process dies during start', async () => {
    const m = await start({ timing: { ...FAST, connectMs: 60_000, startMs: 60_000 } });
    const client = await m.connect();
    const uuid = await createWorker(client, 'dies', { exit_at: 'start', exit_code: 4 });
    await collect(client, 50);
    client.send({ type: 'set_active', workerid: uuid });
    // Within 10 s, so not by the 60 s timeouts: by the child's exit.
    const { found } = await readUntil(client, 'error', 10_000);
    // The original's sentence, then why: the exit and the worker's last words.
    expect(found.message).toBe(
      `Could not activate worker with id ${uuid}. The worker process exited during start (code 4). Its last output: standin: exit_at=start, exiting with code 4`,
    );
    expect(JSON.parse(await client.nextText())).toMatchObject({ type: 'progress', message: '' });
  });

  it('gives up on a worker that never answers and stops the process it spawned', async () => {
    const m = await start({ timing: { ...FAST, startMs: 2500 } });
    const client = await m.connect();
    const uuid = await createWorker(client, 'mute', { never_bind: true });
    await collect(client, 50);
    client.send({ type: 'set_active', workerid: uuid });
    const { message } = (await readUntil(client, 'error', 15_000)).found;
    // The deadline that passed, and the last lines written before the manager ended the worker.
    expect(message).toMatch(new RegExp(`^Could not activate worker with id ${uuid}\\. It did not answer within the start deadline \\(2\\.5 s\\)\\. Its last output: .*never_bind: not opening the WebSocket server$`));
    await waitFor(async () => (await readFile(path.join(m.workersDir, `worker_${uuid}.p`), 'utf8').catch(() => '')) === '', 5000, 'the .p to go');
  });
});

describe('status from files and processes', () => {
  it('sees a worker started outside the manager (the Python CLI) and its SIGKILL', async () => {
    const m = await start();
    const client = await subscribed(m);
    const uuid = await createWorker(client, 'outside');
    const worker = spawnStandin(standinArgs(m.dir, uuid), m.env);
    try {
      const active = await statusWhere(client, uuid, 'active');
      expect(active.active.find((w) => w.uuid === uuid)?.pid).toBe(worker.child.pid);
      worker.child.kill('SIGKILL');
      await statusWhere(client, uuid, 'inactive');
      // The stale .p would block the next start (spec §2.5): it is removed.
      await waitFor(() => stat(path.join(m.workersDir, `worker_${uuid}.p`)).then(() => false, () => true), 5000, 'the stale .p to go');
    } finally {
      worker.child.kill('SIGKILL');
    }
  });

  it('keeps a busy worker active despite broadcast noise, and a worker with the wrong uuid inactive', async () => {
    const m = await start();
    const client = await subscribed(m);
    const noisy = await createWorker(client, 'noisy', { noise: 20 });
    const impostor = await createWorker(client, 'impostor', { wrong_uuid: 'someone-else' });
    const workers = [noisy, impostor].map((uuid) => spawnStandin(standinArgs(m.dir, uuid), m.env as NodeJS.ProcessEnv));
    try {
      await statusWhere(client, noisy, 'active');
      await waitFor(async () => (await stat(path.join(m.workersDir, `worker_${impostor}.p`)).catch(() => undefined)) !== undefined, 5000, 'impostor .p');
      await m.service.supervisor.settled();
      expect(m.service.supervisor.find(impostor)?.active).toBe(false);
      // Alive but not answering: its .p is kept (spec §11.10).
      await stat(path.join(m.workersDir, `worker_${impostor}.p`));
    } finally {
      for (const w of workers) w.child.kill('SIGKILL');
    }
  });
});

describe('stop, restart, delete', () => {
  it('stop_worker ends when the process has exited; the next status lists it inactive', async () => {
    const m = await start();
    const client = await subscribed(m);
    const uuid = await createWorker(client, 'stopper');
    const { found } = await activate(client, uuid);
    client.send({ type: 'stop_worker', workerid: uuid });
    const seen = (await readReset(client)).flatMap((f) => {
      const msg = messageOf(f);
      if (msg?.type === 'worker_status') return [msg.inactive.some((w) => w.uuid === uuid) ? 'inactive' : 'active'];
      return msg?.type === 'progress' ? [msg.message] : [];
    });
    expect(isPidAlive(found.data.pid!)).toBe(false);
    // By the reset, the status already says so. A broadcast of the start's last file changes (the worker's
    // own JSON rewrite, read after set_worker went out) may still come first, under load.
    expect(seen[0]).toBe('Stopping worker.');
    expect(seen.at(-1)).toBe('inactive');
    expect(seen.slice(1, -1).every((s) => s === 'active'), seen.join(', ')).toBe(true);
  });

  it('terminates a worker that ignores stop_worker after the deadline', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, 'stubborn', { ignore_stop: true });
    const { found } = await activate(client, uuid);
    client.send({ type: 'stop_worker', workerid: uuid });
    expect((await readUntil(client, 'progress', 20_000)).found.message).toBe('Stopping worker.');
    expect(await readReset(client, 20_000)).toEqual([]);
    expect(isPidAlive(found.data.pid!)).toBe(false);
    expect(m.logs.some((l) => l.includes(`SIGTERM to pid ${found.data.pid} (still running 3 s after the stop command)`))).toBe(true);
  });

  it('restart_worker restarts a running worker (new process) and starts a stopped one', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, 'again');
    const first = await activate(client, uuid);
    client.send({ type: 'restart_worker', workerid: uuid });
    const second = await readUntil(client, 'set_worker', 20_000);
    expect(progressTexts(second.before).slice(0, 4)).toEqual(['Stopping worker.', '', 'Activating worker.', 'Starting worker.']);
    expect(second.found.data.pid).not.toBe(first.found.data.pid);
    expect(isPidAlive(first.found.data.pid!)).toBe(false);
    expect(isPidAlive(second.found.data.pid!)).toBe(true);
    await readUntil(client, 'progress'); // the reset
    client.send({ type: 'stop_worker', workerid: uuid });
    await readReset(client);
    expect(isPidAlive(second.found.data.pid!)).toBe(false);
    client.send({ type: 'restart_worker', workerid: uuid });
    const third = await readUntil(client, 'set_worker', 20_000);
    expect(progressTexts(third.before).slice(0, 4)).toEqual(['Stopping worker.', '', 'Activating worker.', 'Starting worker.']);
    expect(isPidAlive(third.found.data.pid!)).toBe(true);
  });

  it('delete_worker stops a running worker first, then removes everything', async () => {
    const m = await start();
    const client = await m.connect();
    const uuid = await createWorker(client, 'doomed');
    const { found } = await activate(client, uuid);
    client.send({ type: 'delete_worker', workerid: uuid });
    const { before } = await readUntil(client, 'worker_deleted', 20_000);
    expect(progressTexts(before)).toEqual(['Deleting worker...', 'Stopping worker.', '', 'Removing files...', 'Worker deleted.']);
    expect(isPidAlive(found.data.pid!)).toBe(false);
    await expect(stat(path.join(m.workersDir, `worker_${uuid}`))).rejects.toThrow();
    await expect(stat(path.join(m.workersDir, `worker_${uuid}.json`))).rejects.toThrow();
  });

  it('delete_worker during a start ends the start at once and removes everything', async () => {
    const m = await start({ timing: { ...FAST, connectMs: 60_000, startMs: 60_000 } });
    const client = await m.connect();
    const deleter = await m.connect();
    const uuid = await createWorker(client, 'short-lived', { boot_delay: 20 });
    await collect(client, 50);
    client.send({ type: 'set_active', workerid: uuid });
    await client.until((f) => (f.kind === 'message' && f.message.type === 'progress' && f.message.message === 'Contacting worker.' ? true : undefined), 10_000);
    deleter.send({ type: 'delete_worker', workerid: uuid });
    await readUntil(deleter, 'worker_deleted', 10_000);
    expect((await readUntil(client, 'error', 5000)).found.message).toBe(`Could not activate worker with id ${uuid}. The worker was deleted while it was starting.`);
    const left = (await readdir(m.workersDir)).filter((name) => name.includes(uuid));
    expect(left).toEqual([]);
  });
});

describe('process trees', () => {
  it('terminateTree ends a child that ignores SIGTERM even when its group leader exits at once', async () => {
    // A detached leader (as workers are spawned) whose child ignores SIGTERM; the leader prints the child's pid.
    const childCode = "process.on('SIGTERM', () => undefined); console.log('ready'); setInterval(() => undefined, 1000);";
    const leaderCode = `
      const child = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(childCode)}], { stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout.once('data', () => console.log(child.pid));
      setInterval(() => undefined, 1000);`;
    const leader = spawn(process.execPath, ['-e', leaderCode], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const childPid = await new Promise<number>((resolve) => leader.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim()))));
      expect(isPidAlive(childPid)).toBe(true);
      expect(await terminateTree(leader.pid!, 300)).toBe(true);
      // A killed orphan is a zombie until init reaps it.
      await waitFor(() => !isPidAlive(childPid), 5000, 'the child to be gone');
    } finally {
      try {
        process.kill(-leader.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
});
