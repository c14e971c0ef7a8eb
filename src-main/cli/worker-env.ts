/**
 * `fnwm worker (--name N | --uuid U) modules|py|pip <args…>`: runs inside the worker's own Python (its
 * venv, else the manager's interpreter), like the Python CLI's `worker modules`/`worker py`. The worker
 * is found from the files, so no manager needs to run; output is streamed and the exit code passed through.
 */
import { constants as osConstants } from 'node:os';
import { existsSync } from 'node:fs';
import type { ManagerSettings } from '../core/registry/config.js';
import { loadExeca } from '../core/python-env/execa-lazy.js';
import { silentLogger } from '../core/logs/log.js';
import type { WorkerConfig } from '../../src-shared/protocol.js';
import { managerPython, workerPython } from '../core/python-env/python.js';
import { Registry } from '../core/registry/registry.js';
import { CliError, pickWorker, type CliIo } from './io.js';

export const ENV_TOOLS = ['modules', 'py', 'pip'] as const;
export type EnvTool = (typeof ENV_TOOLS)[number];

/** Options of fnwm that take a value (so the value is not mistaken for the tool's name). */
const VALUE_OPTIONS = new Set(['--dir', '--host', '--port', '--name', '--uuid', '--reference']);

/**
 * Splits `fnwm … worker … <tool> <args…>` after the tool, so the tool's own options (`pip install -U x`)
 * are not parsed as fnwm's.
 */
export function splitToolArgs(argv: string[]): { own: string[]; toolArgs?: string[] } {
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (VALUE_OPTIONS.has(token)) {
      i++;
      continue;
    }
    if (token.startsWith('-')) continue;
    positionals.push(token);
    if (positionals.length === 2 && positionals[0] === 'worker' && (ENV_TOOLS as readonly string[]).includes(token)) {
      return { own: argv.slice(0, i + 1), toolArgs: argv.slice(i + 1) };
    }
  }
  return { own: argv };
}

/** The readable worker JSONs; with `uuid`, only that one's (if it is there). */
async function readWorkers(workersDir: string, uuid?: string): Promise<WorkerConfig[]> {
  const registry = new Registry(workersDir, silentLogger);
  const { json } = await registry.list();
  const configs: WorkerConfig[] = [];
  for (const id of uuid === undefined ? json : json.filter((u) => u === uuid)) {
    const read = await registry.read(id);
    if (read.ok) configs.push(read.config);
  }
  return configs;
}

export async function runInWorkerEnv(
  settings: ManagerSettings,
  io: CliIo,
  by: { uuid?: string; name?: string },
  tool: EnvTool,
  toolArgs: string[],
): Promise<number> {
  const worker = pickWorker(await readWorkers(settings.workersDir, by.uuid), by);
  const python = workerPython(worker, settings.workersDir, managerPython(io.env, settings.python));
  if (worker.env_path && !existsSync(python)) {
    throw new CliError(`The virtual environment of worker ${worker.uuid} is broken: ${python} is missing`);
  }
  // As the Python CLI's `worker py`, a leading `--` is dropped.
  const rest = toolArgs[0] === '--' ? toolArgs.slice(1) : toolArgs;
  const args = { modules: ['-m', 'funcnodes', 'modules', ...rest], py: rest, pip: ['-m', 'pip', ...rest] }[tool];
  const execa = await loadExeca();
  const result = await execa(python, args, { env: io.env, extendEnv: false, stdio: 'inherit', reject: false });
  if (result.exitCode !== undefined) return result.exitCode;
  if (result.signal) return 128 + (osConstants.signals[result.signal] ?? 0);
  throw new CliError(`Could not run ${python}: ${result.shortMessage}`);
}
