/**
 * The Workermanager as one object: settings, registry, status tracker, lifecycle, manager and hub, wired
 * together. The headless CLI, the Electron main process and the tests all start it through here.
 */
import { watch, type FSWatcher } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadSettings, type ManagerSettings } from './config.js';
import { Connection, Hub } from './hub.js';
import { ProcessLifecycle, type LifecycleOptions } from './lifecycle.js';
import { createLogger, type Logger } from './log.js';
import { WorkerManager, type WorkerLifecycle } from './manager.js';
import { parseClientFrame, PONG, progressStep } from './protocol.js';
import { managerPython } from './python.js';
import { Registry } from './registry.js';
import { StatusTracker, type StatusOptions } from './status.js';

export const KILL_FILE = 'kill_worker_manager';

type Env = Record<string, string | undefined>;

export interface ServiceOptions {
  dir?: string;
  host?: string;
  port?: number;
  env?: Env;
  log?: Logger;
  /** Origins accepted besides the loopback ones and config's (the Electron window's). */
  extraOrigins?: string[];
  status?: StatusOptions;
  lifecycle?: Partial<Omit<LifecycleOptions, 'registry' | 'status' | 'log' | 'configDir' | 'python'>>;
  /** Replaces the process lifecycle (tests of the protocol alone). */
  workerLifecycle?: WorkerLifecycle;
}

export interface ManagerService {
  readonly settings: ManagerSettings;
  readonly url: string;
  readonly port: number;
  readonly python: string;
  readonly status: StatusTracker;
  readonly hub: Hub;
  /** Resolves once the first scan of the workers dir (and its probes) is done. */
  readonly ready: Promise<void>;
  /** Resolves once the manager has stopped, however it was asked to. */
  readonly stopped: Promise<void>;
  stop(reason?: string): Promise<void>;
}

export async function startManagerService(options: ServiceOptions = {}): Promise<ManagerService> {
  const env = options.env ?? process.env;
  const log = options.log ?? createLogger();
  const settings = await loadSettings({ dir: options.dir, host: options.host, port: options.port }, env, log);
  const python = managerPython(env, settings.python);
  const registry = new Registry(settings.workersDir, log);
  const status = new StatusTracker(registry, log, options.status);
  const lifecycle =
    options.workerLifecycle ??
    new ProcessLifecycle({ ...options.lifecycle, registry, status, log, configDir: settings.configDir, python, env });

  let stopRequested: ((reason: string) => void) | undefined;
  const hub = new Hub({
    host: settings.host,
    port: settings.port,
    maxPayload: settings.maxPayload,
    allowedOrigins: [...settings.allowedOrigins, ...(options.extraOrigins ?? [])],
    allowedHosts: settings.allowedHosts,
    log,
    onText: (connection, text) => void dispatch(connection, text),
  });
  const manager = new WorkerManager({
    registry,
    status,
    lifecycle,
    log,
    broadcast: (message, except) => hub.broadcast(message, except),
    inVenvDefault: settings.inVenvDefault,
    createDefaults: {
      host: env.FUNCNODES_HOST || 'localhost',
      port: Number(env.FUNCNODES_WS_WORKER_STARTPORT) || 9382,
    },
  });

  async function dispatch(connection: Connection, text: string): Promise<void> {
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      if (parsed.silent) log.warn(`Ignoring unknown message ${JSON.stringify(text.slice(0, 200))}`);
      else connection.send({ type: 'error', message: parsed.error });
      return;
    }
    const request = parsed.request;
    try {
      // Probes answer at once; everything about workers waits for the first scan.
      if (request.type !== 'ping' && request.type !== 'identify' && request.type !== 'stop') await ready;
      switch (request.type) {
        case 'ping':
          return connection.send(PONG);
        case 'identify':
          return connection.send({ class: 'WorkerManager', py: python });
        case 'worker_status':
          connection.subscribed = true;
          return connection.send(status.statusFrame());
        case 'stop':
          connection.send(progressStep.stoppingManager());
          void service.stop('stop message');
          return;
        default:
          return await manager.handle(request, connection);
      }
    } catch (err) {
      log.error(`Handling ${request.type} failed: ${(err as Error).stack ?? String(err)}`);
      connection.send({ type: 'error', message: `Internal error while handling ${request.type}: ${(err as Error).message}` });
    }
  }

  // Bind first, so the port is ours and `ping` answers while a large workers dir is still being read.
  status.on('change', () => hub.broadcast(status.statusFrame()));
  const ready = status.start();
  try {
    await hub.listen();
  } catch (err) {
    await ready;
    status.stop();
    throw err;
  }
  const killWatcher = await watchKillFile(settings.configDir, log, () => void service.stop('kill file'));

  const stopped = new Promise<void>((resolve) => {
    stopRequested = (reason) => {
      log.info(`Stopping the Workermanager (${reason})`);
      killWatcher.close();
      status.stop();
      void hub.close().then(resolve);
    };
  });
  let stopping = false;
  const service: ManagerService = {
    settings,
    url: hub.url,
    port: hub.port,
    python,
    status,
    hub,
    ready,
    stopped,
    stop: (reason = 'requested') => {
      if (!stopping) {
        stopping = true;
        stopRequested?.(reason);
      }
      return stopped;
    },
  };
  log.info(`Workermanager listening on ${hub.url} (config dir ${settings.configDir})`);
  void ready.then(() => {
    const { active, inactive } = status.snapshot();
    log.info(`Found ${active.length} active and ${inactive.length} inactive workers`);
  });
  return service;
}

/**
 * `<config dir>/kill_worker_manager` stops the manager (spec §2.9), noticed by a directory watch instead
 * of a 0.5 s poll. A flag left over from before this manager started is removed, not obeyed.
 */
async function watchKillFile(configDir: string, log: Logger, onKill: () => void): Promise<FSWatcher> {
  const file = path.join(configDir, KILL_FILE);
  const exists = () =>
    stat(file).then(
      () => true,
      () => false,
    );
  if (await exists()) {
    log.warn(`Removing a stale ${file} left from an earlier run`);
    await rm(file, { force: true });
  }
  const watcher = watch(configDir, (_event, name) => {
    if (name !== null && name.toString() !== KILL_FILE) return;
    void exists().then(async (present) => {
      if (!present) return;
      await rm(file, { force: true });
      log.info(`Found ${file}`);
      onKill();
    });
  });
  watcher.on('error', (err) => log.warn(`Watching ${configDir} for ${KILL_FILE} failed: ${err.message}`));
  return watcher;
}
