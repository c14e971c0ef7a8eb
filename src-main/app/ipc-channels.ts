/**
 * The one typed map of IPC channels between the main process and the preload. Main registers a handler for
 * every key (src-main/app/ipc.ts checks the sender first); the preload exposes one function per key.
 * Types only and string constants: the sandboxed preload bundles this file.
 */
import type { AppSettings } from './settings.js';

export interface AppInfo {
  version: string;
  managerUrl: string;
  /** `own`: the manager this app runs; `other`: one it found on the port and uses ("Use it"). */
  mode: 'own' | 'other';
  /** The manager's `identify` answer: its Python. */
  py: string | null;
}

export interface IpcChannels {
  'app:info': { args: []; result: AppInfo };
  'settings:get': { args: []; result: AppSettings };
  'settings:set': { args: [patch: Partial<AppSettings>]; result: AppSettings };
  'login:get': { args: []; result: boolean };
  'login:set': { args: [enabled: boolean]; result: boolean };
  'logs:open': { args: []; result: void };
  'external:open': { args: [url: string]; result: void };
  /** The access token of the manager the window uses, when it is on another machine (else null). */
  'manager:token': { args: []; result: string | null };
  /** Stores the token the user gave for that manager (it asked: the connection was refused). */
  'manager:set-token': { args: [token: string]; result: void };
}

export type IpcChannel = keyof IpcChannels;

/** Every channel once: the Record's type makes a channel missing here a compile error. */
const CHANNELS: Record<IpcChannel, true> = {
  'app:info': true,
  'settings:get': true,
  'settings:set': true,
  'login:get': true,
  'login:set': true,
  'logs:open': true,
  'external:open': true,
  'manager:token': true,
  'manager:set-token': true,
};

export const IPC_CHANNELS = Object.keys(CHANNELS) as readonly IpcChannel[];

/** The command-line switch that hands the window its manager URL (read synchronously by the preload). */
export const MANAGER_URL_ARG = '--fnwm-manager-url=';
