/**
 * What the manager finds to build environments with: the interpreter (python.ts chooses it; this checks
 * that it runs and is new enough) and uv (config `worker_manager.uv`, else `uv` on PATH).
 */
import { loadExeca } from './execa-lazy.js';
import { findOnPath } from './python.js';

import type { Env } from '../env.js';

/** FuncNodes needs Python 3.11 or newer. */
export const MIN_PYTHON: readonly [number, number] = [3, 11];

export interface PythonInfo {
  /** What was asked for (a path or a name on PATH). */
  python: string;
  /** `sys.executable`, once it ran. */
  executable?: string;
  version?: string;
  /** Why it cannot be used; absent when it can. */
  problem?: string;
}

async function runPython(python: string, code: string, env: Env, timeout: number) {
  const execa = await loadExeca();
  return execa(python, ['-c', code], { env, extendEnv: false, reject: false, timeout, stdin: 'ignore' });
}

const PROBE = 'import sys; print(sys.executable); print("%d.%d.%d" % sys.version_info[:3])';

/** Runs the interpreter once and checks its version. */
export async function inspectPython(python: string, env: Env): Promise<PythonInfo> {
  const result = await runPython(python, PROBE, env, 30_000);
  if (result.exitCode !== 0) {
    const why = result.failed && result.exitCode === undefined ? result.shortMessage : (result.stderr.trim().split('\n').pop() ?? '');
    return {
      python,
      problem: `Python ${python} does not run (${why || `exit ${String(result.exitCode)}`}). Set FUNCNODES_PYTHON or config worker_manager.python to a Python ${MIN_PYTHON.join('.')} or newer.`,
    };
  }
  const [executable = python, version = ''] = result.stdout.trim().split('\n');
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const tooOld = major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1]);
  return {
    python,
    executable,
    version,
    problem: tooOld
      ? `Python ${python} is ${version}; FuncNodes needs ${MIN_PYTHON.join('.')} or newer. Set FUNCNODES_PYTHON or config worker_manager.python to a newer interpreter.`
      : undefined,
  };
}

/** Whether `import funcnodes` works with this interpreter, and which version it is. */
export async function funcnodesVersion(python: string, env: Env): Promise<{ version?: string; problem?: string }> {
  const code = 'import funcnodes; print(getattr(funcnodes, "__version__", "unknown version"))';
  const result = await runPython(python, code, env, 60_000);
  if (result.exitCode === 0) return { version: result.stdout.trim() };
  return { problem: result.stderr.trim().split('\n').pop() || result.shortMessage };
}

/** uv: the configured executable, never when configured `false`, else `uv` on PATH. */
export function findUv(env: Env, configured: string | false | undefined): string | undefined {
  if (configured === false) return undefined;
  return configured ?? findOnPath(['uv'], env);
}
