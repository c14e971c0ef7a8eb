/**
 * Is a worker alive? Its pid exists and its WebSocket answers the uuid probe (spec §6.2). Unlike the
 * original, the probe reads frames until the `result` arrives, so a busy worker's broadcasts (progress,
 * nsevent…) cannot make it look dead (spec §11.9).
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { workerUrl, type WorkerConfig } from '../../../src-shared/protocol.js';
import { rawText } from '../hub/ws-text.js';

export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export type ProbeResult = 'match' | 'mismatch' | 'unreachable';

/**
 * Connects to the worker, sends `{"type":"cmd","cmd":"uuid"}` and reads frames until a `result` (matched by
 * our request id when the worker echoes it) or the deadline. Any failure counts as unreachable.
 */
export function probeWorker(config: WorkerConfig, timeoutMs = 2000): Promise<ProbeResult> {
  const url = workerUrl(config);
  if (url === undefined) return Promise.resolve('unreachable');
  const id = `fnwm-probe-${randomBytes(4).toString('hex')}`;
  return new Promise((resolve) => {
    let done = false;
    const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    const finish = (result: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve(result);
    };
    const timer = setTimeout(() => finish('unreachable'), timeoutMs);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'cmd', cmd: 'uuid', id })));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let msg: unknown;
      try {
        msg = JSON.parse(rawText(data));
      } catch {
        return;
      }
      if (typeof msg !== 'object' || msg === null) return;
      const m = msg as Record<string, unknown>;
      if (m.type !== 'result' || (m.id !== undefined && m.id !== null && m.id !== id)) return;
      finish(m.result === config.uuid ? 'match' : 'mismatch');
    });
    ws.on('error', () => finish('unreachable'));
    ws.on('close', () => finish('unreachable'));
  });
}
