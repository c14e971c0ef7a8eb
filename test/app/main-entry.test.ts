/**
 * The built Electron entry (dist/main/index.js) with the `electron` module mocked by the fakes: it must wire
 * the real paths of the build (preload, renderer, tray icons, app icon), register the app scheme before
 * `ready`, log to the logs dir, and run the desktop app. Needs `npm run build` first.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { FakeApp, FakeTray, FakeWindow } from '../helpers/electron-fakes.js';
import { assertCliBuilt } from '../helpers/cli.js';
import { killWorkers, makeTempDir, testEnv, waitFor } from '../helpers/manager.js';
import { randomPortRange } from '../helpers/standin.js';

const root = path.resolve(import.meta.dirname, '../..');
const state = vi.hoisted(() => ({
  dir: '',
  apps: [] as unknown[],
  trays: [] as unknown[],
  windows: [] as unknown[],
  schemes: [] as unknown[],
  handlers: new Map<string, (request: Request) => Promise<Response>>(),
  notes: [] as unknown[],
}));

vi.mock('electron', async () => {
  const fakes = await import('../helpers/electron-fakes.js');
  const app = new fakes.FakeApp({ userData: `${state.dir}/userData`, logs: `${state.dir}/logs` });
  state.apps.push(app);
  return {
    app,
    ipcMain: new fakes.FakeIpcMain(),
    shell: { openExternal: () => Promise.resolve(), openPath: () => Promise.resolve('') },
    dialog: { showMessageBox: () => Promise.resolve({ response: 0 }) },
    Menu: { buildFromTemplate: (template: unknown) => ({ template }) },
    nativeImage: { createFromPath: (file: string) => ({ file }) },
    safeStorage: { isEncryptionAvailable: () => false, encryptString: () => Buffer.alloc(0), decryptString: () => '' },
    Tray: function Tray(image: { file: string }) {
      const tray = fakes.createFakeTray(app, image.file);
      state.trays.push(tray);
      return tray;
    },
    BrowserWindow: function BrowserWindow(options: ConstructorParameters<typeof fakes.FakeWindow>[0]) {
      const win = fakes.createFakeWindow(app, options);
      state.windows.push(win);
      return win;
    },
    Notification: Object.assign(
      function Notification(options: unknown) {
        return { show: () => state.notes.push(options) };
      },
      { isSupported: () => true },
    ),
    // As Electron: schemes are registered before ready, handlers after.
    protocol: {
      registerSchemesAsPrivileged: (schemes: unknown[]) => {
        if (app.isReady()) throw new Error('registerSchemesAsPrivileged must be called before the app is ready');
        state.schemes.push(...schemes);
      },
      handle: (scheme: string, handler: (request: Request) => Promise<Response>) => {
        app.assertReady('protocol.handle');
        state.handlers.set(scheme, handler);
      },
    },
  };
});

const saved = { argv: process.argv, env: { ...process.env } };
afterAll(async () => {
  process.argv = saved.argv;
  for (const key of Object.keys(process.env)) if (!(key in saved.env)) delete process.env[key];
  Object.assign(process.env, saved.env);
  await killWorkers(path.join(state.dir, 'workers'));
  await rm(state.dir, { recursive: true, force: true });
});

describe.runIf(process.platform === 'linux')('main entry (built)', () => {
  it('wires the build paths, the app scheme and the log, runs the app hidden, and quits', async () => {
    assertCliBuilt();
    state.dir = await makeTempDir('fnwm-entry-');
    Object.assign(process.env, testEnv(randomPortRange()), { XDG_CONFIG_HOME: path.join(state.dir, 'xdg') });
    for (const key of ['FUNCNODES_CONFIG_DIR', 'APPIMAGE']) delete process.env[key];
    process.argv = [process.execPath, root, '--dir', state.dir, '--host', '127.0.0.1', '--port', '0', '--hidden'];
    const entry = path.join(root, 'dist/main/index.js');
    await import(/* @vite-ignore */ entry);

    expect(state.schemes).toEqual([{ scheme: 'fnwm', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
    await waitFor(() => (state.trays[0] as FakeTray | undefined)?.status.startsWith('Running on ws://127.0.0.1:') ?? false, 10_000, 'the manager');
    const tray = state.trays[0] as FakeTray;
    expect(tray.images.length).toBeGreaterThan(1);
    for (const image of tray.images) expect(existsSync(image), image).toBe(true);
    expect(tray.images.at(-1)).toBe(path.join(root, 'assets/tray/tray-running.png'));
    expect(state.windows).toHaveLength(0);

    tray.click('Open Workermanager');
    const win = state.windows[0] as FakeWindow;
    expect(existsSync(win.options.webPreferences!.preload!)).toBe(true);
    expect(win.options.webPreferences!.preload).toBe(path.join(root, 'dist/preload/index.cjs'));
    expect(existsSync(win.options.icon as string)).toBe(true);
    const page = await state.handlers.get('fnwm')!(new Request('fnwm://app/index.html'));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');

    expect(await readFile(path.join(state.dir, 'logs', 'main.log'), 'utf8')).toContain('Workermanager listening on ws://127.0.0.1:');

    const app = state.apps[0] as FakeApp;
    app.quit();
    await waitFor(() => tray.destroyed, 10_000, 'the quit');
    expect(app.exits).toBe(1);
    expect(app.exitCode).toBeUndefined();
    expect(app.events).toEqual(['before-quit', 'before-quit', 'will-quit', 'quit']);
  });
});
