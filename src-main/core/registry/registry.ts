/**
 * The workers dir as the source of truth (spec §2.3–2.7): tolerant reading, atomic writes, creation and
 * confined deletion. Shared with the Python `funcnodes` CLI, so it never rewrites what it does not own and
 * keeps unknown keys. Knows nothing of processes or sockets.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isValidWorkerId, type NewWorkerOptions, type WorkerConfig } from '../../../src-shared/protocol.js';
import type { Logger } from '../logs/log.js';

export interface WorkerPaths {
  json: string;
  pidFile: string;
  runstate: string;
  dataDir: string;
}

export class InvalidWorkerIdError extends Error {
  constructor(id: string) {
    super(`Invalid worker id ${JSON.stringify(id)}`);
  }
}

/** The only place a worker id becomes a path; everything else goes through it. */
export function workerPaths(workersDir: string, uuid: string): WorkerPaths {
  if (!isValidWorkerId(uuid)) throw new InvalidWorkerIdError(uuid);
  const base = path.join(workersDir, `worker_${uuid}`);
  return { json: `${base}.json`, pidFile: `${base}.p`, runstate: `${base}.runstate`, dataDir: base };
}

/** File name → uuid as the original derives it (text after `worker_`, up to the first dot), if valid. */
export function uuidFromFileName(name: string, ext: '.json' | '.p'): string | undefined {
  if (!name.startsWith('worker_') || !name.endsWith(ext)) return undefined;
  const uuid = name.slice('worker_'.length, name.length - ext.length);
  return isValidWorkerId(uuid) ? uuid : undefined;
}

export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** Atomic write: a temp file in the same dir, then rename; mode 0600 like the original (spec §14.7). */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  // A leading dot keeps the temp file out of every `worker_*` listing, ours and the original's.
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, content, { mode: 0o600 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export const writeJsonAtomic = (file: string, data: unknown) => writeFileAtomic(file, `${JSON.stringify(data, null, 2)}\n`);

/** Largest worker JSON read; a bigger one is skipped (it would be sent in every `worker_status`). */
export const MAX_WORKER_JSON_BYTES = 1024 * 1024;
/** Largest `.p` / `.runstate` read: a pid or a short state, or a command object for the worker's inbox. */
const MAX_SMALL_FILE_BYTES = 64 * 1024;
/** The smallest read buffer: `.p`, `.runstate` and most worker JSONs fit. */
const MIN_READ_BYTES = 8192;
/** Above every platform's pid range (Linux pid_max ≤ 2^22, Windows DWORDs in practice far below). */
const MAX_PID = 2 ** 31 - 1;

/** A file that exists but is not read: not a regular file (a FIFO would block the read), or too large. */
export class RefusedFileError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file} ${reason}`);
  }
}

/**
 * Reads a regular file (symlinks followed) of at most `maxBytes`. O_NONBLOCK makes opening a FIFO return
 * at once instead of waiting for a writer, so fstat can refuse it; the size is checked before reading, and
 * a file that grows meanwhile is still read no further than the cap.
 */
export async function readRegularFile(file: string, maxBytes: number): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new RefusedFileError(file, 'is not a regular file');
    if (st.size > maxBytes) throw new RefusedFileError(file, `is ${st.size} bytes, more than the ${maxBytes} bytes read`);
    // One read for a small file, even one that fstat caught empty between a writer's truncate and write
    // (a `.runstate`): a read in several pieces could mix two versions. One byte more than expected, so a
    // read that fills the buffer knows the file grew.
    let buf = Buffer.alloc(Math.min(Math.max(st.size, MIN_READ_BYTES - 1), maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (length > maxBytes) throw new RefusedFileError(file, `grew past ${maxBytes} bytes while being read`);
        buf = Buffer.concat([buf, Buffer.alloc(Math.min(buf.length, maxBytes + 1 - length))]);
      }
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) return buf.toString('utf8', 0, length);
      length += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/**
 * `.p` content: a decimal pid (surrounding whitespace allowed, as Python's `int()` does), from 1 to
 * MAX_PID; anything else reads as `null`, as in the original (spec §2.5). No sign, exponent, hex or `0`:
 * `process.kill(0)` would signal our own process group.
 */
export function parsePidFile(text: string): number | null {
  const trimmed = text.trim();
  if (!/^\d{1,10}$/.test(trimmed)) return null;
  const pid = Number(trimmed);
  return pid >= 1 && pid <= MAX_PID ? pid : null;
}

/**
 * A `.p` without a pid that a live worker may still own: empty (caught between its truncate and write) or
 * a JSON object (a command left in the worker's inbox, spec §2.5, which the worker replaces with its pid).
 * Anything else no worker wrote.
 */
function mayBeLiveWorkersPidFile(text: string): boolean {
  const trimmed = text.trim();
  if (trimmed === '') return true;
  try {
    const data: unknown = JSON.parse(trimmed);
    return typeof data === 'object' && data !== null && !Array.isArray(data);
  } catch {
    return false;
  }
}

export type ReadResult = { ok: true; config: WorkerConfig } | { ok: false; reason: string };

/** Validates a parsed worker JSON: an object whose `type` and `uuid` are strings and whose uuid matches its file. */
export function validateWorkerJson(data: unknown, uuid: string): ReadResult {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { ok: false, reason: 'is not a JSON object' };
  const cfg = data as Record<string, unknown>;
  if (typeof cfg.type !== 'string') return { ok: false, reason: 'has no string "type"' };
  if (typeof cfg.uuid !== 'string') return { ok: false, reason: 'has no string "uuid"' };
  if (cfg.uuid !== uuid) return { ok: false, reason: `names uuid ${JSON.stringify(cfg.uuid)}, not the one in its file name` };
  if (cfg.type === 'TestWorker') return { ok: false, reason: 'is a TestWorker (the original deletes these; we only skip them)' };
  return { ok: true, config: cfg as WorkerConfig };
}

function slugify(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** The worker library's uuid scheme (spec §2.3): `slug(name)[:16]_<16 hex>`, or 32 hex without a name. */
export function newWorkerUuid(name?: string): string {
  const hex = randomUUID().replaceAll('-', '');
  if (name === undefined) return hex;
  const slug = slugify(name).slice(0, 16);
  return slug === '' ? hex.slice(0, 16) : `${slug}_${hex.slice(0, 16)}`;
}

export interface CreateDefaults {
  /** `FUNCNODES_HOST`, else `localhost` (spec §4.1). */
  host: string;
  /** `FUNCNODES_WS_WORKER_STARTPORT`, else 9382. */
  port: number;
}

export class WorkerExistsError extends Error {}

export class Registry {
  constructor(
    readonly workersDir: string,
    private readonly log: Logger,
  ) {}

  paths(uuid: string): WorkerPaths {
    return workerPaths(this.workersDir, uuid);
  }

  /** Reads one worker JSON; problems are logged once per file content and reported, never thrown. */
  async read(uuid: string): Promise<ReadResult> {
    const file = this.paths(uuid).json;
    let text: string;
    try {
      text = await readRegularFile(file, MAX_WORKER_JSON_BYTES);
    } catch (err) {
      if (err instanceof RefusedFileError) {
        this.log.once(`refused:${file}`, `Skipping ${file}: it ${err.reason}`);
        return { ok: false, reason: err.reason };
      }
      return { ok: false, reason: `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})` };
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      this.log.once(`corrupt:${file}:${text.length}`, `Skipping ${file}: not valid JSON`);
      return { ok: false, reason: 'is not valid JSON' };
    }
    const result = validateWorkerJson(data, uuid);
    if (!result.ok) this.log.once(`invalid:${file}:${result.reason}`, `Skipping ${file}: it ${result.reason}`);
    return result;
  }

  /**
   * The pid in `.p`: `null` when it holds no pid but may belong to a live worker (mid-rewrite, a command);
   * `undefined` when there is no `.p`, or one that no worker wrote (garbage, not a regular file), which is
   * logged once and counts as no `.p`: it says nothing about a process.
   */
  async readPidFile(uuid: string): Promise<number | null | undefined> {
    const file = this.paths(uuid).pidFile;
    let text: string;
    try {
      text = await readRegularFile(file, MAX_SMALL_FILE_BYTES);
    } catch (err) {
      if (err instanceof RefusedFileError) this.log.once(`refused:${file}`, `Ignoring ${file}: it ${err.reason}`);
      return undefined;
    }
    const pid = parsePidFile(text);
    if (pid !== null || mayBeLiveWorkersPidFile(text)) return pid;
    this.log.once(`garbage:${file}:${text.length}`, `Ignoring ${file}: it holds neither a pid nor a command`);
    return undefined;
  }

  async removePidFile(uuid: string): Promise<void> {
    await rm(this.paths(uuid).pidFile, { force: true });
  }

  async readRunstate(uuid: string): Promise<string | undefined> {
    try {
      return await readRegularFile(this.paths(uuid).runstate, MAX_SMALL_FILE_BYTES);
    } catch {
      return undefined;
    }
  }

  /**
   * Valid uuids of `worker_*.json` and `worker_*.p` files; other names are ignored as in the original. A
   * missing dir is created (empty); any other failure to read it (EACCES, EMFILE…) throws: an empty list
   * would tell every client that all workers are gone, where the caller can keep what it knew.
   */
  async list(): Promise<{ json: string[]; pid: Set<string> }> {
    let names: string[];
    try {
      names = await readdir(this.workersDir);
    } catch (err) {
      // Only a missing dir is an empty list; EMFILE, EACCES… are reported, not taken for "no workers".
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(this.workersDir, { recursive: true });
      names = [];
    }
    const json: string[] = [];
    const pid = new Set<string>();
    for (const name of names) {
      const j = uuidFromFileName(name, '.json');
      if (j !== undefined) json.push(j);
      else if (name.endsWith('.json') && name.startsWith('worker_')) this.log.once(`badname:${name}`, `Skipping ${name}: its uuid is not a valid worker id`);
      const p = uuidFromFileName(name, '.p');
      if (p !== undefined) pid.add(p);
    }
    return { json, pid };
  }

  async exists(uuid: string): Promise<boolean> {
    try {
      await lstat(this.paths(uuid).json);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Creates a worker without a venv as the original's files look (spec §4.1 recommendation): the data dir
   * and the JSON, with `pid: null` and no `.p`/`.runstate` left behind. A reference is copied as asked;
   * a reference that does not exist is ignored, as in the original. `prepare` (the venv) runs in the data
   * dir before the JSON is written, so nobody sees a worker that is not ready; if it fails, the data dir
   * it was given is removed again (unless it existed before) and nothing else was written.
   */
  async create(
    options: NewWorkerOptions,
    defaults: CreateDefaults,
    prepare?: (uuid: string, dataDir: string) => Promise<Partial<WorkerConfig>>,
  ): Promise<WorkerConfig> {
    const uuid = options.uuid ?? newWorkerUuid(options.name);
    const paths = this.paths(uuid);
    if (await this.exists(uuid)) throw new WorkerExistsError(`Worker ${uuid} already exists`);
    let packageDependencies: WorkerConfig['package_dependencies'] = {};
    let nodespace: Record<string, unknown> | undefined;
    if (options.reference !== undefined && (options.copyLib || options.copyNS)) {
      const ref = await this.read(options.reference);
      if (!ref.ok) {
        this.log.warn(`new_worker: reference worker ${options.reference} not found; creating without it`);
      } else {
        if (options.copyLib) packageDependencies = structuredClone(ref.config.package_dependencies ?? {});
        if (options.copyNS) nodespace = await this.readReferenceNodespace(options.reference);
      }
    }
    const madeDataDir = (await mkdir(paths.dataDir, { recursive: true })) !== undefined;
    // Until the JSON is written the worker does not exist: any failure removes what was made (a venv).
    try {
      const prepared = await prepare?.(uuid, paths.dataDir);
      if (nodespace !== undefined) await writeJsonAtomic(path.join(paths.dataDir, 'nodespace.json'), nodespace);
      const config: WorkerConfig = {
        type: 'WSWorker',
        uuid,
        name: options.name ?? uuid,
        data_path: null,
        env_path: null,
        worker_dependencies: {},
        package_dependencies: packageDependencies,
        pid: null,
        update_on_startup: { funcnodes: true, 'funcnodes-core': true, 'funcnodes-worker': true },
        // As FuncNodes >= 1.7 writes it; older tools keep the unknown key.
        autostart: options.autostart ?? 'never',
        host: options.host ?? defaults.host,
        port: options.port ?? defaults.port,
        ssl: false,
        ...prepared,
      };
      await writeJsonAtomic(paths.json, config);
      return config;
    } catch (err) {
      if (madeDataDir) await this.removeDir(paths.dataDir);
      throw err;
    }
  }

  /** The reference's nodespace without its `meta` (the new worker gets its own id); absent → none. */
  private async readReferenceNodespace(reference: string): Promise<Record<string, unknown> | undefined> {
    const file = path.join(this.paths(reference).dataDir, 'nodespace.json');
    try {
      // No size cap: a nodespace is as large as its graph; only a FIFO or device is refused.
      const data: unknown = JSON.parse(await readRegularFile(file, Number.MAX_SAFE_INTEGER));
      if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
      const { meta: _meta, ...rest } = data as Record<string, unknown>;
      return rest;
    } catch {
      this.log.warn(`new_worker: reference ${reference} has no readable nodespace.json; nothing copied`);
      return undefined;
    }
  }

  /** Where the worker keeps its data (and its `worker.log`): `data_path` when set, else `worker_<uuid>/`. */
  dataDir(config: WorkerConfig): string {
    const custom = config.data_path;
    return typeof custom === 'string' && custom !== '' ? path.resolve(this.workersDir, custom) : this.paths(config.uuid).dataDir;
  }

  /**
   * Removes a worker's files and data dir (spec §4.8) without ever leaving the workers dir: the default
   * data dir always goes; a custom `data_path` only when it lies strictly inside the workers dir and is not
   * another worker's. A symlinked data dir loses the link, never its target. An `env_path` outside the data
   * dir is kept (it may be shared). The data comes first and the JSON last: a removal that fails throws
   * with the cause and leaves the JSON, so the worker is still listed and the delete can be tried again.
   */
  async remove(uuid: string, config: WorkerConfig | undefined): Promise<void> {
    const paths = this.paths(uuid);
    const custom = config?.data_path;
    const dirs = [paths.dataDir];
    if (typeof custom === 'string' && custom !== '') {
      const target = await this.confinedDataDir(uuid, custom);
      if (target === undefined) this.log.warn(`delete ${uuid}: kept data_path ${custom}: it is not a data dir inside ${this.workersDir}`);
      else dirs.push(target);
    }
    for (const dir of dirs) {
      await this.removeDir(dir).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot remove ${dir}: ${err.message}`, { cause: err });
      });
    }
    for (const file of [paths.runstate, paths.pidFile, paths.json]) {
      await unlink(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw new Error(`cannot remove ${file}: ${err.message}`, { cause: err });
      });
    }
  }

  private async confinedDataDir(uuid: string, dataPath: string): Promise<string | undefined> {
    const root = await realpath(this.workersDir);
    const resolved = path.resolve(this.workersDir, dataPath);
    // Resolve the parent's symlinks: a path that only looks inside must not reach outside.
    let parent: string;
    try {
      parent = await realpath(path.dirname(resolved));
    } catch {
      return undefined;
    }
    const target = path.join(parent, path.basename(resolved));
    if (!isInside(root, target)) return undefined;
    const top = path.relative(root, target).split(path.sep)[0] ?? '';
    const owner = top.startsWith('worker_') ? top.slice('worker_'.length) : undefined;
    if (owner !== undefined && owner !== uuid) return undefined;
    return target;
  }

  private async removeDir(dir: string): Promise<void> {
    let stat;
    try {
      stat = await lstat(dir);
    } catch {
      return;
    }
    if (stat.isSymbolicLink()) {
      await unlink(dir);
      return;
    }
    // Retries cover Windows file locks, like the original's 10 × 0.5 s; elsewhere a failure is final at once.
    await rm(dir, { recursive: true, force: true, maxRetries: process.platform === 'win32' ? 10 : 0, retryDelay: 500 });
  }
}
