/**
 * A worker's process, for the supervisor: spawning it (output appended to its `worker.log`, its own process
 * group, no pipes, so it can outlive the manager), signalling its tree, sending it the stop command, and
 * reading the last lines a run wrote.
 */
import { appendFileSync, closeSync, mkdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import { loadExeca } from '../python-env/execa-lazy.js';
import { commandText } from '../python-env/launcher.js';
import { signalTree } from './process-tree.js';
import { workerUrl, type WorkerConfig } from '../../../src-shared/protocol.js';

/** Starts the line the manager writes into worker.log before each spawn. */
const RUN_MARK = '--- fnwm ';

export interface SpawnOptions {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
  /** Opens the log for the child's stdout and stderr (the caller's tail follows it). */
  openLog: () => number;
}

export interface SpawnedWorker {
  pid: number;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Lets the manager's process exit while this child runs on (--keep-workers). */
  release: () => void;
}

/** Spawns `file args` with its output appended to `logFile`; undefined pid is an error with the command line. */
export async function spawnWorker(opts: SpawnOptions): Promise<SpawnedWorker> {
  // Loaded with the first start: a manager that never starts a worker saves its memory and start-up time.
  const execa = await loadExeca();
  // The file exists before its tail starts, so the tail can watch it from the first line.
  mkdirSync(path.dirname(opts.logFile), { recursive: true });
  appendFileSync(opts.logFile, `${RUN_MARK}${new Date().toISOString()}: ${commandText(opts)}\n`, { mode: 0o600 });
  const fd = opts.openLog();
  let proc;
  try {
    proc = execa(opts.file, opts.args, {
      env: opts.env,
      extendEnv: false,
      cwd: opts.cwd,
      // Its own process group, so a stop ends the whole tree; no pipes, so it can outlive the manager.
      detached: true,
      cleanup: false,
      reject: false,
      stdin: 'ignore',
      // execa passes any open descriptor straight to spawn; its types list only 3–9.
      stdout: fd as 3,
      stderr: fd as 3,
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(fd);
  }
  const pid = proc.pid;
  if (pid === undefined) throw new Error(`could not run ${opts.file}: ${commandText(opts)} failed to spawn`);
  const exited = proc.then((result) => ({ code: result.exitCode ?? null, signal: result.signal ?? null }));
  return { pid, exited, release: () => proc.unref() };
}

/** SIGTERM/SIGKILL to the process group (POSIX); Windows has no groups or polite signals: `taskkill /T /F`. */
export function signalWorker(pid: number, signal: 'SIGTERM' | 'SIGKILL'): void {
  if (process.platform !== 'win32') return signalTree(pid, signal);
  void loadExeca().then((execa) => execa('taskkill', ['/PID', String(pid), '/T', '/F'], { reject: false, windowsHide: true }));
}

/** Sends `stop_worker` and does not wait for the result, which a real worker may never deliver (spec §14.1). */
export function sendStopCommand(config: WorkerConfig): Promise<void> {
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

/**
 * The last `count` non-empty lines the latest run wrote to `logFile` (after our start line), as the file is
 * now: its size is taken synchronously, so what a process we are about to signal writes next is not included.
 */
export async function lastRunLines(logFile: string, count: number, bytes = 8192): Promise<string[]> {
  const lines = (await readTail(logFile, bytes)).split('\n').map((line) => line.trimEnd());
  const runStart = lines.findLastIndex((line) => line.startsWith(RUN_MARK));
  return lines
    .slice(runStart + 1)
    .filter((line) => line !== '')
    .slice(-count);
}

/** The last `bytes` of a file, '' when it cannot be read; a partial first line is dropped. */
async function readTail(file: string, bytes: number): Promise<string> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return '';
  }
  let handle;
  try {
    handle = await open(file, 'r');
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    const { bytesRead } = await handle.read(buf, 0, buf.length, start);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    return start > 0 ? text.slice(text.indexOf('\n') + 1) : text;
  } catch {
    return '';
  } finally {
    await handle?.close();
  }
}
