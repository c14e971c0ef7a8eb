/**
 * Electron main entry: the only module that loads `electron`. It wires the real APIs into the desktop app
 * (src-main/app/desktop-app.ts), where all behaviour lives and is tested with fakes.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, nativeImage, Notification, protocol, safeStorage, shell, Tray } from 'electron';
import { createLogger } from './core/logs/log.js';
import { defaultRendererDir } from './core/hub/ui-server.js';
import { deferredFileLog } from './app/app-log.js';
import { APP_SCHEME, APP_SCHEME_PRIVILEGES } from './app/app-protocol.js';
import { runDesktopApp } from './app/desktop-app.js';
import { osLoginItem, xdgLoginItem } from './app/login-item.js';
import type { TrayIcon } from './app/tray-menu.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = path.join(here, '../../assets');
const APP_ID = 'org.funcnodes.workermanager';

// Must happen before `ready`.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: APP_SCHEME_PRIVILEGES }]);
if (process.platform === 'win32') app.setAppUserModelId(APP_ID);

// The file opens once this instance holds the lock and the app is ready (runDesktopApp calls openLog).
const mainLog = deferredFileLog();
const log = createLogger('info', (line) => {
  mainLog.write(line);
  process.stderr.write(`${line}\n`);
});

/** macOS gets template images (black + alpha, recoloured by the menu bar); Windows an ICO; Linux a PNG. */
function trayIconPath(icon: TrayIcon): string {
  if (process.platform === 'darwin') return path.join(assets, 'tray', `tray-${icon}Template.png`);
  if (process.platform === 'win32') return path.join(assets, 'tray', `tray-${icon}.ico`);
  return path.join(assets, 'tray', `tray-${icon}.png`);
}

const loginItem =
  process.platform === 'linux'
    ? xdgLoginItem({
        configHome: process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'),
        fileName: `${APP_ID}.desktop`,
        name: 'FuncNodes Workermanager',
        // Inside an AppImage, execPath is a temporary mount; APPIMAGE is the file the user launched.
        exec: process.env.APPIMAGE ?? process.execPath,
      })
    : osLoginItem(app);

void runDesktopApp({
  argv: process.argv.slice(1),
  platform: process.platform,
  env: process.env,
  app,
  openLog: (logsDir) => mainLog.open(path.join(logsDir, 'main.log')),
  ipcMain,
  shell,
  dialog,
  menu: Menu,
  createTray: (image) => new Tray(nativeImage.createFromPath(image)),
  createWindow: (options) => new BrowserWindow(options),
  notify: (title, body) => {
    if (Notification.isSupported()) new Notification({ title, body }).show();
  },
  registerAppProtocol: (handler) => protocol.handle(APP_SCHEME, handler),
  loginItem,
  secrets: safeStorage,
  paths: {
    preload: path.join(here, '../preload/index.cjs'),
    renderer: defaultRendererDir(import.meta.url),
    appIcon: path.join(assets, 'icon.png'),
    trayIcon: trayIconPath,
  },
  log,
}).catch((err: unknown) => {
  log.error(`The app failed to start: ${(err as Error).stack ?? String(err)}`);
  app.exit(1);
});
