/**
 * The FuncNodes editor for one worker, on the hub's port under `/editor/<uuid>/` (the dashboard owns the
 * rest of the paths). The bundle's `index.html` loads `/static/…` and fetches `/worker_manager` and `/worker`
 * by absolute path; those literals are rewritten to this worker's prefix, and a line is added that makes
 * the editor pick this worker once the manager lists it active (the bundle's own `funcnodes__active_worker`
 * key). Only this route gets the editor's looser CSP (inline scripts, eval, worker ports on loopback).
 */
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { EditorBundles } from './editor-bundle.js';
import { installCommand } from './editor-bundle.js';
import { EDITOR_PREFIX, editorPath } from '../../../src-shared/editor-path.js';
import { pageHost } from '../../../src-shared/address.js';
import { isValidWorkerId, type WorkerConfig } from '../../../src-shared/protocol.js';
import { CONTENT_TYPES, resolveFile, SAFE_HOST, type HttpHandler } from './ui-server.js';

export interface EditorRouteOptions {
  bundles: EditorBundles;
  /** The worker's JSON, or undefined when there is no such worker. */
  workerConfig(uuid: string): Promise<WorkerConfig | undefined>;
  /** The interpreters whose environments may hold the bundle, in order: the worker's own venv first. */
  pythonsFor(config: WorkerConfig): string[];
  /** The hub's own URL, for a request whose `Host` header cannot be used. */
  hubUrl(): string;
}

/**
 * What the bundle needs and nothing more: its inline bootstrap and plugin scripts, `new Function` (ajv form
 * schemas, worker-supplied React plugins), and the worker's WebSocket and HTTP on loopback. The hub itself
 * is `'self'` (plus its `ws://` origin, which older Chromium does not include in `'self'`).
 */
export function editorPolicy(host: string | undefined, worker: WorkerConfig): string {
  const loopback = (scheme: string) => `${scheme}://127.0.0.1:* ${scheme}://localhost:*`;
  const ssl = worker.ssl === true;
  const workerHost = pageHost(worker.host);
  const extra = SAFE_HOST.test(workerHost) && !['127.0.0.1', 'localhost'].includes(workerHost) && typeof worker.port === 'number' ? `${workerHost}:${worker.port}` : undefined;
  const http = [loopback('http'), ...(ssl ? [loopback('https')] : []), ...(extra ? [`${ssl ? 'https' : 'http'}://${extra}`] : [])].join(' ');
  const ws = [loopback('ws'), ...(ssl ? [loopback('wss')] : []), ...(extra ? [`${ssl ? 'wss' : 'ws'}://${extra}`] : [])].join(' ');
  const self = host !== undefined && SAFE_HOST.test(host) ? ` ws://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    `img-src 'self' data: blob: ${http}`,
    `connect-src 'self'${self} ${ws} ${http}`,
    "font-src 'self' data:",
    "worker-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** index.html with its absolute asset and endpoint paths moved under `prefix`, and this worker preselected. */
export function rewriteIndex(html: string, uuid: string): string {
  const prefix = editorPath(uuid);
  const moved = html.replace(/(["'])\/(static\/|worker_manager(?=["'])|worker(?=["']))/g, `$1${prefix}$2`);
  const select = `<script>try{localStorage.setItem("funcnodes__active_worker",${JSON.stringify(uuid)})}catch(e){}</script>`;
  return /<head[^>]*>/i.test(moved) ? moved.replace(/<head[^>]*>/i, (tag) => tag + select) : select + moved;
}

/** Handles `/editor/…`; every other request goes to `next` (the dashboard). */
export function createEditorHandler(options: EditorRouteOptions, next: HttpHandler): HttpHandler {
  return (req, res) => {
    const urlPath = (req.url ?? '/').split(/[?#]/, 1)[0] ?? '/';
    if (!urlPath.startsWith(EDITOR_PREFIX)) return next(req, res);
    void serveEditor(options, urlPath.slice(EDITOR_PREFIX.length), req, res).catch((err: unknown) => {
      if (!res.headersSent) sendText(res, req, 500, `Internal error: ${(err as Error).message}\n`);
      else res.destroy();
    });
  };
}

async function serveEditor(options: EditorRouteOptions, rest: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return sendText(res, req, 405, 'Method Not Allowed\n');
  }
  const slash = rest.indexOf('/');
  const uuid = slash === -1 ? rest : rest.slice(0, slash);
  if (!isValidWorkerId(uuid)) return sendText(res, req, 404, 'Not Found\n');
  // `/editor/<uuid>` without the slash: the page's relative URLs need the directory form.
  if (slash === -1) {
    res.writeHead(308, { Location: editorPath(uuid), 'Content-Length': 0 });
    return void res.end();
  }
  const config = await options.workerConfig(uuid);
  if (!config) return sendText(res, req, 404, `No worker ${uuid}.\n`);
  const sub = rest.slice(slash + 1);
  const policy = editorPolicy(req.headers.host, config);
  if (sub === 'worker_manager') {
    const host = req.headers.host;
    return sendBody(res, req, 200, policy, 'text/plain; charset=utf-8', host !== undefined && SAFE_HOST.test(host) ? `ws://${host}` : options.hubUrl());
  }
  if (sub === 'worker') {
    if (typeof config.port !== 'number') return sendText(res, req, 404, `Worker ${uuid} has no port yet.\n`);
    const body = JSON.stringify({ host: pageHost(config.host), port: config.port, ssl: config.ssl === true });
    return sendBody(res, req, 200, policy, 'application/json; charset=utf-8', body);
  }
  if (sub !== '' && sub !== 'index.html' && !sub.startsWith('static/')) return sendText(res, req, 404, 'Not Found\n');

  const found = await options.bundles.find(options.pythonsFor(config));
  if (!found.ok) return sendText(res, req, 503, missingBundleText(found.checked));
  const dir = path.resolve(found.bundle.dir);
  const file = sub.startsWith('static/') ? resolveFile(dir, `/${sub.slice('static/'.length)}`) : path.join(dir, 'index.html');
  if (file === undefined || !(await isFile(file))) {
    // The package was removed since it was found: look again next time.
    if (file !== undefined && sub === '') options.bundles.forget();
    return sendText(res, req, 404, 'Not Found\n');
  }
  const body = await readFile(file);
  if (path.basename(file) === 'index.html' && !sub.startsWith('static/')) {
    return sendBody(res, req, 200, policy, CONTENT_TYPES['.html'] ?? 'text/html', rewriteIndex(body.toString('utf8'), uuid));
  }
  return sendBody(res, req, 200, policy, CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream', body);
}

/** Said in the page and by `fnwm worker … open`: which Pythons were asked, and how to install the editor. */
export function missingBundleText(checked: string[]): string {
  const last = checked.at(-1) ?? 'python3';
  return (
    `The FuncNodes editor (the Python package funcnodes-react-flow) is not installed in any environment checked: ${checked.join(', ')}.\n` +
    `Install it, then reload: ${installCommand(checked[0] ?? last)}` +
    (checked.length > 1 ? `\n(or in the manager's Python: ${installCommand(last)})` : '') +
    '\n'
  );
}

async function isFile(file: string): Promise<boolean> {
  return stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
}

function sendBody(res: ServerResponse, req: IncomingMessage, status: number, policy: string, type: string, body: string | Buffer): void {
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  res.writeHead(status, {
    'Content-Security-Policy': policy,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Content-Type': type,
    'Content-Length': length,
    // The bundle's file names carry no content hash, and the worker's port can change between starts.
    'Cache-Control': 'no-cache',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Errors keep the strict policy: they run no script. */
function sendText(res: ServerResponse, req: IncomingMessage, status: number, text: string): void {
  sendBody(res, req, status, "default-src 'none'; frame-ancestors 'none'", 'text/plain; charset=utf-8', text);
}
