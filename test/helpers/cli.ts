/**
 * Runs the built `fnwm` CLI (`dist/main/cli.js`) as real processes for end-to-end tests: one-shot
 * commands, foreground managers, and the background managers the CLI auto-starts (found through /proc).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { testEnv } from './manager.js';
import type { PortRange } from './standin.js';

export const CLI: string = fileURLToPath(new URL('../../dist/main/cli.js', import.meta.url));
const KILL_FILE = 'kill_worker_manager';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function assertCliBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build it first with "npm run build:main" (npm test does this)`);
}

export type Env = Record<string, string | undefined>;

/**
 * The environment of every CLI process: the stand-in worker as FUNCNODES_PYTHON, worker ports from
 * `ports`, no inherited FUNCNODES_CONFIG_DIR, and FUNCNODES_WORKER_IN_VENV unset (as for a user).
 */
export function cliEnv(ports: PortRange, extra: Env = {}): Env {
  const env: Env = { ...testEnv(ports), ...extra };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  if (!('FUNCNODES_WORKER_IN_VENV' in extra)) delete env.FUNCNODES_WORKER_IN_VENV;
  return env;
}

export interface CliResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * One `fnwm` invocation; never rejects (a hang is killed after `timeoutMs` and reported as timedOut).
 * `prefix` runs it through another command (e.g. `setpriv` to drop root).
 */
export async function fnwm(args: string[], env: Env, timeoutMs = 25_000, prefix: string[] = []): Promise<CliResult> {
  const [file, ...rest] = [...prefix, process.execPath, CLI, ...args] as [string, ...string[]];
  const result = await execa(file, rest, { env, extendEnv: false, reject: false, timeout: timeoutMs, stdin: 'ignore' });
  return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, timedOut: result.timedOut };
}

/** Describes a result for assertion messages. */
export function show(r: CliResult): string {
  return `exit ${String(r.exitCode)}${r.timedOut ? ' (timed out)' : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

// A port that was free a moment ago; the benchmark needs the same.
export { freePort } from '../../bench/processes.js';

/** `config.json` with `worker_manager.host/port`, as the Python tools would have written it. */
export async function writeManagerConfig(dir: string, port: number, host = '127.0.0.1'): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: { host, port } }, null, 2));
}

export interface ForegroundManager {
  child: ChildProcess;
  pid: number;
  url: string;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout: () => string;
  stderr: () => string;
}

const running = new Set<ChildProcess>();

/**
 * `fnwm startworkermanager ...` in the foreground; resolves with the URL of its first stdout line.
 * Rejects (with its output) if it exits first or prints nothing within `timeoutMs`. `command`: what runs
 * it (default the built CLI; `npm start`'s script falls back to it).
 */
export function startForeground(args: string[], env: Env, timeoutMs = 10_000, command: string[] = [CLI, 'startworkermanager']): Promise<ForegroundManager> {
  const child = spawn(process.execPath, [...command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`startworkermanager printed no URL within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
    child.stdout.on('data', (chunk: string) => {
      const before = stdout;
      stdout += chunk;
      if (before.includes('\n') || !stdout.includes('\n')) return;
      clearTimeout(timer);
      const url = stdout.slice(0, stdout.indexOf('\n'));
      const port = Number(/:(\d+)$/.exec(url)?.[1]);
      resolve({ child, pid: child.pid ?? -1, url, port, exited, stdout: () => stdout, stderr: () => stderr });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`startworkermanager exited (${String(code ?? signal)}) before printing its URL; stderr:\n${stderr}`));
    });
  });
}

/** Rejects if the process has not exited within `timeoutMs`. */
export async function exitWithin<T>(exited: Promise<T>, timeoutMs: number, what = 'the manager'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not exit within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `pid` runs; a zombie (exited, not yet reaped by a slow init) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // Field 3 of /proc/<pid>/stat, after the parenthesised command name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    // No /proc (not Linux): the signal test is all there is; with /proc, the process just went.
    return !canListProcesses;
  }
}

/** Whether /proc lets us find background managers by their command line (Linux). */
export const canListProcesses: boolean = existsSync('/proc/self/cmdline');

/**
 * Pids of `cli.js startworkermanager` processes whose `--dir` is `dir`: the managers the CLI started in
 * the background for that config dir (and foreground ones started with `--dir`).
 */
export function managerPids(dir: string): number[] {
  if (!canListProcesses) return [];
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = argv.indexOf('startworkermanager');
    if (at < 0 || argv[at - 1] !== CLI) continue;
    const dirAt = argv.indexOf('--dir', at);
    if (dirAt > 0 && path.resolve(argv[dirAt + 1] ?? '') === path.resolve(dir)) pids.push(Number(name));
  }
  return pids;
}

/**
 * Stops every manager this file started for `dir`: the kill file first (a clean stop), then SIGKILL by
 * pid for whatever is still there after `graceMs`. Returns the pids that needed the SIGKILL.
 */
export async function stopManagersFor(dir: string, graceMs = 5000): Promise<number[]> {
  let pids = managerPids(dir);
  if (pids.length === 0) return [];
  await writeFile(path.join(dir, KILL_FILE), '').catch(() => undefined);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(isAlive)) await sleep(50);
  pids = pids.filter(isAlive);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** SIGKILLs every foreground manager started by `startForeground` that is still running. */
export async function killForegroundManagers(): Promise<void> {
  const children = [...running];
  for (const child of children) child.kill('SIGKILL');
  await Promise.all(children.map((child) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('close', () => resolve())))));
}
