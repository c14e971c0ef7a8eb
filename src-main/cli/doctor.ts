/**
 * `fnwm doctor`: what the manager would use (config dir, address, Python, funcnodes, uv, package-index
 * settings) and what is wrong with it. Exit 1 when something prevents creating or starting workers.
 */
import { accessSync, constants } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { probeManager } from '../core/hub/client.js';
import { managerUrl, type ManagerSettings } from '../core/registry/config.js';
import { findUv, funcnodesVersion, inspectPython } from '../core/python-env/discovery.js';
import { checkVenv, repairAdvice } from '../core/python-env/venv-check.js';
import { findManagerPython, resolveEnvPath } from '../core/python-env/python.js';
import type { CliIo } from './io.js';

/** The user's package-index settings, passed to pip/uv untouched. */
const INDEX_VARIABLES = ['PIP_INDEX_URL', 'PIP_EXTRA_INDEX_URL', 'PIP_FIND_LINKS', 'PIP_NO_INDEX', 'UV_INDEX_URL', 'UV_EXTRA_INDEX_URL', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY'];

export async function doctor(settings: ManagerSettings, io: CliIo): Promise<number> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const env = io.env;
  io.out(`config dir   ${settings.configDir}`);
  const url = managerUrl(settings);
  const running = await probeManager(url);
  io.out(`manager      ${url} ${running ? `(running; its Python: ${running.py})` : '(not running)'}`);

  const { python, source } = findManagerPython(env, settings.python);
  const info = await inspectPython(python, env);
  io.out(`python       ${python} (from ${source})${info.version ? `: Python ${info.version} at ${info.executable}` : ''}`);
  if (info.problem) problems.push(info.problem);
  else {
    const funcnodes = await funcnodesVersion(python, env);
    io.out(`funcnodes    ${funcnodes.version ? `imports (version ${funcnodes.version})` : `does not import (${funcnodes.problem})`}`);
    if (!funcnodes.version) {
      warnings.push(`funcnodes does not import with ${python}: workers without their own venv cannot start (workers in a venv are not affected)`);
    }
  }

  const uv = findUv(env, settings.uv);
  if (uv === undefined) io.out(`uv           ${settings.uv === false ? 'disabled (config worker_manager.uv is false)' : 'not found'}: venvs are made with python -m venv and pip`);
  else {
    io.out(`uv           ${uv}${typeof settings.uv === 'string' ? ' (from config worker_manager.uv)' : ''}`);
    try {
      accessSync(uv, constants.X_OK);
    } catch {
      problems.push(`uv ${uv} (config worker_manager.uv) is not an executable file`);
    }
  }
  io.out(`new workers  ${settings.inVenvDefault ? 'in their own venv' : 'without a venv'} by default (FUNCNODES_WORKER_IN_VENV)`);
  const index = INDEX_VARIABLES.filter((name) => env[name] !== undefined && env[name] !== '');
  io.out(`index        ${index.length > 0 ? index.map((name) => `${name}=${env[name]}`).join(' ') : 'pip/uv defaults (and their config files)'}`);

  const configs = await readWorkerJsons(settings.workersDir);
  for (const { file, data } of configs) {
    if (!isObject(data) || !('type' in data)) {
      problems.push(`${file} is not a worker config (a JSON object with "type"): FuncNodes' CLI cannot start any worker while it is there`);
    }
  }
  // Every worker's own venv: its Python there and funcnodes importable.
  for (const { file, data } of configs) {
    if (!isObject(data) || typeof data.env_path !== 'string' || data.env_path === '') continue;
    const uuid = path.basename(file).slice('worker_'.length, -'.json'.length);
    const venv = resolveEnvPath(data.env_path, settings.workersDir);
    const label = `${typeof data.name === 'string' ? data.name : uuid} (${uuid})`;
    const check = await checkVenv(venv, env);
    io.out(`worker env   ${label}: ${check.version ? `${venv}, funcnodes ${check.version}` : `broken: ${check.problem}`}`);
    if (check.problem) problems.push(`worker ${label}: its virtual environment ${venv} is broken: ${check.problem}. ${repairAdvice(python, venv, uuid)}`);
  }

  for (const warning of warnings) io.out(`warning: ${warning}`);
  for (const problem of problems) io.out(`problem: ${problem}`);
  if (problems.length === 0) io.out('ok: workers can be created and started');
  return problems.length === 0 ? 0 : 1;
}

const isObject = (data: unknown): data is Record<string, unknown> => typeof data === 'object' && data !== null && !Array.isArray(data);

/**
 * Every `worker_*.json` that parses as JSON. One that is not an object with `type` breaks FuncNodes' worker
 * lookup (which every `funcnodes worker … start` runs, so every start by this manager too: measured with
 * funcnodes 1.7.1, docs/real-funcnodes.md); the manager skips them.
 */
async function readWorkerJsons(workersDir: string): Promise<{ file: string; data: unknown }[]> {
  const names = await readdir(workersDir).catch(() => [] as string[]);
  const found: { file: string; data: unknown }[] = [];
  for (const name of names.filter((n) => n.startsWith('worker_') && n.endsWith('.json')).sort()) {
    const file = path.join(workersDir, name);
    try {
      found.push({ file, data: JSON.parse(await readFile(file, 'utf8')) as unknown });
    } catch {
      // unreadable or not JSON: FuncNodes skips it too
    }
  }
  return found;
}
