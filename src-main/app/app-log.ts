/**
 * The main process's log file (`main.log` in Electron's logs dir), rotated by size: at `maxBytes` the file
 * becomes `main.log.1` (and `.1` becomes `.2`, …), keeping `keep` files in all. Writes are synchronous so
 * the last lines before a crash are on disk; the main process logs little.
 */
import { appendFileSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

export interface RotationOptions {
  maxBytes?: number;
  keep?: number;
}

export function rotatingFileSink(file: string, { maxBytes = 1024 * 1024, keep = 3 }: RotationOptions = {}): (line: string) => void {
  mkdirSync(path.dirname(file), { recursive: true });
  let size = fileSize(file);
  const rotate = () => {
    rmSync(`${file}.${keep - 1}`, { force: true });
    for (let n = keep - 2; n >= 1; n--) renameIfPresent(`${file}.${n}`, `${file}.${n + 1}`);
    renameIfPresent(file, `${file}.1`);
    size = 0;
  };
  return (line) => {
    const text = `${line}\n`;
    const bytes = Buffer.byteLength(text);
    try {
      if (size > 0 && size + bytes > maxBytes) rotate();
      appendFileSync(file, text, { mode: 0o600 });
      size += bytes;
    } catch (err) {
      // A full disk must not take the app down; stderr still has the line.
      process.stderr.write(`Cannot write ${file}: ${(err as Error).message}\n`);
    }
  };
}

/**
 * The main log before its file may be opened (Electron's logs dir exists only after `ready`, and a second
 * instance must never touch the first one's file): lines wait in memory, at most `limit`, and go to the
 * file in order once `open` is called.
 */
export function deferredFileLog(limit = 1000, sinkFor: (file: string) => (line: string) => void = rotatingFileSink) {
  let sink: ((line: string) => void) | undefined;
  const early: string[] = [];
  return {
    write(line: string): void {
      if (sink) sink(line);
      else if (early.length < limit) early.push(line);
    },
    open(file: string): void {
      if (sink) return;
      sink = sinkFor(file);
      for (const line of early.splice(0)) sink(line);
    },
  };
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function renameIfPresent(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
