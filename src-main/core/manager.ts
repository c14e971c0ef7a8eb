/**
 * Implements each protocol operation from the registry, the status tracker and the worker lifecycle, and
 * emits the original's progress sequences (spec §3.6) in the original's order. Every operation that sent
 * blocking progress ends with the reset frame, failures included.
 */
import type { Logger } from './log.js';
import {
  errorMessage,
  errorText,
  progressStep,
  reachableHost,
  RESET_PROGRESS,
  type ClientRequest,
  type EnvRequestType,
  type WorkerIdRequestType,
  type ManagerMessage,
  type NewWorkerOptions,
  type ProgressMessage,
  type WorkerConfig,
} from './protocol.js';
import type { PythonEnvs } from './python-env/envs.js';
import { resolveEnvPath } from './python.js';
import { WorkerExistsError, type CreateDefaults, type Registry } from './registry.js';
import type { StatusTracker } from './status.js';

/** One client connection as the manager sees it. */
export interface Requester {
  send(message: ManagerMessage): void;
  /** Whether it has asked for `worker_status` and so receives broadcasts. */
  readonly subscribed: boolean;
}

export interface Broadcast {
  /** Sends to every subscribed connection except `except`. */
  (message: ManagerMessage, except?: Requester): void;
}

export type Report = (message: ProgressMessage) => void;

/** Starting and stopping worker processes; the manager owns only the message sequences around them. */
export interface WorkerLifecycle {
  /** Starts an inactive worker; resolves once it answers its uuid, rejects with the reason otherwise. */
  start(uuid: string, report: Report): Promise<void>;
  /** Ends a start still waiting for its worker. */
  cancelStart(uuid: string): void;
  /** Asks a running worker to stop; resolves once its process is gone, rejects if it would not go. */
  stop(uuid: string): Promise<void>;
  /** Confirms a worker listed active still answers with its uuid. */
  contact(uuid: string): Promise<boolean>;
  /** Whether a process of this worker is alive (ours, adopted, or still booting); every active worker is. */
  isRunning(uuid: string): boolean;
  /** Drops what is kept about a deleted worker. */
  forget(uuid: string): void;
}

/** One start (or contact) in flight, shared by every `set_active` that arrives while it runs. */
interface Activation {
  reporters: Set<Report>;
  done: Promise<void>;
}

export class OperationError extends Error {}

/** An operation error whose message (whole sentences) the requester sees, not just the log. */
export class ReportedError extends OperationError {}

export interface ManagerDeps {
  registry: Registry;
  status: StatusTracker;
  lifecycle: WorkerLifecycle;
  log: Logger;
  broadcast: Broadcast;
  inVenvDefault: boolean;
  createDefaults: CreateDefaults;
  envs: PythonEnvs;
}

export class WorkerManager {
  /** Lifecycle operations are serialised per worker (spec §3.8 recommendation). */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly activations = new Map<string, Activation>();
  /** The latest frame of each broadcast operation still running (new_worker), for clients that join late. */
  private readonly inFlight = new Map<symbol, ProgressMessage>();
  /** Ends the installers of creations still running when the manager stops (they clean up after themselves). */
  private readonly creations = new AbortController();
  private readonly creating = new Set<Promise<void>>();

  constructor(private readonly deps: ManagerDeps) {}

  handle(request: Extract<ClientRequest, { type: 'new_worker' | WorkerIdRequestType | EnvRequestType }>, requester: Requester): Promise<void> {
    switch (request.type) {
      case 'new_worker': {
        const creation = this.newWorker(request.options, requester);
        this.creating.add(creation);
        void creation.finally(() => this.creating.delete(creation)).catch(() => undefined);
        return creation;
      }
      case 'set_active':
        return this.withReset(requester, () => this.activate(request.workerid, requester));
      case 'stop_worker':
        return this.stopWorker(request.workerid, requester).then(() => undefined);
      case 'restart_worker':
        return this.restartWorker(request.workerid, requester);
      case 'delete_worker':
        return this.deleteWorker(request.workerid, requester);
      case 'env_history':
        return this.envHistory(request.workerid, requester);
      case 'env_rollback':
        return this.withReset(requester, () => this.envRollback(request.workerid, requester));
    }
  }

  /** Manager shutdown: creations in progress fail now; resolves once they have removed their half-made data dirs. */
  async cancelCreations(): Promise<void> {
    this.creations.abort(new OperationError('the Workermanager is stopping'));
    await Promise.allSettled(this.creating);
  }

  /** What a client that subscribes now has missed: the current step of each creation in progress. */
  currentProgress(): ProgressMessage[] {
    return [...this.inFlight.values()];
  }

  private async withReset(requester: Requester, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } finally {
      requester.send(RESET_PROGRESS);
    }
  }

  private serialised<T>(uuid: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(uuid) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => undefined);
    this.locks.set(uuid, tail);
    void tail.then(() => {
      if (this.locks.get(uuid) === tail) this.locks.delete(uuid);
    });
    return run;
  }

  /**
   * Sequence N (spec §3.6), sent to the requester and every subscriber, then the reset the original forgot.
   * With `in_venv` the venv is made (with the installers' output as progress) before the JSON exists, so a
   * failed creation leaves nothing behind and is never broadcast.
   */
  private async newWorker(options: NewWorkerOptions, requester: Requester): Promise<void> {
    const { registry, status, log, envs } = this.deps;
    const inVenv = options.in_venv ?? this.deps.inVenvDefault;
    const key = Symbol('new_worker');
    const announce = (message: ProgressMessage) => {
      if (message.message === '') this.inFlight.delete(key);
      else this.inFlight.set(key, message);
      requester.send(message);
      this.deps.broadcast(message, requester);
    };
    // Held from the JSON write to our last frame (not during a long install: other workers' news flows).
    let release: (() => void) | undefined;
    try {
      // Without a venv the original's order holds: "Writing configuration." first.
      if (!inVenv) announce(progressStep.writingConfig());
      let config: WorkerConfig;
      try {
        config = await registry.create(options, this.deps.createDefaults, async (uuid, dataDir) => {
          const envPath = inVenv ? await envs.create(dataDir, announce, this.creations.signal) : null;
          if (inVenv) log.info(`Created the virtual environment of worker ${uuid} in ${envPath}`);
          release = status.hold();
          if (inVenv) announce(progressStep.writingConfig());
          return { env_path: envPath };
        });
      } catch (err) {
        const known = err instanceof WorkerExistsError || err instanceof ReportedError;
        const reason = known ? err.message : `could not write its files: ${(err as Error).message}`;
        log.warn(`new_worker failed: ${reason}`);
        requester.send(errorMessage(`Could not create worker: ${reason}${reason.endsWith('.') ? '' : '.'}`));
        announce(RESET_PROGRESS);
        return;
      }
      // Known at once: a set_active right after worker_created must find it (spec §14.3).
      await status.refresh(config.uuid);
      announce(progressStep.creatingWorker());
      requester.send({ type: 'worker_created', uuid: config.uuid });
      announce(RESET_PROGRESS);
      log.info(`Created worker ${config.uuid} (${String(config.name)})`);
    } finally {
      this.inFlight.delete(key);
      release?.();
    }
    this.sendStatusIfUnsubscribed(requester);
  }

  /** Sequence A (spec §3.6) without the reset, which the caller adds. */
  private async activate(uuid: string, requester: Requester): Promise<void> {
    const { status, lifecycle, registry, log } = this.deps;
    requester.send(progressStep.activating());
    if (!status.find(uuid)) {
      requester.send(errorMessage(errorText.activateNotFound(uuid)));
      return;
    }
    try {
      await this.joinActivation(uuid, (p) => requester.send(p), async (report) => {
        const entry = status.find(uuid);
        if (!entry) throw new OperationError('it was deleted meanwhile');
        if (!entry.active) {
          await lifecycle.start(uuid, report);
        } else {
          report(progressStep.contacting());
          if (!(await lifecycle.contact(uuid))) throw new OperationError('it no longer answers with its uuid');
        }
      });
      const read = await registry.read(uuid);
      if (!read.ok) throw new OperationError(`its JSON ${read.reason}`);
      requester.send({ type: 'set_worker', data: browserReachable(read.config) });
    } catch (err) {
      log.warn(`set_active ${uuid} failed: ${(err as Error).message}`);
      // The original's text first (clients match it); then, for environment problems, what to do.
      const detail = err instanceof ReportedError ? ` ${err.message}` : '';
      requester.send(errorMessage(errorText.activateFailed(uuid) + detail));
    }
  }

  /**
   * Concurrent `set_active` calls for one worker share one start: its progress reaches every requester
   * that has joined, and so does its outcome.
   */
  private joinActivation(uuid: string, report: Report, work: (report: Report) => Promise<void>): Promise<void> {
    let activation = this.activations.get(uuid);
    if (!activation) {
      const reporters = new Set<Report>();
      const done = this.serialised(uuid, () => work((p) => reporters.forEach((r) => r(p))));
      const current: Activation = { reporters, done };
      this.activations.set(uuid, current);
      const release = () => {
        if (this.activations.get(uuid) === current) this.activations.delete(uuid);
      };
      void done.then(release, release);
      activation = current;
    }
    activation.reporters.add(report);
    return activation.done;
  }

  /** Sequence S (spec §3.6); an unknown id gets nothing at all, as in the original. */
  private async stopWorker(uuid: string, requester: Requester): Promise<boolean> {
    const entry = this.deps.status.find(uuid);
    if (!entry) return true;
    let stopped = false;
    await this.withReset(requester, async () => {
      requester.send(progressStep.stoppingWorker());
      try {
        await this.afterCancellingStart(uuid, () => this.stopIfRunning(uuid));
        stopped = true;
      } catch (err) {
        this.deps.log.warn(`stop_worker ${uuid} failed: ${(err as Error).message}`);
        requester.send(errorMessage(`Could not stop worker with id ${uuid}: ${(err as Error).message}`));
      }
    });
    return stopped;
  }

  /**
   * Runs after the operations before it, except a start still waiting for its worker: that one is ended
   * now (with the process it spawned) rather than when it gives up, minutes later.
   */
  private afterCancellingStart<T>(uuid: string, work: () => Promise<T>): Promise<T> {
    this.deps.lifecycle.cancelStart(uuid);
    return this.serialised(uuid, work);
  }

  /** Stops a worker whose process runs; an inactive one is left alone (its old port may be another's). */
  private async stopIfRunning(uuid: string): Promise<void> {
    if (this.deps.lifecycle.isRunning(uuid)) await this.deps.lifecycle.stop(uuid);
  }

  /** Stop confirmed by process exit, then start (spec §4.7 recommendation). */
  private async restartWorker(uuid: string, requester: Requester): Promise<void> {
    if (!(await this.stopWorker(uuid, requester))) return;
    await this.withReset(requester, () => this.activate(uuid, requester));
  }

  /** Sequence D (spec §3.6), confined to the workers dir; a running worker is stopped first. */
  private async deleteWorker(uuid: string, requester: Requester): Promise<void> {
    const { status, registry, log } = this.deps;
    let config = status.find(uuid)?.config;
    if (!config) {
      const read = await registry.read(uuid);
      if (!read.ok) {
        requester.send(errorMessage(errorText.deleteNotFound(uuid)));
        return;
      }
      config = read.config;
    }
    // Taken only once the start before us has ended: a held tracker emits no `change`, which a start waits for.
    let release: (() => void) | undefined;
    try {
      await this.withReset(requester, () =>
        this.afterCancellingStart(uuid, async () => {
          release = status.hold();
          requester.send(progressStep.deleting());
          if (this.deps.lifecycle.isRunning(uuid)) {
            requester.send(progressStep.stoppingWorker());
            try {
              await this.deps.lifecycle.stop(uuid);
            } catch (err) {
              log.warn(`delete_worker ${uuid}: stop failed: ${(err as Error).message}`);
              requester.send(errorMessage(`Could not delete worker ${uuid}: it is still running (${(err as Error).message}).`));
              return;
            }
            requester.send(RESET_PROGRESS);
          }
          requester.send(progressStep.removingFiles());
          try {
            await registry.remove(uuid, config);
          } catch (err) {
            log.warn(`delete_worker ${uuid}: ${(err as Error).message}`);
            requester.send(errorMessage(`Could not delete worker ${uuid}: ${(err as Error).message}. Its JSON is kept, so the delete can be tried again.`));
            return;
          }
          this.deps.lifecycle.forget(uuid);
          await status.refresh(uuid);
          requester.send(progressStep.deleted());
          requester.send({ type: 'worker_deleted', uuid });
          log.info(`Deleted worker ${uuid}`);
        }),
      );
    } finally {
      release?.();
      this.sendStatusIfUnsubscribed(requester);
    }
  }

  /** The worker's env snapshots, newest first (additive). */
  private async envHistory(uuid: string, requester: Requester): Promise<void> {
    const config = this.deps.status.find(uuid)?.config;
    if (!config) return requester.send(errorMessage(errorText.deleteNotFound(uuid)));
    const snapshots = await this.deps.envs.history(this.deps.registry.dataDir(config));
    requester.send({ type: 'env_history', uuid, snapshots: snapshots.map(({ id, created, packages }) => ({ id, created, packages })) });
  }

  /** Reinstalls the newest snapshot's versions (additive); only while the worker is stopped. */
  private async envRollback(uuid: string, requester: Requester): Promise<void> {
    const { status, registry, lifecycle, envs, log } = this.deps;
    const config = status.find(uuid)?.config;
    if (!config) return requester.send(errorMessage(errorText.deleteNotFound(uuid)));
    const envPath = config.env_path;
    if (typeof envPath !== 'string' || envPath === '') {
      return requester.send(errorMessage(`Worker ${uuid} has no virtual environment of its own (env_path is null): nothing to roll back.`));
    }
    await this.serialised(uuid, async () => {
      if (lifecycle.isRunning(uuid)) {
        return requester.send(errorMessage(`Worker ${uuid} is running: stop it before rolling back its environment.`));
      }
      try {
        const snapshot = await envs.rollback(registry.dataDir(config), resolveEnvPath(envPath, registry.workersDir), (p) => requester.send(p));
        log.info(`Rolled the environment of worker ${uuid} back to snapshot ${snapshot.id}`);
        requester.send({ type: 'env_rolled_back', uuid, snapshot: snapshot.id });
      } catch (err) {
        const reason = err instanceof ReportedError ? err.message : `internal error: ${(err as Error).message}`;
        log.warn(`env_rollback ${uuid} failed: ${reason}`);
        requester.send(errorMessage(`Could not roll back the environment of worker ${uuid}: ${reason}`));
      }
    });
  }

  /** Subscribers get status changes as broadcasts; a requester that never asked still gets this one reply. */
  private sendStatusIfUnsubscribed(requester: Requester): void {
    if (!requester.subscribed) requester.send(this.deps.status.snapshot());
  }
}

/** `set_worker.data` as on disk, but with a wildcard bind host a browser can dial (spec §9). */
function browserReachable(config: WorkerConfig): WorkerConfig {
  const host = reachableHost(config.host);
  return host === config.host ? config : { ...config, host };
}
