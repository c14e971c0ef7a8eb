/**
 * The renderer's only way into the main process: a narrow API over `contextBridge`, one function per IPC
 * channel of the shared map (src-main/app/ipc-channels.ts). The manager URL comes as a switch so the
 * renderer can read it synchronously at start.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { MANAGER_URL_ARG, type IpcChannel, type IpcChannels } from '../src-main/app/ipc-channels.js';

const invoke =
  <C extends IpcChannel>(channel: C) =>
  (...args: IpcChannels[C]['args']): Promise<IpcChannels[C]['result']> =>
    ipcRenderer.invoke(channel, ...args) as Promise<IpcChannels[C]['result']>;

export const fnwmApi = {
  managerUrl: process.argv.find((arg) => arg.startsWith(MANAGER_URL_ARG))?.slice(MANAGER_URL_ARG.length),
  info: invoke('app:info'),
  getSettings: invoke('settings:get'),
  setSettings: invoke('settings:set'),
  getStartAtLogin: invoke('login:get'),
  setStartAtLogin: invoke('login:set'),
  openLogsFolder: invoke('logs:open'),
  openExternal: invoke('external:open'),
  managerToken: invoke('manager:token'),
  setManagerToken: invoke('manager:set-token'),
};

export type FnwmApi = typeof fnwmApi;

contextBridge.exposeInMainWorld('fnwm', fnwmApi);
