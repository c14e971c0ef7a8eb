/** Worker JSONs and runtime states for the renderer's unit tests. */
import type { WorkerConfig, WorkerRuntime } from '../../src-shared/protocol.js';

export const config = (uuid: string, extra: Partial<WorkerConfig> = {}): WorkerConfig => ({
  type: 'WSWorker',
  uuid,
  name: uuid,
  host: 'localhost',
  port: 9400,
  ...extra,
});

export const runtime = (uuid: string, extra: Partial<WorkerRuntime> = {}): WorkerRuntime => ({
  uuid,
  name: uuid,
  state: 'active',
  pid: 42,
  started_at: 1000,
  adopted: false,
  exit: null,
  error: null,
  last_lines: [],
  phase: 'active',
  restart: 'on-failure',
  autostart: 'never',
  restart_at: null,
  ...extra,
});
