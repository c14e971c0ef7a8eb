/**
 * What every CLI command shares: its output and environment, its error type, and the lookup of a worker
 * by `--uuid`/`--name`.
 */
import type { WorkerConfig, WorkerStatusMessage } from '../../src-shared/protocol.js';

/** A failure the CLI reports as its message alone (exit code 1), without a stack. */
export class CliError extends Error {}

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** This CLI's script, for starting a manager in the background. */
  cliScript: string;
  env: Record<string, string | undefined>;
}

export function allWorkers(status: WorkerStatusMessage): WorkerConfig[] {
  return [...status.active, ...status.inactive];
}

/** Lookup as the original CLI (spec §10 C2): by uuid, by name (first match), or both, which must agree. */
export function findWorker(status: WorkerStatusMessage, by: { uuid?: string; name?: string }): WorkerConfig {
  return pickWorker(allWorkers(status), by);
}

/** The worker `--uuid`/`--name` name among `workers` (both must match when both are given). */
export function pickWorker(workers: WorkerConfig[], by: { uuid?: string; name?: string }): WorkerConfig {
  if (by.uuid === undefined && by.name === undefined) throw new CliError('Give the worker with --uuid or --name');
  if (by.uuid !== undefined) {
    const found = workers.find((w) => w.uuid === by.uuid);
    if (!found) throw new CliError(`No worker with uuid ${by.uuid}`);
    if (by.name !== undefined && found.name !== by.name) throw new CliError(`Worker ${by.uuid} is named ${String(found.name)}, not ${by.name}`);
    return found;
  }
  const found = workers.find((w) => w.name === by.name);
  if (!found) throw new CliError(`No worker named ${String(by.name)}`);
  return found;
}
