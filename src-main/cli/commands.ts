/**
 * `fnwm` commands. Worker commands talk to the hub (starting a headless manager when none answers);
 * `startworkermanager` runs the manager in the foreground. Errors are one line on stderr and exit 1.
 */
import { parseArgs } from 'node:util';
import { ManagerClient, probeManager, UnauthorizedError } from '../core/hub/client.js';
import { formatDuration } from '../../src-shared/duration.js';
import { isWildcardHost } from '../../src-shared/address.js';
import { isLoopbackHost } from '../core/hub/hub.js';
import { isPidAlive } from '../core/supervisor/liveness.js';
import { loadSettings, managerUrl, type ConfigOverrides, type ManagerSettings } from '../core/registry/config.js';
import { createLogger } from '../core/logs/log.js';
import { portTakenBy } from '../core/service/port-occupant.js';
import { authSettings, readToken, type AuthOptions } from '../core/hub/remote-auth.js';
import {
  AUTOSTART_POLICIES,
  type AutostartPolicy,
  LOG_TAIL_LINES,
  WORKER_ID_PATTERN,
  workerUrl,
  type ParsedManagerFrame,
  type WorkerConfig,
  RESTART_POLICIES,
  type RestartPolicy,
  type WorkerRuntime,
  type WorkerStatusMessage,
} from '../../src-shared/protocol.js';
import { startManagerService } from '../core/service/service.js';
import { editorUrl } from '../../src-shared/editor-path.js';
import { AutostartError, ensureManager } from './autostart.js';
import { allWorkers, CliError, findWorker, type CliIo } from './io.js';
import { doctor } from './doctor.js';
import { ENV_TOOLS, runInWorkerEnv, splitToolArgs, type EnvTool } from './worker-env.js';

export const USAGE = `Usage: fnwm [--dir D] [--host H] [--port P] <command>

Commands:
  startworkermanager [--host H] [--port P] [--dir D] [--keep-workers] [--token-file F] [--no-auth]
                                                        run the Workermanager in the foreground; when it
                                                        stops, so do the workers it started (unless
                                                        --keep-workers: the next manager adopts them).
                                                        Bound beyond loopback, other machines need the
                                                        token in F (default: manager_token in the config
                                                        dir, made at the first such start); --no-auth: none
  worker list [--full]                                  list workers (<uuid>\\t<name>; --full: JSON)
  worker new --name N [--not-in-venv] [--reference U] [--copy-lib] [--copy-ns]
  worker (--name N | --uuid U) start|stop|restart|delete
  worker (--name N | --uuid U) status [--json]          state, pid, uptime, last exit, last output lines
  worker (--name N | --uuid U) open [--print]           start it unless running, open the FuncNodes editor for it
                                                        in the browser (--print: only print the URL)
  worker (--name N | --uuid U) set [restart=never|on-failure|always] [autostart=never|always|unless-stopped]
                                                        restart policy after a crash; start with the manager
  worker (--name N | --uuid U) logs [--follow]          its last ${LOG_TAIL_LINES} output lines; --follow keeps printing
  worker (--name N | --uuid U) modules|py|pip <args…>   run funcnodes modules, python or pip in the worker's env
  worker (--name N | --uuid U) env history              its env snapshots (before and after each update on start;
                                                        "started": a start succeeded with those versions)
  worker (--name N | --uuid U) env rollback [--to S]    reinstall snapshot S, by default the newest one a start
                                                        succeeded with (worker stopped)
  doctor                                                what Python, funcnodes, uv, config dir and port are used
  stop                                                  stop the running Workermanager

Worker commands start a headless Workermanager in the background when none answers.
Options: --dir the FuncNodes config dir (default $FUNCNODES_CONFIG_DIR or ~/.funcnodes),
--host/--port the manager address (default from config.json worker_manager, localhost:9380),
--token T the token of a manager on another machine (default: manager_token in the config dir).`;

/** Generous: a start includes the worker's own boot, which the original allows 420 s. */
const OPERATION_TIMEOUT_MS = 450_000;

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const { own, toolArgs } = splitToolArgs(argv);
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    strict: true,
    options: {
      dir: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      name: { type: 'string' },
      uuid: { type: 'string' },
      full: { type: 'boolean' },
      'not-in-venv': { type: 'boolean' },
      reference: { type: 'string' },
      'copy-lib': { type: 'boolean' },
      'copy-ns': { type: 'boolean' },
      'keep-workers': { type: 'boolean' },
      'token-file': { type: 'string' },
      'no-auth': { type: 'boolean' },
      token: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      json: { type: 'boolean' },
      to: { type: 'string' },
      print: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    io.out(USAGE);
    return positionals.length === 0 && !values.help ? 2 : 0;
  }
  const overrides: ConfigOverrides = { dir: values.dir, host: values.host };
  if (values.port !== undefined) {
    const port = /^\d{1,5}$/.test(values.port) ? Number(values.port) : NaN;
    if (!(port <= 65535)) throw new CliError(`--port must be a number from 0 to 65535, got ${JSON.stringify(values.port)}`);
    overrides.port = port;
  }
  const [command, sub] = positionals;
  if (command === 'startworkermanager' && sub === undefined) {
    const auth = { auth: values['no-auth'] === true ? false : undefined, tokenFile: values['token-file'] };
    return startWorkerManager({ ...overrides, keepWorkers: values['keep-workers'] }, auth, io);
  }
  const settings = await loadSettings(overrides, io.env);
  const token = values.token ?? (await readToken(authSettings(settings).tokenFile, { create: false }).catch((err: Error) => Promise.reject(new CliError(err.message))));
  if (token !== undefined) ManagerClient.defaultHeaders = { Authorization: `Bearer ${token}` };
  try {
    return await runClientCommand(settings, io, positionals, values, toolArgs);
  } catch (err) {
    if (err instanceof UnauthorizedError) throw new CliError(`${err.message}: give it with --token, or put it in ${authSettings(settings).tokenFile}`);
    throw err;
  }
}

async function runClientCommand(
  settings: ManagerSettings,
  io: CliIo,
  positionals: string[],
  values: { name?: string; uuid?: string; full?: boolean; 'not-in-venv'?: boolean; reference?: string; 'copy-lib'?: boolean; 'copy-ns'?: boolean; follow?: boolean; json?: boolean; to?: string; print?: boolean },
  toolArgs: string[] | undefined,
): Promise<number> {
  const [command, sub, action, ...rest] = positionals;
  // Port 0 means "any free port" to a server; a client cannot find a manager there.
  if (settings.port === 0) throw new CliError('Port 0 (from --port or config worker_manager.port) only makes sense for startworkermanager; give the port the Workermanager listens on');
  if (command === 'stop' && sub === undefined) return stopManager(settings, io);
  if (command === 'doctor' && sub === undefined) return doctor(settings, io);
  if (command === 'worker' && sub === 'set') return setWorkerOptions(settings, io, { uuid: values.uuid, name: values.name }, positionals.slice(2));
  if (command !== 'worker' || rest.length > 0) throw new CliError(`Unknown command: ${positionals.join(' ')} (see fnwm --help)`);

  if (sub === 'list' && action === undefined) return listWorkers(settings, io, values.full === true);
  if (sub === 'new' && action === undefined) {
    if (values.name === undefined || values.name === '') throw new CliError('worker new needs --name');
    if (values.reference !== undefined && !WORKER_ID_PATTERN.test(values.reference)) throw new CliError(`--reference ${values.reference} is not a valid worker id`);
    return newWorker(settings, io, {
      name: values.name,
      in_venv: values['not-in-venv'] !== true,
      reference: values.reference,
      copyLib: values['copy-lib'] === true,
      copyNS: values['copy-ns'] === true,
    });
  }
  const operation = { start: 'set_active', stop: 'stop_worker', restart: 'restart_worker', delete: 'delete_worker' } as const;
  if (sub !== undefined && sub in operation && action === undefined) {
    return workerOperation(settings, io, operation[sub as keyof typeof operation], { uuid: values.uuid, name: values.name });
  }
  const by = { uuid: values.uuid, name: values.name };
  if (sub === 'status' && action === undefined) return workerStatus(settings, io, by, values.json === true);
  if (sub === 'logs' && action === undefined) return workerLogs(settings, io, by, values.follow === true);
  if (sub === 'open' && action === undefined) return openEditor(settings, io, by, values.print === true);
  if (toolArgs !== undefined && (ENV_TOOLS as readonly string[]).includes(sub ?? '')) return runInWorkerEnv(settings, io, by, sub as EnvTool, toolArgs);
  if (sub === 'env' && action === 'history') return envHistory(settings, io, by);
  if (sub === 'env' && action === 'rollback') return envRollback(settings, io, by, values.to);
  throw new CliError(`Unknown command: ${positionals.join(' ')} (see fnwm --help)`);
}

async function startWorkerManager(overrides: ConfigOverrides, auth: AuthOptions, io: CliIo): Promise<number> {
  const log = createLogger('info', io.err);
  let service;
  try {
    service = await startManagerService({ ...overrides, auth, env: io.env, log });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw new CliError(`Could not start the Workermanager: ${(err as Error).message}`);
    const { occupant, message } = await portTakenBy(overrides, io.env);
    const advice = occupant.kind === 'workermanager' ? 'use it, or stop it with "fnwm stop"' : 'choose another with --port';
    throw new CliError(`${message}; ${advice}`);
  }
  // Handlers first: whoever reads the URL may signal at once (a launcher forwarding its SIGTERM).
  const stopOnSignal = (signal: string) => void service.stop(signal);
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  // A rejection nobody handled belongs to one operation, and each operation restores its worker's state
  // in `finally`: log it and keep serving (Node's default would kill every worker's supervision with it).
  // After an uncaught exception nothing is known to be consistent (Node's own advice): log it and stop
  // cleanly, stopping the workers by the usual policy, exit code 1.
  let exitCode = 0;
  const onRejection = (reason: unknown) => log.error(`Unhandled promise rejection (the Workermanager keeps running): ${describeError(reason)}`);
  const onException = (err: unknown) => {
    log.error(`Uncaught exception; stopping the Workermanager: ${describeError(err)}`);
    exitCode = 1;
    void service.stop('uncaught exception');
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  io.out(service.url);
  await service.stopped;
  process.off('SIGINT', stopOnSignal);
  process.off('SIGTERM', stopOnSignal);
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
  return exitCode;
}

function describeError(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

async function connect(settings: ManagerSettings, io: CliIo): Promise<ManagerClient> {
  try {
    const { url, started } = await ensureManager(settings, { cliScript: io.cliScript });
    if (started) io.err(`Started a Workermanager on ${url}`);
    return await ManagerClient.connect(url);
  } catch (err) {
    if (err instanceof AutostartError) throw new CliError(err.message);
    throw err;
  }
}

async function withClient<T>(settings: ManagerSettings, io: CliIo, work: (client: ManagerClient) => Promise<T>): Promise<T> {
  const client = await connect(settings, io);
  try {
    return await work(client);
  } finally {
    client.close();
  }
}

async function fetchStatus(client: ManagerClient): Promise<WorkerStatusMessage> {
  client.send('worker_status');
  return client.until((f) => (f.kind === 'message' && f.message.type === 'worker_status' ? f.message : undefined), 10_000);
}

async function listWorkers(settings: ManagerSettings, io: CliIo, full: boolean): Promise<number> {
  const status = await withClient(settings, io, fetchStatus);
  if (full) io.out(JSON.stringify(allWorkers(status), null, 2));
  else for (const w of allWorkers(status)) io.out(`${w.uuid}\t${w.name ?? 'None'}`);
  return 0;
}

/** Shows progress on stderr and stops at the first frame `pick` accepts; an `error` frame fails the command. */
function follow<T>(io: CliIo, pick: (frame: ParsedManagerFrame) => T | undefined) {
  return (frame: ParsedManagerFrame): T | undefined => {
    if (frame.kind !== 'message') return undefined;
    const m = frame.message;
    if (m.type === 'error') throw new CliError(m.message);
    if (m.type === 'progress' && m.message !== '') io.err(m.message);
    return pick(frame);
  };
}

async function newWorker(settings: ManagerSettings, io: CliIo, kwargs: Record<string, unknown>): Promise<number> {
  const uuid = await withClient(settings, io, (client) => {
    client.send({ type: 'new_worker', kwargs });
    return client.until(
      follow(io, (f) => (f.kind === 'message' && f.message.type === 'worker_created' ? f.message.uuid : undefined)),
      OPERATION_TIMEOUT_MS,
    );
  });
  io.out(uuid);
  return 0;
}

type WorkerOp = 'set_active' | 'stop_worker' | 'restart_worker' | 'delete_worker';

async function workerOperation(settings: ManagerSettings, io: CliIo, type: WorkerOp, by: { uuid?: string; name?: string }): Promise<number> {
  const line = await withClient(settings, io, async (client) => operate(client, io, type, findWorker(await fetchStatus(client), by)));
  io.out(line);
  return 0;
}

/** Sends one worker operation and waits for its end (errors end it as a CliError); returns what to print. */
function operate(client: ManagerClient, io: CliIo, type: WorkerOp, worker: WorkerConfig): Promise<string> {
  client.send({ type, workerid: worker.uuid });
  return client.until(
    follow(io, (f) => {
      if (f.kind !== 'message') return undefined;
      const m = f.message;
      if (m.type === 'set_worker') return `Worker ${worker.uuid} is running at ${workerUrl(m.data) ?? 'an unknown address'}`;
      if (m.type === 'worker_deleted') return `Worker ${worker.uuid} deleted`;
      if (type === 'stop_worker' && m.type === 'progress' && m.message === '') return `Worker ${worker.uuid} stopped`;
      return undefined;
    }),
    OPERATION_TIMEOUT_MS,
  );
}

/**
 * `worker … open`: starts the worker unless it runs (set_active answers at once for a running one), checks
 * that the manager can serve the editor for it (the page's own 503 text names the Pythons asked and the
 * install command), prints the URL and opens it in the system browser unless `--print`.
 */
async function openEditor(settings: ManagerSettings, io: CliIo, by: { uuid?: string; name?: string }, printOnly: boolean): Promise<number> {
  const url = await withClient(settings, io, async (client) => {
    const worker = findWorker(await fetchStatus(client), by);
    io.err(await operate(client, io, 'set_active', worker));
    return editorUrl(managerUrl(settings), worker.uuid);
  });
  const res = await fetch(url);
  // One line: the CLI prints errors as one `fnwm:` line.
  if (!res.ok) throw new CliError(`The editor at ${url} answered ${res.status}: ${(await res.text()).trim().replace(/\s*\n\s*/g, ' ')}`);
  io.out(url);
  // Loaded on use: it costs the other commands nothing. `open` knows each desktop's opener (xdg-open, WSL, macOS, Windows).
  if (!printOnly) await (await import('open')).default(url);
  return 0;
}

/**
 * How long `fnwm stop` waits for the manager's process to end, beyond the workers' stop deadline: their
 * SIGTERM grace, the hub's close, the host's forced exit and slack.
 */
const STOP_SLACK_MS = 30_000;

/** Asks the manager to stop and returns once its process has exited (not when it merely stops answering). */
async function stopManager(settings: ManagerSettings, io: CliIo): Promise<number> {
  const url = managerUrl(settings);
  if (!(await probeManager(url))) {
    io.err(`No Workermanager is running on ${url}`);
    return 0;
  }
  const client = await ManagerClient.connect(url);
  try {
    // Its pid (fnwm's additive manager_info) names a process of this machine only for a loopback address.
    const pid = isWildcardHost(settings.host) || isLoopbackHost(settings.host) ? await managerPid(client) : undefined;
    client.send('stop');
    const waitMs = (settings.timeouts.stopTimeoutMs ?? 15_000) + STOP_SLACK_MS;
    const deadline = Date.now() + waitMs;
    // Without a pid (the original manager, a remote one), the best evidence is a closed connection and a
    // port that no longer answers.
    const gone = async () => (pid !== undefined ? !isPidAlive(pid) : client.closed !== undefined && (await probeManager(url, 500)) === undefined);
    while (!(await gone())) {
      if (Date.now() > deadline) {
        throw new CliError(`The Workermanager on ${url}${pid === undefined ? '' : ` (pid ${pid})`} was asked to stop but is still running after ${formatDuration(waitMs)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.close();
  }
  io.out(`Workermanager on ${url} stopped`);
  return 0;
}

/** The manager's pid from `manager_info`; undefined for a manager without it (the original). */
async function managerPid(client: ManagerClient): Promise<number | undefined> {
  client.send({ type: 'watch_workers' });
  const info = await client
    .until((f) => (f.kind === 'message' && (f.message.type === 'manager_info' || f.message.type === 'error') ? f.message : undefined), 3000)
    .catch(() => undefined);
  if (info?.type !== 'manager_info') return undefined;
  client.send({ type: 'unwatch_workers' });
  return info.pid;
}

/** The additive `worker_states` table; a manager without it (the original) answers with an error or nothing. */
async function fetchRuntime(client: ManagerClient, uuid: string): Promise<WorkerRuntime> {
  client.send({ type: 'watch_workers' });
  const states = await client
    .until((f) => {
      if (f.kind !== 'message') return undefined;
      if (f.message.type === 'error') throw new CliError(`This Workermanager does not report worker states: ${f.message.message}`);
      return f.message.type === 'worker_states' && f.message.full ? f.message : undefined;
    }, 10_000)
    .catch((err: unknown) => {
      if (err instanceof CliError) throw err;
      throw new CliError('This Workermanager does not report worker states (it is not fnwm)');
    });
  const runtime = states.workers.find((w) => w.uuid === uuid);
  if (!runtime) throw new CliError(`No worker with uuid ${uuid}`);
  return runtime;
}

function formatRuntime(worker: WorkerConfig, runtime: WorkerRuntime, now = Date.now()): string[] {
  const lines = [`${runtime.name ?? 'None'} (${runtime.uuid}): ${runtime.state}${runtime.adopted ? ' (adopted)' : ''}`];
  if (runtime.pid !== null) lines.push(`  pid ${runtime.pid}`);
  if (runtime.started_at !== null) lines.push(`  up ${formatDuration(now - runtime.started_at)} (since ${new Date(runtime.started_at).toISOString()})`);
  const address = workerUrl(worker);
  if (address !== undefined) lines.push(`  address ${address}`);
  lines.push(`  env ${typeof worker.env_path === 'string' && worker.env_path !== '' ? worker.env_path : 'system Python'}`);
  if (runtime.exit) lines.push(`  last exit ${runtime.exit.signal ?? `code ${runtime.exit.code}`} at ${new Date(runtime.exit.at).toISOString()}`);
  if (runtime.phase !== runtime.state) lines.push(`  phase ${runtime.phase}`);
  if (runtime.restart_at !== null) lines.push(`  restarting in ${formatDuration(Math.max(0, runtime.restart_at - now))}`);
  lines.push(`  restart ${runtime.restart}, autostart ${runtime.autostart}`);
  if (runtime.error !== null) lines.push(`  last error: ${runtime.error}`);
  if (runtime.last_lines.length > 0) lines.push('  last output:', ...runtime.last_lines.map((l) => `    ${l}`));
  return lines;
}

/** `set restart=… autostart=…`: the additive set_worker_options message. */
async function setWorkerOptions(settings: ManagerSettings, io: CliIo, by: { uuid?: string; name?: string }, pairs: string[]): Promise<number> {
  const usage = `restart=${RESTART_POLICIES.join('|')} and/or autostart=${AUTOSTART_POLICIES.join('|')}`;
  if (pairs.length === 0) throw new CliError(`worker set needs ${usage}`);
  const options: { restart?: RestartPolicy; autostart?: AutostartPolicy } = {};
  for (const pair of pairs) {
    const [key, value, extra] = pair.split('=');
    if (key === 'restart' && extra === undefined && RESTART_POLICIES.includes(value as RestartPolicy)) options.restart = value as RestartPolicy;
    else if (key === 'autostart' && extra === undefined && AUTOSTART_POLICIES.includes(value as AutostartPolicy)) options.autostart = value as AutostartPolicy;
    else throw new CliError(`Cannot set ${JSON.stringify(pair)}: use ${usage}`);
  }
  const reply = await withClient(settings, io, async (client) => {
    const worker = findWorker(await fetchStatus(client), by);
    client.send({ type: 'set_worker_options', workerid: worker.uuid, ...options });
    return client.until(follow(io, (f) => (f.kind === 'message' && f.message.type === 'worker_options' ? f.message : undefined)), 10_000);
  });
  io.out(`Worker ${reply.uuid}: restart ${reply.restart}, autostart ${reply.autostart}`);
  return 0;
}

async function workerStatus(settings: ManagerSettings, io: CliIo, by: { uuid?: string; name?: string }, json: boolean): Promise<number> {
  await withClient(settings, io, async (client) => {
    const worker = findWorker(await fetchStatus(client), by);
    const runtime = await fetchRuntime(client, worker.uuid);
    if (json) io.out(JSON.stringify(runtime, null, 2));
    else for (const line of formatRuntime(worker, runtime)) io.out(line);
  });
  return 0;
}

async function workerLogs(settings: ManagerSettings, io: CliIo, by: { uuid?: string; name?: string }, followLogs: boolean): Promise<number> {
  await withClient(settings, io, async (client) => {
    const worker = findWorker(await fetchStatus(client), by);
    client.send({ type: 'watch_logs', workerid: worker.uuid, lines: LOG_TAIL_LINES });
    const print = (f: ParsedManagerFrame, initial: boolean): true | undefined => {
      if (f.kind !== 'message') return undefined;
      if (f.message.type === 'error') throw new CliError(f.message.message);
      if (f.message.type !== 'worker_log' || f.message.uuid !== worker.uuid || f.message.initial !== initial) return undefined;
      for (const line of f.message.lines) io.out(line);
      return initial ? true : undefined;
    };
    await client.until((f) => print(f, true), 10_000);
    // --follow: until the manager goes away or the user interrupts.
    if (followLogs) await client.until((f) => print(f, false), 2 ** 31 - 1).catch(() => undefined);
  });
  return 0;
}

async function envHistory(settings: ManagerSettings, io: CliIo, by: { uuid?: string; name?: string }): Promise<number> {
  const history = await withClient(settings, io, async (client) => {
    const worker = findWorker(await fetchStatus(client), by);
    client.send({ type: 'env_history', workerid: worker.uuid });
    return client.until(follow(io, (f) => (f.kind === 'message' && f.message.type === 'env_history' ? f.message : undefined)), 10_000);
  });
  if (history.snapshots.length === 0) io.out(`Worker ${history.uuid} has no environment snapshots yet (one is taken before each update on start)`);
  for (const snapshot of history.snapshots) {
    io.out(`${snapshot.id}\t${new Date(snapshot.created).toISOString()}\t${snapshot.packages.length} packages${snapshot.started ? '\tstarted' : ''}`);
    for (const line of snapshot.packages) io.out(`  ${line}`);
  }
  return 0;
}

async function envRollback(settings: ManagerSettings, io: CliIo, by: { uuid?: string; name?: string }, to?: string): Promise<number> {
  const done = await withClient(settings, io, async (client) => {
    const worker = findWorker(await fetchStatus(client), by);
    client.send({ type: 'env_rollback', workerid: worker.uuid, ...(to === undefined ? {} : { to }) });
    return client.until(follow(io, (f) => (f.kind === 'message' && f.message.type === 'env_rolled_back' ? f.message : undefined)), OPERATION_TIMEOUT_MS);
  });
  io.out(`Worker ${done.uuid}: environment restored to snapshot ${done.snapshot}`);
  return 0;
}
