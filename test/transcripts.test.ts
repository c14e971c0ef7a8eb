/**
 * Replays the message sequences recorded from the ORIGINAL Python Workermanager
 * (../shared/spec/transcripts, see its README) against our running hub, and checks that we answer with the
 * same message types, in the same order, with the same shapes: type, the progress tuple, error texts and
 * key sets; uuids are mapped, pids, ports, paths and timing are ignored (test/helpers/transcripts.ts).
 *
 * Where we differ on purpose, the expectation is derived from the recording through the table DEVIATIONS
 * below; nothing else may differ. Worker processes are the stand-in (test/standin), spawned by our manager
 * through FUNCNODES_PYTHON, or by the test itself where the recording used the Python CLI.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ManagerClient } from '../src-main/core/hub/client.js';
import { isPidAlive } from '../src-main/core/supervisor/liveness.js';
import { collect, createWorker, killWorkers, makeTempDir, readUntil, startTestManager, waitFor, type TestManager, type TestManagerOptions } from './helpers/manager.js';
import { spawnStandin, standinArgs, standinEnv, workerPaths, type StandinProcess } from './helpers/standin.js';
import {
  expectShapes,
  framesOf,
  IdMap,
  isReset,
  isRunstateFrame,
  isStatus,
  loadConnTranscript,
  loadSnapshots,
  loadUiTranscript,
  persistentFiles,
  progressShape,
  readReply,
  recordedBinary,
  START_RUNSTATES,
  replayItems,
  RESET_SHAPE,
  RUNSTATES,
  seedWorkersDir,
  snapshotPersistentFiles,
  toFrame,
  type ConnRecord,
  type Frame,
  type Loose,
  type Pattern,
  type Snapshot,
  type Step,
} from './helpers/transcripts.js';

// ---------------------------------------------------------------- intended deviations

/**
 * Where our hub answers differently from the recorded original, on purpose. `expectedReply` turns a recorded
 * reply into ours by applying these (each use is marked with its key); the tests check the rest.
 */
const DEVIATIONS = {
  D1: {
    spec: '§6.3, §11.16',
    original: 'broadcasts worker_status (and new_worker progress) to every connection, about every 10 s even without changes',
    ours: 'only to connections that sent `worker_status`, and only when the lists change; an idle connection gets nothing',
  },
  D2: {
    spec: '§3.7',
    original: 'stays silent on invalid JSON requests (not an object, no or unknown `type`, missing or invalid `workerid`)',
    ours: 'answers them with {"type":"error","message":…}; non-JSON text and binary frames still get nothing (test T5)',
  },
  D3: {
    spec: '§3.6 N, §9, §14.3',
    original: 'new_worker ends at worker_created; its worker_status broadcast races with the replies',
    ours: 'worker_created, then the reset progress, then a worker_status listing the new worker (direct to a requester that never subscribed)',
  },
  D4: {
    spec: '§3.6 D, §4.8',
    original: 'delete_worker: worker_deleted, reset, then a racing worker_status broadcast',
    ours: 'the same, with the worker_status deterministically last (direct to a requester that never subscribed)',
  },
  D5: {
    spec: '§3.6 A.5, §4.5, §11.19',
    original: 'set_active relays the runstate every 0.5 s poll, repeated, starting with the stale `removed`',
    ours: 'each distinct runstate once and never the stale one; a fast worker may show only `running` or none; set_worker.data is the JSON on disk',
  },
  D6: {
    spec: '§4.6, §4.7, §14.1, §14.2',
    original: 'stop_worker resets before the worker exits; restart_worker hangs (stopped worker) or re-sends the dying worker (running worker)',
    ours: 'stop_worker resets after the process exited; restart_worker stops, then runs the full activation with `Starting worker.` and a new pid',
  },
  D7: {
    spec: '§2.3, §11.2, §14.4',
    original: 'uses any id in file paths (`x/../../evil` writes outside the workers dir)',
    ours: 'ids must match ^[A-Za-z0-9_-]{1,128}$, else an error before any file is touched',
  },
} as const;
type DeviationId = keyof typeof DEVIATIONS;
/** The deviations applied to the expectation being built; named in the failure message. */
let applied: DeviationId[] = [];
/** Marks where a deviation is applied; returns its value unchanged. */
function deviation<T>(id: DeviationId, value: T): T {
  if (!applied.includes(id)) applied.push(id);
  return value;
}
/** A deviation as an assertion message. */
const because = (id: DeviationId) => `${id} (spec ${DEVIATIONS[id].spec}): ${DEVIATIONS[id].ours}`;
/** `what` plus the deviations applied since the last call, for assertion messages. */
function explain(what: string): string {
  const text = applied.map(because).join('; ');
  applied = [];
  return text === '' ? what : `${what} [expected per ${text}]`;
}

// ---------------------------------------------------------------- regressions found by these replays

/**
 * B1 (fixed; test "B1"): workers rewrite `.runstate` in place, and the manager once relayed torn reads
 * ("starting - Loading nodesp") and reads that finished out of order. Replays accept only texts a worker writes.
 * B2 (fixed; test "B2"): a `.p` caught mid-rewrite (no integer) once listed a running worker inactive
 * without probing it, causing spurious broadcasts. Replays run with the harness's 1 s `.p` rewrites.
 */


// ---------------------------------------------------------------- requests and expectations

const PLAIN = ['ping', 'identify', 'stop', 'worker_status', 'new_worker'];
const WORKER_ID_TYPES = ['set_active', 'stop_worker', 'restart_worker', 'delete_worker'];
const VALID_ID = /^[A-Za-z0-9_-]{1,128}$/;

type Kind =
  | 'ping'
  | 'identify'
  | 'stop'
  | 'worker_status'
  | 'new_worker'
  | 'set_active'
  | 'stop_worker'
  | 'restart_worker'
  | 'delete_worker'
  | 'text'
  | 'binary'
  | 'invalid-json';
interface Request {
  kind: Kind;
  /** Recorded uuid. */
  workerid?: string;
}

/** What a sent frame is, per spec §3.2 (independent of our parser). */
function classify(send: string): Request {
  if (recordedBinary(send)) return { kind: 'binary' };
  if (PLAIN.includes(send)) return { kind: send as Kind };
  let data: unknown;
  try {
    data = JSON.parse(send);
  } catch {
    return { kind: 'text' };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { kind: 'invalid-json' };
  const { type, workerid } = data as Record<string, unknown>;
  if (type === 'new_worker') return { kind: 'new_worker' };
  if (typeof type === 'string' && WORKER_ID_TYPES.includes(type)) {
    return typeof workerid === 'string' && VALID_ID.test(workerid) ? { kind: type as Kind, workerid } : { kind: 'invalid-json' };
  }
  return { kind: 'invalid-json' };
}

const STEP = {
  activating: progressShape('Activating worker.', 0.1),
  starting: progressShape('Starting worker.', 0.4),
  contacting: progressShape('Contacting worker.', 0.5),
  stopping: progressShape('Stopping worker.', 0.1),
};
const ANY_ERROR: Loose = { re: /^error ".+" \{message,type\}$/, text: 'error "<any message>" {message,type}' };

/** The workers we expect to exist, by recorded uuid, and whether they run. */
class Model {
  readonly workers = new Map<string, boolean>();
  /** Key set of a worker entry, as recorded. */
  constructor(private readonly keys: string[]) {}

  private entry(uuid: string, type: unknown = null): Record<string, unknown> {
    return Object.fromEntries(this.keys.map((k) => [k, k === 'uuid' ? uuid : k === 'type' ? type : null]));
  }

  statusShape(): string {
    const list = (active: boolean) => [...this.workers].filter(([, a]) => a === active).map(([uuid]) => this.entry(uuid));
    return toFrame(JSON.stringify({ type: 'worker_status', active: list(true), inactive: list(false) })).shape;
  }

  setWorkerShape(uuid: string): string {
    return toFrame(JSON.stringify({ type: 'set_worker', data: this.entry(uuid, 'WSWorker') })).shape;
  }
}

/** The model at the start of a recording: the workers of its first files snapshot, all inactive. */
function modelFor(records: ConnRecord[], initial?: Snapshot): Model {
  const model = new Model(recordedWorkerKeys(framesOf(records, 'main')));
  for (const name of initial ? snapshotPersistentFiles(initial) : []) {
    if (name.endsWith('.json')) model.workers.set(name.slice('worker_'.length, -'.json'.length), false);
  }
  return model;
}

/** The key set of worker entries in a recording (its first worker_status entry or set_worker data). */
function recordedWorkerKeys(frames: string[]): string[] {
  for (const raw of frames) {
    const f = toFrame(raw);
    const list = f.json?.type === 'worker_status' ? [...(f.json.active as unknown[]), ...(f.json.inactive as unknown[])] : f.json?.type === 'set_worker' ? [f.json.data] : [];
    const first = list[0];
    if (typeof first === 'object' && first !== null) return Object.keys(first);
  }
  throw new Error('the recording lists no worker');
}

/**
 * The recorded replies as shapes, per request. worker_status frames are dropped except the direct answer to a
 * `worker_status` request: the original pushed them on a 10 s timer and on racing rescans (see D1, D3, D4).
 * The recorder sent its next request as soon as it saw `worker_deleted`, so a reset that opens a reply is
 * the previous request's last frame; no reply of the original starts with a reset.
 */
function recordedReplies(steps: Step[]): Frame[][] {
  const replies = steps.map((step) => {
    const isStatusRequest = classify(step.send).kind === 'worker_status';
    return step.recorded.map((raw) => toFrame(raw)).filter((f, i) => !isStatus(f) || (isStatusRequest && i === 0));
  });
  for (let i = 1; i < replies.length; i++) {
    if (replies[i][0] !== undefined && isReset(replies[i][0])) replies[i - 1].push(replies[i].shift()!);
  }
  return replies;
}

/** Recorded set_active reply → ours: one group for the runstate frames; an already running worker is contacted, not started. */
function activation(recorded: Frame[], wasActive: boolean): Pattern[] {
  const out: Pattern[] = [];
  for (const f of recorded) {
    if (isRunstateFrame(f)) {
      if (out[out.length - 1] !== RUNSTATES) out.push(deviation('D5', RUNSTATES));
    } else out.push(f.shape);
  }
  // §3.6 A.2: only an inactive worker is started. Ours is already running where the original's restart left it stopped (D6).
  return wasActive ? out.filter((p) => p !== STEP.starting && p !== RUNSTATES) : out;
}

/** Our expected reply to one recorded request; updates the model with the request's effect. */
function expectedReply(req: Request, recorded: Frame[], model: Model): Pattern[] {
  const shapes = recorded.map((f) => f.shape);
  const id = req.workerid;
  const known = id !== undefined && model.workers.has(id);
  switch (req.kind) {
    case 'text':
    case 'binary':
      expect(shapes, 'the original ignores non-JSON text and binary frames').toEqual([]);
      return [];
    case 'invalid-json':
      expect(shapes, 'the original ignores invalid JSON requests').toEqual([]);
      return deviation('D2', [ANY_ERROR]);
    case 'new_worker': {
      const created = recorded.find((f) => f.json?.type === 'worker_created');
      if (created) model.workers.set(String(created.json!.uuid), false);
      return deviation('D3', [...shapes, RESET_SHAPE, model.statusShape()]);
    }
    case 'delete_worker': {
      if (!known) return shapes;
      const wasActive = model.workers.get(id)!;
      model.workers.delete(id);
      // §3.6 D.2: a running worker is stopped first (sequence S). Ours still runs here where the original's restart had killed it (D6).
      const reply = wasActive ? [shapes[0], STEP.stopping, RESET_SHAPE, ...shapes.slice(1)] : shapes;
      return deviation('D4', [...reply, model.statusShape()]);
    }
    case 'set_active': {
      if (!known) return shapes;
      const wasActive = model.workers.get(id)!;
      model.workers.set(id, true);
      return activation(recorded, wasActive);
    }
    case 'stop_worker':
      if (known) model.workers.set(id, false);
      return shapes;
    case 'restart_worker':
      if (!known) return shapes;
      model.workers.set(id, true);
      expect(shapes.slice(0, 2), 'the original restart begins with sequence S').toEqual([STEP.stopping, RESET_SHAPE]);
      return deviation('D6', [STEP.stopping, RESET_SHAPE, STEP.activating, STEP.starting, STEP.contacting, RUNSTATES, model.setWorkerShape(id), RESET_SHAPE]);
    default:
      return shapes;
  }
}

// ---------------------------------------------------------------- replay

interface StepResult {
  step: Step;
  req: Request;
  frames: Frame[];
  /** worker_status frames set aside (mode `separate`). */
  aside: Frame[];
  /** pid of the running worker (the last set_worker's) when the request was sent. */
  pidBefore?: number;
  /** Whether `pidBefore` was still alive when the first reset of the reply arrived. */
  aliveAtFirstReset?: boolean;
  setWorker?: Record<string, unknown>;
  /** What set_worker's host:port answered to the `uuid` command right after the reply. */
  answeredUuid?: unknown;
}

interface Replay {
  m: TestManager;
  client: ManagerClient;
  ids: IdMap;
  model: Model;
  /**
   * `strict`: every frame is compared, worker_status included (no worker process runs, so our broadcasts are
   * deterministic). `separate`: worker_status frames are set aside (workers change state on their own time)
   * and the last one seen must list the model's state after each step.
   */
  mode: 'strict' | 'separate';
  snapshots?: Snapshot[];
  quietMs?: number;
}

async function replay(name: string, records: ConnRecord[], r: Replay): Promise<StepResult[]> {
  const items = replayItems(records);
  const steps = items.flatMap((item) => (item.kind === 'step' ? [item.step] : []));
  const replies = recordedReplies(steps);
  const results: StepResult[] = [];
  let subscribed = false;
  let lastStatus: Frame | undefined;
  let pid: number | undefined;
  for (const item of items) {
    if (item.kind === 'snapshot') {
      const snapshot = r.snapshots?.find((s) => s.stage === item.stage);
      if (snapshot) expect(await persistentFiles(r.m.workersDir, r.ids), `${name}: files at snapshot ${item.stage}`).toEqual(snapshotPersistentFiles(snapshot));
      continue;
    }
    const { step } = item;
    const recorded = replies[steps.indexOf(step)];
    const req = classify(step.send);
    applied = [];
    let expected = expectedReply(req, recorded, r.model);
    const what = explain(`${name}: ${step.label} (${step.send})`);
    if (r.mode === 'separate' && req.kind !== 'worker_status') expected = expected.filter((p) => typeof p !== 'string' || !p.startsWith('worker_status'));

    const result: StepResult = { step, req, frames: [], aside: [], pidBefore: pid };
    const createdAs = recorded.find((f) => f.json?.type === 'worker_created')?.json?.uuid;
    const binary = recordedBinary(step.send);
    if (binary) r.client.socket.send(binary);
    else r.client.send(r.ids.oursText(step.send));
    if (req.kind === 'worker_status') subscribed = true;
    let statusReplyPending = req.kind === 'worker_status';

    const reply = await readReply(r.client, expected, {
      ids: r.ids,
      quietMs: r.quietMs,
      onRaw: (raw) => {
        const created = toFrame(raw).json;
        if (created?.type === 'worker_created' && typeof createdAs === 'string') r.ids.link(createdAs, String(created.uuid));
      },
      onFrame: (f) => {
        if (isReset(f) && result.aliveAtFirstReset === undefined && pid !== undefined) result.aliveAtFirstReset = isPidAlive(pid);
        if (f.json?.type === 'set_worker') result.setWorker = f.json.data as Record<string, unknown>;
      },
      aside: (f) => {
        if (!isStatus(f) || r.mode === 'strict') return false;
        if (statusReplyPending) {
          statusReplyPending = false;
          return false;
        }
        return true;
      },
    });
    Object.assign(result, reply);
    expectShapes(reply.frames, expected, what);

    // (In strict mode the worker_status frames were part of the comparison.)
    for (const f of [...reply.frames, ...reply.aside]) if (isStatus(f)) lastStatus = f;
    if (r.mode === 'separate' && subscribed) expect(lastStatus?.shape, `${what}: the last worker_status`).toBe(r.model.statusShape());
    if (result.setWorker !== undefined) {
      pid = result.setWorker.pid as number;
      const disk = JSON.parse(await readFile(workerPaths(r.m.dir, String(result.setWorker.uuid)).json, 'utf8')) as unknown;
      expect(result.setWorker, `${what}: set_worker.data, ${because('D5')}`).toEqual(disk);
      result.answeredUuid = await askUuid(String(result.setWorker.host), Number(result.setWorker.port));
    }
    results.push(result);
  }
  return results;
}

// ---------------------------------------------------------------- fixtures

let manager: TestManager | undefined;
let dir: string | undefined;
const processes: StandinProcess[] = [];

afterEach(async () => {
  for (const p of processes.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await manager?.close();
  if (dir !== undefined) {
    await killWorkers(path.join(dir, 'workers'));
    await rm(dir, { recursive: true, force: true });
  }
  manager = undefined;
  dir = undefined;
});

/** Short lifecycle deadlines, so a failure ends fast (the stand-in stops in 0.5 s). */
const FAST = { stopMs: 3000, killGraceMs: 500, connectMs: 10_000, startMs: 15_000 };

/** Starts our manager on a workers dir seeded from a recorded snapshot (or empty). */
async function start(seed?: Snapshot, options: TestManagerOptions = {}): Promise<TestManager> {
  dir = await makeTempDir('fnwm-transcripts-');
  if (seed) await seedWorkersDir(path.join(dir, 'workers'), seed);
  manager = await startTestManager({ ...options, dir, env: options.env, timing: { ...FAST, ...options.timing } });
  return manager;
}

/** The worker JSON recorded in a worker_status entry, made runnable here: our port range, loopback, no stale pid. */
function runnableJson(entry: Record<string, unknown>, m: TestManager): Record<string, unknown> {
  return { ...entry, host: '127.0.0.1', port: m.ports.start, pid: null };
}

/** As the Python CLI writes it: atomically. */
async function writeJsonAtomic(file: string, data: unknown): Promise<void> {
  const tmp = path.join(path.dirname(file), `.tmp-${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, JSON.stringify(data, null, 2));
  await rename(tmp, file);
}

/** Asks a worker for its uuid over its WebSocket, as a browser or the manager's probe would. */
async function askUuid(host: string, port: number): Promise<unknown> {
  const ws = new WebSocket(`ws://${host}:${port}`);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`ws://${host}:${port} did not answer the uuid command within 3 s`)), 3000);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'cmd', cmd: 'uuid', id: 'transcripts' })));
      ws.on('message', (data: Buffer) => {
        const msg = JSON.parse(data.toString()) as Record<string, unknown>;
        if (msg.type === 'result') resolve(msg.result);
      });
      ws.on('error', reject);
    });
  } finally {
    clearTimeout(timer);
    ws.terminate();
  }
}

/** Rewrites `.runstate` (argv[1]) in place argv[2] times as a worker does: text i is `starting\n<i>:<i>`, padded when i is even. */
const RUNSTATE_WRITER = `
import sys
path, count = sys.argv[1], int(sys.argv[2])
for i in range(1, count + 1):
    with open(path, "w", encoding="utf-8") as f:
        f.write("starting\\n%d:%d" % (i, i) + ("" if i % 2 else " " + "-" * 16))
`;

const statusFrames = (raws: string[]) => raws.map((raw) => toFrame(raw)).filter(isStatus);

// ---------------------------------------------------------------- the transcripts

describe('misc.jsonl: delete of an inactive worker, unknown and invalid input, new_worker variants', () => {
  it('answers every request of the main connection as the original did, apart from D2-D4', async () => {
    const records = await loadConnTranscript('misc.jsonl');
    const snapshots = await loadSnapshots('misc.files.json');
    const m = await start(snapshots[0]);
    const model = modelFor(records, snapshots[0]);
    const ids = new IdMap();
    const client = await m.connect();

    const results = await replay('misc', records, { m, client, ids, model, mode: 'strict', snapshots });

    // The copy test's reference was the bare new_worker's generated uuid: it reached us as ours.
    const copy = results.find((s) => s.step.send.includes('"reference"'))!;
    expect(ids.oursText(copy.step.send)).not.toBe(copy.step.send);
  }, 30_000);

  it('refuses path-like ids before touching a file (D7; the original wrote outside the workers dir, spec §14.4)', async () => {
    const m = await start();
    const client = await m.connect();
    for (const request of [
      { type: 'new_worker', kwargs: { name: 'evil', uuid: 'x/../../evil', in_venv: false } },
      { type: 'delete_worker', workerid: 'x/../../../name' },
      { type: 'set_active', workerid: '../evil' },
    ]) {
      client.send(request);
      const { frames } = await readReply(client, [ANY_ERROR], { ids: new IdMap() });
      expectShapes(frames, [ANY_ERROR], `${JSON.stringify(request)}: ${because('D7')}`);
    }
    expect(await readdir(m.workersDir)).toEqual([]);
    expect((await readdir(m.dir)).filter((n) => n.includes('evil'))).toEqual([]);
  });
});

describe('misc2.jsonl: cleanup deletes, JSON worker_status/identify, a binary frame, JSON new_worker, stop', () => {
  it('answers as the original did apart from D1-D4, then stops on `stop`', async () => {
    const records = await loadConnTranscript('misc2.jsonl');
    const snapshots = await loadSnapshots('misc2.files.json');
    const m = await start(snapshots[0]);
    const model = modelFor(records, snapshots[0]);
    const client = await m.connect();
    const observer = await m.connect();

    const results = await replay('misc2', records, { m, client, ids: new IdMap(), model, mode: 'strict', snapshots });

    // The last request is the bare `stop`: the manager answers `Stopping worker manager.`/1.0/false and closes.
    expect(results.at(-1)!.step.send).toBe('stop');
    await m.service.stopped;
    await waitFor(() => client.closed !== undefined, 3000, 'the main connection to close');
    // D1: the idle observer saw the original's broadcasts and new_worker progress; ours never asked, so it got nothing.
    expect(framesOf(records, 'observer').length).toBeGreaterThan(5);
    expect(observer.pending(), because('D1')).toEqual([]);
  }, 30_000);
});

describe('lifecycle.jsonl: handshake, new_worker, set_active, stop, restart (stopped and running), delete', () => {
  it('matches the recorded sequences, with a restart that really restarts (D5, D6)', async () => {
    const records = await loadConnTranscript('lifecycle.jsonl');
    const snapshots = await loadSnapshots('lifecycle.files.json');
    const m = await start();
    const model = modelFor(records);
    const ids = new IdMap();
    const client = await m.connect();
    const observer = await m.connect();

    const results = await replay('lifecycle', records, { m, client, ids, model, mode: 'separate', snapshots, quietMs: 300 });

    const byKind = (kind: Kind) => results.filter((s) => s.req.kind === kind);
    const recordedPid = (s: StepResult) => (s.step.recorded.map((raw) => toFrame(raw).json).find((j) => j?.type === 'set_worker')?.data as { pid?: number } | undefined)?.pid;
    // Every set_worker named a worker that answered its uuid at that address.
    const activations = results.filter((s) => s.setWorker !== undefined);
    expect(activations.map((s) => s.req.kind)).toEqual(['set_active', 'restart_worker', 'set_active', 'restart_worker']);
    for (const s of activations) expect(s.answeredUuid).toBe(s.setWorker!.uuid);
    // D6: stop_worker resets only after the worker process exited.
    const [stop] = byKind('stop_worker');
    expect(stop.pidBefore).toBeTypeOf('number');
    expect(stop.aliveAtFirstReset, because('D6')).toBe(false);
    // D6: both restarts start a new process; the running one had exited before the reset that ends its stop.
    const [restartStopped, restartRunning] = byKind('restart_worker');
    expect(restartStopped.setWorker!.pid, because('D6')).not.toBe(restartStopped.pidBefore);
    expect(restartRunning.aliveAtFirstReset, because('D6')).toBe(false);
    expect(restartRunning.setWorker!.pid, because('D6')).not.toBe(restartRunning.pidBefore);
    // ...where the original re-sent the dying worker's old pid (spec §14.2).
    expect(recordedPid(restartRunning)).toBe(recordedPid(byKind('set_active').at(-1)!));
    // Delete stopped the running worker before removing its files, and removed everything.
    const [remove] = byKind('delete_worker');
    expect(remove.pidBefore).toBe(restartRunning.setWorker!.pid);
    expect(remove.aliveAtFirstReset).toBe(false);
    expect(await persistentFiles(m.workersDir)).toEqual([]);
    // D1: the idle observer got nothing.
    expect(framesOf(records, 'observer').length).toBeGreaterThan(5);
    expect(observer.pending(), because('D1')).toEqual([]);
  }, 45_000);

  /** B1 regression, made frequent: a writer process rewrites `.runstate` 5000 times. */
  it('B1: relays each .runstate text a worker writes complete and in the order written', async () => {
    const m = await start();
    const client = await m.connect();
    // A slow start keeps the activation listening to `.runstate` meanwhile.
    const uuid = await createWorker(client, m.workersDir, 'runstates', { boot_delay: 30 });
    const paths = workerPaths(m.dir, uuid);
    client.send({ type: 'set_active', workerid: uuid });
    await client.until((f) => (f.kind === 'message' && f.message.type === 'progress' && f.message.message === 'Contacting worker.' ? true : undefined), 10_000);
    const writer = spawnStandin(['-c', RUNSTATE_WRITER, paths.runstate, '5000'], process.env);
    processes.push(writer);
    expect((await writer.exited).code).toBe(0);

    const texts = (await collect(client, 300))
      .map((raw) => toFrame(raw))
      .filter(isRunstateFrame)
      .map((f) => String(f.json!.message))
      .filter((text) => !START_RUNSTATES.includes(text));
    // Text i is `starting\n<i>:<i>`, padded when i is even: a torn read breaks the pattern or the parity.
    const written = (text: string) => {
      const match = /^starting - (\d+):\1( -{16})?$/.exec(text);
      return match !== null && (match[2] !== undefined) === (Number(match[1]) % 2 === 0) ? Number(match[1]) : undefined;
    };
    expect(texts.filter((text) => written(text) === undefined), 'torn texts').toEqual([]);
    const numbers = texts.map(written) as number[];
    expect(numbers.flatMap((n, i) => (i > 0 && n <= numbers[i - 1] ? [`${numbers[i - 1]} then ${n}`] : [])), 'out of order').toEqual([]);
    // Something was relayed, and at least the last text written (intermediate ones may be coalesced).
    expect(numbers.at(-1), 'the last text written').toBe(5000);
  });

  it('B2: keeps a running worker active while its .p does not hold an integer (it probes, spec §2.5, §6.2)', async () => {
    const m = await start();
    const client = await m.connect();
    client.send('worker_status');
    await readUntil(client, 'worker_status');
    const uuid = await createWorker(client, m.workersDir, 'pidfile');
    client.send({ type: 'set_active', workerid: uuid });
    await readUntil(client, 'set_worker', 15_000);
    await collect(client, 300);
    expect(m.service.supervisor.find(uuid)?.active).toBe(true);
    // The worker's own rewrite of `.p`, caught between its truncate and its write.
    await writeFile(workerPaths(m.dir, uuid).p, '');
    const listedInactive = statusFrames(await collect(client, 1000)).filter((f) => (f.json!.inactive as Record<string, unknown>[]).some((w) => w.uuid === uuid));
    expect(listedInactive.map((f) => f.raw)).toEqual([]);
  });
});

describe('failed-first-run-restart-on-stopped.jsonl: restart_worker on a stopped worker', () => {
  it('restarts the stopped worker where the original hung, and sends no periodic status while idle (D1, D6)', async () => {
    const records = await loadConnTranscript('failed-first-run-restart-on-stopped.jsonl');
    const snapshots = await loadSnapshots('failed-first-run-restart-on-stopped.files.json');
    // Safety rescans every 300 ms: unchanged lists must still not be broadcast.
    const m = await start(undefined, { supervisor: { observer: { safetyRescanMs: 300 } } });
    const model = modelFor(records);
    const ids = new IdMap();
    const client = await m.connect();

    const results = await replay('failed-first-run', records, { m, client, ids, model, mode: 'separate', snapshots, quietMs: 300 });

    const restart = results.at(-1)!;
    expect(restart.req.kind).toBe('restart_worker');
    // The original never answered this restart; its main connection only saw a worker_status every ~10 s.
    const recordedAfter = restart.step.recorded.map((raw) => toFrame(raw));
    expect(recordedAfter.filter((f) => !isStatus(f)).map((f) => f.shape)).toEqual([STEP.stopping, RESET_SHAPE]);
    expect(recordedAfter.filter(isStatus).length).toBeGreaterThan(10);
    expect(restart.setWorker?.uuid).toBe(ids.ours(restart.req.workerid!));
    expect(restart.setWorker!.pid).not.toBe(restart.pidBefore);
    expect(isPidAlive(Number(restart.setWorker!.pid))).toBe(true);
    // The restart's own last file changes (the worker's JSON rewrite) may be read after set_worker went out:
    // let them land, then three safety rescans of unchanged lists must send nothing.
    await m.service.supervisor.settled();
    await collect(client, 100);
    expect(await collect(client, 1000), because('D1')).toEqual([]);
  }, 30_000);
});

describe('cli-stop-via-manager.jsonl: stop_worker for a worker the Python CLI started', () => {
  it('stops it, resetting only after it exited, and sends the idle requester no broadcasts (D1, D6)', async () => {
    const records = await loadConnTranscript('cli-stop-via-manager.jsonl');
    const [step] = replayItems(records).flatMap((i) => (i.kind === 'step' ? [i.step] : []));
    const uuid = String(classify(step.send).workerid);
    const listed = statusFrames(step.recorded)[0].json!.active as Record<string, unknown>[];
    const m = await start(undefined, { supervisor: { pidCheckMs: 250 } });
    await writeJsonAtomic(workerPaths(m.dir, uuid).json, runnableJson(listed.find((w) => w.uuid === uuid)!, m));
    // `funcnodes worker --uuid X start`, not through the manager.
    const proc = spawnStandin(standinArgs(m.dir, uuid), standinEnv(m.dir, m.ports));
    processes.push(proc);
    await waitFor(() => m.service.supervisor.find(uuid)?.active === true, 10_000, 'the CLI-started worker to be listed active');
    const pid = proc.child.pid!;

    const client = await m.connect();
    client.send(step.send);
    let aliveAtReset: boolean | undefined;
    const expected = recordedReplies([step])[0].map((f) => f.shape);
    expect(expected).toEqual([STEP.stopping, RESET_SHAPE]);
    const { frames } = await readReply(client, expected, {
      ids: new IdMap(),
      onFrame: (f) => {
        if (isReset(f)) aliveAtReset = isPidAlive(pid);
      },
    });
    expectShapes(frames, expected, 'stop_worker');
    expect(aliveAtReset, because('D6')).toBe(false);
    expect((await proc.exited).code).toBe(0);
    // D1: the original pushed three worker_status frames to this connection; ours never asked for them.
    expect(statusFrames(step.recorded).length).toBe(3);
    expect(await collect(client, 500), because('D1')).toEqual([]);
    expect(m.service.supervisor.find(uuid)?.active).toBe(false);
  }, 30_000);
});

describe.each(['ui-websocket.jsonl', 'ui-websocket-via-python-runserver.jsonl'])('%s: the web UI against the manager', (file) => {
  it('answers the frames the UI sent with shapes the UI handles (spec §9)', async () => {
    const ui = await loadUiTranscript(file);
    const managerUrl = ui.find((r) => r.kind === 'ws' && r.dir === 'sent' && r.payload === 'worker_status')!.url!;
    // As {conn, dir, raw} records: `main` is the UI's manager connection; UI steps become labels.
    const records: ConnRecord[] = ui.flatMap((r): ConnRecord[] => {
      if (r.kind === 'step') return [{ ms: r.ms, conn: '-', dir: 'note', note: `stage: ${r.step}` }];
      if (r.kind !== 'ws' || r.url !== managerUrl) return [];
      return [{ ms: r.ms, conn: 'main', dir: r.dir === 'sent' ? 'send' : 'recv', raw: r.payload }];
    });
    // No files snapshot here: the workers the UI was first shown are the workers dir it started with.
    const opening = toFrame(framesOf(records, 'main')[0]).json!;
    const listed = [...(opening.active as Record<string, unknown>[]), ...(opening.inactive as Record<string, unknown>[])];
    const initial: Snapshot = { stage: 'initial', files: Object.fromEntries(listed.map((w) => [`worker_${String(w.uuid)}.json`, { content: w }])) };
    // The recordings' worker closed the oldest client aiohttp 3.8's way: the UI's connection, its only one,
    // got `progress` before the close frame (spec §14.9); the stand-in's default is the newer order.
    const m = await start(initial, { env: { FUNCNODES_STANDIN: JSON.stringify({ stop_order: 'aiohttp-3.8' }) } });
    const model = modelFor(records, initial);
    const ids = new IdMap();
    // The page was served from http://127.0.0.1:18000 (its console names that origin).
    const client = await m.connect({ Origin: 'http://127.0.0.1:18000' });

    const results = await replay(file, records, { m, client, ids, model, mode: 'separate', quietMs: 300 });

    // The UI JSON-parses every frame and dispatches on `type`.
    for (const f of results.flatMap((s) => [...s.frames, ...s.aside])) expect(typeof f.json?.type, f.raw).toBe('string');
    expect(results[0].frames[0].json?.type).toBe('worker_status');
    const created = results.find((s) => s.req.kind === 'new_worker')!;
    expect(created.frames.map((f) => f.shape)).toContain(RESET_SHAPE);
    const { setWorker } = results.find((s) => s.setWorker !== undefined)!;
    expect(setWorker).toMatchObject({ type: 'WSWorker', ssl: false });
    const host = String(setWorker!.host);
    expect(['', '0.0.0.0', '::', '[::]']).not.toContain(host);

    // The browser dials ws://host:port and sends what the recording shows; the stand-in has no graph commands, so only ping and stop.
    const workerFrames = ui.filter((r) => r.kind === 'ws' && r.url !== managerUrl && r.url !== undefined);
    const sentToWorker = (pick: (msg: Record<string, unknown>) => boolean) => {
      const i = workerFrames.findIndex((r) => r.dir === 'sent' && pick(JSON.parse(r.payload!) as Record<string, unknown>));
      return { sent: workerFrames[i].payload!, reply: toFrame(workerFrames.slice(i + 1).find((r) => r.dir === 'recv')!.payload!).shape };
    };
    const ws = new WebSocket(`ws://${host}:${Number(setWorker!.port)}`, { headers: { Origin: 'http://127.0.0.1:18000' } });
    const inbox: string[] = [];
    ws.on('message', (data: Buffer) => inbox.push(data.toString()));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    try {
      for (const exchange of [sentToWorker((msg) => msg.type === 'ping'), sentToWorker((msg) => msg.cmd === 'stop_worker')]) {
        inbox.length = 0;
        ws.send(exchange.sent);
        await waitFor(() => inbox.length > 0, 5000, `a reply to ${exchange.sent}`);
        expect(toFrame(inbox[0]).shape, exchange.sent).toBe(exchange.reply);
      }
    } finally {
      ws.terminate();
    }
    // The UI never asks again: the stop must reach it as a worker_status broadcast listing the worker inactive.
    model.workers.set(ids.recorded(String(setWorker!.uuid)), false);
    const want = model.statusShape();
    await client.until((frame) => {
      expect(frame.kind).toBe('message');
      return frame.kind === 'message' && toFrame(JSON.stringify(frame.message), ids).shape === want ? true : undefined;
    }, 8000);
  }, 30_000);
});

describe('cli-observer.jsonl: workers created, started and stopped only through files and the CLI', () => {
  it('broadcasts each change to a subscribed connection and nothing to an idle one (D1)', async () => {
    const records = await loadConnTranscript('cli-observer.jsonl');
    type State = { active: string[]; inactive: string[] };
    const stateOf = (raw: string): State => {
      const j = toFrame(raw).json!;
      const uuids = (name: 'active' | 'inactive') => (j[name] as Record<string, unknown>[]).map((w) => String(w.uuid)).sort();
      return { active: uuids('active'), inactive: uuids('inactive') };
    };
    const entries = new Map<string, Record<string, unknown>>();
    const key = (s: State) => JSON.stringify(s);
    const states: State[] = [];
    for (const f of statusFrames(framesOf(records, 'observer'))) {
      for (const w of [...(f.json!.active as Record<string, unknown>[]), ...(f.json!.inactive as Record<string, unknown>[])]) {
        if (!entries.has(String(w.uuid))) entries.set(String(w.uuid), w);
      }
      const state = stateOf(f.raw);
      if (states.length === 0 || key(states.at(-1)!) !== key(state)) states.push(state);
    }
    // A worker missing from both lists between two states that list it is the original's probe-exception bug (spec §6.2 step 4).
    const union = (s: State) => [...s.active, ...s.inactive].sort().join(',');
    const artefacts = states.filter((s, i) => i > 0 && i < states.length - 1 && union(states[i - 1]) === union(states[i + 1]) && union(s).length < union(states[i - 1]).length);
    expect(artefacts).toHaveLength(1);
    const expected = states.filter((s) => !artefacts.includes(s));

    const m = await start(undefined, { supervisor: { pidCheckMs: 250 } });
    const idle = await m.connect();
    const watcher = await m.connect();
    watcher.send('worker_status');
    expect(stateOf(await watcher.nextText())).toEqual(expected[0]);

    const running = new Map<string, StandinProcess>();
    for (let i = 1; i < expected.length; i++) {
      const [before, after] = [expected[i - 1], expected[i]];
      const where = (s: State, uuid: string) => (s.active.includes(uuid) ? 'active' : s.inactive.includes(uuid) ? 'inactive' : 'absent');
      const changed = [...new Set([...union(before).split(','), ...union(after).split(',')])].filter((u) => u !== '' && where(before, u) !== where(after, u));
      expect(changed, `one change from ${key(before)} to ${key(after)}`).toHaveLength(1);
      const uuid = changed[0];
      const paths = workerPaths(m.dir, uuid);
      const transition = `${where(before, uuid)}→${where(after, uuid)}`;
      if (transition === 'absent→inactive') await writeJsonAtomic(paths.json, runnableJson(entries.get(uuid)!, m)); // worker new --create-only
      else if (transition === 'inactive→absent') await rm(paths.json);
      else if (transition === 'inactive→active') {
        const proc = spawnStandin(standinArgs(m.dir, uuid), standinEnv(m.dir, m.ports)); // worker start
        processes.push(proc);
        running.set(uuid, proc);
      } else if (transition === 'active→inactive') running.get(uuid)!.child.kill('SIGINT'); // Ctrl-C on `worker start`
      else throw new Error(`unexpected transition ${transition}`);
      // Only the old state (not yet noticed) or the new one may be broadcast meanwhile.
      await watcher.until((frame) => {
        expect(frame.kind).toBe('message');
        const state = stateOf(JSON.stringify(frame.kind === 'message' ? frame.message : {}));
        expect([key(before), key(after)], `${uuid} ${transition}`).toContain(key(state));
        return key(state) === key(after) ? true : undefined;
      }, 10_000);
    }
    expect(framesOf(records, 'observer').length).toBeGreaterThan(10);
    expect(idle.pending(), because('D1')).toEqual([]);
  }, 45_000);
});
