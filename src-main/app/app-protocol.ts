/**
 * The window's pages come from the privileged custom scheme `fnwm://app/` (not file://, whose origin every
 * local HTML file shares), so the hub can accept exactly this origin. The handler serves the renderer
 * build only, with the same path confinement and CSP as the hub's HTTP dashboard.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { APP_ORIGIN } from '../core/service/service.js';
import { CONTENT_TYPES, pagePolicy, resolveFile } from '../core/hub/ui-server.js';

const origin = new URL(APP_ORIGIN);
export const APP_SCHEME = origin.protocol.slice(0, -1);
export const APP_ENTRY_URL = `${APP_ORIGIN}/index.html`;

/** For `protocol.registerSchemesAsPrivileged` before `ready`: a standard, secure origin without extra powers. */
export const APP_SCHEME_PRIVILEGES = { standard: true, secure: true, supportFetchAPI: true } as const;

/** Node's URL gives non-special schemes the origin "null", so compare scheme and host instead. */
export function isAppUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === origin.protocol && parsed.host === origin.host;
  } catch {
    return false;
  }
}

/**
 * The window's `connect-src` for the manager it uses: exactly its scheme, host and port. CSP has no syntax
 * for IPv6 literals (host-char is letters, digits and "-"), so a manager on one (`[::1]`) gets its scheme
 * only; the page still runs only its own scripts. No manager yet: nothing beyond 'self'.
 */
export function managerConnectSource(managerUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(managerUrl);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return undefined;
  return url.hostname.startsWith('[') ? url.protocol : `${url.protocol}//${url.host}`;
}

/** `managerUrl()` names the manager the page may connect to, for the CSP's connect-src. */
export function createAppProtocolHandler(rendererDir: string, managerUrl: () => string): (request: Request) => Promise<Response> {
  const root = path.resolve(rendererDir);
  return async (request) => {
    const url = new URL(request.url);
    const file = isAppUrl(request.url) && request.method === 'GET' ? resolveFile(root, url.pathname) : undefined;
    const body = file === undefined ? undefined : await readFile(file).catch(() => undefined);
    if (file === undefined || body === undefined) return new Response('Not Found', { status: 404, headers: { 'Content-Type': 'text/plain' } });
    return new Response(body, {
      status: 200,
      headers: {
        'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
        'Content-Security-Policy': pagePolicy(managerConnectSource(managerUrl())),
        'X-Content-Type-Options': 'nosniff',
      },
    });
  };
}
