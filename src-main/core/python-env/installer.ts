/**
 * Runs installer commands (python -m venv, pip, uv) with an explicit working directory (never
 * `process.chdir`, so installs for different workers run side by side), streams their output lines, and
 * fails with the command and its last lines so the user sees why.
 */
import { createInterface } from 'node:readline';
import { loadExeca } from './execa-lazy.js';
import { ReportedError } from '../operation-errors.js';

import type { Env } from '../env.js';

export interface Command {
  file: string;
  args: string[];
  cwd: string;
}

export interface RunOptions {
  env: Env;
  /** Each output line (stdout and stderr, as they come). */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
}

/** Output lines kept for the error message. */
const LAST_LINES = 6;

export function describe(command: Command): string {
  return [command.file, ...command.args].join(' ');
}

/** Runs one command to the end; resolves with its stdout, rejects with a ReportedError (meant for the user). */
export async function runCommand(command: Command, options: RunOptions): Promise<string> {
  const execa = await loadExeca();
  const proc = execa(command.file, command.args, {
    cwd: command.cwd,
    env: options.env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    all: true,
    cancelSignal: options.signal,
  });
  const last: string[] = [];
  const reading = proc.all
    ? new Promise<void>((resolve) => {
        const lines = createInterface({ input: proc.all });
        lines.on('line', (line) => {
          if (line.trim() === '') return;
          last.push(line);
          if (last.length > LAST_LINES) last.shift();
          options.onLine?.(line);
        });
        lines.on('close', resolve);
      })
    : Promise.resolve();
  const result = await proc;
  await reading;
  if (result.exitCode === 0) return typeof result.stdout === 'string' ? result.stdout : '';
  const how = result.isCanceled
    ? 'was cancelled'
    : result.exitCode === undefined
      ? `could not run (${result.originalMessage ?? result.shortMessage})`
      : `failed (exit ${result.exitCode})`;
  const tail = last.length > 0 ? `: ${last.join(' | ')}` : '';
  throw new ReportedError(`"${describe(command)}" ${how}${tail}`);
}

/**
 * Passes on at most one line per `intervalMs` (about 10 frames a second by default); the latest line
 * wins, and the last one still goes out after the interval, so a client always sees the current step.
 */
export function throttleLines(send: (line: string) => void, intervalMs = 100): { line: (text: string) => void; stop: () => void } {
  let lastSent = 0;
  let pending: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    if (pending === undefined) return;
    lastSent = Date.now();
    const text = pending;
    pending = undefined;
    send(text);
  };
  return {
    line(text) {
      pending = text;
      if (timer) return;
      const wait = lastSent + intervalMs - Date.now();
      if (wait <= 0) flush();
      else timer = setTimeout(flush, wait);
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      pending = undefined;
    },
  };
}
