/**
 * The output of every worker: one `WorkerLog` (tail + rotation of `<data dir>/worker.log`) per worker that
 * runs or is watched, and the listeners of `watch_logs`.
 */
import path from 'node:path';
import type { Logger } from '../logs/log.js';
import type { WorkerConfig } from '../../../src-shared/protocol.js';
import type { Registry } from '../registry/registry.js';
import { WorkerLog } from '../logs/worker-log.js';

type LinesListener = (lines: string[]) => void;

export class WorkerLogs {
  private readonly logs = new Map<string, WorkerLog>();
  private readonly listeners = new Map<string, Set<LinesListener>>();
  /** Workers whose process writes the log: followed even with no listener. */
  private readonly writing = new Set<string>();

  constructor(
    private readonly registry: Registry,
    private readonly log: Logger,
    /** New lines of a worker arrived (its state shows the last ones). */
    private readonly onLines: (uuid: string) => void = () => undefined,
  ) {}

  file(config: WorkerConfig): string {
    return path.join(this.registry.dataDir(config), 'worker.log');
  }

  /** Follows the log of a worker whose process now writes it (ours or adopted). */
  follow(config: WorkerConfig): WorkerLog {
    this.writing.add(config.uuid);
    return this.logFor(config);
  }

  /** Its process is gone: after its last words have reached the tail, stop following a file nobody writes. */
  unfollow(uuid: string): void {
    this.writing.delete(uuid);
    setTimeout(() => this.release(uuid), 300).unref();
  }

  /** Resolves once the worker's tail holds what its file holds now. */
  async caughtUp(uuid: string): Promise<void> {
    await this.logs.get(uuid)?.caughtUp();
  }

  tail(uuid: string, lines: number): string[] {
    return this.logs.get(uuid)?.tail(lines) ?? [];
  }

  /** Follows a worker's log for one listener; returns the buffered tail and the unsubscribe function. */
  watch(config: WorkerConfig, lines: number, listener: LinesListener): { initial: string[]; unwatch: () => void } {
    const uuid = config.uuid;
    const workerLog = this.logFor(config);
    let listeners = this.listeners.get(uuid);
    if (!listeners) this.listeners.set(uuid, (listeners = new Set()));
    listeners.add(listener);
    return {
      initial: workerLog.tail(lines),
      unwatch: () => {
        listeners.delete(listener);
        if (listeners.size === 0) {
          this.listeners.delete(uuid);
          this.release(uuid);
        }
      },
    };
  }

  forget(uuid: string): void {
    this.logs.get(uuid)?.stop();
    this.logs.delete(uuid);
    this.listeners.delete(uuid);
    this.writing.delete(uuid);
  }

  dispose(): void {
    for (const workerLog of this.logs.values()) workerLog.stop();
    this.logs.clear();
    this.listeners.clear();
  }

  private logFor(config: WorkerConfig): WorkerLog {
    const existing = this.logs.get(config.uuid);
    if (existing?.following) return existing;
    const workerLog = new WorkerLog({ file: this.file(config), log: this.log });
    workerLog.on('lines', (lines: string[]) => {
      for (const listener of this.listeners.get(config.uuid) ?? []) listener(lines);
      this.onLines(config.uuid);
    });
    workerLog.start();
    this.logs.set(config.uuid, workerLog);
    return workerLog;
  }

  /** Stops following a log nobody writes or reads; its buffered tail stays for the worker's state. */
  private release(uuid: string): void {
    if (this.writing.has(uuid) || this.listeners.has(uuid)) return;
    this.logs.get(uuid)?.stop();
  }
}
