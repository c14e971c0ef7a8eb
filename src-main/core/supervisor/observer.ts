/**
 * Observes the workers dir and reports what is on disk, judging nothing: a change to `worker_<uuid>.*`
 * re-reads that one worker; a slow safety rescan catches what the watcher missed. Each read becomes a
 * `worker` event (its JSON and `.p` pid, or `undefined` when it has no valid JSON); the supervisor turns
 * them into machine events. A failing directory read keeps the last known list and is reported.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logs/log.js';
import { WORKER_ID_PATTERN, type WorkerConfig } from '../../../src-shared/protocol.js';
import type { Registry } from '../registry/registry.js';

export interface ObserverOptions {
  /** Full rescan interval; the watcher does the real work (default 60 s, the spec's upper bound: idle cost). */
  safetyRescanMs?: number;
  /** Coalesces bursts of fs events (atomic writes are several events). */
  debounceMs?: number;
}

/** One worker's files as read. */
export interface WorkerFiles {
  raw: WorkerConfig;
  /** mtime+size of the JSON: a new value means it was rewritten. */
  stamp: string;
  /** `.p` pid: `undefined` = no `.p`, `null` = no pid in it. */
  pidFile: number | null | undefined;
}

export type FileKind = 'json' | 'p' | 'runstate';
const FILE_PATTERN = new RegExp(`^worker_(${WORKER_ID_PATTERN.source.slice(1, -1)})\\.(json|p|runstate)$`);
const SCAN_CONCURRENCY = 32;

type Report = [uuid: string, files: WorkerFiles | undefined, invalid: string | undefined];

export interface ObserverEvents {
  /** A worker's files were read: `undefined` when it has no valid JSON; `invalid` says why when the file is there. */
  worker: [uuid: string, files: WorkerFiles | undefined, invalid: string | undefined];
  /** Workers read together are reported between `batch(true)` and `batch(false)`: one change, not one per worker. */
  batch: [open: boolean];
  runstate: [uuid: string];
}

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

export class WorkersDirObserver extends EventEmitter<ObserverEvents> {
  private readonly opts: Required<ObserverOptions>;
  private watcher?: FSWatcher;
  private rescanTimer?: NodeJS.Timeout;
  private pending = new Set<string>();
  private pendingFull = false;
  private debounce?: NodeJS.Timeout;
  /** Reads run one at a time so two events for one worker cannot interleave. */
  private queue: Promise<void> = Promise.resolve();
  /** The JSON last read per worker, with its stamp, to skip unchanged files on rescans. */
  private readonly known = new Map<string, { raw: WorkerConfig; stamp: string }>();
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
    options: ObserverOptions = {},
  ) {
    super();
    this.opts = { safetyRescanMs: options.safetyRescanMs ?? 60_000, debounceMs: options.debounceMs ?? 15 };
  }

  /** The first full scan; resolves when every worker has been reported once. */
  async start(): Promise<void> {
    this.watch();
    await this.enqueue(() => this.scanAll());
    this.rescanTimer = setInterval(() => {
      this.pendingFull = true;
      this.schedule();
    }, this.opts.safetyRescanMs).unref();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearInterval(this.rescanTimer);
    clearTimeout(this.debounce);
  }

  /** Waits until queued reads are done. */
  settled(): Promise<void> {
    return this.queue;
  }

  /** Reads these workers now (after our own writes), so callers see the result at once. */
  refresh(...uuids: string[]): Promise<void> {
    return this.enqueue(() => this.refreshMany(uuids, true));
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
      if (kind === 'runstate') this.emit('runstate', uuid);
      else this.pending.add(uuid);
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
        else await this.refreshMany(uuids, false);
      });
    }, this.opts.debounceMs);
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.queue.then(work).catch((err: unknown) => this.log.error(`Reading the workers dir failed: ${String(err)}`));
    this.queue = run;
    return run;
  }

  private async scanAll(): Promise<void> {
    const listing = await this.registry.list().catch((err: unknown) => {
      // EMFILE, EACCES…: an empty list would tell every client that all workers are gone.
      this.log.once(`readdir:${(err as NodeJS.ErrnoException).code ?? String(err)}`, `Cannot list ${this.registry.workersDir}: ${(err as Error).message}; keeping the last known workers`);
      return undefined;
    });
    if (listing === undefined) return;
    const { json, pid } = listing;
    if (!this.watcher && !this.stopped) this.watch();
    const present = new Set(json);
    // Files are read in parallel, results reported in listing order so the lists keep a stable order. A
    // worker without a `.p` in the listing is not asked for one (at 500 idle workers, failed opens were a
    // third of a rescan's cost); a `.p` written after the listing has its own watch event.
    const loaded = await mapLimit(json, SCAN_CONCURRENCY, (uuid) => this.load(uuid, false, pid.has(uuid)));
    const gone = [...this.known.keys()].filter((uuid) => !present.has(uuid));
    this.reportAll([...gone.map((uuid): Report => [uuid, undefined, undefined]), ...json.map((uuid, index): Report => [uuid, ...loaded[index]])]);
  }

  private async refreshMany(uuids: string[], forceRead: boolean): Promise<void> {
    const loaded = await mapLimit(uuids, SCAN_CONCURRENCY, (uuid) => this.load(uuid, forceRead));
    this.reportAll(uuids.map((uuid, index): Report => [uuid, ...loaded[index]]));
  }

  /** Reports read together as one batch, synchronously: one change for the lists, not one per worker. */
  private reportAll(reports: Report[]): void {
    this.emit('batch', true);
    try {
      for (const report of reports) this.report(...report);
    } finally {
      this.emit('batch', false);
    }
  }

  private report(uuid: string, files: WorkerFiles | undefined, invalid: string | undefined): void {
    if (files) this.known.set(uuid, { raw: files.raw, stamp: files.stamp });
    else this.known.delete(uuid);
    this.emit('worker', uuid, files, invalid);
  }

  /** Reads what changed on disk for one worker; the JSON only when its mtime or size moved (or forced). */
  private async load(uuid: string, forceRead: boolean, hasPidFile = true): Promise<[WorkerFiles | undefined, string | undefined]> {
    let stamp: string;
    try {
      const s = await stat(this.registry.paths(uuid).json);
      stamp = `${s.mtimeMs}:${s.size}`;
    } catch {
      return [undefined, undefined];
    }
    const previous = this.known.get(uuid);
    let raw = previous?.raw;
    if (forceRead || previous?.stamp !== stamp || raw === undefined) {
      const read = await this.registry.read(uuid);
      if (!read.ok) return [undefined, read.reason];
      raw = read.config;
    }
    return [{ raw, stamp, pidFile: hasPidFile ? await this.registry.readPidFile(uuid) : undefined }, undefined];
  }
}
