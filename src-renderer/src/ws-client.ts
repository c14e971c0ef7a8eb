/**
 * The renderer's one WebSocket connection to the manager: connects, reconnects with capped exponential
 * backoff (reset once a connection opens), and encodes every request the UI sends. The socket constructor
 * and the timers are injected so the whole thing runs under Node with fakes.
 */
import {
  LOG_TAIL_LINES,
  parseManagerFrame,
  type ClientRequest,
  type NewWorkerOptions,
  type ParsedManagerFrame,
  type WorkerIdRequestType,
  type WorkerOptionsPatch,
} from '../../src-shared/protocol.js';

/** The part of the browser's WebSocket this client uses. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(): void;
  addEventListener(type: 'open' | 'close', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}

export type SocketFactory = (url: string) => SocketLike;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** WebSocket.OPEN; the constant is not on the SocketLike interface. */
const OPEN = 1;

export type ConnectionState =
  | { status: 'connecting'; url: string; attempt: number }
  | { status: 'open'; url: string }
  | { status: 'reconnecting'; url: string; attempt: number; delayMs: number }
  | { status: 'closed'; url: string };

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 5000 };
/** A connect that neither opens nor fails within this time is abandoned and retried. */
export const CONNECT_TIMEOUT_MS = 5000;

export interface ManagerConnectionOptions {
  url: string;
  createSocket: SocketFactory;
  timers: Timers;
  backoff?: BackoffOptions;
  onFrame(frame: ParsedManagerFrame): void;
  onState(state: ConnectionState): void;
  /** Called after each successful connect, before any frame of it is delivered. */
  onOpen?(): void;
}

/** Delay before reconnect attempt `attempt` (1-based): initial · 2^(attempt-1), at most `maxMs`. */
export function backoffDelay(attempt: number, backoff: BackoffOptions): number {
  return Math.min(backoff.initialMs * 2 ** Math.max(0, attempt - 1), backoff.maxMs);
}

/** The wire form of a request: plain commands as bare text, `new_worker` with its options as `kwargs`. */
export function encodeRequest(request: ClientRequest): string {
  switch (request.type) {
    case 'ping':
    case 'identify':
    case 'stop':
    case 'worker_status':
      return request.type;
    case 'new_worker':
      return JSON.stringify({ type: 'new_worker', kwargs: request.options });
    default:
      return JSON.stringify(request);
  }
}

export class ManagerConnection {
  private socket: SocketLike | undefined;
  private timer: unknown;
  /** Failed connects since the last open; the backoff exponent. */
  private failures = 0;
  private stopped = true;
  private readonly backoff: BackoffOptions;

  constructor(private readonly opts: ManagerConnectionOptions) {
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
  }

  get isOpen(): boolean {
    return this.socket?.readyState === OPEN;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /** Closes for good: no more reconnects. */
  stop(): void {
    this.stopped = true;
    this.clearTimer();
    this.drop();
    this.opts.onState({ status: 'closed', url: this.opts.url });
  }

  /** Sends when connected; returns false (and sends nothing) otherwise. */
  send(request: ClientRequest): boolean {
    if (!this.socket || !this.isOpen) return false;
    this.socket.send(encodeRequest(request));
    return true;
  }

  workerStatus = (): boolean => this.send({ type: 'worker_status' });
  identify = (): boolean => this.send({ type: 'identify' });
  watchWorkers = (): boolean => this.send({ type: 'watch_workers' });
  newWorker = (options: NewWorkerOptions): boolean => this.send({ type: 'new_worker', options });
  workerAction = (type: WorkerIdRequestType, workerid: string): boolean => this.send({ type, workerid });
  setWorkerOptions = (workerid: string, options: WorkerOptionsPatch): boolean => this.send({ type: 'set_worker_options', workerid, ...options });
  watchLogs = (workerid: string, lines = LOG_TAIL_LINES): boolean => this.send({ type: 'watch_logs', workerid, lines });
  unwatchLogs = (workerid: string): boolean => this.send({ type: 'unwatch_logs', workerid });

  private connect(): void {
    this.opts.onState({ status: 'connecting', url: this.opts.url, attempt: this.failures + 1 });
    let socket: SocketLike;
    try {
      socket = this.opts.createSocket(this.opts.url);
    } catch {
      // A malformed URL or one the page's CSP forbids throws synchronously; treat it like a failed connect.
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.timer = this.opts.timers.setTimeout(() => {
      this.timer = undefined;
      if (this.socket === socket && !this.isOpen) this.lost(socket);
    }, CONNECT_TIMEOUT_MS);
    // Events of a socket this client has let go of are ignored. A failure fires error then close; close
    // alone decides, so it counts once.
    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      this.clearTimer();
      this.failures = 0;
      this.opts.onState({ status: 'open', url: this.opts.url });
      this.opts.onOpen?.();
    });
    socket.addEventListener('message', (event) => {
      if (this.socket === socket && typeof event.data === 'string') this.opts.onFrame(parseManagerFrame(event.data));
    });
    socket.addEventListener('close', () => {
      if (this.socket === socket) this.lost(socket);
    });
  }

  private lost(socket: SocketLike): void {
    this.drop(socket);
    if (!this.stopped) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.clearTimer();
    this.failures++;
    const delayMs = backoffDelay(this.failures, this.backoff);
    this.opts.onState({ status: 'reconnecting', url: this.opts.url, attempt: this.failures, delayMs });
    this.timer = this.opts.timers.setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delayMs);
  }

  private drop(socket = this.socket): void {
    if (!socket) return;
    if (this.socket === socket) this.socket = undefined;
    try {
      socket.close();
    } catch {
      // Closing a socket that never connected can throw in some engines; it is gone either way.
    }
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.opts.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }
}
