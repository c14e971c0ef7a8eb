/** A scriptable stand-in for the browser WebSocket, for the renderer's client and store tests. */
import type { SocketLike } from '../../src-renderer/src/ws-client.js';

type Listener = (event: { data: unknown }) => void;

export class FakeSocket implements SocketLike {
  readyState = 0;
  readonly sent: string[] = [];
  closeCalls = 0;
  private readonly listeners: Record<'open' | 'close' | 'message', Listener[]> = { open: [], close: [], message: [] };

  constructor(readonly url: string) {}

  addEventListener(type: 'open' | 'close' | 'message', listener: Listener): void {
    this.listeners[type].push(listener);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }

  close(): void {
    this.closeCalls++;
    this.readyState = 3;
  }

  /** The server accepted. */
  open(): void {
    this.readyState = 1;
    this.emit('open', { data: undefined });
  }

  /** The connection failed or dropped. */
  drop(): void {
    this.readyState = 3;
    this.emit('close', { data: undefined });
  }

  receive(data: unknown): void {
    this.emit('message', { data });
  }

  private emit(type: 'open' | 'close' | 'message', event: { data: unknown }): void {
    for (const l of this.listeners[type]) l(event);
  }
}

/** A socket factory that records every socket it makes. */
export function socketFactory(): { sockets: FakeSocket[]; create: (url: string) => FakeSocket; last: () => FakeSocket } {
  const sockets: FakeSocket[] = [];
  return {
    sockets,
    create: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    last: () => {
      const s = sockets.at(-1);
      if (!s) throw new Error('no socket created yet');
      return s;
    },
  };
}

/** Timers backed by vitest's fake clock (`vi.useFakeTimers()` must be on). */
export const fakeClockTimers = {
  setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
