/** The tray as a pure function of state (src-main/app/tray-menu.ts): icon, status line and menu for every state. */
import type { MenuItemConstructorOptions } from 'electron';
import { describe, expect, it } from 'vitest';
import { trayIcon, trayMenu, type ManagerPhase, type TrayActions, type TrayState } from '../../src-main/app/tray-menu.js';
import type { WorkerRuntime } from '../../src-shared/protocol.js';
import { menuItem } from '../helpers/electron-fakes.js';
import { runtime } from '../renderer/fixtures.js';

const worker = (name: string, state: WorkerRuntime['state'], extra: Partial<WorkerRuntime> = {}): WorkerRuntime =>
  runtime(`uuid-${name}`, { name, state, pid: null, started_at: null, ...extra });

const calls: string[] = [];
const actions: TrayActions = {
  startManager: () => calls.push('startManager'),
  stopManager: () => calls.push('stopManager'),
  useOther: () => calls.push('useOther'),
  takeOver: () => calls.push('takeOver'),
  worker: (uuid, action) => calls.push(`${action} ${uuid}`),
  showLogs: (uuid) => calls.push(`logs ${uuid}`),
  openEditor: (uuid) => calls.push(`editor ${uuid}`),
  newWorker: () => calls.push('newWorker'),
  openWindow: () => calls.push('openWindow'),
  setStartAtLogin: (enabled) => calls.push(`login ${enabled}`),
  setSetting: (key, value) => calls.push(`${key} ${value}`),
  openLogsFolder: () => calls.push('openLogsFolder'),
  quit: () => calls.push('quit'),
};

const settings = { startHidden: false, workersOnQuit: 'keep', quitOnWindowClose: false } as const;
const url = 'ws://localhost:9380';
const otherManager: ManagerPhase = {
  phase: 'port-taken',
  message: 'Another Workermanager already runs on ws://localhost:9380 (its Python: /usr/bin/python3)',
  occupant: { kind: 'workermanager', url, identity: { class: 'WorkerManager', py: '/usr/bin/python3' } },
};
const otherProgram: ManagerPhase = {
  phase: 'port-taken',
  message: 'Port 9380 is held by nginx (pid 42)',
  occupant: { kind: 'other', port: 9380, process: { pid: 42, name: 'nginx' } },
};

function state(manager: ManagerPhase, workers: WorkerRuntime[] = []): TrayState {
  return { manager, workers, startAtLogin: false, settings };
}

/** Labels with their enabled flag and checkbox state, submenus indented: a readable snapshot. */
function outline(items: MenuItemConstructorOptions[], depth = 0): string[] {
  return items.flatMap((item) => {
    const line = `${'  '.repeat(depth)}${item.type === 'separator' ? '---' : item.label}${item.enabled === false ? ' [disabled]' : ''}${item.type === 'checkbox' || item.type === 'radio' ? (item.checked ? ' [x]' : ' [ ]') : ''}`;
    return [line, ...outline((item.submenu as MenuItemConstructorOptions[] | undefined) ?? [], depth + 1)];
  });
}

describe('tray icon', () => {
  it('maps every manager phase to running, busy, stopped or error', () => {
    expect(trayIcon({ phase: 'running', url })).toBe('running');
    expect(trayIcon({ phase: 'client', url, py: 'p' })).toBe('running');
    expect(trayIcon({ phase: 'starting' })).toBe('busy');
    expect(trayIcon({ phase: 'stopping' })).toBe('busy');
    expect(trayIcon({ phase: 'stopped' })).toBe('stopped');
    expect(trayIcon({ phase: 'error', message: 'x' })).toBe('error');
    expect(trayIcon(otherManager)).toBe('error');
  });
});

describe('tray menu', () => {
  it('running, with workers in every state', () => {
    const workers = [
      worker('a', 'active', { pid: 10 }),
      worker('b', 'inactive'),
      worker('c', 'crashed', { exit: { code: 3, signal: null, at: 1 }, restart: 'always', autostart: 'unless-stopped' }),
      worker('d', 'starting'),
      worker('e', 'stopping'),
    ];
    expect(outline(trayMenu(state({ phase: 'running', url }, workers), actions))).toEqual([
      'Running on ws://localhost:9380 · 1/5 workers active [disabled]',
      '---',
      'Stop manager',
      'Workers',
      '  a — active',
      '    Start [disabled]',
      '    Stop',
      '    Restart',
      '    Open editor',
      '    Show logs',
      '    Restart on-failure · autostart never [disabled]',
      '  b — inactive',
      '    Start',
      '    Stop [disabled]',
      '    Restart',
      '    Open editor',
      '    Show logs',
      '    Restart on-failure · autostart never [disabled]',
      '  c — crashed (exit code 3)',
      '    Start',
      '    Stop [disabled]',
      '    Restart',
      '    Open editor',
      '    Show logs',
      '    Restart always · autostart unless-stopped [disabled]',
      '  d — starting',
      '    Start [disabled]',
      '    Stop [disabled]',
      '    Restart [disabled]',
      '    Open editor [disabled]',
      '    Show logs',
      '    Restart on-failure · autostart never [disabled]',
      '  e — stopping',
      '    Start [disabled]',
      '    Stop [disabled]',
      '    Restart [disabled]',
      '    Open editor [disabled]',
      '    Show logs',
      '    Restart on-failure · autostart never [disabled]',
      'New worker…',
      'Open Workermanager',
      '---',
      'Start at login [ ]',
      'Settings',
      '  Start hidden (tray only) [ ]',
      '  Running workers on quit',
      '    Ask [ ]',
      '    Stop them [ ]',
      '    Keep them running [x]',
      '  Quit when the window closes [ ]',
      'Open logs folder',
      '---',
      'Quit',
    ]);
  });

  it('each item calls its action with the worker and the toggled value', () => {
    const menu = trayMenu({ ...state({ phase: 'running', url }, [worker('a', 'active')]), startAtLogin: true }, actions);
    calls.length = 0;
    for (const path of [['Stop manager'], ['Workers', 'a', 'Stop'], ['Workers', 'a', 'Restart'], ['Workers', 'a', 'Open editor'], ['Workers', 'a', 'Show logs'], ['New worker'], ['Open Workermanager'], ['Start at login'], ['Settings', 'Running workers', 'Ask'], ['Settings', 'Start hidden'], ['Open logs folder'], ['Quit']]) {
      (menuItem(menu, ...path).click as () => void)();
    }
    expect(calls).toEqual(['stopManager', 'stop uuid-a', 'restart uuid-a', 'editor uuid-a', 'logs uuid-a', 'newWorker', 'openWindow', 'login false', 'workersOnQuit ask', 'startHidden true', 'openLogsFolder', 'quit']);
  });

  it('no workers yet', () => {
    expect(outline([menuItem(trayMenu(state({ phase: 'running', url }), actions), 'Workers')])).toEqual(['Workers', '  No workers yet [disabled]']);
  });

  it('starting and stopping: nothing to start or stop; quitting shows progress', () => {
    const starting = outline(trayMenu(state({ phase: 'starting' }), actions));
    expect(starting.slice(0, 4)).toEqual(['Workermanager starting… [disabled]', '---', 'Stop manager [disabled]', 'Workers [disabled]']);
    const stopping = trayMenu(state({ phase: 'stopping' }, [worker('a', 'stopping'), worker('b', 'active', { adopted: true }), worker('c', 'inactive')]), actions);
    expect(outline(stopping)[0]).toBe('Stopping… 1 worker still running [disabled]');
    expect(outline(stopping).at(-1)).toBe('Quitting… [disabled]');
    expect(outline(trayMenu(state({ phase: 'stopping' }), actions))[0]).toBe('Stopping… [disabled]');
  });

  it('stopped and error offer Start manager', () => {
    expect(outline(trayMenu(state({ phase: 'stopped' }), actions)).slice(0, 4)).toEqual(['Workermanager stopped [disabled]', '---', 'Start manager', 'Workers [disabled]']);
    expect(outline(trayMenu(state({ phase: 'error', message: 'The Workermanager could not start: EACCES' }), actions)).slice(0, 3)).toEqual([
      'The Workermanager could not start: EACCES [disabled]',
      '---',
      'Start manager',
    ]);
  });

  it('port taken by another Workermanager: Use it or Take over; by another program: Try again', () => {
    expect(outline(trayMenu(state(otherManager), actions)).slice(0, 5)).toEqual([
      'Another Workermanager already runs on ws://localhost:9380 (its Python: /usr/bin/python3) [disabled]',
      '---',
      'Use it',
      'Take over (stop it, then start here)',
      'Workers [disabled]',
    ]);
    expect(outline(trayMenu(state(otherProgram), actions)).slice(0, 4)).toEqual(['Port 9380 is held by nginx (pid 42) [disabled]', '---', 'Try again', 'Workers [disabled]']);
  });

  it('using another manager: its URL and Python, Take over, New worker opens the window', () => {
    const menu = outline(trayMenu(state({ phase: 'client', url, py: '/usr/bin/python3' }), actions));
    expect(menu.slice(0, 6)).toEqual([
      'Using the Workermanager on ws://localhost:9380 (Python: /usr/bin/python3) [disabled]',
      '---',
      'Take over (stop it, then start here)',
      'Workers [disabled]',
      '  No workers yet [disabled]',
      'New worker…',
    ]);
  });
});
