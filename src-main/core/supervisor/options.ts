/**
 * A worker's supervision options (restart policy, autostart), stored in its JSON under the additive key
 * `workermanager`: the Python tools keep unknown keys when they rewrite the file, so the options survive.
 */
import type { WorkerConfig } from '../protocol.js';
import { writeJsonAtomic, type Registry } from '../registry.js';
import { DEFAULT_OPTIONS, RESTART_POLICIES, type RestartPolicy, type WorkerOptions } from './machine.js';

export const OPTIONS_KEY = 'workermanager';

const isPolicy = (value: unknown): value is RestartPolicy => RESTART_POLICIES.includes(value as RestartPolicy);

/** The options in a worker JSON; missing or invalid values are the defaults. */
export function readWorkerOptions(config: WorkerConfig): WorkerOptions {
  const stored: unknown = config[OPTIONS_KEY];
  const own = typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown>) : {};
  return {
    restart: isPolicy(own.restart) ? own.restart : DEFAULT_OPTIONS.restart,
    autostart: typeof own.autostart === 'boolean' ? own.autostart : DEFAULT_OPTIONS.autostart,
  };
}

/** Writes the changed options into the worker JSON (other keys untouched); returns the options now in force. */
export async function writeWorkerOptions(registry: Registry, uuid: string, patch: Partial<WorkerOptions>): Promise<WorkerOptions> {
  const read = await registry.read(uuid);
  if (!read.ok) throw new Error(`its JSON ${read.reason}`);
  const options = { ...readWorkerOptions(read.config), ...patch };
  const stored: unknown = read.config[OPTIONS_KEY];
  const kept = typeof stored === 'object' && stored !== null ? stored : {};
  await writeJsonAtomic(registry.paths(uuid).json, { ...read.config, [OPTIONS_KEY]: { ...kept, ...options } });
  return options;
}
