/**
 * The renderer's WebSocket client with a fake socket and vitest's fake clock: connect, reconnect with
 * capped exponential backoff, backoff reset after a successful connection, the connect timeout, frame
 * delivery, and the wire form of every request (checked against the hub's own parser).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseClientFrame, type ClientRequest, type ParsedManagerFrame } from '../../src-shared/protocol.js';
import {
  backoffDelay,
  CONNECT_TIMEOUT_MS,
  encodeRequest,
  ManagerConnection,
  type ConnectionState,
} from '../../src-renderer/src/ws-client.js';
import { fakeClockTimers, socketFactory } from './fake-socket.js';

const URL = 'ws://127.0.0.1:9380/';
const BACKOFF = { initialMs: 100, maxMs: 1000 };

function setup() {
  const factory = socketFactory();
  const frames: ParsedManagerFrame[] = [];
  const states: ConnectionState[] = [];
  const onOpen = vi.fn();
  const connection = new ManagerConnection({
    url: URL,
    createSocket: factory.create,
    timers: fakeClockTimers,
    backoff: BACKOFF,
    onFrame: (f) => frames.push(f),
    onState: (s) => states.push(s),
    onOpen,
  });
  return { factory, frames, states, onOpen, connection };
}

/** The delays of the reconnects announced so far. */
function delays(states: ConnectionState[]): number[] {
  return states.flatMap((s) => (s.status === 'reconnecting' ? [s.delayMs] : []));
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('ManagerConnection', () => {
  it('connects to the URL and reports connecting, then open, then calls onOpen', () => {
    const { factory, states, onOpen, connection } = setup();
    connection.start();
    expect(factory.sockets).toHaveLength(1);
    expect(factory.last().url).toBe(URL);
    expect(states).toEqual([{ status: 'connecting', url: URL, attempt: 1 }]);
    expect(connection.isOpen).toBe(false);
    factory.last().open();
    expect(states.at(-1)).toEqual({ status: 'open', url: URL });
    expect(onOpen).toHaveBeenCalledOnce();
    expect(connection.isOpen).toBe(true);
  });

  it('reconnects with exponential backoff capped at maxMs', () => {
    const { factory, states, connection } = setup();
    connection.start();
    for (let i = 0; i < 6; i++) {
      factory.last().drop();
      const delay = delays(states).at(-1)!;
      vi.advanceTimersByTime(delay - 1);
      expect(factory.sockets).toHaveLength(i + 1);
      vi.advanceTimersByTime(1);
      expect(factory.sockets).toHaveLength(i + 2);
    }
    expect(delays(states)).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(states.filter((s) => s.status === 'reconnecting').map((s) => (s.status === 'reconnecting' ? s.attempt : 0))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('resets the backoff after a successful connection', () => {
    const { factory, states, connection } = setup();
    connection.start();
    for (let i = 0; i < 3; i++) {
      factory.last().drop();
      vi.runOnlyPendingTimers();
    }
    expect(delays(states)).toEqual([100, 200, 400]);
    factory.last().open();
    factory.last().drop();
    expect(delays(states).at(-1)).toBe(100);
    vi.runOnlyPendingTimers();
    factory.last().drop();
    expect(delays(states).at(-1)).toBe(200);
  });

  it('abandons a connect that neither opens nor fails, and retries', () => {
    const { factory, states, connection } = setup();
    connection.start();
    const stuck = factory.last();
    vi.advanceTimersByTime(CONNECT_TIMEOUT_MS - 1);
    expect(stuck.closeCalls).toBe(0);
    vi.advanceTimersByTime(1);
    expect(stuck.closeCalls).toBe(1);
    expect(states.at(-1)).toMatchObject({ status: 'reconnecting', attempt: 1 });
    vi.advanceTimersByTime(100);
    expect(factory.sockets).toHaveLength(2);
    // A late open of the abandoned socket changes nothing.
    stuck.open();
    expect(connection.isOpen).toBe(false);
  });

  it('does not time out a connection that opened', () => {
    const { factory, connection } = setup();
    connection.start();
    factory.last().open();
    vi.advanceTimersByTime(CONNECT_TIMEOUT_MS * 3);
    expect(factory.sockets).toHaveLength(1);
    expect(connection.isOpen).toBe(true);
  });

  it('retries when the socket cannot even be constructed', () => {
    let calls = 0;
    const factory = socketFactory();
    const states: ConnectionState[] = [];
    const connection = new ManagerConnection({
      url: URL,
      createSocket: (url) => {
        if (++calls === 1) throw new SyntaxError('bad URL');
        return factory.create(url);
      },
      timers: fakeClockTimers,
      backoff: BACKOFF,
      onFrame: () => undefined,
      onState: (s) => states.push(s),
    });
    connection.start();
    expect(states.at(-1)).toMatchObject({ status: 'reconnecting', delayMs: 100 });
    vi.advanceTimersByTime(100);
    expect(factory.sockets).toHaveLength(1);
  });

  it('delivers parsed text frames and ignores binary ones and those of an old socket', () => {
    const { factory, frames, connection } = setup();
    connection.start();
    const first = factory.last();
    first.open();
    first.receive('pong');
    first.receive('{"type":"error","message":"nope"}');
    first.receive('{"class":"WorkerManager","py":"/usr/bin/python3"}');
    first.receive(new ArrayBuffer(4));
    expect(frames).toEqual([
      { kind: 'pong' },
      { kind: 'message', message: { type: 'error', message: 'nope' } },
      { kind: 'identify', reply: { class: 'WorkerManager', py: '/usr/bin/python3' } },
    ]);
    first.drop();
    first.receive('pong');
    expect(frames).toHaveLength(3);
  });

  it('stop() closes the socket and never reconnects', () => {
    const { factory, states, connection } = setup();
    connection.start();
    factory.last().open();
    connection.stop();
    expect(factory.last().closeCalls).toBe(1);
    expect(states.at(-1)).toEqual({ status: 'closed', url: URL });
    vi.advanceTimersByTime(60_000);
    expect(factory.sockets).toHaveLength(1);
  });

  it('sends nothing while not connected', () => {
    const { factory, connection } = setup();
    connection.start();
    expect(connection.workerStatus()).toBe(false);
    factory.last().open();
    expect(connection.workerStatus()).toBe(true);
    factory.last().drop();
    expect(connection.workerStatus()).toBe(false);
    expect(factory.sockets[0]?.sent).toEqual(['worker_status']);
  });

  it('sends each request in its wire form', () => {
    const { factory, connection } = setup();
    connection.start();
    factory.last().open();
    connection.workerStatus();
    connection.identify();
    connection.watchWorkers();
    connection.newWorker({ name: 'demo', reference: 'ref-1', copyLib: true, copyNS: false, in_venv: false });
    connection.workerAction('set_active', 'w1');
    connection.workerAction('stop_worker', 'w1');
    connection.workerAction('restart_worker', 'w1');
    connection.workerAction('delete_worker', 'w1');
    connection.watchLogs('w1');
    connection.unwatchLogs('w1');
    expect(factory.last().sent.map((f) => (f.startsWith('{') ? (JSON.parse(f) as unknown) : f))).toEqual([
      'worker_status',
      'identify',
      { type: 'watch_workers' },
      { type: 'new_worker', kwargs: { name: 'demo', reference: 'ref-1', copyLib: true, copyNS: false, in_venv: false } },
      { type: 'set_active', workerid: 'w1' },
      { type: 'stop_worker', workerid: 'w1' },
      { type: 'restart_worker', workerid: 'w1' },
      { type: 'delete_worker', workerid: 'w1' },
      { type: 'watch_logs', workerid: 'w1', lines: 200 },
      { type: 'unwatch_logs', workerid: 'w1' },
    ]);
  });
});

describe('encodeRequest', () => {
  const requests: ClientRequest[] = [
    { type: 'ping' },
    { type: 'identify' },
    { type: 'worker_status' },
    { type: 'watch_workers' },
    { type: 'unwatch_workers' },
    { type: 'new_worker', options: { name: 'n', copyLib: false, copyNS: false, in_venv: true } },
    { type: 'set_active', workerid: 'abc' },
    { type: 'delete_worker', workerid: 'abc' },
    { type: 'watch_logs', workerid: 'abc', lines: 50 },
    { type: 'unwatch_logs', workerid: 'abc' },
  ];
  it.each(requests.map((r) => [r.type, r] as const))('the hub parses %s back to the same request', (_type, request) => {
    expect(parseClientFrame(encodeRequest(request))).toEqual({ ok: true, request });
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap', () => {
    expect([1, 2, 3, 4, 5, 10, 100].map((a) => backoffDelay(a, { initialMs: 500, maxMs: 5000 }))).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });
});
