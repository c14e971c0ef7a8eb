/**
 * End-to-end tests of the headless `fnwm` CLI (dist/main/cli.js) against real processes, real sockets and
 * temp config dirs, with the stand-in Python worker (test/standin) as FUNCNODES_PYTHON.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManagerClient, probeManager } from '../src-main/core/hub/client.js';
import {
  assertCliBuilt,
  CLI,
  canListProcesses,
  cliEnv,
  exitWithin,
  fnwm,
  freePort,
  isAlive,
  killForegroundManagers,
  lines,
  managerPids,
  show,
  startForeground,
  stopManagersFor,
  writeManagerConfig,
  type CliResult,
  type Env,
} from './helpers/cli.js';
import { createWorker, killWorkers, makeTempDir, readUntil, waitFor } from './helpers/manager.js';
import { randomPortRange, standinPython, workerPaths } from './helpers/standin.js';

const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await makeTempDir('fnwm-cli-');
  dirs.push(dir);
  return dir;
}

beforeAll(() => {
  assertCliBuilt();
});

afterAll(async () => {
  await killForegroundManagers();
  for (const dir of dirs) {
    const leaked = await stopManagersFor(dir);
    await killWorkers(path.join(dir, 'workers'));
    await rm(dir, { recursive: true, force: true });
    expect(leaked, `managers for ${dir} that ignored the kill file`).toEqual([]);
  }
});

/** Exit non-zero, nothing on stdout, exactly one stderr line, starting with `fnwm:`. */
function expectOneError(r: CliResult, pattern?: RegExp): void {
  expect(r.timedOut, show(r)).toBe(false);
  expect(r.exitCode, show(r)).not.toBe(0);
  expect(r.stdout, show(r)).toBe('');
  const errLines = lines(r.stderr);
  expect(errLines, show(r)).toHaveLength(1);
  expect(errLines[0], show(r)).toMatch(/^fnwm: /);
  if (pattern) expect(errLines[0], show(r)).toMatch(pattern);
}

function expectOk(r: CliResult): void {
  expect(r.timedOut, show(r)).toBe(false);
  expect(r.exitCode, show(r)).toBe(0);
}

async function ask(url: string, frame: string): Promise<string> {
  const client = await ManagerClient.connect(url);
  try {
    client.send(frame);
    return await client.nextText(3000);
  } finally {
    client.close();
  }
}

async function expectAnswers(url: string): Promise<void> {
  expect(await ask(url, 'ping')).toBe('pong');
  expect(JSON.parse(await ask(url, 'identify'))).toEqual({ class: 'WorkerManager', py: standinPython });
}

// ------------------------------------------------------------------------------------------------

describe('fnwm startworkermanager (foreground)', () => {
  const env = cliEnv(randomPortRange());

  afterEach(killForegroundManagers);

  async function start(dir: string) {
    const m = await startForeground(['--dir', dir, '--host', '127.0.0.1', '--port', '0'], env);
    expect(m.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(m.port).toBeGreaterThan(0);
    await expectAnswers(m.url);
    return m;
  }

  it('prints its ws:// URL first and answers ping and identify there', async () => {
    const m = await start(await tempDir());
    // ping/identify also through the CLI's own probe (a new connection each)
    expect(await probeManager(m.url)).toEqual({ class: 'WorkerManager', py: standinPython });
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`stops cleanly on ${signal} with exit code 0 and frees its port`, async () => {
      const m = await start(await tempDir());
      m.child.kill(signal);
      expect(await exitWithin(m.exited, 5000)).toEqual({ code: 0, signal: null });
      expect(await probeManager(m.url, 1000)).toBeUndefined();
      expect(lines(m.stdout())).toEqual([m.url]);
    });
  }

  it('stops the workers it started when it stops; with --keep-workers it leaves them running', async () => {
    for (const keep of [false, true]) {
      const dir = await tempDir();
      const m = await startForeground(['--dir', dir, '--host', '127.0.0.1', '--port', '0', ...(keep ? ['--keep-workers'] : [])], env);
      const client = await ManagerClient.connect(m.url);
      const created = await createWorker(client, path.join(dir, 'workers'), 'child');
      client.send({ type: 'set_active', workerid: created });
      const pid = (await readUntil(client, 'set_worker', 20_000)).found.data.pid;
      client.close();
      m.child.kill('SIGTERM');
      expect(await exitWithin(m.exited, 10_000)).toEqual({ code: 0, signal: null });
      expect(isAlive(Number(pid)), `worker alive after the manager stopped (keep: ${keep})`).toBe(keep);
      await killWorkers(path.join(dir, 'workers'));
    }
  });

  it('stops on the kill file with exit code 0 and removes the file', async () => {
    const dir = await tempDir();
    const m = await start(dir);
    const killFile = path.join(dir, 'kill_worker_manager');
    await writeFile(killFile, '');
    expect(await exitWithin(m.exited, 5000)).toEqual({ code: 0, signal: null });
    expect(existsSync(killFile)).toBe(false);
  });

  describe('faults inside the manager process', () => {
    /** A preload that, on SIGUSR2, makes the manager process hit the fault named in FNWM_TEST_FAULT. */
    async function startWithFault(fault: 'reject' | 'throw' | 'leak') {
      const dir = await tempDir();
      const preload = path.join(dir, 'fault.cjs');
      await writeFile(
        preload,
        `process.on('SIGUSR2', () => {
          process.stderr.write('fault injected\\n');
          if (process.env.FNWM_TEST_FAULT === 'reject') Promise.reject(new Error('injected rejection'));
          if (process.env.FNWM_TEST_FAULT === 'throw') setImmediate(() => { throw new Error('injected exception'); });
          if (process.env.FNWM_TEST_FAULT === 'leak') setInterval(() => undefined, 1000);
        });`,
      );
      const m = await startForeground(['--dir', dir, '--host', '127.0.0.1', '--port', '0'], { ...env, NODE_OPTIONS: `--require ${preload}`, FNWM_TEST_FAULT: fault });
      m.child.kill('SIGUSR2');
      await waitFor(() => m.stderr().includes('fault injected'), 5000, 'the fault');
      return { ...m, dir };
    }

    it('an unhandled rejection is logged and the manager keeps serving', async () => {
      const m = await startWithFault('reject');
      await waitFor(() => m.stderr().includes('Unhandled promise rejection (the Workermanager keeps running): Error: injected rejection'), 5000, 'the log line');
      await expectAnswers(m.url);
      m.child.kill('SIGTERM');
      expect(await exitWithin(m.exited, 5000)).toEqual({ code: 0, signal: null });
    });

    it('an uncaught exception is logged, then the manager stops cleanly with exit code 1', async () => {
      const m = await startWithFault('throw');
      expect(await exitWithin(m.exited, 10_000)).toEqual({ code: 1, signal: null });
      expect(m.stderr()).toContain('Uncaught exception; stopping the Workermanager: Error: injected exception');
      expect(m.stderr()).toContain('Stopping the Workermanager (uncaught exception)');
      expect(await probeManager(m.url, 1000)).toBeUndefined();
    });

    it('"fnwm stop" returns only once the manager process has exited, not when it stops answering', async () => {
      // The leaked handle keeps the process 5 s beyond the closing of its port.
      const m = await startWithFault('leak');
      const r = await fnwm(['--dir', m.dir, '--host', '127.0.0.1', '--port', String(m.port), 'stop'], env);
      expectOk(r);
      expect(r.stdout).toBe(`Workermanager on ${m.url} stopped`);
      expect(isAlive(m.pid)).toBe(false);
    });

    it('a handle left open after the stop does not keep the process alive', async () => {
      const m = await startWithFault('leak');
      m.child.kill('SIGTERM');
      expect(await exitWithin(m.exited, 15_000)).toEqual({ code: 0, signal: null });
      expect(m.stderr()).toContain('the Workermanager stopped but something still held the process');
    });
  });

  it('stops on "fnwm stop" with exit code 0', async () => {
    const dir = await tempDir();
    const m = await start(dir);
    const r = await fnwm(['--dir', dir, '--host', '127.0.0.1', '--port', String(m.port), 'stop'], env);
    expectOk(r);
    expect(r.stdout).toBe(`Workermanager on ${m.url} stopped`);
    expect(await exitWithin(m.exited, 5000)).toEqual({ code: 0, signal: null });
    expect(await probeManager(m.url, 1000)).toBeUndefined();
  });

  it('"fnwm stop" with nothing running says so and exits 0 without starting a manager', async () => {
    const dir = await tempDir();
    const port = await freePort();
    const r = await fnwm(['--dir', dir, '--host', '127.0.0.1', '--port', String(port), 'stop'], env);
    expectOk(r);
    expect(r.stderr).toBe(`No Workermanager is running on ws://127.0.0.1:${port}`);
    expect(managerPids(dir)).toEqual([]);
  });

  it('a start that fails after the bind: one error line with the cause, and the port is free again', async () => {
    const dir = await tempDir();
    // A stale kill "file" that cannot be removed: a directory with something in it.
    await mkdir(path.join(dir, 'kill_worker_manager', 'inside'), { recursive: true });
    const port = await freePort();
    const r = await fnwm(['startworkermanager', '--dir', dir, '--host', '127.0.0.1', '--port', String(port)], env);
    expect(r.exitCode, show(r)).toBe(1);
    // Its log lines go to stderr too; the error is the last line.
    expect(lines(r.stderr).at(-1), show(r)).toMatch(/^fnwm: Could not start the Workermanager: .*kill_worker_manager/);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    server.close();
  });

  it('refuses a port held by another Workermanager: one error line naming it, non-zero exit', async () => {
    const first = await start(await tempDir());
    const r = await fnwm(['startworkermanager', '--dir', await tempDir(), '--host', '127.0.0.1', '--port', String(first.port)], env);
    expect(r.exitCode, show(r)).not.toBe(0);
    expect(r.stdout, show(r)).toBe('');
    const errors = lines(r.stderr).filter((l) => l.startsWith('fnwm:'));
    expect(errors, show(r)).toHaveLength(1);
    expect(errors[0]).toMatch(/Another Workermanager/);
    expect(errors[0]).toContain(first.url);
    // The first one is untouched.
    await expectAnswers(first.url);
    expect(first.child.exitCode).toBeNull();
  });

  it('refuses a port held by another program: one error line naming the port and the process, non-zero exit', async () => {
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const r = await fnwm(['startworkermanager', '--dir', await tempDir(), '--host', '127.0.0.1', '--port', String(port)], env);
      expect(r.exitCode, show(r)).not.toBe(0);
      expect(r.stdout, show(r)).toBe('');
      const errors = lines(r.stderr).filter((l) => l.startsWith('fnwm:'));
      expect(errors, show(r)).toHaveLength(1);
      expect(errors[0]).toContain(String(port));
      expect(errors[0]).not.toMatch(/Another Workermanager/);
      // Linux names the process that listens: this test's own.
      if (process.platform === 'linux') expect(errors[0]).toContain(`(pid ${process.pid})`);
      // A message, not a stack trace.
      expect(r.stderr, show(r)).not.toMatch(/^\s+at /m);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('auto-start of a background manager', () => {
  const env = cliEnv(randomPortRange());

  async function configured(): Promise<{ dir: string; port: number; url: string }> {
    const dir = await tempDir();
    const port = await freePort();
    await writeManagerConfig(dir, port);
    return { dir, port, url: `ws://127.0.0.1:${port}` };
  }

  async function stopAndConfirm(dir: string, url: string, pids: number[]): Promise<void> {
    const r = await fnwm(['--dir', dir, 'stop'], env);
    expectOk(r);
    expect(r.stdout).toBe(`Workermanager on ${url} stopped`);
    await waitFor(() => !pids.some(isAlive), 5000, 'the auto-started manager to exit');
    expect(managerPids(dir)).toEqual([]);
  }

  it('"worker list" with no manager running starts one, which then answers', async () => {
    const { dir, url } = await configured();
    expect(await probeManager(url, 500)).toBeUndefined();
    const r = await fnwm(['--dir', dir, 'worker', 'list'], env);
    expectOk(r);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`Started a Workermanager on ${url}`);
    await expectAnswers(url);
    const pids = managerPids(dir);
    if (canListProcesses) expect(pids).toHaveLength(1);
    // A second command uses it and starts nothing.
    const again = await fnwm(['--dir', dir, 'worker', 'list'], env);
    expectOk(again);
    expect(again.stderr).toBe('');
    if (canListProcesses) expect(managerPids(dir)).toEqual(pids);
    await stopAndConfirm(dir, url, pids);
  });

  it('two concurrent "worker new --not-in-venv" runs start exactly one manager', async () => {
    const { dir, url } = await configured();
    const [a, b] = await Promise.all([
      fnwm(['--dir', dir, 'worker', 'new', '--name', 'alpha', '--not-in-venv'], env),
      fnwm(['--dir', dir, 'worker', 'new', '--name', 'beta', '--not-in-venv'], env),
    ]);
    expectOk(a);
    expectOk(b);
    const uuids = [a.stdout, b.stdout];
    for (const uuid of uuids) expect(uuid).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(uuids[0]).not.toBe(uuids[1]);
    // Exactly one of the two started the manager.
    expect([a, b].filter((r) => r.stderr.includes('Started a Workermanager')), `${show(a)}\n${show(b)}`).toHaveLength(1);
    await expectAnswers(url);
    const pids = managerPids(dir);
    if (canListProcesses) expect(pids).toHaveLength(1);
    // The background log shows one manager that came up and no second one that tried and failed.
    const log = await readFile(path.join(dir, 'logs', 'fnwm-manager.log'), 'utf8');
    expect(log.match(/Workermanager listening on/g), log).toHaveLength(1);
    expect(log, log).not.toMatch(/^fnwm:/m);

    const list = await fnwm(['--dir', dir, 'worker', 'list'], env);
    expectOk(list);
    expect(lines(list.stdout).sort()).toEqual([`${uuids[0]}\talpha`, `${uuids[1]}\tbeta`].sort());
    await stopAndConfirm(dir, url, pids);
  });
});

// ------------------------------------------------------------------------------------------------

describe('worker commands against a running manager', () => {
  const ports = randomPortRange();
  const env: Env = cliEnv(ports);
  let dir: string;
  let workersDir: string;
  let url: string;

  /** A worker command through the shared manager; it must never have to start another one. */
  async function run(...args: string[]): Promise<CliResult> {
    const r = await fnwm(['--dir', dir, ...args], env);
    expect(r.stderr, show(r)).not.toMatch(/Started a Workermanager/);
    return r;
  }

  async function workerJson(uuid: string): Promise<Record<string, unknown>> {
    return JSON.parse(await readFile(workerPaths(dir, uuid).json, 'utf8')) as Record<string, unknown>;
  }

  beforeAll(async () => {
    dir = await tempDir();
    workersDir = path.join(dir, 'workers');
    const port = await freePort();
    await writeManagerConfig(dir, port);
    // Workers written directly, as the Python CLI would (spec §10 C1/C2), before the manager starts.
    await mkdir(workersDir, { recursive: true });
    await writeFile(
      path.join(workersDir, 'worker_worker-123.json'),
      JSON.stringify({ uuid: 'worker-123', name: 'primary', type: 'WSWorker', env_path: null }),
    );
    await writeFile(
      path.join(workersDir, 'worker_worker-456.json'),
      JSON.stringify({ uuid: 'worker-456', name: 'secondary', type: 'WSWorker', env_path: null }),
    );
    await writeFile(path.join(workersDir, 'worker_noname-1.json'), JSON.stringify({ uuid: 'noname-1', type: 'WSWorker', env_path: null }));
    const m = await startForeground(['--dir', dir], env);
    url = m.url;
    expect(url).toBe(`ws://127.0.0.1:${port}`);
  });

  afterAll(async () => {
    await killForegroundManagers();
    await killWorkers(workersDir);
  });

  describe('C1: worker list', () => {
    it('prints <uuid>\\t<name> for each worker, minimal JSON files included', async () => {
      const r = await run('worker', 'list');
      expectOk(r);
      const out = lines(r.stdout);
      expect(out).toContain('worker-123\tprimary');
      expect(out).toContain('worker-456\tsecondary');
      for (const line of out) expect(line).toMatch(/^[A-Za-z0-9_-]+\t.+$/);
    });

    it('--full prints a JSON list containing each uuid and name', async () => {
      const r = await run('worker', 'list', '--full');
      expectOk(r);
      expect(r.stdout).toContain('worker-123');
      expect(r.stdout).toContain('primary');
      const list = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
      expect(Array.isArray(list)).toBe(true);
      expect(r.stdout).toBe(JSON.stringify(list, null, 2));
      expect(list).toContainEqual(expect.objectContaining({ uuid: 'worker-123', name: 'primary', type: 'WSWorker', env_path: null }));
      expect(list).toContainEqual(expect.objectContaining({ uuid: 'worker-456', name: 'secondary' }));
    });

    it('prints a missing name as None, as the original does', async () => {
      const r = await run('worker', 'list');
      expectOk(r);
      expect(lines(r.stdout)).toContain('noname-1\tNone');
    });

    it('lists a worker JSON written by another tool while the manager runs', async () => {
      await writeFile(path.join(workersDir, 'worker_late-789.json'), JSON.stringify({ uuid: 'late-789', name: 'late', type: 'WSWorker', env_path: null }));
      let last: CliResult | undefined;
      await waitFor(
        async () => {
          last = await run('worker', 'list');
          return lines(last.stdout).includes('late-789\tlate');
        },
        8000,
        'worker list to show late-789',
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last run: ${last ? show(last) : 'none'}`);
      });
    });
  });

  describe('C2: worker lookup', () => {
    // `stop` of an inactive worker touches nothing and names the worker it resolved to.
    it('finds a worker by uuid', async () => {
      const r = await run('worker', '--uuid', 'worker-456', 'stop');
      expectOk(r);
      expect(r.stdout).toBe('Worker worker-456 stopped');
    });

    it('finds a worker by name', async () => {
      const r = await run('worker', '--name', 'primary', 'stop');
      expectOk(r);
      expect(r.stdout).toBe('Worker worker-123 stopped');
      const r2 = await run('worker', '--name', 'secondary', 'stop');
      expectOk(r2);
      expect(r2.stdout).toBe('Worker worker-456 stopped');
    });

    it('accepts uuid and name together when they agree', async () => {
      const r = await run('worker', '--uuid', 'worker-123', '--name', 'primary', 'stop');
      expectOk(r);
      expect(r.stdout).toBe('Worker worker-123 stopped');
    });

    it('rejects a uuid and name that do not match', async () => {
      expectOneError(await run('worker', '--uuid', 'worker-123', '--name', 'secondary', 'stop'), /worker-123.*secondary/);
    });

    it('rejects a lookup with neither uuid nor name', async () => {
      expectOneError(await run('worker', 'stop'), /--uuid or --name/);
    });

    it('rejects an unknown uuid and an unknown name', async () => {
      expectOneError(await run('worker', '--uuid', 'no-such-worker', 'start'), /no-such-worker/);
      expectOneError(await run('worker', '--name', 'nobody', 'delete'), /nobody/);
      // Nothing was touched.
      expect(existsSync(path.join(workersDir, 'worker_worker-123.json'))).toBe(true);
    });
  });

  it('runs a worker through new, list, start, restart, stop and delete', async () => {
    const created = await run('worker', 'new', '--name', 'life', '--not-in-venv');
    expectOk(created);
    const uuid = created.stdout;
    expect(uuid).toMatch(/^[A-Za-z0-9_-]+$/);
    const files = workerPaths(dir, uuid);
    expect(await workerJson(uuid)).toMatchObject({ uuid, name: 'life', type: 'WSWorker', env_path: null });
    expect(existsSync(files.dataDir)).toBe(true);

    const list = await run('worker', 'list');
    expectOk(list);
    expect(lines(list.stdout)).toContain(`${uuid}\tlife`);

    const started = await run('worker', '--uuid', uuid, 'start');
    expectOk(started);
    const running = /^Worker (\S+) is running at (ws:\/\/[^\s:]+:(\d+))$/.exec(started.stdout);
    expect(running, show(started)).not.toBeNull();
    expect(running?.[1]).toBe(uuid);
    const workerPort = Number(running?.[3]);
    expect(workerPort).toBeGreaterThanOrEqual(ports.start);
    expect(workerPort).toBeLessThanOrEqual(ports.end);
    expect(existsSync(files.p)).toBe(true);
    const pid1 = Number((await readFile(files.p, 'utf8')).trim());
    expect(Number.isInteger(pid1) && pid1 > 1).toBe(true);
    expect(isAlive(pid1)).toBe(true);

    const status = await run('worker', '--name', 'life', 'status');
    expectOk(status);
    const statusLines = lines(status.stdout);
    expect(statusLines[0]).toBe(`life (${uuid}): active`);
    expect(statusLines).toContain(`  pid ${pid1}`);
    expect(statusLines).toContain(`  address ${running?.[2]}`);
    expect(statusLines).toContain('  env system Python');
    expect(statusLines.some((l) => /^ {2}up \d+s \(since /.test(l)), show(status)).toBe(true);
    const json = await run('worker', '--uuid', uuid, 'status', '--json');
    expectOk(json);
    expect(JSON.parse(json.stdout)).toMatchObject({ uuid, name: 'life', state: 'active', pid: pid1, adopted: false, exit: null });
    expect(statusLines).toContain('  restart on-failure, autostart never');
    // set: the additive set_worker_options, stored in the worker JSON beside the keys the Python tools own.
    const set = await run('worker', '--name', 'life', 'set', 'restart=always', 'autostart=always');
    expectOk(set);
    expect(set.stdout.trim()).toBe(`Worker ${uuid}: restart always, autostart always`);
    expect(await workerJson(uuid)).toMatchObject({ autostart: 'always', workermanager: { restart: 'always' } });
    expect(lines((await run('worker', '--name', 'life', 'status')).stdout)).toContain('  restart always, autostart always');
    expectOk(await run('worker', '--name', 'life', 'set', 'restart=on-failure', 'autostart=never'));
    const badSet = await run('worker', '--name', 'life', 'set', 'restart=sometimes');
    expect(badSet.exitCode).toBe(1);
    expect(badSet.stderr).toContain('fnwm: Cannot set "restart=sometimes": use restart=never|on-failure|always and/or autostart=never|always|unless-stopped');
    const logs = await run('worker', '--name', 'life', 'logs');
    expectOk(logs);
    expect(logs.stdout).toContain(`--uuid ${uuid} start`);

    const restarted = await run('worker', '--name', 'life', 'restart');
    expectOk(restarted);
    expect(restarted.stdout).toMatch(new RegExp(`^Worker ${uuid} is running at ws://\\S+:\\d+$`));
    expect(isAlive(pid1), 'the old worker process is gone after restart').toBe(false);
    const pid2 = Number((await readFile(files.p, 'utf8')).trim());
    expect(pid2).not.toBe(pid1);
    expect(isAlive(pid2)).toBe(true);

    const stopped = await run('worker', '--uuid', uuid, 'stop');
    expectOk(stopped);
    expect(stopped.stdout).toBe(`Worker ${uuid} stopped`);
    expect(isAlive(pid2), 'the worker process is gone when stop returns').toBe(false);
    await waitFor(() => !existsSync(files.p), 3000, `${files.p} to be removed`);

    const deleted = await run('worker', '--uuid', uuid, 'delete');
    expectOk(deleted);
    expect(deleted.stdout).toBe(`Worker ${uuid} deleted`);
    for (const file of [files.json, files.p, files.runstate, files.dataDir]) expect(existsSync(file), file).toBe(false);
    const after = await run('worker', 'list');
    expectOk(after);
    expect(after.stdout).not.toContain(uuid);
  });

  it('new with --reference, --copy-lib and --copy-ns copies package_dependencies and the nodespace minus meta', async () => {
    const ref = 'ref-worker';
    const packageDependencies = { 'funcnodes-basic': { package: 'funcnodes-basic', version: '0.2.1' } };
    const nodespace = {
      nodes: [{ id: 'n1', node_id: 'basic.add', io: { a: { value: 1 } } }],
      edges: [['n1', 'out', 'n2', 'a']],
      prop: { title: 'ref graph' },
      meta: { id: '0123456789abcdef0123456789abcdef', version: '1' },
    };
    await writeFile(
      workerPaths(dir, ref).json,
      JSON.stringify({ uuid: ref, name: 'reference', type: 'WSWorker', env_path: null, package_dependencies: packageDependencies }),
    );
    await mkdir(workerPaths(dir, ref).dataDir, { recursive: true });
    await writeFile(path.join(workerPaths(dir, ref).dataDir, 'nodespace.json'), JSON.stringify(nodespace));

    const r = await run('worker', 'new', '--name', 'copy', '--not-in-venv', '--reference', ref, '--copy-lib', '--copy-ns');
    expectOk(r);
    const uuid = r.stdout;
    expect(uuid).not.toBe(ref);
    expect(await workerJson(uuid)).toMatchObject({ uuid, name: 'copy', package_dependencies: packageDependencies });
    const { meta: _meta, ...withoutMeta } = nodespace;
    const copied = JSON.parse(await readFile(path.join(workerPaths(dir, uuid).dataDir, 'nodespace.json'), 'utf8')) as unknown;
    expect(copied).toEqual(withoutMeta);

    // Without the copy flags the reference gives nothing.
    const plain = await run('worker', 'new', '--name', 'nocopy', '--not-in-venv', '--reference', ref);
    expectOk(plain);
    expect((await workerJson(plain.stdout)).package_dependencies).toEqual({});
    expect(existsSync(path.join(workerPaths(dir, plain.stdout).dataDir, 'nodespace.json'))).toBe(false);
  });

  describe('errors: one "fnwm:" line, non-zero exit', () => {
    it('worker new without --name', async () => {
      expectOneError(await run('worker', 'new', '--not-in-venv'), /--name/);
    });

    it('an invalid --reference id', async () => {
      const before = (await readdir(workersDir)).sort();
      expectOneError(await run('worker', 'new', '--name', 'bad-ref', '--not-in-venv', '--reference', '../evil'), /--reference/);
      expect((await readdir(workersDir)).sort()).toEqual(before);
    });

    it('an unknown worker', async () => {
      expectOneError(await run('worker', '--uuid', 'ghost', 'restart'), /No worker with uuid ghost/);
    });
  });
});

// ------------------------------------------------------------------------------------------------

describe('usage and argument errors (no manager involved)', () => {
  const env = cliEnv(randomPortRange());

  it('--help prints the usage and exits 0', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await fnwm([flag], env);
      expectOk(r);
      expect(r.stdout).toMatch(/^Usage: fnwm /);
      for (const command of ['startworkermanager', 'worker list', 'worker new', 'stop']) expect(r.stdout).toContain(command);
      expect(r.stderr).toBe('');
    }
  });

  it('rejects an unknown command without starting a manager', async () => {
    const dir = await tempDir();
    expectOneError(await fnwm(['--dir', dir, 'frobnicate'], env), /Unknown command: frobnicate/);
    expectOneError(await fnwm(['--dir', dir, 'worker', 'frobnicate'], env), /Unknown command: worker frobnicate/);
    expectOneError(await fnwm(['--dir', dir, '--bogus', 'worker', 'list'], env), /--bogus/);
    expect(managerPids(dir)).toEqual([]);
  });

  it('a reader that stops early (fnwm --help | head -0) ends it quietly with exit 0, not an EPIPE crash', async () => {
    const child = spawn(process.execPath, [CLI, '--help'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('rejects a bad --port', async () => {
    const dir = await tempDir();
    for (const port of ['abc', '70000', '1.5']) {
      expectOneError(await fnwm(['--dir', dir, '--port', port, 'worker', 'list'], env), /--port/);
    }
    expect(managerPids(dir)).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------
// Regression tests for CLI bugs found while writing these tests (all fixed).

describe('CLI edge cases', () => {
  const env = cliEnv(randomPortRange());

  it('"--port -1" gives one error line, not parseArgs\'s three-line message', async () => {
    const dir = await tempDir();
    expectOneError(await fnwm(['--dir', dir, '--port', '-1', 'stop'], env), /--port/);
  });

  it('an empty --port is rejected, not read as port 0', async () => {
    const dir = await tempDir();
    expectOneError(await fnwm(['--dir', dir, '--port', '', 'stop'], env), /--port/);
  });

  it('a worker command with --port 0 fails at once and leaves no manager behind', async () => {
    const dir = await tempDir();
    try {
      const r = await fnwm(['--dir', dir, '--host', '127.0.0.1', '--port', '0', 'worker', 'list'], env, 4000);
      expectOneError(r, /--port/);
      expect(managerPids(dir)).toEqual([]);
    } finally {
      await stopManagersFor(dir);
    }
  });

  // An unwritable config dir (e.g. a shared ~/.funcnodes): the auto-start lock cannot be created.
  const uid = process.getuid?.();
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file));
  const canDropWrite = uid !== undefined && (uid !== 0 || setpriv !== undefined);
  it.skipIf(!canDropWrite)('an unwritable config dir gives an error, not a busy loop', async () => {
    const dir = await tempDir();
    await writeManagerConfig(dir, await freePort());
    await mkdir(path.join(dir, 'workers'), { recursive: true });
    // As root, drop to nobody (root ignores file modes); otherwise make the dir read-only.
    const prefix = uid === 0 && setpriv !== undefined ? [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    await chmod(dir, prefix.length > 0 ? 0o755 : 0o555);
    try {
      const r = await fnwm(['--dir', dir, 'worker', 'list'], env, 5000, prefix);
      expect(r.timedOut, show(r)).toBe(false);
      if (r.exitCode !== 0) expectOneError(r);
    } finally {
      await chmod(dir, 0o700);
      await stopManagersFor(dir);
    }
  });
});
