// Helpers for tests that run the stand-in FuncNodes worker (test/standin, see its README.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Python wrapper whose `-m funcnodes` is the stand-in worker: use it as FUNCNODES_PYTHON. */
export const standinPython: string = fileURLToPath(new URL('../standin/python', import.meta.url));

/** Failure modes, read from the worker JSON key `standin` or env FUNCNODES_STANDIN (JSON). */
export interface StandinOptions {
  boot_delay?: number;
  wrong_uuid?: string;
  noise?: number;
  never_bind?: boolean;
  crash_after?: number;
  exit_code?: number;
  exit_at?: 'start';
  ignore_stop?: boolean;
  stop_order?: 'aiohttp-3.8';
  in_worker_upgrade?: boolean;
}

export interface PortRange {
  start: number;
  end: number;
}

export interface WorkerPaths {
  workersDir: string;
  json: string;
  p: string;
  runstate: string;
  dataDir: string;
  log: string;
}

export function workerPaths(configDir: string, uuid: string): WorkerPaths {
  const workersDir = path.join(configDir, 'workers');
  const base = path.join(workersDir, `worker_${uuid}`);
  return {
    workersDir,
    json: `${base}.json`,
    p: `${base}.p`,
    runstate: `${base}.runstate`,
    dataDir: base,
    log: path.join(base, `funcnodes.${uuid}.log`),
  };
}

export function makeConfigDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'fnwm-standin-'));
}

/**
 * Writes `worker_<uuid>.json` (the worker refuses to start without it). Without a `port` in
 * `extra`, the worker scans from FUNCNODES_WS_WORKER_STARTPORT.
 */
export async function writeWorkerJson(
  configDir: string,
  uuid: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const { workersDir, json } = workerPaths(configDir, uuid);
  await mkdir(workersDir, { recursive: true });
  await writeFile(json, JSON.stringify({ type: 'WSWorker', uuid, name: uuid, ...extra }, null, 2));
  return json;
}

/** A random range below Linux's ephemeral ports, so parallel test files rarely collide. */
export function randomPortRange(size = 50): PortRange {
  const start = 20_000 + Math.floor(Math.random() * (12_000 - size));
  return { start, end: start + size - 1 };
}

/** The manager's start command line (spec 4.4), without the interpreter. */
export function standinArgs(configDir: string, uuid: string): string[] {
  return ['-m', 'funcnodes', '--dir', configDir, 'worker', '--uuid', uuid, 'start'];
}

/** The environment the manager gives a worker; FUNCNODES_STANDIN is cleared unless set in `extra`. */
export function standinEnv(
  configDir: string,
  ports: PortRange,
  extra: Record<string, string> = {},
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    FUNCNODES_CONFIG_DIR: configDir,
    USE_SUBPROCESS_MONITOR: '0',
    FUNCNODES_WS_WORKER_STARTPORT: String(ports.start),
    FUNCNODES_WS_WORKER_ENDPORT: String(ports.end),
    FUNCNODES_STANDIN: '',
    ...extra,
  };
}

export interface StandinProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout and stderr captured so far. */
  output: () => string;
}

/** `python` defaults to the stand-in; the drift test runs the real FuncNodes the same way. */
export function spawnStandin(args: string[], env: NodeJS.ProcessEnv, python: string = standinPython): StandinProcess {
  const child = spawn(python, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, output: () => output };
}
