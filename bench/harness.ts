/**
 * The benchmark: starts managers from command templates and measures, over real sockets, real files and
 * real worker processes, what the issue lists (start, ping, worker_status, propagation, crash detection,
 * activation overhead, parallel starts, many clients, idle cost). With two managers each phase runs on
 * both, alternating which goes first, so drift in the machine's load hits both alike.
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdir, mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { rmSync, watch } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientTimeoutError, ManagerClient } from '../src-main/core/hub/client.js';
import { cpuSeconds, freePort, killProcessesUsing, launchManager, rssBytes, splitCommand, type ManagerProcess } from './processes.js';
import { summarize, type Summary } from './stats.js';
import { newUuid, standinBootMs, workerFile, workerJson, writeWorkerAtomic, writeWorkers } from './workers.js';

export interface BenchSizes {
  /** Manager starts for measurement 1. */
  starts: number;
  pings: number;
  /** Workers on disk for the worker_status replies (measurement 3). */
  statusSizes: number[];
  statusReps: number;
  /** The "other workers" setting of measurements 4–6 and 9 (besides 0). */
  others: number;
  propagationReps: number;
  activationReps: number;
  parallelStarts: number;
  activeIdle: number;
  clients: number;
  clientReps: number;
  /** Idle window for CPU, after `settleMs` without any request. */
  idleMs: number;
  settleMs: number;
}

export const FULL_SIZES: BenchSizes = {
  starts: 10,
  pings: 2000,
  statusSizes: [0, 100, 1000, 10_000],
  statusReps: 100,
  others: 500,
  propagationReps: 20,
  activationReps: 10,
  parallelStarts: 50,
  activeIdle: 20,
  clients: 100,
  clientReps: 10,
  // 60 s, not the 30 s: our safety rescan runs every 60 s, so a 30 s window would catch it half the
  // time. 10 s of settling lets V8's post-start clean-up pass (it showed as idle CPU in the first seconds).
  idleMs: 60_000,
  settleMs: 10_000,
};

/** Under two minutes: fewer repetitions and 10 s idle windows (which may or may not hold a rescan). */
export const QUICK_SIZES: BenchSizes = { ...FULL_SIZES, starts: 5, statusReps: 30, propagationReps: 8, activationReps: 4, clientReps: 4, idleMs: 10_000, settleMs: 8000 };

export interface ManagerTarget {
  /** Column name, e.g. "A". */
  label: string;
  template: string;
}

export interface BenchOptions {
  managers: ManagerTarget[];
  /** Worker interpreter (FUNCNODES_PYTHON of the managers, and the boot baseline of measurement 6). */
  python: string;
  sizes: BenchSizes;
  /** Progress lines (the CLI sends them to stderr). */
  log?: (line: string) => void;
}

export type Unit = 'ms' | 'KiB' | '% core' | 'MiB';

export interface Metric {
  id: string;
  label: string;
  unit: Unit;
  samples: number[];
  summary: Summary;
  /** Met when the median is at most `max`. */
  target?: number;
}

export interface ManagerResult {
  label: string;
  template: string;
  metrics: Metric[];
}

export interface BenchReport {
  date: string;
  machine: { cores: number; cpu: string; node: string; platform: string; loadavg: number[] };
  python: string;
  sizes: BenchSizes;
  managers: ManagerResult[];
}

/** Config dirs of this run; clean-up ends every process that uses one (also on Ctrl-C) and removes it. */
const liveDirs = new Set<string>();

export function cleanupAll(): void {
  for (const dir of liveDirs) {
    killProcessesUsing(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  liveDirs.clear();
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'fnwm-bench-'));
  liveDirs.add(dir);
  return dir;
}

async function removeDir(dir: string): Promise<void> {
  killProcessesUsing(dir);
  await rm(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

// ---------------------------------------------------------------- frames

interface StatusLists {
  active: { uuid: string }[];
  inactive: { uuid: string }[];
}

/** The `type` of a JSON frame: read from the head when it comes first (it does in both managers), else parsed. */
function frameType(text: string): string | undefined {
  const head = /^\{\s*"type"\s*:\s*"([a-z_]+)"/.exec(text);
  if (head) return head[1];
  try {
    const parsed = JSON.parse(text) as { type?: unknown };
    return typeof parsed.type === 'string' ? parsed.type : undefined;
  } catch {
    return undefined;
  }
}

function parseStatus(text: string): StatusLists | undefined {
  return frameType(text) === 'worker_status' ? (JSON.parse(text) as StatusLists) : undefined;
}

const listed = (s: StatusLists, uuid: string, where: 'active' | 'inactive') => s[where].some((w) => w.uuid === uuid);

class BenchTimeout extends Error {}

/** Reads frames until `test` accepts one; returns when that frame arrived (performance.now()). */
async function arrivalOf(client: ManagerClient, test: (text: string) => boolean, timeoutMs: number, what: string): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let text: string;
    try {
      text = await client.nextText(Math.max(0, deadline - performance.now()));
    } catch (err) {
      if (err instanceof ClientTimeoutError) throw new BenchTimeout(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      throw new Error(`Waiting for ${what}: ${(err as Error).message}`, { cause: err });
    }
    const at = performance.now();
    if (test(text)) return at;
    if (frameType(text) === 'error') throw new Error(`Manager error while waiting for ${what}: ${text}`);
  }
}

function statusArrival(client: ManagerClient, test: (s: StatusLists) => boolean, timeoutMs: number, what: string): Promise<number> {
  return arrivalOf(
    client,
    (text) => {
      const s = parseStatus(text);
      return s !== undefined && test(s);
    },
    timeoutMs,
    what,
  );
}

/**
 * Asks `worker_status` every second until a status frame (reply or broadcast) passes `test`. Then reads
 * until as many status frames as asks have arrived, and discards whatever else is queued, so the replies
 * to the other asks are not taken for the answer to a later, timed request. (A broadcast counts as one
 * too, since it cannot be told from a reply: that can only end the wait early, and is rare.)
 */
async function askStatusUntil(client: ManagerClient, test: (s: StatusLists) => boolean, timeoutMs: number, what: string): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let asked = 0;
  let seen = 0;
  const passes = (text: string) => {
    const s = parseStatus(text);
    if (s === undefined) return false;
    seen++;
    return test(s);
  };
  for (;;) {
    client.send('worker_status');
    asked++;
    let at: number;
    try {
      at = await arrivalOf(client, passes, Math.min(1000, deadline - performance.now()), what);
    } catch (err) {
      if (performance.now() >= deadline || !(err instanceof BenchTimeout)) throw err;
      continue;
    }
    if (seen < asked) await arrivalOf(client, (text) => frameType(text) === 'worker_status' && ++seen >= asked, 30_000, `the replies to the other asks for ${what}`);
    client.drain();
    return at;
  }
}

// ---------------------------------------------------------------- sessions

interface Session {
  manager: ManagerProcess;
  workersDir: string;
  /** First port of this session's worker range (300 ports). */
  portBase: number;
}

interface Run {
  words: string[];
  python: string;
  sizes: BenchSizes;
  log: (line: string) => void;
  samples: Map<string, { label: string; unit: Unit; samples: number[]; target?: number }>;
}

function record(run: Run, id: string, label: string, unit: Unit, values: number | number[], target?: number): void {
  const entry = run.samples.get(id) ?? { label, unit, samples: [], target };
  entry.samples.push(...(Array.isArray(values) ? values : [values]));
  run.samples.set(id, entry);
}

/**
 * One manager in a fresh config dir that `prepare` fills first; stopped, its processes ended and the
 * dir removed afterwards, whatever happens.
 */
async function withManager<T>(run: Run, prepare: (workersDir: string, portBase: number) => Promise<void>, body: (s: Session) => Promise<T>): Promise<T> {
  const dir = await tempDir();
  try {
    const workersDir = path.join(dir, 'workers');
    // Below Linux's ephemeral range, so worker ports rarely meet the OS's own choices.
    const portBase = 20_000 + Math.floor(Math.random() * 11_000);
    await mkdir(workersDir, { recursive: true });
    await prepare(workersDir, portBase);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FUNCNODES_CONFIG_DIR: dir,
      FUNCNODES_PYTHON: run.python,
      FUNCNODES_WORKER_IN_VENV: '0',
      FUNCNODES_WS_WORKER_STARTPORT: String(portBase),
      FUNCNODES_WS_WORKER_ENDPORT: String(portBase + 299),
      // The original wraps itself in a subprocess monitor unless told not to: measure the manager itself.
      USE_SUBPROCESS_MONITOR: '0',
      // Stops are not measured; the stand-in's default 1.7 s would only make the run longer.
      FUNCNODES_STANDIN_STOP_DELAY: '0.5',
    };
    delete env.FUNCNODES_STANDIN;
    const manager = await launchManager(run.words, dir, env);
    try {
      return await body({ manager, workersDir, portBase });
    } finally {
      await manager.stop();
    }
  } finally {
    await removeDir(dir);
  }
}

async function subscribe(url: string): Promise<ManagerClient> {
  const client = await ManagerClient.connect(url, 10_000);
  client.send('worker_status');
  await statusArrival(client, () => true, 30_000, 'the first worker_status');
  return client;
}

/** Measurement 9: CPU over an idle window after a quiet settle, and RSS at its end (the manager's pid only). */
async function idleCost(run: Run, s: Session, what: string, key: 'inactive' | 'active'): Promise<void> {
  run.log(`  idle ${what}: ${(run.sizes.settleMs + run.sizes.idleMs) / 1000} s`);
  await sleep(run.sizes.settleMs);
  const cpu0 = cpuSeconds(s.manager.pid);
  const t0 = performance.now();
  await sleep(run.sizes.idleMs);
  const cpu = ((cpuSeconds(s.manager.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
  const isTarget = key === 'inactive';
  record(run, `idle_cpu_${key}`, `9. idle CPU, ${what}`, '% core', cpu, isTarget ? 0.1 : undefined);
  record(run, `rss_${key}`, `9. RSS, ${what}`, 'MiB', rssBytes(s.manager.pid) / 2 ** 20, isTarget ? 50 : undefined);
}

/** Measurement 3: reply time and size of `worker_status` with `count` workers on disk. */
async function statusReplies(run: Run, count: number, client: ManagerClient): Promise<void> {
  const times: number[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < run.sizes.statusReps; i++) {
    // A broadcast queued meanwhile (the original sends one every ~10 s) would otherwise be timed as the reply.
    client.drain();
    const t0 = performance.now();
    client.send('worker_status');
    let size = 0;
    const at = await arrivalOf(
      client,
      (text) => {
        size = Buffer.byteLength(text);
        return frameType(text) === 'worker_status';
      },
      30_000,
      'a worker_status reply',
    );
    times.push(at - t0);
    sizes.push(size / 1024);
  }
  record(run, `status_reply_${count}`, `3. worker_status reply, ${count} workers`, 'ms', times, count === run.sizes.others ? 0.5 : undefined);
  record(run, `status_size_${count}`, `3. worker_status size, ${count} workers`, 'KiB', sizes);
}

/** Measurement 4: a worker JSON appears on disk → a broadcast lists it (then it is removed again). */
async function propagation(run: Run, s: Session, client: ManagerClient, others: number): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < run.sizes.propagationReps; i++) {
    const uuid = newUuid();
    await writeWorkerAtomic(s.workersDir, workerJson(uuid, 1));
    const t0 = performance.now();
    const at = await arrivalOf(client, (text) => text.includes(uuid) && frameType(text) === 'worker_status', 30_000, `a broadcast listing the new worker ${uuid}`);
    samples.push(at - t0);
    await unlink(workerFile(s.workersDir, uuid));
    await arrivalOf(client, (text) => !text.includes(uuid) && frameType(text) === 'worker_status', 30_000, `a broadcast without the deleted worker ${uuid}`);
  }
  record(run, `new_json_${others}`, `4. new worker JSON → broadcast, ${others} other workers`, 'ms', samples, others === run.sizes.others ? 50 : undefined);
}

/**
 * Measurements 5 and 6 on one worker, alternating with the stand-in's own boot (measured without a
 * manager): set_active → set_worker, minus that boot = manager overhead; then SIGKILL → listed inactive.
 */
async function activation(run: Run, s: Session, client: ManagerClient, others: number): Promise<void> {
  const uuid = newUuid();
  await writeWorkerAtomic(s.workersDir, workerJson(uuid, s.portBase));
  await askStatusUntil(client, (st) => listed(st, uuid, 'inactive'), 30_000, 'the activation worker listed');
  const bootDir = await tempDir();
  const isTarget = others === run.sizes.others;
  try {
    for (let i = 0; i < run.sizes.activationReps; i++) {
      const boot = await standinBootMs(run.python, bootDir, await freePort());
      // The worker rewrites its JSON once it has bound (spec §2.4): the last such write before set_worker
      // marks when the manager could know, whatever the boot took.
      let bound = NaN;
      const watcher = watch(s.workersDir, (_event, name) => {
        if (name === `worker_${uuid}.json`) bound = performance.now();
      });
      const t0 = performance.now();
      client.send({ type: 'set_active', workerid: uuid });
      const at = await arrivalOf(client, (text) => frameType(text) === 'set_worker', 120_000, 'set_worker').finally(() => watcher.close());
      record(run, `bound_${others}`, `6. worker's JSON written after bind → set_worker, ${others} other workers`, 'ms', at - bound);
      record(run, `set_active_${others}`, `6. set_active → set_worker, ${others} other workers`, 'ms', at - t0);
      record(run, `boot_${others}`, `6. worker boot alone (spawn → uuid answer), paired with ${others} other workers`, 'ms', boot);
      record(run, `activation_overhead_${others}`, `6. activation overhead (set_active → set_worker − boot), ${others} other workers`, 'ms', at - t0 - boot, isTarget ? 50 : undefined);
      await askStatusUntil(client, (st) => listed(st, uuid, 'active'), 30_000, 'the worker listed active');
      const pid = Number((await readFile(path.join(s.workersDir, `worker_${uuid}.p`), 'utf8')).trim());
      const k0 = performance.now();
      process.kill(pid, 'SIGKILL');
      const gone = await statusArrival(client, (st) => listed(st, uuid, 'inactive'), 60_000, 'a broadcast listing the killed worker inactive');
      record(run, `sigkill_${others}`, `5. SIGKILL of a worker → broadcast lists it inactive, ${others} other workers`, 'ms', gone - k0, isTarget ? 50 : undefined);
    }
  } finally {
    await removeDir(bootDir);
  }
}

/** Measurement 8: `clients` subscribed connections; a new worker JSON → the last of them has the broadcast. */
async function manyClients(run: Run, s: Session): Promise<void> {
  const clients = await Promise.all(Array.from({ length: run.sizes.clients }, () => subscribe(s.manager.url)));
  try {
    const samples: number[] = [];
    for (let i = 0; i < run.sizes.clientReps; i++) {
      const uuid = newUuid();
      await writeWorkerAtomic(s.workersDir, workerJson(uuid, 1));
      const t0 = performance.now();
      const arrivals = await Promise.all(
        clients.map((c) => arrivalOf(c, (text) => text.includes(uuid) && frameType(text) === 'worker_status', 30_000, 'the broadcast on every client')),
      );
      samples.push(Math.max(...arrivals) - t0);
      await unlink(workerFile(s.workersDir, uuid));
      await Promise.all(clients.map((c) => arrivalOf(c, (text) => !text.includes(uuid) && frameType(text) === 'worker_status', 30_000, 'the removal on every client')));
    }
    record(run, 'clients', `8. new worker JSON → all ${run.sizes.clients} clients have the broadcast`, 'ms', samples);
  } finally {
    for (const c of clients) c.close();
  }
}

// ---------------------------------------------------------------- phases

/**
 * The floor under measurements 1 and 9: a bare Node process with `ws` that answers `ping`, started the
 * same way. `{dir}` is passed (unused) so the clean-up finds it like any manager.
 */
const FLOOR_WORDS = [
  process.execPath,
  '-e',
  `const { WebSocketServer } = require(${JSON.stringify(createRequire(import.meta.url).resolve('ws'))});
new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[1]) }).on('connection', (s) => s.on('message', (d) => String(d) === 'ping' && s.send('pong')));`,
  '{port}',
  '{dir}',
];

async function floor(run: Run): Promise<void> {
  await withManager({ ...run, words: FLOOR_WORDS }, none, async (s) => {
    record(run, 'floor_start_to_pong', '1. floor: bare Node + ws server, start → first pong', 'ms', s.manager.startToPong);
    await sleep(300);
    record(run, 'floor_rss', '9. floor: RSS of that bare Node + ws server', 'MiB', rssBytes(s.manager.pid) / 2 ** 20);
  });
}

const none = () => Promise.resolve();

/** 1, 2, and 4–6 and 8 without other workers. */
async function basicPhase(run: Run): Promise<void> {
  const started = (s: Session) => record(run, 'start_to_pong', '1. process start → first pong', 'ms', s.manager.startToPong, 150);
  // The last start stays up for the rest of the phase.
  for (let i = 1; i < run.sizes.starts; i++) {
    await floor(run);
    await withManager(run, none, (s) => Promise.resolve(started(s)));
  }
  await floor(run);
  await withManager(run, none, async (s) => {
    started(s);
    const client = await subscribe(s.manager.url);
    try {
      const pings: number[] = [];
      for (let i = 0; i < run.sizes.pings; i++) {
        const t0 = performance.now();
        client.send('ping');
        pings.push((await arrivalOf(client, (text) => text === 'pong', 10_000, 'pong')) - t0);
      }
      record(run, 'ping', `2. ping round trip (${run.sizes.pings} sequential)`, 'ms', pings);
      await propagation(run, s, client, 0);
      await activation(run, s, client, 0);
    } finally {
      client.close();
    }
    await manyClients(run, s);
  });
}

async function statusPhase(run: Run, count: number): Promise<void> {
  await withManager(
    run,
    async (workersDir) => void (await writeWorkers(workersDir, count, () => 1)),
    async (s) => {
      const client = await ManagerClient.connect(s.manager.url, 10_000);
      try {
        // A manager may answer before its first scan is done: the list must be complete first.
        await askStatusUntil(client, (st) => st.active.length + st.inactive.length === count, 120_000, `all ${count} workers listed`);
        await statusReplies(run, count, client);
      } finally {
        client.close();
      }
    },
  );
}

/** 9 with `others` inactive workers, then 3, 4, 5 and 6 among them. */
async function othersPhase(run: Run): Promise<void> {
  const others = run.sizes.others;
  await withManager(
    run,
    async (workersDir) => void (await writeWorkers(workersDir, others, () => 1)),
    async (s) => {
      const client = await subscribe(s.manager.url);
      try {
        await askStatusUntil(client, (st) => st.active.length + st.inactive.length === others, 120_000, `all ${others} workers listed`);
        await idleCost(run, s, `${others} inactive workers`, 'inactive');
        await statusReplies(run, others, client);
        await propagation(run, s, client, others);
        await activation(run, s, client, others);
      } finally {
        client.close();
      }
    },
  );
}

/** 7, then 9 with `activeIdle` of them still running. */
async function activePhase(run: Run): Promise<void> {
  const { parallelStarts, activeIdle } = run.sizes;
  let uuids: string[] = [];
  await withManager(
    run,
    async (workersDir, portBase) => void (uuids = await writeWorkers(workersDir, parallelStarts, (i) => portBase + i)),
    async (s) => {
      const client = await subscribe(s.manager.url);
      try {
        const countActive = (st: StatusLists) => uuids.filter((u) => listed(st, u, 'active')).length;
        const t0 = performance.now();
        for (const uuid of uuids) client.send({ type: 'set_active', workerid: uuid });
        const at = await statusArrival(client, (st) => countActive(st) === parallelStarts, 300_000, `all ${parallelStarts} workers active`);
        record(run, 'parallel_start', `7. ${parallelStarts} workers started at once → all active`, 'ms', at - t0);
        for (const uuid of uuids.slice(activeIdle)) client.send({ type: 'stop_worker', workerid: uuid });
        await askStatusUntil(client, (st) => countActive(st) === activeIdle, 120_000, `${activeIdle} workers left active`);
        await idleCost(run, s, `${activeIdle} active workers`, 'active');
      } finally {
        client.close();
      }
    },
  );
}

function machine(): BenchReport['machine'] {
  return { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${process.platform} ${process.arch}`, loadavg: loadavg() };
}

/** Runs every phase on every manager (alternating which goes first) and returns the samples and summaries. */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const log = options.log ?? (() => undefined);
  const runs: Run[] = options.managers.map((m) => ({ words: splitCommand(m.template), python: options.python, sizes: options.sizes, log, samples: new Map() }));
  const phases: [string, (run: Run) => Promise<void>][] = [
    ['start, ping, propagation, activation, clients (no other workers)', basicPhase],
    ...options.sizes.statusSizes.map((n): [string, (run: Run) => Promise<void>] => [`worker_status with ${n} workers`, (run) => statusPhase(run, n)]),
    [`${options.sizes.others} workers: idle cost, status, propagation, activation`, othersPhase],
    [`${options.sizes.parallelStarts} parallel starts, ${options.sizes.activeIdle} active idle`, activePhase],
  ];
  const report: BenchReport = { date: new Date().toISOString(), machine: machine(), python: options.python, sizes: options.sizes, managers: [] };
  try {
    for (const [index, [name, phase]] of phases.entries()) {
      const order = index % 2 === 0 ? runs : [...runs].reverse();
      for (const run of order) {
        log(`${options.managers[runs.indexOf(run)]?.label ?? ''}: ${name}`);
        await phase(run);
      }
    }
  } finally {
    cleanupAll();
  }
  report.managers = options.managers.map((m, i) => ({
    label: m.label,
    template: m.template,
    metrics: [...(runs[i]).samples].map(([id, e]) => ({ id, label: e.label, unit: e.unit, samples: e.samples, summary: summarize(e.samples), target: e.target })),
  }));
  return report;
}
