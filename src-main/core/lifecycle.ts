/**
 * Starts and stops worker processes. Start spawns the original's command line (spec §4.4 recommendation)
 * and waits on events, not a 0.5 s poll: runstate changes are relayed once each, the status tracker's probe
 * says when the worker answers, and the child's exit ends the wait at once. Stop asks the worker (after
 * checking its uuid), then waits for the process to exit, then terminates its process group.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import WebSocket from 'ws';
import type { Logger } from './log.js';
import { isPidAlive, probeWorker, workerUrl, type ProbeResult } from './liveness.js';
import { OperationError, type Report, type WorkerLifecycle } from './manager.js';
import { progressStep, type WorkerConfig } from './protocol.js';
import { workerPython } from './python.js';
import type { Registry } from './registry.js';
import type { StatusTracker } from './status.js';

export interface LifecycleOptions {
  registry: Registry;
  status: StatusTracker;
  log: Logger;
  configDir: string;
  /** Interpreter for workers without a venv. */
  python: string;
  env?: NodeJS.ProcessEnv;
  debug?: boolean;
  /** Without a `.p` by then the start has failed (default 120 s, spec §4.5). */
  connectTimeoutMs?: number;
  /** The whole start (default 420 s). */
  startTimeoutMs?: number;
  /** Wait for a stopped worker to exit before SIGTERM (default 15 s). */
  stopTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace (default 5 s). */
  killGraceMs?: number;
  probe?: (config: WorkerConfig) => Promise<ProbeResult>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ProcessLifecycle implements WorkerLifecycle {
  private readonly children = new Map<string, ResultPromise>();
  private readonly probe: (config: WorkerConfig) => Promise<ProbeResult>;

  constructor(private readonly opts: LifecycleOptions) {
    this.probe = opts.probe ?? ((config) => probeWorker(config));
  }

  /** The command line of spec §4.4: `<python> -m funcnodes [--debug] --dir <config dir> worker --uuid <uuid> start`. */
  command(config: WorkerConfig): { file: string; args: string[] } {
    const file = workerPython(config, this.opts.registry.workersDir, this.opts.python);
    const args = ['-m', 'funcnodes', ...(this.opts.debug ? ['--debug'] : []), '--dir', this.opts.configDir, 'worker', '--uuid', config.uuid, 'start'];
    return { file, args };
  }

  async start(uuid: string, report: Report): Promise<void> {
    const { registry } = this.opts;
    const read = await registry.read(uuid);
    if (!read.ok) throw new OperationError(`its JSON ${read.reason}`);
    const pidFile = await registry.readPidFile(uuid);
    if (typeof pidFile === 'number' && isPidAlive(pidFile)) {
      // Already running (or starting) outside our view: contact it instead of spawning a second one.
      report(progressStep.contacting());
      await this.waitUntilActive(uuid, report, undefined);
      return;
    }
    if (pidFile !== undefined) await registry.removePidFile(uuid);
    report(progressStep.starting());
    const child = this.spawn(read.config);
    report(progressStep.contacting());
    try {
      await this.waitUntilActive(uuid, report, child);
    } catch (err) {
      await this.terminate(child.pid);
      throw err;
    }
  }

  private spawn(config: WorkerConfig): ResultPromise {
    const { file, args } = this.command(config);
    const logDir = path.join(this.opts.configDir, 'logs');
    mkdirSync(logDir, { recursive: true });
    // The worker's own output, for diagnosing a start that fails before its log is set up.
    const output = { file: path.join(logDir, `worker_${config.uuid}.out.log`), append: true };
    const child = execa(file, args, {
      env: { ...(this.opts.env ?? process.env), FUNCNODES_CONFIG_DIR: this.opts.configDir, USE_SUBPROCESS_MONITOR: '0' },
      extendEnv: false,
      cwd: this.opts.configDir,
      // Own process group, so a stop can end the whole tree; workers outlive the manager (spec §4.6).
      detached: true,
      cleanup: false,
      reject: false,
      stdin: 'ignore',
      stdout: output,
      stderr: output,
    });
    this.opts.log.info(`Spawned worker ${config.uuid} (pid ${child.pid ?? '?'}): ${file} ${args.join(' ')}`);
    this.children.set(config.uuid, child);
    void child.then((result) => {
      if (this.children.get(config.uuid) === child) this.children.delete(config.uuid);
      this.opts.log.info(`Worker ${config.uuid} (pid ${child.pid ?? '?'}) exited (${result.exitCode ?? result.signal ?? '?'})`);
      void this.opts.status.refresh(config.uuid);
    });
    return child;
  }

  /**
   * Resolves when the status tracker lists the worker active; relays each new runstate once, ignoring the
   * stale one from the previous run; rejects at once when the child exits, or at the deadlines.
   */
  private waitUntilActive(uuid: string, report: Report, child: ResultPromise | undefined): Promise<void> {
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
        for (const t of timers) clearTimeout(t);
        if (err) reject(err);
        else resolve();
      };
      const onChange = () => {
        if (status.find(uuid)?.active) finish();
      };
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
      void registry.readRunstate(uuid).then((text) => {
        // The previous run's last word (usually `removed`) is not news.
        if (lastRunstate === undefined) lastRunstate = text;
      });
      void child?.then((result) => finish(new OperationError(`the worker process exited during start (${result.exitCode ?? result.signal ?? '?'})`)));
      timers.push(
        setTimeout(() => {
          void registry.readPidFile(uuid).then((pid) => {
            if (pid === undefined) finish(new OperationError(`no process file after ${connectTimeout} ms`));
          });
        }, connectTimeout),
        setTimeout(() => finish(new OperationError(`it did not answer within ${startTimeout} ms`)), startTimeout),
      );
      // The tracker may already know (an adopted worker that answers).
      void status.refresh(uuid).then(onChange);
    });
  }

  async contact(uuid: string): Promise<boolean> {
    const entry = this.opts.status.find(uuid);
    return entry !== undefined && (await this.probe(entry.config)) === 'match';
  }

  /** Stop with a deadline: the stop command (uuid verified first), then SIGTERM, then SIGKILL of the group. */
  async stop(uuid: string): Promise<void> {
    const { status, log } = this.opts;
    const entry = status.find(uuid);
    if (!entry) return;
    const pid = entry.config.pid;
    if ((await this.probe(entry.config)) === 'match') await sendStopCommand(entry.config);
    else log.warn(`stop ${uuid}: the worker does not answer with its uuid; not sending it the stop command`);
    if (typeof pid === 'number' && !(await this.waitForExit(uuid, pid, this.opts.stopTimeoutMs ?? 15_000))) {
      log.warn(`stop ${uuid}: pid ${pid} still running after the stop command; terminating it`);
      await this.terminate(pid);
      if (isPidAlive(pid)) throw new OperationError(`process ${pid} survived SIGKILL`);
    }
    await status.refresh(uuid);
  }

  private async waitForExit(uuid: string, pid: number, timeoutMs: number): Promise<boolean> {
    const child = this.children.get(uuid);
    if (child?.pid === pid) return Promise.race([child.then(() => true), sleep(timeoutMs).then(() => false)]);
    // Not our child: the pid is all we have.
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!isPidAlive(pid)) return true;
      await sleep(50);
    }
    return !isPidAlive(pid);
  }

  /** SIGTERM to the process group (our children lead their own), then SIGKILL after the grace period. */
  private async terminate(pid: number | undefined): Promise<void> {
    if (pid === undefined || !isPidAlive(pid)) return;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(process.platform === 'win32' ? pid : -pid, sig);
      } catch {
        try {
          process.kill(pid, sig);
        } catch {
          // Gone.
        }
      }
    };
    signal('SIGTERM');
    const deadline = Date.now() + (this.opts.killGraceMs ?? 5_000);
    while (Date.now() < deadline && isPidAlive(pid)) await sleep(50);
    if (isPidAlive(pid)) signal('SIGKILL');
    for (let i = 0; i < 20 && isPidAlive(pid); i++) await sleep(50);
  }
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
