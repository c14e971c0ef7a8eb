/**
 * The desktop app's small plain-Node modules, with real files in temp dirs: settings, the rotating main
 * log, start at login on Linux (XDG autostart), the login items elsewhere, the command line.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rotatingFileSink } from '../../src-main/app/app-log.js';
import { parseLaunchOptions } from '../../src-main/app/launch-options.js';
import { desktopEntry, osLoginItem, quoteExecArg, xdgLoginItem } from '../../src-main/app/login-item.js';
import { defaultSettings, SettingsStore } from '../../src-main/app/settings.js';
import { createLogger } from '../../src-main/core/logs/log.js';
import { makeTempDir } from '../helpers/manager.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await makeTempDir('fnwm-app-unit-');
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('settings', () => {
  it('defaults: closing the window quits on Linux only', () => {
    expect(defaultSettings('linux')).toEqual({ startHidden: false, workersOnQuit: 'ask', quitOnWindowClose: true, python: null, managerTokens: {} });
    expect(defaultSettings('darwin').quitOnWindowClose).toBe(false);
    expect(defaultSettings('win32').quitOnWindowClose).toBe(false);
  });

  it('saves, reloads, refuses a bad change without touching the file', async () => {
    const file = path.join(await tempDir(), 'sub', 'settings.json');
    const store = new SettingsStore(file, defaultSettings('linux'), createLogger('error', () => undefined));
    expect(await store.load()).toEqual(defaultSettings('linux'));
    await store.update({ workersOnQuit: 'keep', python: '/opt/py/bin/python' });
    const saved = await readFile(file, 'utf8');
    for (const bad of [{ workersOnQuit: 'maybe' }, { managerTokens: { 'lab:9380': 1 } }, { keepWorkers: 1 }, { python: '' }, { colour: 'red' }, [], null, 'x']) {
      await expect(store.update(bad)).rejects.toThrow(/Setting|Unknown setting|JSON object/);
    }
    expect(await readFile(file, 'utf8')).toBe(saved);
    const again = new SettingsStore(file, defaultSettings('linux'), createLogger('error', () => undefined));
    expect(await again.load()).toEqual({ startHidden: false, workersOnQuit: 'keep', quitOnWindowClose: true, python: '/opt/py/bin/python', managerTokens: {} });
    // A file from before the quit choice: its keepWorkers boolean keeps its meaning.
    await writeFile(file, '{"keepWorkers": true}');
    expect((await again.load()).workersOnQuit).toBe('keep');
  });

  it('two quick changes of different settings both stick, in memory and in the file', async () => {
    const file = path.join(await tempDir(), 'settings.json');
    const store = new SettingsStore(file, defaultSettings('darwin'), createLogger('error', () => undefined));
    await store.load();
    const [first, second] = await Promise.all([store.update({ workersOnQuit: 'stop' }), store.update({ startHidden: true })]);
    expect(first).toMatchObject({ workersOnQuit: 'stop', startHidden: false });
    expect(second).toMatchObject({ workersOnQuit: 'stop', startHidden: true });
    expect(store.get()).toMatchObject({ workersOnQuit: 'stop', startHidden: true });
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ workersOnQuit: 'stop', startHidden: true });
  });

  it('a broken file means defaults and one clear log line, not a crash', async () => {
    const file = path.join(await tempDir(), 'settings.json');
    const lines: string[] = [];
    for (const text of ['{not json', '{"keepWorkers": "yes"}']) {
      await writeFile(file, text);
      const store = new SettingsStore(file, defaultSettings('darwin'), createLogger('info', (line) => lines.push(line)));
      expect(await store.load()).toEqual(defaultSettings('darwin'));
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain(`WARN Ignoring ${file} and using default settings:`);
    expect(lines[1]).toContain('Setting keepWorkers must be true or false');
  });
});

describe('main log rotation', () => {
  it('rotates at the size limit and keeps the newest files', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'logs', 'main.log');
    const write = rotatingFileSink(file, { maxBytes: 100, keep: 3 });
    // 39 bytes a line: two fit in 100.
    const line = (i: number) => `line ${String(i).padStart(2, '0')} ${'x'.repeat(30)}`;
    for (let i = 0; i < 12; i++) write(line(i));
    expect((await readdir(path.dirname(file))).sort()).toEqual(['main.log', 'main.log.1', 'main.log.2']);
    const current = await readFile(file, 'utf8');
    expect(current).toContain('line 11');
    expect(Buffer.byteLength(current)).toBeLessThanOrEqual(100);
    expect(await readFile(`${file}.1`, 'utf8')).toContain('line 08');
    expect(await readFile(`${file}.2`, 'utf8')).toBe(`${line(6)}\n${line(7)}\n`);
    // A new sink continues the existing file's size.
    rotatingFileSink(file, { maxBytes: 100, keep: 3 })(line(12));
    expect(await readFile(`${file}.1`, 'utf8')).toContain('line 11');
  });
});

describe('start at login', () => {
  it('Linux: an XDG autostart entry that starts the app hidden; removed again', async () => {
    const configHome = await tempDir();
    const item = xdgLoginItem({ configHome, fileName: 'org.funcnodes.workermanager.desktop', name: 'FuncNodes Workermanager', exec: '/opt/My Apps/fnwm.AppImage' });
    expect(await item.get()).toBe(false);
    await item.set(true);
    const file = path.join(configHome, 'autostart', 'org.funcnodes.workermanager.desktop');
    expect(await readFile(file, 'utf8')).toBe(
      '[Desktop Entry]\nType=Application\nName=FuncNodes Workermanager\nExec="/opt/My Apps/fnwm.AppImage" --hidden\nTerminal=false\nX-GNOME-Autostart-enabled=true\n',
    );
    expect(await item.get()).toBe(true);
    await item.set(false);
    expect(await item.get()).toBe(false);
    await item.set(false);
  });

  it('quotes Exec arguments as the Desktop Entry spec says', () => {
    expect(quoteExecArg('/usr/bin/fnwm')).toBe('/usr/bin/fnwm');
    expect(quoteExecArg('/a b/"x"$y`z\\')).toBe('"/a b/\\"x\\"\\$y\\`z\\\\"');
    expect(desktopEntry('N', '/x')).toContain('Exec=/x --hidden\n');
  });

  it('macOS and Windows: the login item with --hidden', async () => {
    const calls: unknown[] = [];
    let open = false;
    const item = osLoginItem({
      getLoginItemSettings: (options) => {
        calls.push(['get', options]);
        return { openAtLogin: open } as ReturnType<Parameters<typeof osLoginItem>[0]['getLoginItemSettings']>;
      },
      setLoginItemSettings: (settings) => {
        calls.push(['set', settings]);
        open = settings.openAtLogin === true;
      },
    });
    await item.set(true);
    expect(await item.get()).toBe(true);
    expect(calls).toEqual([
      ['set', { openAtLogin: true, args: ['--hidden'] }],
      ['get', { args: ['--hidden'] }],
    ]);
  });
});

describe('command line', () => {
  it('takes the CLI options and --hidden, ignores Chromium switches and the app path', () => {
    expect(parseLaunchOptions(['/opt/fnwm/app', '--no-sandbox', '--hidden', '--dir', '/d', '--host', '127.0.0.1', '--port', '9390', '--token-file', '/t'])).toEqual({
      hidden: true,
      overrides: { dir: '/d', host: '127.0.0.1', port: 9390 },
      auth: { tokenFile: '/t' },
      problems: [],
    });
    expect(parseLaunchOptions(['--no-auth']).auth).toEqual({ auth: false });
    expect(parseLaunchOptions([])).toEqual({ hidden: false, overrides: {}, auth: {}, problems: [] });
  });

  it('a bad value is reported and ignored', () => {
    expect(parseLaunchOptions(['--port', 'http', '--dir'])).toEqual({
      hidden: false,
      overrides: {},
      auth: {},
      problems: ['--dir needs a value', '--port http is not a port number; using the configured port'],
    });
  });
});
