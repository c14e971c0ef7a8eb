/**
 * The real FuncNodes for tests: a venv built from the pin file test/real/funcnodes-lock.txt, once per
 * machine, in a cache outside the repo (`$FNWM_TEST_CACHE`, else `$XDG_CACHE_HOME/fnwm-tests`, else
 * `~/.cache/fnwm-tests`), keyed by the pin file and the interpreter. Next to the venv it keeps the
 * wheelhouse it was installed from, so tests install into new venvs offline.
 *
 * Test files run in parallel processes: a lock file lets one build while the others wait. The venv is
 * built where it stays (a venv's scripts name its path, so it cannot be moved) and counts only once its
 * `ready` file exists, which is renamed into place last; a half-built entry is removed and built again.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export const LOCK_FILE = fileURLToPath(new URL('../real/funcnodes-lock.txt', import.meta.url));
const DEFAULT_INDEX = 'https://pypi.org/simple';
/** Part of the cache key: raise it when what a cache entry holds changes. */
const CACHE_FORMAT = 2;

export interface RealFuncnodes {
  /** The cache entry: `venv/`, `wheels/`. */
  dir: string;
  /** The venv's interpreter: `-m funcnodes` is the real FuncNodes. Use it as FUNCNODES_PYTHON. */
  python: string;
  /** uv from the pinned wheel. */
  uv: string;
  /** Every pinned wheel, for offline installs (PIP_FIND_LINKS / UV_FIND_LINKS). */
  wheels: string;
  /** uv's cache for the tests (warm after the first venv). */
  uvCache: string;
  /** Pinned versions by normalised name (`funcnodes-core` → `2.4.0`). */
  versions: Record<string, string>;
}

export interface BuildOptions {
  /** Cache root; default as described above. */
  root?: string;
  /** Interpreter that builds the venv; default `python3`. */
  python?: string;
  lockFile?: string;
  /** Environment of pip (the tests use it to point at an unreachable index). */
  env?: Record<string, string | undefined>;
}

export function cacheRoot(env: Record<string, string | undefined> = process.env): string {
  return env.FNWM_TEST_CACHE ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'fnwm-tests');
}

/** `name==version` lines of the pin file (markers and comments dropped), names normalised. */
export function pinnedVersions(lockText: string): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const line of lockText.split('\n')) {
    const match = /^([A-Za-z0-9._-]+)==([^\s;]+)/.exec(line);
    if (match) versions[match[1].toLowerCase().replace(/[._-]+/g, '-')] = match[2]!;
  }
  return versions;
}

let built: Promise<RealFuncnodes> | undefined;

/** The cached real FuncNodes, built first if needed (once per test process). */
export function realFuncnodes(): Promise<RealFuncnodes> {
  built ??= buildRealFuncnodes();
  return built;
}

export async function buildRealFuncnodes(options: BuildOptions = {}): Promise<RealFuncnodes> {
  const lockFile = options.lockFile ?? LOCK_FILE;
  const lockText = await readFile(lockFile, 'utf8');
  const env = options.env ?? process.env;
  const root = options.root ?? cacheRoot(env);
  const { stdout: pythonId } = await execa(options.python ?? 'python3', ['-c', 'import sys; print(sys.executable); print(sys.version)']);
  const python = pythonId.split('\n')[0];
  const key = createHash('sha256').update(`${CACHE_FORMAT}\0${lockText}\0${pythonId}`).digest('hex').slice(0, 16);
  const dir = path.join(root, `funcnodes-${key}`);
  const entry = (): RealFuncnodes => ({
    dir,
    python: path.join(dir, 'venv', 'bin', 'python'),
    uv: path.join(dir, 'venv', 'bin', 'uv'),
    wheels: path.join(dir, 'wheels'),
    uvCache: path.join(root, 'uv-cache'),
    versions: pinnedVersions(lockText),
  });
  if (await exists(path.join(dir, 'ready'))) return entry();

  await mkdir(root, { recursive: true });
  const release = await acquireLock(path.join(root, `funcnodes-${key}.lock`));
  try {
    if (await exists(path.join(dir, 'ready'))) return entry();
    await rm(dir, { recursive: true, force: true });
    process.stderr.write(`fnwm tests: building the pinned FuncNodes (${path.relative(process.cwd(), lockFile)}) into ${dir}; once per machine, about a minute\n`);
    try {
      await buildInto(dir, lockFile, python, env);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    return entry();
  } finally {
    await release();
  }
}

async function buildInto(dir: string, lockFile: string, python: string, env: Record<string, string | undefined>): Promise<void> {
  const wheels = path.join(dir, 'wheels');
  const venv = path.join(dir, 'venv');
  // The pin file lists every dependency, so --no-deps installs exactly it.
  const download = await execa(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '-r', lockFile, '-d', wheels], {
    env: { PIP_DISABLE_PIP_VERSION_CHECK: '1', ...env },
    extendEnv: false,
    reject: false,
    all: true,
  });
  if (download.exitCode !== 0) {
    const index = env.PIP_INDEX_URL ?? DEFAULT_INDEX;
    const why = download.all.split('\n').filter((line) => /error|could not|failed/i.test(line)).at(-1)?.trim() ?? `exit ${String(download.exitCode)}`;
    throw new Error(`The pinned FuncNodes could not be downloaded from the package index ${index} (pip download -r ${lockFile}): ${why}`);
  }
  // uv resolves for every platform (`uv add`/`uv lock` in a worker's project, also by the real CLI), so
  // the wheelhouse also needs the pinned packages that only other platforms install (colorama on Windows).
  const have = new Set((await readdir(wheels)).map((file) => normalise(file.split('-')[0])));
  let missing = Object.entries(pinnedVersions(await readFile(lockFile, 'utf8'))).filter(([name]) => !have.has(normalise(name)));
  for (const platform of ['win_amd64', 'macosx_11_0_arm64']) {
    if (missing.length === 0) break;
    await execa(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--platform', platform, '--python-version', '3.11', '-d', wheels, ...missing.map(([name, version]) => `${name}==${version}`)], {
      env: { PIP_DISABLE_PIP_VERSION_CHECK: '1', ...env },
      extendEnv: false,
      reject: false,
    });
    const now = new Set((await readdir(wheels)).map((file) => normalise(file.split('-')[0])));
    missing = missing.filter(([name]) => !now.has(normalise(name)));
  }
  await execa(python, ['-m', 'venv', venv]);
  const venvPython = path.join(venv, 'bin', 'python');
  await execa(venvPython, ['-m', 'pip', 'install', '-q', '--no-index', '--no-deps', '--find-links', wheels, '-r', lockFile], {
    env: { PIP_CONFIG_FILE: '/dev/null', PIP_DISABLE_PIP_VERSION_CHECK: '1', PATH: env.PATH },
    extendEnv: false,
  });
  await execa(venvPython, ['-c', 'import funcnodes, funcnodes_worker, funcnodes_react_flow']);
  await writeFile(path.join(dir, 'ready.tmp'), `${new Date().toISOString()}\n`);
  await rename(path.join(dir, 'ready.tmp'), path.join(dir, 'ready'));
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/[._-]+/g, '_');
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock file holding the builder's pid; a lock whose pid is gone is taken over. Waiting polls:
 * the other builder is another process, with nothing to wait on but the file.
 */
async function acquireLock(file: string, timeoutMs = 15 * 60_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
      await rm(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${file} (held by pid ${String(holder)})`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
