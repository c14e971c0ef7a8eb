/**
 * Running the real FuncNodes (the cached venv of real-funcnodes.ts) against the real hub: the manager's
 * environment for it, collision-free worker ports, the worker operations through the hub, and the real
 * `funcnodes` CLI as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { execa } from 'execa';
import type { ManagerClient } from '../../src-main/core/hub/client.js';
import type { WorkerRuntime } from '../../src-shared/protocol.js';
import { readUntil } from './manager.js';
import type { RealFuncnodes } from './real-funcnodes.js';

export type Env = Record<string, string | undefined>;

/** A port that was free a moment ago (the kernel's pick for port 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The manager's environment for real workers: the cached FuncNodes as FUNCNODES_PYTHON, and worker ports
 * from a free port on (real workers start their scan at the JSON's port, which the manager takes from
 * FUNCNODES_WS_WORKER_STARTPORT, and skip taken ones up to FUNCNODES_WS_WORKER_ENDPORT), so concurrent
 * runs on one machine do not meet at FuncNodes' default 9382.
 */
export async function realWorkerEnv(fn: RealFuncnodes, extra: Env = {}): Promise<Env> {
  const start = await freePort();
  return {
    FUNCNODES_PYTHON: fn.python,
    FUNCNODES_WS_WORKER_STARTPORT: String(start),
    FUNCNODES_WS_WORKER_ENDPORT: String(start + 40),
    // FuncNodes' CLI would otherwise wrap each long-running command in a subprocess monitor.
    USE_SUBPROCESS_MONITOR: '0',
    UV_CACHE_DIR: fn.uvCache,
    UV_PYTHON_DOWNLOADS: 'never',
    ...extra,
  };
}

/** pip and uv that install only from the pinned wheels: fast, and the same with the network gone. */
export function offlineInstalls(fn: RealFuncnodes): Env {
  const env: Env = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('PIP_') || key.startsWith('UV_')) env[key] = undefined;
  return {
    ...env,
    PIP_CONFIG_FILE: '/dev/null',
    PIP_NO_INDEX: '1',
    PIP_FIND_LINKS: fn.wheels,
    PIP_DISABLE_PIP_VERSION_CHECK: '1',
    // No .pyc compilation at install (uv does not compile either), so a pip venv installs faster. pip reads
    // a `--no-…` flag's variable inverted: PIP_NO_COMPILE=1 would keep compiling.
    PIP_COMPILE: '0',
    UV_NO_INDEX: '1',
    UV_FIND_LINKS: fn.wheels,
    UV_OFFLINE: '1',
    UV_NO_CONFIG: '1',
    UV_CACHE_DIR: fn.uvCache,
    UV_PYTHON_DOWNLOADS: 'never',
  };
}

/** Opts in to worker_states (the additive table); returns the first, full one. */
export async function watchStates(client: ManagerClient): Promise<WorkerRuntime[]> {
  client.send({ type: 'watch_workers' });
  return (await readUntil(client, 'worker_states')).found.workers;
}

/** The real `funcnodes` CLI, run to completion, with `--dir` and FUNCNODES_CONFIG_DIR set to `dir`. */
export function funcnodesCli(fn: RealFuncnodes, dir: string, args: string[], env: Env = {}) {
  return execa(fn.python, ['-m', 'funcnodes', '--dir', dir, ...args], {
    env: { ...process.env, FUNCNODES_CONFIG_DIR: dir, USE_SUBPROCESS_MONITOR: '0', ...env },
    extendEnv: false,
    reject: false,
    timeout: 60_000,
    stdin: 'ignore',
  });
}

/** A long-running `funcnodes` command (worker start, runserver) as a child of the test; output captured. */
export function spawnFuncnodes(fn: RealFuncnodes, dir: string, args: string[], env: Env = {}): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(fn.python, ['-m', 'funcnodes', '--dir', dir, ...args], {
    env: { ...process.env, FUNCNODES_CONFIG_DIR: dir, USE_SUBPROCESS_MONITOR: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, output: () => output, exited };
}
