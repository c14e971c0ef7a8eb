/**
 * The FuncNodes Workermanager wire protocol: every message the hub receives or sends, with its parser,
 * validator and encoder. Pure (no Node or DOM APIs) so the hub, the CLI client and the renderer share it.
 * Shapes follow the original manager exactly (spec §3.3–3.6); only invalid JSON requests differ, and
 * only by getting an `error` reply where the original stayed silent (spec §3.7 recommendation).
 */

import { wsUrl } from './address.js';

/** Ids that may reach a file path: the original's uuid formats, and nothing that can leave a directory. */
export const WORKER_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export function isValidWorkerId(id: unknown): id is string {
  return typeof id === 'string' && WORKER_ID_PATTERN.test(id);
}

// ---------------------------------------------------------------- worker config (worker_<uuid>.json)

export interface PackageDependency {
  package?: string;
  version?: string | null;
  [key: string]: unknown;
}

/** A worker JSON as on disk (spec §2.4). Unknown keys are kept and passed through untouched. */
export interface WorkerConfig {
  type: string;
  uuid: string;
  name?: string | null;
  data_path?: string | null;
  env_path?: string | null;
  worker_dependencies?: Record<string, unknown>;
  package_dependencies?: Record<string, PackageDependency>;
  pid?: number | null;
  update_on_startup?: Record<string, boolean>;
  host?: string;
  port?: number;
  ssl?: boolean;
  [key: string]: unknown;
}

/** The address clients dial for a worker: its bound host made reachable, IPv6 literals bracketed. */
export function workerUrl(config: Pick<WorkerConfig, 'host' | 'port' | 'ssl'>): string | undefined {
  if (typeof config.port !== 'number') return undefined;
  return wsUrl(config.host, config.port, config.ssl === true);
}

// ---------------------------------------------------------------- manager → client

export type ProgressStatus = 'info' | 'success' | 'error';

export interface ProgressMessage {
  type: 'progress';
  message: string;
  status: ProgressStatus;
  progress: number;
  blocking: boolean;
}

export interface WorkerStatusMessage {
  type: 'worker_status';
  active: WorkerConfig[];
  inactive: WorkerConfig[];
}

export interface WorkerCreatedMessage {
  type: 'worker_created';
  uuid: string;
}

export interface WorkerDeletedMessage {
  type: 'worker_deleted';
  uuid: string;
}

export interface SetWorkerMessage {
  type: 'set_worker';
  data: WorkerConfig;
}

export interface ErrorMessage {
  type: 'error';
  message: string;
}

/** The `identify` reply has no `type` field in the original. */
export interface IdentifyReply {
  class: 'WorkerManager';
  py: string;
}

// ---------------------------------------------------------------- additive messages (opt-in per connection)
// The original's clients never send the requests below, so they never receive these replies. A client
// discovers support by sending `watch_workers`: this manager answers `manager_info` and `worker_states`;
// the original answers nothing.

/** What the supervisor knows about a worker beyond the original's active/inactive. */
export type WorkerState = 'inactive' | 'starting' | 'active' | 'stopping' | 'crashed';

/**
 * The supervisor's own state (`core/supervisor/machine.ts`), finer than `WorkerState`: `preparing` (env
 * update), `unverified` (a live pid in `.p` not yet known to be this worker), `backoff` (waiting to restart),
 * `removing` (being deleted).
 */
export type WorkerPhase = 'inactive' | 'crashed' | 'backoff' | 'unverified' | 'preparing' | 'starting' | 'active' | 'stopping' | 'removing';

/** Whether the supervisor restarts a worker of its own after an exit nobody asked for (README: Restart policy). */
export type RestartPolicy = 'never' | 'on-failure' | 'always';
export const RESTART_POLICIES: readonly RestartPolicy[] = ['never', 'on-failure', 'always'];

/**
 * The worker JSON's own `autostart` key, written by FuncNodes >= 1.7 (funcnodes-worker 1.6) and read by its
 * Python manager: only these three values may be written, since an invalid one breaks FuncNodes' scans.
 */
export type AutostartPolicy = 'never' | 'always' | 'unless-stopped';
export const AUTOSTART_POLICIES: readonly AutostartPolicy[] = ['never', 'always', 'unless-stopped'];

/** As FuncNodes' `normalize_autostart_policy`: `true` is `unless-stopped`, `false`/`null`/missing `never`; else undefined. */
export function normalizeAutostart(value: unknown): AutostartPolicy | undefined {
  if (value === true) return 'unless-stopped';
  if (value === false || value === null || value === undefined) return 'never';
  return AUTOSTART_POLICIES.includes(value as AutostartPolicy) ? (value as AutostartPolicy) : undefined;
}

export interface WorkerExit {
  code: number | null;
  signal: string | null;
  /** Epoch ms. */
  at: number;
}

export interface WorkerRuntime {
  uuid: string;
  name: string | null;
  state: WorkerState;
  pid: number | null;
  /** Epoch ms when this manager started it or first found it running; null while not running. */
  started_at: number | null;
  /** Running, but not started by this manager (another manager, the Python CLI). */
  adopted: boolean;
  /** How its last process ended, while this manager watched it. */
  exit: WorkerExit | null;
  /** Why its last start or stop failed. */
  error: string | null;
  /** The last lines of its output (up to 20; `watch_logs` gives up to 200). */
  last_lines: string[];
  phase: WorkerPhase;
  restart: RestartPolicy;
  /** FuncNodes' autostart policy: anything but `never` is started when the manager starts. */
  autostart: AutostartPolicy;
  /** Epoch ms of the next restart while in `backoff`, else null. */
  restart_at: number | null;
}

/** A process exists (ours or adopted): it has a pid and an address, and can be stopped. */
export function isRunningState(state: WorkerState): boolean {
  return state === 'active' || state === 'starting' || state === 'stopping';
}

/** How a worker's process ended, worded to fit the tray, notifications and the dashboard alike. */
export function exitText(exit: WorkerExit): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code ?? 'unknown'}`;
}

export interface ManagerInfoMessage {
  type: 'manager_info';
  version: string;
  /** The interpreter for workers without a venv (identify's `py`). */
  py: string;
  config_dir: string;
  workers_dir: string;
  /** What `new_worker` uses when the request leaves `in_venv` out. */
  in_venv_default: boolean;
  pid: number;
}

/** `full`: the complete table (first reply to `watch_workers`); otherwise only what changed. */
export interface WorkerStatesMessage {
  type: 'worker_states';
  full: boolean;
  workers: WorkerRuntime[];
  removed: string[];
}

/** `initial`: the buffered tail sent on `watch_logs`; later frames carry new lines only. */
export interface WorkerLogMessage {
  type: 'worker_log';
  uuid: string;
  lines: string[];
  initial: boolean;
}

/** A recorded `pip freeze` of a worker's venv, taken before and after an update on start. */
export interface EnvSnapshotInfo {
  id: string;
  /** Epoch ms. */
  created: number;
  /** Requirement lines (`name==version`). */
  packages: string[];
  /** A start succeeded with these versions. */
  started: boolean;
}

/** Reply to `env_history`: the worker's snapshots, newest first. */
export interface EnvHistoryMessage {
  type: 'env_history';
  uuid: string;
  snapshots: EnvSnapshotInfo[];
}

/** Reply to `env_rollback` once the versions of `snapshot` are installed again. */
export interface EnvRolledBackMessage {
  type: 'env_rolled_back';
  uuid: string;
  snapshot: string;
}

/** Reply to `set_worker_options`: the options now stored and in force. */
export interface WorkerOptionsMessage {
  type: 'worker_options';
  uuid: string;
  restart: RestartPolicy;
  autostart: AutostartPolicy;
}

export type ExtensionMessage = ManagerInfoMessage | WorkerStatesMessage | WorkerLogMessage | EnvHistoryMessage | EnvRolledBackMessage | WorkerOptionsMessage;

export type ManagerMessage =
  | ProgressMessage
  | WorkerStatusMessage
  | WorkerCreatedMessage
  | WorkerDeletedMessage
  | SetWorkerMessage
  | ErrorMessage
  | ExtensionMessage;

/** Most log lines `watch_logs` sends at first, and the ring buffer kept per worker. */
export const LOG_TAIL_LINES = 200;
/** Log lines carried in each `WorkerRuntime`. */
export const RUNTIME_TAIL_LINES = 20;

/** The reply to plain `ping` is this text, not JSON. */
export const PONG = 'pong';

/** Keys in the original's order: type, message, status, progress, blocking. */
export function progress(message: string, value: number, blocking = true, status: ProgressStatus = 'info'): ProgressMessage {
  return { type: 'progress', message, status, progress: value, blocking };
}

/** `message: ""` tells the UI to compute its own status: the end of every operation (spec §3.5). */
export const RESET_PROGRESS: ProgressMessage = progress('', 1, false);

export function errorMessage(message: string): ErrorMessage {
  return { type: 'error', message };
}

/** The original's exact error texts (spec §3.4); clients match the substring `not found`. */
export const errorText = {
  activateNotFound: (id: string) => `Worker with id ${id} not found.`,
  activateFailed: (id: string) => `Could not activate worker with id ${id}.`,
  deleteNotFound: (id: string) => `Worker ${id} not found`,
};

/** The original's progress texts and fill values (spec §3.6), in one place. */
export const progressStep = {
  makingVenv: () => progress('Making virtual environment.', 0.1),
  addingFuncnodes: () => progress('Adding funcnodes', 0.5),
  writingConfig: () => progress('Writing configuration.', 0.9),
  creatingWorker: () => progress('Creating new worker.', 1.0),
  activating: () => progress('Activating worker.', 0.1),
  updating: () => progress('Updating worker.', 0.2),
  updatingPackage: (pkg: string) => progress(`updating ${pkg}`, 0.3),
  starting: () => progress('Starting worker.', 0.4),
  contacting: () => progress('Contacting worker.', 0.5),
  runstate: (text: string) => progress(text.replaceAll('\n', ' - '), 0.5),
  stoppingWorker: () => progress('Stopping worker.', 0.1),
  deleting: () => progress('Deleting worker...', 0.1),
  removingFiles: () => progress('Removing files...', 0.6),
  deleted: () => progress('Worker deleted.', 1.0),
  stoppingManager: () => progress('Stopping worker manager.', 1.0, false),
};

export function encodeMessage(message: ManagerMessage | IdentifyReply): string {
  return JSON.stringify(message);
}

// ---------------------------------------------------------------- client → manager

/** Frames compared exactly (case-sensitive, untrimmed) before any JSON parsing (spec §3.2). */
export const PLAIN_COMMANDS = ['ping', 'identify', 'stop', 'worker_status', 'new_worker'] as const;
export type PlainCommand = (typeof PLAIN_COMMANDS)[number];

export const WORKER_ID_REQUESTS = ['set_active', 'stop_worker', 'restart_worker', 'delete_worker'] as const;
export type WorkerIdRequestType = (typeof WORKER_ID_REQUESTS)[number];

/** Additive: a worker's env snapshots and the rollback (`to`: a snapshot id; default the last one a start succeeded with). */
export const ENV_REQUESTS = ['env_history', 'env_rollback'] as const;
export type EnvRequestType = (typeof ENV_REQUESTS)[number];

/** The new_worker options this manager honours; the original passed any other key to a Python constructor. */
export interface NewWorkerOptions {
  name?: string;
  uuid?: string;
  reference?: string;
  copyLib: boolean;
  copyNS: boolean;
  /** `undefined` means: use the manager's default (FUNCNODES_WORKER_IN_VENV). */
  in_venv?: boolean;
  /** FuncNodes >= 1.7's `new_worker` takes it too (a policy or a boolean); written as a policy. */
  autostart?: AutostartPolicy;
  host?: string;
  port?: number;
}

export type ClientRequest =
  | { type: 'ping' | 'identify' | 'stop' | 'worker_status' }
  | { type: 'new_worker'; options: NewWorkerOptions }
  | { type: WorkerIdRequestType | 'env_history'; workerid: string }
  | { type: 'env_rollback'; workerid: string; to?: string }
  | { type: 'watch_workers' | 'unwatch_workers' }
  | { type: 'watch_logs'; workerid: string; lines: number }
  | { type: 'unwatch_logs'; workerid: string }
  | ({ type: 'set_worker_options'; workerid: string } & WorkerOptionsPatch);

/** The options `set_worker_options` changes; those left out keep their value. */
export interface WorkerOptionsPatch {
  restart?: RestartPolicy;
  autostart?: AutostartPolicy;
}

export type ParseResult =
  | { ok: true; request: ClientRequest }
  /** Not JSON and not a plain command: the original ignores it and so must we (test T5). */
  | { ok: false; silent: true }
  | { ok: false; silent: false; error: string };

const invalid = (error: string): ParseResult => ({ ok: false, silent: false, error });

const ID_RULE = 'ids are 1-128 characters of A-Z, a-z, 0-9, "_" and "-"';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

export function parseClientFrame(text: string): ParseResult {
  if ((PLAIN_COMMANDS as readonly string[]).includes(text)) {
    const command = text as PlainCommand;
    return { ok: true, request: command === 'new_worker' ? { type: 'new_worker', options: { copyLib: false, copyNS: false } } : { type: command } };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { ok: false, silent: true };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return invalid(`Invalid request: expected a JSON object with a "type", got ${describe(data)}.`);
  }
  const msg = data as Record<string, unknown>;
  if (typeof msg.type !== 'string') return invalid('Invalid request: missing string field "type".');
  if (msg.type === 'new_worker') return parseNewWorker(msg.kwargs);
  if (msg.type === 'watch_workers' || msg.type === 'unwatch_workers') return { ok: true, request: { type: msg.type } };
  if ([...WORKER_ID_REQUESTS, ...ENV_REQUESTS, 'watch_logs', 'unwatch_logs', 'set_worker_options'].includes(msg.type)) {
    const type = msg.type;
    if (!('workerid' in msg)) return invalid(`Invalid ${type} request: missing field "workerid".`);
    if (typeof msg.workerid !== 'string') return invalid(`Invalid ${type} request: "workerid" must be a string, got ${describe(msg.workerid)}.`);
    if (!isValidWorkerId(msg.workerid)) return invalid(`Invalid ${type} request: worker id ${JSON.stringify(msg.workerid)} is not valid (${ID_RULE}).`);
    if (type === 'unwatch_logs') return { ok: true, request: { type, workerid: msg.workerid } };
    if (type === 'set_worker_options') return parseWorkerOptions(msg, msg.workerid);
    if (type === 'watch_logs') {
      const lines = msg.lines ?? LOG_TAIL_LINES;
      if (typeof lines !== 'number' || !Number.isInteger(lines) || lines < 0 || lines > LOG_TAIL_LINES) {
        return invalid(`Invalid watch_logs request: "lines" must be an integer from 0 to ${LOG_TAIL_LINES}.`);
      }
      return { ok: true, request: { type, workerid: msg.workerid, lines } };
    }
    if (type === 'env_rollback') {
      if (msg.to === undefined) return { ok: true, request: { type, workerid: msg.workerid } };
      if (typeof msg.to !== 'string' || !/^\d{8}T\d{9}Z$/.test(msg.to)) {
        return invalid(`Invalid env_rollback request: "to" must be a snapshot id such as 20260101T120000000Z, got ${describe(msg.to)}.`);
      }
      return { ok: true, request: { type, workerid: msg.workerid, to: msg.to } };
    }
    return { ok: true, request: { type: type as WorkerIdRequestType | 'env_history', workerid: msg.workerid } };
  }
  return invalid(`Unknown request type ${JSON.stringify(msg.type)}.`);
}

function parseWorkerOptions(msg: Record<string, unknown>, workerid: string): ParseResult {
  const request: Extract<ClientRequest, { type: 'set_worker_options' }> = { type: 'set_worker_options', workerid };
  if (msg.restart !== undefined) {
    if (!RESTART_POLICIES.includes(msg.restart as RestartPolicy)) {
      return invalid(`Invalid set_worker_options request: "restart" must be one of ${RESTART_POLICIES.join(', ')}, got ${JSON.stringify(msg.restart)}.`);
    }
    request.restart = msg.restart as RestartPolicy;
  }
  if (msg.autostart !== undefined) {
    const autostart = normalizeAutostart(msg.autostart);
    if (autostart === undefined || msg.autostart === null) {
      return invalid(`Invalid set_worker_options request: "autostart" must be one of ${AUTOSTART_POLICIES.join(', ')} (or true, false), got ${typeof msg.autostart === 'string' ? JSON.stringify(msg.autostart) : describe(msg.autostart)}.`);
    }
    request.autostart = autostart;
  }
  if (request.restart === undefined && request.autostart === undefined) return invalid('Invalid set_worker_options request: give "restart", "autostart" or both.');
  return { ok: true, request };
}

function parseNewWorker(kwargs: unknown): ParseResult {
  if (kwargs === undefined || kwargs === null) return { ok: true, request: { type: 'new_worker', options: { copyLib: false, copyNS: false } } };
  if (typeof kwargs !== 'object' || Array.isArray(kwargs)) return invalid(`Invalid new_worker request: "kwargs" must be an object, got ${describe(kwargs)}.`);
  const k = kwargs as Record<string, unknown>;
  const options: NewWorkerOptions = { copyLib: false, copyNS: false };
  const bad = (field: string, expected: string) => invalid(`Invalid new_worker request: "${field}" must be ${expected}, got ${describe(k[field])}.`);

  if (k.name !== undefined && k.name !== null) {
    if (typeof k.name !== 'string') return bad('name', 'a string');
    if (k.name !== '') options.name = k.name;
  }
  for (const field of ['uuid', 'reference'] as const) {
    const value = k[field];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') return bad(field, 'a string');
    if (!isValidWorkerId(value)) return invalid(`Invalid new_worker request: ${field} ${JSON.stringify(value)} is not valid (${ID_RULE}).`);
    options[field] = value;
  }
  for (const field of ['copyLib', 'copyNS'] as const) {
    const value = k[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'boolean') return bad(field, 'true or false');
    options[field] = value;
  }
  if (k.in_venv !== undefined && k.in_venv !== null) {
    if (typeof k.in_venv !== 'boolean') return bad('in_venv', 'true, false or null');
    options.in_venv = k.in_venv;
  }
  if (k.autostart !== undefined && k.autostart !== null) {
    const autostart = normalizeAutostart(k.autostart);
    if (autostart === undefined) return bad('autostart', `one of ${AUTOSTART_POLICIES.join(', ')}, true, false or null`);
    options.autostart = autostart;
  }
  if (k.workertype !== undefined && k.workertype !== null && k.workertype !== 'WSWorker') {
    return invalid(`Invalid new_worker request: workertype ${JSON.stringify(k.workertype)} is not supported (only "WSWorker").`);
  }
  if (k.host !== undefined && k.host !== null) {
    if (typeof k.host !== 'string' || k.host === '') return bad('host', 'a non-empty string');
    options.host = k.host;
  }
  if (k.port !== undefined && k.port !== null) {
    if (typeof k.port !== 'number' || !Number.isInteger(k.port) || k.port < 1 || k.port > 65535) return bad('port', 'an integer from 1 to 65535');
    options.port = k.port;
  }
  return { ok: true, request: { type: 'new_worker', options } };
}

// ---------------------------------------------------------------- reading manager frames (clients)

export type ParsedManagerFrame =
  | { kind: 'pong' }
  | { kind: 'identify'; reply: IdentifyReply }
  | { kind: 'message'; message: ManagerMessage }
  | { kind: 'unknown'; text: string };

const MANAGER_TYPES = new Set([
  'progress',
  'worker_status',
  'worker_created',
  'worker_deleted',
  'set_worker',
  'error',
  'manager_info',
  'worker_states',
  'worker_log',
  'env_history',
  'env_rolled_back',
  'worker_options',
]);

/** For clients (CLI, renderer, tests): classify one text frame from the manager. */
export function parseManagerFrame(text: string): ParsedManagerFrame {
  if (text === PONG) return { kind: 'pong' };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { kind: 'unknown', text };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { kind: 'unknown', text };
  const msg = data as Record<string, unknown>;
  if (msg.class === 'WorkerManager') return { kind: 'identify', reply: msg as unknown as IdentifyReply };
  if (typeof msg.type === 'string' && MANAGER_TYPES.has(msg.type)) return { kind: 'message', message: msg as unknown as ManagerMessage };
  return { kind: 'unknown', text };
}
