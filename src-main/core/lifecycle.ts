/**
 * Starts and stops worker processes. Start spawns the original's command line (spec §4.4 recommendation)
 * with its output appended to `<data dir>/worker.log`, and waits on events, not a 0.5 s poll: runstate
 * changes are relayed once each, the status tracker's probe says when the worker answers, and the child's
 * exit ends the wait at once. Stop asks the worker (after checking its uuid), waits for the process to
 * exit, then ends its process tree. Workers hold no pipe to the manager, so they survive its death and the
 * next manager adopts them.
 */
import { appendFileSync, closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { loadExeca } from './execa-lazy.js';
import type { Logger } from './log.js';
import { probeWorker, type ProbeResult } from './liveness.js';
import { OperationError, ReportedError, type Report, type WorkerLifecycle } from './manager.js';
import { settlesWithin, terminateTree, waitForPidExit } from './process-tree.js';
import { progressStep, workerUrl, type WorkerConfig } from './protocol.js';
import { commandText, workerCommand } from './python-env/launcher.js';
import { workerPython } from './python.js';
import type { Registry } from './registry.js';
import type { StatusTracker } from './status.js';
import { WorkerLog } from './worker-log.js';
import type { WorkerStates } from './worker-states.js';

export interface LifecycleOptions {
  registry: Registry;
  status: StatusTracker;
  states: WorkerStates;
  log: Logger;
  configDir: string;
  /** Interpreter for workers without a venv. */
  python: string;
  env?: NodeJS.ProcessEnv;
  debug?: boolean;
  /** Without a `.p` by then (or, for a process we did not start, an answer) the start has failed (default 120 s, spec §4.5). */
  connectTimeoutMs?: number;
  /** The whole start (default 420 s). */
  startTimeoutMs?: number;
  /** Wait for a stopped worker to exit before SIGTERM (default 15 s). */
  stopTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace (default 5 s). */
  killGraceMs?: number;
  probe?: (config: WorkerConfig) => Promise<ProbeResult>;
  /**
   * Runs before each spawn (not for a process found running): a venv's check and updates. Its note is
   * added to the reason of a start that then fails.
   */
  prepareStart?: (config: WorkerConfig, report: Report, signal: AbortSignal) => Promise<{ note?: string }>;
}

interface Child {
  pid: number;
  /** Resolves once execa has seen the exit and it is recorded. */
  exited: Promise<void>;
  /** We asked it to go (stop, shutdown, a failed start): its exit is no crash. */
  expectExit: boolean;
  /** How it ended, once it has. */
  how?: string;
  /** Lets the manager's process exit while this child runs on (--keep-workers). */
  release: () => void;
}

type LinesListener = (lines: string[]) => void;

export class ProcessLifecycle implements WorkerLifecycle {
  private readonly children = new Map<string, Child>();
  private readonly logs = new Map<string, WorkerLog>();
  private readonly logListeners = new Map<string, Set<LinesListener>>();
  /** Starts in progress: shutdown cancels them and waits for them, so none spawns a child it never sees. */
  private readonly starts = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private readonly probe: (config: WorkerConfig) => Promise<ProbeResult>;
  private shuttingDown = false;

  constructor(private readonly opts: LifecycleOptions) {
    this.probe = opts.probe ?? ((config) => probeWorker(config));
  }

  /** Spec §4.4's command line, or for a venv worker the launcher that skips the CLI's second upgrade (python-env/launcher.ts). */
  command(config: WorkerConfig): { file: string; args: string[] } {
    const file = workerPython(config, this.opts.registry.workersDir, this.opts.python);
    return workerCommand(file, config, { configDir: this.opts.configDir, debug: this.opts.debug === true });
  }

  /** Our child, or a process we found alive (adopted, or started by someone else and still booting). */
  isRunning(uuid: string): boolean {
    return this.children.has(uuid) || this.opts.status.find(uuid)?.alive === true;
  }

  start(uuid: string, report: Report): Promise<void> {
    if (this.shuttingDown) return Promise.reject(new OperationError('the Workermanager is shutting down'));
    // Registered before the first await, so a shutdown that begins meanwhile cancels and awaits it.
    const abort = new AbortController();
    const start = { abort, done: this.startProcess(uuid, report, abort.signal) };
    this.starts.set(uuid, start);
    const forget = () => {
      if (this.starts.get(uuid) === start) this.starts.delete(uuid);
    };
    void start.done.then(forget, forget);
    return start.done;
  }

  private async startProcess(uuid: string, report: Report, signal: AbortSignal): Promise<void> {
    const { registry, states } = this.opts;
    const read = await registry.read(uuid);
    if (!read.ok) throw new OperationError(`its JSON ${read.reason}`);
    states.begin(uuid, 'starting');
    let failure: string | undefined;
    try {
      if (await this.startedElsewhere(uuid)) {
        // Someone else's process (another manager, the Python CLI): contact it instead of spawning a twin.
        report(progressStep.contacting());
        await this.waitUntilActive(uuid, report, undefined, signal);
        return;
      }
      const { note } = (await this.opts.prepareStart?.(read.config, report, signal)) ?? {};
      signal.throwIfAborted();
      report(progressStep.starting());
      const child = await this.spawn(read.config);
      report(progressStep.contacting());
      try {
        await this.waitUntilActive(uuid, report, child, signal);
      } catch (err) {
        child.expectExit = true;
        await terminateTree(child.pid, this.opts.killGraceMs ?? 5_000);
        throw note === undefined ? err : new ReportedError(`${capitalised((err as Error).message)}. ${note}`);
      }
    } catch (err) {
      failure = (err as Error).message;
      throw err;
    } finally {
      states.end(uuid, failure);
    }
  }

  /** A stop request ends a start still waiting for its worker (the start then ends its child). */
  cancelStart(uuid: string): void {
    this.starts.get(uuid)?.abort.abort(new OperationError('a stop was requested while it was starting'));
  }

  /**
   * A live `.p` pid means it is running or booting; any other `.p` (a dead pid, garbage) is removed so the
   * worker's start guard lets it start (spec §2.5).
   */
  private async startedElsewhere(uuid: string): Promise<boolean> {
    if (this.children.has(uuid)) return true;
    const { registry, status } = this.opts;
    const pid = await registry.readPidFile(uuid);
    if (typeof pid === 'number') {
      await status.refresh(uuid);
      if (status.find(uuid)?.alive) return true;
    }
    await registry.removePidFile(uuid);
    return false;
  }

  private async spawn(config: WorkerConfig): Promise<Child> {
    // Loaded with the first start: a manager that never starts a worker saves its memory and start-up time.
    const execa = await loadExeca();
    const { file, args } = this.command(config);
    const { log, status, states } = this.opts;
    // The file exists before its tail starts, so the tail can watch it from the first line.
    const logFile = this.logFile(config);
    mkdirSync(path.dirname(logFile), { recursive: true });
    appendFileSync(logFile, `--- fnwm ${new Date().toISOString()}: ${commandText({ file, args })}\n`, { mode: 0o600 });
    const fd = this.logFor(config).openForChild();
    const proc = this.execute(execa, file, args, fd);
    const pid = proc.pid;
    if (pid === undefined) {
      throw new OperationError(`could not run ${file}: ${commandText({ file, args })} failed to spawn`);
    }
    log.info(`Spawned worker ${config.uuid} (pid ${pid}): ${commandText({ file, args })}`);
    states.spawned(config.uuid, pid);
    const child: Child = {
      pid,
      expectExit: false,
      release: () => proc.unref(),
      exited: proc.then(async (result) => {
        if (this.children.get(config.uuid) === child) this.children.delete(config.uuid);
        const exit = { code: result.exitCode ?? null, signal: result.signal ?? null };
        child.how = exit.signal ?? `code ${exit.code}`;
        log.info(`Worker ${config.uuid} (pid ${pid}) exited (${child.how})`);
        states.exited(config.uuid, exit, child.expectExit || this.shuttingDown);
        // Let its last words reach the tail, then stop following a file nobody writes.
        setTimeout(() => this.releaseLog(config.uuid), 300).unref();
        await status.refresh(config.uuid);
        states.announce(config.uuid);
      }),
    };
    this.children.set(config.uuid, child);
    return child;
  }

  private execute(execa: typeof import('execa').execa, file: string, args: string[], fd: number) {
    // execa passes any open descriptor straight to spawn; its types list only 3–9.
    const output = fd as 3;
    try {
      return execa(file, args, {
        env: { ...(this.opts.env ?? process.env), FUNCNODES_CONFIG_DIR: this.opts.configDir, USE_SUBPROCESS_MONITOR: '0' },
        extendEnv: false,
        cwd: this.opts.configDir,
        // Its own process group, so a stop ends the whole tree; no pipes, so it can outlive the manager.
        detached: true,
        cleanup: false,
        reject: false,
        stdin: 'ignore',
        stdout: output,
        stderr: output,
      });
    } finally {
      // The child holds its own copy of the descriptor.
      closeSync(fd);
    }
  }


  /**
   * Resolves when the status tracker lists the worker active; relays each new runstate once, ignoring the
   * stale one from the previous run; rejects at once when the child exits or the start is cancelled, or
   * at the deadlines.
   */
  private waitUntilActive(uuid: string, report: Report, child: Child | undefined, signal: AbortSignal): Promise<void> {
    const { status, registry } = this.opts;
    const connectTimeout = this.opts.connectTimeoutMs ?? 120_000;
    const startTimeout = this.opts.startTimeoutMs ?? 420_000;
    return new Promise<void>((resolve, reject) => {
      let lastRunstate: string | undefined;
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        status.off('change', onChange);
        status.off('file', onFile);
        signal.removeEventListener('abort', onAbort);
        for (const t of timers) clearTimeout(t);
        if (err) reject(err);
        else resolve();
      };
      const onChange = () => {
        if (status.find(uuid)?.active) finish();
      };
      const onAbort = () => finish(signal.reason instanceof Error ? signal.reason : new OperationError('the start was cancelled'));
      // Workers rewrite `.runstate` in place, so a read can catch half a write. Reads run one at a time
      // (relays stay in the order written) and a text is relayed only when two reads agree.
      let reading: Promise<void> = Promise.resolve();
      const stableRunstate = async (): Promise<string | undefined> => {
        for (let attempt = 0; attempt < 5; attempt++) {
          const first = await registry.readRunstate(uuid);
          await sleep(5);
          if (first === (await registry.readRunstate(uuid))) return first;
        }
        return undefined;
      };
      const onFile = (fileUuid: string, kind: string) => {
        if (fileUuid !== uuid || kind !== 'runstate') return;
        reading = reading.then(async () => {
          const text = await stableRunstate();
          // An empty text is a write in progress; relaying it would send `message: ""` (operation over).
          if (settled || text === undefined || text.trim() === '' || text === lastRunstate) return;
          lastRunstate = text;
          report(progressStep.runstate(text));
        });
      };
      status.on('change', onChange);
      status.on('file', onFile);
      signal.addEventListener('abort', onAbort);
      void registry.readRunstate(uuid).then((text) => {
        // The previous run's last word (usually `removed`) is not news.
        if (lastRunstate === undefined) lastRunstate = text;
      });
      void child?.exited.then(() => finish(new OperationError(`the worker process exited during start (${child.how})`)));
      timers.push(
        setTimeout(() => {
          // Our child gets until the connect deadline to write its `.p`; someone else's process to answer.
          if (child === undefined) return finish(new OperationError(`its running process did not answer within ${connectTimeout} ms`));
          void registry.readPidFile(uuid).then((pid) => {
            if (pid === undefined) finish(new OperationError(`no process file after ${connectTimeout} ms`));
          });
        }, connectTimeout),
        setTimeout(() => finish(new OperationError(`it did not answer within ${startTimeout} ms`)), startTimeout),
      );
      // The tracker may already know (an adopted worker that answers).
      void status.refresh(uuid).then(onChange);
      // A cancel that came while the child was being spawned has already fired its 'abort' event.
      if (signal.aborted) onAbort();
    });
  }

  async contact(uuid: string): Promise<boolean> {
    const entry = this.opts.status.find(uuid);
    return entry !== undefined && (await this.probe(entry.config)) === 'match';
  }

  /**
   * Stop with deadlines: the stop command (uuid verified first), then SIGTERM, then SIGKILL of the tree.
   * A process we did not start is touched only after it answered with its uuid: its pid may be a stranger's.
   */
  async stop(uuid: string): Promise<void> {
    const { states } = this.opts;
    if (!this.isRunning(uuid)) return;
    states.begin(uuid, 'stopping');
    let failure: string | undefined;
    try {
      await this.stopProcess(uuid);
    } catch (err) {
      failure = (err as Error).message;
      throw err;
    } finally {
      states.end(uuid, failure);
    }
  }

  private async stopProcess(uuid: string): Promise<void> {
    const { status, log } = this.opts;
    const child = this.children.get(uuid);
    let entry = status.find(uuid);
    // Workers rewrite their .p every few seconds (spec §2.5); one caught empty shows no pid: read it again.
    if (!child && typeof entry?.config.pid !== 'number') {
      await status.refresh(uuid);
      entry = status.find(uuid);
    }
    const pid = child?.pid ?? (typeof entry?.config.pid === 'number' ? entry.config.pid : undefined);
    if (pid === undefined) return;
    const answers = entry !== undefined && (await this.probe(entry.config)) === 'match';
    if (!child && !answers) throw new OperationError(`it does not answer with its uuid, so pid ${pid} may be another program; leaving it alone`);
    if (child) child.expectExit = true;
    if (answers && entry) await sendStopCommand(entry.config);
    else log.warn(`stop ${uuid}: our child ${pid} does not answer with its uuid; terminating it`);
    const timeout = this.opts.stopTimeoutMs ?? 15_000;
    const exited = answers && (child ? await settlesWithin(child.exited, timeout) : await waitForPidExit(pid, timeout));
    if (!exited) {
      if (answers) log.warn(`stop ${uuid}: pid ${pid} still running ${timeout} ms after the stop command; terminating it`);
      if (!(await terminateTree(pid, this.opts.killGraceMs ?? 5_000))) throw new OperationError(`process ${pid} survived SIGKILL`);
    }
    // Our child's exit is recorded before the sequence ends, so the next state already says how it ended.
    if (child) await child.exited;
    await status.refresh(uuid);
  }

  /**
   * Manager stop, also with --keep-workers: no new starts; those in progress are cancelled and awaited (a
   * cancelled start ends the child it spawned), so none lives on with its timers or kills its child later.
   */
  async cancelStarts(): Promise<void> {
    this.shuttingDown = true;
    const starts = [...this.starts.values()];
    for (const { abort } of starts) abort.abort(new OperationError('the Workermanager is shutting down'));
    await Promise.allSettled(starts.map(({ done }) => done));
  }

  /** Manager shutdown: cancel starts, then stop every child of ours in parallel, with the usual deadlines. */
  async shutdown(): Promise<void> {
    await this.cancelStarts();
    const uuids = [...this.children.keys()];
    await Promise.all(
      uuids.map((uuid) =>
        this.stop(uuid).catch((err: unknown) => this.opts.log.warn(`Shutdown: could not stop worker ${uuid}: ${(err as Error).message}`)),
      ),
    );
  }

  /** Stops following every log; children, if any are left, run on without holding this process open. */
  dispose(): void {
    for (const child of this.children.values()) child.release();
    for (const workerLog of this.logs.values()) workerLog.stop();
    this.logs.clear();
    this.logListeners.clear();
  }

  // ------------------------------------------------------------ output

  tail(uuid: string, lines: number): string[] {
    return this.logs.get(uuid)?.tail(lines) ?? [];
  }

  /** Follows a worker's log for one listener; returns the buffered tail and the unsubscribe function. */
  watchLog(uuid: string, lines: number, listener: LinesListener): { initial: string[]; unwatch: () => void } | undefined {
    const config = this.opts.status.find(uuid)?.config;
    if (!config) return undefined;
    const workerLog = this.logFor(config);
    let listeners = this.logListeners.get(uuid);
    if (!listeners) this.logListeners.set(uuid, (listeners = new Set()));
    listeners.add(listener);
    return {
      initial: workerLog.tail(lines),
      unwatch: () => {
        listeners.delete(listener);
        if (listeners.size === 0) {
          this.logListeners.delete(uuid);
          this.releaseLog(uuid);
        }
      },
    };
  }

  /** Forgets a deleted worker's log. */
  forget(uuid: string): void {
    this.opts.states.forget(uuid);
    this.logs.get(uuid)?.stop();
    this.logs.delete(uuid);
    this.logListeners.delete(uuid);
  }

  private logFor(config: WorkerConfig): WorkerLog {
    const existing = this.logs.get(config.uuid);
    if (existing?.following) return existing;
    const workerLog = new WorkerLog({ file: this.logFile(config), log: this.opts.log });
    workerLog.on('lines', (lines: string[]) => {
      for (const listener of this.logListeners.get(config.uuid) ?? []) listener(lines);
    });
    workerLog.start();
    this.logs.set(config.uuid, workerLog);
    return workerLog;
  }

  private logFile(config: WorkerConfig): string {
    return path.join(this.opts.registry.dataDir(config), 'worker.log');
  }

  /** Stops following a log nobody writes or reads; its buffered tail stays for the worker's state. */
  private releaseLog(uuid: string): void {
    if (this.children.has(uuid) || this.logListeners.has(uuid)) return;
    this.logs.get(uuid)?.stop();
  }
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Sends `stop_worker` and does not wait for the result, which a real worker may never deliver (spec §14.1). */
function sendStopCommand(config: WorkerConfig): Promise<void> {
  const url = workerUrl(config);
  if (url === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { handshakeTimeout: 2000, perMessageDeflate: false });
    const done = () => {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.close();
      resolve();
    };
    ws.on('open', () => ws.send(JSON.stringify({ type: 'cmd', cmd: 'stop_worker', kwargs: {}, id: 'fnwm-stop' }), () => done()));
    ws.on('error', done);
  });
}
