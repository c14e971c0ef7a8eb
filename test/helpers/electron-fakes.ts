/**
 * Small fakes of exactly the Electron surface the desktop app uses (src-main/app/desktop-app.ts
 * `DesktopDeps`), since no Electron runtime exists here. They record what the app did and let a test
 * play the user: click tray items, close the window, quit, launch a second instance, send IPC.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { BrowserWindowConstructorOptions, IpcMainInvokeEvent, MenuItemConstructorOptions } from 'electron';
import { createLogger } from '../../src-main/core/logs/log.js';
import type { DesktopDeps, TrayLike, WindowLike } from '../../src-main/app/desktop-app.js';
import type { LoginItem } from '../../src-main/app/login-item.js';
import { APP_ENTRY_URL } from '../../src-main/app/app-protocol.js';

/** An Electron-style event whose default can be prevented. */
export function preventable(): { defaultPrevented: boolean; preventDefault(): void } {
  return {
    defaultPrevented: false,
    preventDefault() {
      this.defaultPrevented = true;
    },
  };
}

/** Electron's message for any method called on a destroyed Tray or BrowserWindow. */
export const DESTROYED = 'Object has been destroyed';

/** Methods that still answer on a destroyed object in Electron (and the fakes' inspection helpers). */
const ALIVE_AFTER_DESTROY = new Set<PropertyKey>([
  'isDestroyed',
  ...Object.getOwnPropertyNames(EventEmitter.prototype),
  // Test inspection, not Electron API.
  'item',
]);

/** Wraps a fake so every method but `isDestroyed` and the event ones throws once it is destroyed, as Electron does. */
function strictDestroy<T extends { destroyed: boolean }>(target: T): T {
  return new Proxy(target, {
    get(object, key, receiver) {
      const value: unknown = Reflect.get(object, key, receiver);
      if (typeof value !== 'function' || !object.destroyed || ALIVE_AFTER_DESTROY.has(key)) return value;
      return () => {
        throw new TypeError(DESTROYED);
      };
    },
  });
}

/**
 * As Electron's `app`: `ready` comes after the main script's first turn (setImmediate), or when a test
 * calls `fireReady()` (`autoReady: false`); paths, trays and windows before it throw; a second launch
 * before it is delivered after it; `quit()` runs before-quit, closes the windows, will-quit, quit.
 */
export class FakeApp extends EventEmitter {
  lockFree = true;
  lockData: unknown;
  /** Times the app actually went on to exit (a `quit` that no before-quit, window close or will-quit prevented). */
  exits = 0;
  quitRequests = 0;
  exitCode?: number;
  /** Every quit event in order, for order checks. */
  readonly events: string[] = [];
  /** Open windows, which a quit closes first (set by the fakes' window factory). */
  readonly windows = new Set<FakeWindow>();
  private ready = false;
  private readonly readyWaiters: (() => void)[] = [];
  private readonly queuedLaunches: string[][] = [];
  private quittingNow = false;

  constructor(
    readonly dirs: { userData: string; logs: string },
    options: { autoReady?: boolean } = {},
  ) {
    super();
    if (options.autoReady !== false) setImmediate(() => this.fireReady());
  }

  fireReady(): void {
    if (this.ready) return;
    this.ready = true;
    this.emit('ready');
    for (const resolve of this.readyWaiters.splice(0)) resolve();
    // Electron emits second-instance only after ready.
    for (const argv of this.queuedLaunches.splice(0)) this.secondLaunch(argv);
  }
  isReady(): boolean {
    return this.ready;
  }
  whenReady(): Promise<void> {
    return this.ready ? Promise.resolve() : new Promise((resolve) => this.readyWaiters.push(resolve));
  }
  /** Throws as Electron does for APIs that need `ready`. */
  assertReady(what: string): void {
    if (!this.ready) throw new Error(`${what} cannot be used before the app is ready`);
  }
  /** The user launches the app again while this instance holds the lock. */
  secondLaunch(argv: string[]): void {
    if (!this.ready) {
      this.queuedLaunches.push(argv);
      return;
    }
    this.emit('second-instance', preventable(), argv, '/', { argv });
  }

  requestSingleInstanceLock(data?: unknown): boolean {
    this.lockData = data;
    return this.lockFree;
  }
  quit(): void {
    this.quitRequests++;
    if (this.quittingNow) return;
    const before = preventable();
    this.events.push('before-quit');
    this.emit('before-quit', before);
    if (before.defaultPrevented) return;
    // Electron closes every window first; one that prevents its close cancels the quit (no window-all-closed).
    this.quittingNow = true;
    try {
      for (const win of [...this.windows]) {
        if (!win.isDestroyed() && !win.userClose()) return;
      }
      const willQuit = preventable();
      this.events.push('will-quit');
      this.emit('will-quit', willQuit);
      if (willQuit.defaultPrevented) return;
      this.events.push('quit');
      this.emit('quit', preventable(), 0);
      this.exits++;
    } finally {
      this.quittingNow = false;
    }
  }
  /** Whether a quit is closing the windows now (window-all-closed is not emitted then). */
  get closingForQuit(): boolean {
    return this.quittingNow;
  }
  exit(code = 0): void {
    this.exitCode = code;
  }
  getVersion(): string {
    return '0.1.0-test';
  }
  getPath(name: string): string {
    this.assertReady(`app.getPath(${name})`);
    if (name === 'userData' || name === 'logs') return this.dirs[name];
    throw new Error(`FakeApp.getPath(${name}) is not faked`);
  }
}

/** The item at this label path in a menu template (`['Workers', 'demo — active', 'Stop']`); labels may be prefixes. */
export function menuItem(menu: MenuItemConstructorOptions[], ...labels: string[]): MenuItemConstructorOptions {
  let items = menu;
  let found: MenuItemConstructorOptions | undefined;
  for (const label of labels) {
    found = items.find((item) => item.label?.startsWith(label));
    if (!found) throw new Error(`No tray item ${JSON.stringify(label)} in ${JSON.stringify(items.map((i) => i.label))}`);
    items = (found.submenu as MenuItemConstructorOptions[] | undefined) ?? [];
  }
  return found!;
}

export class FakeTray extends EventEmitter {
  images: string[] = [];
  tooltip = '';
  menu: MenuItemConstructorOptions[] = [];
  destroyed = false;

  setImage(image: string): void {
    this.images.push(image);
  }
  setToolTip(text: string): void {
    this.tooltip = text;
  }
  setContextMenu(menu: { template: MenuItemConstructorOptions[] }): void {
    this.menu = menu.template;
  }
  destroy(): void {
    this.destroyed = true;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }

  /** The item at this label path (`['Workers', 'demo — active', 'Stop']`); labels may be prefixes. */
  item(...labels: string[]): MenuItemConstructorOptions {
    return menuItem(this.menu, ...labels);
  }

  click(...labels: string[]): void {
    const item = this.item(...labels);
    if (item.enabled === false) throw new Error(`Tray item ${labels.join(' > ')} is disabled`);
    (item.click as () => void)();
  }

  get status(): string {
    return this.menu[0]?.label ?? '';
  }
}

export class FakeWebContents extends EventEmitter {
  readonly mainFrame = { url: APP_ENTRY_URL };
  openHandler?: (details: { url: string }) => { action: string };
  permissionRequest?: (contents: unknown, permission: string, callback: (granted: boolean) => void, details: { requestingUrl: string; isMainFrame: boolean }) => void;
  permissionCheck?: (contents: unknown, permission: string, requestingOrigin: string, details: { requestingUrl?: string; isMainFrame: boolean }) => boolean;
  readonly session = {
    setPermissionRequestHandler: (handler: FakeWebContents['permissionRequest']) => (this.permissionRequest = handler),
    setPermissionCheckHandler: (handler: FakeWebContents['permissionCheck']) => (this.permissionCheck = handler),
  };
  setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void {
    this.openHandler = handler;
  }
}

export class FakeWindow extends EventEmitter {
  readonly webContents = new FakeWebContents();
  visible = false;
  destroyed = false;
  loaded: string[] = [];

  constructor(readonly options: BrowserWindowConstructorOptions) {
    super();
  }
  show(): void {
    this.visible = true;
  }
  focus(): void {}
  hide(): void {
    this.visible = false;
  }
  isVisible(): boolean {
    return this.visible;
  }
  isDestroyed(): boolean {
    return this.destroyed;
  }
  isMinimized(): boolean {
    return false;
  }
  restore(): void {}
  loadURL(url: string): Promise<void> {
    this.loaded.push(url);
    return Promise.resolve();
  }
  destroy(): void {
    this.destroyed = true;
    this.visible = false;
    this.emit('closed');
  }
  /** The user closes the window: `close` may be prevented (hide to tray), else it is gone. Returns whether it closed. */
  userClose(): boolean {
    const event = preventable();
    this.emit('close', event);
    if (event.defaultPrevented) return false;
    this.destroy();
    return true;
  }
  /** The `--fnwm-manager-url=` switch the preload reads. */
  get managerUrl(): string | undefined {
    const arg = this.options.webPreferences?.additionalArguments?.find((a) => a.startsWith('--fnwm-manager-url='));
    return arg?.slice('--fnwm-manager-url='.length);
  }
}

export class FakeIpcMain {
  readonly handlers = new Map<string, (event: IpcMainInvokeEvent, ...args: unknown[]) => unknown>();
  handle(channel: string, handler: (event: IpcMainInvokeEvent, ...args: unknown[]) => unknown): void {
    this.handlers.set(channel, handler);
  }
  /** As Electron: a throwing handler becomes a rejected invoke. */
  invoke(channel: string, sender: { sender: unknown; senderFrame: unknown }, ...args: unknown[]): Promise<unknown> {
    const handler = this.handlers.get(channel);
    if (!handler) return Promise.reject(new Error(`No handler for ${channel}`));
    return new Promise((resolve) => resolve(handler(sender as IpcMainInvokeEvent, ...args)));
  }
}

export class FakeLoginItem implements LoginItem {
  enabled = false;
  get(): Promise<boolean> {
    return Promise.resolve(this.enabled);
  }
  set(enabled: boolean): Promise<void> {
    this.enabled = enabled;
    return Promise.resolve();
  }
}

export interface Fakes {
  deps: DesktopDeps;
  app: FakeApp;
  tray(): FakeTray;
  windows: FakeWindow[];
  ipc: FakeIpcMain;
  notifications: { title: string; body: string }[];
  dialogs: { options: { message?: string; detail?: string; buttons?: string[]; checkboxLabel?: string } }[];
  /** Responses the fake dialog gives, in order (default: the last button); an object also ticks its checkbox. */
  dialogAnswers: (number | { response: number; checkboxChecked: boolean })[];
  opened: { external: string[]; paths: string[] };
  logs: string[];
  /** Logs dirs the app opened its main log in. */
  openedLogs: string[];
  protocolHandler(): (request: Request) => Promise<Response>;
}

/** A tray as Electron makes it: only after ready, and dead once destroyed. */
export function createFakeTray(app: FakeApp, image: string): FakeTray {
  app.assertReady('new Tray()');
  const tray = strictDestroy(new FakeTray());
  tray.images.push(image);
  return tray;
}

/** A window as Electron makes it: only after ready, dead once destroyed; the last one closing emits window-all-closed (not during a quit). */
export function createFakeWindow(app: FakeApp, options: BrowserWindowConstructorOptions): FakeWindow {
  app.assertReady('new BrowserWindow()');
  const win = strictDestroy(new FakeWindow(options));
  app.windows.add(win);
  win.on('closed', () => {
    app.windows.delete(win);
    if (app.windows.size === 0 && !app.closingForQuit) app.emit('window-all-closed');
  });
  return win;
}

export function electronFakes(options: { argv: string[]; env: Record<string, string | undefined>; dir: string; platform?: NodeJS.Platform; autoReady?: boolean }): Fakes {
  const app = new FakeApp({ userData: path.join(options.dir, 'userData'), logs: path.join(options.dir, 'logs') }, { autoReady: options.autoReady });
  const trays: FakeTray[] = [];
  const windows: FakeWindow[] = [];
  const ipc = new FakeIpcMain();
  const notifications: Fakes['notifications'] = [];
  const dialogs: Fakes['dialogs'] = [];
  const dialogAnswers: Fakes['dialogAnswers'] = [];
  const opened: Fakes['opened'] = { external: [], paths: [] };
  const logs: string[] = [];
  const openedLogs: string[] = [];
  let handler: ((request: Request) => Promise<Response>) | undefined;
  const deps: DesktopDeps = {
    argv: options.argv,
    platform: options.platform ?? 'darwin',
    env: options.env,
    app: app as unknown as DesktopDeps['app'],
    openLog: (logsDir) => {
      app.assertReady('The logs dir');
      openedLogs.push(logsDir);
    },
    ipcMain: ipc,
    shell: {
      openExternal: (url) => {
        opened.external.push(url);
        return Promise.resolve();
      },
      openPath: (target) => {
        opened.paths.push(target);
        return Promise.resolve('');
      },
    },
    dialog: {
      showMessageBox: ((opts: Fakes['dialogs'][number]['options']) => {
        dialogs.push({ options: opts });
        const answer = dialogAnswers.shift() ?? (opts.buttons?.length ?? 1) - 1;
        return Promise.resolve(typeof answer === 'number' ? { response: answer, checkboxChecked: false } : answer);
      }) as unknown as DesktopDeps['dialog']['showMessageBox'],
    },
    menu: { buildFromTemplate: (template) => ({ template }) as unknown as Electron.Menu },
    createTray: (image) => {
      const tray = createFakeTray(app, image);
      trays.push(tray);
      return tray as unknown as TrayLike;
    },
    createWindow: (opts) => {
      const win = createFakeWindow(app, opts);
      windows.push(win);
      return win as unknown as WindowLike;
    },
    notify: (title, body) => notifications.push({ title, body }),
    registerAppProtocol: (h) => {
      app.assertReady('protocol.handle');
      handler = h;
    },
    loginItem: new FakeLoginItem(),
    paths: { preload: '/app/dist/preload/index.cjs', renderer: path.resolve('dist/renderer'), appIcon: '/app/assets/icon.png', trayIcon: (icon) => `tray-${icon}.png` },
    log: createLogger('debug', (line) => logs.push(line)),
  };
  return {
    deps,
    app,
    tray: () => {
      const tray = trays.at(-1);
      if (!tray) throw new Error('No tray was created');
      return tray;
    },
    windows,
    ipc,
    notifications,
    dialogs,
    dialogAnswers,
    opened,
    logs,
    openedLogs,
    protocolHandler: () => {
      if (!handler) throw new Error('The app protocol was not registered');
      return handler;
    },
  };
}
