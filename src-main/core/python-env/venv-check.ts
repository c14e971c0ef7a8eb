/**
 * Whether a worker's venv can run it, and the words to repair it: one text for the start's error and for
 * `fnwm doctor`.
 */
import { stat } from 'node:fs/promises';
import { pythonInVenv } from './python.js';
import { funcnodesVersion } from './discovery.js';

type Env = Record<string, string | undefined>;

/** How to rebuild a broken venv in place; `creator` is the interpreter that makes venvs. */
export function repairAdvice(creator: string, venvDir: string, uuid: string): string {
  return `Repair it ("${creator} -m venv ${venvDir}", then "fnwm worker --uuid ${uuid} pip install funcnodes") or create the worker again.`;
}

/** The venv's Python, or why there is none. */
export async function venvPythonProblem(venvDir: string): Promise<{ python: string; problem?: string }> {
  const python = pythonInVenv(venvDir);
  const ok = await stat(python).then(
    (s) => s.isFile(),
    () => false,
  );
  return ok ? { python } : { python, problem: `${python} is missing` };
}

/** The venv's Python present and `funcnodes` importable there (with its version), else the problem. */
export async function checkVenv(venvDir: string, env: Env): Promise<{ version?: string; problem?: string }> {
  const { python, problem } = await venvPythonProblem(venvDir);
  if (problem) return { problem };
  const funcnodes = await funcnodesVersion(python, env);
  return funcnodes.version ? { version: funcnodes.version } : { problem: `funcnodes does not import with ${python} (${funcnodes.problem})` };
}
