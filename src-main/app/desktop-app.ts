/**
 * The desktop app's behaviour, with every Electron API it uses passed in (`DesktopDeps`), so it runs in
 * plain Node under test; `src-main/index.ts` passes the real ones. It hosts the manager core in-process,
 * keeps the tray in step with it, owns the window, answers the preload's IPC, and runs the quit sequence.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { App, BrowserWindow, BrowserWindowConstructorOptions, Dialog, Menu, Shell, Tray } from 'electron';
import { ManagerClient, UnauthorizedError } from '../core/hub/client.js';
import type { Logger } from '../core/logs/log.js';
import { portTakenBy, type PortOccupant } from '../core/service/port-occupant.js';
import { exitText, isRunningState, type ManagerMessage, type WorkerIdRequestType, type WorkerRuntime, type WorkerStatesMessage } from '../../src-shared/protocol.js';
import { startManagerService, type ManagerService, type ServiceOptions } from '../core/service/service.js';
import { editorUrl } from '../../src-shared/editor-path.js';
import { APP_ENTRY_URL, createAppProtocolHandler } from './app-protocol.js';
import { createIpc, type IpcMainSlice } from './ipc.js';
import type { AppInfo } from './ipc-channels.js';
import { parseLaunchOptions } from './launch-options.js';
import { sealToken, tokenForManager, validToken, type SecretBox } from './manager-tokens.js';
import type { LoginItem } from './login-item.js';
import { defaultSettings, SettingsStore } from './settings.js';
import { trayIcon, trayMenu, statusLine, type ManagerPhase, type TrayActions, type TrayIcon, type TrayState, type WorkerAction } from './tray-menu.js';
import { externalUrl, guardNavigation, restrictPermissions, windowOptions, type GuardedContents } from './window.js';

export type WindowLike = Pick<BrowserWindow, 'show' | 'focus' | 'hide' | 'isVisible' | 'isDestroyed' | 'isMinimized' | 'restore' | 'loadURL' | 'on' | 'destroy'> & {
  webContents: GuardedContents & { session: Parameters<typeof restrictPermissions>[0] };
};
export type TrayLike = Pick<Tray, 'setImage' | 'setToolTip' | 'setContextMenu' | 'on' | 'destroy'>;

export interface DesktopDeps {
  argv: readonly string[];
  platform: NodeJS.Platform;
  env: Record<string, string | undefined>;
  app: Pick<App, 'requestSingleInstanceLock' | 'on' | 'whenReady' | 'quit' | 'getVersion' | 'getPath'>;
  /** Starts writing the main log into Electron's logs dir: only the instance that holds the lock, after ready. */
  openLog(logsDir: string): void;
  ipcMain: IpcMainSlice;
  shell: Pick<Shell, 'openExternal' | 'openPath'>;
  dialog: Pick<Dialog, 'showMessageBox'>;
  menu: Pick<typeof Menu, 'buildFromTemplate'>;
  createTray(image: string): TrayLike;
  createWindow(options: BrowserWindowConstructorOptions): WindowLike;
  notify(title: string, body: string): void;
  registerAppProtocol(handler: (request: Request) => Promise<Response>): void;
  loginItem: LoginItem;
  paths: { preload: string; renderer: string; appIcon: string; trayIcon(icon: TrayIcon): string };
  log: Logger;
  /** Extra service options (the tests' short deadlines). */
  serviceOptions?: Partial<ServiceOptions>;
  /** Electron's safeStorage, for the tokens of managers on other machines (absent: kept as plain text, 0600). */
  secrets?: SecretBox;
  /** How long "Take over" waits for the other manager to free the port. */
  takeOverTimeoutMs?: number;
}

export interface DesktopApp {
  state(): TrayState;
  info(): AppInfo;
  service(): ManagerService | undefined;
  window(): WindowLike | undefined;
  /** Resolves when the quit sequence has finished and the app was told to exit. */
  readonly exited: Promise<void>;
}

const OPERATIONS: Record<WorkerAction, { type: WorkerIdRequestType; verb: string }> = {
  start: { type: 'set_active', verb: 'Starting' },
  stop: { type: 'stop_worker', verb: 'Stopping' },
  restart: { type: 'restart_worker', verb: 'Restarting' },
};

/** What to do with the workers a stop would end: the user's answer, or "cancel" to not stop at all. */
type StopAnswer = 'stop' | 'keep' | 'cancel';

/**
 * Returns undefined in a second instance, which hands its arguments to the first and quits. The order is
 * Electron's: the single-instance lock first (a second instance touches nothing, not even the log), the
 * quit handler from the first moment, paths only after `ready`.
 */
export async function runDesktopApp(deps: DesktopDeps): Promise<DesktopApp | undefined> {
  const { app, log, shell } = deps;
  const launch = parseLaunchOptions(deps.argv);
  if (!app.requestSingleInstanceLock({ argv: [...deps.argv] })) {
    log.info('Another instance runs; it was handed this launch');
    app.quit();
    return undefined;
  }

  let phase: ManagerPhase = { phase: 'starting' };
  const workers = new Map<string, WorkerRuntime>();
  let service: ManagerService | undefined;
  /** The manager the window talks to. */
  let target: Omit<AppInfo, 'version'> = { managerUrl: '', mode: 'own', py: null };
  let win: WindowLike | undefined;
  /** What exists only after ready: until then (and for a quit before it) the default settings apply. */
  const afterReady: { tray?: TrayLike; settings?: SettingsStore } = {};
  const currentSettings = () => afterReady.settings?.get() ?? defaultSettings(deps.platform);
  let quitting = false;
  /** A quit is waiting for the user's answer about running workers. */
  let askingToQuit = false;
  /** Start-up has finished (a second launch before it is honoured then). */
  let started = false;
  let showWhenStarted = false;
  /** Workers whose operation the tray began: the tray's own failure notice covers them. */
  const trayOps = new Set<string>();
  /** The connection that tells when a manager used through "Use it" goes away. */
  let otherWatch: ManagerClient | undefined;
  /** The one start in progress: another start joins it, and quitting waits for exactly it. */
  let starting: Promise<void> | undefined;
  let readyToExit = false;
  let markExited: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => (markExited = resolve));

  // From the first moment: a quit during start-up waits for the start, then stops what it started.
  app.on('before-quit', (event) => {
    if (readyToExit) return;
    event.preventDefault();
    if (quitting || askingToQuit) return;
    void beginQuit();
  });
  // Electron delivers it after ready; during start-up there is no manager to show yet, so it waits.
  app.on('second-instance', (_event, argv) => {
    log.info(`Second launch: ${argv.join(' ')}`);
    if (parseLaunchOptions(argv).hidden) return;
    if (started) showWindow();
    else showWhenStarted = true;
  });
  // macOS: clicking the Dock icon.
  app.on('activate', () => showWindow());
  // Without a listener Electron quits when the last window closes; the tray keeps the app unless set otherwise.
  app.on('window-all-closed', () => {
    if (currentSettings().quitOnWindowClose) app.quit();
  });
  await app.whenReady();
  if (quitting) return undefined;
  deps.openLog(app.getPath('logs'));
  for (const problem of launch.problems) log.warn(problem);
  const store = new SettingsStore(path.join(app.getPath('userData'), 'settings.json'), defaultSettings(deps.platform), log);
  await store.load();
  afterReady.settings = store;
  let startAtLogin = await deps.loginItem.get().catch(() => false);
  deps.registerAppProtocol(createAppProtocolHandler(deps.paths.renderer, () => target.managerUrl));

  const state = (): TrayState => ({ manager: phase, workers: [...workers.values()], startAtLogin, settings: store.get() });
  const appTray = deps.createTray(deps.paths.trayIcon('busy'));
  afterReady.tray = appTray;
  appTray.on('click', () => showWindow());
  const render = () => {
    if (readyToExit) return;
    const now = state();
    appTray.setImage(deps.paths.trayIcon(trayIcon(now.manager)));
    appTray.setToolTip(`FuncNodes Workermanager: ${statusLine(now)}`);
    appTray.setContextMenu(deps.menu.buildFromTemplate(trayMenu(now, actions)));
  };
  const setPhase = (next: ManagerPhase) => {
    phase = next;
    render();
  };
  const windowVisible = () => win !== undefined && !win.isDestroyed() && win.isVisible();

  // ---------------------------------------------------------------- the manager

  function attach(s: ManagerService): void {
    const unwatch = s.supervisor.watch();
    workers.clear();
    for (const worker of s.supervisor.full().workers) workers.set(worker.uuid, worker);
    // The service is bound before its first scan ends: until then deltas only fill in what is already
    // on disk (adopted workers pass through starting), which is neither a creation nor a start.
    let scanned = false;
    void s.ready.then(() => (scanned = true));
    const onDelta = (message: WorkerStatesMessage) => {
      for (const worker of message.workers) {
        const before = workers.get(worker.uuid);
        const name = worker.name ?? worker.uuid;
        // A running worker died (a failed start is reported to whoever started it).
        if (worker.state === 'crashed' && before?.state === 'active') {
          deps.notify(`Worker ${name} crashed`, worker.exit ? `It ended with ${exitText(worker.exit)}.` : 'It ended unexpectedly.');
        }
        // A start can take minutes (installs, imports); whoever asked for it, say when it is done if nobody is looking.
        if (scanned && worker.state === 'active' && before?.state === 'starting' && !windowVisible()) deps.notify(`Worker ${name} started`, '');
        // A creation in its own venv takes a while too (installs); the new worker appears when it is done.
        if (scanned && before === undefined && !windowVisible()) deps.notify(`Worker ${name} created`, '');
        // A start or stop begun in the window (or by any client) failed while nobody looks; the tray reports its own.
        const failedOp = before?.state === 'starting' ? 'Starting' : before?.state === 'stopping' ? 'Stopping' : undefined;
        if (failedOp && worker.error !== null && before?.error === null && !trayOps.has(worker.uuid) && !windowVisible()) {
          deps.notify(`${failedOp} ${name} failed`, worker.error);
        }
        workers.set(worker.uuid, worker);
      }
      for (const uuid of message.removed) workers.delete(uuid);
      render();
    };
    s.supervisor.on('delta', onDelta);
    void s.stopped.then(() => {
      unwatch();
      s.supervisor.off('delta', onDelta);
      if (service !== s) return;
      service = undefined;
      workers.clear();
      if (!quitting) setPhase({ phase: 'stopped' });
    });
  }

  function serviceOptions(): ServiceOptions {
    const python = store.get().python;
    return { ...launch.overrides, auth: launch.auth, ...deps.serviceOptions, env: python === null ? deps.env : { ...deps.env, FUNCNODES_PYTHON: python }, log };
  }

  /** Starts the in-process manager; with `retryMs`, keeps trying while the port is still taken (take-over). A start in progress is joined. */
  function startManager(retryMs = 0): Promise<void> {
    if (service || quitting) return Promise.resolve();
    if (starting) return starting;
    const run = bindManager(retryMs).finally(() => {
      if (starting === run) starting = undefined;
    });
    starting = run;
    return run;
  }

  async function bindManager(retryMs: number): Promise<void> {
    setPhase({ phase: 'starting' });
    const deadline = Date.now() + retryMs;
    // A quit ends a take-over's wait for the port: shutdown awaits this start.
    while (!quitting) {
      try {
        const started = await startManagerService(serviceOptions());
        service = started;
        target = { managerUrl: started.url, mode: 'own', py: started.python };
        attach(started);
        setPhase({ phase: 'running', url: started.url });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && Date.now() < deadline) {
          await sleep(250);
          continue;
        }
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return portTaken();
        log.error(`The Workermanager could not start: ${(err as Error).stack ?? String(err)}`);
        setPhase({ phase: 'error', message: `The Workermanager could not start: ${(err as Error).message}` });
        return;
      }
    }
  }

  async function portTaken(): Promise<void> {
    // Ask about the port the failed start tried: its service options may set one, not only the command line.
    const { occupant, message } = await portTakenBy(serviceOptions(), deps.env);
    log.warn(message);
    setPhase({ phase: 'port-taken', message, occupant });
    if (launch.hidden || store.get().startHidden) {
      deps.notify('FuncNodes Workermanager did not start', `${message}. Choose in the tray menu.`);
      return;
    }
    void askAboutOccupant(occupant, message);
  }

  async function askAboutOccupant(occupant: PortOccupant, message: string): Promise<void> {
    if (occupant.kind === 'other') {
      await deps.dialog.showMessageBox({
        type: 'warning',
        message: 'The Workermanager could not start',
        detail: `${message}. Stop that program or choose another port (--port, or worker_manager.port in the FuncNodes config.json), then use "Try again" in the tray menu.`,
        buttons: ['OK'],
      });
      return;
    }
    const { response } = await deps.dialog.showMessageBox({
      type: 'question',
      message: 'Another Workermanager is already running',
      detail: `${message}. Use it (this window shows its workers), or take over (stop it, then run the manager here)?`,
      buttons: ['Use it', 'Take over', 'Decide later'],
      defaultId: 0,
      cancelId: 2,
    });
    if (response === 0) useOther();
    else if (response === 1) void takeOver();
  }

  function useOther(): void {
    if (phase.phase !== 'port-taken' || phase.occupant.kind !== 'workermanager') return;
    const { url, identity } = phase.occupant;
    target = { managerUrl: url, mode: 'other', py: identity.py };
    setPhase({ phase: 'client', url, py: identity.py });
    reopenWindow();
    void watchOther(url);
  }

  /** "Use it" lasts while that manager runs; when it goes, the tray says so and offers Start manager. */
  async function watchOther(url: string): Promise<void> {
    // "Use it" again (a take-over gave up while that manager kept the port) replaces the last watch.
    const previous = otherWatch;
    otherWatch = undefined;
    previous?.close();
    try {
      const token = await managerToken(url);
      const client = await ManagerClient.connect(url, 5000, token === null ? undefined : { Authorization: `Bearer ${token}` });
      otherWatch = client;
      // A replaced watch closing says nothing about the manager.
      client.socket.once('close', () => otherWatch === client && otherGone(url));
    } catch (err) {
      // It runs but wants its token: the window asks for it, then the watch starts again.
      if (err instanceof UnauthorizedError) log.warn(`The Workermanager on ${url} needs its access token; the window asks for it`);
      else otherGone(url);
    }
  }

  function managerToken(url: string): Promise<string | null> {
    return tokenForManager(url, currentSettings().managerTokens, deps.secrets, { overrides: launch.overrides, env: deps.env, log });
  }

  function otherGone(url: string): void {
    otherWatch = undefined;
    // A take-over or a quit ends the connection on purpose.
    if (phase.phase !== 'client' || phase.url !== url || quitting) return;
    log.warn(`The Workermanager on ${url} that this app was using has gone`);
    deps.notify('The Workermanager has stopped', `The one on ${url} that this app was using is gone. Start one here from the tray menu.`);
    setPhase({ phase: 'stopped' });
  }

  async function takeOver(): Promise<void> {
    const url = phase.phase === 'client' ? phase.url : phase.phase === 'port-taken' && phase.occupant.kind === 'workermanager' ? phase.occupant.url : undefined;
    if (url === undefined) return;
    setPhase({ phase: 'starting' });
    try {
      const client = await ManagerClient.connect(url);
      client.send('stop');
      client.close();
      log.info(`Asked the Workermanager on ${url} to stop`);
    } catch (err) {
      log.warn(`Could not ask ${url} to stop: ${(err as Error).message}`);
    }
    await startManager(deps.takeOverTimeoutMs ?? 60_000);
    if (target.mode === 'own' && service) reopenWindow();
  }

  async function stopManager(reason: string, answer: 'stop' | 'keep'): Promise<void> {
    const s = service;
    if (!s) return;
    setPhase({ phase: 'stopping' });
    await s.stop(reason, answer === 'keep');
  }

  /** Stop manager from the tray: asks first when it would end running workers. */
  async function stopFromTray(): Promise<void> {
    const answer = await askAboutWorkers('stop the Workermanager');
    if (answer !== 'cancel') await stopManager('stopped from the tray', answer);
  }

  /**
   * Nothing stops running workers without the user saying so: with workers this app started still running,
   * the remembered choice applies (setting, or config `keep_workers`), else a dialog asks.
   */
  async function askAboutWorkers(what: string): Promise<StopAnswer> {
    const running = service === undefined ? 0 : [...workers.values()].filter((w) => isRunningState(w.state) && !w.adopted).length;
    if (running === 0) return 'stop';
    if (service?.settings.keepWorkers) return 'keep';
    const remembered = currentSettings().workersOnQuit;
    if (remembered !== 'ask') return remembered;
    const { response, checkboxChecked } = await deps.dialog.showMessageBox({
      type: 'question',
      message: `${running} worker${running === 1 ? ' is' : 's are'} running`,
      detail: `You are about to ${what}. Stop the workers, or keep them running (the next start of the Workermanager takes them over again)?`,
      buttons: ['Stop them', 'Keep them running', 'Cancel'],
      defaultId: 1,
      cancelId: 2,
      checkboxLabel: 'Remember my choice (Settings in the tray menu)',
    });
    const answer: StopAnswer = response === 0 ? 'stop' : response === 1 ? 'keep' : 'cancel';
    if (answer !== 'cancel' && checkboxChecked) {
      await afterReady.settings?.update({ workersOnQuit: answer }).then(render, (err: unknown) => log.error(`Saving settings: ${(err as Error).message}`));
    }
    return answer;
  }

  /** The quit sequence: ask about running workers (cancel keeps the app), wait for the start in progress, stop, exit. */
  async function beginQuit(): Promise<void> {
    askingToQuit = true;
    let answer: StopAnswer;
    try {
      answer = await askAboutWorkers('quit FuncNodes Workermanager');
    } finally {
      askingToQuit = false;
    }
    if (answer === 'cancel' || quitting) return;
    quitting = true;
    // Synchronously, so the tray shows the quit at once; the window goes at once too.
    if (service) setPhase({ phase: 'stopping' });
    if (win && !win.isDestroyed()) win.hide();
    otherWatch?.close();
    try {
      await starting;
      await stopManager('app quit', answer);
    } catch (err) {
      log.error(`Stopping the Workermanager on quit failed: ${(err as Error).message}`);
    }
    readyToExit = true;
    afterReady.tray?.destroy();
    markExited();
    app.quit();
  }

  function workerAction(uuid: string, action: WorkerAction): void {
    const s = service;
    if (!s) return;
    const op = OPERATIONS[action];
    const name = workers.get(uuid)?.name ?? uuid;
    const errors: string[] = [];
    const requester = {
      subscribed: false,
      send: (message: ManagerMessage) => {
        if (message.type === 'error') errors.push(message.message);
      },
    };
    trayOps.add(uuid);
    void s
      .request({ type: op.type, workerid: uuid }, requester)
      .catch((err: unknown) => void errors.push((err as Error).message))
      .then(() => {
        trayOps.delete(uuid);
        // The tray shows no error text; success shows as the worker's new state.
        if (errors.length > 0) deps.notify(`${op.verb} ${name} failed`, errors.join('\n'));
      });
  }

  /**
   * The editor page waits for its worker to be listed active, so it opens at once, beside the start. In the
   * system browser: the editor is a full web app (its own CSP, eval, worker sockets) that the app's locked
   * window must not host.
   */
  function openEditor(uuid: string): void {
    if (target.managerUrl === '') return;
    const tracked = workers.get(uuid);
    if (tracked && !isRunningState(tracked.state)) workerAction(uuid, 'start');
    void shell.openExternal(editorUrl(target.managerUrl, uuid)).catch((err: unknown) => log.warn(`Cannot open the editor: ${(err as Error).message}`));
  }

  function showLogs(uuid: string): void {
    const tracked = service?.supervisor.find(uuid);
    if (!service || !tracked) return;
    // The manager writes each worker's output to worker.log in its data dir (core/supervisor/supervisor.ts).
    const file = path.join(service.registry.dataDir(tracked.config), 'worker.log');
    void shell.openPath(file).then((problem) => problem && log.warn(`Cannot open ${file}: ${problem}`));
  }

  const openLogsFolder = () => {
    const dir = app.getPath('logs');
    void shell.openPath(dir).then((problem) => problem && log.warn(`Cannot open ${dir}: ${problem}`));
  };

  async function setStartAtLogin(enabled: boolean): Promise<boolean> {
    await deps.loginItem.set(enabled);
    startAtLogin = await deps.loginItem.get();
    render();
    return startAtLogin;
  }

  // ---------------------------------------------------------------- the window

  function createAppWindow(): WindowLike {
    const created = deps.createWindow(windowOptions(deps.paths.preload, target.managerUrl, deps.paths.appIcon));
    guardNavigation(created.webContents, (url) => void shell.openExternal(url));
    restrictPermissions(created.webContents.session);
    created.on('close', (event) => {
      // A quit closes the windows once it has stopped what it must.
      if (quitting) return;
      event.preventDefault();
      // Quitting asks about running workers first; "Cancel" leaves the window where it was.
      if (store.get().quitOnWindowClose) app.quit();
      else created.hide();
    });
    created.on('closed', () => {
      if (win === created) win = undefined;
    });
    void created.loadURL(APP_ENTRY_URL).catch((err: unknown) => log.error(`Loading the window failed: ${(err as Error).message}`));
    return created;
  }

  function showWindow(): void {
    if (quitting) return;
    // No manager to show yet: the port is taken and nobody chose what to do, so ask again.
    if (target.managerUrl === '') {
      if (phase.phase === 'port-taken') void askAboutOccupant(phase.occupant, phase.message);
      return;
    }
    if (!win || win.isDestroyed()) win = createAppWindow();
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
  }

  /** The window's manager URL is fixed when it is created (preload argument), so a new manager means a new window. */
  function reopenWindow(): void {
    const old = win;
    win = undefined;
    // New first: destroying the only window emits window-all-closed, which quits with quitOnWindowClose.
    showWindow();
    if (old && !old.isDestroyed()) old.destroy();
  }

  const actions: TrayActions = {
    startManager: () => void startManager(),
    stopManager: () => void stopFromTray(),
    useOther,
    takeOver: () => void takeOver(),
    worker: workerAction,
    showLogs,
    openEditor,
    newWorker: showWindow,
    openWindow: showWindow,
    setStartAtLogin: (enabled) => void setStartAtLogin(enabled).catch((err: unknown) => log.error(`Start at login: ${(err as Error).message}`)),
    setSetting: (key, value) => void store.update({ [key]: value }).then(render, (err: unknown) => log.error(`Saving settings: ${(err as Error).message}`)),
    openLogsFolder,
    quit: () => app.quit(),
  };

  // ---------------------------------------------------------------- IPC (preload API)

  const ipc = createIpc(deps.ipcMain, () => win?.webContents, log);
  const info = (): AppInfo => ({ version: app.getVersion(), ...target });
  ipc.handle('app:info', info);
  ipc.handle('settings:get', () => store.get());
  ipc.handle('settings:set', async (patch) => {
    const saved = await store.update(patch);
    render();
    return saved;
  });
  ipc.handle('login:get', () => deps.loginItem.get());
  ipc.handle('login:set', (enabled) => {
    if (typeof enabled !== 'boolean') throw new Error('Start at login must be true or false');
    return setStartAtLogin(enabled);
  });
  ipc.handle('logs:open', openLogsFolder);
  ipc.handle('manager:token', () => (target.managerUrl === '' ? null : managerToken(target.managerUrl)));
  ipc.handle('manager:set-token', async (token) => {
    const valid = validToken(token);
    if (target.managerUrl === '') throw new Error('The window uses no manager yet');
    const host = new URL(target.managerUrl).host;
    await store.update({ managerTokens: { ...store.get().managerTokens, [host]: sealToken(valid, deps.secrets) } });
    // The window reconnects with the token now; the app's own watch of that manager starts again too.
    if (target.mode === 'other') await watchOther(target.managerUrl);
  });
  ipc.handle('external:open', async (url) => {
    const allowed = externalUrl(url);
    if (allowed === undefined) throw new Error('Only http and https links can be opened');
    await shell.openExternal(allowed);
  });

  // ---------------------------------------------------------------- start

  render();
  await startManager();
  started = true;
  if (showWhenStarted || (state().manager.phase === 'running' && !launch.hidden && !store.get().startHidden)) showWindow();

  return { state, info, service: () => service, window: () => win, exited };
}
