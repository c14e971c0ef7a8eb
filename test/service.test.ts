/**
 * The service's start and stop as a whole: a start that fails half-way closes what it opened (the port
 * first), and a stop runs every step even when one of them throws.
 */
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src-main/core/logs/log.js';
import { KILL_FILE, startManagerService } from '../src-main/core/service/service.js';
import { exitWithin, freePort } from './helpers/cli.js';
import { makeTempDir, startTestManager, waitFor, type TestManager } from './helpers/manager.js';

let manager: TestManager | undefined;
afterEach(async () => {
  await manager?.close();
  manager = undefined;
});

/** Binds `port` on 127.0.0.1 and lets it go again: proof that nobody holds it. */
async function canBind(port: number): Promise<boolean> {
  const server = net.createServer();
  try {
    server.listen({ port, host: '127.0.0.1', exclusive: true });
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

describe('start', () => {
  it('releases the port and reports why when a step after the bind fails (the kill-file watch)', async () => {
    const dir = await makeTempDir();
    // A stale kill "file" that cannot be removed: a directory with something in it.
    await mkdir(path.join(dir, KILL_FILE, 'inside'), { recursive: true });
    const port = await freePort();
    const logs: string[] = [];
    const starting = startManagerService({ dir, host: '127.0.0.1', port, log: createLogger('debug', (l) => logs.push(l)) });
    await expect(starting).rejects.toThrow(/kill_worker_manager/);
    expect(await canBind(port)).toBe(true);
  });
});

describe('stop', () => {
  it('runs every step even if one throws: the hub still closes and stopped resolves', async () => {
    manager = await startTestManager();
    const { service } = manager;
    const client = await manager.connect();
    vi.spyOn(service.supervisor, 'shutdown').mockRejectedValue(new Error('injected failure'));
    const dispose = vi.spyOn(service.supervisor, 'dispose');
    try {
      await exitWithin(service.stop('test'), 10_000, 'the stop');
    } finally {
      vi.restoreAllMocks();
    }
    await waitFor(() => client.closed !== undefined, 5000, 'the client to see the close');
    expect(client.closed?.code).toBe(1001);
    expect(dispose).toHaveBeenCalled();
    expect(manager.logs.some((l) => l.includes('Stopping: could not stop the workers and cancel creations: Error: Error: injected failure'))).toBe(true);
    expect(await canBind(service.port)).toBe(true);
  });
});
