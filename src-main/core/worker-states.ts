/**
 * The supervisor's view of every worker (the additive `worker_states` message): the status tracker's
 * active/alive facts plus what only the lifecycle knows (an operation in flight, our child's pid and start
 * time, how it exited, why an operation failed). Deltas are computed only while someone watches.
 */
import { EventEmitter } from 'node:events';
import { isRunningState, RUNTIME_TAIL_LINES, type WorkerExit, type WorkerRuntime, type WorkerState, type WorkerStatesMessage } from './protocol.js';
import type { StatusTracker } from './status.js';

interface Facts {
  op?: 'starting' | 'stopping';
  /** Our own child process while it runs. */
  child?: { pid: number; startedAt: number };
  exit?: WorkerExit;
  /** The pid that exit belongs to: until the tracker has caught up, its files may still call it alive. */
  exitedPid?: number;
  /** It exited without being asked to, with a failure code or a signal. */
  crashed?: boolean;
  error?: string;
}

export interface WorkerStatesEvents {
  delta: [message: WorkerStatesMessage];
}

export class WorkerStates extends EventEmitter<WorkerStatesEvents> {
  private readonly facts = new Map<string, Facts>();
  /** The last JSON sent per worker, while anyone watches. */
  private readonly sent = new Map<string, string>();
  private watchers = 0;

  constructor(
    private readonly status: StatusTracker,
    private readonly tail: (uuid: string, lines: number) => string[],
    private readonly now: () => number = Date.now,
  ) {
    super();
    status.on('change', (uuids) => this.publish(uuids));
    status.on('alive', (uuid) => this.publish([uuid]));
  }

  /** Starts deltas for one more watcher; the caller sends it `full()` first. Returns the unwatch function. */
  watch(): () => void {
    if (this.watchers++ === 0) for (const runtime of this.all()) this.sent.set(runtime.uuid, JSON.stringify(runtime));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.watchers === 0) this.sent.clear();
    };
  }

  full(): WorkerStatesMessage {
    return { type: 'worker_states', full: true, workers: this.all(), removed: [] };
  }

  describe(uuid: string): WorkerRuntime | undefined {
    const tracked = this.status.find(uuid);
    if (!tracked) return undefined;
    const facts = this.facts.get(uuid) ?? {};
    const stale = facts.exitedPid !== undefined && tracked.config.pid === facts.exitedPid;
    const alive = tracked.alive && !stale;
    let state: WorkerState;
    if (facts.op) state = facts.op;
    else if (tracked.active && !stale) state = 'active';
    else if (facts.child || alive) state = 'starting';
    else if (facts.crashed) state = 'crashed';
    else state = 'inactive';
    const running = isRunningState(state);
    const adopted = running && !facts.child && alive;
    const pid = facts.child?.pid ?? (running && typeof tracked.config.pid === 'number' ? tracked.config.pid : null);
    return {
      uuid,
      name: typeof tracked.config.name === 'string' ? tracked.config.name : null,
      state,
      pid,
      started_at: facts.child?.startedAt ?? (adopted ? (tracked.aliveSince ?? null) : null),
      adopted,
      exit: facts.exit ?? null,
      error: facts.error ?? null,
      last_lines: this.tail(uuid, RUNTIME_TAIL_LINES),
    };
  }

  // ------------------------------------------------------------ lifecycle hooks

  /** An operation begins: a new start forgets the last run's crash and error. */
  begin(uuid: string, op: 'starting' | 'stopping'): void {
    const facts = this.factsOf(uuid);
    facts.op = op;
    facts.error = undefined;
    if (op === 'starting') {
      facts.crashed = false;
      facts.exit = undefined;
      facts.exitedPid = undefined;
    }
    this.publish([uuid]);
  }

  end(uuid: string, error?: string): void {
    const facts = this.factsOf(uuid);
    facts.op = undefined;
    facts.error = error;
    this.publish([uuid]);
  }

  spawned(uuid: string, pid: number): void {
    this.factsOf(uuid).child = { pid, startedAt: this.now() };
    this.publish([uuid]);
  }

  /**
   * Our child exited; `expected` when we asked it to (stop, shutdown, a failed start we ended). Not
   * published here: the caller refreshes the status tracker first, then calls `announce`, so a client
   * that reacts to the news finds the manager already agreeing.
   */
  exited(uuid: string, exit: Omit<WorkerExit, 'at'>, expected: boolean): void {
    const facts = this.factsOf(uuid);
    facts.exitedPid = facts.child?.pid;
    facts.child = undefined;
    facts.exit = { ...exit, at: this.now() };
    facts.crashed = !expected && (exit.code !== 0 || exit.signal !== null);
  }

  announce(uuid: string): void {
    this.publish([uuid]);
  }

  forget(uuid: string): void {
    this.facts.delete(uuid);
    this.publish([uuid]);
  }

  private factsOf(uuid: string): Facts {
    let facts = this.facts.get(uuid);
    if (!facts) this.facts.set(uuid, (facts = {}));
    return facts;
  }

  private all(): WorkerRuntime[] {
    const runtimes: WorkerRuntime[] = [];
    for (const uuid of this.status.uuids()) {
      const runtime = this.describe(uuid);
      if (runtime) runtimes.push(runtime);
    }
    return runtimes;
  }

  /** Sends what changed for these workers since the last delta. */
  private publish(uuids: Iterable<string>): void {
    if (this.watchers === 0) return;
    const workers: WorkerRuntime[] = [];
    const removed: string[] = [];
    for (const uuid of uuids) {
      const runtime = this.describe(uuid);
      if (!runtime) {
        if (this.sent.delete(uuid)) removed.push(uuid);
        continue;
      }
      const json = JSON.stringify(runtime);
      if (this.sent.get(uuid) === json) continue;
      this.sent.set(uuid, json);
      workers.push(runtime);
    }
    if (workers.length > 0 || removed.length > 0) this.emit('delta', { type: 'worker_states', full: false, workers, removed });
  }
}
