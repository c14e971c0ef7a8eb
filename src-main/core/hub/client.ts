/**
 * A small Workermanager client over one WebSocket: frames are queued in arrival order and read with
 * `next`, so a caller sees exactly what the manager sent. Used by the `fnwm` CLI and by the tests.
 */
import WebSocket from 'ws';
import { rawText } from './ws-text.js';
import { parseManagerFrame, type IdentifyReply, type ParsedManagerFrame } from '../../../src-shared/protocol.js';

export class ClientTimeoutError extends Error {}
/** The manager answered the upgrade with 401: it is bound beyond loopback and wants its token. */
export class UnauthorizedError extends Error {}

export class ManagerClient {
  private readonly frames: string[] = [];
  private waiter?: () => void;
  private closedWith?: { code: number; reason: string };

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.frames.push(rawText(data));
      this.waiter?.();
    });
    socket.on('close', (code, reason) => {
      this.closedWith = { code, reason: reason.toString() };
      this.waiter?.();
    });
  }

  /** Sent on every connect of this process: the `fnwm` CLI's token (one process, one manager). */
  static defaultHeaders: Record<string, string> = {};

  static connect(url: string, timeoutMs = 5000, headers?: Record<string, string>): Promise<ManagerClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { handshakeTimeout: timeoutMs, perMessageDeflate: false, headers: { ...ManagerClient.defaultHeaders, ...headers } });
      socket.once('open', () => {
        socket.removeAllListeners('error');
        socket.on('error', () => undefined);
        resolve(new ManagerClient(socket));
      });
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => {
        const message = `Unexpected server response: ${res.statusCode}`;
        reject(res.statusCode === 401 ? new UnauthorizedError(`${message} (the Workermanager on ${url} needs its token)`) : new Error(message));
        socket.terminate();
      });
    });
  }

  get closed(): { code: number; reason: string } | undefined {
    return this.closedWith;
  }

  send(frame: string | object): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next raw text frame; rejects on timeout or when the connection closes first. */
  async nextText(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) return frame;
      if (this.closedWith) throw new Error(`Connection closed (${this.closedWith.code} ${this.closedWith.reason})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new ClientTimeoutError(`No frame from the Workermanager within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = undefined;
          resolve();
        };
      });
    }
  }

  async next(timeoutMs = 5000): Promise<ParsedManagerFrame> {
    return parseManagerFrame(await this.nextText(timeoutMs));
  }

  /** Reads frames, handing each to `onFrame`, until it returns a value other than `undefined`. */
  async until<T>(onFrame: (frame: ParsedManagerFrame) => T | undefined, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = onFrame(await this.next(Math.max(1, deadline - Date.now())));
      if (result !== undefined) return result;
    }
  }

  /** Frames already received and not yet read. */
  pending(): string[] {
    return [...this.frames];
  }

  /** Discards the frames already received and not yet read; returns them. */
  drain(): string[] {
    return this.frames.splice(0);
  }

  close(): void {
    this.socket.close();
  }
}

/** The original's one-frame probes (spec §7): a new connection each, the first frame is the answer. */
export async function probeManager(url: string, timeoutMs = 3000): Promise<IdentifyReply | undefined> {
  const ask = async (frame: string) => {
    const client = await ManagerClient.connect(url, timeoutMs);
    try {
      client.send(frame);
      return await client.next(timeoutMs);
    } finally {
      client.close();
    }
  };
  try {
    if ((await ask('ping')).kind !== 'pong') return undefined;
    const reply = await ask('identify');
    return reply.kind === 'identify' ? reply.reply : undefined;
  } catch (err) {
    // A manager answers, but not without the token: not a reason to start another one.
    if (err instanceof UnauthorizedError) throw err;
    return undefined;
  }
}
