/**
 * The tray as a pure function of state: which icon, which tooltip, which menu. The controller rebuilds and
 * re-attaches the menu on every change (Linux AppIndicator ignores clicks and shows nothing without one).
 */
import type { MenuItemConstructorOptions } from 'electron';
import type { PortOccupant } from '../core/service/port-occupant.js';
import { exitText, isRunningState, type WorkerRuntime } from '../../src-shared/protocol.js';
import type { AppSettings, WorkersOnQuit } from './settings.js';

/** What the app's manager is doing; `client`: the window uses a manager this app did not start ("Use it"). */
export type ManagerPhase =
  | { phase: 'starting' }
  | { phase: 'running'; url: string }
  | { phase: 'stopping' }
  | { phase: 'stopped' }
  | { phase: 'error'; message: string }
  | { phase: 'port-taken'; message: string; occupant: PortOccupant }
  | { phase: 'client'; url: string; py: string };

export type ToggleSetting = 'startHidden' | 'quitOnWindowClose';
export type TraySetting = ToggleSetting | 'workersOnQuit';

export interface TrayState {
  manager: ManagerPhase;
  workers: readonly WorkerRuntime[];
  startAtLogin: boolean;
  settings: Pick<AppSettings, TraySetting>;
}

export type WorkerAction = 'start' | 'stop' | 'restart';

/** Menu callbacks; each returns at once (the controller runs the work and reports through state). */
export interface TrayActions {
  startManager: () => void;
  stopManager: () => void;
  useOther: () => void;
  takeOver: () => void;
  worker: (uuid: string, action: WorkerAction) => void;
  showLogs: (uuid: string) => void;
  /** Starts the worker unless it runs, and opens the FuncNodes editor for it in the system browser. */
  openEditor: (uuid: string) => void;
  newWorker: () => void;
  openWindow: () => void;
  setStartAtLogin: (enabled: boolean) => void;
  setSetting: <K extends TraySetting>(key: K, value: AppSettings[K]) => void;
  openLogsFolder: () => void;
  quit: () => void;
}

export type TrayIcon = 'running' | 'busy' | 'stopped' | 'error';

export function trayIcon(manager: ManagerPhase): TrayIcon {
  switch (manager.phase) {
    case 'running':
    case 'client':
      return 'running';
    case 'starting':
    case 'stopping':
      return 'busy';
    case 'stopped':
      return 'stopped';
    case 'error':
    case 'port-taken':
      return 'error';
  }
}

export function statusLine(state: TrayState): string {
  const m = state.manager;
  switch (m.phase) {
    case 'starting':
      return 'Workermanager starting…';
    case 'running': {
      const active = state.workers.filter((w) => w.state === 'active').length;
      return `Running on ${m.url} · ${active}/${state.workers.length} workers active`;
    }
    case 'stopping': {
      const left = state.workers.filter((w) => isRunningState(w.state) && !w.adopted).length;
      return left > 0 ? `Stopping… ${left} worker${left === 1 ? '' : 's'} still running` : 'Stopping…';
    }
    case 'stopped':
      return 'Workermanager stopped';
    case 'error':
    case 'port-taken':
      return m.message;
    case 'client':
      return `Using the Workermanager on ${m.url} (Python: ${m.py})`;
  }
}

function workerLabel(worker: WorkerRuntime): string {
  const name = worker.name ?? worker.uuid;
  const exit = worker.state === 'crashed' && worker.exit ? ` (${exitText(worker.exit)})` : '';
  return `${name} — ${worker.state}${exit}`;
}

function workerItems(state: TrayState, actions: TrayActions): MenuItemConstructorOptions {
  const controllable = state.manager.phase === 'running';
  const submenu: MenuItemConstructorOptions[] = state.workers.map((worker) => {
    const running = isRunningState(worker.state);
    const busy = worker.state === 'starting' || worker.state === 'stopping';
    return {
      label: workerLabel(worker),
      submenu: [
        { label: 'Start', enabled: !running, click: () => actions.worker(worker.uuid, 'start') },
        { label: 'Stop', enabled: running && !busy, click: () => actions.worker(worker.uuid, 'stop') },
        { label: 'Restart', enabled: !busy, click: () => actions.worker(worker.uuid, 'restart') },
        { label: 'Open editor', enabled: !busy, click: () => actions.openEditor(worker.uuid) },
        { label: 'Show logs', click: () => actions.showLogs(worker.uuid) },
        // Its supervision options, as `fnwm worker … status` shows them (set from the dashboard or `fnwm worker … set`).
        { label: `Restart ${worker.restart} · autostart ${worker.autostart}`, enabled: false },
      ],
    };
  });
  if (submenu.length === 0) submenu.push({ label: 'No workers yet', enabled: false });
  return { label: 'Workers', enabled: controllable, submenu };
}

function managerItems(state: TrayState, actions: TrayActions): MenuItemConstructorOptions[] {
  switch (state.manager.phase) {
    case 'port-taken':
      return state.manager.occupant.kind === 'workermanager'
        ? [
            { label: 'Use it', click: actions.useOther },
            { label: 'Take over (stop it, then start here)', click: actions.takeOver },
          ]
        : [{ label: 'Try again', click: actions.startManager }];
    case 'client':
      return [{ label: 'Take over (stop it, then start here)', click: actions.takeOver }];
    case 'stopped':
    case 'error':
      return [{ label: 'Start manager', click: actions.startManager }];
    case 'running':
      return [{ label: 'Stop manager', click: actions.stopManager }];
    case 'starting':
    case 'stopping':
      return [{ label: 'Stop manager', enabled: false }];
  }
}

/** The quit choice as the tray shows it (also the answers the quit dialog remembers). */
const WORKERS_ON_QUIT_LABELS: [WorkersOnQuit, string][] = [
  ['ask', 'Ask'],
  ['stop', 'Stop them'],
  ['keep', 'Keep them running'],
];

export function trayMenu(state: TrayState, actions: TrayActions): MenuItemConstructorOptions[] {
  const stopping = state.manager.phase === 'stopping';
  const toggle = (key: ToggleSetting, label: string): MenuItemConstructorOptions => ({
    label,
    type: 'checkbox',
    checked: state.settings[key],
    click: () => actions.setSetting(key, !state.settings[key]),
  });
  const radio = (choice: WorkersOnQuit, label: string): MenuItemConstructorOptions => ({
    label,
    type: 'radio',
    checked: state.settings.workersOnQuit === choice,
    click: () => actions.setSetting('workersOnQuit', choice),
  });
  return [
    { label: statusLine(state), enabled: false },
    { type: 'separator' },
    ...managerItems(state, actions),
    workerItems(state, actions),
    { label: 'New worker…', enabled: state.manager.phase === 'running' || state.manager.phase === 'client', click: actions.newWorker },
    { label: 'Open Workermanager', click: actions.openWindow },
    { type: 'separator' },
    { label: 'Start at login', type: 'checkbox', checked: state.startAtLogin, click: () => actions.setStartAtLogin(!state.startAtLogin) },
    {
      label: 'Settings',
      submenu: [
        toggle('startHidden', 'Start hidden (tray only)'),
        { label: 'Running workers on quit', submenu: WORKERS_ON_QUIT_LABELS.map(([choice, label]) => radio(choice, label)) },
        toggle('quitOnWindowClose', 'Quit when the window closes'),
      ],
    },
    { label: 'Open logs folder', click: actions.openLogsFolder },
    { type: 'separator' },
    { label: stopping ? 'Quitting…' : 'Quit', enabled: !stopping, click: actions.quit },
  ];
}
