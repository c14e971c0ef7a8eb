/**
 * Which Python runs a worker: `<env_path>/bin/python` for a worker with a venv, otherwise the manager's
 * interpreter: `FUNCNODES_PYTHON`, config `worker_manager.python`, then `python3`/`python` on PATH (and the
 * `py` launcher on Windows). The same interpreter creates the workers' venvs.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { WorkerConfig } from '../../../src-shared/protocol.js';

import type { Env } from '../env.js';

export function findOnPath(names: string[], env: Env): string | undefined {
  const dirs = (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const exts = process.platform === 'win32' ? ['.exe', ''] : [''];
  for (const name of names) {
    for (const dir of dirs) {
      for (const ext of exts) {
        const candidate = path.join(dir, name + ext);
        try {
          accessSync(candidate, constants.X_OK);
          return candidate;
        } catch {
          // Not here.
        }
      }
    }
  }
  return undefined;
}

/** The interpreter for workers without a venv; `identify` reports it as `py`. */
export function managerPython(env: Env, configured?: string): string {
  return findManagerPython(env, configured).python;
}

/** `managerPython` and where it came from (for `fnwm doctor`). */
export function findManagerPython(env: Env, configured?: string): { python: string; source: 'FUNCNODES_PYTHON' | 'config worker_manager.python' | 'PATH' } {
  if (env.FUNCNODES_PYTHON) return { python: env.FUNCNODES_PYTHON, source: 'FUNCNODES_PYTHON' };
  if (configured) return { python: configured, source: 'config worker_manager.python' };
  // Windows: the `py` launcher when no python.exe is on PATH.
  const names = process.platform === 'win32' ? ['python3', 'python', 'py'] : ['python3', 'python'];
  return { python: findOnPath(names, env) || 'python3', source: 'PATH' };
}

/** A relative `env_path` is resolved against the workers dir, as the original manager does (spec §2.8). */
export function resolveEnvPath(envPath: string, workersDir: string): string {
  return path.resolve(workersDir, envPath);
}

/** The interpreter inside a venv dir. */
export function pythonInVenv(venvDir: string): string {
  return process.platform === 'win32' ? path.join(venvDir, 'Scripts', 'python.exe') : path.join(venvDir, 'bin', 'python');
}

export function venvPython(envPath: string, workersDir: string): string {
  return pythonInVenv(resolveEnvPath(envPath, workersDir));
}

export function workerPython(config: WorkerConfig, workersDir: string, fallback: string): string {
  return typeof config.env_path === 'string' && config.env_path !== '' ? venvPython(config.env_path, workersDir) : fallback;
}
