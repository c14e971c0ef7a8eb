/**
 * The store wired to a connection over a fake socket: what it asks for on every (re)connect, how frames
 * reach the state, and when actions are sent or refused.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src-renderer/src/store.js';
import { fakeClockTimers, socketFactory } from './fake-socket.js';

const URL = 'ws://127.0.0.1:9380/';

function setup() {
  const factory = socketFactory();
  const app = createApp({ url: URL, createSocket: factory.create, timers: fakeClockTimers, backoff: { initialMs: 100, maxMs: 1000 } });
  app.connection.start();
  return { ...app, factory, state: () => app.store.getState(), actions: () => app.store.getState().actions };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('createApp', () => {
  it('asks for the lists, the additive states and the identity on connect', () => {
    const { factory, state } = setup();
    expect(state().connection.status).toBe('connecting');
    factory.last().open();
    expect(state().connection.status).toBe('open');
    expect(factory.last().sent).toEqual(['worker_status', '{"type":"watch_workers"}', 'identify']);
  });

  it('mirrors frames into the state, and works with the original manager that answers only the lists', () => {
    const { factory, state } = setup();
    factory.last().open();
    factory.last().receive(JSON.stringify({ type: 'worker_status', active: [{ type: 'WSWorker', uuid: 'a', name: 'A', port: 9400 }], inactive: [] }));
    expect(state().active?.map((w) => w.uuid)).toEqual(['a']);
    expect(state().info).toBeNull();
    expect(state().runtime).toEqual({});
  });

  it('shows the reconnecting state and asks again after a reconnect, re-watching open logs', () => {
    const { factory, state, actions } = setup();
    factory.last().open();
    actions().openLogs('w1');
    factory.last().drop();
    expect(state().connection).toMatchObject({ status: 'reconnecting', attempt: 1, delayMs: 100 });
    vi.advanceTimersByTime(100);
    factory.last().open();
    expect(factory.last().sent).toEqual(['worker_status', '{"type":"watch_workers"}', 'identify', '{"type":"watch_logs","workerid":"w1","lines":200}']);
  });

  it('sends a worker\'s restart policy and autostart as set_worker_options, and refuses while offline', () => {
    const { factory, state, actions } = setup();
    expect(actions().setWorkerOptions('w1', { restart: 'never' })).toBe(false);
    expect(state().notices.at(-1)?.text).toBe('Not connected to the manager.');
    factory.last().open();
    expect(actions().setWorkerOptions('w1', { restart: 'always' })).toBe(true);
    expect(actions().setWorkerOptions('w1', { autostart: 'always' })).toBe(true);
    expect(factory.last().sent.slice(-2)).toEqual([
      '{"type":"set_worker_options","workerid":"w1","restart":"always"}',
      '{"type":"set_worker_options","workerid":"w1","autostart":"always"}',
    ]);
  });

  it('sends worker requests and marks the worker pending until the operation ends', () => {
    const { factory, state, actions } = setup();
    factory.last().open();
    expect(actions().request('set_active', 'w1')).toBe(true);
    expect(factory.last().sent.at(-1)).toBe('{"type":"set_active","workerid":"w1"}');
    expect(state().pending).toEqual({ w1: 'set_active' });
    // A second request for the same worker conflicts; another worker is fine.
    expect(actions().request('stop_worker', 'w1')).toBe(false);
    expect(state().notices.at(-1)?.text).toMatch(/still running/);
    expect(actions().request('stop_worker', 'w2')).toBe(true);
    factory.last().receive('{"type":"progress","message":"","status":"info","progress":1,"blocking":false}');
    expect(state().pending).toEqual({});
    expect(actions().request('stop_worker', 'w1')).toBe(true);
  });

  it('refuses actions while a blocking operation shows its overlay, and allows them once dismissed', () => {
    const { factory, actions } = setup();
    factory.last().open();
    factory.last().receive('{"type":"progress","message":"Creating new worker.","status":"info","progress":1,"blocking":true}');
    const sentBefore = factory.last().sent.length;
    expect(actions().request('set_active', 'w1')).toBe(false);
    expect(actions().createWorker({ name: 'x', copyLib: false, copyNS: false, in_venv: false })).toBe(false);
    expect(factory.last().sent).toHaveLength(sentBefore);
    actions().dismissOverlay();
    expect(actions().request('set_active', 'w1')).toBe(true);
  });

  it('refuses actions while not connected, with a notice', () => {
    const { factory, state, actions } = setup();
    expect(actions().createWorker({ name: 'x', copyLib: false, copyNS: false })).toBe(false);
    expect(state().notices.map((n) => n.text)).toEqual(['Not connected to the manager.']);
    expect(factory.last().sent).toEqual([]);
  });

  it('sends new_worker with its options as kwargs', () => {
    const { factory, actions } = setup();
    factory.last().open();
    expect(actions().createWorker({ name: 'demo', copyLib: false, copyNS: false, in_venv: false })).toBe(true);
    expect(JSON.parse(factory.last().sent.at(-1)!)).toEqual({ type: 'new_worker', kwargs: { name: 'demo', copyLib: false, copyNS: false, in_venv: false } });
  });

  it('watches the logs of one worker at a time', () => {
    const { factory, state, actions } = setup();
    factory.last().open();
    actions().openLogs('w1');
    actions().openLogs('w2');
    expect(Object.keys(state().logs)).toEqual(['w2']);
    expect(factory.last().sent.slice(3)).toEqual([
      '{"type":"watch_logs","workerid":"w1","lines":200}',
      '{"type":"unwatch_logs","workerid":"w1"}',
      '{"type":"watch_logs","workerid":"w2","lines":200}',
    ]);
    factory.last().receive('{"type":"worker_log","uuid":"w2","lines":["hello"],"initial":true}');
    expect(state().logs.w2).toEqual(['hello']);
    actions().closeLogs('w2');
    expect(state().logs).toEqual({});
    expect(factory.last().sent.at(-1)).toBe('{"type":"unwatch_logs","workerid":"w2"}');
  });
});
