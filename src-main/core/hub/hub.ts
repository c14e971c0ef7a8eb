/**
 * The WebSocket hub: HTTP server(s) on every address of the bind host, `ws` upgrades on path `/` after
 * Origin and Host checks (spec §11.1), connections with their subscription flag, and broadcast. It knows
 * frames, not workers: text frames go to `onText`, binary frames are ignored as in the original.
 */
import { lookup } from 'node:dns/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import os from 'node:os';
import { WebSocketServer, type WebSocket } from 'ws';
import { wsUrl } from '../../../src-shared/address.js';
import type { Logger } from '../logs/log.js';
import { encodeMessage, type IdentifyReply, type ManagerMessage } from '../../../src-shared/protocol.js';
import type { Requester } from '../service/manager.js';
import { rawText } from './ws-text.js';

export interface HubOptions {
  host: string;
  port: number;
  maxPayload: number;
  /** Browser origins accepted besides loopback ones (`worker_manager.allowed_origins`, the app's own). */
  allowedOrigins: string[];
  /** `Host` header names accepted besides loopback, the machine's hostname and the bind host. */
  allowedHosts: string[];
  log: Logger;
  /** Ping interval; a connection that has not answered the previous ping is dropped. Default 30 s. */
  heartbeatMs?: number;
  /** A connection whose unsent data exceeds this is closed with 1013. Default 16 MiB. */
  maxBufferedBytes?: number;
  /** Checked on every upgrade after Host and Origin; false answers 401 (token auth, remote-auth.ts). */
  authorize?(req: IncomingMessage): boolean;
  onText(connection: Connection, text: string): void;
  onClose?(connection: Connection): void;
  /** Plain HTTP requests (no upgrade): the dashboard. */
  onHttp(req: IncomingMessage, res: ServerResponse): void;
}

export const DEFAULT_HEARTBEAT_MS = 30_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** RFC 6455 / IANA "Try Again Later": a temporary condition on our side; the client may reconnect. */
export const CLOSE_SLOW_CLIENT = 1013;
/** Frame warnings logged per connection; the rest are counted and their number logged when it closes. */
const FRAME_WARNINGS_LOGGED = 5;
/** How long a closed slow client may take to read what is queued before its socket is destroyed. */
const SLOW_CLOSE_GRACE_MS = 5000;

export class Connection implements Requester {
  subscribed = false;
  /** Answered the last heartbeat ping (or has not been pinged yet). */
  alive = true;
  private frameWarnings = 0;

  constructor(
    readonly socket: WebSocket,
    private readonly log: Logger,
    private readonly maxBufferedBytes: number,
  ) {}

  /** A Buffer is an already encoded text frame (the cached `worker_status`). */
  send(message: ManagerMessage | IdentifyReply | string | Buffer): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    // Send errors to a closing socket are swallowed, as in the original.
    this.socket.send(encodeFrame(message), { binary: false }, () => undefined);
    if (this.socket.bufferedAmount > this.maxBufferedBytes) this.closeSlow();
  }

  /** A warning about a frame this connection sent; only the first few per connection are logged. */
  warnFrame(message: string): void {
    this.frameWarnings++;
    if (this.frameWarnings < FRAME_WARNINGS_LOGGED) this.log.warn(message);
    else if (this.frameWarnings === FRAME_WARNINGS_LOGGED) this.log.warn(`${message} (further warnings about this connection's frames are counted, not logged)`);
  }

  /** Logs how many frame warnings were not logged. */
  reportUnloggedWarnings(): void {
    const unlogged = this.frameWarnings - FRAME_WARNINGS_LOGGED;
    if (unlogged > 0) this.log.warn(`A connection closed after ${unlogged} more ignored frames that were not logged`);
  }

  /**
   * A client that does not read what we send (a stalled `watch_logs` tab) would grow our memory without
   * bound: it is closed, and destroyed if it does not take the close frame (queued behind its backlog).
   */
  private closeSlow(): void {
    this.log.warn(`Closing a connection (${CLOSE_SLOW_CLIENT}): more than ${this.maxBufferedBytes} bytes wait to be sent to it`);
    this.socket.close(CLOSE_SLOW_CLIENT, 'Send buffer limit exceeded');
    setTimeout(() => this.socket.terminate(), SLOW_CLOSE_GRACE_MS).unref();
  }
}

function encodeFrame(message: ManagerMessage | IdentifyReply | string | Buffer): string | Buffer {
  return typeof message === 'string' || Buffer.isBuffer(message) ? message : encodeMessage(message);
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === '::ffff:127.0.0.1';
}

/** A host name or address (brackets allowed) that means this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(host.toLowerCase()) || isLoopbackAddress(host.replace(/^\[(.*)\]$/, '$1'));
}

/** `localhost` means both loopbacks whatever /etc/hosts says; wildcards and literals bind as given. */
export async function bindAddresses(host: string): Promise<string[]> {
  if (host === 'localhost') return ['127.0.0.1', '::1'];
  if (host === '' || host === '0.0.0.0') return ['0.0.0.0'];
  if (host === '::' || host === '[::]') return ['::'];
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare)) return [bare];
  const found = await lookup(bare, { all: true });
  return [...new Set(found.map((a) => a.address))];
}

function hostHeaderName(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined;
  if (header.startsWith('[')) return header.slice(0, header.indexOf(']') + 1).toLowerCase();
  return header.split(':')[0]?.toLowerCase();
}

export class Hub {
  private readonly servers: http.Server[] = [];
  private readonly wss: WebSocketServer;
  private readonly connections = new Set<Connection>();
  private readonly acceptedHosts: Set<string>;
  private loopbackOnly = true;
  private boundPort = 0;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly opts: HubOptions) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload, perMessageDeflate: false, clientTracking: false });
    this.acceptedHosts = new Set([...LOOPBACK_NAMES, os.hostname().toLowerCase(), opts.host.toLowerCase(), ...opts.allowedHosts.map((h) => h.toLowerCase())]);
  }

  get port(): number {
    return this.boundPort;
  }

  /** The URL clients use; for a wildcard bind, the loopback one. */
  get url(): string {
    return wsUrl(this.opts.host, this.boundPort);
  }

  /** Binds every address of the host on one port; with port 0, the first bind picks it for the rest. */
  async listen(): Promise<void> {
    const addresses = await bindAddresses(this.opts.host);
    this.loopbackOnly = addresses.every(isLoopbackAddress);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.bindAll(addresses);
        break;
      } catch (err) {
        await this.closeServers();
        // With port 0 the second address can collide by chance: pick a new port.
        if (this.opts.port !== 0 || attempt >= 4 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    if (!this.loopbackOnly && !this.opts.authorize) {
      this.opts.log.warn(`Listening on ${this.opts.host}: other machines can reach this manager; it has no authentication.`);
    }
    // One timer for all connections; unref'd, so it never keeps a stopping process alive.
    this.heartbeat = setInterval(() => this.beat(), this.opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS).unref();
  }

  /** Drops connections that did not answer the last ping (half-open: the peer vanished), pings the rest. */
  private beat(): void {
    for (const connection of this.connections) {
      if (!connection.alive) {
        this.opts.log.warn('Dropping a connection that did not answer the last ping');
        connection.socket.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }

  private async bindAll(addresses: string[]): Promise<void> {
    let port = this.opts.port;
    for (const [index, address] of addresses.entries()) {
      const server = this.createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port, host: address, exclusive: true }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A machine without IPv6 still serves `localhost` on 127.0.0.1.
        if (index > 0 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) {
          this.opts.log.info(`Not listening on ${address}: ${code}`);
          continue;
        }
        if (code === 'EADDRINUSE') throw Object.assign(new Error(`Port ${port} on ${address} is already in use`), { code });
        throw err;
      }
      this.servers.push(server);
      const bound = server.address();
      if (typeof bound === 'object' && bound !== null) port = bound.port;
    }
    this.boundPort = port;
  }

  private createServer(): http.Server {
    const server = http.createServer((req, res) => this.opts.onHttp(req, res));
    server.on('upgrade', (req, socket: Socket, head) => this.upgrade(req, socket, head));
    return server;
  }

  /** Rejects before the WebSocket exists: wrong path 404, foreign Host or Origin 403 (spec §11.1). */
  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined);
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/') return reject(socket, 404, 'Not Found');
    const host = hostHeaderName(req.headers.host);
    if (host === undefined || !this.acceptedHosts.has(host)) {
      this.opts.log.warn(`Refused WebSocket upgrade: Host ${JSON.stringify(req.headers.host)} is not allowed`);
      return reject(socket, 403, 'Forbidden');
    }
    const origin = req.headers.origin;
    if (!this.originAllowed(origin, req.headers.host)) {
      this.opts.log.warn(`Refused WebSocket upgrade from origin ${JSON.stringify(origin)}`);
      return reject(socket, 403, 'Forbidden');
    }
    if (this.opts.authorize && !this.opts.authorize(req)) {
      this.opts.log.warn(`Refused WebSocket upgrade from ${req.socket.remoteAddress ?? 'an unknown peer'}: no valid token`);
      return reject(socket, 401, 'Unauthorized');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  private originAllowed(origin: string | undefined, host: string | undefined): boolean {
    // Non-browser clients (Python tools, the CLI) send no Origin.
    if (origin === undefined) return true;
    if (this.opts.allowedOrigins.includes(origin)) return true;
    // The dashboard this manager served under an accepted Host name (reached from another machine).
    if (host !== undefined && (origin === `http://${host}` || origin === `https://${host}`)) return true;
    try {
      const url = new URL(origin);
      return (url.protocol === 'http:' || url.protocol === 'https:') && LOOPBACK_NAMES.has(url.hostname);
    } catch {
      return false;
    }
  }

  private accept(ws: WebSocket): void {
    const connection = new Connection(ws, this.opts.log, this.opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
    this.connections.add(connection);
    ws.on('pong', () => (connection.alive = true));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.opts.onText(connection, rawText(data));
    });
    // Oversized or malformed frames end that connection only (ws closes it with 1009/1002).
    ws.on('error', (err) => this.opts.log.warn(`Connection error: ${err.message}`));
    ws.on('close', () => {
      this.connections.delete(connection);
      connection.reportUnloggedWarnings();
      this.opts.onClose?.(connection);
    });
  }

  /** To every subscribed connection (spec §6.3 recommendation), so one-frame probes never see pushes. */
  broadcast(message: ManagerMessage | string | Buffer, except?: Requester): void {
    const frame = encodeFrame(message);
    for (const connection of this.connections) if (connection.subscribed && connection !== except) connection.send(frame);
  }

  /** Closes every connection with 1001 "going away", then the listeners. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const connection of this.connections) connection.socket.close(1001, 'Workermanager shutting down');
    const deadline = Date.now() + 1000;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const connection of this.connections) connection.socket.terminate();
    await this.closeServers();
  }

  private async closeServers(): Promise<void> {
    const servers = this.servers.splice(0);
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
  }
}

function reject(socket: Socket, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
}
