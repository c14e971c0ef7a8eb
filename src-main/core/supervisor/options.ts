/**
 * A worker's supervision options. The restart policy is ours, stored under the additive key `workermanager`
 * (the Python tools keep unknown keys when they rewrite the file). Autostart is FuncNodes' own top-level
 * `autostart` key (FuncNodes >= 1.7), so a policy set with `funcnodes worker new --autostart` or by its Python
 * manager means the same here, and ours means the same there.
 */
import { normalizeAutostart, type WorkerConfig } from '../../../src-shared/protocol.js';
import { writeJsonAtomic, type Registry } from '../registry/registry.js';
import { DEFAULT_OPTIONS, RESTART_POLICIES, type RestartPolicy, type WorkerOptions } from './machine.js';

export const OPTIONS_KEY = 'workermanager';

const isPolicy = (value: unknown): value is RestartPolicy => RESTART_POLICIES.includes(value as RestartPolicy);

function ownKeys(config: WorkerConfig): Record<string, unknown> {
  const stored: unknown = config[OPTIONS_KEY];
  return typeof stored === 'object' && stored !== null && !Array.isArray(stored) ? (stored as Record<string, unknown>) : {};
}

/** The options in a worker JSON; missing or invalid values are the defaults (an invalid autostart is `never`). */
export function readWorkerOptions(config: WorkerConfig): WorkerOptions {
  const own = ownKeys(config);
  return {
    restart: isPolicy(own.restart) ? own.restart : DEFAULT_OPTIONS.restart,
    autostart: normalizeAutostart(config.autostart) ?? DEFAULT_OPTIONS.autostart,
  };
}

/** Writes the changed options into the worker JSON (other keys untouched); returns the options now in force. */
export async function writeWorkerOptions(registry: Registry, uuid: string, patch: Partial<WorkerOptions>): Promise<WorkerOptions> {
  const read = await registry.read(uuid);
  if (!read.ok) throw new Error(`its JSON ${read.reason}`);
  const options = { ...readWorkerOptions(read.config), ...patch };
  await writeJsonAtomic(registry.paths(uuid).json, {
    ...read.config,
    autostart: options.autostart,
    [OPTIONS_KEY]: { ...ownKeys(read.config), restart: options.restart },
  });
  return options;
}
