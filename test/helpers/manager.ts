/**
 * Runs the real manager service (real hub on a real port, real files in a temp config dir, the stand-in
 * worker as FUNCNODES_PYTHON) and cleans up after it, including any worker processes left running.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManagerClient } from '../../src-main/core/hub/client.js';
import { createLogger, type Logger } from '../../src-main/core/logs/log.js';
import type { ManagerMessage, ParsedManagerFrame, WorkerConfig, WorkerRuntime } from '../../src-shared/protocol.js';
import { startManagerService, type ManagerService, type ServiceOptions } from '../../src-main/core/service/service.js';
import { randomPortRange, standinPython, type PortRange, type StandinOptions } from './standin.js';

export interface TestManager {
  service: ManagerService;
  dir: string;
  workersDir: string;
  url: string;
  ports: PortRange;
  /** Log lines the manager wrote. */
  logs: string[];
  env: Record<string, string | undefined>;
  connect(headers?: Record<string, string>): Promise<ManagerClient>;
  close(): Promise<void>;
}

export interface TestManagerOptions extends Omit<ServiceOptions, 'env' | 'log' | 'dir'> {
  env?: Record<string, string | undefined>;
  dir?: string;
}

export function testEnv(ports: PortRange, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    ...process.env,
    FUNCNODES_CONFIG_DIR: undefined,
    FUNCNODES_PYTHON: standinPython,
    FUNCNODES_WORKER_IN_VENV: '0',
    FUNCNODES_WS_WORKER_STARTPORT: String(ports.start),
    FUNCNODES_WS_WORKER_ENDPORT: String(ports.end),
    FUNCNODES_STANDIN: '',
    FUNCNODES_STANDIN_P_INTERVAL: '1',
    FUNCNODES_STANDIN_STOP_DELAY: '0.5',
    ...extra,
  };
}

export function makeTempDir(prefix = 'fnwm-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

export async function startTestManager(options: TestManagerOptions = {}): Promise<TestManager> {
  const dir = options.dir ?? (await makeTempDir());
  const ports = randomPortRange();
  const env = testEnv(ports, options.env);
  const logs: string[] = [];
  const log: Logger = createLogger('debug', (line) => logs.push(line));
  const service = await startManagerService({ host: '127.0.0.1', port: 0, ...options, dir, env, log });
  await service.ready;
  const clients: ManagerClient[] = [];
  return {
    service,
    dir,
    workersDir: service.settings.workersDir,
    url: service.url,
    ports,
    logs,
    env,
    async connect(headers) {
      const client = await ManagerClient.connect(service.url, 5000, headers);
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.close();
      await service.stop('test done');
      await killWorkers(service.settings.workersDir);
      if (options.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** SIGKILLs every process named by a `.p` or worker JSON `pid` (and its group) in the workers dir. */
export async function killWorkers(workersDir: string): Promise<void> {
  const names = await readdir(workersDir).catch(() => [] as string[]);
  for (const name of names) {
    if (!/^worker_.*\.(p|json)$/.test(name)) continue;
    const text = await readFile(path.join(workersDir, name), 'utf8').catch(() => '');
    let pid: unknown;
    try {
      pid = name.endsWith('.p') ? Number(text.trim()) : (JSON.parse(text) as { pid?: unknown }).pid;
    } catch {
      continue;
    }
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // Not running.
      }
    }
  }
}

export function messageOf(frame: ParsedManagerFrame): ManagerMessage | undefined {
  return frame.kind === 'message' ? frame.message : undefined;
}

/** Reads frames until one of `type` arrives; returns it and everything read before it. */
export async function readUntil<T extends ManagerMessage['type']>(
  client: ManagerClient,
  type: T,
  timeoutMs = 10_000,
): Promise<{ found: Extract<ManagerMessage, { type: T }>; before: ParsedManagerFrame[] }> {
  const before: ParsedManagerFrame[] = [];
  const found = await client.until((frame) => {
    const m = messageOf(frame);
    if (m?.type === type) return m as Extract<ManagerMessage, { type: T }>;
    before.push(frame);
    return undefined;
  }, timeoutMs);
  return { found, before };
}

/** Reads frames until an operation's closing reset (`progress` with `message: ''`); returns those before it. */
export async function readReset(client: ManagerClient, timeoutMs = 10_000): Promise<ParsedManagerFrame[]> {
  const before: ParsedManagerFrame[] = [];
  await client.until((frame) => {
    const m = messageOf(frame);
    if (m?.type === 'progress' && m.message === '') return true;
    before.push(frame);
    return undefined;
  }, timeoutMs);
  return before;
}

/** Everything that arrives within `ms`. */
export async function collect(client: ManagerClient, ms: number): Promise<string[]> {
  const frames: string[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return frames;
    try {
      frames.push(await client.nextText(left));
    } catch {
      return frames;
    }
  }
}

/** Polls a condition (for files and processes, which have no event to wait on from a test). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Reads worker_states frames until `uuid`'s runtime satisfies `ok`. */
export function stateWhere(client: ManagerClient, uuid: string, ok: (r: WorkerRuntime) => boolean, timeoutMs = 15_000): Promise<WorkerRuntime> {
  return client.until((f) => {
    if (f.kind !== 'message' || f.message.type !== 'worker_states') return undefined;
    const runtime = f.message.workers.find((w) => w.uuid === uuid);
    return runtime && ok(runtime) ? runtime : undefined;
  }, timeoutMs);
}

/** Whether `promise` settles within `ms`; the timer does not outlive the answer. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Creates a worker through the manager; `standin` failure modes and `extra` keys are then added to its JSON. */
export async function createWorker(
  client: ManagerClient,
  workersDir: string,
  name: string,
  standin?: StandinOptions,
  extra: Record<string, unknown> = {},
): Promise<string> {
  client.send({ type: 'new_worker', kwargs: { name, in_venv: false } });
  const { found } = await readUntil(client, 'worker_created');
  if (standin || Object.keys(extra).length > 0) {
    const file = path.join(workersDir, `worker_${found.uuid}.json`);
    const json = JSON.parse(await readFile(file, 'utf8')) as WorkerConfig;
    await writeFile(file, JSON.stringify({ ...json, ...(standin ? { standin } : {}), ...extra }));
  }
  return found.uuid;
}

export interface StartResult {
  frames: ParsedManagerFrame[];
  ok: boolean;
  /** set_worker's data. */
  data?: WorkerConfig;
  error?: string;
}

/** `set_active` until `set_worker` or `error` (the frames on the way), then the closing reset. */
export async function activateWorker(client: ManagerClient, uuid: string, timeoutMs = 120_000): Promise<StartResult> {
  client.send({ type: 'set_active', workerid: uuid });
  const frames: ParsedManagerFrame[] = [];
  const end = await client.until((frame) => {
    frames.push(frame);
    const m = messageOf(frame);
    return m?.type === 'set_worker' || m?.type === 'error' ? m : undefined;
  }, timeoutMs);
  await readReset(client, timeoutMs);
  return end.type === 'set_worker' ? { frames, ok: true, data: end.data } : { frames, ok: false, error: end.message };
}

/** `stop_worker` until its closing reset (the manager sends it once the process has exited). */
export async function deactivateWorker(client: ManagerClient, uuid: string, timeoutMs = 40_000): Promise<void> {
  client.send({ type: 'stop_worker', workerid: uuid });
  await readReset(client, timeoutMs);
}

/** The JSON key that keeps a crashed worker down (tests of crash detection, not of restarts). */
export const NO_RESTART = { workermanager: { restart: 'never' } };
