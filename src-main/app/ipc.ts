/**
 * Every IPC handler goes through `handle`, which first checks that the call comes from the app window's
 * main frame showing the app's own pages (GitHub Desktop's trusted-sender pattern, Electron security
 * checklist item 17). Arguments arrive as `unknown`: each handler validates its own.
 */
import type { IpcMain, IpcMainInvokeEvent, WebContents } from 'electron';
import type { Logger } from '../core/logs/log.js';
import type { IpcChannel, IpcChannels } from './ipc-channels.js';
import { isAppUrl } from './app-protocol.js';

export type IpcMainSlice = Pick<IpcMain, 'handle'>;
export type SenderEvent = Pick<IpcMainInvokeEvent, 'senderFrame'> & { sender: Pick<WebContents, 'mainFrame'> };

export class UntrustedSenderError extends Error {}

/** Trusted: the main frame of the window's own webContents, on an app page. */
export function isTrustedSender(event: SenderEvent, windowContents: () => unknown): boolean {
  const frame = event.senderFrame;
  return frame !== null && event.sender === windowContents() && frame === event.sender.mainFrame && isAppUrl(frame.url);
}

export type IpcHandler<C extends IpcChannel> = (...args: unknown[]) => IpcChannels[C]['result'] | Promise<IpcChannels[C]['result']>;

export function createIpc(ipcMain: IpcMainSlice, windowContents: () => unknown, log: Logger) {
  return {
    handle<C extends IpcChannel>(channel: C, handler: IpcHandler<C>): void {
      ipcMain.handle(channel, (event, ...args: unknown[]) => {
        if (!isTrustedSender(event, windowContents)) {
          log.warn(`Refused IPC ${channel} from ${event.senderFrame?.url ?? 'a frame that is gone'}`);
          throw new UntrustedSenderError(`IPC ${channel} refused: untrusted sender`);
        }
        return handler(...args);
      });
    },
  };
}
