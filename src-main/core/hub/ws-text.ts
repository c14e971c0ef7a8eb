import type { RawData } from 'ws';

/** A `ws` message payload as text (it may arrive as a Buffer, an ArrayBuffer or fragments). */
export function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}
