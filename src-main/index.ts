/**
 * Electron main entry, deliberately thin: it hosts the same manager core as the headless CLI and shows the
 * renderer in a locked-down window. Tray, settings and the full window behaviour come with the desktop issue.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, shell } from 'electron';
import { startManagerService, type ManagerService } from './core/service.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let service: ManagerService | undefined;

function openWindow(url: string): void {
  const win = new BrowserWindow({
    width: 960,
    height: 640,
    webPreferences: {
      preload: path.join(here, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      additionalArguments: [`--fnwm-manager-url=${url}`],
    },
  });
  win.webContents.setWindowOpenHandler(({ url: target }) => {
    if (/^https?:\/\//.test(target)) void shell.openExternal(target);
    return { action: 'deny' };
  });
  win.webContents.on('will-navigate', (event) => event.preventDefault());
  void win.loadFile(path.join(here, '../renderer/index.html'));
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => BrowserWindow.getAllWindows()[0]?.focus());
  app.on('window-all-closed', () => {
    void (service?.stop('window closed') ?? Promise.resolve()).then(() => app.quit());
  });
  void app.whenReady().then(async () => {
    // The window is loaded from file://, which Chromium sends as its WebSocket Origin.
    service = await startManagerService({ extraOrigins: ['file://'] });
    openWindow(service.url);
  });
}
