/**
 * The worker state machine (core/supervisor/machine.ts) as a table: every transition and every deadline,
 * with a fake clock (the `now` passed to `step`), including the transitions it refuses.
 */
import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  DEFAULT_TIMING,
  initialState,
  isActive,
  restartsAfter,
  step,
  type Common,
  type Effect,
  type Event,
  type Proc,
  type RestartPolicy,
  type State,
  type Timing,
} from '../src-main/core/supervisor/machine.js';

const T = DEFAULT_TIMING;
const NOW = 1_000_000;
const base: Common = { ...initialState(), attempt: 1 };
const ours = (pid = 100, since = NOW - 10_000): Proc => ({ pid, owned: true, since });
const theirs = (pid = 200, since = NOW - 10_000): Proc => ({ pid, owned: false, since });

const S = {
  inactive: (extra: Partial<Common> = {}): State => ({ ...base, ...extra, kind: 'inactive' }),
  crashed: (extra: Partial<Common> = {}): State => ({ ...base, ...extra, kind: 'crashed', reason: 'exited unexpectedly (code 1)' }),
  backoff: (extra: Partial<Common> = {}): State => ({ ...base, ...extra, kind: 'backoff', until: NOW + 1000 }),
  unverified: (waiters: number[] = [], pid = 300): State => ({ ...base, filePid: pid, kind: 'unverified', pid, since: NOW - 1000, waiters }),
  preparing: (waiters: number[] = [1]): State => ({ ...base, kind: 'preparing', waiters }),
  spawning: (waiters: number[] = [1]): State => ({ ...base, kind: 'starting', proc: null, pidFileSeen: false, waiters, note: null }),
  starting: (waiters: number[] = [1], pidFileSeen = false, proc = ours()): State => ({ ...base, kind: 'starting', proc, pidFileSeen, waiters, note: null }),
  active: (proc = ours(), extra: Partial<Common> = {}): State => ({ ...base, ...extra, kind: 'active', proc, contacting: [] }),
  stopping: (phase: 'asked' | 'term' | 'kill', proc: Proc | null = ours(), then: 'rest' | 'delete' = 'rest'): State => ({
    ...base,
    kind: 'stopping',
    proc,
    phase,
    then,
    pending: [{ id: 7, kind: then === 'delete' ? 'delete' : 'stop' }],
    queued: [],
    wasActive: true,
  }),
  removing: (): State => ({ ...base, kind: 'removing', waiters: [9] }),
};

interface Row {
  name: string;
  from: State;
  event: Event;
  now?: number;
  timing?: Partial<Timing>;
  to: Partial<State> & { kind: State['kind'] };
  /** Effects that must be among those returned (in this order, other effects may be interleaved). */
  effects?: Effect[];
  /** Effect types that must not be returned. */
  never?: Effect['type'][];
}

const arm = (timer: Extract<Effect, { type: 'arm' }>['timer'], ms: number): Effect => ({ type: 'arm', timer, ms });
const settle = (ids: number[], error: string | null, output?: boolean): Effect => ({ type: 'settle', ids, error, ...(output ? { output } : {}) });

const rows: Row[] = [
  // ---- starting a worker
  { name: 'inactive + start → preparing (env update)', from: S.inactive(), event: { type: 'start', id: 1, requested: true }, to: { kind: 'preparing', waiters: [1], attempt: 2 }, effects: [{ type: 'prepare', attempt: 2 }] },
  {
    name: 'inactive with a stale .p + start → its .p goes first',
    from: S.inactive({ filePid: 55 }),
    event: { type: 'start', id: 1, requested: true },
    to: { kind: 'preparing' },
    effects: [{ type: 'remove-pid-file', pid: 55 }, { type: 'prepare', attempt: 2 }],
  },
  {
    name: 'preparing + prepared → starting: spawn, connect 120 s, start 420 s',
    from: S.preparing(),
    event: { type: 'prepared', attempt: 1, note: null },
    to: { kind: 'starting', proc: null },
    effects: [{ type: 'report', ids: [1], step: 'starting' }, { type: 'spawn', attempt: 1 }, arm('connect', 120_000), arm('start', 420_000), arm('probe', 1_000)],
  },
  { name: 'preparing + prepared of an older attempt → ignored', from: S.preparing(), event: { type: 'prepared', attempt: 0, note: null }, to: { kind: 'preparing' }, never: ['spawn'] },
  { name: 'preparing + start → joins (one start for all)', from: S.preparing([1]), event: { type: 'start', id: 2, requested: true }, to: { kind: 'preparing', waiters: [1, 2] }, never: ['prepare'] },
  {
    name: 'preparing + stop → inactive, the update is cancelled, the start fails',
    from: S.preparing([1]),
    event: { type: 'stop', id: 2 },
    to: { kind: 'inactive' },
    effects: [{ type: 'cancel-prepare' }, settle([1], 'a stop was requested while it was starting'), settle([2], null)],
  },
  {
    name: 'preparing + spawn failed (a broken venv) → inactive, the start fails with the reason',
    from: S.preparing([1]),
    event: { type: 'spawn-failed', attempt: 1, reason: 'broken' },
    to: { kind: 'inactive', error: 'broken' },
    effects: [settle([1], 'broken')],
  },
  {
    name: 'spawning + spawn failed → inactive, the start fails with the reason',
    from: S.spawning([1]),
    event: { type: 'spawn-failed', attempt: 1, reason: 'could not run python' },
    to: { kind: 'inactive', error: 'could not run python' },
    effects: [settle([1], 'could not run python')],
  },
  { name: 'spawning + spawned → starting with our child', from: S.spawning([1]), event: { type: 'spawned', attempt: 1, pid: 100 }, to: { kind: 'starting', proc: ours(100, NOW) }, effects: [{ type: 'report', ids: [1], step: 'contacting' }] },
  { name: 'spawning + spawned of an older attempt → refused (logged)', from: S.spawning([1]), event: { type: 'spawned', attempt: 0, pid: 100 }, to: { kind: 'starting', proc: null }, effects: [{ type: 'rejected', state: 'starting', event: 'spawned', why: 'spawn of an older attempt (pid 100)' }] },
  {
    name: 'starting + its .p appears → probed at once',
    from: S.starting([1]),
    event: { type: 'files', filePid: 100, alive: true, names: true, jsonChanged: false },
    to: { kind: 'starting', pidFileSeen: true, filePid: 100 },
    effects: [{ type: 'probe', attempt: 1 }],
  },
  {
    name: 'starting + probe match → active; every waiter succeeds; deadlines cancelled',
    from: S.starting([1, 2], true),
    event: { type: 'probe', attempt: 1, result: 'match' },
    to: { kind: 'active', proc: ours() },
    effects: [{ type: 'cancel', timer: 'connect' }, { type: 'cancel', timer: 'start' }, { type: 'cancel', timer: 'probe' }, settle([1, 2], null)],
  },
  { name: 'starting + probe unreachable → still starting', from: S.starting([1], true), event: { type: 'probe', attempt: 1, result: 'unreachable' }, to: { kind: 'starting' }, never: ['settle'] },
  { name: 'starting + probe of an older attempt → ignored', from: S.starting([1], true), event: { type: 'probe', attempt: 0, result: 'match' }, to: { kind: 'starting' }, never: ['settle'] },
  { name: 'starting + probe deadline → probe again, re-armed', from: S.starting([1]), event: { type: 'deadline', timer: 'probe' }, to: { kind: 'starting' }, effects: [{ type: 'probe', attempt: 1 }, arm('probe', 1_000)] },
  {
    name: 'starting without .p + connect deadline (120 s) → its child is ended',
    from: S.starting([1], false),
    event: { type: 'deadline', timer: 'connect' },
    to: { kind: 'stopping', phase: 'term', pending: [{ id: 1, kind: 'start', failure: 'it wrote no process file within the connect deadline (120 s)', output: true }] },
    effects: [{ type: 'signal', pid: 100, signal: 'SIGTERM', why: 'its start failed or was cancelled' }, arm('kill', 5_000)],
  },
  { name: 'starting with its .p + connect deadline → keeps waiting', from: S.starting([1], true), event: { type: 'deadline', timer: 'connect' }, to: { kind: 'starting' }, never: ['signal', 'settle'] },
  {
    name: 'starting + start deadline (420 s) → its child is ended',
    from: S.starting([1], true),
    event: { type: 'deadline', timer: 'start' },
    to: { kind: 'stopping', phase: 'term', pending: [{ id: 1, kind: 'start', failure: 'it did not answer within the start deadline (420 s)', output: true }] },
    effects: [{ type: 'signal', pid: 100, signal: 'SIGTERM', why: 'its start failed or was cancelled' }],
  },
  {
    name: 'starting + exit code 1 → crashed; the start fails with the exit and its output',
    from: S.starting([1], true),
    event: { type: 'exited', pid: 100, code: 1, signal: null },
    to: { kind: 'crashed', exit: { code: 1, signal: null, at: NOW }, error: 'the worker process exited during start (code 1)' },
    effects: [settle([1], 'the worker process exited during start (code 1)', true)],
    never: ['arm'],
  },
  {
    name: 'starting + exit code 0 → inactive; the start fails',
    from: S.starting([1], true),
    event: { type: 'exited', pid: 100, code: 0, signal: null },
    to: { kind: 'inactive' },
    effects: [settle([1], 'the worker process exited during start (code 0)', true)],
  },
  { name: 'starting + exit of another pid → ignored', from: S.starting([1], true), event: { type: 'exited', pid: 999, code: 1, signal: null }, to: { kind: 'starting' }, never: ['settle'] },
  {
    name: 'starting + stop → its child is ended at once; the start fails',
    from: S.starting([1], true),
    event: { type: 'stop', id: 2 },
    to: { kind: 'stopping', phase: 'term', pending: [{ id: 1, kind: 'start', failure: 'a stop was requested while it was starting' }, { id: 2, kind: 'stop' }] },
    effects: [{ type: 'signal', pid: 100, signal: 'SIGTERM', why: 'its start failed or was cancelled' }],
  },
  {
    name: 'spawning + stop → waits for the spawn to end it',
    from: S.spawning([1]),
    event: { type: 'stop', id: 2 },
    to: { kind: 'stopping', proc: null, phase: 'term' },
    never: ['signal'],
  },
  {
    name: 'stopping while spawning + spawned → SIGTERM to the new child',
    from: { ...S.stopping('term', null), attempt: 1 },
    event: { type: 'spawned', attempt: 1, pid: 101 },
    to: { kind: 'stopping', proc: ours(101, NOW) },
    effects: [{ type: 'signal', pid: 101, signal: 'SIGTERM', why: 'its start was cancelled while it was spawned' }, arm('kill', 5_000)],
  },
  {
    name: 'stopping while spawning + spawn failed → stopped',
    from: S.stopping('term', null),
    event: { type: 'spawn-failed', attempt: 1, reason: 'x' },
    to: { kind: 'inactive' },
    effects: [settle([7], null)],
  },

  // ---- running and stopping
  { name: 'active + start → contact (probe), no spawn', from: S.active(), event: { type: 'start', id: 1, requested: true }, to: { kind: 'active', contacting: [1] }, effects: [{ type: 'report', ids: [1], step: 'contacting' }, { type: 'probe', attempt: 1 }], never: ['spawn'] },
  { name: 'active contacting + probe mismatch → that start fails, still active', from: { ...S.active(), contacting: [1] } as State, event: { type: 'probe', attempt: 1, result: 'mismatch' }, to: { kind: 'active', contacting: [] }, effects: [settle([1], 'it no longer answers with its uuid')] },
  { name: 'active + stop → the stop command, 15 s', from: S.active(), event: { type: 'stop', id: 7 }, to: { kind: 'stopping', phase: 'asked', wasActive: true }, effects: [{ type: 'send-stop' }, arm('stop', 15_000)], never: ['signal'] },
  { name: 'stopping (asked) + stop → joins', from: S.stopping('asked'), event: { type: 'stop', id: 8 }, to: { kind: 'stopping', pending: [{ id: 7, kind: 'stop' }, { id: 8, kind: 'stop' }] }, never: ['send-stop'] },
  {
    name: 'stopping (asked) + stop deadline (15 s) → SIGTERM, 5 s',
    from: S.stopping('asked'),
    event: { type: 'deadline', timer: 'stop' },
    to: { kind: 'stopping', phase: 'term' },
    effects: [{ type: 'signal', pid: 100, signal: 'SIGTERM', why: 'still running 15 s after the stop command' }, arm('kill', 5_000)],
  },
  {
    name: 'stopping (SIGTERM) + kill deadline (5 s) → SIGKILL',
    from: S.stopping('term'),
    event: { type: 'deadline', timer: 'kill' },
    to: { kind: 'stopping', phase: 'kill' },
    effects: [{ type: 'signal', pid: 100, signal: 'SIGKILL', why: 'still running 5 s after SIGTERM' }, arm('reap', 2_000)],
  },
  { name: 'stopping (SIGKILL) + reap deadline → it survived: active with the error', from: S.stopping('kill'), event: { type: 'deadline', timer: 'reap' }, to: { kind: 'active', error: 'process 100 survived SIGKILL' }, effects: [settle([7], 'process 100 survived SIGKILL')] },
  {
    name: 'stopping + exit → inactive; the stop succeeds',
    from: S.stopping('asked'),
    event: { type: 'exited', pid: 100, code: 0, signal: null },
    to: { kind: 'inactive', exit: { code: 0, signal: null, at: NOW } },
    effects: [settle([7], null)],
    never: ['arm'],
  },
  {
    name: 'stopping + exit by SIGTERM → inactive (asked for: no crash, no restart)',
    from: S.stopping('term'),
    event: { type: 'exited', pid: 100, code: null, signal: 'SIGTERM' },
    to: { kind: 'inactive' },
    never: ['arm'],
  },
  {
    name: 'stopping with a start queued + exit → the start begins',
    from: { ...S.stopping('asked'), queued: [3] } as State,
    event: { type: 'exited', pid: 100, code: 0, signal: null },
    to: { kind: 'preparing', waiters: [3] },
    effects: [settle([7], null), { type: 'prepare', attempt: 2 }],
  },
  { name: 'stopping + start → queued after the stop', from: S.stopping('asked'), event: { type: 'start', id: 3, requested: true }, to: { kind: 'stopping', queued: [3] }, never: ['prepare', 'spawn'] },
  {
    name: 'stopping an adopted worker + it no longer answers → left alone as unverified',
    from: S.stopping('asked', theirs()),
    event: { type: 'stop-sent', answered: false },
    to: { kind: 'unverified', pid: 200 },
    effects: [settle([7], 'it does not answer with its uuid, so pid 200 may be another program; leaving it alone')],
    never: ['signal'],
  },
  {
    name: 'stopping our child + it does not answer → SIGTERM at once',
    from: S.stopping('asked'),
    event: { type: 'stop-sent', answered: false },
    to: { kind: 'stopping', phase: 'term' },
    effects: [{ type: 'signal', pid: 100, signal: 'SIGTERM', why: 'our child does not answer with its uuid' }],
  },
  { name: 'stopping an adopted worker + its pid is gone → inactive', from: S.stopping('asked', theirs()), event: { type: 'pid-gone', pid: 200 }, to: { kind: 'inactive' }, effects: [settle([7], null)] },
  { name: 'inactive + stop → nothing to do', from: S.inactive(), event: { type: 'stop', id: 7 }, to: { kind: 'inactive' }, effects: [settle([7], null)] },
  { name: 'backoff + stop → the restart is cancelled', from: S.backoff(), event: { type: 'stop', id: 7 }, to: { kind: 'inactive' }, effects: [{ type: 'cancel', timer: 'backoff' }, settle([7], null)] },

  // ---- exits nobody asked for, restart policy
  {
    name: 'active (ours) + exit code 1, on-failure → backoff 1 s',
    from: S.active(),
    event: { type: 'exited', pid: 100, code: 1, signal: null },
    to: { kind: 'backoff', until: NOW + 1_000, crashes: [NOW] },
    effects: [arm('backoff', 1_000)],
  },
  { name: 'active (ours) + exit code 0 (the web UI stopped it) → inactive, no restart', from: S.active(), event: { type: 'exited', pid: 100, code: 0, signal: null }, to: { kind: 'inactive' }, never: ['arm'] },
  {
    name: 'active (ours), always + exit code 0 → inactive, no restart',
    from: S.active(ours(), { options: { restart: 'always', autostart: 'never' } }),
    event: { type: 'exited', pid: 100, code: 0, signal: null },
    to: { kind: 'inactive' },
    never: ['arm'],
  },
  {
    name: 'active (ours), never + exit code 1 → crashed',
    from: S.active(ours(), { options: { restart: 'never', autostart: 'never' } }),
    event: { type: 'exited', pid: 100, code: 1, signal: null },
    to: { kind: 'crashed', reason: 'exited unexpectedly (code 1)' },
    never: ['arm'],
  },
  {
    name: 'active (ours), on-failure + SIGTERM from someone → crashed, not restarted',
    from: S.active(),
    event: { type: 'exited', pid: 100, code: null, signal: 'SIGTERM' },
    to: { kind: 'crashed', reason: 'exited unexpectedly (signal SIGTERM)' },
    never: ['arm'],
  },
  {
    name: 'active (ours), always + SIGTERM from someone → backoff',
    from: S.active(ours(), { options: { restart: 'always', autostart: 'never' } }),
    event: { type: 'exited', pid: 100, code: null, signal: 'SIGTERM' },
    to: { kind: 'backoff' },
    effects: [arm('backoff', 1_000)],
  },
  { name: 'active (ours), on-failure + SIGKILL → backoff', from: S.active(), event: { type: 'exited', pid: 100, code: null, signal: 'SIGKILL' }, to: { kind: 'backoff' }, effects: [arm('backoff', 1_000)] },
  {
    name: 'active (adopted) + its pid is gone → inactive, never restarted (its exit code is unknown)',
    from: S.active(theirs()),
    event: { type: 'pid-gone', pid: 200 },
    to: { kind: 'inactive' },
    never: ['arm'],
  },
  { name: 'active (adopted) + exited → refused: not our child', from: S.active(theirs()), event: { type: 'exited', pid: 200, code: 1, signal: null }, to: { kind: 'active' }, effects: [{ type: 'rejected', state: 'active', event: 'exited', why: 'pid 200 is not our child' }] },
  {
    name: 'active (ours), closing + exit code 1 → crashed, no restart while the manager stops',
    from: S.active(ours(), { closing: true }),
    event: { type: 'exited', pid: 100, code: 1, signal: null },
    to: { kind: 'crashed' },
    never: ['arm'],
  },
  {
    name: 'backoff + backoff deadline → spawn at once (no env update)',
    from: S.backoff(),
    event: { type: 'deadline', timer: 'backoff' },
    to: { kind: 'starting', proc: null, waiters: [], attempt: 2 },
    effects: [{ type: 'spawn', attempt: 2 }, arm('connect', 120_000), arm('start', 420_000)],
    never: ['prepare', 'report'],
  },
  {
    name: 'restart attempt (no requester) + exit code 1 → counts as a crash, backoff 2 s',
    from: { ...S.starting([], true), crashes: [NOW - 5_000] },
    event: { type: 'exited', pid: 100, code: 1, signal: null },
    to: { kind: 'backoff', until: NOW + 2_000, crashes: [NOW - 5_000, NOW] },
  },
  { name: 'backoff + start → starts now', from: S.backoff({ crashes: [NOW] }), event: { type: 'start', id: 1, requested: true }, to: { kind: 'preparing', crashes: [] }, effects: [{ type: 'cancel', timer: 'backoff' }, { type: 'prepare', attempt: 2 }] },
  { name: 'crashed + requested start → forgets the crashes and the exit', from: S.crashed({ crashes: [NOW], exit: { code: 1, signal: null, at: 1 } }), event: { type: 'start', id: 1, requested: true }, to: { kind: 'preparing', crashes: [], exit: null } },
  { name: 'crashed + autostart → keeps the crash count', from: S.crashed({ crashes: [NOW] }), event: { type: 'start', id: 1, requested: false }, to: { kind: 'preparing', crashes: [NOW] } },

  // ---- a live pid in .p
  {
    name: 'inactive + .p with a live pid whose command line names the worker → starting (booting elsewhere)',
    from: S.inactive(),
    event: { type: 'files', filePid: 200, alive: true, names: true, jsonChanged: false },
    to: { kind: 'starting', proc: theirs(200, NOW) },
    effects: [{ type: 'probe', attempt: 2 }, arm('connect', 120_000)],
  },
  {
    name: 'inactive + .p with a live pid that does not name it → unverified',
    from: S.inactive(),
    event: { type: 'files', filePid: 300, alive: true, names: false, jsonChanged: false },
    to: { kind: 'unverified', pid: 300 },
    effects: [{ type: 'probe', attempt: 2 }, arm('connect', 120_000)],
  },
  { name: 'inactive + .p with a dead pid → the stale .p is removed', from: S.inactive(), event: { type: 'files', filePid: 300, alive: false, names: undefined, jsonChanged: false }, to: { kind: 'inactive', filePid: undefined }, effects: [{ type: 'remove-pid-file', pid: 300 }] },
  { name: 'inactive + .p without a pid (mid-rewrite) → nothing yet', from: S.inactive(), event: { type: 'files', filePid: null, alive: false, names: undefined, jsonChanged: false }, to: { kind: 'inactive', filePid: null }, never: ['remove-pid-file'] },
  { name: 'unverified + probe match → active (adopted)', from: S.unverified([1]), event: { type: 'probe', attempt: 1, result: 'match' }, to: { kind: 'active', proc: theirs(300, NOW - 1000) }, effects: [settle([1], null)] },
  { name: 'unverified + probe mismatch → still unverified', from: S.unverified([1]), event: { type: 'probe', attempt: 1, result: 'mismatch' }, to: { kind: 'unverified' }, never: ['settle', 'signal'] },
  {
    name: 'unverified + connect deadline → not the worker: its .p goes, the process is left alone',
    from: S.unverified([]),
    event: { type: 'deadline', timer: 'connect' },
    to: { kind: 'inactive', filePid: undefined },
    effects: [{ type: 'remove-pid-file', pid: 300 }],
    never: ['signal'],
  },
  {
    name: 'unverified with a start waiting + connect deadline → its .p goes and a new worker is spawned',
    from: S.unverified([1]),
    event: { type: 'deadline', timer: 'connect' },
    to: { kind: 'preparing', waiters: [1] },
    effects: [{ type: 'remove-pid-file', pid: 300 }, { type: 'prepare', attempt: 2 }],
    never: ['signal'],
  },
  { name: 'unverified + start → waits for it to prove itself (probe)', from: S.unverified([]), event: { type: 'start', id: 1, requested: true }, to: { kind: 'unverified', waiters: [1] }, effects: [{ type: 'report', ids: [1], step: 'contacting' }, { type: 'probe', attempt: 1 }] },
  {
    name: 'unverified + stop → refused with the reason, never signalled',
    from: S.unverified([]),
    event: { type: 'stop', id: 7 },
    to: { kind: 'unverified' },
    effects: [settle([7], 'it does not answer with its uuid, so pid 300 may be another program; leaving it alone')],
    never: ['signal', 'send-stop'],
  },
  { name: 'unverified + delete → its files go, the process is left alone', from: S.unverified([]), event: { type: 'delete', id: 9 }, to: { kind: 'removing', waiters: [9] }, effects: [{ type: 'report', ids: [9], step: 'removing' }, { type: 'remove-files' }], never: ['signal', 'send-stop'] },
  { name: 'unverified + its pid died → inactive, .p removed', from: S.unverified([]), event: { type: 'files', filePid: 300, alive: false, names: undefined, jsonChanged: false }, to: { kind: 'inactive' }, effects: [{ type: 'remove-pid-file', pid: 300 }] },
  { name: 'unverified + the pid now names the worker → starting', from: S.unverified([1]), event: { type: 'files', filePid: 300, alive: true, names: true, jsonChanged: false }, to: { kind: 'starting', proc: theirs(300, NOW), waiters: [1] } },

  // ---- delete
  { name: 'inactive + delete → removing', from: S.inactive(), event: { type: 'delete', id: 9 }, to: { kind: 'removing', waiters: [9] }, effects: [{ type: 'report', ids: [9], step: 'removing' }, { type: 'remove-files' }] },
  { name: 'active + delete → stop first', from: S.active(), event: { type: 'delete', id: 9 }, to: { kind: 'stopping', then: 'delete', phase: 'asked' }, effects: [{ type: 'report', ids: [9], step: 'stopping' }, { type: 'send-stop' }] },
  {
    name: 'stopping for a delete + exit → removing',
    from: S.stopping('asked', ours(), 'delete'),
    event: { type: 'exited', pid: 100, code: 0, signal: null },
    to: { kind: 'removing', waiters: [7] },
    effects: [{ type: 'report', ids: [7], step: 'removing' }, { type: 'remove-files' }],
  },
  { name: 'removing + removed → deleted, settled, forgotten', from: S.removing(), event: { type: 'removed' }, to: { kind: 'removing' }, effects: [{ type: 'report', ids: [9], step: 'deleted' }, settle([9], null), { type: 'forget' }] },
  { name: 'removing + remove failed → inactive with the reason (retry possible)', from: S.removing(), event: { type: 'remove-failed', reason: 'EACCES' }, to: { kind: 'inactive', error: 'EACCES' }, effects: [settle([9], 'EACCES')] },
  { name: 'removing + start → refused', from: S.removing(), event: { type: 'start', id: 1, requested: true }, to: { kind: 'removing' }, effects: [settle([1], 'it was deleted meanwhile')] },

  // ---- shutdown
  { name: 'active (ours) + shutdown → stopped', from: S.active(), event: { type: 'shutdown', keepWorkers: false }, to: { kind: 'stopping', closing: true }, effects: [{ type: 'send-stop' }] },
  { name: 'active (ours) + shutdown keeping workers → left running', from: S.active(), event: { type: 'shutdown', keepWorkers: true }, to: { kind: 'active', closing: true }, never: ['send-stop', 'signal'] },
  { name: 'active (adopted) + shutdown → left running', from: S.active(theirs()), event: { type: 'shutdown', keepWorkers: false }, to: { kind: 'active', closing: true }, never: ['send-stop', 'signal'] },
  { name: 'starting (ours) + shutdown keeping workers → the start is cancelled, its child ended', from: S.starting([1], true), event: { type: 'shutdown', keepWorkers: true }, to: { kind: 'stopping', closing: true }, effects: [{ type: 'signal', pid: 100, signal: 'SIGTERM', why: 'its start failed or was cancelled' }] },
  { name: 'backoff + shutdown → inactive, no restart', from: S.backoff(), event: { type: 'shutdown', keepWorkers: false }, to: { kind: 'inactive', closing: true }, effects: [{ type: 'cancel', timer: 'backoff' }] },
  { name: 'closing + start → refused', from: S.inactive({ closing: true }), event: { type: 'start', id: 1, requested: true }, to: { kind: 'inactive' }, effects: [settle([1], 'the Workermanager is shutting down')] },

  // ---- options
  { name: 'options → stored', from: S.active(), event: { type: 'options', options: { restart: 'always', autostart: 'always' } }, to: { kind: 'active', options: { restart: 'always', autostart: 'always' } } },

  // ---- refused transitions: logged, state unchanged, never thrown
  { name: 'inactive + stop deadline → refused', from: S.inactive(), event: { type: 'deadline', timer: 'stop' }, to: { kind: 'inactive' }, effects: [{ type: 'rejected', state: 'inactive', event: 'deadline', why: 'no stop in the asked phase' }] },
  { name: 'active + kill deadline → refused', from: S.active(), event: { type: 'deadline', timer: 'kill' }, to: { kind: 'active' }, effects: [{ type: 'rejected', state: 'active', event: 'deadline', why: 'no stop in the SIGTERM phase' }] },
  { name: 'inactive + reap deadline → refused', from: S.inactive(), event: { type: 'deadline', timer: 'reap' }, to: { kind: 'inactive' }, effects: [{ type: 'rejected', state: 'inactive', event: 'deadline', why: 'no stop in the SIGKILL phase' }] },
  { name: 'active + backoff deadline → refused', from: S.active(), event: { type: 'deadline', timer: 'backoff' }, to: { kind: 'active' }, effects: [{ type: 'rejected', state: 'active', event: 'deadline', why: 'not backing off' }] },
  { name: 'inactive + start deadline → refused', from: S.inactive(), event: { type: 'deadline', timer: 'start' }, to: { kind: 'inactive' }, effects: [{ type: 'rejected', state: 'inactive', event: 'deadline', why: 'no start deadline here' }] },
  { name: 'active + connect deadline → refused', from: S.active(), event: { type: 'deadline', timer: 'connect' }, to: { kind: 'active' }, effects: [{ type: 'rejected', state: 'active', event: 'deadline', why: 'no connect deadline here' }] },
  { name: 'active + removed → refused', from: S.active(), event: { type: 'removed' }, to: { kind: 'active' }, effects: [{ type: 'rejected', state: 'active', event: 'removed', why: 'no removal in flight' }] },
  { name: 'inactive + spawned → refused', from: S.inactive(), event: { type: 'spawned', attempt: 1, pid: 5 }, to: { kind: 'inactive' }, effects: [{ type: 'rejected', state: 'inactive', event: 'spawned', why: 'no spawn was in flight' }] },
];

/** `expected` appear in `actual` in this order. */
function inOrder(actual: Effect[], expected: Effect[]): void {
  let at = 0;
  for (const effect of expected) {
    const found = actual.findIndex((a, i) => i >= at && JSON.stringify(a) === JSON.stringify(effect));
    expect(found, `${JSON.stringify(effect)} (in order) in ${JSON.stringify(actual)}`).toBeGreaterThanOrEqual(0);
    at = found + 1;
  }
}

describe('step(): every transition', () => {
  it.each(rows)('$name', (row) => {
    const result = step(row.from, row.event, row.now ?? NOW, { ...T, ...row.timing });
    expect(result.state).toMatchObject(row.to);
    inOrder(result.effects, row.effects ?? []);
    for (const type of row.never ?? []) expect(result.effects.map((e) => e.type)).not.toContain(type);
    // A refused event leaves the state exactly as it was.
    if (result.effects.some((e) => e.type === 'rejected')) expect(result.state).toBe(row.from);
  });

  it('never signals a pid that is not proven to be the worker, whatever happens to it', () => {
    const events: Event[] = [
      { type: 'stop', id: 1 },
      { type: 'delete', id: 2 },
      { type: 'shutdown', keepWorkers: false },
      { type: 'probe', attempt: 1, result: 'mismatch' },
      { type: 'probe', attempt: 1, result: 'unreachable' },
      ...(['connect', 'start', 'probe', 'stop', 'kill', 'reap', 'backoff'] as const).map((timer): Event => ({ type: 'deadline', timer })),
      { type: 'files', filePid: 300, alive: true, names: false, jsonChanged: true },
      { type: 'pid-gone', pid: 300 },
    ];
    for (const event of events) {
      const { effects } = step(S.unverified([5]), event, NOW);
      expect(effects.filter((e) => e.type === 'signal' || e.type === 'send-stop'), event.type).toEqual([]);
    }
  });
});

describe('restart policy, backoff and crash loop (fake clock)', () => {
  /** Runs a child for `runMs`, then lets it exit with code 1; returns the state after the exit. */
  function crashAfter(state: State, runMs: number, clock: { now: number }, t: Timing = T): State {
    let s = state;
    if (s.kind === 'backoff') {
      clock.now = s.until;
      s = step(s, { type: 'deadline', timer: 'backoff' }, clock.now, t).state;
    }
    s = step(s, { type: 'spawned', attempt: s.attempt, pid: 100 + s.attempt }, clock.now, t).state;
    s = step(s, { type: 'probe', attempt: s.attempt, result: 'match' }, clock.now, t).state;
    expect(s.kind).toBe('active');
    clock.now += runMs;
    return step(s, { type: 'exited', pid: runningPid(s), code: 1, signal: null }, clock.now, t).state;
  }
  const runningPid = (s: State) => (s.kind === 'active' ? s.proc.pid : -1);
  const spawning = (): State => ({ ...initialState(), kind: 'starting', proc: null, pidFileSeen: false, waiters: [], note: null, attempt: 1 });

  it('backs off 1 s, doubling, and after 5 unexpected exits within 60 s stops restarting (crash loop)', () => {
    const clock = { now: NOW };
    let s = spawning();
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      s = crashAfter(s, 500, clock);
      expect(s.kind).toBe('backoff');
      if (s.kind === 'backoff') delays.push(s.until - clock.now);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000]);
    s = crashAfter(s, 500, clock);
    expect(s).toMatchObject({ kind: 'crashed', reason: 'crash loop: 5 unexpected exits within 60 s (last: code 1); not restarting' });
    expect(s.error).toContain('crash loop');
  });

  it('caps the backoff at 60 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((n) => backoffMs(T, n))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    const clock = { now: NOW };
    // A crash limit out of reach, and exits close together: the delay climbs to the cap and stays there.
    const t = { ...T, crashLimit: 100, crashWindowMs: 10 * 60_000 };
    let s = spawning();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      s = crashAfter(s, 100, clock, t);
      if (s.kind === 'backoff') delays.push(s.until - clock.now);
    }
    expect(delays.slice(-3)).toEqual([60_000, 60_000, 60_000]);
  });

  it('forgets earlier exits after 60 s of running', () => {
    const clock = { now: NOW };
    let s = spawning();
    for (let i = 0; i < 4; i++) s = crashAfter(s, 500, clock);
    expect(s.crashes).toHaveLength(4);
    s = crashAfter(s, 60_000, clock);
    expect(s).toMatchObject({ kind: 'backoff', crashes: [clock.now] });
    if (s.kind === 'backoff') expect(s.until - clock.now).toBe(1_000);
  });

  it('forgets exits older than the 60 s window', () => {
    const clock = { now: NOW };
    let s = spawning();
    for (let i = 0; i < 4; i++) s = crashAfter(s, 500, clock);
    // 4 exits, then a long pause in backoff is impossible; shift the clock instead, as if they were long ago.
    s = { ...s, crashes: s.crashes.map((at) => at - 61_000) };
    s = crashAfter(s, 500, clock);
    expect(s.kind).toBe('backoff');
    expect(s.crashes).toHaveLength(1);
  });

  it('restartsAfter: exit code 0 is never a failure; on-failure respects polite signals; always does not', () => {
    const table: [RestartPolicy, number | null, string | null, boolean][] = [
      ['never', 1, null, false],
      ['never', null, 'SIGKILL', false],
      ['on-failure', 0, null, false],
      ['on-failure', 1, null, true],
      ['on-failure', null, 'SIGKILL', true],
      ['on-failure', null, 'SIGSEGV', true],
      ['on-failure', null, 'SIGTERM', false],
      ['on-failure', null, 'SIGINT', false],
      ['always', 0, null, false],
      ['always', 1, null, true],
      ['always', null, 'SIGTERM', true],
    ];
    for (const [policy, code, signal, restarts] of table) expect(restartsAfter(policy, { code, signal }), `${policy} ${code} ${signal}`).toBe(restarts);
  });

  it('lists as active only a worker that answered (and one being stopped after it did)', () => {
    expect(isActive(S.active())).toBe(true);
    expect(isActive(S.stopping('asked'))).toBe(true);
    expect(isActive(S.starting())).toBe(false);
    expect(isActive(S.unverified())).toBe(false);
  });
});
