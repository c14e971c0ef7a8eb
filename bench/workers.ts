/**
 * Workers for the benchmark: JSON files written straight to disk (no process needed) and the stand-in
 * worker's own boot time, measured without any manager so it can be subtracted from activation.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeWorker } from '../src-main/core/supervisor/liveness.js';
import type { WorkerConfig } from '../src-shared/protocol.js';
import { terminateTree } from '../src-main/core/supervisor/process-tree.js';

export const newUuid = (): string => randomUUID().replaceAll('-', '');

/**
 * The pid a stopped worker leaves in its JSON, but one no process can have: Linux hands out pids below
 * pid_max. Any manager then finds it dead at once, as for a real inactive worker; with `pid: null` the
 * original would probe every such worker over the network (spec §6.2).
 */
const DEAD_PID = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());

/** A worker JSON as the worker library writes it (spec §2.4) after the worker ran once and stopped; no upgrades. */
export function workerJson(uuid: string, port: number): WorkerConfig {
  return {
    type: 'WSWorker',
    uuid,
    name: `bench-${uuid.slice(0, 8)}`,
    data_path: null,
    env_path: null,
    worker_dependencies: {},
    package_dependencies: {},
    pid: DEAD_PID,
    update_on_startup: { funcnodes: false, 'funcnodes-core': false, 'funcnodes-worker': false },
    host: '127.0.0.1',
    port,
    ssl: false,
  };
}

export function workerFile(workersDir: string, uuid: string): string {
  return path.join(workersDir, `worker_${uuid}.json`);
}

/** Temp file and rename, as the worker library writes (a watcher never sees half a JSON). */
export async function writeWorkerAtomic(workersDir: string, config: WorkerConfig): Promise<void> {
  const file = workerFile(workersDir, config.uuid);
  await writeFile(`${file}.tmp`, JSON.stringify(config, null, 2));
  await rename(`${file}.tmp`, file);
}

/** `count` workers; `portOf(i)` is the port written into worker i. Returns their uuids in order. */
export async function writeWorkers(workersDir: string, count: number, portOf: (i: number) => number): Promise<string[]> {
  await mkdir(workersDir, { recursive: true });
  const uuids = Array.from({ length: count }, newUuid);
  for (let i = 0; i < count; i += 256) {
    await Promise.all(uuids.slice(i, i + 256).map((uuid, j) => writeFile(workerFile(workersDir, uuid), JSON.stringify(workerJson(uuid, portOf(i + j)), null, 2))));
  }
  return uuids;
}

/**
 * Spawn of the stand-in (the manager's start command line, spec §4.4) → its first correct answer to the
 * uuid probe on its port, in ms. The worker is stopped (SIGTERM to its group, then SIGKILL) before return.
 */
export async function standinBootMs(python: string, configDir: string, port: number): Promise<number> {
  const uuid = newUuid();
  const workersDir = path.join(configDir, 'workers');
  await mkdir(workersDir, { recursive: true });
  await writeWorkerAtomic(workersDir, workerJson(uuid, port));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FUNCNODES_CONFIG_DIR: configDir,
    USE_SUBPROCESS_MONITOR: '0',
    FUNCNODES_WS_WORKER_STARTPORT: String(port),
    FUNCNODES_WS_WORKER_ENDPORT: String(port + 20),
  };
  delete env.FUNCNODES_STANDIN;
  const started = performance.now();
  const child = spawn(python, ['-m', 'funcnodes', '--dir', configDir, 'worker', '--uuid', uuid, 'start'], { env, stdio: 'ignore', detached: true });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  }).then(() => {
    exited = true;
  });
  try {
    const config = { type: 'WSWorker', uuid, host: '127.0.0.1', port, ssl: false };
    for (;;) {
      if ((await probeWorker(config, 1000)) === 'match') return performance.now() - started;
      if (exited) throw new Error(`The worker ${python} exited before it answered on port ${port}`);
      if (performance.now() - started > 60_000) throw new Error(`The worker ${python} did not answer on port ${port} within 60 s`);
      await sleep(2);
    }
  } finally {
    if (child.pid !== undefined && !exited) await terminateTree(child.pid, 5000);
    await exit;
  }
}
