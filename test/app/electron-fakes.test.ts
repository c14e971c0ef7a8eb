/**
 * The Electron fakes themselves (test/helpers/electron-fakes.ts): the desktop app's tests are only as good
 * as the fakes are strict, so each rule of Electron they copy is pinned here.
 */
import { describe, expect, it } from 'vitest';
import { createFakeTray, createFakeWindow, DESTROYED, FakeApp, preventable } from '../helpers/electron-fakes.js';

const dirs = { userData: '/tmp/u', logs: '/tmp/l' };

describe('Electron fakes', () => {
  it('paths, trays and windows throw before ready; second-instance waits for ready', async () => {
    const app = new FakeApp(dirs, { autoReady: false });
    expect(() => app.getPath('logs')).toThrow('before the app is ready');
    expect(() => createFakeTray(app, 'x.png')).toThrow('before the app is ready');
    expect(() => createFakeWindow(app, {})).toThrow('before the app is ready');
    const launches: unknown[] = [];
    app.on('second-instance', (_event, argv) => launches.push(argv));
    app.secondLaunch(['/app', '--x']);
    expect(launches).toEqual([]);
    const ready = app.whenReady();
    app.fireReady();
    await ready;
    expect(launches).toEqual([['/app', '--x']]);
    expect(app.getPath('logs')).toBe('/tmp/l');
  });

  it('ready comes by itself after the first turn, as the main script has run', async () => {
    const app = new FakeApp(dirs);
    expect(app.isReady()).toBe(false);
    await app.whenReady();
    expect(app.isReady()).toBe(true);
  });

  it('every method of a destroyed tray or window throws "Object has been destroyed"; isDestroyed and events still work', async () => {
    const app = new FakeApp(dirs);
    await app.whenReady();
    const tray = createFakeTray(app, 'x.png');
    tray.destroy();
    expect(tray.isDestroyed()).toBe(true);
    for (const call of [() => tray.setImage('y.png'), () => tray.setToolTip('t'), () => tray.destroy()]) expect(call).toThrow(DESTROYED);
    const win = createFakeWindow(app, {});
    win.destroy();
    expect(win.isDestroyed()).toBe(true);
    for (const call of [() => win.show(), () => win.isVisible(), () => win.loadURL('x'), () => win.destroy()]) expect(call).toThrow(DESTROYED);
    expect(() => win.on('closed', () => undefined)).not.toThrow();
  });

  it("quit: before-quit, then the windows close, then will-quit and quit; each step's preventDefault stops it there", async () => {
    const app = new FakeApp(dirs);
    await app.whenReady();
    const seen: string[] = [];
    app.on('window-all-closed', () => seen.push('window-all-closed'));

    let blockBefore = true;
    app.on('before-quit', (event: ReturnType<typeof preventable>) => blockBefore && event.preventDefault());
    app.quit();
    expect(app.events).toEqual(['before-quit']);
    expect(app.exits).toBe(0);

    blockBefore = false;
    const win = createFakeWindow(app, {});
    let keepWindow = true;
    win.on('close', (event: ReturnType<typeof preventable>) => keepWindow && event.preventDefault());
    app.quit();
    expect(app.events).toEqual(['before-quit', 'before-quit']);
    expect(win.isDestroyed()).toBe(false);

    keepWindow = false;
    let blockWillQuit = true;
    app.on('will-quit', (event: ReturnType<typeof preventable>) => blockWillQuit && event.preventDefault());
    app.quit();
    expect(win.isDestroyed()).toBe(true);
    expect(app.events.slice(2)).toEqual(['before-quit', 'will-quit']);
    expect(app.exits).toBe(0);

    blockWillQuit = false;
    app.quit();
    expect(app.events.slice(4)).toEqual(['before-quit', 'will-quit', 'quit']);
    expect(app.exits).toBe(1);
    // Windows closed by a quit do not emit window-all-closed.
    expect(seen).toEqual([]);
  });
});
