/**
 * The zustand store the components read: hub state advanced by `reduce`, plus the actions that send
 * requests over the one manager connection. Wires the connection's frames and state into the store and,
 * on every (re)connect, asks for the worker lists, the additive worker states and the identity.
 */
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { NewWorkerOptions, WorkerIdRequestType, WorkerOptionsPatch } from '../../src-shared/protocol.js';
import { initialState, reduce, type HubEvent, type HubState, type Notice } from './hub-state.js';
import { ManagerConnection, type BackoffOptions, type SocketFactory, type Timers } from './ws-client.js';

export interface Actions {
  /** set_active, stop_worker, restart_worker or delete_worker; false when refused (see `blockReason`). */
  request: (type: WorkerIdRequestType, uuid: string) => boolean;
  createWorker: (options: NewWorkerOptions) => boolean;
  /** The worker's restart policy and autostart (additive `set_worker_options`); its row shows the result. */
  setWorkerOptions: (uuid: string, options: WorkerOptionsPatch) => boolean;
  /** Shows the live log of one worker (and stops watching any other). */
  openLogs: (uuid: string) => void;
  closeLogs: (uuid: string) => void;
  notify: (tone: Notice['tone'], text: string) => void;
  dismissNotice: (id: number) => void;
  dismissOverlay: () => void;
}

export type AppState = HubState & { actions: Actions };

export interface AppOptions {
  url: string;
  createSocket: SocketFactory;
  timers: Timers;
  backoff?: BackoffOptions;
}

export interface App {
  store: StoreApi<AppState>;
  connection: ManagerConnection;
}

/** Why a request for this worker may not be sent now, or null. */
export function blockReason(state: HubState, uuid: string | null): string | null {
  if (state.connection.status !== 'open') return 'Not connected to the manager.';
  if (state.progress?.blocking === true && !state.overlayDismissed) return 'Wait for the current operation to finish.';
  if (uuid !== null && state.pending[uuid] !== undefined) return 'An operation on this worker is still running.';
  return null;
}

export function createApp(opts: AppOptions): App {
  const dispatch = (event: HubEvent): void => store.setState((s) => reduce(s, event));
  const store: StoreApi<AppState> = createStore<AppState>()((_set, get) => {
    const refuse = (reason: string) => {
      dispatch({ kind: 'notice', tone: 'error', text: reason });
      return false;
    };
    return {
      ...initialState(opts.url),
      actions: {
        request: (type, uuid) => {
          const reason = blockReason(get(), uuid);
          if (reason !== null) return refuse(reason);
          if (!connection.workerAction(type, uuid)) return refuse('Not connected to the manager.');
          dispatch({ kind: 'sent', uuid, request: type });
          return true;
        },
        createWorker: (options) => {
          const reason = blockReason(get(), null);
          if (reason !== null) return refuse(reason);
          return connection.newWorker(options) || refuse('Not connected to the manager.');
        },
        setWorkerOptions: (uuid, options) => connection.setWorkerOptions(uuid, options) || refuse('Not connected to the manager.'),
        openLogs: (uuid) => {
          for (const other of Object.keys(get().logs)) if (other !== uuid) get().actions.closeLogs(other);
          dispatch({ kind: 'watch-logs', uuid });
          connection.watchLogs(uuid);
        },
        closeLogs: (uuid) => {
          dispatch({ kind: 'unwatch-logs', uuid });
          connection.unwatchLogs(uuid);
        },
        notify: (tone, text) => dispatch({ kind: 'notice', tone, text }),
        dismissNotice: (id) => dispatch({ kind: 'dismiss-notice', id }),
        dismissOverlay: () => dispatch({ kind: 'dismiss-overlay' }),
      },
    };
  });
  const connection = new ManagerConnection({
    url: opts.url,
    createSocket: opts.createSocket,
    timers: opts.timers,
    backoff: opts.backoff,
    onFrame: (frame) => dispatch({ kind: 'frame', frame }),
    onState: (state) => dispatch({ kind: 'connection', state }),
    onOpen: () => {
      connection.workerStatus();
      // Additive: a manager without it answers nothing (or an error), and the UI keeps to the lists.
      connection.watchWorkers();
      connection.identify();
      for (const uuid of Object.keys(store.getState().logs)) connection.watchLogs(uuid);
    },
  });
  return { store, connection };
}
