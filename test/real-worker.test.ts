/**
 * The real FuncNodes worker (the pinned, cached venv of test/helpers/real-funcnodes.ts) through the real
 * hub: create, start, the worker answering its uuid, stop, restart, crash detection, adoption of a worker
 * that the real `funcnodes` CLI started, `funcnodes worker list`, and `funcnodes runserver` using our hub.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagerClient } from '../src-main/core/hub/client.js';
import { isPidAlive } from '../src-main/core/supervisor/liveness.js';
import type { WorkerConfig } from '../src-shared/protocol.js';
import { assertCliBuilt, fnwm, show } from './helpers/cli.js';
import { activateWorker, createWorker, deactivateWorker, readUntil, startTestManager, stateWhere, waitFor, type TestManager } from './helpers/manager.js';
import { realFuncnodes, type RealFuncnodes } from './helpers/real-funcnodes.js';
import { freePort, funcnodesCli, realWorkerEnv, spawnFuncnodes, watchStates } from './helpers/real-worker.js';
// A real worker boots and stops slower than the stand-in: 30 s per state.
const REAL_STATE_MS = 30_000;

let fn: RealFuncnodes;
let m: TestManager;
let client: ManagerClient;
let watcher: ManagerClient;

beforeAll(async () => {
  assertCliBuilt();
  fn = await realFuncnodes();
  m = await startTestManager({ env: await realWorkerEnv(fn), timing: { stopMs: 15_000, killGraceMs: 2000 } });
  client = await m.connect();
  watcher = await m.connect();
  await watchStates(watcher);
}, 600_000);
afterAll(async () => {
  await m?.close();
});

const readJson = async (uuid: string) => JSON.parse(await readFile(path.join(m.workersDir, `worker_${uuid}.json`), 'utf8')) as WorkerConfig;

/** Asks a worker for its uuid directly on its own WebSocket (what the manager's probe does). */
async function askUuid(port: number): Promise<unknown> {
  const worker = await ManagerClient.connect(`ws://127.0.0.1:${port}`, 5000);
  try {
    worker.send({ type: 'cmd', cmd: 'uuid', id: 'q1' });
    for (;;) {
      const reply = JSON.parse(await worker.nextText(5000)) as { type?: string; result?: unknown; id?: unknown };
      if (reply.type === 'result' && reply.id === 'q1') return reply.result;
    }
  } finally {
    worker.close();
  }
}

/** The current worker_status, on a fresh connection (a subscribed one has older broadcasts queued). */
async function statusNow(): Promise<{ active: string[]; inactive: string[] }> {
  const probe = await m.connect();
  try {
    probe.send('worker_status');
    const { found } = await readUntil(probe, 'worker_status');
    return { active: found.active.map((w) => w.uuid), inactive: found.inactive.map((w) => w.uuid) };
  } finally {
    probe.close();
  }
}

async function cmdline(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
}

describe('a real FuncNodes worker without a venv', () => {
  let uuid: string;
  let pid: number;
  let port: number;

  it('is created, started with set_worker, and answers its uuid on its own port', async () => {
    uuid = await createWorker(client, m.workersDir, 'real-demo');
    const json = await readJson(uuid);
    expect(json).toMatchObject({ type: 'WSWorker', uuid, name: 'real-demo', env_path: null, port: Number(m.env.FUNCNODES_WS_WORKER_STARTPORT) });

    const started = await activateWorker(client, uuid);
    expect(started.error).toBeUndefined();
    expect(started.data).toMatchObject({ uuid, name: 'real-demo', type: 'WSWorker' });
    pid = started.data!.pid!;
    port = started.data!.port!;
    expect(await askUuid(port)).toBe(uuid);
    // It is the real FuncNodes, run by the cached interpreter with the spec §4.4 command line.
    expect(await cmdline(pid)).toEqual([fn.python, '-m', 'funcnodes', '--dir', m.dir, 'worker', '--uuid', uuid, 'start']);
    expect((await readFile(path.join(m.workersDir, `worker_${uuid}.p`), 'utf8')).trim()).toBe(String(pid));
    expect(await stateWhere(watcher, uuid, (r) => r.state === 'active', REAL_STATE_MS)).toMatchObject({ pid, adopted: false });
  });

  it('`funcnodes worker list` (the real CLI, files only) lists it', async () => {
    const listed = await funcnodesCli(fn, m.dir, ['worker', 'list']);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n')).toContain(`${uuid}\treal-demo`);
  });

  it('stops: the sequence ends only after the process has exited, and it is listed inactive', async () => {
    await deactivateWorker(client, uuid);
    expect(isPidAlive(pid)).toBe(false);
    const status = await statusNow();
    expect(status.inactive).toContain(uuid);
    expect(status.active).not.toContain(uuid);
    const stopped = await stateWhere(watcher, uuid, (r) => r.state === 'inactive', REAL_STATE_MS);
    expect(stopped.exit).toMatchObject({ code: 0, signal: null });
  });

  it('restarts a stopped worker, then a running one (a new process, the old one gone)', async () => {
    client.send({ type: 'restart_worker', workerid: uuid });
    const first = await readUntil(client, 'set_worker', 60_000);
    const pid1 = first.found.data.pid!;
    expect(isPidAlive(pid1)).toBe(true);
    expect(await askUuid(first.found.data.port!)).toBe(uuid);

    client.send({ type: 'restart_worker', workerid: uuid });
    const second = await readUntil(client, 'set_worker', 60_000);
    const pid2 = second.found.data.pid!;
    expect(pid2).not.toBe(pid1);
    expect(isPidAlive(pid1)).toBe(false);
    expect(await askUuid(second.found.data.port!)).toBe(uuid);
    pid = pid2;
  });

  it('a worker killed with SIGKILL is detected as crashed, with the signal', async () => {
    process.kill(pid, 'SIGKILL');
    const crashed = await stateWhere(watcher, uuid, (r) => r.state === 'crashed', REAL_STATE_MS);
    expect(crashed.exit).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect((await statusNow()).inactive).toContain(uuid);
  });
});

describe('a worker the real `funcnodes` CLI started', () => {
  it('is adopted (listed active, stopped by the manager, its exit seen)', async () => {
    const uuid = await createWorker(client, m.workersDir, 'cli-started');
    const cli = spawnFuncnodes(fn, m.dir, ['worker', '--uuid', uuid, 'start'], { FUNCNODES_WS_WORKER_STARTPORT: m.env.FUNCNODES_WS_WORKER_STARTPORT, FUNCNODES_WS_WORKER_ENDPORT: m.env.FUNCNODES_WS_WORKER_ENDPORT });
    try {
      const adopted = await stateWhere(watcher, uuid, (r) => r.state === 'active', 60_000);
      expect(adopted).toMatchObject({ adopted: true, pid: cli.child.pid });
      expect((await statusNow()).active).toContain(uuid);

      await deactivateWorker(client, uuid);
      expect(await cli.exited).toBe(0);
      await stateWhere(watcher, uuid, (r) => r.state === 'inactive', REAL_STATE_MS);
    } finally {
      cli.child.kill('SIGKILL');
    }
  });
});

describe('a JSON array in the workers dir', () => {
  it('makes every real worker start fail (its CLI lookup reads all JSONs); the manager logs the exit, the worker\'s log has why', async () => {
    const uuid = await createWorker(client, m.workersDir, 'next-to-array');
    const array = path.join(m.workersDir, 'worker_array.json');
    await writeFile(array, '[1, 2]');
    try {
      // `fnwm doctor` names the file as the problem.
      const env = Object.fromEntries(Object.entries({ ...process.env, ...m.env }).filter(([key, value]) => value !== undefined && key !== 'FUNCNODES_CONFIG_DIR'));
      const doctor = await fnwm(['--dir', m.dir, 'doctor'], env);
      expect(doctor.exitCode, show(doctor)).toBe(1);
      expect(doctor.stdout).toContain(`problem: ${array} is not a worker config (a JSON object with "type"): FuncNodes' CLI cannot start any worker while it is there`);
      const logBefore = (await readFile(path.join(m.workersDir, `worker_${uuid}`, 'worker.log'), 'utf8').catch(() => '')).length;
      const started = await activateWorker(client, uuid);
      // The original's sentence, then why: the exit, the worker's last words, and the file to blame.
      expect(started.error).toMatch(new RegExp(`^Could not activate worker with id ${uuid}\\. The worker process exited during start \\(code 1\\)\\. Its last output: `));
      expect(started.error).toContain('TypeError: list indices must be integers or slices, not str');
      expect(started.error).toContain('worker_array.json is not a JSON object');
      const output = (await readFile(path.join(m.workersDir, `worker_${uuid}`, 'worker.log'), 'utf8')).slice(logBefore);
      expect(output).toContain('TypeError: list indices must be integers or slices, not str');
    } finally {
      await rm(array);
    }
    // Gone again, the worker starts.
    expect((await activateWorker(client, uuid)).error).toBeUndefined();
    await deactivateWorker(client, uuid);
  });
});

describe('`funcnodes runserver --worker_manager_port P`', () => {
  it('uses our hub on P (ping + identify) and starts no manager of its own', async () => {
    const hubPort = Number(new URL(m.url).port);
    const uiPort = await freePort();
    const server = spawnFuncnodes(fn, m.dir, ['runserver', '--no-browser', '--port', String(uiPort), '--host', '127.0.0.1', '--worker_manager_host', '127.0.0.1', '--worker_manager_port', String(hubPort)]);
    try {
      let text = '';
      await waitFor(
        async () => {
          const response = await fetch(`http://127.0.0.1:${uiPort}/worker_manager`).catch(() => undefined);
          if (!response) return false;
          text = await response.text();
          return true;
        },
        60_000,
        'runserver to answer /worker_manager',
      );
      // /worker_manager answers only after `ping` and `identify` on P succeeded (spec §7), else it fails
      // with a 500 after spawning managers; P is our hub's, so our hub answered them …
      expect(text).toBe(`ws://127.0.0.1:${hubPort}`);
      // … and it spawned no `startworkermanager` (which would be its child).
      const children = (await readFile(`/proc/${server.child.pid}/task/${server.child.pid}/children`, 'utf8')).trim();
      expect(children).toBe('');
      // The UI page comes from the pinned funcnodes-react-flow.
      const index = await (await fetch(`http://127.0.0.1:${uiPort}/`)).text();
      expect(index).toContain('FN_WORKER_PORT');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
