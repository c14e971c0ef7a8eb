/** The renderer's only window on the main process: the manager URL, read-only. */
import { contextBridge } from 'electron';

const prefix = '--fnwm-manager-url=';
const managerUrl = process.argv.find((arg) => arg.startsWith(prefix))?.slice(prefix.length);

contextBridge.exposeInMainWorld('fnwm', { managerUrl });
