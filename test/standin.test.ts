// The stand-in worker (test/standin) must behave like the real FuncNodes worker as far as the
// manager can see (spec sections 2.3-2.7, 5 and 14). It is run exactly as the manager runs it.
import { afterEach, describe, expect, it } from 'vitest';
import { readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import {
  makeConfigDir,
  randomPortRange,
  spawnStandin,
  standinArgs,
  standinEnv,
  workerPaths,
  writeWorkerJson,
  type PortRange,
  type StandinOptions,
  type StandinProcess,
  type WorkerPaths,
} from './helpers/standin.js';

type Json = Record<string, unknown>;

interface Prepared {
  configDir: string;
  uuid: string;
  paths: WorkerPaths;
  ports: PortRange;
}

interface Client {
  messages: Json[];
  closed: Promise<{ code: number; reason: string }>;
  send: (msg: unknown) => void;
  ws: WebSocket;
}

const procs: StandinProcess[] = [];
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const proc of procs.splice(0)) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
    await proc.exited;
  }
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const progress = (value: number): Json => ({
  type: 'progress',
  message: 'Stopping worker',
  status: 'info',
  progress: value,
  blocking: false,
});

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

async function readJson(file: string): Promise<Json | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Json;
  } catch {
    return undefined;
  }
}

/** Polls until `probe` returns a truthy value. */
async function waitFor<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A temp config dir with `worker_<uuid>.json` (none when `json` is null). */
async function prepare(json: Json | null = {}): Promise<Prepared> {
  const configDir = await makeConfigDir();
  cleanups.push(() => rm(configDir, { recursive: true, force: true }));
  const uuid = `w_${Math.random().toString(16).slice(2, 10)}`;
  if (json) await writeWorkerJson(configDir, uuid, json);
  return { configDir, uuid, paths: workerPaths(configDir, uuid), ports: randomPortRange() };
}

function start(w: Prepared, env: Record<string, string> = {}, args = standinArgs(w.configDir, w.uuid)) {
  const proc = spawnStandin(args, standinEnv(w.configDir, w.ports, env));
  procs.push(proc);
  return proc;
}

/** Resolves with the worker JSON once the worker has bound and rewritten it. */
function bound(w: Prepared, proc: StandinProcess): Promise<Json> {
  return waitFor(async () => {
    const conf = await readJson(w.paths.json);
    return conf?.pid === proc.child.pid ? conf : undefined;
  }, 'the worker JSON rewritten after binding');
}

async function launch(json: Json = {}, env: Record<string, string> = {}) {
  const w = await prepare(json);
  const proc = start(w, env);
  const conf = await bound(w, proc);
  return { ...w, proc, port: conf.port as number };
}

async function connect(port: number): Promise<Client> {
  const ws = new WebSocket(`ws://localhost:${port}/`);
  ws.on('error', () => {}); // resets when the worker process exits are expected
  cleanups.push(() => ws.terminate());
  const messages: Json[] = [];
  // binaryType is the default 'nodebuffer', so every frame arrives as one Buffer.
  ws.on('message', (data) => messages.push(JSON.parse((data as Buffer).toString('utf8')) as Json));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', () => reject(new Error(`cannot connect to port ${port}`)));
  });
  return { ws, messages, closed, send: (msg) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg)) };
}

async function listenOn(port: number): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
}

describe('stand-in worker: startup', () => {
  it('walks through the runstates, writes .p and rewrites the JSON after binding', async () => {
    const standin: StandinOptions = { boot_delay: 0.6 };
    const w = await prepare({
      name: 'demo',
      data_path: '/elsewhere',
      update_on_startup: { funcnodes: false },
      custom: { kept: [1, 2] },
      standin,
    });
    const proc = start(w);
    const seen: string[] = [];
    let conf: Json | undefined;
    while (!conf) {
      const state = await readText(w.paths.runstate);
      // '' or a torn prefix can be read between truncate and write, as with the real worker: a read that
      // a longer one then completes is replaced by it.
      if (state && state !== seen.at(-1)) {
        if (seen.length > 0 && state.startsWith(seen.at(-1)!)) seen[seen.length - 1] = state;
        else seen.push(state);
      }
      const json = await readJson(w.paths.json);
      if (json?.pid === proc.child.pid) conf = json;
      else await sleep(5);
    }
    expect(seen.filter((s) => s !== 'starting\nLoading packages')).toEqual([
      'starting\nLoading config',
      'starting\nLoading nodespace',
      'running',
    ]);
    expect(await readText(w.paths.p)).toBe(String(proc.child.pid));
    expect(conf).toEqual({
      type: 'WSWorker',
      uuid: w.uuid,
      name: 'demo',
      data_path: null,
      env_path: null,
      worker_dependencies: {},
      package_dependencies: {},
      pid: proc.child.pid,
      autostart: 'never',
      update_on_startup: { funcnodes: false, 'funcnodes-core': true, 'funcnodes-worker': true },
      host: 'localhost',
      port: w.ports.start,
      ssl: false,
      custom: { kept: [1, 2] },
      standin,
    });
    expect((await stat(w.paths.json)).mode & 0o777).toBe(0o600);
    expect(await readText(w.paths.log)).toContain(`Server running on ws://localhost:${w.ports.start}`);
  });

  it('takes the next port when the first one is in use', async () => {
    const w = await prepare();
    await listenOn(w.ports.start);
    const conf = await bound(w, start(w));
    expect(conf.port).toBe(w.ports.start + 1);
  });

  it('keeps retrying when the port range is exhausted', async () => {
    const w = await prepare();
    await listenOn(w.ports.start);
    const proc = start(w, { FUNCNODES_WS_WORKER_ENDPORT: String(w.ports.start) });
    await waitFor(async () => (await readText(w.paths.log))?.includes('No free ports available'), 'the log line');
    expect(proc.child.exitCode).toBeNull();
    expect(await readText(w.paths.runstate)).toBe('running');
  });

  it('refuses to start when a .p exists, touching neither .p nor .runstate', async () => {
    const w = await prepare();
    await writeFile(w.paths.p, '999999');
    await writeFile(w.paths.runstate, 'running');
    const past = new Date('2020-01-01T00:00:00Z');
    await utimes(w.paths.p, past, past);
    await utimes(w.paths.runstate, past, past);
    const proc = start(w);
    expect(await proc.exited).toEqual({ code: 1, signal: null });
    expect(proc.output()).toContain('Worker already running');
    expect(await readText(w.paths.p)).toBe('999999');
    expect(await readText(w.paths.runstate)).toBe('running');
    expect((await stat(w.paths.p)).mtime).toEqual(past);
    expect((await stat(w.paths.runstate)).mtime).toEqual(past);
  });

  it('exits 1 when the worker JSON is missing', async () => {
    const w = await prepare(null);
    const proc = start(w);
    expect(await proc.exited).toEqual({ code: 1, signal: null });
    expect(proc.output()).toContain('No worker found with the given uuid');
    expect(await readText(w.paths.p)).toBeUndefined();
  });

  it('finds a worker by --name and implements only `worker start`', async () => {
    const w = await prepare({ name: 'by-name' });
    const byName = start(w, {}, ['-m', 'funcnodes', '--dir', w.configDir, 'worker', '--name', 'by-name', 'start']);
    await bound(w, byName);
    const version = start(w, {}, ['-m', 'funcnodes', '--version']);
    expect(await version.exited).toEqual({ code: 0, signal: null });
    expect(version.output().trim()).toBe('0.0.0+standin');
    const list = start(w, {}, ['-m', 'funcnodes', '--dir', w.configDir, 'worker', 'list']);
    expect((await list.exited).code).toBe(2);
  });
});

describe('stand-in worker: WebSocket protocol', () => {
  it('answers uuid and name to the requester, broadcasts pong and errors, ignores the rest', async () => {
    const w = await launch({ name: 'demo' });
    const a = await connect(w.port);
    const b = await connect(w.port);
    a.send({ type: 'cmd', cmd: 'uuid', id: 7 });
    a.send({ type: 'cmd', cmd: 'name', kwargs: {} });
    b.send({ type: 'ping' });
    b.send({ type: 'cmd', cmd: 'nope', id: 'x' });
    b.send([1, 2]);
    b.send({ foo: 1 });
    b.send({ type: 'ping' });
    const pong = { type: 'pong' };
    const error = {
      type: 'error',
      error: 'Unknown command nope , available commands: uuid, name, stop_worker',
      tb: [],
      id: 'x',
    };
    await waitFor(() => a.messages.length >= 5 && b.messages.length >= 3, 'the answers');
    expect(a.messages).toEqual([
      { type: 'result', result: w.uuid, id: 7 },
      { type: 'result', result: 'demo', id: null },
      pong,
      error,
      pong,
    ]);
    expect(b.messages).toEqual([pong, error, pong]);

    b.send('not json');
    expect((await b.closed).code).toBe(1000);
    const quiet = await connect(w.port);
    await sleep(150);
    expect(quiet.messages).toEqual([]); // nothing unsolicited on connect
    expect((await fetch(`http://localhost:${w.port}/`)).status).toBe(400);
  });

  it('sends noise before a result and a wrong uuid; JSON options win over FUNCNODES_STANDIN', async () => {
    const w = await launch(
      { standin: { wrong_uuid: 'from-json' } },
      { FUNCNODES_STANDIN: JSON.stringify({ noise: 2, wrong_uuid: 'from-env' }) },
    );
    const observer = await connect(w.port);
    const probe = await connect(w.port);
    probe.send({ type: 'cmd', cmd: 'uuid' });
    await waitFor(() => probe.messages.length >= 3, 'the result');
    expect(probe.messages.map((m) => m.type)).toEqual(['nsevent', 'progress', 'result']);
    expect(probe.messages[2]).toEqual({ type: 'result', result: 'from-json', id: null });
    expect(observer.messages.map((m) => m.type)).toEqual(['nsevent', 'progress']);
  });
});

describe('stand-in worker: stop and failure', () => {
  it('stops on stop_worker like the real worker: closes only the oldest client, exits 0 later', async () => {
    const w = await launch({}, { FUNCNODES_STANDIN_STOP_DELAY: '0.8' });
    const oldest = await connect(w.port);
    const requester = await connect(w.port);
    requester.send({ type: 'cmd', cmd: 'stop_worker', id: 's1' });
    expect(await oldest.closed).toEqual({ code: 1001, reason: 'Server shutting down' });
    // As with aiohttp >= 3.10.4, which FuncNodes pins: the close frame only (spec 14.9).
    expect(oldest.messages).toEqual([]);
    await waitFor(() => requester.messages.length >= 4, 'the stop messages');
    expect(requester.messages).toEqual([
      progress(0),
      progress(1),
      { type: 'result', result: true, id: 's1' },
      { type: 'workerevent', event: 'stopping', data: { data: {} } },
    ]);
    await waitFor(async () => (await readText(w.paths.p)) === undefined, '.p to disappear');

    // Still answering until the process exits (spec 14.1).
    const late = await connect(w.port);
    late.send({ type: 'cmd', cmd: 'uuid' });
    await waitFor(() => late.messages.length >= 1, 'the late answer');
    expect(late.messages[0]).toEqual({ type: 'result', result: w.uuid, id: null });

    expect(await w.proc.exited).toEqual({ code: 0, signal: null });
    expect((await requester.closed).code).toBe(1006);
    expect(await readText(w.paths.p)).toBeUndefined();
    expect(await readText(w.paths.runstate)).toBe('removed');
    expect((await readJson(w.paths.json))?.port).toBe(w.port);
  });

  it('stop_order "aiohttp-3.8": the oldest client gets the progress before its close frame', async () => {
    const w = await launch({ standin: { stop_order: 'aiohttp-3.8' } }, { FUNCNODES_STANDIN_STOP_DELAY: '0.3' });
    const oldest = await connect(w.port);
    const requester = await connect(w.port);
    requester.send({ type: 'cmd', cmd: 'stop_worker', id: 's1' });
    expect(await oldest.closed).toEqual({ code: 1001, reason: 'Server shutting down' });
    expect(oldest.messages).toEqual([progress(0)]);
    expect(await w.proc.exited).toEqual({ code: 0, signal: null });
  });

  it('runs a stop_worker command written into .p', async () => {
    const w = await launch({}, { FUNCNODES_STANDIN_P_INTERVAL: '0.1', FUNCNODES_STANDIN_STOP_DELAY: '0.3' });
    await writeFile(w.paths.p, JSON.stringify({ cmd: 'stop_worker', kwargs: {} }));
    expect(await w.proc.exited).toEqual({ code: 0, signal: null });
    expect(await readText(w.paths.p)).toBeUndefined();
  });

  it('stops itself, leaving the files alone, when .p names another live process', async () => {
    const w = await launch({}, { FUNCNODES_STANDIN_P_INTERVAL: '0.1', FUNCNODES_STANDIN_STOP_DELAY: '0.3' });
    await writeFile(w.paths.p, String(process.pid));
    expect(await w.proc.exited).toEqual({ code: 0, signal: null });
    expect(await readText(w.paths.p)).toBe(String(process.pid));
    expect(w.proc.output()).toContain('Worker already running');
  });

  it('stops on SIGTERM with exit code 0, closing connections (1001), and leaves no .p', async () => {
    const w = await launch();
    const client = await connect(w.port);
    w.proc.child.kill('SIGTERM');
    expect(await w.proc.exited).toEqual({ code: 0, signal: null });
    expect((await client.closed).code).toBe(1001);
    expect(await readText(w.paths.p)).toBeUndefined();
  });

  it('crash_after: exits 3 and leaves a stale .p and .runstate', async () => {
    const w = await launch({ standin: { crash_after: 0.2 } });
    expect(await w.proc.exited).toEqual({ code: 3, signal: null });
    expect(await readText(w.paths.p)).toBe(String(w.proc.child.pid));
    expect(await readText(w.paths.runstate)).toBe('running');
  });

  it('ignore_stop: answers nothing to stop_worker, survives SIGTERM, dies to SIGKILL', async () => {
    const w = await launch({ standin: { ignore_stop: true } });
    const client = await connect(w.port);
    client.send({ type: 'cmd', cmd: 'stop_worker', id: 1 });
    w.proc.child.kill('SIGTERM');
    await sleep(300);
    client.send({ type: 'cmd', cmd: 'uuid', id: 2 });
    await waitFor(() => client.messages.length >= 1, 'the uuid answer');
    expect(client.messages).toEqual([{ type: 'result', result: w.uuid, id: 2 }]);
    expect(w.proc.child.exitCode).toBeNull();
    w.proc.child.kill('SIGKILL');
    expect(await w.proc.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await readText(w.paths.p)).toBe(String(w.proc.child.pid));
  });

  it('never_bind: reaches running and keeps restoring .p, but never listens', async () => {
    const json = { standin: { never_bind: true } };
    const w = await prepare(json);
    const proc = start(w, { FUNCNODES_STANDIN_P_INTERVAL: '0.1' });
    await waitFor(async () => (await readText(w.paths.runstate)) === 'running', 'runstate running');
    await unlink(w.paths.p);
    await waitFor(async () => (await readText(w.paths.p)) === String(proc.child.pid), '.p to come back');
    expect(await readJson(w.paths.json)).toEqual({ type: 'WSWorker', uuid: w.uuid, name: w.uuid, ...json });
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(w.ports.start, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });

  it('exit_at start: exits with exit_code before writing anything', async () => {
    const w = await prepare({ standin: { exit_at: 'start', exit_code: 7 } });
    expect(await start(w).exited).toEqual({ code: 7, signal: null });
    expect(await readText(w.paths.p)).toBeUndefined();
    expect(await readText(w.paths.runstate)).toBeUndefined();
  });
});
