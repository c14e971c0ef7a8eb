/**
 * The manager's access token in the dashboard (remote access, src-main/core/hub/remote-auth.ts). A page served
 * over a non-loopback address asks for it while it cannot connect, and keeps it for the browser session
 * (sessionStorage, gone with the tab); a `?token=` in the page address is taken once and removed from the address bar, so
 * it stays out of history and bookmarks. Loopback pages and the Electron window never need one.
 */
import { isLoopbackHostname, tokenProtocols } from '../../src-shared/token-protocol.js';

export { isLoopbackHostname };

export const TOKEN_KEY = 'fnwm-token';

export interface PageEnv {
  location: { hostname: string; search: string; pathname: string; hash: string };
  storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
  replaceUrl(url: string): void;
}

/** The token this page has (the address's one-time `token`, stored; else the session's). */
export function pageToken(env: PageEnv): string | null {
  const params = new URLSearchParams(env.location.search);
  const fromUrl = params.get('token');
  if (fromUrl) {
    env.storage.setItem(TOKEN_KEY, fromUrl);
    params.delete('token');
    const search = params.toString();
    env.replaceUrl(`${env.location.pathname}${search ? `?${search}` : ''}${env.location.hash}`);
    return fromUrl;
  }
  return env.storage.getItem(TOKEN_KEY);
}

/** Whether a token may be needed: the manager the page talks to is on another machine. */
export function mayNeedToken(managerUrl: string): boolean {
  try {
    return !isLoopbackHostname(new URL(managerUrl).hostname);
  } catch {
    return false;
  }
}

/** The subprotocols a browser WebSocket offers: with a token, the plain one plus the token. */
export function socketProtocols(token: string | null): string[] {
  return token === null || token === '' ? [] : tokenProtocols(token);
}
