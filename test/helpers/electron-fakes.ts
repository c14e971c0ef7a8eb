/**
 * Small fakes of exactly the Electron surface the desktop app uses (src-main/app/desktop-app.ts
 * `DesktopDeps`), since no Electron runtime exists here. They record what the app did and let a test
 * play the user: click tray items, close the window, quit, launch a second instance, send IPC.
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { BrowserWindowConstructorOptions, IpcMainInvokeEvent, MenuItemConstructorOptions } from 'electron';
import { createLogger } from '../../src-main/core/log.js';
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

export class FakeApp extends EventEmitter {
  lockFree = true;
  lockData: unknown;
  /** Times the app actually went on to exit (a `quit` whose before-quit was not prevented). */
  exits = 0;
  quitRequests = 0;
  exitCode?: number;

  constructor(readonly dirs: { userData: string; logs: string }) {
    super();
  }

  requestSingleInstanceLock(data?: unknown): boolean {
    this.lockData = data;
    return this.lockFree;
  }
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
  quit(): void {
    this.quitRequests++;
    const event = preventable();
    this.emit('before-quit', event);
    if (!event.defaultPrevented) this.exits++;
  }
  exit(code = 0): void {
    this.exitCode = code;
  }
  getVersion(): string {
    return '0.1.0-test';
  }
  getPath(name: string): string {
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
  /** The user closes the window: `close` may be prevented (hide to tray), else it is gone. */
  userClose(): void {
    const event = preventable();
    this.emit('close', event);
    if (event.defaultPrevented) return;
    this.destroy();
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
  dialogs: { options: { message?: string; detail?: string; buttons?: string[] }; }[];
  /** Responses the fake dialog gives, in order (default: the last button). */
  dialogAnswers: number[];
  opened: { external: string[]; paths: string[] };
  logs: string[];
  protocolHandler(): (request: Request) => Promise<Response>;
}

export function electronFakes(options: { argv: string[]; env: Record<string, string | undefined>; dir: string; platform?: NodeJS.Platform }): Fakes {
  const app = new FakeApp({ userData: path.join(options.dir, 'userData'), logs: path.join(options.dir, 'logs') });
  const trays: FakeTray[] = [];
  const windows: FakeWindow[] = [];
  const ipc = new FakeIpcMain();
  const notifications: Fakes['notifications'] = [];
  const dialogs: Fakes['dialogs'] = [];
  const dialogAnswers: number[] = [];
  const opened: Fakes['opened'] = { external: [], paths: [] };
  const logs: string[] = [];
  let handler: ((request: Request) => Promise<Response>) | undefined;
  const deps: DesktopDeps = {
    argv: options.argv,
    platform: options.platform ?? 'darwin',
    env: options.env,
    app: app as unknown as DesktopDeps['app'],
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
        const response = dialogAnswers.shift() ?? (opts.buttons?.length ?? 1) - 1;
        return Promise.resolve({ response, checkboxChecked: false });
      }) as unknown as DesktopDeps['dialog']['showMessageBox'],
    },
    menu: { buildFromTemplate: (template) => ({ template }) as unknown as Electron.Menu },
    createTray: (image) => {
      const tray = new FakeTray();
      tray.images.push(image);
      trays.push(tray);
      return tray as unknown as TrayLike;
    },
    createWindow: (opts) => {
      const win = new FakeWindow(opts);
      windows.push(win);
      // As Electron: the last open window going emits window-all-closed.
      win.on('closed', () => windows.every((w) => w.destroyed) && app.emit('window-all-closed'));
      return win as unknown as WindowLike;
    },
    notify: (title, body) => notifications.push({ title, body }),
    registerAppProtocol: (h) => (handler = h),
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
    protocolHandler: () => {
      if (!handler) throw new Error('The app protocol was not registered');
      return handler;
    },
  };
}
