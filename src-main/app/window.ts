/**
 * The app window's hardening (Electron security checklist, anchors §C2): isolated, sandboxed, no Node,
 * web security on; no navigation away from the app's pages, no new windows (http(s) links go to the
 * system browser), every permission denied but the app page's clipboard writes. The CSP comes with the
 * pages (app-protocol.ts).
 */
import type { BrowserWindowConstructorOptions, Session, WebContents } from 'electron';
import { isAppUrl } from './app-protocol.js';
import { MANAGER_URL_ARG } from './ipc-channels.js';

export function windowOptions(preload: string, managerUrl: string, icon?: string): BrowserWindowConstructorOptions {
  return {
    width: 1000,
    height: 680,
    show: false,
    title: 'FuncNodes Workermanager',
    ...(icon === undefined ? {} : { icon }),
    webPreferences: {
      preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      additionalArguments: [`${MANAGER_URL_ARG}${managerUrl}`],
    },
  };
}

/** Only plain http(s) URLs leave the app, to the system browser. */
export function externalUrl(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

export type GuardedContents = Pick<WebContents, 'setWindowOpenHandler' | 'on'>;

export function guardNavigation(contents: GuardedContents, openExternal: (url: string) => void): void {
  contents.setWindowOpenHandler(({ url }) => {
    const external = externalUrl(url);
    if (external !== undefined) openExternal(external);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (event, url) => {
    if (isAppUrl(url)) return;
    event.preventDefault();
    const external = externalUrl(url);
    if (external !== undefined) openExternal(external);
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

/** Chromium asks for it before `navigator.clipboard.writeText` ("Copy address"); nothing else is granted. */
const APP_PERMISSION = 'clipboard-sanitized-write';

export function restrictPermissions(session: Pick<Session, 'setPermissionRequestHandler' | 'setPermissionCheckHandler'>): void {
  session.setPermissionRequestHandler((_contents, permission, callback, details) => callback(permission === APP_PERMISSION && isAppUrl(details.requestingUrl)));
  session.setPermissionCheckHandler((_contents, permission, requestingOrigin) => permission === APP_PERMISSION && isAppUrl(requestingOrigin));
}
