/**
 * Implements each protocol operation on the registry and the supervisor (which owns every worker's
 * lifecycle and serialises it per worker), and emits the original's progress sequences (spec §3.6) in the original's order. Every operation that sent
 * blocking progress ends with the reset frame, failures included.
 */
import { isWildcardHost, pageHost } from '../../../src-shared/address.js';
import { OperationError, ReportedError } from '../operation-errors.js';
import type { Logger } from '../logs/log.js';
import {
  errorMessage,
  errorText,
  progressStep,
  RESET_PROGRESS,
  type ClientRequest,
  type EnvRequestType,
  type WorkerIdRequestType,
  type ManagerMessage,
  type NewWorkerOptions,
  type ProgressMessage,
  type WorkerConfig,
} from '../../../src-shared/protocol.js';
import type { PythonEnvs } from '../python-env/envs.js';
import { resolveEnvPath } from '../python-env/python.js';
import { WorkerExistsError, type CreateDefaults, type Registry } from '../registry/registry.js';
import type { Progress, Supervisor } from '../supervisor/supervisor.js';

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

export interface ManagerDeps {
  registry: Registry;
  supervisor: Supervisor;
  log: Logger;
  broadcast: Broadcast;
  inVenvDefault: boolean;
  createDefaults: CreateDefaults;
  envs: PythonEnvs;
}

export class WorkerManager {
  /** The latest frame of each broadcast operation still running (new_worker), for clients that join late. */
  private readonly inFlight = new Map<symbol, ProgressMessage>();
  /** Ends the installers of creations still running when the manager stops (they clean up after themselves). */
  private readonly creations = new AbortController();
  private readonly creating = new Set<Promise<void>>();

  constructor(private readonly deps: ManagerDeps) {}

  handle(request: Extract<ClientRequest, { type: 'new_worker' | 'set_worker_options' | WorkerIdRequestType | EnvRequestType }>, requester: Requester): Promise<void> {
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
        return this.withReset(requester, () => this.envRollback(request.workerid, requester, request.to));
      case 'set_worker_options':
        return this.setWorkerOptions(request, requester);
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

  /**
   * Sequence N (spec §3.6), sent to the requester and every subscriber, then the reset the original forgot.
   * With `in_venv` the venv is made (with the installers' output as progress) before the JSON exists, so a
   * failed creation leaves nothing behind and is never broadcast.
   */
  private async newWorker(options: NewWorkerOptions, requester: Requester): Promise<void> {
    const { registry, supervisor, log, envs } = this.deps;
    const inVenv = options.in_venv ?? this.deps.inVenvDefault;
    const key = Symbol('new_worker');
    const announce = (message: ProgressMessage) => {
      if (message.message === '') this.inFlight.delete(key);
      else this.inFlight.set(key, message);
      requester.send(message);
      this.deps.broadcast(message, requester);
    };
    // This worker's news is held from the JSON write to our last frame; other workers' news flows.
    let release: (() => void) | undefined;
    try {
      // Without a venv the original's order holds: "Writing configuration." first.
      if (!inVenv) announce(progressStep.writingConfig());
      let config: WorkerConfig;
      try {
        config = await registry.create(options, this.deps.createDefaults, async (uuid, dataDir) => {
          const envPath = inVenv ? await envs.create(dataDir, announce, this.creations.signal) : null;
          if (inVenv) log.info(`Created the virtual environment of worker ${uuid} in ${envPath}`);
          release = supervisor.hold(uuid);
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
      await supervisor.refresh(config.uuid);
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

  /** Sequence A (spec §3.6) without the reset, which the caller adds. Concurrent calls share one start. */
  private async activate(uuid: string, requester: Requester): Promise<void> {
    const { supervisor, registry, log } = this.deps;
    requester.send(progressStep.activating());
    if (!supervisor.find(uuid)) {
      requester.send(errorMessage(errorText.activateNotFound(uuid)));
      return;
    }
    try {
      await supervisor.startWorker(uuid, (p) => requester.send(startProgress(p)));
      const read = await registry.read(uuid);
      if (!read.ok) throw new OperationError(`its JSON ${read.reason}`);
      requester.send({ type: 'set_worker', data: browserReachable(read.config) });
    } catch (err) {
      log.warn(`set_active ${uuid} failed: ${(err as Error).message}`);
      // The original's sentence first (clients match it), then why.
      requester.send(errorMessage(`${errorText.activateFailed(uuid)} ${(err as Error).message}`));
    }
  }

  /** Sequence S (spec §3.6); an unknown id gets nothing at all, as in the original. */
  private async stopWorker(uuid: string, requester: Requester): Promise<boolean> {
    if (!this.deps.supervisor.find(uuid)) return true;
    let stopped = false;
    await this.withReset(requester, async () => {
      requester.send(progressStep.stoppingWorker());
      try {
        await this.deps.supervisor.stopWorker(uuid);
        stopped = true;
      } catch (err) {
        this.deps.log.warn(`stop_worker ${uuid} failed: ${(err as Error).message}`);
        requester.send(errorMessage(`Could not stop worker with id ${uuid}: ${(err as Error).message}`));
      }
    });
    return stopped;
  }

  /** Stop confirmed by process exit, then start (spec §4.7 recommendation). */
  private async restartWorker(uuid: string, requester: Requester): Promise<void> {
    if (!(await this.stopWorker(uuid, requester))) return;
    await this.withReset(requester, () => this.activate(uuid, requester));
  }

  /** Sequence D (spec §3.6), confined to the workers dir; a running worker is stopped first. */
  private async deleteWorker(uuid: string, requester: Requester): Promise<void> {
    const { supervisor, log } = this.deps;
    // A worker written a moment ago by someone else may not have been read yet.
    if (!supervisor.find(uuid)) await supervisor.refresh(uuid);
    if (!supervisor.find(uuid)) {
      requester.send(errorMessage(errorText.deleteNotFound(uuid)));
      return;
    }
    let stopping = false;
    let removing = false;
    const release = supervisor.hold(uuid);
    try {
      await this.withReset(requester, async () => {
        requester.send(progressStep.deleting());
        try {
          await supervisor.deleteWorker(uuid, (step) => {
            if (step === 'stopping') {
              stopping = true;
              requester.send(progressStep.stoppingWorker());
            } else if (step === 'removing') {
              removing = true;
              if (stopping) requester.send(RESET_PROGRESS);
              requester.send(progressStep.removingFiles());
            } else if (step === 'deleted') {
              requester.send(progressStep.deleted());
              requester.send({ type: 'worker_deleted', uuid });
              log.info(`Deleted worker ${uuid}`);
            }
          });
        } catch (err) {
          log.warn(`delete_worker ${uuid} failed: ${(err as Error).message}`);
          const message = (err as Error).message;
          // Files are removed data dir first, JSON last: a failed removal leaves the worker listed, to delete again.
          const why = removing
            ? `${message.replace(/\.$/, '')}. Its JSON is kept, so the delete can be tried again.`
            : stopping
              ? `it is still running (${message}).`
              : `${message.replace(/\.$/, '')}.`;
          requester.send(errorMessage(`Could not delete worker ${uuid}: ${why}`));
        }
      });
    } finally {
      release();
      this.sendStatusIfUnsubscribed(requester);
    }
  }

  /** Additive: stores a worker's restart policy and autostart flag, and applies them at once. */
  private async setWorkerOptions(request: Extract<ClientRequest, { type: 'set_worker_options' }>, requester: Requester): Promise<void> {
    const { workerid: uuid, restart, autostart } = request;
    if (!this.deps.supervisor.find(uuid)) return requester.send(errorMessage(errorText.deleteNotFound(uuid)));
    try {
      const options = await this.deps.supervisor.setOptions(uuid, { ...(restart ? { restart } : {}), ...(autostart !== undefined ? { autostart } : {}) });
      requester.send({ type: 'worker_options', uuid, ...options });
    } catch (err) {
      requester.send(errorMessage(`Could not set the options of worker ${uuid}: ${(err as Error).message}`));
    }
  }

  /** The worker's env snapshots, newest first (additive). */
  private async envHistory(uuid: string, requester: Requester): Promise<void> {
    const config = this.deps.supervisor.find(uuid)?.config;
    if (!config) return requester.send(errorMessage(errorText.deleteNotFound(uuid)));
    const snapshots = await this.deps.envs.history(this.deps.registry.dataDir(config));
    requester.send({ type: 'env_history', uuid, snapshots: snapshots.map(({ id, created, packages, started }) => ({ id, created, packages, started })) });
  }

  /** Reinstalls the newest snapshot's versions (additive); only while the worker is stopped. */
  private async envRollback(uuid: string, requester: Requester, to?: string): Promise<void> {
    const { supervisor, registry, envs, log } = this.deps;
    const config = supervisor.find(uuid)?.config;
    if (!config) return requester.send(errorMessage(errorText.deleteNotFound(uuid)));
    const envPath = config.env_path;
    if (typeof envPath !== 'string' || envPath === '') {
      return requester.send(errorMessage(`Worker ${uuid} has no virtual environment of its own (env_path is null): nothing to roll back.`));
    }
    if (supervisor.isRunning(uuid)) {
      return requester.send(errorMessage(`Worker ${uuid} is running: stop it before rolling back its environment.`));
    }
    try {
      const snapshot = await envs.rollback(uuid, registry.dataDir(config), resolveEnvPath(envPath, registry.workersDir), (p) => requester.send(p), to);
      log.info(`Rolled the environment of worker ${uuid} back to snapshot ${snapshot.id}`);
      requester.send({ type: 'env_rolled_back', uuid, snapshot: snapshot.id });
    } catch (err) {
      const reason = err instanceof ReportedError ? err.message : `internal error: ${(err as Error).message}`;
      log.warn(`env_rollback ${uuid} failed: ${reason}`);
      requester.send(errorMessage(`Could not roll back the environment of worker ${uuid}: ${reason}`));
    }
  }

  /** Subscribers get status changes as broadcasts; a requester that never asked still gets this one reply. */
  private sendStatusIfUnsubscribed(requester: Requester): void {
    if (!requester.subscribed) requester.send(this.deps.supervisor.snapshot());
  }
}

/** The original's frames for what a start goes through (spec §3.6). */
function startProgress(progress: Progress): ProgressMessage {
  if (typeof progress === 'object') return 'env' in progress ? progress.env : progressStep.runstate(progress.runstate);
  return progress === 'starting' ? progressStep.starting() : progressStep.contacting();
}

/** `set_worker.data` as on disk, but with a wildcard bind host a browser can dial (spec §9). */
function browserReachable(config: WorkerConfig): WorkerConfig {
  return isWildcardHost(config.host) ? { ...config, host: pageHost(config.host) } : config;
}
