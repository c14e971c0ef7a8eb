/**
 * The stand-in worker (test/standin/) cannot drift from the real FuncNodes worker: both are started with
 * the same files and the same command line, and what the manager relies on is recorded and compared —
 * the files and their order, the wire replies byte for byte where deterministic, the stop sequence seen
 * by the oldest and by the other clients, the exit code. A difference fails and is named.
 */
import { watch } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { makeTempDir, waitFor } from './helpers/manager.js';
import { realFuncnodes, type RealFuncnodes } from './helpers/real-funcnodes.js';
import { freePort } from './helpers/real-worker.js';
import { spawnStandin, standinArgs, standinPython } from './helpers/standin.js';

const UUID = 'drift0123456789abcdef0123456789ab';

/** One WebSocket client that records every text frame and how it closed. */
class Recorder {
  readonly frames: string[] = [];
  closed?: { code: number; reason: string };
  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;
  private readonly ended: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ended = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        resolve();
      }),
    );
    this.ws.on('message', (data, isBinary) => {
      if (!isBinary) this.frames.push((data as Buffer).toString('utf8'));
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.ws.on('error', () => undefined);
  }

  open(): Promise<void> {
    return this.opened;
  }

  send(text: string): void {
    this.ws.send(text);
  }

  /** Waits until the frames satisfy `ok`. */
  async until(ok: (frames: string[]) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ok(this.frames)) {
      if (Date.now() > deadline) throw new Error(`timed out; frames: ${JSON.stringify(this.frames)}`);
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), new Promise((resolve) => setTimeout(resolve, 200))]);
    }
  }

  closedWithin(timeoutMs: number): Promise<void> {
    return Promise.race([this.ended, new Promise<void>((_, reject) => setTimeout(() => reject(new Error('no close')), timeoutMs))]);
  }
}

interface Observation {
  /** Each file's distinct contents in the order they were seen (JSON: its keys and pid/port roles). */
  fileHistory: Record<string, string[] | boolean>;
  /** Files present when the worker first answered its uuid, and after it exited. */
  filesWhenUp: string[];
  filesAfterExit: string[];
  runstateWhenUp: string;
  pWhenUp: string;
  jsonWhenUp: Record<string, string>;
  /** Raw reply texts. */
  uuidReply: string;
  nameReply: string;
  pongReply: string;
  /** What a JSON array and a non-JSON text do to a connection. */
  afterJsonArray: string;
  nonJsonClose: string;
  stopOldest: string[];
  stopRequester: string[];
  stopOther: string[];
  answersAfterStop: boolean;
  exitCode: number | null;
}

/** A frame as the comparison sees it: the parsed object, with the parts that are never deterministic left out. */
function shape(frame: string): string {
  try {
    const value = JSON.parse(frame) as Record<string, unknown>;
    if (value.type === 'progress') return `progress ${JSON.stringify(value.message)} ${String(value.progress)} ${String(value.status)} blocking=${String(value.blocking)}`;
    if (value.type === 'result') return `result ${JSON.stringify(value.result)} id=${JSON.stringify(value.id)}`;
    if (value.type === 'workerevent') return `workerevent ${String(value.event)} ${JSON.stringify(value.data)}`;
    return `${String(value.type)}`;
  } catch {
    return `text ${frame}`;
  }
}

/**
 * The file histories from the worker's `running` on, as the texts written, in order: without torn reads
 * (both rewrite `.p` and `.runstate` in place, so a read can see an empty file, which the manager
 * tolerates) and without the moments a file was gone (the stop removes `.runstate` and writes it again,
 * sometimes too fast to be seen); whether it was removed during the stop is kept separately. The start
 * stages before `running` are not compared: the stand-in passes them in milliseconds, too fast to see.
 */
function settledHistory(history: Record<string, string[]>): Record<string, string[] | boolean> {
  const out: Record<string, string[] | boolean> = {};
  for (const [file, entries] of Object.entries(history)) {
    const from = file === '.runstate' ? Math.max(0, entries.indexOf('running')) : 0;
    const seen = entries.slice(from).filter((entry) => entry !== '' && entry !== '<other: >');
    out[`${file} removed on the way`] = seen.slice(0, -1).includes('<gone>');
    const written = seen.filter((entry) => entry !== '<gone>');
    // `.runstate` = `stopped` lives for a millisecond in both (spec 14.1, 14.9): seen or not by chance.
    out[file] = written.filter((entry, i) => entry !== written[i - 1] && !(file === '.runstate' && entry === 'stopped'));
  }
  return out;
}

function pidRole(value: unknown, pid: number | undefined): string {
  return value === pid ? '<worker pid>' : JSON.stringify(value);
}

async function observe(python: string, env: NodeJS.ProcessEnv): Promise<Observation> {
  const dir = await makeTempDir('fnwm-drift-');
  const workers = path.join(dir, 'workers');
  await mkdir(workers, { recursive: true });
  const port = await freePort();
  const base = { type: 'WSWorker', uuid: UUID, name: 'drift', data_path: null, env_path: null, host: '127.0.0.1', port, ssl: false, update_on_startup: { funcnodes: false, 'funcnodes-core': false, 'funcnodes-worker': false } };
  await writeFile(path.join(workers, `worker_${UUID}.json`), JSON.stringify(base, null, 2));
  const history: Record<string, string[]> = {};
  // The watch starts before the spawn; the pid is known from then on.
  const proc: { pid?: number } = {};
  const note = async (name: string) => {
    const suffix = name.replace(`worker_${UUID}`, '');
    if (!['.p', '.runstate', '.json'].includes(suffix)) return;
    const text = await readFile(path.join(workers, name), 'utf8').catch(() => undefined);
    let entry: string;
    if (text === undefined) entry = '<gone>';
    else if (suffix === '.p') entry = text.trim() === String(proc.pid) ? '<worker pid>' : `<other: ${text.trim()}>`;
    else if (suffix === '.json') {
      try {
        const json = JSON.parse(text) as Record<string, unknown>;
        entry = `pid=${pidRole(json.pid, proc.pid)} port=${json.port === port ? '<given>' : JSON.stringify(json.port)}`;
      } catch {
        return; // caught mid-write
      }
    } else entry = text;
    const list = (history[suffix] ??= []);
    if (list.at(-1) !== entry) list.push(entry);
  };
  // One read at a time, so the history keeps the order of the events.
  let reading = Promise.resolve();
  const watcher = watch(workers, (_event, name) => {
    if (name) reading = reading.then(() => note(name));
  });
  const worker = spawnStandin(standinArgs(dir, UUID), { ...process.env, ...env, FUNCNODES_CONFIG_DIR: dir, USE_SUBPROCESS_MONITOR: '0', FUNCNODES_WS_WORKER_STARTPORT: String(port), FUNCNODES_WS_WORKER_ENDPORT: String(port + 20) }, python);
  proc.pid = worker.child.pid;
  const pid = proc.pid;
  const url = `ws://127.0.0.1:${port}`;
  try {
    // Up: the first uuid answer on the port the JSON names.
    let probe: Recorder | undefined;
    await waitFor(
      async () => {
        const r = new Recorder(url);
        try {
          await r.open();
        } catch {
          return false;
        }
        probe = r;
        return true;
      },
      60_000,
      `the worker to listen (output: ${worker.output()})`,
    );
    const names = async () => (await readdir(workers)).sort();
    const filesWhenUp = await names();
    const runstateWhenUp = await readFile(path.join(workers, `worker_${UUID}.runstate`), 'utf8').catch(() => '<none>');
    const pWhenUp = (await readFile(path.join(workers, `worker_${UUID}.p`), 'utf8').catch(() => '<none>')).trim() === String(pid) ? '<worker pid>' : '<other>';
    const jsonUp = JSON.parse(await readFile(path.join(workers, `worker_${UUID}.json`), 'utf8')) as Record<string, unknown>;
    const jsonWhenUp = Object.fromEntries(
      Object.keys(jsonUp)
        .sort()
        .map((key) => [key, key === 'pid' ? pidRole(jsonUp.pid, pid) : key === 'port' && jsonUp.port === port ? '<given>' : JSON.stringify(jsonUp[key]).replaceAll(dir, '<dir>')]),
    );

    const oldest = probe!;
    oldest.send(JSON.stringify({ type: 'cmd', cmd: 'uuid', id: 'u1' }));
    await oldest.until((f) => f.some((t) => t.includes('"u1"')));
    const uuidReply = oldest.frames.find((t) => t.includes('"u1"'))!;
    oldest.send(JSON.stringify({ type: 'cmd', cmd: 'name', id: 'n1' }));
    await oldest.until((f) => f.some((t) => t.includes('"n1"')));
    const nameReply = oldest.frames.find((t) => t.includes('"n1"'))!;

    const pinger = new Recorder(url);
    await pinger.open();
    pinger.send(JSON.stringify({ type: 'ping' }));
    await pinger.until((f) => f.length > 0);
    const pongReply = pinger.frames[0];
    // A JSON array: the next frame is the answer to the uuid sent after it.
    pinger.send('[1, 2]');
    pinger.send(JSON.stringify({ type: 'cmd', cmd: 'uuid', id: 'u2' }));
    await pinger.until((f) => f.length > 1);
    const afterJsonArray = shape(pinger.frames[1]);

    const rude = new Recorder(url);
    await rude.open();
    rude.send('not json');
    await rude.closedWithin(5000);
    const nonJsonClose = `${rude.closed!.code}`;

    // Stop: the oldest client (probe), the requester, and a bystander.
    const requester = new Recorder(url);
    await requester.open();
    const other = new Recorder(url);
    await other.open();
    oldest.frames.length = 0;
    pinger.frames.length = 0;
    requester.send(JSON.stringify({ type: 'cmd', cmd: 'stop_worker', id: 's1' }));
    await oldest.closedWithin(10_000);
    await requester.until((f) => f.some((t) => t.includes('"stopping"')));
    await other.until((f) => f.some((t) => t.includes('"stopping"')));
    // It keeps answering until it exits (spec §14.1).
    const late = new Recorder(url);
    let answersAfterStop = false;
    try {
      await late.open();
      late.send(JSON.stringify({ type: 'cmd', cmd: 'uuid', id: 'u3' }));
      await late.until((f) => f.some((t) => t.includes('"u3"')), 3000);
      answersAfterStop = true;
    } catch {
      answersAfterStop = false;
    }
    const exitCode = (await worker.exited).code;
    await requester.closedWithin(5000);
    await other.closedWithin(5000);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the last fs events
    const filesAfterExit = await names();
    await reading;
    for (const name of filesAfterExit) await note(name);
    const closeOf = (r: Recorder) => `close ${r.closed?.code ?? 'none'}${r.closed?.reason ? ` ${r.closed.reason}` : ''}`;
    return {
      fileHistory: settledHistory(history),
      filesWhenUp: filesWhenUp.map((n) => n.replace(UUID, '<uuid>')),
      filesAfterExit: filesAfterExit.map((n) => n.replace(UUID, '<uuid>')),
      runstateWhenUp,
      pWhenUp,
      jsonWhenUp,
      uuidReply,
      nameReply,
      pongReply,
      afterJsonArray,
      nonJsonClose,
      stopOldest: [...oldest.frames.map(shape), closeOf(oldest)],
      stopRequester: [...requester.frames.map(shape), closeOf(requester)],
      stopOther: [...other.frames.map(shape), closeOf(other)],
      answersAfterStop,
      exitCode,
    };
  } finally {
    watcher.close();
    worker.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

/** Every field where the two differ, as `field: stand-in … real …`. */
function differences(standin: Observation, real: Observation): string[] {
  const out: string[] = [];
  for (const key of Object.keys(real) as (keyof Observation)[]) {
    const [a, b] = [JSON.stringify(standin[key]), JSON.stringify(real[key])];
    if (a !== b) out.push(`${key}: stand-in ${a}, real ${b}`);
  }
  return out;
}

let fn: RealFuncnodes;
let real: Observation;
let standin: Observation;
beforeAll(async () => {
  fn = await realFuncnodes();
  [real, standin] = await Promise.all([
    observe(fn.python, {}),
    observe(standinPython, { FUNCNODES_STANDIN: '' }),
  ]);
}, 600_000);

describe('the stand-in worker against the real FuncNodes worker', () => {
  it('shows the manager the same files, replies, stop sequences and exit code', () => {
    expect(differences(standin, real)).toEqual([]);
  });
});
