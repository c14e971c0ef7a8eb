/**
 * Which Python runs a worker: `<env_path>/bin/python` for a worker with a venv, otherwise the manager's
 * interpreter: `FUNCNODES_PYTHON`, config `worker_manager.python`, then `python3`/`python` on PATH.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { WorkerConfig } from './protocol.js';

type Env = Record<string, string | undefined>;

function findOnPath(names: string[], env: Env): string | undefined {
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
  return env.FUNCNODES_PYTHON || configured || findOnPath(['python3', 'python'], env) || 'python3';
}

/** A relative `env_path` is resolved against the workers dir, as the original manager does (spec §2.8). */
export function venvPython(envPath: string, workersDir: string): string {
  const env = path.resolve(workersDir, envPath);
  return process.platform === 'win32' ? path.join(env, 'Scripts', 'python.exe') : path.join(env, 'bin', 'python');
}

export function workerPython(config: WorkerConfig, workersDir: string, fallback: string): string {
  return typeof config.env_path === 'string' && config.env_path !== '' ? venvPython(config.env_path, workersDir) : fallback;
}
