/**
 * The worker output file: seeding from an adopted worker's history, following appends (watch, partial
 * lines, UTF-8 across writes), copy-truncate rotation under a real child that writes through an inherited
 * O_APPEND fd, and a child that keeps writing once the manager stopped following it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, closeSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_LINE_LENGTH, TRUNCATED_MARK, WorkerLog, type WorkerLogOptions } from '../src-main/core/logs/worker-log.js';
import { makeTempDir, waitFor } from './helpers/manager.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const REPO_DIR = path.join(import.meta.dirname, '..');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(options: Omit<WorkerLogOptions, 'file'> = {}) {
  const dir = await makeTempDir('fnwm-log-');
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'data', 'worker.log');
  const log = new WorkerLog({ file, ...options });
  cleanups.push(() => log.stop());
  const received: string[] = [];
  log.on('lines', (lines) => received.push(...lines));
  return { dir, file, log, received };
}

/** A node child writing `out N` to stdout and `err N` to stderr every 2 ms, through the log's fd. */
function spawnWriter(log: WorkerLog): ChildProcess {
  const script = "let i = 0; setInterval(() => { process.stdout.write(`out ${i}\\n`); process.stderr.write(`err ${i}\\n`); i++; }, 2);";
  const fd = log.openForChild();
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  child.unref();
  cleanups.push(() => {
    child.kill('SIGKILL');
  });
  return child;
}

const outIndices = (lines: string[]) => lines.flatMap((l) => (l.startsWith('out ') ? [Number(l.slice(4))] : []));
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

describe('seeding', () => {
  it('keeps only the last ringLines complete lines of a large existing file, and emits none of them', async () => {
    const { file, log, received } = await setup({ ringLines: 200, partialFlushMs: 60_000 });
    const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i}`); // ~110 KB: more than the seed window
    closeSync(log.openForChild());
    await writeFile(file, `${lines.join('\n')}\nhalf`);
    log.start();
    expect(log.tail()).toEqual(lines.slice(-200));
    expect(log.tail(3)).toEqual(lines.slice(-3));
    expect(log.tail(0)).toEqual([]);
    expect(received).toEqual([]);
    // Without the ring's limit: only the seed window, starting at a whole line.
    const wide = new WorkerLog({ file, ringLines: lines.length });
    cleanups.push(() => wide.stop());
    wide.start();
    const seeded = wide.tail();
    expect(seeded.length).toBeLessThan(lines.length);
    expect(seeded).toEqual(lines.slice(-seeded.length));
    // The trailing partial line was not lost: it continues with the next write.
    await appendFile(file, ' done\n');
    await waitFor(() => received.length > 0, 5000, 'the completed line');
    expect(received).toEqual(['half done']);
    expect(log.tail(1)).toEqual(['half done']);
  });

  it('starts empty when there is no file yet, and follows it once it appears', async () => {
    const { file, log, received } = await setup({ pollMs: 50 });
    log.start();
    expect(log.tail()).toEqual([]);
    closeSync(log.openForChild());
    await appendFile(file, 'first\n');
    await waitFor(() => received.length === 1, 5000, 'the first line');
    expect(received).toEqual(['first']);
  });
});

describe('following', () => {
  it('delivers appended lines through fs.watch alone, in order', async () => {
    // No poll within the test's lifetime: only the watcher can deliver.
    const { file, log, received } = await setup({ pollMs: 600_000 });
    closeSync(log.openForChild());
    log.start();
    const expected: string[] = [];
    for (let i = 0; i < 20; i++) {
      expected.push(`line ${i}`);
      await appendFile(file, `line ${i}\n`);
    }
    await waitFor(() => received.length >= expected.length, 5000, 'all lines');
    expect(received).toEqual(expected);
    expect(log.tail(5)).toEqual(expected.slice(-5));
  });

  it('joins a line written in parts, and multi-byte characters split across writes', async () => {
    const { file, log, received } = await setup({ partialFlushMs: 60_000 });
    closeSync(log.openForChild());
    log.start();
    const text = 'héllo € 𝄞 done';
    const bytes = Buffer.from(`${text}\n`);
    // Cut inside é (2 bytes), € (3 bytes) and 𝄞 (4 bytes); the pauses let each part be read on its own.
    const cuts = [2, bytes.indexOf('€') + 1, bytes.indexOf(Buffer.from('𝄞')) + 2, bytes.length];
    let from = 0;
    for (const to of cuts) {
      await appendFile(file, bytes.subarray(from, to));
      from = to;
      await sleep(100);
    }
    await waitFor(() => received.length > 0, 5000, 'the line');
    expect(received).toEqual([text]);
  });

  it('emits a line still without newline after partialFlushMs', async () => {
    const { file, log, received } = await setup({ partialFlushMs: 100 });
    closeSync(log.openForChild());
    log.start();
    await appendFile(file, 'Enter a value: ');
    await waitFor(() => received.length > 0, 5000, 'the partial line');
    expect(received).toEqual(['Enter a value: ']);
  });

  it('strips CR, keeps what a terminal would show of redrawn lines, and caps long lines', async () => {
    const { file, log, received } = await setup();
    closeSync(log.openForChild());
    log.start();
    await appendFile(file, `windows\r\n 10%\r 50%\r100%\n${'x'.repeat(3 * MAX_LINE_LENGTH)}\nafter\n`);
    await waitFor(() => received.length >= 4, 5000, 'four lines');
    expect(received).toEqual(['windows', '100%', 'x'.repeat(MAX_LINE_LENGTH) + TRUNCATED_MARK, 'after']);
  });

  it('rereads from the start when the file is truncated by someone else or replaced', async () => {
    const { file, log, received } = await setup({ pollMs: 600_000 });
    closeSync(log.openForChild());
    log.start();
    await appendFile(file, 'a fairly long first line\n');
    await waitFor(() => received.length === 1, 5000, 'the first line');
    await truncate(file, 0);
    await appendFile(file, 'short\n');
    await waitFor(() => received.length === 2, 5000, 'the line after truncation');
    // Replaced: the watcher must move to the new file.
    await writeFile(`${file}.new`, 'replaced\n');
    await rename(`${file}.new`, file);
    await waitFor(() => received.length === 3, 5000, 'the replacing file');
    await appendFile(file, 'appended to the new file\n');
    await waitFor(() => received.length === 4, 5000, 'a line appended to the new file');
    expect(received).toEqual(['a fairly long first line', 'short', 'replaced', 'appended to the new file']);
  });
});

describe('a real child', () => {
  it('keeps arriving across copy-truncate rotations, which keep at most `keep` files', async () => {
    const { file, log, received } = await setup({ maxBytes: 1024, keep: 3 });
    const child = spawnWriter(log);
    log.start();
    await waitFor(() => received.includes('out 0') && received.includes('err 0'), 10_000, 'the first lines');
    await waitFor(() => exists(`${file}.2`), 10_000, 'a second rotation');
    const before = Math.max(...outIndices(received));
    await waitFor(() => Math.max(...outIndices(received)) > before + 100, 10_000, 'writes after rotation');
    child.kill('SIGKILL');
    await once(child, 'exit');
    // Nothing grows the file any more: once it is within maxBytes, no rotation is pending or can start.
    await waitFor(async () => (await stat(file)).size <= 1024, 10_000, 'the last rotation');
    const live = (await readFile(file, 'utf8')).split('\n').slice(0, -1);
    const rotated = (await readFile(`${file}.1`, 'utf8')).split('\n').slice(0, -1);
    const lastWritten = live.at(-1) ?? rotated.at(-1);
    await waitFor(() => received.at(-1) === lastWritten, 10_000, 'the last line written');

    const names = (await readdir(path.dirname(file))).sort();
    expect(names).toEqual(['worker.log', 'worker.log.1', 'worker.log.2']);
    // Rotation may lose a line in its copy-truncate window, but never garbles, repeats or reorders one.
    for (const line of received) expect(line).toMatch(/^(out|err) \d+$/);
    const outs = outIndices(received);
    for (let i = 1; i < outs.length; i++) expect(outs[i]).toBeGreaterThan(outs[i - 1]);
    expect(rotated.length).toBeGreaterThan(0);
    for (const line of rotated) expect(line).toMatch(/^(out|err) \d+$/);
    expect(Math.max(...outIndices(rotated))).toBeLessThan(Math.max(...outs));
  });

  it('keeps writing after stop (the manager died), and a later follower picks it up', async () => {
    const { file, log, received } = await setup({ maxBytes: 1024 });
    const child = spawnWriter(log);
    log.start();
    await waitFor(() => received.length >= 10, 10_000, 'the first lines');
    log.stop();
    expect(log.following).toBe(false);
    const grownBy = async (bytes: number) => {
      const size = (await stat(file)).size;
      await waitFor(async () => (await stat(file)).size > size + bytes, 10_000, 'the file to keep growing');
    };
    await grownBy(4096); // long enough for stop's last read
    const count = received.length;
    await grownBy(4096);
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
    expect(received).toHaveLength(count);
    expect(await exists(`${file}.1`)).toBe(false); // nobody rotates any more; the file outgrew maxBytes

    const later = new WorkerLog({ file, maxBytes: 1024 });
    cleanups.push(() => later.stop());
    later.start();
    const seeded = later.tail();
    expect(seeded.length).toBeGreaterThan(0);
    const latest: string[] = [];
    later.on('lines', (lines) => latest.push(...lines));
    await waitFor(() => outIndices(latest).length > 0, 10_000, 'new lines for the later follower');
    expect(Math.min(...outIndices(latest))).toBeGreaterThan(Math.max(...outIndices(seeded)));
  });
});

describe('stop', () => {
  it('still reads and flushes what was written, is idempotent, and ends following', async () => {
    const { file, log, received } = await setup({ partialFlushMs: 600_000, pollMs: 600_000 });
    closeSync(log.openForChild());
    log.start();
    await appendFile(file, 'first\n');
    await waitFor(() => received.length > 0, 5000, 'the first line');
    // Written and stopped in one tick: no watch event can have been handled in between.
    appendFileSync(file, 'last words, no newline');
    log.stop();
    log.stop();
    expect(log.following).toBe(false);
    await waitFor(() => received.length > 1, 5000, 'the last read');
    expect(received).toEqual(['first', 'last words, no newline']);
    log.start(); // no restart after stop
    expect(log.following).toBe(false);
    // A second follower that does see the next write bounds the wait for the stopped one not to see it.
    const witness = new WorkerLog({ file, pollMs: 600_000 });
    cleanups.push(() => witness.stop());
    witness.start();
    const seen: string[] = [];
    witness.on('lines', (lines) => seen.push(...lines));
    await appendFile(file, '\nmore\n');
    await waitFor(() => seen.includes('more'), 5000, 'the witness to see the write');
    expect(received).toEqual(['first', 'last words, no newline']);
  });

  it('leaves nothing that keeps the process alive, while running or after', async () => {
    // Checked in a child of its own, where nothing else holds the event loop: with the watcher, the poll
    // and a pending partial line's timer all armed the child must still exit by itself, and after stop
    // too (once the last read flushed the partial line).
    const dir = await makeTempDir('fnwm-log-alive-');
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // The modules it needs, transpiled into the same tree so their relative imports resolve.
    for (const name of ['src-main/core/logs/worker-log', 'src-main/core/logs/log', 'src-shared/protocol', 'src-shared/address']) {
      const source = await readFile(path.join(REPO_DIR, `${name}.ts`), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, `${name}.js`), outputText);
    }
    await writeFile(path.join(dir, 'package.json'), '{"type":"module"}');
    const script = `
      import { closeSync, appendFileSync } from 'node:fs';
      import { WorkerLog } from './src-main/core/logs/worker-log.js';
      const [file, mode] = process.argv.slice(2);
      const log = new WorkerLog({ file, pollMs: 200, partialFlushMs: 600000 });
      closeSync(log.openForChild());
      // Holds the child until the line is in: an unreferenced watcher alone would let it exit before.
      const untilRead = setInterval(() => {}, 1000);
      log.on('lines', (lines) => {
        console.log(JSON.stringify(lines));
        clearInterval(untilRead);
        if (mode === 'stop') log.stop();
      });
      log.start();
      // Seen by the watcher or, should the first read arm it only after this write, by the poll.
      setTimeout(() => appendFileSync(file, 'line\\npartial'), 100);
    `;
    await writeFile(path.join(dir, 'child.mjs'), script);
    for (const [mode, expected] of [['running', '["line"]\n'], ['stop', '["line"]\n["partial"]\n']] as const) {
      const file = path.join(dir, mode, 'worker.log');
      const child = spawn(process.execPath, ['child.mjs', file, mode], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
      clearTimeout(killer);
      expect({ mode, code, signal, stdout }).toEqual({ mode, code: 0, signal: null, stdout: expected });
    }
  });
});
