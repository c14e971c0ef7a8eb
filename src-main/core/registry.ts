/**
 * The workers dir as the source of truth (spec §2.3–2.7): tolerant reading, atomic writes, creation and
 * confined deletion. Shared with the Python `funcnodes` CLI, so it never rewrites what it does not own and
 * keeps unknown keys. Knows nothing of processes or sockets.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, realpath, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isValidWorkerId, type NewWorkerOptions, type WorkerConfig } from './protocol.js';
import type { Logger } from './log.js';

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

/** `.p` content: decimal pid; anything else reads as `null`, as in the original (spec §2.5). */
export function parsePidFile(text: string): number | null {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : null;
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
      text = await readFile(file, 'utf8');
    } catch (err) {
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

  /** The pid in `.p`: `undefined` when there is no `.p`, `null` when it holds no pid. */
  async readPidFile(uuid: string): Promise<number | null | undefined> {
    try {
      return parsePidFile(await readFile(this.paths(uuid).pidFile, 'utf8'));
    } catch {
      return undefined;
    }
  }

  async removePidFile(uuid: string): Promise<void> {
    await rm(this.paths(uuid).pidFile, { force: true });
  }

  async readRunstate(uuid: string): Promise<string | undefined> {
    try {
      return await readFile(this.paths(uuid).runstate, 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Valid uuids of `worker_*.json` and `worker_*.p` files; other names are ignored as in the original. */
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
      const data: unknown = JSON.parse(await readFile(file, 'utf8'));
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
   * dir is kept (it may be shared).
   */
  async remove(uuid: string, config: WorkerConfig | undefined): Promise<void> {
    const paths = this.paths(uuid);
    for (const file of [paths.pidFile, paths.runstate, paths.json]) {
      await unlink(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') this.log.warn(`delete ${uuid}: cannot remove ${file}: ${err.message}`);
      });
    }
    await this.removeDir(paths.dataDir);
    const custom = config?.data_path;
    if (typeof custom === 'string' && custom !== '') {
      const target = await this.confinedDataDir(uuid, custom);
      if (target === undefined) this.log.warn(`delete ${uuid}: kept data_path ${custom}: it is not a data dir inside ${this.workersDir}`);
      else await this.removeDir(target);
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
    // Retries cover Windows file locks, like the original's 10 × 0.5 s.
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 500 });
  }
}
