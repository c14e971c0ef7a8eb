/**
 * One worker's lifecycle as a pure state machine: `step(state, event, now) → { state, effects }`. No I/O and
 * no clock of its own: the executor (supervisor.ts) runs the effects and feeds their results back as
 * events, and passes the time in. Each state carries only the facts that make sense in it, so an
 * impossible combination (a stop deadline for a worker that is not stopping, a pid for an inactive one)
 * cannot be represented. An event a state does not accept is returned as a `rejected` effect: logged by
 * the executor, never thrown.
 */

import type { AutostartPolicy, RestartPolicy } from '../../../src-shared/protocol.js';

export { RESTART_POLICIES, type RestartPolicy } from '../../../src-shared/protocol.js';

export interface WorkerOptions {
  restart: RestartPolicy;
  autostart: AutostartPolicy;
}

export const DEFAULT_OPTIONS: WorkerOptions = { restart: 'on-failure', autostart: 'never' };

export interface Timing {
  /** A spawned worker must write its `.p` by then; a live pid not known to be the worker must prove it. */
  connectMs: number;
  /** A spawned worker must answer by then. */
  startMs: number;
  /** From the stop command to SIGTERM. */
  stopMs: number;
  /** From SIGTERM to SIGKILL. */
  killGraceMs: number;
  /** From SIGKILL to giving up ("survived SIGKILL"). */
  reapMs: number;
  /** First restart delay; doubles per unexpected exit up to `backoffMaxMs`. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** `crashLimit` unexpected exits within `crashWindowMs` are a crash loop. */
  crashWindowMs: number;
  crashLimit: number;
  /** A run this long forgets the earlier unexpected exits. */
  stableMs: number;
  /** How often a starting worker is asked whether it answers (besides on each change of its files). */
  probeRetryMs: number;
}

export const DEFAULT_TIMING: Timing = {
  connectMs: 120_000,
  startMs: 420_000,
  stopMs: 15_000,
  killGraceMs: 5_000,
  reapMs: 2_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 60_000,
  crashWindowMs: 60_000,
  crashLimit: 5,
  stableMs: 60_000,
  probeRetryMs: 1_000,
};

export interface Exit {
  code: number | null;
  signal: string | null;
  at: number;
}

/** A running process of the worker. */
export interface Proc {
  pid: number;
  /** Our child: its exit comes as `exited` with code and signal. Others are watched by pid (`pid-gone`). */
  owned: boolean;
  /** Epoch ms it was spawned or first seen. */
  since: number;
}

export type RequestId = number;

/** What every state carries. */
export interface Common {
  options: WorkerOptions;
  /** Times of unexpected exits still inside the crash window. */
  crashes: readonly number[];
  exit: Exit | null;
  error: string | null;
  /** The pid in `.p` as last observed (undefined: no `.p`; null: unreadable). */
  filePid: number | null | undefined;
  /** The manager is stopping: no new starts, no restarts. */
  closing: boolean;
  /** Counts start attempts; results of an older attempt (a cancelled spawn, probe) are ignored. */
  attempt: number;
}

/** After a stop: back to rest, or on to removing the files. */
export type AfterStop = 'rest' | 'delete';

/** A request settled when a stop ends: `error` null for success, else the failure for that request. */
export interface Pending {
  id: RequestId;
  kind: 'start' | 'stop' | 'delete';
  /** For a start that failed and is now ending its child: why it failed. */
  failure?: string;
  /** The failure is the worker's doing (exit, deadline): its last output explains it. */
  output?: boolean;
}

export type State = Common &
  (
    | { kind: 'inactive' }
    | { kind: 'crashed'; reason: string }
    | { kind: 'backoff'; until: number }
    /** A live pid in `.p` that is not (yet) known to be this worker: never signalled. */
    | { kind: 'unverified'; pid: number; since: number; waiters: RequestId[] }
    /** The worker's env is being updated before the spawn. */
    | { kind: 'preparing'; waiters: RequestId[] }
    /** `proc` null while the spawn is in flight; `pidFileSeen` once our child wrote its `.p`. */
    | { kind: 'starting'; proc: Proc | null; pidFileSeen: boolean; waiters: RequestId[]; note: string | null }
    /** `contacting`: start requests waiting for a probe of the running worker. */
    | { kind: 'active'; proc: Proc; contacting: RequestId[] }
    /** `proc` null while a spawn it cancels is in flight. */
    | { kind: 'stopping'; proc: Proc | null; phase: 'asked' | 'term' | 'kill'; then: AfterStop; pending: Pending[]; queued: RequestId[]; wasActive: boolean }
    | { kind: 'removing'; waiters: RequestId[] }
  );

export type StateKind = State['kind'];

export type TimerName = 'connect' | 'start' | 'probe' | 'stop' | 'kill' | 'reap' | 'backoff';

export type ProbeResult = 'match' | 'mismatch' | 'unreachable';

export type Event =
  | { type: 'start'; id: RequestId; requested: boolean }
  | { type: 'stop'; id: RequestId }
  | { type: 'delete'; id: RequestId }
  | { type: 'shutdown'; keepWorkers: boolean }
  | { type: 'options'; options: WorkerOptions }
  /** `.p` or JSON changed. `alive`: the `.p` pid exists; `names`: its command line names the worker (undefined: cannot tell here). */
  | { type: 'files'; filePid: number | null | undefined; alive: boolean; names: boolean | undefined; jsonChanged: boolean }
  | { type: 'prepared'; attempt: number; note: string | null }
  | { type: 'spawned'; attempt: number; pid: number }
  | { type: 'spawn-failed'; attempt: number; reason: string }
  | { type: 'exited'; pid: number; code: number | null; signal: string | null }
  /** A process we did not start is gone (seen by pid). */
  | { type: 'pid-gone'; pid: number }
  | { type: 'probe'; attempt: number; result: ProbeResult }
  /** The stop command was sent (`answered`: the worker confirmed its uuid first). */
  | { type: 'stop-sent'; answered: boolean }
  | { type: 'removed' }
  | { type: 'remove-failed'; reason: string }
  | { type: 'deadline'; timer: TimerName };

export type ReportStep = 'starting' | 'contacting' | 'stopping' | 'removing' | 'deleted';

export type Effect =
  | { type: 'prepare'; attempt: number }
  | { type: 'cancel-prepare' }
  | { type: 'spawn'; attempt: number }
  | { type: 'probe'; attempt: number }
  /** Checks the uuid at the worker's address, then sends `stop_worker`; answers with `stop-sent`. */
  | { type: 'send-stop' }
  /** To the process group (Windows: the tree); `why` goes to the log. */
  | { type: 'signal'; pid: number; signal: 'SIGTERM' | 'SIGKILL'; why: string }
  | { type: 'remove-pid-file'; pid: number | null }
  | { type: 'remove-files' }
  | { type: 'arm'; timer: TimerName; ms: number }
  | { type: 'cancel'; timer: TimerName }
  | { type: 'report'; ids: RequestId[]; step: ReportStep }
  /** `output`: the error is the worker's doing (an exit, a deadline), so its last output belongs to it. */
  | { type: 'settle'; ids: RequestId[]; error: string | null; output?: boolean }
  /** The worker's files are gone after our delete: the executor drops the machine. */
  | { type: 'forget' }
  | { type: 'rejected'; state: StateKind; event: Event['type']; why: string };

export interface Step {
  state: State;
  effects: Effect[];
}

export function initialState(options: WorkerOptions = DEFAULT_OPTIONS): State {
  return { kind: 'inactive', options, crashes: [], exit: null, error: null, filePid: undefined, closing: false, attempt: 0 };
}

// ------------------------------------------------------------------------------------------ helpers

const ALL_TIMERS: TimerName[] = ['connect', 'start', 'probe', 'stop', 'kill', 'reap', 'backoff'];
const cancelAll = (): Effect[] => ALL_TIMERS.map((timer) => ({ type: 'cancel', timer }));
const settle = (ids: RequestId[], error: string | null, output?: boolean): Effect[] =>
  ids.length > 0 ? [{ type: 'settle', ids, error, ...(output ? { output } : {}) }] : [];
const report = (ids: RequestId[], step: ReportStep): Effect[] => (ids.length > 0 ? [{ type: 'report', ids, step }] : []);
const seconds = (ms: number) => `${ms / 1000} s`;

function common(state: State): Common {
  const { options, crashes, exit, error, filePid, closing, attempt } = state;
  return { options, crashes, exit, error, filePid, closing, attempt };
}

function rejected(state: State, event: Event, why: string): Step {
  return { state, effects: [{ type: 'rejected', state: state.kind, event: event.type, why }] };
}

const unchanged = (state: State): Step => ({ state, effects: [] });

/** How an exit reads in a reason: `code 3`, `signal SIGKILL`. */
export function exitWords(exit: { code: number | null; signal: string | null }): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code ?? 'unknown'}`;
}

/** Polite signals: someone asked the worker to stop (kill, systemd, a logout), which `on-failure` respects. */
const POLITE = new Set(['SIGTERM', 'SIGINT', 'SIGHUP']);

/** Whether the restart policy brings a worker back after this unexpected exit. Exit code 0 never is a failure. */
export function restartsAfter(policy: RestartPolicy, exit: { code: number | null; signal: string | null }): boolean {
  if (exit.signal === null && exit.code === 0) return false;
  if (policy === 'always') return true;
  if (policy === 'on-failure') return exit.signal === null || !POLITE.has(exit.signal);
  return false;
}

/** Backoff before restart number `n` (1-based): base doubling, capped. */
export function backoffMs(timing: Timing, n: number): number {
  return Math.min(timing.backoffBaseMs * 2 ** Math.max(0, n - 1), timing.backoffMaxMs);
}

/** A start attempt: the env update first for a requested start, straight to the spawn for a restart. */
function beginStart(base: Common, waiters: RequestId[], prepare: boolean, t: Timing): Step {
  const attempt = base.attempt + 1;
  const next: Common = { ...base, attempt, error: null };
  const clearPid: Effect[] = typeof base.filePid === 'number' || base.filePid === null ? [{ type: 'remove-pid-file', pid: base.filePid }] : [];
  if (prepare) return { state: { ...next, kind: 'preparing', waiters }, effects: [...clearPid, { type: 'prepare', attempt }] };
  return spawnNow({ ...next }, waiters, null, t, clearPid);
}

function spawnNow(base: Common, waiters: RequestId[], note: string | null, t: Timing, before: Effect[] = []): Step {
  return {
    state: { ...base, kind: 'starting', proc: null, pidFileSeen: false, waiters, note },
    effects: [
      ...before,
      ...report(waiters, 'starting'),
      { type: 'spawn', attempt: base.attempt },
      { type: 'arm', timer: 'connect', ms: t.connectMs },
      { type: 'arm', timer: 'start', ms: t.startMs },
      { type: 'arm', timer: 'probe', ms: t.probeRetryMs },
    ],
  };
}

/** A live pid was found in `.p` while nothing of ours runs. */
function foundLivePid(base: Common, pid: number, names: boolean | undefined, waiters: RequestId[], now: number, t: Timing): Step {
  const attempt = base.attempt + 1;
  const next = { ...base, attempt };
  const effects: Effect[] = [...cancelAll(), { type: 'probe', attempt }, { type: 'arm', timer: 'connect', ms: t.connectMs }, { type: 'arm', timer: 'probe', ms: t.probeRetryMs }];
  if (names === true) {
    // Its command line names the worker: it is booting (another manager, the Python CLI).
    return { state: { ...next, kind: 'starting', proc: { pid, owned: false, since: now }, pidFileSeen: true, waiters, note: null }, effects };
  }
  return { state: { ...next, kind: 'unverified', pid, since: now, waiters }, effects };
}

/** The worker answered: active; every start waiting for it succeeds. */
function becomeActive(base: Common, proc: Proc, waiters: RequestId[]): Step {
  return {
    state: { ...base, kind: 'active', proc, contacting: [], error: null },
    effects: [{ type: 'cancel', timer: 'connect' }, { type: 'cancel', timer: 'start' }, { type: 'cancel', timer: 'probe' }, ...settle(waiters, null)],
  };
}

/** Ends our child (or a process proven to be the worker) after a failed or cancelled start. */
function endStart(base: Common, proc: Proc | null, pending: Pending[], queued: RequestId[], t: Timing, then: AfterStop = 'rest'): Step {
  const effects: Effect[] = [...cancelAll()];
  if (proc !== null) effects.push({ type: 'signal', pid: proc.pid, signal: 'SIGTERM', why: 'its start failed or was cancelled' }, { type: 'arm', timer: 'kill', ms: t.killGraceMs });
  return { state: { ...base, kind: 'stopping', proc, phase: 'term', then, pending, queued, wasActive: false }, effects };
}

/** Start requests fail with `reason`; the failure is remembered as the worker's error. */
const failStarts = (waiters: RequestId[], reason: string, output?: boolean): Pending[] =>
  waiters.map((id) => ({ id, kind: 'start', failure: reason, ...(output ? { output } : {}) }));

/** A process of the worker ended; `exit` is null when it was not our child (no code known). */
function afterExit(state: Extract<State, { proc: Proc | null }>, exit: Exit | null, now: number, t: Timing): Step {
  const base = common(state);
  // Its `.p` (a crash leaves it behind) would block the next start (spec §2.5): removed as the original does.
  const stale = state.proc !== null && base.filePid === state.proc.pid;
  const recorded: Common = { ...base, exit: exit ?? base.exit, filePid: stale ? undefined : base.filePid };
  const cleanup: Effect[] = stale ? [{ type: 'remove-pid-file', pid: state.proc!.pid }] : [];
  const next = afterExitOf(state, recorded, exit, now, t);
  return { state: next.state, effects: [...cleanup, ...next.effects] };
}

function afterExitOf(state: Extract<State, { proc: Proc | null }>, recorded: Common, exit: Exit | null, now: number, t: Timing): Step {
  if (state.kind === 'stopping') return finishStop(state, recorded, t);
  const how = exit ? exitWords(exit) : 'its process is gone';
  if (state.kind === 'starting' && state.waiters.length > 0) {
    // A requested start: its requesters learn why; no restart (they asked, they see the error).
    const reason = `the worker process exited during start (${how})`;
    const failed = exit !== null && (exit.code !== 0 || exit.signal !== null);
    const rest: State = failed ? { ...recorded, kind: 'crashed', reason, error: reason } : { ...recorded, kind: 'inactive', error: reason };
    return { state: rest, effects: [...cancelAll(), ...settle(state.waiters, reason, true)] };
  }
  const contacting = state.kind === 'active' ? state.contacting : state.waiters;
  const effects: Effect[] = [...cancelAll(), ...settle(contacting, `the worker process exited (${how})`)];
  if (exit === null || (exit.code === 0 && exit.signal === null)) {
    // A clean stop (the web UI sends stop_worker to the worker itself, spec §14.10) or a process we cannot judge.
    return { state: { ...recorded, kind: 'inactive' }, effects };
  }
  const ranMs = state.proc ? now - state.proc.since : 0;
  const earlier = ranMs >= t.stableMs ? [] : recorded.crashes.filter((at) => now - at < t.crashWindowMs);
  const crashes = [...earlier, now];
  const owned = state.proc?.owned === true;
  if (!owned || recorded.closing || !restartsAfter(recorded.options.restart, exit)) {
    return { state: { ...recorded, crashes, kind: 'crashed', reason: `exited unexpectedly (${how})` }, effects };
  }
  if (crashes.length >= t.crashLimit) {
    const reason = `crash loop: ${crashes.length} unexpected exits within ${seconds(t.crashWindowMs)} (last: ${how}); not restarting`;
    return { state: { ...recorded, crashes, kind: 'crashed', reason, error: reason }, effects };
  }
  const delay = backoffMs(t, crashes.length);
  return { state: { ...recorded, crashes, kind: 'backoff', until: now + delay }, effects: [...effects, { type: 'arm', timer: 'backoff', ms: delay }] };
}

/** The process is gone after a stop: settle, then rest, delete, or start what queued meanwhile. */
function finishStop(state: Extract<State, { kind: 'stopping' }>, base: Common, t: Timing): Step {
  const effects: Effect[] = [...cancelAll()];
  for (const p of state.pending) if (p.kind !== 'delete') effects.push(...settle([p.id], p.failure ?? null, p.output));
  const startFailure = state.pending.find((p) => p.failure !== undefined)?.failure ?? null;
  const rested: Common = { ...base, error: startFailure };
  if (state.then === 'delete') {
    const deleters = state.pending.filter((p) => p.kind === 'delete').map((p) => p.id);
    effects.push(...settle(state.queued, 'it was deleted meanwhile'), ...report(deleters, 'removing'), { type: 'remove-files' });
    return { state: { ...rested, kind: 'removing', waiters: deleters }, effects };
  }
  if (state.queued.length > 0 && !base.closing) {
    const next = beginStart(rested, state.queued, true, t);
    return { state: next.state, effects: [...effects, ...next.effects] };
  }
  effects.push(...settle(state.queued, 'the Workermanager is shutting down'));
  return { state: { ...rested, kind: 'inactive' }, effects };
}

/** Stop (or delete) a running worker that is proven to be this worker. */
function stopRunning(state: Extract<State, { kind: 'active' | 'starting' }>, pending: Pending[], then: AfterStop, t: Timing): Step {
  const base = common(state);
  if (state.kind === 'active') {
    const failures = settle(state.contacting, 'a stop was requested');
    return {
      state: { ...base, kind: 'stopping', proc: state.proc, phase: 'asked', then, pending, queued: [], wasActive: true },
      effects: [...failures, { type: 'send-stop' }, { type: 'arm', timer: 'stop', ms: t.stopMs }],
    };
  }
  // Still starting: it cannot take the stop command yet; its tree is ended at once.
  const why = then === 'delete' ? 'the worker was deleted while it was starting' : 'a stop was requested while it was starting';
  return endStart(base, state.proc, [...failStarts(state.waiters, why), ...pending], [], t, then);
}

// ------------------------------------------------------------------------------------------ step

export function step(state: State, event: Event, now: number, t: Timing = DEFAULT_TIMING): Step {
  const base = common(state);
  switch (event.type) {
    case 'options':
      return { state: { ...state, options: event.options }, effects: [] };

    case 'shutdown': {
      const closing: Common = { ...base, closing: true };
      switch (state.kind) {
        case 'backoff':
          return { state: { ...closing, kind: 'inactive' }, effects: cancelAll() };
        case 'preparing':
          return { state: { ...closing, kind: 'inactive' }, effects: [{ type: 'cancel-prepare' }, ...settle(state.waiters, 'the Workermanager is shutting down')] };
        case 'starting':
          if (state.proc !== null && !state.proc.owned) return { state: { ...state, ...closing }, effects: settle(state.waiters, 'the Workermanager is shutting down') };
          return endStart(closing, state.proc, failStarts(state.waiters, 'the Workermanager is shutting down'), [], t);
        case 'active':
          if (event.keepWorkers || !state.proc.owned) return { state: { ...state, closing: true }, effects: [] };
          return stopRunning({ ...state, closing: true }, [], 'rest', t);
        case 'unverified':
          return { state: { ...state, closing: true }, effects: settle(state.waiters, 'the Workermanager is shutting down') };
        default:
          return { state: { ...state, closing: true }, effects: [] };
      }
    }

    case 'start': {
      if (base.closing) return { state, effects: settle([event.id], 'the Workermanager is shutting down') };
      const ids = [event.id];
      switch (state.kind) {
        case 'inactive':
        case 'crashed':
        case 'backoff': {
          // A start asked for by someone forgets earlier crashes; autostart and restarts do not.
          const fresh: Common = event.requested ? { ...base, crashes: [], exit: null } : base;
          const next = beginStart(fresh, ids, true, t);
          return { state: next.state, effects: [...cancelAll(), ...next.effects] };
        }
        case 'preparing':
          return { state: { ...state, waiters: [...state.waiters, event.id] }, effects: [] };
        case 'starting':
          return { state: { ...state, waiters: [...state.waiters, event.id] }, effects: state.proc ? report(ids, 'contacting') : [] };
        case 'unverified':
          return { state: { ...state, waiters: [...state.waiters, event.id] }, effects: [...report(ids, 'contacting'), { type: 'probe', attempt: base.attempt }] };
        case 'active':
          return { state: { ...state, contacting: [...state.contacting, event.id] }, effects: [...report(ids, 'contacting'), { type: 'probe', attempt: base.attempt }] };
        case 'stopping':
          return { state: { ...state, queued: [...state.queued, event.id] }, effects: [] };
        case 'removing':
          return { state, effects: settle(ids, 'it was deleted meanwhile') };
      }
      break;
    }

    case 'stop': {
      const ids = [event.id];
      switch (state.kind) {
        case 'inactive':
        case 'crashed':
        case 'removing':
          return { state, effects: settle(ids, null) };
        case 'backoff':
          return { state: { ...base, kind: 'inactive' }, effects: [...cancelAll(), ...settle(ids, null)] };
        case 'preparing':
          return {
            state: { ...base, kind: 'inactive' },
            effects: [{ type: 'cancel-prepare' }, ...settle(state.waiters, 'a stop was requested while it was starting'), ...settle(ids, null)],
          };
        case 'unverified':
          // Never signalled: the pid may be another program's.
          return { state, effects: settle(ids, `it does not answer with its uuid, so pid ${state.pid} may be another program; leaving it alone`) };
        case 'starting':
        case 'active':
          return stopRunning(state, [{ id: event.id, kind: 'stop' }], 'rest', t);
        case 'stopping':
          return { state: { ...state, pending: [...state.pending, { id: event.id, kind: 'stop' }] }, effects: [] };
      }
      break;
    }

    case 'delete': {
      const ids = [event.id];
      const remove = (from: Common, extra: Effect[] = []): Step => ({
        state: { ...from, kind: 'removing', waiters: ids },
        effects: [...cancelAll(), ...extra, ...report(ids, 'removing'), { type: 'remove-files' }],
      });
      switch (state.kind) {
        case 'inactive':
        case 'crashed':
        case 'backoff':
          return remove(base);
        case 'preparing':
          return remove(base, [{ type: 'cancel-prepare' }, ...settle(state.waiters, 'it was deleted meanwhile')]);
        case 'unverified':
          // Not the worker as far as anyone can tell: its files go, the process is left alone.
          return remove(base, settle(state.waiters, 'it was deleted meanwhile'));
        case 'starting':
        case 'active': {
          const next = stopRunning(state, [{ id: event.id, kind: 'delete' }], 'delete', t);
          return { state: next.state, effects: [...report(ids, 'stopping'), ...next.effects] };
        }
        case 'stopping':
          return {
            state: { ...state, then: 'delete', pending: [...state.pending, { id: event.id, kind: 'delete' }] },
            effects: report(ids, 'stopping'),
          };
        case 'removing':
          return { state: { ...state, waiters: [...state.waiters, event.id] }, effects: [] };
      }
      break;
    }

    case 'files': {
      const seen: Common = { ...base, filePid: event.filePid };
      const livePid = typeof event.filePid === 'number' && event.alive ? event.filePid : undefined;
      switch (state.kind) {
        case 'inactive':
        case 'crashed':
        case 'backoff': {
          if (livePid !== undefined) return foundLivePid(seen, livePid, event.names, [], now, t);
          // A `.p` whose process is gone blocks the next start (spec §2.5): removed as the original does.
          if (typeof event.filePid === 'number') return { state: { ...state, ...seen, filePid: undefined }, effects: [{ type: 'remove-pid-file', pid: event.filePid }] };
          return { state: { ...state, ...seen }, effects: [] };
        }
        case 'unverified': {
          if (livePid === undefined) {
            if (event.filePid === null) return { state: { ...state, ...seen }, effects: [] };
            const effects: Effect[] = [...cancelAll(), ...(typeof event.filePid === 'number' ? [{ type: 'remove-pid-file', pid: event.filePid } as Effect] : [])];
            if (state.waiters.length > 0 && !base.closing) {
              const next = beginStart({ ...seen, filePid: undefined }, state.waiters, true, t);
              return { state: next.state, effects: [...effects, ...next.effects] };
            }
            return { state: { ...seen, filePid: undefined, kind: 'inactive' }, effects };
          }
          if (livePid !== state.pid || event.names === true) return foundLivePid(seen, livePid, event.names, state.waiters, now, t);
          return { state: { ...state, ...seen }, effects: event.jsonChanged ? [{ type: 'probe', attempt: base.attempt }] : [] };
        }
        case 'starting': {
          if (state.proc === null || state.proc.owned) {
            const ours = state.proc !== null && event.filePid === state.proc.pid;
            const pidFileSeen = state.pidFileSeen || ours;
            return { state: { ...state, ...seen, pidFileSeen }, effects: event.jsonChanged || (ours && !state.pidFileSeen) ? [{ type: 'probe', attempt: base.attempt }] : [] };
          }
          if (typeof event.filePid === 'number' && !event.alive && event.filePid === state.proc.pid) return afterExit({ ...state, ...seen }, null, now, t);
          return { state: { ...state, ...seen }, effects: event.jsonChanged ? [{ type: 'probe', attempt: base.attempt }] : [] };
        }
        case 'active':
        case 'stopping': {
          const proc = state.proc;
          if (proc && !proc.owned && typeof event.filePid === 'number' && event.filePid === proc.pid && !event.alive) return afterExit({ ...state, ...seen }, null, now, t);
          return { state: { ...state, ...seen }, effects: [] };
        }
        default:
          return { state: { ...state, ...seen }, effects: [] };
      }
    }

    case 'prepared': {
      if (state.kind !== 'preparing' || event.attempt !== base.attempt) return unchanged(state);
      return spawnNow(base, state.waiters, event.note, t);
    }

    case 'spawned': {
      if (event.attempt !== base.attempt) return rejected(state, event, `spawn of an older attempt (pid ${event.pid})`);
      const proc: Proc = { pid: event.pid, owned: true, since: now };
      if (state.kind === 'starting' && state.proc === null) return { state: { ...state, proc }, effects: report(state.waiters, 'contacting') };
      // A stop or shutdown came while it was being spawned: end it now.
      if (state.kind === 'stopping' && state.proc === null) {
        return {
          state: { ...state, proc },
          effects: [{ type: 'signal', pid: proc.pid, signal: 'SIGTERM', why: 'its start was cancelled while it was spawned' }, { type: 'arm', timer: 'kill', ms: t.killGraceMs }],
        };
      }
      return rejected(state, event, 'no spawn was in flight');
    }

    case 'spawn-failed': {
      if (event.attempt !== base.attempt) return unchanged(state);
      // The env update (a broken venv) or the spawn itself failed: nothing runs.
      if (state.kind === 'preparing' || (state.kind === 'starting' && state.proc === null)) {
        return { state: { ...base, kind: 'inactive', error: event.reason }, effects: [...cancelAll(), ...settle(state.waiters, event.reason)] };
      }
      if (state.kind === 'stopping' && state.proc === null) return finishStop(state, base, t);
      return rejected(state, event, 'no spawn was in flight');
    }

    case 'exited':
    case 'pid-gone': {
      const proc = 'proc' in state ? state.proc : null;
      if (proc === null || proc.pid !== event.pid) return unchanged(state);
      if (event.type === 'exited' && !proc.owned) return rejected(state, event, `pid ${event.pid} is not our child`);
      const exit = event.type === 'exited' ? { code: event.code, signal: event.signal, at: now } : null;
      return afterExit(state as Extract<State, { proc: Proc | null }>, exit, now, t);
    }

    case 'probe': {
      if (event.attempt !== base.attempt) return unchanged(state);
      const match = event.result === 'match';
      switch (state.kind) {
        case 'starting':
          if (match && state.proc !== null) return becomeActive(base, state.proc, state.waiters);
          return unchanged(state);
        case 'unverified':
          if (match) return becomeActive(base, { pid: state.pid, owned: false, since: state.since }, state.waiters);
          return unchanged(state);
        case 'active':
          return { state: { ...state, contacting: [] }, effects: settle(state.contacting, match ? null : 'it no longer answers with its uuid') };
        default:
          return unchanged(state);
      }
    }

    case 'stop-sent': {
      if (state.kind !== 'stopping' || state.phase !== 'asked') return unchanged(state);
      if (event.answered || state.proc === null) return unchanged(state);
      if (state.proc.owned) {
        // Our child: terminated without waiting for a command it cannot take.
        return {
          state: { ...state, phase: 'term' },
          effects: [
            { type: 'cancel', timer: 'stop' },
            { type: 'signal', pid: state.proc.pid, signal: 'SIGTERM', why: 'our child does not answer with its uuid' },
            { type: 'arm', timer: 'kill', ms: t.killGraceMs },
          ],
        };
      }
      // Someone else's process that no longer answers with the uuid: its pid may be a stranger's now.
      const why = `it does not answer with its uuid, so pid ${state.proc.pid} may be another program; leaving it alone`;
      return {
        state: { ...base, kind: 'unverified', pid: state.proc.pid, since: now, waiters: [], error: why },
        effects: [{ type: 'cancel', timer: 'stop' }, ...settle(state.pending.map((p) => p.id), why), ...settle(state.queued, why), { type: 'arm', timer: 'connect', ms: t.connectMs }],
      };
    }

    case 'removed':
      if (state.kind !== 'removing') return rejected(state, event, 'no removal in flight');
      return { state, effects: [...report(state.waiters, 'deleted'), ...settle(state.waiters, null), { type: 'forget' }] };

    case 'remove-failed':
      if (state.kind !== 'removing') return rejected(state, event, 'no removal in flight');
      return { state: { ...base, kind: 'inactive', error: event.reason }, effects: settle(state.waiters, event.reason) };

    case 'deadline':
      return onDeadline(state, event, t);
  }
  return rejected(state, event, 'not accepted in this state');
}

function onDeadline(state: State, event: Extract<Event, { type: 'deadline' }>, t: Timing): Step {
  const base = common(state);
  switch (event.timer) {
    case 'probe':
      if (state.kind === 'starting' || state.kind === 'unverified') {
        return { state, effects: [{ type: 'probe', attempt: base.attempt }, { type: 'arm', timer: 'probe', ms: t.probeRetryMs }] };
      }
      return unchanged(state);
    case 'connect':
      if (state.kind === 'starting' && state.proc?.owned !== false) {
        if (state.pidFileSeen) return unchanged(state);
        const reason = `it wrote no process file within the connect deadline (${seconds(t.connectMs)})`;
        return endStart(base, state.proc, failStarts(state.waiters, reason, true), [], t);
      }
      if (state.kind === 'starting') {
        // Booting elsewhere (its command line names it) but silent: the requesters are told, it is left to run.
        const reason = `its running process (pid ${state.proc!.pid}) did not answer within the connect deadline (${seconds(t.connectMs)})`;
        return { state: { ...state, waiters: [], error: state.waiters.length > 0 ? reason : base.error }, effects: [{ type: 'cancel', timer: 'probe' }, ...settle(state.waiters, reason)] };
      }
      if (state.kind === 'unverified') {
        // Not the worker: treated as not running; its `.p` goes so the next start spawns a new worker.
        const cleared: Common = { ...base, filePid: undefined };
        const effects: Effect[] = [...cancelAll(), { type: 'remove-pid-file', pid: state.pid }];
        if (state.waiters.length > 0 && !base.closing) {
          const next = beginStart({ ...cleared }, state.waiters, true, t);
          return { state: next.state, effects: [...effects, ...next.effects.filter((e) => e.type !== 'remove-pid-file')] };
        }
        return { state: { ...cleared, kind: 'inactive' }, effects };
      }
      return rejected(state, event, 'no connect deadline here');
    case 'start':
      if (state.kind === 'starting' && state.proc?.owned !== false) {
        const reason = `it did not answer within the start deadline (${seconds(t.startMs)})`;
        return endStart(base, state.proc, failStarts(state.waiters, reason, true), [], t);
      }
      return rejected(state, event, 'no start deadline here');
    case 'stop':
      if (state.kind === 'stopping' && state.phase === 'asked' && state.proc) {
        return {
          state: { ...state, phase: 'term' },
          effects: [
            { type: 'signal', pid: state.proc.pid, signal: 'SIGTERM', why: `still running ${seconds(t.stopMs)} after the stop command` },
            { type: 'arm', timer: 'kill', ms: t.killGraceMs },
          ],
        };
      }
      return rejected(state, event, 'no stop in the asked phase');
    case 'kill':
      if (state.kind === 'stopping' && state.phase === 'term' && state.proc) {
        return {
          state: { ...state, phase: 'kill' },
          effects: [
            { type: 'signal', pid: state.proc.pid, signal: 'SIGKILL', why: `still running ${seconds(t.killGraceMs)} after SIGTERM` },
            { type: 'arm', timer: 'reap', ms: t.reapMs },
          ],
        };
      }
      return rejected(state, event, 'no stop in the SIGTERM phase');
    case 'reap':
      if (state.kind === 'stopping' && state.phase === 'kill' && state.proc) {
        const why = `process ${state.proc.pid} survived SIGKILL`;
        const ids = [...state.pending.map((p) => p.id), ...state.queued];
        return { state: { ...base, kind: 'active', proc: state.proc, contacting: [], error: why }, effects: settle(ids, why) };
      }
      return rejected(state, event, 'no stop in the SIGKILL phase');
    case 'backoff':
      if (state.kind === 'backoff') {
        if (base.closing) return { state: { ...base, kind: 'inactive' }, effects: [] };
        return beginStart(base, [], false, t);
      }
      return rejected(state, event, 'not backing off');
  }
}

/** What `worker_status` lists as active. */
export const isActive = (state: State): boolean => state.kind === 'active' || (state.kind === 'stopping' && state.wasActive);

/** A process of the worker that may be signalled (ours, or proven to be the worker). */
export function runningProc(state: State): Proc | null {
  return state.kind === 'active' || state.kind === 'stopping' || state.kind === 'starting' ? state.proc : null;
}
