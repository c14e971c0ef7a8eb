/** The renderer's pure reducer: every manager frame and UI event, and the identity reuse rows rely on. */
import { describe, expect, it } from 'vitest';
import type { ManagerMessage, WorkerConfig } from '../../src-shared/protocol.js';
import { config, runtime } from './fixtures.js';
import { initialState, MAX_LOG_LINES, reduce, type HubEvent, type HubState } from '../../src-renderer/src/hub-state.js';

const URL = 'ws://127.0.0.1:9380/';
const msg = (message: ManagerMessage): HubEvent => ({ kind: 'frame', frame: { kind: 'message', message } });
const run = (events: HubEvent[], from: HubState = initialState(URL)) => events.reduce(reduce, from);
const status = (active: WorkerConfig[], inactive: WorkerConfig[]) => msg({ type: 'worker_status', active, inactive });
const progress = (message: string, blocking = true, st: 'info' | 'error' = 'info') => msg({ type: 'progress', message, status: st, progress: 0.5, blocking });
const open: HubEvent = { kind: 'connection', state: { status: 'open', url: URL } };

describe('reduce', () => {
  it('starts with nothing loaded and connecting', () => {
    const s = initialState(URL);
    expect(s.active).toBeNull();
    expect(s.connection).toEqual({ status: 'connecting', url: URL, attempt: 1 });
  });

  it('mirrors worker_status and keeps the objects of unchanged workers', () => {
    const s1 = run([status([config('a')], [config('b'), config('c')])]);
    expect(s1.active?.map((w) => w.uuid)).toEqual(['a']);
    expect(s1.inactive.map((w) => w.uuid)).toEqual(['b', 'c']);
    const s2 = reduce(s1, status([config('a')], [config('b'), config('c', { port: 9500 })]));
    expect(s2.active![0]).toBe(s1.active![0]);
    expect(s2.inactive[0]).toBe(s1.inactive[0]);
    expect(s2.inactive[1]).not.toBe(s1.inactive[1]);
    expect(s2.inactive[1]?.port).toBe(9500);
  });

  it('takes a full worker_states table, then deltas with removals, reusing unchanged entries', () => {
    const s1 = run([msg({ type: 'worker_states', full: true, workers: [runtime('a'), runtime('b', { state: 'inactive', pid: null })], removed: [] })]);
    expect(Object.keys(s1.runtime)).toEqual(['a', 'b']);
    const s2 = reduce(s1, msg({ type: 'worker_states', full: false, workers: [runtime('b', { state: 'starting' }), runtime('c')], removed: ['a'] }));
    expect(Object.keys(s2.runtime).sort()).toEqual(['b', 'c']);
    expect(s2.runtime.b?.state).toBe('starting');
    const s3 = reduce(s2, msg({ type: 'worker_states', full: false, workers: [runtime('c')], removed: [] }));
    expect(s3.runtime.c).toBe(s2.runtime.c);
    expect(s3.runtime.b).toBe(s2.runtime.b);
    const s4 = reduce(s3, msg({ type: 'worker_states', full: true, workers: [runtime('z')], removed: [] }));
    expect(Object.keys(s4.runtime)).toEqual(['z']);
  });

  it('shows blocking progress until the reset, and a dismissal lasts until then', () => {
    const s1 = run([progress('Activating worker.')]);
    expect(s1.progress?.message).toBe('Activating worker.');
    const s2 = run([{ kind: 'dismiss-overlay' }, progress('Starting worker.')], s1);
    expect(s2.overlayDismissed).toBe(true);
    expect(s2.progress?.message).toBe('Starting worker.');
    const s3 = reduce(s2, progress('', false));
    expect(s3.progress).toBeNull();
    expect(s3.overlayDismissed).toBe(false);
  });

  it('keeps an error progress with its status', () => {
    expect(run([progress('It broke', false, 'error')]).progress).toMatchObject({ status: 'error', message: 'It broke', blocking: false });
  });

  it('marks sent requests pending until the reset progress', () => {
    const s1 = run([{ kind: 'sent', uuid: 'a', request: 'set_active' }, progress('Activating worker.')]);
    expect(s1.pending).toEqual({ a: 'set_active' });
    expect(reduce(s1, progress('', false)).pending).toEqual({});
  });

  it('turns error messages into numbered notices that can be dismissed', () => {
    const s1 = run([msg({ type: 'error', message: 'Worker x not found' }), { kind: 'notice', tone: 'info', text: 'Copied' }]);
    expect(s1.notices).toEqual([
      { id: 1, tone: 'error', text: 'Worker x not found' },
      { id: 2, tone: 'info', text: 'Copied' },
    ]);
    expect(reduce(s1, { kind: 'dismiss-notice', id: 1 }).notices).toEqual([{ id: 2, tone: 'info', text: 'Copied' }]);
  });

  it('remembers the worker created by this UI', () => {
    expect(run([msg({ type: 'worker_created', uuid: 'new1' })]).created).toBe('new1');
  });

  it('forgets a deleted worker everywhere at once', () => {
    const s = run([
      status([config('a')], [config('b')]),
      msg({ type: 'worker_states', full: true, workers: [runtime('a')], removed: [] }),
      msg({ type: 'worker_created', uuid: 'a' }),
      { kind: 'watch-logs', uuid: 'a' },
      { kind: 'sent', uuid: 'a', request: 'delete_worker' },
      msg({ type: 'worker_deleted', uuid: 'a' }),
    ]);
    expect(s.active).toEqual([]);
    expect(s.inactive.map((w) => w.uuid)).toEqual(['b']);
    expect(s.runtime).toEqual({});
    expect(s.logs).toEqual({});
    expect(s.pending).toEqual({});
    expect(s.created).toBeNull();
  });

  it('moves a worker to active with the config set_worker carries', () => {
    const s = run([status([], [config('a'), config('b')]), msg({ type: 'set_worker', data: config('a', { port: 9411 }) })]);
    expect(s.active).toEqual([config('a', { port: 9411 })]);
    expect(s.inactive.map((w) => w.uuid)).toEqual(['b']);
  });

  it('records the identify reply and manager_info', () => {
    const info = { type: 'manager_info', version: '0.1.0', py: '/usr/bin/python3', config_dir: '/c', workers_dir: '/c/workers', in_venv_default: false, pid: 7 } as const;
    const s = run([{ kind: 'frame', frame: { kind: 'identify', reply: { class: 'WorkerManager', py: '/usr/bin/python3' } } }, msg(info)]);
    expect(s.identity).toEqual({ class: 'WorkerManager', py: '/usr/bin/python3' });
    expect(s.info).toEqual(info);
  });

  it('starts each connection afresh: no identity, additive state, progress or pending from the last one', () => {
    const before = run([
      status([config('a')], []),
      msg({ type: 'worker_states', full: true, workers: [runtime('a')], removed: [] }),
      msg({ type: 'manager_info', version: '1', py: 'p', config_dir: 'c', workers_dir: 'w', in_venv_default: true, pid: 1 }),
      { kind: 'frame', frame: { kind: 'identify', reply: { class: 'WorkerManager', py: 'p' } } },
      progress('Activating worker.'),
      { kind: 'dismiss-overlay' },
      { kind: 'sent', uuid: 'a', request: 'set_active' },
      { kind: 'watch-logs', uuid: 'a' },
      { kind: 'connection', state: { status: 'reconnecting', url: URL, attempt: 1, delayMs: 500 } },
    ]);
    // While reconnecting the last known lists stay visible.
    expect(before.active).toHaveLength(1);
    const after = reduce(before, open);
    expect(after).toMatchObject({ identity: null, info: null, runtime: {}, progress: null, overlayDismissed: false, pending: {} });
    expect(after.active).toBe(before.active);
    expect(after.logs).toEqual({ a: [] });
  });

  it('keeps log lines only for watched workers: the initial tail, then appended lines, capped', () => {
    const s0 = run([msg({ type: 'worker_log', uuid: 'a', lines: ['ignored'], initial: true })]);
    expect(s0.logs).toEqual({});
    const s1 = run([{ kind: 'watch-logs', uuid: 'a' }, msg({ type: 'worker_log', uuid: 'a', lines: ['one', 'two'], initial: true })]);
    expect(s1.logs.a).toEqual(['one', 'two']);
    const s2 = reduce(s1, msg({ type: 'worker_log', uuid: 'a', lines: ['three'], initial: false }));
    expect(s2.logs.a).toEqual(['one', 'two', 'three']);
    const many = Array.from({ length: MAX_LOG_LINES }, (_, i) => `line ${i}`);
    const s3 = reduce(s2, msg({ type: 'worker_log', uuid: 'a', lines: many, initial: false }));
    expect(s3.logs.a).toHaveLength(MAX_LOG_LINES);
    expect(s3.logs.a?.at(-1)).toBe(`line ${MAX_LOG_LINES - 1}`);
    expect(s3.logs.a?.[0]).toBe('line 0');
    expect(reduce(s3, { kind: 'unwatch-logs', uuid: 'a' }).logs).toEqual({});
  });

  it('returns the same state for frames it does not use', () => {
    const s = initialState(URL);
    expect(reduce(s, { kind: 'frame', frame: { kind: 'pong' } })).toBe(s);
    expect(reduce(s, { kind: 'frame', frame: { kind: 'unknown', text: 'hello' } })).toBe(s);
  });
});
