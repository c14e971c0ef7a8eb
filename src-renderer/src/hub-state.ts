/**
 * What the UI knows about the hub, and the one pure function that advances it: `reduce(state, event)`.
 * Unchanged workers keep their object identity across frames so memoised rows skip re-rendering.
 */
import type {
  IdentifyReply,
  ManagerInfoMessage,
  ParsedManagerFrame,
  ProgressMessage,
  WorkerConfig,
  WorkerIdRequestType,
  WorkerRuntime,
} from '../../src-shared/protocol.js';
import type { ConnectionState } from './ws-client.js';

export interface Notice {
  id: number;
  tone: 'error' | 'info';
  text: string;
}

/** Lines kept per watched worker: the hub's initial tail plus a few screens of live output. */
export const MAX_LOG_LINES = 1000;

export interface HubState {
  connection: ConnectionState;
  identity: IdentifyReply | null;
  /** Only from a manager with the additive protocol; null means: the original, or not yet answered. */
  info: ManagerInfoMessage | null;
  /** Null until the first `worker_status` of this connection. */
  active: WorkerConfig[] | null;
  inactive: WorkerConfig[];
  /** Per-worker runtime from `worker_states`, keyed by uuid. */
  runtime: Record<string, WorkerRuntime>;
  /** Null when nothing is in progress (`message: ""`). */
  progress: ProgressMessage | null;
  /** The user dismissed the blocking overlay of the current operation. */
  overlayDismissed: boolean;
  notices: Notice[];
  nextNoticeId: number;
  /** Requests this UI sent whose operation has not ended yet (no reset progress seen), by worker. */
  pending: Record<string, WorkerIdRequestType>;
  /** The worker this UI created last (from `worker_created`). */
  created: string | null;
  /** Log lines of each watched worker; presence of a key means it is watched. */
  logs: Record<string, string[]>;
}

export type HubEvent =
  | { kind: 'frame'; frame: ParsedManagerFrame }
  | { kind: 'connection'; state: ConnectionState }
  | { kind: 'sent'; uuid: string; request: WorkerIdRequestType }
  | { kind: 'notice'; tone: Notice['tone']; text: string }
  | { kind: 'dismiss-notice'; id: number }
  | { kind: 'dismiss-overlay' }
  | { kind: 'watch-logs'; uuid: string }
  | { kind: 'unwatch-logs'; uuid: string };

export function initialState(url: string): HubState {
  return {
    connection: { status: 'connecting', url, attempt: 1 },
    identity: null,
    info: null,
    active: null,
    inactive: [],
    runtime: {},
    progress: null,
    overlayDismissed: false,
    notices: [],
    nextNoticeId: 1,
    pending: {},
    created: null,
    logs: {},
  };
}

export function reduce(state: HubState, event: HubEvent): HubState {
  switch (event.kind) {
    case 'frame':
      return reduceFrame(state, event.frame);
    case 'connection':
      // A new connection starts a new session: the additive data must be asked for again, and a manager
      // without the additive protocol must not show what the previous one said.
      if (event.state.status === 'open') {
        return { ...state, connection: event.state, identity: null, info: null, runtime: {}, progress: null, overlayDismissed: false, pending: {} };
      }
      return { ...state, connection: event.state };
    case 'sent':
      return { ...state, pending: { ...state.pending, [event.uuid]: event.request } };
    case 'notice':
      return addNotice(state, event.tone, event.text);
    case 'dismiss-notice':
      return { ...state, notices: state.notices.filter((n) => n.id !== event.id) };
    case 'dismiss-overlay':
      return { ...state, overlayDismissed: true };
    case 'watch-logs':
      return event.uuid in state.logs ? state : { ...state, logs: { ...state.logs, [event.uuid]: [] } };
    case 'unwatch-logs':
      return { ...state, logs: without(state.logs, [event.uuid]) };
  }
}

function reduceFrame(state: HubState, frame: ParsedManagerFrame): HubState {
  if (frame.kind === 'identify') return { ...state, identity: frame.reply };
  if (frame.kind !== 'message') return state;
  const m = frame.message;
  switch (m.type) {
    case 'worker_status':
      return { ...state, active: reuseEqual(state.active ?? [], m.active), inactive: reuseEqual(state.inactive, m.inactive) };
    case 'progress':
      // The reset ends an operation; it names no worker, so every pending request counts as answered.
      if (m.message === '') return { ...state, progress: null, overlayDismissed: false, pending: {} };
      return { ...state, progress: m };
    case 'error':
      return addNotice(state, 'error', m.message);
    case 'worker_created':
      return { ...state, created: m.uuid };
    case 'worker_deleted':
      return {
        ...state,
        active: state.active?.filter((w) => w.uuid !== m.uuid) ?? null,
        inactive: state.inactive.filter((w) => w.uuid !== m.uuid),
        runtime: without(state.runtime, [m.uuid]),
        pending: without(state.pending, [m.uuid]),
        logs: without(state.logs, [m.uuid]),
        created: state.created === m.uuid ? null : state.created,
      };
    case 'set_worker': {
      // The answer to our set_active: the worker runs with this config; the next worker_status agrees.
      const others = (list: WorkerConfig[]) => list.filter((w) => w.uuid !== m.data.uuid);
      return { ...state, active: [...others(state.active ?? []), m.data], inactive: others(state.inactive) };
    }
    case 'manager_info':
      return { ...state, info: m };
    case 'worker_states': {
      const base = m.full ? {} : without(state.runtime, m.removed);
      const runtime: Record<string, WorkerRuntime> = { ...base };
      for (const w of m.workers) {
        const previous = state.runtime[w.uuid];
        runtime[w.uuid] = previous !== undefined && sameJson(previous, w) ? previous : w;
      }
      return { ...state, runtime };
    }
    case 'worker_log': {
      const current = state.logs[m.uuid];
      if (current === undefined) return state;
      const lines = m.initial ? m.lines : [...current, ...m.lines];
      return { ...state, logs: { ...state.logs, [m.uuid]: lines.slice(-MAX_LOG_LINES) } };
    }
    case 'env_history':
    case 'env_rolled_back':
    case 'worker_options':
      // The dashboard does not need these answers: its progress frames show a rollback, worker_states the options.
      return state;
  }
}

function addNotice(state: HubState, tone: Notice['tone'], text: string): HubState {
  return { ...state, notices: [...state.notices, { id: state.nextNoticeId, tone, text }], nextNoticeId: state.nextNoticeId + 1 };
}

function without<T>(record: Record<string, T>, keys: string[]): Record<string, T> {
  if (!keys.some((k) => k in record)) return record;
  const copy = { ...record };
  for (const k of keys) delete copy[k];
  return copy;
}

/** The new list, with each worker that did not change replaced by its previous object. */
function reuseEqual(previous: WorkerConfig[], next: WorkerConfig[]): WorkerConfig[] {
  const byId = new Map(previous.map((w) => [w.uuid, w]));
  return next.map((w) => {
    const old = byId.get(w.uuid);
    return old !== undefined && sameJson(old, w) ? old : w;
  });
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
