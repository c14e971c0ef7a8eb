/**
 * Runs one state machine (machine.ts) per worker: turns what the workers-dir observer reads, child exits,
 * probe answers and timers into events, runs the effects the machine returns, and feeds their results back.
 * Each worker has its own event queue: nothing done to one worker waits for another. `worker_status` and
 * `worker_states` are projections of the machines' states, published once per change.
 */
import { EventEmitter } from 'node:events';
import { readFile, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { isPidAlive, probeWorker } from './liveness.js';
import type { Logger } from '../logs/log.js';
import {
  encodeMessage,
  RUNTIME_TAIL_LINES,
  type ProgressMessage,
  type WorkerConfig,
  type WorkerRuntime,
  type WorkerState,
  type WorkerStatesMessage,
  type WorkerStatusMessage,
} from '../../../src-shared/protocol.js';
import { commandText, workerCommand } from '../python-env/launcher.js';
import { workerPython } from '../python-env/python.js';
import { parsePidFile, type Registry } from '../registry/registry.js';
import {
  DEFAULT_TIMING,
  initialState,
  isActive,
  runningProc,
  step,
  type Effect,
  type Event,
  type ProbeResult,
  type ReportStep,
  type RequestId,
  type State,
  type TimerName,
  type Timing,
  type WorkerOptions,
} from './machine.js';
import { WorkersDirObserver, type ObserverOptions, type WorkerFiles } from './observer.js';
import { readWorkerOptions, writeWorkerOptions } from './options.js';
import { commandLineNames } from './pid-identity.js';
import { WorkerLogs } from './worker-logs.js';
import { lastRunLines, sendStopCommand, signalWorker, spawnWorker } from './worker-process.js';

/** What a requester hears while its request runs: the machine's steps, and the worker's runstate texts. */
export type Progress = ReportStep | { runstate: string } | { env: ProgressMessage };
export type ProgressListener = (progress: Progress) => void;

/** A failed request; its message is whole sentences for the requester. */
export class SupervisorError extends Error {}

export interface SupervisorOptions {
  registry: Registry;
  log: Logger;
  configDir: string;
  /** Interpreter for workers without a venv. */
  python: string;
  env?: NodeJS.ProcessEnv;
  debug?: boolean;
  timing?: Partial<Timing>;
  observer?: ObserverOptions;
  /** How often pids of processes we did not start are checked (default 1 s; only while there are any). */
  pidCheckMs?: number;
  probe?: (config: WorkerConfig) => Promise<ProbeResult>;
  isAlive?: (pid: number) => boolean;
  names?: (pid: number, uuid: string) => boolean | undefined;
  now?: () => number;
  /** Runs before each requested spawn: a venv's check and updates. Its note is added to a start failure. */
  /** `onStarted` runs once the worker answers (the env snapshot it started with is marked good). */
  prepareStart?: (
    config: WorkerConfig,
    report: (message: ProgressMessage) => void,
    signal: AbortSignal,
  ) => Promise<{ note?: string; onStarted?: () => Promise<void> }>;
}

interface Slot {
  uuid: string;
  state: State;
  files: WorkerFiles;
  /** As listed in `worker_status`: the JSON with `pid` taken from `.p` when there is one (spec §3.4). */
  shown: WorkerConfig;
  inbox: Event[];
  draining: boolean;
  /** Effects run in order; long ones only start here and report back as events. */
  effects: Promise<void>;
  timers: Map<TimerName, NodeJS.Timeout>;
  prepare?: AbortController;
  /** The prepare step's note for a start that then fails (e.g. "its environment was just updated"). */
  note?: string;
  /** The prepare step's action for a start that succeeds. */
  onStarted?: () => Promise<void>;
  /** The worker's last output when its start went wrong (read before we ended it, so it shows why). */
  failureOutput?: Promise<string[]>;
  child?: { pid: number; release: () => void };
  probing: boolean;
  probeAgain: boolean;
  /** The runstate text already relayed (at first the previous run's last word); undefined while not starting. */
  lastRunstate?: Promise<string | undefined>;
  /** Counts start sessions: reads queued for an older one relay nothing. */
  runstateSession: number;
  runstateReads: Promise<void>;
  /** Last published projections. */
  published: { active: boolean; shown: string };
}

interface Request {
  kind: 'start' | 'stop' | 'delete';
  uuid: string;
  resolve: () => void;
  reject: (err: Error) => void;
  listener?: ProgressListener;
}

export interface SupervisorEvents {
  /** The `worker_status` lists changed. */
  change: [];
  delta: [message: WorkerStatesMessage];
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly slots = new Map<string, Slot>();
  private readonly optionWrites = new Map<string, Promise<WorkerOptions>>();
  private readonly requests = new Map<RequestId, Request>();
  private nextId = 1;
  private readonly timing: Timing;
  private readonly observer: WorkersDirObserver;
  readonly logs: WorkerLogs;
  private readonly probe: (config: WorkerConfig) => Promise<ProbeResult>;
  private readonly isAlive: (pid: number) => boolean;
  private readonly names: (pid: number, uuid: string) => boolean | undefined;
  private readonly now: () => number;
  /** Files in the workers dir that are no worker JSON, and why: real workers exit at start on them. */
  private readonly invalid = new Map<string, string>();
  /** Per-worker holds (new_worker): its changes are published after the requester's last frame. */
  private readonly holds = new Map<string, number>();
  private version = 0;
  /** Workers in the lists as last published. */
  private readonly listed = new Set<string>();
  /** While a full scan reports: its changes, published once at its end. */
  private batch?: { change: boolean; workers: Map<string, WorkerRuntime>; removed: Set<string> };
  private encoded?: { version: number; frame: Buffer };
  /** Workers whose change waits for a hold to end. */
  private readonly heldChanges = new Set<string>();
  private readonly sent = new Map<string, string>();
  private watchers = 0;
  private pidTimer?: NodeJS.Timeout;
  private readonly quietWaiters = new Set<() => void>();

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.observer = new WorkersDirObserver(opts.registry, opts.log, opts.observer);
    // A process's last words arrive after its exit: the state of a worker that no longer runs shows them.
    this.logs = new WorkerLogs(opts.registry, opts.log, (uuid) => {
      const slot = this.slots.get(uuid);
      if (slot && runningProc(slot.state) === null && this.watchers > 0) this.publish([uuid]);
    });
    this.probe = opts.probe ?? ((config) => probeWorker(config));
    this.isAlive = opts.isAlive ?? isPidAlive;
    this.names = opts.names ?? commandLineNames;
    this.now = opts.now ?? Date.now;
    this.observer.on('worker', (uuid, files, reason) => this.onFiles(uuid, files, reason));
    this.observer.on('runstate', (uuid) => this.onRunstate(uuid));
    this.observer.on('batch', (open) => {
      const closed = this.batch;
      this.batch = open ? { change: false, workers: new Map(), removed: new Set() } : undefined;
      if (!open && closed) this.flush(closed.change, [...closed.workers.values()], [...closed.removed]);
    });
  }

  /** First scan (adopting what runs, probes answered), then the workers whose `autostart` is not `never`. */
  async start(): Promise<void> {
    await this.observer.start();
    await this.settled();
    for (const slot of this.slots.values()) {
      if (slot.state.options.autostart !== 'never' && (slot.state.kind === 'inactive' || slot.state.kind === 'crashed')) {
        this.opts.log.info(`Autostart: starting worker ${slot.uuid}`);
        this.request(slot.uuid, 'start', false).catch((err: unknown) => this.opts.log.warn(`Autostart of ${slot.uuid} failed: ${(err as Error).message}`));
      }
    }
  }

  /** Waits until file reads and the probes they caused are done. */
  async settled(): Promise<void> {
    for (;;) {
      await this.observer.settled();
      const chains = [...this.slots.values()].map((s) => s.effects);
      await Promise.all(chains);
      const probing = [...this.slots.values()].some((s) => s.probing);
      if (!probing && [...this.slots.values()].every((s, i) => s.effects === chains[i])) return;
      await sleep(5);
    }
  }

  /** Reads these workers' files now (after our own writes). */
  refresh(...uuids: string[]): Promise<void> {
    return this.observer.refresh(...uuids);
  }

  // ------------------------------------------------------------------------------ requests

  startWorker(uuid: string, listener?: ProgressListener): Promise<void> {
    return this.request(uuid, 'start', true, listener);
  }

  stopWorker(uuid: string): Promise<void> {
    return this.request(uuid, 'stop');
  }

  deleteWorker(uuid: string, listener?: ProgressListener): Promise<void> {
    return this.request(uuid, 'delete', true, listener);
  }

  /**
   * Stores the options in the worker JSON (additive keys) and applies them. One write at a time per worker:
   * each reads the file the one before it wrote, so two quick changes (restart, then autostart) both land.
   */
  async setOptions(uuid: string, patch: Partial<WorkerOptions>): Promise<WorkerOptions> {
    const write = (this.optionWrites.get(uuid) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => writeWorkerOptions(this.opts.registry, uuid, patch));
    this.optionWrites.set(uuid, write);
    try {
      const options = await write;
      const slot = this.slots.get(uuid);
      if (slot) this.dispatch(slot, { type: 'options', options });
      return options;
    } finally {
      if (this.optionWrites.get(uuid) === write) this.optionWrites.delete(uuid);
    }
  }

  private async request(uuid: string, kind: Request['kind'], requested = true, listener?: ProgressListener): Promise<void> {
    const slot = this.slots.get(uuid);
    if (!slot) throw new SupervisorError(`worker ${uuid} is not known`);
    if (kind === 'start') {
      // The `.p` as it is now (the watcher's news may be a few ms behind): a live pid there is never spawned over.
      const pidFile = await this.opts.registry.readPidFile(uuid);
      if (this.slots.get(uuid) !== slot) throw new SupervisorError('it was deleted meanwhile');
      if (pidFile !== slot.files.pidFile) this.observed(slot, { ...slot.files, pidFile }, false);
    }
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.requests.set(id, { kind, uuid, resolve, reject, listener });
      const event: Event = kind === 'start' ? { type: 'start', id, requested } : { type: kind, id };
      this.dispatch(slot, event);
    });
  }

  /**
   * Manager stop: no new starts; starts in progress end (with the processes they spawned); without
   * `keepWorkers`, our running children are stopped, in parallel. Resolves when all that is done.
   */
  async shutdown(keepWorkers: boolean): Promise<void> {
    for (const slot of this.slots.values()) this.dispatch(slot, { type: 'shutdown', keepWorkers });
    await new Promise<void>((resolve) => {
      const check = () => {
        if (![...this.slots.values()].some((s) => busyInShutdown(s.state))) {
          this.quietWaiters.delete(check);
          resolve();
        }
      };
      this.quietWaiters.add(check);
      check();
    });
  }

  /** Stops observing; children that are left run on without holding this process open. */
  dispose(): void {
    this.observer.stop();
    clearInterval(this.pidTimer);
    for (const slot of this.slots.values()) {
      for (const timer of slot.timers.values()) clearTimeout(timer);
      slot.child?.release();
      slot.prepare?.abort();
    }
    this.logs.dispose();
  }

  // ------------------------------------------------------------------------------ projections

  find(uuid: string): { config: WorkerConfig; active: boolean; state: State } | undefined {
    const slot = this.slots.get(uuid);
    return slot && { config: slot.shown, active: isActive(slot.state), state: slot.state };
  }

  /** A process of the worker may run (ours, adopted, booting, or a pid not yet known to be it). */
  isRunning(uuid: string): boolean {
    const state = this.slots.get(uuid)?.state;
    return state !== undefined && (runningProc(state) !== null || state.kind === 'unverified' || state.kind === 'preparing' || state.kind === 'starting');
  }

  uuids(): IterableIterator<string> {
    return this.slots.keys();
  }

  snapshot(): WorkerStatusMessage {
    const active: WorkerConfig[] = [];
    const inactive: WorkerConfig[] = [];
    for (const slot of this.slots.values()) (isActive(slot.state) ? active : inactive).push(slot.shown);
    return { type: 'worker_status', active, inactive };
  }

  /**
   * The `worker_status` frame as UTF-8 bytes, built once per change: every reply and broadcast sends the same
   * bytes (large lists are costly to stringify, and re-encoding per send cost 15 % of a 500-worker reply).
   */
  statusFrame(): Buffer {
    if (this.encoded?.version !== this.version) this.encoded = { version: this.version, frame: Buffer.from(encodeMessage(this.snapshot())) };
    return this.encoded.frame;
  }

  /**
   * Defers broadcasting this worker's changes (lists and state deltas) until released, so an operation that
   * ends with a status broadcast (new, delete) sends it after its own last frame, in the original's order.
   * Other workers' news is not held.
   */
  hold(uuid: string): () => void {
    this.holds.set(uuid, (this.holds.get(uuid) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.holds.get(uuid) ?? 1) - 1;
      if (left > 0) this.holds.set(uuid, left);
      else this.holds.delete(uuid);
      if (left > 0) return;
      if (this.heldChanges.delete(uuid)) this.emit('change');
      this.publish([uuid]);
    };
  }

  describe(uuid: string): WorkerRuntime | undefined {
    const slot = this.slots.get(uuid);
    if (!slot) return undefined;
    const s = slot.state;
    const proc = runningProc(s);
    const pid = proc?.pid ?? (s.kind === 'unverified' ? s.pid : null);
    return {
      uuid,
      name: typeof slot.shown.name === 'string' ? slot.shown.name : null,
      state: publicState(s),
      phase: s.kind,
      pid,
      started_at: proc?.since ?? null,
      adopted: proc !== null && !proc.owned,
      exit: s.exit,
      error: s.kind === 'crashed' ? (s.error ?? s.reason) : s.error,
      last_lines: this.logs.tail(uuid, RUNTIME_TAIL_LINES),
      restart: s.options.restart,
      autostart: s.options.autostart,
      restart_at: s.kind === 'backoff' ? s.until : null,
    };
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

  /** Follows a worker's log for one listener; undefined for an unknown worker. */
  watchLog(uuid: string, lines: number, listener: (lines: string[]) => void): { initial: string[]; unwatch: () => void } | undefined {
    const slot = this.slots.get(uuid);
    return slot && this.logs.watch(slot.files.raw, lines, listener);
  }

  private all(): WorkerRuntime[] {
    const runtimes: WorkerRuntime[] = [];
    for (const uuid of this.slots.keys()) runtimes.push(this.describe(uuid)!);
    return runtimes;
  }

  /** Publishes what changed for these workers: the lists once per change (unless held), and the state deltas. */
  private publish(uuids: Iterable<string>): void {
    const workers: WorkerRuntime[] = [];
    const removed: string[] = [];
    let emit = false;
    const listsChanged = (uuid: string) => {
      // The frame is rebuilt at once (a reply must be current); only the broadcast waits for a hold.
      this.version++;
      if ((this.holds.get(uuid) ?? 0) > 0) this.heldChanges.add(uuid);
      else emit = true;
    };
    for (const uuid of uuids) {
      const slot = this.slots.get(uuid);
      if (!slot) {
        if (this.listed.delete(uuid)) listsChanged(uuid);
        if (!this.holds.has(uuid) && this.sent.delete(uuid)) removed.push(uuid);
        continue;
      }
      const active = isActive(slot.state);
      const shown = JSON.stringify(slot.shown);
      if (!this.listed.has(uuid) || active !== slot.published.active || shown !== slot.published.shown) {
        this.listed.add(uuid);
        slot.published = { active, shown };
        listsChanged(uuid);
      }
      if (this.watchers > 0 && !this.holds.has(uuid)) {
        const runtime = this.describe(uuid)!;
        const json = JSON.stringify(runtime);
        if (this.sent.get(uuid) !== json) {
          this.sent.set(uuid, json);
          workers.push(runtime);
        }
      }
    }
    if (!this.batch) return this.flush(emit, workers, removed);
    this.batch.change ||= emit;
    for (const runtime of workers) this.batch.workers.set(runtime.uuid, runtime);
    for (const uuid of removed) {
      this.batch.workers.delete(uuid);
      this.batch.removed.add(uuid);
    }
  }

  private flush(change: boolean, workers: WorkerRuntime[], removed: string[]): void {
    if (change) this.emit('change');
    if (workers.length > 0 || removed.length > 0) this.emit('delta', { type: 'worker_states', full: false, workers, removed });
  }

  // ------------------------------------------------------------------------------ observations → events

  private onFiles(uuid: string, files: WorkerFiles | undefined, invalid: string | undefined): void {
    let slot = this.slots.get(uuid);
    if (!files) {
      if (invalid !== undefined) this.invalid.set(uuid, invalid);
      else this.invalid.delete(uuid);
      // Our own delete forgets it when its removal is done.
      if (slot && slot.state.kind !== 'removing') this.forget(slot);
      return;
    }
    this.invalid.delete(uuid);
    const shown = files.pidFile === undefined ? files.raw : { ...files.raw, pid: files.pidFile };
    const jsonChanged = slot?.files.stamp !== files.stamp;
    if (!slot) {
      slot = {
        uuid,
        state: initialState(readWorkerOptions(files.raw)),
        files,
        shown,
        inbox: [],
        draining: false,
        effects: Promise.resolve(),
        timers: new Map(),
        probing: false,
        probeAgain: false,
        runstateSession: 0,
        runstateReads: Promise.resolve(),
        published: { active: false, shown: '' },
      };
      this.slots.set(uuid, slot);
    } else {
      const options = readWorkerOptions(files.raw);
      if (options.restart !== slot.state.options.restart || options.autostart !== slot.state.options.autostart) {
        this.dispatch(slot, { type: 'options', options });
      }
    }
    this.observed(slot, files, jsonChanged);
  }

  /** The worker's files as read now become a `files` event: is the `.p` pid alive, does it name the worker? */
  private observed(slot: Slot, files: WorkerFiles, jsonChanged: boolean): void {
    slot.files = files;
    slot.shown = files.pidFile === undefined ? files.raw : { ...files.raw, pid: files.pidFile };
    const pid = files.pidFile;
    const alive = typeof pid === 'number' && this.isAlive(pid);
    const names = alive ? this.names(pid, slot.uuid) : undefined;
    this.dispatch(slot, { type: 'files', filePid: pid, alive, names, jsonChanged });
  }

  private forget(slot: Slot): void {
    for (const timer of slot.timers.values()) clearTimeout(timer);
    slot.prepare?.abort();
    this.slots.delete(slot.uuid);
    this.logs.forget(slot.uuid);
    this.armPidCheck();
    this.publish([slot.uuid]);
  }

  /** Workers rewrite `.runstate` in place: a text is relayed once two reads agree, in the order written. */
  private onRunstate(uuid: string): void {
    const slot = this.slots.get(uuid);
    if (!slot || !slot.lastRunstate) return;
    const session = slot.runstateSession;
    slot.runstateReads = slot.runstateReads.then(async () => {
      const text = await this.stableRunstate(uuid);
      const last = await slot.lastRunstate;
      // An empty text is a write in progress; relaying it would send `message: ""` (operation over).
      if (text === undefined || text.trim() === '' || text === last || slot.runstateSession !== session || !slot.lastRunstate) return;
      slot.lastRunstate = Promise.resolve(text);
      const waiters = slot.state.kind === 'starting' || slot.state.kind === 'unverified' ? slot.state.waiters : [];
      for (const id of waiters) this.requests.get(id)?.listener?.({ runstate: text });
    });
  }

  private async stableRunstate(uuid: string): Promise<string | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const first = await this.opts.registry.readRunstate(uuid);
      await sleep(5);
      if (first === (await this.opts.registry.readRunstate(uuid))) return first;
    }
    return undefined;
  }

  // ------------------------------------------------------------------------------ the queue

  /** Queues an event for this worker's machine; events of one worker are handled one at a time, in order. */
  private dispatch(slot: Slot, event: Event): void {
    slot.inbox.push(event);
    if (slot.draining) return;
    slot.draining = true;
    try {
      for (let next = slot.inbox.shift(); next !== undefined; next = slot.inbox.shift()) {
        const before = slot.state;
        const result = step(before, next, this.now(), this.timing);
        slot.state = result.state;
        if (before.kind !== result.state.kind) this.entered(slot, before);
        for (const effect of result.effects) this.run(slot, effect);
      }
    } finally {
      slot.draining = false;
    }
    this.armPidCheck();
    if (this.slots.get(slot.uuid) === slot) this.publish([slot.uuid]);
    for (const check of [...this.quietWaiters]) check();
  }

  private entered(slot: Slot, before: State): void {
    const { state } = slot;
    this.opts.log.debug(`Worker ${slot.uuid}: ${before.kind} → ${state.kind}`);
    if ((state.kind === 'starting' || state.kind === 'unverified') && before.kind !== 'starting' && before.kind !== 'unverified') {
      // The previous run's last word (usually `removed`) is not news.
      slot.runstateSession++;
      slot.lastRunstate = this.opts.registry.readRunstate(slot.uuid);
    } else if (state.kind !== 'starting' && state.kind !== 'unverified') {
      slot.lastRunstate = undefined;
    }
    if (before.kind === 'starting' && state.kind !== 'active') slot.failureOutput = this.lastOutput(slot);
    if (state.kind === 'preparing') {
      slot.failureOutput = undefined;
      slot.onStarted = undefined;
    }
    if (before.kind === 'starting' && state.kind === 'active' && slot.onStarted) {
      const onStarted = slot.onStarted;
      slot.onStarted = undefined;
      onStarted().catch((err: unknown) => this.opts.log.warn(`Worker ${slot.uuid}: could not record its environment as started: ${(err as Error).message}`));
    }
    const proc = runningProc(state);
    if (proc && !proc.owned && runningProc(before)?.pid !== proc.pid) this.logs.follow(slot.files.raw);
    if (!proc && runningProc(before)) this.logs.unfollow(slot.uuid);
    if (state.kind === 'crashed') this.opts.log.warn(`Worker ${slot.uuid} crashed: ${state.error ?? state.reason}`);
  }

  private run(slot: Slot, effect: Effect): void {
    const feed = (event: Event) => {
      if (this.slots.get(slot.uuid) === slot) this.dispatch(slot, event);
    };
    switch (effect.type) {
      case 'rejected':
        this.opts.log.error(`Worker ${slot.uuid}: ${effect.event} is not allowed in state ${effect.state} (${effect.why}); ignored`);
        return;
      case 'arm': {
        clearTimeout(slot.timers.get(effect.timer));
        const timer = setTimeout(() => {
          if (slot.timers.get(effect.timer) !== timer) return;
          slot.timers.delete(effect.timer);
          feed({ type: 'deadline', timer: effect.timer });
        }, effect.ms);
        timer.unref();
        slot.timers.set(effect.timer, timer);
        return;
      }
      case 'cancel':
        clearTimeout(slot.timers.get(effect.timer));
        slot.timers.delete(effect.timer);
        return;
      case 'settle':
        for (const id of effect.ids) this.settle(slot, id, effect.error, effect.output === true);
        return;
      case 'report':
        for (const id of effect.ids) this.requests.get(id)?.listener?.(effect.step);
        return;
      case 'forget':
        this.forget(slot);
        return;
      case 'cancel-prepare':
        slot.prepare?.abort(new SupervisorError('the start was cancelled'));
        slot.prepare = undefined;
        return;
      case 'signal':
        this.opts.log.warn(`Worker ${slot.uuid}: ${effect.signal} to pid ${effect.pid} (${effect.why})`);
        signalWorker(effect.pid, effect.signal);
        return;
      case 'probe':
        this.runProbe(slot, effect.attempt, feed);
        return;
    }
    // The rest touch files or processes: in order, one after another, for this worker only.
    slot.effects = slot.effects
      .then(() => this.runInOrder(slot, effect, feed))
      .catch((err: unknown) => this.opts.log.error(`Worker ${slot.uuid}: ${effect.type} failed: ${(err as Error).stack ?? String(err)}`));
  }

  private async runInOrder(slot: Slot, effect: Effect, feed: (event: Event) => void): Promise<void> {
    const { registry, log } = this.opts;
    switch (effect.type) {
      case 'remove-pid-file':
        await this.removePidFile(slot.uuid, effect.pid);
        return;
      case 'prepare': {
        const abort = new AbortController();
        slot.prepare = abort;
        slot.note = undefined;
        const report = (message: ProgressMessage) => this.forward(slot, message);
        void (async () => {
          try {
            const read = await registry.read(slot.uuid);
            if (!read.ok) throw new SupervisorError(`its JSON ${read.reason}`);
            abort.signal.throwIfAborted();
            const { note, onStarted } = (await this.opts.prepareStart?.(read.config, report, abort.signal)) ?? {};
            slot.note = note;
            slot.onStarted = onStarted;
            feed({ type: 'prepared', attempt: effect.attempt, note: note ?? null });
          } catch (err) {
            if (abort.signal.aborted) return;
            feed({ type: 'spawn-failed', attempt: effect.attempt, reason: (err as Error).message });
          } finally {
            if (slot.prepare === abort) slot.prepare = undefined;
          }
        })();
        return;
      }
      case 'spawn':
        try {
          const pid = await this.spawn(slot, feed);
          feed({ type: 'spawned', attempt: effect.attempt, pid });
        } catch (err) {
          feed({ type: 'spawn-failed', attempt: effect.attempt, reason: (err as Error).message });
        }
        return;
      case 'send-stop': {
        const answered = (await this.probe(slot.shown)) === 'match';
        if (answered) await sendStopCommand(slot.shown);
        else log.warn(`stop ${slot.uuid}: pid ${runningProc(slot.state)?.pid} does not answer with its uuid`);
        feed({ type: 'stop-sent', answered });
        return;
      }
      case 'remove-files':
        try {
          await registry.remove(slot.uuid, slot.files.raw);
          feed({ type: 'removed' });
        } catch (err) {
          feed({ type: 'remove-failed', reason: (err as Error).message });
        }
        return;
    }
  }

  /** Progress of the env update goes to every start request waiting. */
  private forward(slot: Slot, message: ProgressMessage): void {
    const waiters = slot.state.kind === 'preparing' ? slot.state.waiters : [];
    for (const id of waiters) this.requests.get(id)?.listener?.({ env: message });
  }

  private settle(slot: Slot, id: RequestId, error: string | null, output: boolean): void {
    const request = this.requests.get(id);
    if (!request) return;
    this.requests.delete(id);
    if (error === null) return request.resolve();
    if (request.kind !== 'start') return request.reject(new SupervisorError(error));
    const note = slot.note;
    const lines = output ? (slot.failureOutput ?? this.lastOutput(slot)) : Promise.resolve(undefined);
    void lines.then((last) => request.reject(new SupervisorError(this.startCause(error, note, last))));
  }

  /** The last lines this run of the worker wrote (read from its log file: the tail follows it asynchronously). */
  private lastOutput(slot: Slot): Promise<string[]> {
    return lastRunLines(this.logs.file(slot.files.raw), OUTPUT_LINES);
  }

  /** Why a start failed, in sentences: the reason, the env note, the last output, bad files nearby. */
  private startCause(reason: string, note: string | undefined, lines: string[] | undefined): string {
    const sentences = [sentence(reason)];
    if (note) sentences.push(note);
    if (lines !== undefined) {
      if (lines.length > 0) sentences.push(`Its last output: ${lines.join(' ⏎ ')}`);
      if (this.invalid.size > 0) {
        const files = [...this.invalid].slice(0, 3).map(([uuid, why]) => `worker_${uuid}.json ${why}`);
        sentences.push(`The workers dir holds files that are not worker configs (${files.join('; ')}); FuncNodes workers read every worker file at start and exit on such a file.`);
      }
    }
    return sentences.join(' ');
  }

  private runProbe(slot: Slot, attempt: number, feed: (event: Event) => void): void {
    if (slot.probing) {
      slot.probeAgain = true;
      return;
    }
    slot.probing = true;
    void this.probe(slot.shown).then((result) => {
      slot.probing = false;
      feed({ type: 'probe', attempt, result });
      if (slot.probeAgain) {
        slot.probeAgain = false;
        this.runProbe(slot, slot.state.attempt, feed);
      }
    });
  }

  /** Only the content we judged is removed: a new instance's fresh `.p` is never taken. */
  private async removePidFile(uuid: string, pid: number | null): Promise<void> {
    const file = this.opts.registry.paths(uuid).pidFile;
    try {
      if (parsePidFile(await readFile(file, 'utf8')) !== pid) return;
      await unlink(file);
      this.opts.log.info(`Removed stale ${file} (pid ${pid})`);
    } catch {
      // Already gone.
    }
  }

  /**
   * The pids of processes we did not start are checked while there are any (a syscall each): with none, an
   * idle manager over hundreds of inactive workers has no timer but the safety rescan (docs/performance.md).
   */
  private armPidCheck(): void {
    const watched = [...this.slots.values()].some((s) => watchedPid(s.state) !== undefined);
    if (watched && !this.pidTimer) {
      this.pidTimer = setInterval(() => this.checkPids(), this.opts.pidCheckMs ?? 1_000).unref();
    } else if (!watched && this.pidTimer) {
      clearInterval(this.pidTimer);
      this.pidTimer = undefined;
    }
  }

  private checkPids(): void {
    for (const slot of this.slots.values()) {
      const pid = watchedPid(slot.state);
      if (pid === undefined || this.isAlive(pid)) continue;
      if (slot.state.kind === 'unverified') void this.observer.refresh(slot.uuid);
      else this.dispatch(slot, { type: 'pid-gone', pid });
    }
  }

  // ------------------------------------------------------------------------------ processes

  /** Spec §4.4's command line, or for a venv worker the launcher that skips the CLI's second upgrade (python-env/launcher.ts). */
  command(config: WorkerConfig): { file: string; args: string[] } {
    const file = workerPython(config, this.opts.registry.workersDir, this.opts.python);
    return workerCommand(file, config, { configDir: this.opts.configDir, debug: this.opts.debug === true });
  }

  private async spawn(slot: Slot, feed: (event: Event) => void): Promise<number> {
    const config = slot.files.raw;
    const { file, args } = this.command(config);
    // A `.p` holding no pid (garbage) says nothing of a process, but the worker would refuse to start over it.
    if ((await this.opts.registry.readPidFile(config.uuid)) === undefined) await this.opts.registry.removePidFile(config.uuid);
    const child = await spawnWorker({
      file,
      args,
      env: { ...(this.opts.env ?? process.env), FUNCNODES_CONFIG_DIR: this.opts.configDir, USE_SUBPROCESS_MONITOR: '0' },
      cwd: this.opts.configDir,
      logFile: this.logs.file(config),
      openLog: () => this.logs.follow(config).openForChild(),
    }).catch((err: unknown) => {
      this.logs.unfollow(config.uuid);
      throw err;
    });
    const { pid } = child;
    this.opts.log.info(`Spawned worker ${config.uuid} (pid ${pid}): ${commandText({ file, args })}`);
    slot.child = { pid, release: child.release };
    void child.exited.then(async (exit) => {
      if (slot.child?.pid === pid) slot.child = undefined;
      this.opts.log.info(`Worker ${config.uuid} (pid ${pid}) exited (${exit.signal ?? `code ${exit.code}`})`);
      // Its last words are in the state that announces the exit.
      await this.logs.caughtUp(config.uuid).catch(() => undefined);
      feed({ type: 'exited', pid, ...exit });
    });
    return pid;
  }
}

/** Lines of output a failed start quotes. */
const OUTPUT_LINES = 5;

function sentence(text: string): string {
  const capital = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** The original's five states, which clients know; `phase` has the machine's own. */
function publicState(state: State): WorkerState {
  switch (state.kind) {
    case 'active':
      return 'active';
    case 'stopping':
    case 'removing':
      return 'stopping';
    case 'crashed':
    case 'backoff':
      return 'crashed';
    case 'preparing':
    case 'starting':
    case 'unverified':
      return 'starting';
    case 'inactive':
      return 'inactive';
  }
}

/** A pid nobody tells us about when it ends: a process we did not start, or one not yet known to be the worker. */
function watchedPid(state: State): number | undefined {
  if (state.kind === 'unverified') return state.pid;
  const proc = runningProc(state);
  return proc && !proc.owned ? proc.pid : undefined;
}

/** Shutdown waits while a start or stop still runs. */
function busyInShutdown(state: State): boolean {
  if (state.kind === 'preparing' || state.kind === 'stopping' || state.kind === 'removing') return true;
  return state.kind === 'starting' && state.proc?.owned !== false;
}
