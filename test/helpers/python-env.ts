/**
 * Offline Python packaging for the venv tests: a wheelhouse of small local wheels (a `funcnodes` that is
 * the stand-in worker, `funcnodes-core`, `funcnodes-worker` and two dependencies, in chosen versions),
 * an environment that keeps pip away from this machine's configured indexes, and a reader of what is
 * installed in a venv.
 */
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const here = path.dirname(fileURLToPath(import.meta.url));
const STANDIN_PACKAGE = path.join(here, '..', 'standin', 'funcnodes');
const STANDIN_WORKER_MODULE = path.join(here, '..', 'standin', 'funcnodes_worker', 'worker.py');
/** Records its argv and cwd, and makes the venv steps real (test/standin-uv/uv). */
export const standinUv = path.join(here, '..', 'standin-uv', 'uv');

export const DEPENDENCIES = ['fn-dep-a', 'fn-dep-b'] as const;

/** Builds every test package at each of `versions` into `dir` (existing wheels stay). */
export async function buildWheels(dir: string, versions: string[]): Promise<void> {
  const standinFiles: Record<string, string> = {};
  for (const name of await readdir(STANDIN_PACKAGE)) {
    if (name.endsWith('.py')) standinFiles[`funcnodes/${name}`] = await readFile(path.join(STANDIN_PACKAGE, name), 'utf8');
  }
  const workerModule = await readFile(STANDIN_WORKER_MODULE, 'utf8');
  // `python -m uv` in a venv is the stand-in uv, as FuncNodes depends on uv (the CLI's in-worker upgrade runs it).
  const uvMain = `import os, sys\nos.execv(${JSON.stringify(standinUv)}, [${JSON.stringify(standinUv)}, *sys.argv[1:]])\n`;
  const specs = versions.flatMap((version) => [
    { name: 'funcnodes', version, requires: ['funcnodes-core', 'funcnodes-worker', 'uv'], files: standinFiles },
    { name: 'funcnodes-core', version, files: { 'funcnodes_core/__init__.py': `__version__ = "${version}"\n` } },
    {
      name: 'funcnodes-worker',
      version,
      files: { 'funcnodes_worker/__init__.py': `__version__ = "${version}"\n`, 'funcnodes_worker/worker.py': workerModule },
    },
    { name: 'uv', version: '0.0.0', files: { 'uv/__init__.py': '', 'uv/__main__.py': uvMain } },
    ...DEPENDENCIES.map((name) => ({ name, version, files: { [`${name.replaceAll('-', '_')}/__init__.py`]: `__version__ = "${version}"\n` } })),
  ]);
  await execa('python3', [path.join(here, 'make_wheels.py'), dir], { input: JSON.stringify(specs) });
}

/**
 * pip with only `wheelhouse`: no config files (this machine's /etc/pip.conf names local indexes), no
 * index, none of the inherited PIP_* variables. A test that passes with this proves offline behaviour.
 */
export function offlinePip(wheelhouse: string, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('PIP_') || key.startsWith('UV_')) env[key] = undefined;
  return { ...env, PIP_CONFIG_FILE: '/dev/null', PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheelhouse, PIP_DISABLE_PIP_VERSION_CHECK: '1', ...extra };
}

/** Distribution name → version, as installed in the venv of `python`. */
export async function installedVersions(python: string): Promise<Record<string, string>> {
  const code = 'import importlib.metadata as m, json; print(json.dumps({d.metadata["Name"]: d.version for d in m.distributions()}))';
  const { stdout } = await execa(python, ['-c', code], { extendEnv: false, env: { PATH: process.env.PATH } });
  return JSON.parse(stdout) as Record<string, string>;
}

/** A "Python" that runs and reports itself as 3.9.2 (too old for FuncNodes). */
export async function writeOldPython(dir: string): Promise<string> {
  const file = path.join(dir, 'python-old');
  await writeFile(file, '#!/bin/sh\necho /usr/bin/python3.9\necho 3.9.2\n');
  await chmod(file, 0o755);
  return file;
}

/** The calls the stand-in uv recorded: one `{cwd, argv}` per line. */
export async function readUvCalls(log: string): Promise<{ cwd: string; argv: string[] }[]> {
  return (await readFile(log, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { cwd: string; argv: string[] });
}
