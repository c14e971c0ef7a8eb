/**
 * The hub over real sockets: the reference's own manager tests (spec §10 T1–T9), the subscription rule
 * for broadcasts, and the upgrade checks (Origin, Host, path, payload size).
 */
import { once } from 'node:events';
import { appendFile, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ManagerClient, probeManager } from '../src-main/core/hub/client.js';
import { parseManagerFrame, type WorkerStatusMessage } from '../src-shared/protocol.js';
import { collect, makeTempDir, readUntil, startTestManager, waitFor, type TestManager } from './helpers/manager.js';
import { standinPython } from './helpers/standin.js';

let manager: TestManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

async function start(options: Parameters<typeof startTestManager>[0] = {}): Promise<TestManager> {
  manager = await startTestManager(options);
  return manager;
}

/** Status code of a refused upgrade, or 101 when the WebSocket opened. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (!String(err).includes('Unexpected server response')) reject(err);
    });
  });
}

function httpGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url.replace('ws://', 'http://'), (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

describe('spec §10: the reference manager tests', () => {
  it('T1 ping answers the text pong, T2 identify answers class WorkerManager with py', async () => {
    const m = await start();
    const client = await m.connect();
    client.send('ping');
    expect(await client.nextText()).toBe('pong');
    client.send('identify');
    const identify = JSON.parse(await client.nextText()) as Record<string, unknown>;
    expect(identify).toEqual({ class: 'WorkerManager', py: standinPython });
  });

  it('T3 the first frame after worker_status on an empty dir is an empty worker_status', async () => {
    const m = await start();
    const client = await m.connect();
    client.send('worker_status');
    expect(JSON.parse(await client.nextText())).toEqual({ type: 'worker_status', active: [], inactive: [] });
  });

  // Spec T4 says "gone within 1 s"; how soon is the benchmark's to measure, this checks that it goes.
  it('T4 stop: progress "Stopping worker manager.", then the connection closes (1001) and nothing answers', async () => {
    const m = await start();
    const client = await m.connect();
    client.send('stop');
    expect(JSON.parse(await client.nextText())).toEqual({ type: 'progress', message: 'Stopping worker manager.', status: 'info', progress: 1, blocking: false });
    await m.service.stopped;
    await waitFor(() => client.closed !== undefined, 5000, 'the connection to close');
    expect(client.closed?.code).toBe(1001);
    expect(await probeManager(m.url)).toBeUndefined();
  });

  it('T5 unknown plain text gets no reply; the next ping gets pong as the very next frame', async () => {
    const m = await start();
    const client = await m.connect();
    client.send('some_unknown_command');
    // Frames are handled in order: a reply (or a close) would come before the pong.
    client.send('ping');
    expect(await client.nextText()).toBe('pong');
    expect(client.closed).toBeUndefined();
  });

  it('T6 new_worker without kwargs: after progress/worker_status frames, the first other frame is worker_created', async () => {
    const m = await start();
    const client = await m.connect();
    client.send('{"type":"new_worker"}');
    const { found, before } = await readUntil(client, 'worker_created');
    for (const frame of before) expect(frame.kind === 'message' && ['progress', 'worker_status'].includes(frame.message.type)).toBe(true);
    expect(found.uuid).toMatch(/^[0-9a-f]{32}$/);
    const json = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(path.join(m.workersDir, `worker_${found.uuid}.json`), 'utf8'))) as Record<string, unknown>;
    expect(json).toMatchObject({ type: 'WSWorker', uuid: found.uuid, name: found.uuid, data_path: null, env_path: null, pid: null, ssl: false, port: m.ports.start });
  });

  it('T7 delete is traceless', async () => {
    const m = await start();
    const client = await m.connect();
    client.send({ type: 'new_worker', kwargs: { name: 'gone', in_venv: false } });
    const { found } = await readUntil(client, 'worker_created');
    const base = path.join(m.workersDir, `worker_${found.uuid}`);
    await stat(`${base}.json`);
    await writeFile(`${base}.runstate`, 'removed');
    await mkdir(path.join(base, '.venv', 'bin'), { recursive: true });
    client.send({ type: 'delete_worker', workerid: found.uuid });
    const deleted = await readUntil(client, 'worker_deleted', 30_000);
    expect(deleted.found.uuid).toBe(found.uuid);
    for (const file of [`${base}.json`, `${base}.p`, `${base}.runstate`, base]) await expect(stat(file)).rejects.toThrow();
  });

  it('T8 set_active of an unknown id: after progress only, an error containing "not found", nothing unsolicited', async () => {
    const m = await start();
    const client = await m.connect();
    client.send('{"type":"set_active","workerid":"does-not-exist"}');
    const { found, before } = await readUntil(client, 'error');
    expect(found.message).toBe('Worker with id does-not-exist not found.');
    expect(before.every((f) => f.kind === 'message' && f.message.type === 'progress')).toBe(true);
    expect(parseManagerFrame(await client.nextText())).toEqual({ kind: 'message', message: { type: 'progress', message: '', status: 'info', progress: 1, blocking: false } });
  });

  it('T9 stop_worker of an unknown id: no reply, the socket stays open', async () => {
    const m = await start();
    const client = await m.connect();
    client.send('{"type":"stop_worker","workerid":"does-not-exist"}');
    expect(await collect(client, 300)).toEqual([]);
    expect(client.closed).toBeUndefined();
  });
});

describe('invalid input', () => {
  it('answers invalid JSON requests with an error and ignores binary frames', async () => {
    const m = await start();
    const client = await m.connect();
    client.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    for (const text of ['{"foo":1}', '{"type":"frobnicate"}', '{"type":"set_active"}', '[1]', '{"type":"new_worker","kwargs":[]}']) {
      client.send(text);
      const frame = parseManagerFrame(await client.nextText());
      expect(frame.kind === 'message' && frame.message.type, text).toBe('error');
    }
    client.send('ping');
    expect(await client.nextText()).toBe('pong');
  });

  it('refuses path-like ids without touching files, and keeps a canary outside the workers dir', async () => {
    const m = await start();
    const canary = path.join(m.dir, 'canary.json');
    await writeFile(canary, '{"keep": true}');
    await writeFile(path.join(path.dirname(m.dir), `fnwm-canary-${path.basename(m.dir)}.json`), '{}');
    const client = await m.connect();
    client.send({ type: 'new_worker', kwargs: { name: 'real', in_venv: false } });
    const { found } = await readUntil(client, 'worker_created');
    for (const id of ['../x', `${found.uuid}/../../canary`, 'a/../../b', '..\\x', 'x'.repeat(200), '..', `${found.uuid}/../../../fnwm-canary-${path.basename(m.dir)}`]) {
      for (const type of ['delete_worker', 'set_active', 'stop_worker', 'restart_worker']) {
        client.send({ type, workerid: id });
        const { found: error } = await readUntil(client, 'error');
        expect(error.message, `${type} ${id}`).toMatch(/is not valid/);
      }
      client.send({ type: 'new_worker', kwargs: { uuid: id, in_venv: false } });
      expect((await readUntil(client, 'error')).found.message).toMatch(/is not valid/);
    }
    await stat(canary);
    await stat(path.join(path.dirname(m.dir), `fnwm-canary-${path.basename(m.dir)}.json`));
    await stat(path.join(m.workersDir, `worker_${found.uuid}.json`));
  });

  it('closes a connection that sends more than max_payload, and keeps serving others', async () => {
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: { max_payload: 1024 } }));
    const m = await start({ dir });
    const big = await m.connect();
    const other = await m.connect();
    big.send('x'.repeat(2048));
    await waitFor(() => big.closed !== undefined, 5000, 'the oversized connection to close');
    expect(big.closed?.code).toBe(1009);
    other.send('ping');
    expect(await other.nextText()).toBe('pong');
  });
});

describe('clients that misbehave', () => {
  /** A ws client that stops reading once open: it neither sees frames nor answers pings until resumed. */
  async function stalledClient(url: string, first?: object): Promise<{ ws: WebSocket; closed: Promise<number> }> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const closed = once(ws, 'close').then(([code]) => code as number);
    await once(ws, 'open');
    if (first) {
      ws.send(JSON.stringify(first));
      await once(ws, 'message');
    }
    ws.pause();
    return { ws, closed };
  }

  it('logs the first few malformed frames of a connection and only counts the rest', async () => {
    const m = await start();
    const client = await m.connect();
    const frames = 100_000;
    for (let i = 0; i < frames; i++) client.send(`garbage ${i}`);
    client.send('ping');
    expect(await client.nextText(30_000)).toBe('pong');
    expect(m.logs.filter((l) => l.includes('Ignoring unknown message'))).toHaveLength(5);
    client.close();
    await waitFor(() => m.logs.some((l) => l.includes(`after ${frames - 5} more ignored frames`)), 5000, 'the summary line');
    expect(m.logs.join('\n').length).toBeLessThan(10_000);
  });

  it('pings every heartbeat and drops a connection that did not answer the previous ping', async () => {
    const m = await start({ hub: { heartbeatMs: 300 } });
    const responsive = new WebSocket(m.url, { perMessageDeflate: false });
    let pings = 0;
    responsive.on('ping', () => pings++);
    await once(responsive, 'open');
    const stalled = await stalledClient(m.url);
    await waitFor(() => m.logs.some((l) => l.includes('did not answer the last ping')), 10_000, 'the stalled connection to be dropped');
    stalled.ws.resume();
    expect(await stalled.closed).toBe(1006); // terminated: no close frame
    await waitFor(() => pings >= 3, 10_000, 'three pings');
    expect(responsive.readyState).toBe(WebSocket.OPEN);
    responsive.close();
  });

  it('closes a client that stops reading a log flood with 1013 once its send buffer passes the limit', async () => {
    const m = await start({ hub: { maxBufferedBytes: 1024 * 1024 } });
    await writeFile(path.join(m.workersDir, 'worker_chatty.json'), JSON.stringify({ type: 'WSWorker', uuid: 'chatty', name: 'chatty' }));
    await mkdir(path.join(m.workersDir, 'worker_chatty'));
    await m.service.supervisor.refresh('chatty');
    const slow = await stalledClient(m.url, { type: 'watch_logs', workerid: 'chatty', lines: 1 });
    const chunk = `${'flood '.repeat(100)}\n`.repeat(1700); // about 1 MiB
    const closing = () => m.logs.some((l) => l.includes('Closing a connection (1013)'));
    // Written until the manager gives up on the client; 200 MiB would mean it never does.
    for (let written = 0; !closing() && written < 200; written++) {
      await appendFile(path.join(m.workersDir, 'worker_chatty', 'worker.log'), chunk);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(closing()).toBe(true);
    slow.ws.resume();
    expect(await slow.closed).toBe(1013);
    const other = await m.connect();
    other.send('ping');
    expect(await other.nextText()).toBe('pong');
  });
});

describe('broadcasts', () => {
  it('go only to connections that asked for worker_status, and only when the lists change', async () => {
    const m = await start({ supervisor: { observer: { safetyRescanMs: 200 } } });
    const subscriber = await m.connect();
    const idle = await m.connect();
    const prober = await m.connect();
    subscriber.send('worker_status');
    await subscriber.nextText();
    prober.send('ping');
    expect(await prober.nextText()).toBe('pong');
    // Several safety rescans pass: nothing changed, so nothing is sent.
    expect(await collect(subscriber, 700)).toEqual([]);

    // A worker written by another tool (the Python CLI never talks to the hub).
    const uuid = 'from-cli_0123456789abcdef';
    await writeFile(path.join(m.workersDir, `worker_${uuid}.json`), JSON.stringify({ type: 'WSWorker', uuid, name: 'cli', port: 1, host: '127.0.0.1' }));
    const { found } = await readUntil(subscriber, 'worker_status', 3000);
    expect(found.inactive.map((w) => w.uuid)).toEqual([uuid]);
    expect(await collect(idle, 300)).toEqual([]);
    expect(await collect(prober, 10)).toEqual([]);
  });

  it('keep coming after the workers dir is deleted and recreated', async () => {
    const m = await start();
    const subscriber = await m.connect();
    subscriber.send('worker_status');
    await subscriber.nextText();
    await rm(m.workersDir, { recursive: true });
    await waitFor(() => stat(m.workersDir).then(() => true, () => false), 3000, 'the workers dir to be recreated');
    const uuid = 'after-rm';
    await writeFile(path.join(m.workersDir, `worker_${uuid}.json`), JSON.stringify({ type: 'WSWorker', uuid }));
    const { found } = await readUntil(subscriber, 'worker_status', 3000);
    expect(found.inactive.map((w) => w.uuid)).toEqual([uuid]);
  });

  it('send new_worker progress to the requester and to subscribers', async () => {
    const m = await start();
    const subscriber = await m.connect();
    subscriber.send('worker_status');
    await subscriber.nextText();
    const requester = await m.connect();
    requester.send({ type: 'new_worker', kwargs: { name: 'shared', in_venv: false } });
    const mine = await readUntil(requester, 'worker_created');
    const theirs = await readUntil(subscriber, 'worker_status');
    const progressOf = (frames: typeof theirs.before) => frames.map((f) => (f.kind === 'message' && f.message.type === 'progress' ? f.message.message : '?'));
    expect(progressOf(mine.before)).toEqual(['Writing configuration.', 'Creating new worker.']);
    expect(progressOf(theirs.before)).toEqual(['Writing configuration.', 'Creating new worker.', '']);
    expect(theirs.found.inactive.map((w) => w.uuid)).toEqual([mine.found.uuid]);
    // The requester never subscribed: it gets the reset and one status reply, then nothing more.
    const rest = (await collect(requester, 300)).map((t) => JSON.parse(t) as { type: string; message?: string });
    expect(rest.map((r) => r.type)).toEqual(['progress', 'worker_status']);
    expect(rest[0]?.message).toBe('');
    expect((rest[1] as unknown as WorkerStatusMessage).inactive.map((w) => w.uuid)).toEqual([mine.found.uuid]);
  });
});

describe('upgrade checks', () => {
  it('accepts no Origin and loopback origins, refuses others with 403', async () => {
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: { allowed_origins: ['https://app.example'] } }));
    const m = await start({ dir });
    for (const origin of ['http://localhost:8000', 'http://127.0.0.1:3000', 'http://[::1]:1', 'https://localhost', 'https://app.example']) {
      expect(await upgradeStatus(m.url, { Origin: origin }), origin).toBe(101);
    }
    expect(await upgradeStatus(m.url, {})).toBe(101);
    for (const origin of ['http://evil.example', 'http://localhost.evil.example', 'null', 'file://', 'http://127.0.0.2.nip.io', 'https://app.example:444']) {
      expect(await upgradeStatus(m.url, { Origin: origin }), origin).toBe(403);
    }
  });

  it('checks the Host header against loopback, the hostname and the bind host (DNS rebinding)', async () => {
    const m = await start();
    const port = m.service.port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `${os.hostname()}:${port}`]) {
      expect(await upgradeStatus(m.url, { Host: host }), host).toBe(101);
    }
    for (const host of [`evil.example:${port}`, `localhost.evil.example:${port}`, `192.0.2.1:${port}`]) {
      expect(await upgradeStatus(m.url, { Host: host }), host).toBe(403);
    }
  });

  it('serves WebSocket only on /, and the dashboard to plain HTTP (the original answered 400 on /)', async () => {
    const m = await start();
    expect(await upgradeStatus(`${m.url}/other`, {})).toBe(404);
    expect(await httpGet(`${m.url}/`)).toBe(200);
    expect(await httpGet(`${m.url}/worker_manager`)).toBe(404);
  });

  it('answers on both 127.0.0.1 and ::1 when bound to localhost', async () => {
    const m = await start({ host: 'localhost' });
    for (const url of [`ws://127.0.0.1:${m.service.port}`, `ws://[::1]:${m.service.port}`]) {
      const client = await ManagerClient.connect(url);
      client.send('ping');
      expect(await client.nextText(), url).toBe('pong');
      client.close();
    }
  });
});

describe('stopping', () => {
  it('the kill file stops the manager and is removed', async () => {
    const m = await start();
    const client = await m.connect();
    await writeFile(path.join(m.dir, 'kill_worker_manager'), '');
    await m.service.stopped;
    await waitFor(() => client.closed !== undefined, 3000, 'the connection to close');
    expect(client.closed?.code).toBe(1001);
    await expect(stat(path.join(m.dir, 'kill_worker_manager'))).rejects.toThrow();
  });

  it('a stale kill file from before the start is removed, not obeyed', async () => {
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'kill_worker_manager'), '');
    const m = await start({ dir });
    const client = await m.connect();
    client.send('ping');
    expect(await client.nextText()).toBe('pong');
    await expect(stat(path.join(dir, 'kill_worker_manager'))).rejects.toThrow();
  });

  it('reports a port in use instead of fighting for it', async () => {
    const m = await start();
    await expect(startTestManager({ port: m.service.port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
