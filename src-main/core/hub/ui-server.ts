/**
 * Serves the built renderer (`dist/renderer`) to browsers on the hub's port, for the hub's `onHttp`:
 * GET/HEAD of `/` and the files under the build dir, nothing else, with a strict Content-Security-Policy.
 * WebSocket upgrades never reach this handler.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * A `Host` header safe to put into the CSP: a DNS name or IPv4 address and an optional port. Chromium
 * rejects IPv6 literals as CSP sources; for those, `'self'` alone covers the same-origin WebSocket.
 */
export const SAFE_HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$/;

export interface UiHandlerOptions {
  /** The renderer build; default: `dist/renderer` of this package. */
  dir?: string;
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * `dist/renderer` of this package, found from this module's location: it runs from `src-main/core/` (tests,
 * tsx) or bundled somewhere below `dist/` (the CLI, the Electron app, app.asar alike).
 */
export function defaultRendererDir(moduleUrl: string = import.meta.url): string {
  let dir = path.dirname(fileURLToPath(moduleUrl));
  for (;;) {
    if (path.basename(dir) === 'dist') return path.join(dir, 'renderer');
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'dist', 'renderer');
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve('dist', 'renderer');
    dir = parent;
  }
}

/** The page may load only its own files and talk only to the manager that served it. */
export function contentSecurityPolicy(host: string | undefined): string {
  return pagePolicy(host !== undefined && SAFE_HOST.test(host) ? `ws://${host}` : undefined);
}

/** The dashboard's CSP with one extra `connect-src` source (the manager, when it is not the page's own origin). */
export function pagePolicy(connectSource: string | undefined): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${connectSource === undefined ? '' : ` ${connectSource}`}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function createUiHandler(options: UiHandlerOptions = {}): HttpHandler {
  const root = path.resolve(options.dir ?? defaultRendererDir());
  return (req, res) => {
    void serve(root, req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, req, 500, `Internal error: ${(err as Error).message}\n`);
      else res.destroy();
    });
  };
}

async function serve(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, req, 405, 'Method Not Allowed\n');
  }
  const file = resolveFile(root, req.url ?? '/');
  const found = file !== undefined && (await isFile(file));
  if (!found) {
    // Without a build every request would 404; say what is missing instead.
    if (!(await isFile(path.join(root, 'index.html')))) {
      return send(res, req, 503, `The dashboard is not built (no ${path.join(root, 'index.html')}). Run \`npm run build\`, then reload.\n`);
    }
    return send(res, req, 404, 'Not Found\n');
  }
  const body = await readFile(file);
  const isIndex = path.basename(file) === 'index.html';
  res.writeHead(200, {
    ...securityHeaders(req),
    'Content-Type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'Content-Length': body.length,
    // Assets carry a content hash in their names; index.html names the current ones.
    'Cache-Control': isIndex ? 'no-cache' : 'public, max-age=31536000, immutable',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The file a URL path names inside `root`, or undefined for anything that is not plainly inside it. */
export function resolveFile(root: string, url: string): string | undefined {
  const rawPath = url.split(/[?#]/, 1)[0] ?? '/';
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const segments = decoded.split('/').filter((s) => s !== '');
  // No parent references and no dotfiles, before any path arithmetic.
  if (segments.some((s) => s.startsWith('.'))) return undefined;
  const file = path.join(root, ...(segments.length === 0 ? ['index.html'] : segments));
  return file.startsWith(root + path.sep) ? file : undefined;
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

function securityHeaders(req: IncomingMessage): Record<string, string> {
  return {
    'Content-Security-Policy': contentSecurityPolicy(req.headers.host),
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  };
}

function send(res: ServerResponse, req: IncomingMessage, status: number, text: string): void {
  res.writeHead(status, { ...securityHeaders(req), 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(req.method === 'HEAD' ? undefined : text);
}
