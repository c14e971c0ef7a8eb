/**
 * The desktop app's main-process wiring (src-main/app/desktop-app.ts) with Electron faked (exactly the
 * surface it uses) and everything else real: the in-process manager on a real port, a real second
 * manager or a plain TCP listener holding the port, stand-in workers as real processes.
 */
import net from 'node:net';
import path from 'node:path';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { runDesktopApp, type DesktopApp } from '../../src-main/app/desktop-app.js';
import { APP_ENTRY_URL, createAppProtocolHandler } from '../../src-main/app/app-protocol.js';
import { UntrustedSenderError } from '../../src-main/app/ipc.js';
import { ManagerClient } from '../../src-main/core/hub/client.js';
import { isPidAlive } from '../../src-main/core/supervisor/liveness.js';
import { APP_ORIGIN, type ServiceOptions } from '../../src-main/core/service/service.js';
import { rawText } from '../../src-main/core/hub/ws-text.js';
import { electronFakes, preventable, type Fakes } from '../helpers/electron-fakes.js';
import { createWorker, killWorkers, makeTempDir, startTestManager, testEnv, waitFor, type TestManager } from '../helpers/manager.js';
import { randomPortRange } from '../helpers/standin.js';
import { canMakeNamespace, makePeerNamespace } from '../helpers/netns.js';
import { TOKEN_FILE } from '../../src-main/core/hub/remote-auth.js';
import { NEEDS_TOKEN_PY } from '../../src-main/core/service/port-occupant.js';

const FAST = { timing: { stopMs: 3000, killGraceMs: 500, connectMs: 10_000, startMs: 15_000 } };

interface Running {
  fakes: Fakes;
  app: DesktopApp;
  dir: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface LaunchOptions {
  port?: number;
  extraArgs?: string[];
  platform?: NodeJS.Platform;
  env?: Record<string, string>;
  dir?: string;
  service?: Partial<ServiceOptions>;
  autoReady?: boolean;
  host?: string;
}

/** The fakes for one launch, not yet run; the dir and its workers are cleaned up after the test. */
async function prepare(options: LaunchOptions = {}): Promise<{ fakes: Fakes; dir: string }> {
  const dir = options.dir ?? (await makeTempDir('fnwm-app-'));
  const fakes = electronFakes({
    argv: ['/app', '--dir', dir, '--host', options.host ?? '127.0.0.1', '--port', String(options.port ?? 0), ...(options.extraArgs ?? [])],
    env: testEnv(randomPortRange(), options.env),
    dir,
    platform: options.platform,
    autoReady: options.autoReady,
  });
  fakes.deps.serviceOptions = { ...FAST, ...options.service };
  fakes.deps.takeOverTimeoutMs = 20_000;
  cleanups.push(async () => {
    await killWorkers(path.join(dir, 'workers'));
    await rm(dir, { recursive: true, force: true });
  });
  return { fakes, dir };
}

async function launch(options: LaunchOptions = {}): Promise<Running> {
  const { fakes, dir } = await prepare(options);
  const app = await runDesktopApp(fakes.deps);
  if (!app) throw new Error('The first instance did not start');
  cleanups.push(async () => void (await app.service()?.stop('test done')));
  return { fakes, app, dir };
}

/** The log line of every bind of the in-process manager. */
function binds(fakes: Fakes): string[] {
  return fakes.logs.filter((line) => line.includes('Workermanager listening on'));
}

async function otherManager(): Promise<TestManager> {
  const other = await startTestManager();
  cleanups.push(() => other.close());
  return other;
}

/** A Workermanager as far as the port check can tell (`ping`, `identify`) that ignores `stop`, so the port stays taken. */
async function stubbornManager(): Promise<{ port: number; connections(): number }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const text = rawText(data);
      if (text === 'ping') socket.send('pong');
      if (text === 'identify') socket.send(JSON.stringify({ class: 'WorkerManager', py: '/stubborn/python' }));
    });
  });
  cleanups.push(async () => {
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => server.clients.size };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe('start', () => {
  it('with the port free: runs the manager in-process, shows the tray and opens the window on the app page', async () => {
    const { fakes, app } = await launch();
    const url = app.service()!.url;
    expect(app.state().manager).toEqual({ phase: 'running', url });
    const tray = fakes.tray();
    expect(tray.images.at(-1)).toBe('tray-running.png');
    expect(tray.status).toBe(`Running on ${url} · 0/0 workers active`);
    expect(tray.tooltip).toContain(url);
    expect(fakes.windows).toHaveLength(1);
    const win = fakes.windows[0];
    expect(win.visible).toBe(true);
    expect(win.loaded).toEqual(['fnwm://app/index.html']);
    expect(win.managerUrl).toBe(url);
    expect(win.options.webPreferences).toMatchObject({ contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true });
    // The manager answers the protocol on that URL.
    const client = await ManagerClient.connect(url);
    client.send('identify');
    expect(await client.next()).toMatchObject({ kind: 'identify' });
    client.close();
  });

  it('with --hidden: tray only, the window opens from the tray', async () => {
    const { fakes } = await launch({ extraArgs: ['--hidden'] });
    expect(fakes.windows).toHaveLength(0);
    fakes.tray().click('Open Workermanager');
    expect(fakes.windows).toHaveLength(1);
    expect(fakes.windows[0].visible).toBe(true);
    fakes.windows[0].userClose();
    expect(fakes.windows[0].visible).toBe(false);
    // macOS: the Dock icon brings the same window back.
    fakes.app.emit('activate');
    expect(fakes.windows).toHaveLength(1);
    expect(fakes.windows[0].visible).toBe(true);
  });

  it('a second instance hands over its arguments and quits; the first focuses its window', async () => {
    const { fakes } = await launch({ extraArgs: ['--hidden'] });
    // The second process: the lock is held elsewhere.
    const second = electronFakes({ argv: ['/app', '--port', '1'], env: {}, dir: '/nonexistent' });
    second.app.lockFree = false;
    expect(await runDesktopApp(second.deps)).toBeUndefined();
    expect(second.app.lockData).toEqual({ argv: ['/app', '--port', '1'] });
    expect(second.app.exits).toBe(1);
    expect(second.windows).toHaveLength(0);
    // The first gets `second-instance` with the second's argv.
    fakes.app.emit('second-instance', {}, ['/app', '--hidden'], '/', {});
    expect(fakes.windows).toHaveLength(0);
    fakes.app.emit('second-instance', {}, ['/app'], '/', {});
    expect(fakes.windows[0]?.visible).toBe(true);
  });

  it('with the port held by another Workermanager: says so with its Python, then "Use it" and "Take over"', async () => {
    const other = await otherManager();
    const port = portOf(other.url);
    const { fakes, app } = await launch({ port });
    await waitFor(() => fakes.dialogs.length === 1, 5000, 'the dialog');
    const shown = fakes.dialogs[0].options;
    expect(shown.buttons).toEqual(['Use it', 'Take over', 'Decide later']);
    expect(shown.detail).toContain(`Another Workermanager already runs on ws://127.0.0.1:${port} (its Python: ${other.service.python})`);
    expect(app.state().manager.phase).toBe('port-taken');
    expect(fakes.tray().images.at(-1)).toBe('tray-error.png');
    expect(fakes.tray().status).toContain(other.service.python);
    expect(app.service()).toBeUndefined();

    fakes.tray().click('Use it');
    expect(app.state().manager).toEqual({ phase: 'client', url: `ws://127.0.0.1:${port}`, py: other.service.python });
    expect(app.info()).toMatchObject({ mode: 'other', managerUrl: `ws://127.0.0.1:${port}`, py: other.service.python });
    expect(fakes.windows.at(-1)!.managerUrl).toBe(`ws://127.0.0.1:${port}`);
    // The other manager accepts the window's origin.
    const asWindow = await ManagerClient.connect(other.url, 5000, { Origin: APP_ORIGIN });
    asWindow.close();

    fakes.tray().click('Take over');
    await other.service.stopped;
    await waitFor(() => app.state().manager.phase === 'running', 20_000, 'the take-over');
    expect(app.service()!.port).toBe(port);
    expect(app.info()).toMatchObject({ mode: 'own', managerUrl: `ws://127.0.0.1:${port}` });
    expect(fakes.windows.at(-1)!.managerUrl).toBe(`ws://127.0.0.1:${port}`);
    expect(fakes.windows.filter((w) => !w.destroyed)).toHaveLength(1);
  });

  it('switching managers replaces the window without quitting, even where closing the last window quits', async () => {
    const other = await otherManager();
    const { fakes, app } = await launch({ port: portOf(other.url), platform: 'linux' });
    expect(app.state().settings.quitOnWindowClose).toBe(true);
    await waitFor(() => app.state().manager.phase === 'port-taken', 5000, 'the port check');
    fakes.tray().click('Use it');
    fakes.tray().click('Take over');
    await waitFor(() => app.state().manager.phase !== 'starting', 20_000, 'the take-over');
    expect(app.state().manager.phase).toBe('running');
    expect(fakes.windows).toHaveLength(2);
    expect(fakes.windows.filter((w) => !w.destroyed)).toHaveLength(1);
    expect(fakes.app.quitRequests).toBe(0);
  });

  it('names the holder of the port it tried to bind, also when that port came from the service options', async () => {
    const other = await otherManager();
    const port = portOf(other.url);
    const { fakes, app } = await launch({ service: { port } });
    await waitFor(() => app.state().manager.phase === 'port-taken', 5000, 'the port check');
    expect(fakes.tray().status).toContain(`Another Workermanager already runs on ws://127.0.0.1:${port}`);
  });

  it('"Use it" lasts while that manager runs: when it stops, the tray says so and offers Start manager', async () => {
    const other = await otherManager();
    const port = portOf(other.url);
    const { fakes, app } = await launch({ port });
    await waitFor(() => app.state().manager.phase === 'port-taken', 5000, 'the port check');
    fakes.tray().click('Use it');
    expect(app.state().manager.phase).toBe('client');
    await other.service.stop('gone');
    await waitFor(() => app.state().manager.phase === 'stopped', 5000, 'the tray to notice');
    expect(fakes.notifications.map((n) => n.title)).toContain('The Workermanager has stopped');
    fakes.tray().click('Start manager');
    await waitFor(() => app.state().manager.phase === 'running', 10_000, 'our own manager');
    expect(app.service()!.port).toBe(port);
  });

  it('a quit during "Take over" ends the wait for the port at once', async () => {
    const { port } = await stubbornManager();
    const { fakes, app } = await launch({ port });
    await waitFor(() => app.state().manager.phase === 'port-taken', 5000, 'the port check');
    fakes.tray().click('Take over');
    expect(app.state().manager.phase).toBe('starting');
    // Long enough for the start to be retrying (takeOverTimeoutMs is 20 s).
    await new Promise((resolve) => setTimeout(resolve, 500));
    const quitAt = Date.now();
    fakes.app.quit();
    await app.exited;
    expect(Date.now() - quitAt).toBeLessThan(2000);
    expect(fakes.app.exits).toBe(1);
    expect(app.service()).toBeUndefined();
  });

  it('"Use it" again after a failed take-over watches that manager over one connection, closed on quit', async () => {
    const stubborn = await stubbornManager();
    const { fakes, app } = await launch({ port: stubborn.port });
    fakes.deps.takeOverTimeoutMs = 300;
    await waitFor(() => app.state().manager.phase === 'port-taken', 5000, 'the port check');
    fakes.tray().click('Use it');
    await waitFor(() => stubborn.connections() === 1, 5000, 'the watch connection');
    fakes.tray().click('Take over');
    await waitFor(() => app.state().manager.phase === 'port-taken', 5000, 'the take-over to give up');
    fakes.tray().click('Use it');
    expect(app.state().manager.phase).toBe('client');
    // The port probes hang up; only the new watch stays.
    await waitFor(() => stubborn.connections() === 1, 5000, 'one watch connection');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stubborn.connections()).toBe(1);
    expect(app.state().manager.phase).toBe('client');
    expect(fakes.notifications).toEqual([]);
    fakes.app.quit();
    await app.exited;
    await waitFor(() => stubborn.connections() === 0, 3000, 'the watch to close on quit');
  });

  it('with the port held by a plain TCP listener: names the port and the process holding it, binds nothing', async () => {
    // Something that is not a Workermanager: it hangs up on every connection.
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
    const port = (server.address() as net.AddressInfo).port;
    const { fakes, app } = await launch({ port });
    await waitFor(() => fakes.dialogs.length === 1, 5000, 'the dialog');
    const manager = app.state().manager;
    expect(manager.phase).toBe('port-taken');
    const pidText = process.platform === 'linux' ? `(pid ${process.pid})` : 'another program';
    expect(fakes.tray().status).toContain(`Port ${port} is held by`);
    expect(fakes.tray().status).toContain(pidText);
    expect(fakes.dialogs[0].options.buttons).toEqual(['OK']);
    expect(() => fakes.tray().item('Use it')).toThrow();
    expect(fakes.tray().item('Try again').enabled).not.toBe(false);
    expect(app.service()).toBeUndefined();
    // There is no manager to show: opening the window asks again instead.
    fakes.tray().click('Open Workermanager');
    expect(fakes.windows).toHaveLength(0);
    await waitFor(() => fakes.dialogs.length === 2, 5000, 'the dialog again');
  });
});

describe('start-up order', () => {
  it('a second instance quits at once and opens nothing, not even the log', async () => {
    const { fakes } = await prepare();
    fakes.app.lockFree = false;
    expect(await runDesktopApp(fakes.deps)).toBeUndefined();
    expect(fakes.app.exits).toBe(1);
    expect(fakes.openedLogs).toEqual([]);
    expect(fakes.windows).toEqual([]);
    expect(fakes.logs.some((line) => line.includes('Workermanager listening'))).toBe(false);
  });

  it('the log opens in the logs dir once the app is ready', async () => {
    const { fakes } = await launch();
    expect(fakes.openedLogs).toEqual([fakes.app.dirs.logs]);
  });

  it('a second launch during start-up is honoured once the manager is up', async () => {
    const { fakes } = await prepare({ extraArgs: ['--hidden'], autoReady: false });
    const running = runDesktopApp(fakes.deps);
    // Before ready (Electron delivers it after) and while the manager is still binding.
    fakes.app.secondLaunch(['/app']);
    fakes.app.fireReady();
    const app = (await running)!;
    cleanups.push(async () => void (await app.service()?.stop('test done')));
    expect(app.state().manager.phase).toBe('running');
    expect(fakes.windows).toHaveLength(1);
    expect(fakes.windows[0].visible).toBe(true);
    expect(fakes.windows[0].managerUrl).toBe(app.service()!.url);
  });

  it('a quit before ready is handled: nothing starts, the app exits', async () => {
    const { fakes } = await prepare({ autoReady: false });
    const running = runDesktopApp(fakes.deps);
    fakes.app.quit();
    fakes.app.fireReady();
    expect(await running).toBeUndefined();
    await waitFor(() => fakes.app.exits === 1, 5000, 'the exit');
    expect(fakes.app.events).toEqual(['before-quit', 'before-quit', 'will-quit', 'quit']);
    expect(() => fakes.tray()).toThrow('No tray was created');
    expect(binds(fakes)).toEqual([]);
  });

  it('two starts at once (double click, take-over and Start): one bind, the second joins the first', async () => {
    const { fakes, app } = await launch();
    fakes.tray().click('Stop manager');
    await waitFor(() => app.state().manager.phase === 'stopped', 10_000, 'the stop');
    const start = fakes.tray().item('Start manager').click as () => void;
    start();
    start();
    await waitFor(() => app.state().manager.phase === 'running', 10_000, 'the start');
    // The first launch's bind and one more.
    expect(binds(fakes)).toHaveLength(2);
    const url = app.service()!.url;
    expect(binds(fakes)[1]).toContain(url);
    // A quit during a start waits for exactly that start, then stops what it bound.
    fakes.tray().click('Stop manager');
    await waitFor(() => app.state().manager.phase === 'stopped', 10_000, 'the second stop');
    start();
    fakes.app.quit();
    await app.exited;
    expect(binds(fakes)).toHaveLength(3);
    await expect(ManagerClient.connect(url, 1000)).rejects.toThrow();
    await expect(ManagerClient.connect(binds(fakes)[2].split(' ').find((w) => w.startsWith('ws://'))!, 1000)).rejects.toThrow();
    expect(app.service()).toBeUndefined();
  });
});

describe('workers from the tray and quitting', () => {
  async function withActiveWorker(options: Parameters<typeof launch>[0] = {}) {
    const running = await launch(options);
    const service = running.app.service()!;
    const client = await ManagerClient.connect(service.url);
    const uuid = await createWorker(client, service.settings.workersDir, 'demo');
    client.close();
    await waitFor(() => running.fakes.tray().status.includes('0/1 workers'), 5000, 'the worker in the tray');
    running.fakes.tray().click('Workers', 'demo', 'Start');
    await waitFor(() => running.app.state().workers.some((w) => w.state === 'active'), 20_000, 'the worker to run');
    const pid = running.app.state().workers[0].pid!;
    expect(isPidAlive(pid)).toBe(true);
    return { ...running, uuid, pid };
  }

  it('Open editor on a stopped worker starts it and opens its editor page in the system browser', async () => {
    const { app, fakes } = await launch();
    const service = app.service()!;
    const client = await ManagerClient.connect(service.url);
    const uuid = await createWorker(client, service.settings.workersDir, 'graph');
    client.close();
    await waitFor(() => fakes.tray().status.includes('0/1 workers'), 5000, 'the worker in the tray');
    fakes.tray().click('Workers', 'graph', 'Open editor');
    expect(fakes.opened.external).toEqual([`${service.url.replace(/^ws/, 'http')}/editor/${uuid}/`]);
    await waitFor(() => app.state().workers.some((w) => w.uuid === uuid && w.state === 'active'), 20_000, 'the worker to run');
  });

  it('starts, stops and shows the logs of a worker; the tray follows its state', async () => {
    const { fakes, app, pid } = await withActiveWorker();
    expect(fakes.tray().status).toContain('1/1 workers active');
    expect(fakes.tray().item('Workers', 'demo — active', 'Start').enabled).toBe(false);
    fakes.tray().click('Workers', 'demo', 'Show logs');
    expect(fakes.opened.paths.at(-1)).toMatch(/worker\.log$/);
    fakes.tray().click('Workers', 'demo', 'Stop');
    await waitFor(() => app.state().workers[0]?.state === 'inactive', 15_000, 'the stop');
    await waitFor(() => !isPidAlive(pid), 5000, 'the process to end');
    // The window was visible: no notification for a success it shows itself.
    expect(fakes.notifications).toEqual([]);
  });

  it('notifies a crash with the exit code, and a finished start or creation while the window is hidden', async () => {
    const { fakes, app, pid } = await withActiveWorker();
    fakes.windows[0].userClose();
    expect(fakes.windows[0].visible).toBe(false);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => fakes.notifications.some((n) => n.title === 'Worker demo crashed'), 10_000, 'the crash notice');
    expect(fakes.notifications.find((n) => n.title === 'Worker demo crashed')!.body).toBe('It ended with signal SIGKILL.');
    expect(fakes.tray().item('Workers', 'demo — crashed (signal SIGKILL)')).toBeDefined();
    fakes.tray().click('Workers', 'demo', 'Start');
    await waitFor(() => fakes.notifications.some((n) => n.title === 'Worker demo started'), 20_000, 'the start notice');
    await waitFor(() => app.state().workers[0].state === 'active', 5000, 'the tray to show it active');
    const client = await ManagerClient.connect(app.service()!.url);
    await createWorker(client, app.service()!.settings.workersDir, 'second');
    client.close();
    await waitFor(() => fakes.notifications.some((n) => n.title === 'Worker second created'), 5000, 'the creation notice');
  });

  it('a hidden start does not notify the workers it finds, running ones included; a later creation does', async () => {
    // An earlier manager leaves one idle and one running worker behind.
    const dir = await makeTempDir('fnwm-app-');
    const before = await startTestManager({ dir, keepWorkers: true });
    cleanups.push(() => killWorkers(before.workersDir));
    const client = await before.connect();
    await createWorker(client, before.workersDir, 'idle');
    const uuid = await createWorker(client, before.workersDir, 'survivor');
    client.send({ type: 'set_active', workerid: uuid });
    await waitFor(() => before.service.supervisor.find(uuid)?.active === true, 20_000, 'the worker to run');
    client.close();
    await before.service.stop('test');

    const { fakes, app } = await launch({ dir, extraArgs: ['--hidden'] });
    await app.service()!.ready;
    await waitFor(() => app.state().workers.some((w) => w.uuid === uuid && w.state === 'active' && w.adopted), 10_000, 'the adopted worker');
    expect(app.state().workers).toHaveLength(2);
    expect(fakes.notifications).toEqual([]);

    const again = await ManagerClient.connect(app.service()!.url);
    await createWorker(again, app.service()!.settings.workersDir, 'fresh');
    again.close();
    await waitFor(() => fakes.notifications.length > 0, 5000, 'the creation notice');
    expect(fakes.notifications.map((n) => n.title)).toEqual(['Worker fresh created']);
  });

  it('a failed start from the tray is notified with the reason', async () => {
    const { fakes, app } = await launch();
    const service = app.service()!;
    const client = await ManagerClient.connect(service.url);
    await createWorker(client, service.settings.workersDir, 'broken', { exit_at: 'start', exit_code: 3 });
    client.close();
    await waitFor(() => fakes.tray().status.includes('0/1 workers'), 5000, 'the worker in the tray');
    fakes.tray().click('Workers', 'broken', 'Start');
    await waitFor(() => fakes.notifications.length > 0, 20_000, 'the failure notice');
    expect(fakes.notifications[0].title).toBe('Starting broken failed');
    expect(fakes.notifications[0].body).toMatch(/^Could not activate worker with id broken/);
    await waitFor(() => app.state().workers[0]?.state === 'crashed', 5000, 'the crashed state');
    expect(fakes.notifications).toHaveLength(1);
  });

  it('quit asks, then stops the workers it started, shows progress, ignores a second quit, and leaves nothing running', async () => {
    const { fakes, app, pid } = await withActiveWorker();
    const url = app.service()!.url;
    fakes.dialogAnswers.push(0);
    fakes.app.quit();
    await waitFor(() => app.state().manager.phase === 'stopping', 5000, 'the stop');
    expect(fakes.dialogs.at(-1)!.options.message).toBe('1 worker is running');
    expect(fakes.tray().images.at(-1)).toBe('tray-busy.png');
    expect(fakes.tray().item('Quitting…').enabled).toBe(false);
    fakes.app.quit();
    fakes.app.quit();
    expect(fakes.app.exits).toBe(0);
    await app.exited;
    expect(fakes.app.exits).toBe(1);
    expect(fakes.tray().destroyed).toBe(true);
    expect(isPidAlive(pid)).toBe(false);
    await expect(ManagerClient.connect(url, 1000)).rejects.toThrow();
  });

  it('with "Running workers on quit: Keep them running" the worker outlives the app, unasked', async () => {
    const { fakes, app, pid } = await withActiveWorker();
    fakes.tray().click('Settings', 'Running workers on quit', 'Keep them running');
    await waitFor(() => app.state().settings.workersOnQuit === 'keep', 5000, 'the setting');
    expect(fakes.tray().item('Settings', 'Running workers on quit', 'Keep them running').checked).toBe(true);
    const asked = fakes.dialogs.length;
    fakes.app.quit();
    await app.exited;
    expect(fakes.dialogs).toHaveLength(asked);
    expect(isPidAlive(pid)).toBe(true);
    process.kill(-pid, 'SIGKILL');
  });

  it('closing the window on Linux with a worker running asks; Cancel keeps app, window and worker', async () => {
    const { fakes, app, pid } = await withActiveWorker({ platform: 'linux' });
    fakes.dialogAnswers.push(2);
    fakes.windows[0].userClose();
    await waitFor(() => fakes.dialogs.length === 1, 5000, 'the question');
    expect(fakes.dialogs[0].options).toMatchObject({ message: '1 worker is running', buttons: ['Stop them', 'Keep them running', 'Cancel'] });
    expect(fakes.dialogs[0].options.checkboxLabel).toContain('Remember my choice');
    // The answer is handled: a quit would have begun by now.
    await waitFor(() => fakes.app.quitRequests === 1 && fakes.dialogAnswers.length === 0, 5000, 'the answer');
    await sleep(50);
    expect(fakes.windows[0].destroyed).toBe(false);
    expect(fakes.windows[0].visible).toBe(true);
    expect(app.state().manager.phase).toBe('running');
    expect(fakes.app.exits).toBe(0);
    expect(isPidAlive(pid)).toBe(true);
    expect(app.state().settings.workersOnQuit).toBe('ask');
  });

  it('closing the window on Linux with a worker running: "Stop them" stops it and quits', async () => {
    const { fakes, app, pid } = await withActiveWorker({ platform: 'linux' });
    fakes.dialogAnswers.push(0);
    fakes.windows[0].userClose();
    await app.exited;
    expect(fakes.windows[0].destroyed).toBe(true);
    expect(isPidAlive(pid)).toBe(false);
    expect(fakes.app.exits).toBe(1);
  });

  it('closing the window on Linux: "Keep them running" + remember; the next start adopts the worker and quits without asking', async () => {
    const first = await withActiveWorker({ platform: 'linux' });
    first.fakes.dialogAnswers.push({ response: 1, checkboxChecked: true });
    first.fakes.windows[0].userClose();
    await first.app.exited;
    expect(isPidAlive(first.pid)).toBe(true);
    expect(first.app.state().settings.workersOnQuit).toBe('keep');

    // The same settings file (userData under the dir) and workers dir.
    const second = await launch({ platform: 'linux', dir: first.dir });
    expect(second.app.state().settings.workersOnQuit).toBe('keep');
    expect(second.fakes.tray().item('Settings', 'Running workers on quit', 'Keep them running').checked).toBe(true);
    await waitFor(() => second.app.state().workers.some((w) => w.pid === first.pid && w.state === 'active' && w.adopted), 15_000, 'the adoption');
    second.fakes.windows[0].userClose();
    await second.app.exited;
    expect(second.fakes.dialogs).toEqual([]);
    expect(isPidAlive(first.pid)).toBe(true);
    process.kill(-first.pid, 'SIGKILL');
  });

  it('a start begun in the window that fails while the window is hidden is notified with the reason', async () => {
    const { fakes, app } = await launch();
    const service = app.service()!;
    // As the window does: a client with the app's origin.
    const client = await ManagerClient.connect(service.url, 5000, { Origin: APP_ORIGIN });
    await createWorker(client, service.settings.workersDir, 'broken', { exit_at: 'start', exit_code: 3 });
    fakes.windows[0].userClose();
    expect(fakes.windows[0].visible).toBe(false);
    client.send({ type: 'set_active', workerid: app.state().workers[0].uuid });
    await waitFor(() => fakes.notifications.length > 0, 20_000, 'the failure notice');
    expect(fakes.notifications[0].title).toBe('Starting broken failed');
    expect(fakes.notifications[0].body).toMatch(/exited during start/);
    client.close();
  });

  it('Stop manager and Start manager from the tray', async () => {
    const { fakes, app, pid } = await withActiveWorker();
    fakes.dialogAnswers.push(0);
    fakes.tray().click('Stop manager');
    await waitFor(() => app.state().manager.phase === 'stopped', 15_000, 'the stop');
    expect(fakes.dialogs.at(-1)!.options.buttons).toEqual(['Stop them', 'Keep them running', 'Cancel']);
    expect(isPidAlive(pid)).toBe(false);
    expect(fakes.tray().images.at(-1)).toBe('tray-stopped.png');
    expect(fakes.tray().item('Workers').enabled).toBe(false);
    fakes.tray().click('Start manager');
    await waitFor(() => app.state().manager.phase === 'running', 10_000, 'the restart');
    await waitFor(() => app.state().workers.length === 1, 10_000, 'the workers list');
  });
});

describe('window', () => {
  it('closing it keeps the app in the tray off Linux; on Linux it quits by default', async () => {
    const mac = await launch({ platform: 'darwin' });
    mac.fakes.windows[0].userClose();
    expect(mac.fakes.windows[0].destroyed).toBe(false);
    expect(mac.fakes.app.quitRequests).toBe(0);

    const linux = await launch({ platform: 'linux' });
    linux.fakes.windows[0].userClose();
    await linux.app.exited;
    expect(linux.fakes.windows[0].destroyed).toBe(true);
    expect(linux.fakes.app.exits).toBe(1);
    // No workers ran: nothing to ask.
    expect(linux.fakes.dialogs).toEqual([]);
    expect(linux.fakes.app.events).toEqual(['before-quit', 'before-quit', 'will-quit', 'quit']);
  });

  it('denies navigation, new windows and permissions except the app page writing the clipboard; http(s) links go to the system browser', async () => {
    const { fakes } = await launch();
    const contents = fakes.windows[0].webContents;
    expect(contents.openHandler!({ url: 'https://funcnodes.example/docs' })).toEqual({ action: 'deny' });
    expect(contents.openHandler!({ url: 'file:///etc/passwd' })).toEqual({ action: 'deny' });
    expect(fakes.opened.external).toEqual(['https://funcnodes.example/docs']);
    const away = preventable();
    contents.emit('will-navigate', away, 'https://evil.example/');
    expect(away.defaultPrevented).toBe(true);
    const inside = preventable();
    contents.emit('will-navigate', inside, 'fnwm://app/index.html');
    expect(inside.defaultPrevented).toBe(false);
    const request = (permission: string, requestingUrl: string) => {
      let granted: boolean | undefined;
      contents.permissionRequest!(contents, permission, (answer) => (granted = answer), { requestingUrl, isMainFrame: true });
      return granted;
    };
    const check = (permission: string, requestingOrigin: string) => contents.permissionCheck!(contents, permission, requestingOrigin, { requestingUrl: `${requestingOrigin}/index.html`, isMainFrame: true });
    expect(request('media', 'fnwm://app/index.html')).toBe(false);
    expect(check('media', 'fnwm://app')).toBe(false);
    expect(request('clipboard-read', 'fnwm://app/index.html')).toBe(false);
    expect(check('clipboard-read', 'fnwm://app')).toBe(false);
    // "Copy address": Chromium asks for this before navigator.clipboard.writeText, for the app's pages only.
    expect(request('clipboard-sanitized-write', 'fnwm://app/index.html')).toBe(true);
    expect(check('clipboard-sanitized-write', 'fnwm://app')).toBe(true);
    expect(request('clipboard-sanitized-write', 'https://evil.example/')).toBe(false);
    expect(check('clipboard-sanitized-write', 'https://evil.example')).toBe(false);
  });

  it('the app page is served with a CSP that allows exactly the manager; the hub accepts exactly the app origin', async () => {
    const { fakes, app } = await launch();
    const url = app.service()!.url;
    const page = await fakes.protocolHandler()(new Request('fnwm://app/index.html'));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain(`connect-src 'self' ws://${new URL(url).host}`);
    expect(await page.text()).toContain('<div id="root">');
    expect((await fakes.protocolHandler()(new Request('fnwm://app/../package.json'))).status).toBe(404);
    expect((await fakes.protocolHandler()(new Request('fnwm://other/index.html'))).status).toBe(404);
    (await ManagerClient.connect(url, 5000, { Origin: APP_ORIGIN })).close();
    await expect(ManagerClient.connect(url, 5000, { Origin: 'file://' })).rejects.toThrow('403');
    await expect(ManagerClient.connect(url, 5000, { Origin: 'null' })).rejects.toThrow('403');
  });
});

describe.runIf(canMakeNamespace)('"Use it" for a manager that wants its token', () => {
  it('the window gets this machine\'s token first, stores the one the user gives (sealed), and the app then watches that manager', async () => {
    const peer = await makePeerNamespace();
    cleanups.push(() => peer.remove());
    // A manager bound to 0.0.0.0 elsewhere (its own config dir and token); this app is set to the same
    // port on a non-loopback address of this machine, so it reaches that manager as a remote peer.
    const mdir = await makeTempDir('fnwm-remote-');
    await writeFile(path.join(mdir, 'config.json'), JSON.stringify({ worker_manager: { allowed_hosts: [peer.hostIp] } }));
    const remote = await startTestManager({ dir: mdir, host: '0.0.0.0' });
    let remoteRunning = true;
    cleanups.push(async () => void (remoteRunning && (await remote.close())));
    const token = (await readFile(path.join(mdir, TOKEN_FILE), 'utf8')).trim();

    const { fakes, dir } = await prepare({ host: peer.hostIp, port: remote.service.port });
    const sealed: string[] = [];
    fakes.deps.secrets = {
      isEncryptionAvailable: () => true,
      encryptString: (text) => {
        sealed.push(text);
        return Buffer.from(`sealed:${text}`);
      },
      decryptString: (data) => data.toString().replace(/^sealed:/, ''),
    };
    fakes.dialogAnswers.push(0);
    const app = (await runDesktopApp(fakes.deps))!;
    await waitFor(() => app.state().manager.phase === 'client', 10_000, '"Use it"');
    const url = `ws://${peer.hostIp}:${remote.service.port}`;
    expect(fakes.dialogs[0].options.detail).toContain(NEEDS_TOKEN_PY);
    const win = fakes.windows.at(-1)!;
    expect(win.managerUrl).toBe(url);
    const trusted = { sender: win.webContents, senderFrame: win.webContents.mainFrame };
    // First guess: this machine's own token file (the app's config dir, made when it tried to bind beyond
    // loopback); here that manager has another config, so the window gets refused and asks the user.
    const ownToken = (await readFile(path.join(dir, TOKEN_FILE), 'utf8')).trim();
    expect(ownToken).not.toBe(token);
    expect(await fakes.ipc.invoke('manager:token', trusted)).toBe(ownToken);
    await expect(fakes.ipc.invoke('manager:set-token', trusted, 'has spaces in it, too')).rejects.toThrow('without spaces');

    await waitFor(() => fakes.logs.some((line) => line.includes('needs its access token; the window asks for it')), 5000, "the app's watch to be refused");
    const refusals = remote.logs.filter((line) => line.includes('no valid token')).length;
    await fakes.ipc.invoke('manager:set-token', trusted, token);
    expect(sealed).toEqual([token]);
    const file = JSON.parse(await readFile(path.join(dir, 'userData', 'settings.json'), 'utf8')) as { managerTokens: Record<string, string> };
    expect(file.managerTokens).toEqual({ [`${peer.hostIp}:${remote.service.port}`]: `safe:${Buffer.from(`sealed:${token}`).toString('base64')}` });
    expect((await stat(path.join(dir, 'userData', 'settings.json'))).mode & 0o777).toBe(0o600);
    expect(await fakes.ipc.invoke('manager:token', trusted)).toBe(token);

    // The app's watch of that manager (refused with this machine's token) got in with the given one: when
    // that manager stops, the app says so.
    remoteRunning = false;
    await remote.close();
    await waitFor(() => fakes.notifications.some((n) => n.title === 'The Workermanager has stopped'), 10_000, 'the notice');
    expect(remote.logs.filter((line) => line.includes('no valid token'))).toHaveLength(refusals);
    fakes.app.quit();
    await app.exited;
  });
});

describe('CSP per manager URL', () => {
  it('connect-src names exactly the manager the window uses, in every loopback spelling and for a host chosen with "Use it"', async () => {
    const page = async (managerUrl: string) => {
      const response = await createAppProtocolHandler(path.resolve('dist/renderer'), () => managerUrl)(new Request(APP_ENTRY_URL));
      const html = await response.text();
      // Only the header: a meta CSP in the page would narrow it to a fixed list.
      expect(html).not.toMatch(/http-equiv=["']?Content-Security-Policy/i);
      return /connect-src ([^;]*)/.exec(response.headers.get('content-security-policy') ?? '')?.[1];
    };
    expect(await page('ws://127.0.0.1:9380')).toBe("'self' ws://127.0.0.1:9380");
    expect(await page('ws://localhost:41234')).toBe("'self' ws://localhost:41234");
    expect(await page('ws://127.0.0.2:9380')).toBe("'self' ws://127.0.0.2:9380");
    expect(await page('ws://lab-machine.example:9380')).toBe("'self' ws://lab-machine.example:9380");
    expect(await page('wss://workers.example.org')).toBe("'self' wss://workers.example.org");
    // CSP cannot name IPv6 literals: the scheme only.
    expect(await page('ws://[::1]:9380')).toBe("'self' ws:");
    // No manager yet, or not a WebSocket URL: nothing beyond the app itself.
    expect(await page('')).toBe("'self'");
    expect(await page('http://evil.example')).toBe("'self'");
  });
});

describe('IPC', () => {
  it('answers the window main frame and refuses a foreign frame, another window and a foreign page', async () => {
    const { fakes, app } = await launch();
    const contents = fakes.windows[0].webContents;
    const trusted = { sender: contents, senderFrame: contents.mainFrame };
    expect(await fakes.ipc.invoke('app:info', trusted)).toEqual({ version: '0.1.0-test', managerUrl: app.service()!.url, mode: 'own', py: app.service()!.python });

    const iframe = { sender: contents, senderFrame: { url: 'fnwm://app/index.html' } };
    await expect(fakes.ipc.invoke('app:info', iframe)).rejects.toBeInstanceOf(UntrustedSenderError);
    const otherContents = { mainFrame: { url: 'fnwm://app/index.html' } };
    await expect(fakes.ipc.invoke('settings:get', { sender: otherContents, senderFrame: otherContents.mainFrame })).rejects.toBeInstanceOf(UntrustedSenderError);
    contents.mainFrame.url = 'https://evil.example/';
    await expect(fakes.ipc.invoke('external:open', trusted, 'https://x.example/')).rejects.toBeInstanceOf(UntrustedSenderError);
    await expect(fakes.ipc.invoke('app:info', { sender: contents, senderFrame: null })).rejects.toBeInstanceOf(UntrustedSenderError);
    expect(fakes.opened.external).toEqual([]);
    expect(fakes.logs.some((line) => line.includes('Refused IPC external:open from https://evil.example/'))).toBe(true);
  });

  it('every channel of the map is handled; settings, login item and links validate their input', async () => {
    const { fakes } = await launch();
    const contents = fakes.windows[0].webContents;
    const trusted = { sender: contents, senderFrame: contents.mainFrame };
    const { IPC_CHANNELS } = await import('../../src-main/app/ipc-channels.js');
    expect([...fakes.ipc.handlers.keys()].sort()).toEqual([...IPC_CHANNELS].sort());

    expect(await fakes.ipc.invoke('settings:set', trusted, { startHidden: true })).toMatchObject({ startHidden: true });
    await expect(fakes.ipc.invoke('settings:set', trusted, { startHidden: 'yes' })).rejects.toThrow('Setting startHidden must be true or false');
    expect(await fakes.ipc.invoke('settings:get', trusted)).toMatchObject({ startHidden: true });
    expect(fakes.tray().item('Settings', 'Start hidden').checked).toBe(true);

    expect(await fakes.ipc.invoke('login:set', trusted, true)).toBe(true);
    expect(fakes.tray().item('Start at login').checked).toBe(true);
    await expect(fakes.ipc.invoke('login:set', trusted, 'on')).rejects.toThrow('true or false');

    await fakes.ipc.invoke('external:open', trusted, 'https://funcnodes.example/');
    await expect(fakes.ipc.invoke('external:open', trusted, 'file:///etc/passwd')).rejects.toThrow('Only http and https');
    expect(fakes.opened.external).toEqual(['https://funcnodes.example/']);
    await fakes.ipc.invoke('logs:open', trusted);
    expect(fakes.opened.paths.at(-1)).toBe(fakes.app.dirs.logs);
  });
});
