/**
 * A worker's output file `<data dir>/worker.log`: the fd a child writes its stdout and stderr to, and the
 * manager's tail of it (ring buffer + `lines` events) with size-based rotation.
 *
 * Workers outlive the manager (a later manager adopts them), so their output is never piped to us: a pipe
 * would hand them EPIPE (or a full buffer) once the manager is gone. They write to an O_APPEND file instead,
 * and we follow that file (fs.watch for promptness, a slow stat poll because fs.watch can miss events).
 */
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync, watch, type FSWatcher } from 'node:fs';
import { copyFile, open, rename, stat, truncate } from 'node:fs/promises';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { silentLogger, type Logger } from './log.js';
import { LOG_TAIL_LINES } from '../../../src-shared/protocol.js';

/** Longest line kept, in UTF-16 code units; the rest of the line is dropped and the line marked. */
export const MAX_LINE_LENGTH = 8192;
export const TRUNCATED_MARK = ' …[truncated]';
/** How much of an existing file is read to seed the ring (an adopted worker's history). */
const SEED_BYTES = 64 * 1024;
const READ_CHUNK = 64 * 1024;

export interface WorkerLogOptions {
  file: string;
  /** Rotate once the file is larger than this. Default 5 MiB. */
  maxBytes?: number;
  /** Files kept in total, the live one included (worker.log, worker.log.1, …). Default 3. */
  keep?: number;
  /** Lines kept in memory for `tail`. Default LOG_TAIL_LINES. */
  ringLines?: number;
  /** A trailing line without newline is emitted once it has waited this long. Default 200 ms. */
  partialFlushMs?: number;
  /** Safety stat poll, for changes fs.watch did not report. Default 1000 ms. */
  pollMs?: number;
  log?: Logger;
}

/** Cuts to MAX_LINE_LENGTH without splitting a surrogate pair. */
function cut(text: string): string {
  const end = /[\uD800-\uDBFF]/.test(text[MAX_LINE_LENGTH - 1] ?? '') ? MAX_LINE_LENGTH - 1 : MAX_LINE_LENGTH;
  return text.slice(0, end);
}

/**
 * CRLF loses its CR; a bare CR (progress bars redrawing their line) keeps only what follows it, which is
 * what a terminal would end up showing.
 */
function finishLine(raw: string, truncated: boolean): string {
  const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const visible = text.slice(text.lastIndexOf('\r') + 1);
  return truncated ? visible + TRUNCATED_MARK : visible;
}

export class WorkerLog extends EventEmitter<{ lines: [string[]] }> {
  readonly file: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly ringLines: number;
  private readonly partialFlushMs: number;
  private readonly pollMs: number;
  private readonly log: Logger;

  private ring: string[] = [];
  /** Bytes of the file consumed so far. */
  private offset = 0;
  /** Inode of the file being followed; a different one means it was replaced. */
  private ino: number | undefined;
  private decoder = new StringDecoder('utf8');
  private pending = '';
  private pendingTruncated = false;

  private state: 'new' | 'running' | 'stopped' = 'new';
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** The read loop in flight, and whether another pass was asked for meanwhile. */
  private pumping: Promise<void> | undefined;
  private again = false;

  constructor(options: WorkerLogOptions) {
    super();
    this.file = options.file;
    this.maxBytes = options.maxBytes ?? 5 * 1024 * 1024;
    this.keep = Math.max(1, options.keep ?? 3);
    this.ringLines = options.ringLines ?? LOG_TAIL_LINES;
    this.partialFlushMs = options.partialFlushMs ?? 200;
    this.pollMs = options.pollMs ?? 1000;
    this.log = options.log ?? silentLogger;
  }

  /**
   * Opens the file for a child's stdout and stderr (pass the fd in `stdio`). O_APPEND keeps every write at
   * the current end, so the child keeps writing correctly after we truncate the file. Synchronous, so it
   * can sit right before `spawn`; the caller closes its copy with `closeSync(fd)` once spawned (or failed).
   */
  openForChild(): number {
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    return openSync(this.file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
  }

  /** Between `start` and `stop`. A stopped log cannot be restarted: make a new one (it seeds from the file). */
  get following(): boolean {
    return this.state === 'running';
  }

  /**
   * Seeds the ring from what the file already holds (synchronously, so `tail` is right as soon as this
   * returns), then follows the file. Only the first call does anything.
   */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.seed();
    this.poll = setInterval(() => this.kick(), this.pollMs).unref();
    this.kick();
  }

  /**
   * Stops following. One last read still runs in the background (a worker that just exited has usually
   * just written why) and then a pending partial line is emitted; nothing is emitted after that.
   * Idempotent; the child may keep writing to the file.
   */
  stop(): void {
    if (this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    clearInterval(this.poll);
    this.disarm();
    if (!wasRunning) return;
    void (async () => {
      await this.pumping;
      try {
        await this.readNew();
      } catch (err) {
        this.warn(err);
      }
      this.flushPartial();
    })();
  }

  /** Resolves once what the file holds now is in the tail (a worker that just exited has usually written why). */
  async caughtUp(): Promise<void> {
    this.kick();
    await this.pumping;
  }

  /** The last `n` lines (at most the ring size), oldest first. */
  tail(n: number = this.ringLines): string[] {
    return n > 0 ? this.ring.slice(-n) : [];
  }

  /** History only: goes to the ring, not to listeners. On failure the follower reads from the start. */
  private seed(): void {
    let fd;
    try {
      fd = openSync(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.warn(err);
      return;
    }
    try {
      const st = fstatSync(fd);
      const start = Math.max(0, st.size - SEED_BYTES);
      const buf = Buffer.alloc(st.size - start);
      const bytesRead = readSync(fd, buf, 0, buf.length, start);
      const bytes = buf.subarray(0, bytesRead);
      const lastNl = bytes.lastIndexOf(0x0a);
      // Resume after the last complete line: a trailing partial one is read again by the follower.
      this.ino = st.ino;
      this.offset = start + lastNl + 1;
      const raw = bytes.subarray(0, lastNl + 1).toString('utf8').split('\n').slice(0, -1);
      // A window that starts mid-file starts mid-line: drop that fragment.
      if (start > 0) raw.shift();
      this.push(
        raw.slice(-this.ringLines).map((line) => (line.length > MAX_LINE_LENGTH ? finishLine(cut(line), true) : finishLine(line, false))),
        false,
      );
    } catch (err) {
      this.warn(err);
    } finally {
      closeSync(fd);
    }
  }

  /** Asks for a read pass; passes never overlap, and a request during one runs another after it. */
  private kick(): void {
    if (this.state !== 'running') return;
    this.again = true;
    this.pumping ??= this.pump();
  }

  private async pump(): Promise<void> {
    while (this.again && this.state === 'running') {
      this.again = false;
      try {
        await this.readNew();
      } catch (err) {
        this.warn(err);
      }
    }
    this.pumping = undefined;
  }

  private async readNew(): Promise<void> {
    let st;
    try {
      st = await stat(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // Deleted: whatever reappears under this name is a new file, read from its start.
      this.disarm();
      this.restart();
      this.ino = undefined;
      return;
    }
    if (this.ino !== undefined && st.ino !== this.ino) {
      this.disarm();
      this.restart();
    }
    this.ino = st.ino;
    if (!this.watcher && this.state === 'running') this.arm();
    // Shrunk without us: truncated by someone else.
    if (st.size < this.offset) this.restart();
    // Most safety polls find nothing new: one stat, no open/read/close (20 idle workers poll 20 files a second).
    if (st.size === this.offset) return;
    await this.readFrom(this.file);
    if (this.offset > this.maxBytes) await this.rotate();
  }

  /** Consumes `file` from the current offset to its end. */
  private async readFrom(file: string): Promise<void> {
    const handle = await open(file, 'r');
    try {
      const buf = Buffer.alloc(READ_CHUNK);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) return;
        this.offset += bytesRead;
        this.feed(this.decoder.write(buf.subarray(0, bytesRead)));
      }
    } finally {
      await handle.close();
    }
  }

  /**
   * Copy-truncate: shift the numbered files, copy the live file to `.1`, truncate the live file. The child's
   * fd stays valid and, being O_APPEND, continues at the new end. Bytes written between our last read and
   * the copy are read from `.1`; bytes written between the copy and the truncate are lost. That window is
   * a few milliseconds per rotation; renaming the file instead would lose nothing but needs the child to
   * reopen its output, which a running worker cannot be asked to do.
   */
  private async rotate(): Promise<void> {
    if (this.keep > 1) {
      for (let i = this.keep - 2; i >= 1; i--) {
        await rename(`${this.file}.${i}`, `${this.file}.${i + 1}`).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        });
      }
      await copyFile(this.file, `${this.file}.1`);
      await this.readFrom(`${this.file}.1`);
    } else {
      await this.readFrom(this.file);
    }
    await truncate(this.file, 0);
    // The decoder and a pending partial line stay: the child's next bytes continue them.
    this.offset = 0;
  }

  /** Starts over at offset 0 of a new or truncated file: what was pending belongs to the old content. */
  private restart(): void {
    this.offset = 0;
    this.flushPartial();
  }

  private feed(text: string): void {
    const lines: string[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      this.appendPending(text.slice(start, nl));
      lines.push(finishLine(this.pending, this.pendingTruncated));
      this.pending = '';
      this.pendingTruncated = false;
      start = nl + 1;
    }
    this.appendPending(text.slice(start));
    if (this.pending === '') {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    } else {
      this.flushTimer ??= setTimeout(() => {
        this.flushTimer = undefined;
        this.flushPartial(false);
      }, this.partialFlushMs).unref();
    }
    this.push(lines);
  }

  private appendPending(text: string): void {
    if (this.pendingTruncated || text === '') return;
    this.pending += text;
    if (this.pending.length > MAX_LINE_LENGTH) {
      this.pending = cut(this.pending);
      this.pendingTruncated = true;
    }
  }

  /** Emits the partial line as a line of its own; `end` also drains the decoder (no more bytes follow). */
  private flushPartial(end = true): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (end) {
      this.appendPending(this.decoder.end());
      this.decoder = new StringDecoder('utf8');
    }
    if (this.pending === '') return;
    const line = finishLine(this.pending, this.pendingTruncated);
    this.pending = '';
    this.pendingTruncated = false;
    this.push([line]);
  }

  private push(lines: string[], emit = true): void {
    if (lines.length === 0) return;
    // A chunk can hold tens of thousands of lines; only the last ringLines can stay.
    this.ring = this.ring.concat(lines.slice(-this.ringLines));
    if (this.ring.length > this.ringLines) this.ring.splice(0, this.ring.length - this.ringLines);
    if (emit) this.emit('lines', lines);
  }

  private arm(): void {
    try {
      // Not persistent: a log tail must never keep the process alive.
      this.watcher = watch(this.file, { persistent: false }, () => this.kick());
      this.watcher.on('error', () => {
        // Gone or unwatchable: the next poll re-arms once the file can be read again.
        this.disarm();
      });
    } catch (err) {
      this.log.debug(`Cannot watch ${this.file} (${String(err)}); polling only`);
    }
  }

  private disarm(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private warn(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    this.log.once(`worker-log:${this.file}:${code}`, `Reading ${this.file} failed: ${String(err)}`);
  }
}
