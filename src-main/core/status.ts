/**
 * Which workers exist and which are alive, kept current from filesystem events instead of the original's
 * 1 s / 11 s polling (spec §6, §11.16). A change to `worker_<uuid>.*` refreshes that one worker; a slow
 * safety rescan catches anything the watcher missed; a cheap pid check notices active workers that died
 * without touching a file (SIGKILL). `change` fires only when the lists really changed.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from './log.js';
import { isPidAlive, probeWorker, type ProbeResult } from './liveness.js';
import { encodeMessage, WORKER_ID_PATTERN, type WorkerConfig, type WorkerStatusMessage } from './protocol.js';
import { parsePidFile, type Registry } from './registry.js';

export interface StatusOptions {
  probe?: (config: WorkerConfig) => Promise<ProbeResult>;
  isAlive?: (pid: number) => boolean;
  /** Full rescan interval; the watcher does the real work (default 60 s, the spec's upper bound: idle cost). */
  safetyRescanMs?: number;
  /** How often running workers' pids are checked (default 1 s; a syscall per running worker). */
  pidCheckMs?: number;
  /** Coalesces bursts of fs events (atomic writes are several events). */
  debounceMs?: number;
}

interface Entry {
  /** The JSON as read. */
  raw: WorkerConfig;
  /** As listed in `worker_status`: the JSON with `pid` taken from `.p` when there is one (spec §3.4). */
  config: WorkerConfig;
  /** mtime+size of the JSON last read, to skip unchanged files on full rescans. */
  jsonStamp: string;
  /** `.p` pid: `undefined` = no `.p`, `null` = unreadable. */
  pidFile: number | null | undefined;
  active: boolean;
  /** Its pid is alive (it may not answer yet: starting, or a stranger reusing the pid). */
  alive: boolean;
  /** Epoch ms when this tracker first saw the pid alive. */
  aliveSince?: number;
  /** pid|JSON stamp the last probe ran for: a new value means the worker must be asked again. */
  probedFor?: string;
}

/** One worker's files as read: `undefined` when it has no readable, valid JSON. */
type Loaded = { raw: WorkerConfig; stamp: string; pidFile: number | null | undefined } | undefined;

const SCAN_CONCURRENCY = 32;

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export type FileKind = 'json' | 'p' | 'runstate';
const FILE_PATTERN = new RegExp(`^worker_(${WORKER_ID_PATTERN.source.slice(1, -1)})\\.(json|p|runstate)$`);

export interface StatusEvents {
  /** The lists changed; `uuids` are the workers whose entry changed or went. */
  change: [uuids: ReadonlySet<string>];
  /** Any `worker_<uuid>.<kind>` file changed (lifecycle waiters listen to this). */
  file: [uuid: string, kind: FileKind];
  /** A worker's pid came alive or died; `worker_status` may be unchanged (a starting worker stays inactive). */
  alive: [uuid: string];
}

export interface TrackedWorker {
  config: WorkerConfig;
  active: boolean;
  alive: boolean;
  aliveSince?: number;
}

export class StatusTracker extends EventEmitter<StatusEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly probe: (config: WorkerConfig) => Promise<ProbeResult>;
  private readonly isAlive: (pid: number) => boolean;
  private readonly opts: Required<Pick<StatusOptions, 'safetyRescanMs' | 'pidCheckMs' | 'debounceMs'>>;
  private watcher?: FSWatcher;
  private rescanTimer?: NodeJS.Timeout;
  /** Workers whose pid is alive: the only ones the pid check looks at. */
  private readonly living = new Set<string>();
  private pidTimer?: NodeJS.Timeout;
  private pending = new Set<string>();
  private pendingFull = false;
  private debounce?: NodeJS.Timeout;
  /** Refreshes run one at a time so two events for one worker cannot interleave their reads. */
  private queue: Promise<void> = Promise.resolve();
  private version = 0;
  /** Workers touched since the last `change`. */
  private changed = new Set<string>();
  private emittedVersion = 0;
  private encoded?: { version: number; frame: Buffer };
  private readonly probes = new Set<Promise<void>>();
  private holds = 0;
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
    options: StatusOptions = {},
  ) {
    super();
    this.probe = options.probe ?? ((config) => probeWorker(config));
    this.isAlive = options.isAlive ?? isPidAlive;
    this.opts = { safetyRescanMs: options.safetyRescanMs ?? 60_000, pidCheckMs: options.pidCheckMs ?? 1_000, debounceMs: options.debounceMs ?? 15 };
  }

  /** First full scan, with every live pid probed, so the first `worker_status` is already right. */
  async start(): Promise<void> {
    this.watch();
    await this.enqueue(() => this.scanAll());
    await this.settled();
    this.rescanTimer = setInterval(() => {
      this.pendingFull = true;
      this.schedule();
    }, this.opts.safetyRescanMs).unref();
  }

  /** A watcher dies with its directory (deleted, moved); each full rescan, which recreates it, re-arms it. */
  private watch(): void {
    try {
      this.watcher = watch(this.registry.workersDir, (_event, filename) => this.onFsEvent(filename));
    } catch (err) {
      this.log.warn(`Cannot watch ${this.registry.workersDir} (${(err as Error).message}); relying on rescans`);
      return;
    }
    this.watcher.on('error', (err) => {
      this.log.warn(`Watching ${this.registry.workersDir} failed (${err.message}); relying on rescans`);
      this.watcher?.close();
      this.watcher = undefined;
      this.pendingFull = true;
      this.schedule();
    });
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearInterval(this.rescanTimer);
    clearInterval(this.pidTimer);
    clearTimeout(this.debounce);
  }

  /** Waits until queued refreshes and probes in flight are done. */
  async settled(): Promise<void> {
    await this.queue;
    while (this.probes.size > 0) await Promise.all([...this.probes]);
  }

  /** Refreshes these workers now (after our own writes), so callers see the result at once. */
  refresh(...uuids: string[]): Promise<void> {
    return this.enqueue(async () => {
      for (const uuid of uuids) await this.refreshOne(uuid, true);
    });
  }

  /**
   * Defers `change` until released, so an operation that ends with a status broadcast (new, delete) sends
   * it after its own last frame, in the original's order.
   */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      this.maybeEmit();
    };
  }

  find(uuid: string): TrackedWorker | undefined {
    const entry = this.entries.get(uuid);
    return entry && { config: entry.config, active: entry.active, alive: entry.alive, aliveSince: entry.aliveSince };
  }

  uuids(): IterableIterator<string> {
    return this.entries.keys();
  }

  snapshot(): WorkerStatusMessage {
    const active: WorkerConfig[] = [];
    const inactive: WorkerConfig[] = [];
    for (const entry of this.entries.values()) (entry.active ? active : inactive).push(entry.config);
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

  private onFsEvent(filename: string | Buffer | null): void {
    if (this.stopped) return;
    const name = filename?.toString() ?? null;
    const match = name === null ? null : FILE_PATTERN.exec(name);
    if (name === null) this.pendingFull = true;
    else if (name === path.basename(this.registry.workersDir)) {
      // The watched dir itself was removed or moved: the watcher is dead; the rescan recreates and re-arms.
      this.watcher?.close();
      this.watcher = undefined;
      this.pendingFull = true;
    } else if (match) {
      const [, uuid, kind] = match as unknown as [string, string, FileKind];
      this.pending.add(uuid);
      this.emit('file', uuid, kind);
    } else return;
    this.schedule();
  }

  private schedule(): void {
    if (this.debounce || this.stopped) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      const full = this.pendingFull;
      const uuids = [...this.pending];
      this.pendingFull = false;
      this.pending.clear();
      void this.enqueue(async () => {
        if (full) await this.scanAll();
        else for (const uuid of uuids) await this.refreshOne(uuid, false);
      });
    }, this.opts.debounceMs);
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(work).catch((err: unknown) => this.log.error(`Status refresh failed: ${String(err)}`));
    this.queue = run;
    return run.then(() => this.maybeEmit());
  }

  private async scanAll(): Promise<void> {
    const { json, pid } = await this.registry.list();
    if (!this.watcher && !this.stopped) this.watch();
    const present = new Set(json);
    for (const uuid of [...this.entries.keys()]) if (!present.has(uuid)) this.drop(uuid);
    // Files are read in parallel, results applied in listing order so the lists keep a stable order.
    // A worker without a `.p` in the listing is not asked for one: at 500 idle workers, failed opens were a
    // third of a rescan's cost. A `.p` written after the listing has its own watch event.
    const loaded = await mapLimit(json, SCAN_CONCURRENCY, (uuid) => this.load(uuid, false, pid.has(uuid)));
    // Alive-but-unanswering workers are asked again on every safety rescan.
    for (const [index, uuid] of json.entries()) await this.apply(uuid, loaded[index], true);
  }

  private drop(uuid: string): void {
    if (!this.entries.delete(uuid)) return;
    this.touch(uuid);
    this.living.delete(uuid);
    this.armPidCheck();
  }

  private async refreshOne(uuid: string, forceRead: boolean): Promise<void> {
    await this.apply(uuid, await this.load(uuid, forceRead), false);
  }

  /** Reads what changed on disk for one worker; the JSON only when its mtime or size moved (or forced). */
  private async load(uuid: string, forceRead: boolean, hasPidFile = true): Promise<Loaded> {
    let stamp: string;
    try {
      const s = await stat(this.registry.paths(uuid).json);
      stamp = `${s.mtimeMs}:${s.size}`;
    } catch {
      return undefined;
    }
    const previous = this.entries.get(uuid);
    let raw = previous?.raw;
    if (forceRead || previous?.jsonStamp !== stamp || raw === undefined) {
      const read = await this.registry.read(uuid);
      if (!read.ok) return undefined;
      raw = read.config;
    }
    return { raw, stamp, pidFile: hasPidFile ? await this.registry.readPidFile(uuid) : undefined };
  }

  private async apply(uuid: string, loaded: Loaded, reprobe: boolean): Promise<void> {
    if (loaded === undefined) return this.drop(uuid);
    const { raw, stamp, pidFile } = loaded;
    const previous = this.entries.get(uuid);
    const shown: WorkerConfig = pidFile === undefined ? raw : { ...raw, pid: pidFile };
    const entry: Entry = {
      raw,
      config: shown,
      jsonStamp: stamp,
      pidFile,
      active: previous?.active ?? false,
      alive: previous?.alive ?? false,
      aliveSince: previous?.aliveSince,
      probedFor: previous?.probedFor,
    };
    const same = previous !== undefined && previous.raw === raw && previous.pidFile === pidFile;
    if (!same && (!previous || JSON.stringify(previous.config) !== JSON.stringify(shown))) this.touch(uuid);
    this.entries.set(uuid, entry);
    await this.judge(uuid, entry, reprobe);
  }

  /** Decides liveness: a dead or missing pid is inactive at once; a live pid is asked over its WebSocket. */
  private async judge(uuid: string, entry: Entry, reprobe: boolean): Promise<void> {
    const pid = entry.pidFile !== undefined ? entry.pidFile : entry.config.pid;
    // A `.p` caught mid-rewrite reads as null: as in the original (spec §6.2), a null pid goes on to the
    // probe. Only a worker with no `.p` and no pid at all (never started) is inactive without asking.
    const gone = typeof pid === 'number' ? !this.isAlive(pid) : entry.pidFile === undefined;
    // Inactive before the 'alive' event: its listeners publish at once and must not see a dead worker active.
    if (gone) this.setActive(uuid, entry, false);
    this.setAlive(uuid, entry, !gone);
    if (gone) {
      entry.probedFor = undefined;
      if (typeof entry.pidFile === 'number') await this.removeStalePidFile(uuid, entry.pidFile);
      return;
    }
    // A rewritten JSON (the worker's write after binding) is a reason to ask again even on the same port.
    const key = `${pid}|${entry.jsonStamp}`;
    if (!reprobe && entry.probedFor === key) return;
    if (reprobe && entry.active && entry.probedFor === key) return;
    entry.probedFor = key;
    const job = this.probe(entry.config).then((result) => {
      const current = this.entries.get(uuid);
      if (current?.probedFor !== key) return;
      this.setActive(uuid, current, result === 'match');
      this.maybeEmit();
    });
    this.probes.add(job);
    void job.finally(() => this.probes.delete(job));
  }

  private setAlive(uuid: string, entry: Entry, alive: boolean): void {
    if (entry.alive === alive) return;
    entry.alive = alive;
    entry.aliveSince = alive ? Date.now() : undefined;
    if (alive) this.living.add(uuid);
    else this.living.delete(uuid);
    this.armPidCheck();
    this.emit('alive', uuid);
  }

  /**
   * The pid check runs only while some worker is alive: with none, an idle manager over hundreds of
   * inactive workers has no timer but the safety rescan (its ticks were half its idle CPU, docs/performance.md).
   */
  private armPidCheck(): void {
    if (this.living.size > 0 && !this.pidTimer && !this.stopped) {
      this.pidTimer = setInterval(() => this.checkActivePids(), this.opts.pidCheckMs).unref();
    } else if (this.living.size === 0 && this.pidTimer) {
      clearInterval(this.pidTimer);
      this.pidTimer = undefined;
    }
  }

  private setActive(uuid: string, entry: Entry, active: boolean): void {
    if (entry.active === active) return;
    entry.active = active;
    this.touch(uuid);
  }

  private touch(uuid: string): void {
    this.version++;
    this.changed.add(uuid);
  }

  /**
   * A `.p` whose process is gone blocks the next start (spec §2.5), so it is removed as the original does;
   * the content is read again first so a new instance's fresh `.p` is never taken.
   */
  private async removeStalePidFile(uuid: string, pid: number): Promise<void> {
    const file = this.registry.paths(uuid).pidFile;
    try {
      if (parsePidFile(await readFile(file, 'utf8')) !== pid || this.isAlive(pid)) return;
      await unlink(file);
      this.log.info(`Removed stale ${file} (pid ${pid} is gone)`);
    } catch {
      // Already gone.
    }
  }

  private checkActivePids(): void {
    // Active implies alive, so the living set covers every worker that can die unnoticed.
    for (const uuid of this.living) {
      const entry = this.entries.get(uuid);
      const pid = entry?.pidFile ?? entry?.config.pid;
      if (typeof pid !== 'number' || !this.isAlive(pid)) this.pending.add(uuid);
    }
    if (this.pending.size > 0) this.schedule();
  }

  private maybeEmit(): void {
    if (this.version === this.emittedVersion || this.stopped || this.holds > 0) return;
    this.emittedVersion = this.version;
    const changed = this.changed;
    this.changed = new Set();
    this.emit('change', changed);
  }
}
