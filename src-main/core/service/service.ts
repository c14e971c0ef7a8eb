/**
 * The Workermanager as one object: settings, registry, supervisor, manager and hub, wired together. The headless CLI, the Electron main process and the tests all start it through here.
 */
import { watch, type FSWatcher } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import pkg from '../../../package.json' with { type: 'json' };
import { loadSettings, type ManagerSettings } from '../registry/config.js';
import { Connection, Hub, type HubOptions } from '../hub/hub.js';
import { remoteAccess, type AuthOptions } from '../hub/remote-auth.js';
import { createLogger, type Logger } from '../logs/log.js';
import { WorkerManager, type Requester } from './manager.js';
import { errorMessage, parseClientFrame, PONG, progressStep, type ClientRequest } from '../../../src-shared/protocol.js';
import { findUv } from '../python-env/discovery.js';
import { PythonEnvs } from '../python-env/envs.js';
import { managerPython, resolveEnvPath, workerPython } from '../python-env/python.js';
import { Registry } from '../registry/registry.js';
import { Supervisor, type SupervisorOptions } from '../supervisor/supervisor.js';
import type { Timing } from '../supervisor/machine.js';
import { createUiHandler } from '../hub/ui-server.js';
import { EditorBundles } from '../hub/editor-bundle.js';
import { createEditorHandler } from '../hub/editor-route.js';

export const KILL_FILE = 'kill_worker_manager';
/**
 * The desktop app window's origin (its privileged custom scheme). Every manager accepts it: no web page can
 * have this origin, and it lets the app's window use a manager it did not start ("Use it").
 */
export const APP_ORIGIN = 'fnwm://app';

import type { Env } from '../env.js';

export interface ServiceOptions {
  dir?: string;
  host?: string;
  port?: number;
  /** Leave the workers this manager started running when it stops (default: config, else stop them). */
  keepWorkers?: boolean;
  env?: Env;
  log?: Logger;
  /** Heartbeat and send-buffer limits of the hub (tests shorten them). */
  hub?: Pick<HubOptions, 'heartbeatMs' | 'maxBufferedBytes'>;
  /** Token authentication for non-loopback peers (`--no-auth`, `--token-file`; remote-auth.ts). */
  auth?: AuthOptions;
  /** Deadlines and restart backoff (tests shorten them); the config's timeouts otherwise. */
  timing?: Partial<Timing>;
  supervisor?: Pick<SupervisorOptions, 'observer' | 'pidCheckMs' | 'probe' | 'debug'>;
  /** Plain HTTP requests on the hub's port; default: the built dashboard (`dist/renderer`). */
  onHttp?: (req: IncomingMessage, res: ServerResponse) => void;
}

export interface ManagerService {
  readonly settings: ManagerSettings;
  readonly url: string;
  readonly port: number;
  readonly python: string;
  readonly registry: Registry;
  readonly supervisor: Supervisor;
  readonly hub: Hub;
  /** Resolves once the first scan of the workers dir (and its probes) is done. */
  readonly ready: Promise<void>;
  /** Resolves once the manager has stopped, however it was asked to. */
  readonly stopped: Promise<void>;
  /** `keepWorkers` overrides the setting for this stop (the desktop app's setting can change while it runs). */
  stop(reason?: string, keepWorkers?: boolean): Promise<void>;
  /** One worker operation for an in-process caller (the tray); its replies go to `requester` only. */
  request(request: Parameters<WorkerManager['handle']>[0], requester: Requester): Promise<void>;
}

export async function startManagerService(options: ServiceOptions = {}): Promise<ManagerService> {
  const env = options.env ?? process.env;
  const log = options.log ?? createLogger();
  const settings = await loadSettings({ dir: options.dir, host: options.host, port: options.port, keepWorkers: options.keepWorkers }, env, log);
  const python = managerPython(env, settings.python);
  const registry = new Registry(settings.workersDir, log);
  const editorBundles = new EditorBundles();
  const envs = new PythonEnvs({ python, uv: findUv(env, settings.uv), env, log });
  const supervisor = new Supervisor({
    ...options.supervisor,
    timing: { ...configTiming(settings), ...options.timing },
    registry,
    log,
    configDir: settings.configDir,
    python,
    env,
    prepareStart: async (config, report, signal) => {
      if (typeof config.env_path !== 'string' || config.env_path === '') return {};
      // An update may add or remove the editor bundle in that venv.
      editorBundles.forget();
      return envs.prepareStart(config, registry.dataDir(config), resolveEnvPath(config.env_path, settings.workersDir), report, signal);
    },
  });
  const watches = new Map<Connection, ConnectionWatches>();

  let stopRequested: ((reason: string, keepWorkers: boolean) => void) | undefined;
  const access = await remoteAccess(settings, options.auth ?? {}, log);
  const hub = new Hub({
    host: settings.host,
    port: settings.port,
    maxPayload: settings.maxPayload,
    allowedOrigins: [...settings.allowedOrigins, APP_ORIGIN],
    allowedHosts: settings.allowedHosts,
    ...options.hub,
    log,
    authorize: access.authorize,
    onText: (connection, text) => void dispatch(connection, text),
    onClose: (connection) => unwatchAll(connection),
    // The editor's routes stay in front of any dashboard handler (tests pass their own).
    onHttp: createEditorHandler(
      {
        bundles: editorBundles,
        workerConfig: async (uuid) => {
          const read = await registry.read(uuid);
          return read.ok ? read.config : undefined;
        },
        pythonsFor: (config) => [workerPython(config, settings.workersDir, python), python],
        hubUrl: (): string => hub.url,
      },
      options.onHttp ?? createUiHandler(),
    ),
  });
  const manager = new WorkerManager({
    registry,
    supervisor,
    log,
    broadcast: (message, except) => hub.broadcast(message, except),
    inVenvDefault: settings.inVenvDefault,
    createDefaults: {
      host: env.FUNCNODES_HOST || 'localhost',
      port: Number(env.FUNCNODES_WS_WORKER_STARTPORT) || 9382,
    },
    envs,
  });

  async function dispatch(connection: Connection, text: string): Promise<void> {
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      if (parsed.silent) connection.warnFrame(`Ignoring unknown message ${JSON.stringify(text.slice(0, 200))}`);
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
          connection.send(supervisor.statusFrame());
          // A creation already under way: show its current step (it broadcasts the rest).
          for (const frame of manager.currentProgress()) connection.send(frame);
          return;
        case 'stop':
          connection.send(progressStep.stoppingManager());
          void service.stop('stop message');
          return;
        case 'watch_workers':
        case 'unwatch_workers':
        case 'watch_logs':
        case 'unwatch_logs':
          // A socket that closed while we awaited `ready` was unwatched already: a watch now would never end.
          if (connection.socket.readyState !== connection.socket.OPEN) return;
          return handleWatch(connection, request);
        default:
          return await manager.handle(request, connection);
      }
    } catch (err) {
      log.error(`Handling ${request.type} failed: ${(err as Error).stack ?? String(err)}`);
      connection.send({ type: 'error', message: `Internal error while handling ${request.type}: ${(err as Error).message}` });
    }
  }

  /** The additive subscriptions (protocol.ts): per-worker states and log lines, for this connection only. */
  function handleWatch(connection: Connection, request: Extract<ClientRequest, { type: `${string}watch_${string}` }>): void {
    let own = watches.get(connection);
    if (!own) watches.set(connection, (own = { logs: new Map() }));
    switch (request.type) {
      case 'watch_workers':
        connection.send({
          type: 'manager_info',
          version: pkg.version,
          py: python,
          config_dir: settings.configDir,
          workers_dir: settings.workersDir,
          in_venv_default: settings.inVenvDefault,
          pid: process.pid,
        });
        if (!own.states) {
          own.states = supervisor.watch();
        }
        return connection.send(supervisor.full());
      case 'unwatch_workers':
        own.states?.();
        own.states = undefined;
        return;
      case 'watch_logs': {
        own.logs.get(request.workerid)?.();
        const uuid = request.workerid;
        const watch = supervisor.watchLog(uuid, request.lines, (lines) => connection.send({ type: 'worker_log', uuid, lines, initial: false }));
        if (!watch) return connection.send(errorMessage(`Worker ${uuid} not found`));
        own.logs.set(uuid, watch.unwatch);
        return connection.send({ type: 'worker_log', uuid, lines: watch.initial, initial: true });
      }
      case 'unwatch_logs':
        own.logs.get(request.workerid)?.();
        own.logs.delete(request.workerid);
        return;
    }
  }

  function unwatchAll(connection: Connection): void {
    const own = watches.get(connection);
    if (!own) return;
    watches.delete(connection);
    own.states?.();
    for (const unwatch of own.logs.values()) unwatch();
  }

  supervisor.on('delta', (message) => {
    for (const [connection, own] of watches) if (own.states) connection.send(message);
  });

  // Bind first, so the port is ours and `ping` answers while a large workers dir is still being read.
  supervisor.on('change', () => hub.broadcast(supervisor.statusFrame()));
  const ready = supervisor.start();
  let killWatcher: FSWatcher;
  try {
    await hub.listen();
    killWatcher = await watchKillFile(settings.configDir, log, () => void service.stop('kill file'));
  } catch (err) {
    // All or nothing: a half-started manager must not keep the port (or anything else) it opened.
    await runAll(log, 'Cleaning up the failed start', [
      ['close the hub', () => hub.close()],
      ['finish the first scan', () => ready],
      ['stop the supervisor', () => supervisor.dispose()],
    ]);
    throw err;
  }

  const stopped = new Promise<void>((resolve) => {
    stopRequested = (reason, keepWorkers) => {
      log.info(`Stopping the Workermanager (${reason})`);
      // Every step runs even if one before it failed; the hub closes last, so clients keep seeing the workers go.
      void runAll(log, 'Stopping', [
        ['close the kill-file watch', () => killWatcher.close()],
        [
          keepWorkers ? 'cancel starts and creations' : 'stop the workers and cancel creations',
          () => settle([manager.cancelCreations(), supervisor.shutdown(keepWorkers)]),
        ],
        ['stop the supervisor', () => supervisor.dispose()],
        ['close the hub', () => hub.close()],
      ]).then(resolve);
    };
  });
  let stopping = false;
  const service: ManagerService = {
    settings,
    url: hub.url,
    port: hub.port,
    python,
    registry,
    supervisor,
    hub,
    ready,
    stopped,
    stop: (reason = 'requested', keepWorkers = settings.keepWorkers) => {
      if (!stopping) {
        stopping = true;
        stopRequested?.(reason, keepWorkers);
      }
      return stopped;
    },
    request: (request, requester) => ready.then(() => manager.handle(request, requester)),
  };
  log.info(`Workermanager listening on ${hub.url} (config dir ${settings.configDir})`);
  void ready.then(() => {
    const { active, inactive } = supervisor.snapshot();
    log.info(`Found ${active.length} active and ${inactive.length} inactive workers`);
  });
  return service;
}

/** Runs every step in order; a step that throws or rejects is logged and the next one still runs. */
async function runAll(log: Logger, what: string, steps: [name: string, step: () => unknown][]): Promise<void> {
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (err) {
      log.error(`${what}: could not ${name}: ${(err as Error).stack ?? String(err)}`);
    }
  }
}

/** Waits for all of them; then fails with every failure's message, if any. */
async function settle(work: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
  if (failed.length > 0) throw new Error(failed.join('; '));
}

/** The config's `connect_timeout`, `start_timeout`, `stop_timeout` (those that are set) as machine deadlines. */
function configTiming(settings: ManagerSettings): Partial<Timing> {
  const { connectTimeoutMs, startTimeoutMs, stopTimeoutMs } = settings.timeouts;
  const timing: Partial<Timing> = {};
  if (connectTimeoutMs !== undefined) timing.connectMs = connectTimeoutMs;
  if (startTimeoutMs !== undefined) timing.startMs = startTimeoutMs;
  if (stopTimeoutMs !== undefined) timing.stopMs = stopTimeoutMs;
  return timing;
}

interface ConnectionWatches {
  states?: () => void;
  logs: Map<string, () => void>;
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
