/**
 * Pure derivations from hub state to what the worker list shows: one item per known worker, its state,
 * address and environment, the search filter, and new-worker form validation.
 */
import { workerUrl, type NewWorkerOptions, type WorkerConfig, type WorkerRuntime, type WorkerState } from '../../src-shared/protocol.js';
import type { HubState } from './hub-state.js';

export interface WorkerItem {
  uuid: string;
  /** From `worker_status` (undefined for a worker only `worker_states` knows so far). */
  config: WorkerConfig | undefined;
  runtime: WorkerRuntime | undefined;
  /** Listed as active by `worker_status`. */
  listedActive: boolean;
}

export const WORKER_STATES: readonly WorkerState[] = ['active', 'starting', 'stopping', 'crashed', 'inactive'];

export function workerItems(state: Pick<HubState, 'active' | 'inactive' | 'runtime'>): WorkerItem[] {
  const items = new Map<string, WorkerItem>();
  for (const config of state.active ?? []) items.set(config.uuid, { uuid: config.uuid, config, runtime: state.runtime[config.uuid], listedActive: true });
  for (const config of state.inactive) {
    if (!items.has(config.uuid)) items.set(config.uuid, { uuid: config.uuid, config, runtime: state.runtime[config.uuid], listedActive: false });
  }
  for (const runtime of Object.values(state.runtime)) {
    if (!items.has(runtime.uuid)) items.set(runtime.uuid, { uuid: runtime.uuid, config: undefined, runtime, listedActive: false });
  }
  // By name, not by state: a row must not jump away from the pointer when its worker starts.
  return [...items.values()].sort((a, b) => collator.compare(displayName(a), displayName(b)) || a.uuid.localeCompare(b.uuid));
}

const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });

/** The richer supervisor state when the manager offers it, else what the original's lists say. */
export function workerState(item: Pick<WorkerItem, 'runtime' | 'listedActive'>): WorkerState {
  return item.runtime?.state ?? (item.listedActive ? 'active' : 'inactive');
}

export function displayName(item: Pick<WorkerItem, 'uuid' | 'config' | 'runtime'>): string {
  return item.config?.name || item.runtime?.name || item.uuid;
}

export function workerPid(item: Pick<WorkerItem, 'config' | 'runtime'>): number | null {
  return item.runtime?.pid ?? item.config?.pid ?? null;
}

export type StateFilter = WorkerState | 'all';

export function filterItems(items: WorkerItem[], query: string, state: StateFilter): WorkerItem[] {
  const q = query.trim().toLowerCase();
  return items.filter(
    (item) =>
      (state === 'all' || workerState(item) === state) &&
      (q === '' || displayName(item).toLowerCase().includes(q) || item.uuid.toLowerCase().includes(q)),
  );
}

/** The address a browser dials (wildcard binds become 127.0.0.1, IPv6 literals get brackets). */
export function workerAddress(config: WorkerConfig | undefined): string | null {
  return (config && workerUrl(config)) ?? null;
}

export function hostPort(config: WorkerConfig | undefined): string {
  return workerAddress(config)?.replace(/^wss?:\/\//, '') ?? '–';
}

export function envLabel(config: WorkerConfig | undefined): string {
  return config?.env_path || 'system Python';
}

export interface NewWorkerInput {
  name: string;
  inVenv: boolean;
  /** A uuid, or "" for none. */
  reference: string;
  copyLib: boolean;
  copyNS: boolean;
}

export type NewWorkerFieldErrors = Partial<Record<'name' | 'reference', string>>;

export const MAX_NAME_LENGTH = 100;

/** Either the options to send or the message for each invalid field. */
export function validateNewWorker(
  input: NewWorkerInput,
  existing: WorkerItem[],
): { ok: true; options: NewWorkerOptions } | { ok: false; errors: NewWorkerFieldErrors } {
  const errors: NewWorkerFieldErrors = {};
  const name = input.name.trim();
  if (name === '') errors.name = 'Enter a name.';
  else if (name.length > MAX_NAME_LENGTH) errors.name = `Use at most ${MAX_NAME_LENGTH} characters.`;
  // Names address workers in `fnwm worker --name`, so a second one of the same name would be ambiguous.
  else if (existing.some((item) => displayName(item).toLowerCase() === name.toLowerCase())) errors.name = `A worker named "${name}" already exists.`;
  if (input.reference !== '' && !existing.some((item) => item.uuid === input.reference)) errors.reference = 'That worker no longer exists.';
  if (errors.name !== undefined || errors.reference !== undefined) return { ok: false, errors };
  const withReference = input.reference !== '';
  return {
    ok: true,
    options: {
      name,
      ...(withReference ? { reference: input.reference } : {}),
      copyLib: withReference && input.copyLib,
      copyNS: withReference && input.copyNS,
      in_venv: input.inVenv,
    },
  };
}
