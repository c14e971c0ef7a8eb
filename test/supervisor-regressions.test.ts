/**
 * Bugs of the spread-out lifecycle state (issue 13), through the real hub with the stand-in worker as real
 * processes. Deadlines come from config.json, so these tests ran unchanged against the code before the
 * supervisor, where each of them failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ManagerClient } from '../src-main/core/hub/client.js';
import { isPidAlive } from '../src-main/core/supervisor/liveness.js';
import { collect, createWorker, makeTempDir, readReset, readUntil, startTestManager, waitFor, type TestManager } from './helpers/manager.js';

const managers: TestManager[] = [];
const strangers: ChildProcess[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
  for (const p of strangers.splice(0)) p.kill('SIGKILL');
});

async function start(config: Record<string, number>, env: Record<string, string> = {}): Promise<TestManager> {
  const dir = await makeTempDir();
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: config }));
  const m = await startTestManager({ dir, env });
  managers.push(m);
  return m;
}

/** A live process that is not a worker: what a reused pid in a stale `.p` belongs to after a reboot. */
function stranger(): number {
  const p = spawn('sleep', ['300'], { stdio: 'ignore' });
  strangers.push(p);
  return p.pid!;
}

function frameTypes(client: ManagerClient): string[] {
  const seen: string[] = [];
  void client.until((f) => {
    if (f.kind === 'message') seen.push(f.message.type === 'progress' ? `progress:${f.message.message}` : f.message.type);
    return undefined;
  }, 60_000).catch(() => undefined);
  return seen;
}

describe('a stale .p whose pid now belongs to another process', () => {
  it('set_active spawns a new worker after the connect deadline; the stranger is never signalled', async () => {
    const m = await start({ connect_timeout: 1.5 });
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'reused');
    const pid = stranger();
    await writeFile(path.join(m.workersDir, `worker_${uuid}.p`), String(pid));
    client.send({ type: 'set_active', workerid: uuid });
    const { found } = await readUntil(client, 'set_worker', 30_000);
    expect(found.data.pid).not.toBe(pid);
    expect(isPidAlive(found.data.pid!)).toBe(true);
    expect(isPidAlive(pid)).toBe(true);
    // And it is a worker like any other: it stops.
    await readReset(client);
    client.send({ type: 'stop_worker', workerid: uuid });
    await readReset(client);
    expect(isPidAlive(found.data.pid!)).toBe(false);
    expect(isPidAlive(pid)).toBe(true);
  });

  it('delete_worker removes the worker and leaves the stranger alone', async () => {
    const m = await start({ connect_timeout: 1.5 });
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'reused');
    const pid = stranger();
    await writeFile(path.join(m.workersDir, `worker_${uuid}.p`), String(pid));
    await new Promise((resolve) => setTimeout(resolve, 300)); // the manager reads the .p
    client.send({ type: 'delete_worker', workerid: uuid });
    await readUntil(client, 'worker_deleted', 10_000);
    expect(isPidAlive(pid)).toBe(true);
  });
});

describe('one queue per worker', () => {
  it('deleting a worker that is slow to stop delays neither another start nor its broadcasts', async () => {
    // The stand-in that ignores stop takes the 3 s stop deadline plus the kill grace to go.
    const m = await start({ stop_timeout: 3 });
    const client = await m.connect();
    const watcher = await m.connect();
    watcher.send('worker_status');
    await readUntil(watcher, 'worker_status');
    const slow = await createWorker(client, m.workersDir, 'slow', { ignore_stop: true });
    const quick = await createWorker(client, m.workersDir, 'quick');
    client.send({ type: 'set_active', workerid: slow });
    await readUntil(client, 'set_worker', 20_000);
    await readReset(client);

    const deleter = await m.connect();
    const deleting = frameTypes(deleter);
    const broadcasts: string[] = [];
    void watcher
      .until((f) => {
        if (f.kind === 'message' && f.message.type === 'worker_status' && f.message.active.some((w) => w.uuid === quick)) broadcasts.push('quick active');
        return undefined;
      }, 60_000)
      .catch(() => undefined);
    deleter.send({ type: 'delete_worker', workerid: slow });
    await waitFor(() => deleting.includes('progress:Stopping worker.'), 5000, 'the delete to stop the slow worker');
    client.send({ type: 'set_active', workerid: quick });
    await readUntil(client, 'set_worker', 20_000);
    // The other start is done while the delete still waits for its worker to go, and its news went out.
    expect(deleting).not.toContain('worker_deleted');
    await waitFor(() => broadcasts.length > 0, 5000, 'the broadcast of the started worker');
    expect(deleting).not.toContain('worker_deleted');
    await readUntil(deleter, 'worker_deleted', 20_000);
  });
});

describe('projections', () => {
  it('twenty workers read together are broadcast once', async () => {
    // Watch events are held back: only the explicit read below reports the new files.
    const m = await startTestManager({ supervisor: { observer: { debounceMs: 60_000 } } });
    managers.push(m);
    const client = await m.connect();
    client.send('worker_status');
    await readUntil(client, 'worker_status');
    const uuids = Array.from({ length: 20 }, (_, i) => `many${i}`);
    await Promise.all(uuids.map((uuid) => writeFile(path.join(m.workersDir, `worker_${uuid}.json`), JSON.stringify({ type: 'WSWorker', uuid, name: uuid }))));
    await m.service.supervisor.refresh(...uuids);
    const frames = (await collect(client, 500)).map((text) => JSON.parse(text) as { type: string; inactive?: unknown[] });
    expect(frames.map((f) => `${f.type} ${f.inactive?.length}`)).toEqual(['worker_status 20']);
  });
});

describe('a start that fails says why', () => {
  it.each([
    ['a JSON array', '[1, 2]', "'list' object has no attribute 'get'"],
    ['null', 'null', "'NoneType' object has no attribute 'get'"],
  ])('names %s in the workers dir, which makes every worker exit at start', async (_what, content, traceback) => {
    // The stand-in reads every worker JSON at start, as the real FuncNodes CLI does.
    const m = await start({}, { FUNCNODES_STANDIN_READ_ALL: '1' });
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'victim');
    await writeFile(path.join(m.workersDir, 'worker_junk.json'), content);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the manager reads the junk
    client.send({ type: 'set_active', workerid: uuid });
    const { message } = (await readUntil(client, 'error', 20_000)).found;
    expect(message).toMatch(new RegExp(`^Could not activate worker with id ${uuid}\\. The worker process exited during start \\(code 1\\)\\. Its last output: `));
    expect(message).toContain(traceback);
    expect(message).toContain('worker_junk.json is not a JSON object');
    expect(message).toContain('FuncNodes workers read every worker file at start');
  });
});
