/** Who holds a port (src-main/core/service/port-occupant.ts): a real second manager, a real plain TCP listener, nobody. */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { describeOccupant, identifyPortOccupant, listeningProcess } from '../src-main/core/service/port-occupant.js';
import { startTestManager, type TestManager } from './helpers/manager.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function tcpListener(host: string): Promise<number> {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

describe('port occupant', () => {
  it('another Workermanager: named with its Python', async () => {
    const other: TestManager = await startTestManager();
    cleanups.push(() => other.close());
    const occupant = await identifyPortOccupant(other.url, other.service.port);
    expect(occupant).toEqual({ kind: 'workermanager', url: other.url, identity: { class: 'WorkerManager', py: other.service.python } });
    expect(describeOccupant(occupant)).toBe(`Another Workermanager already runs on ${other.url} (its Python: ${other.service.python})`);
  });

  it.runIf(process.platform === 'linux')('a plain TCP listener (IPv4 and IPv6): the process that holds it', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const port = await tcpListener(host);
      const occupant = await identifyPortOccupant(`ws://127.0.0.1:${port}`, port);
      expect(occupant).toEqual({ kind: 'other', port, process: { pid: process.pid, name: expect.any(String) as string } });
      expect(describeOccupant(occupant)).toMatch(new RegExp(`^Port ${port} is held by .+ \\(pid ${process.pid}\\)$`));
    }
  });

  it('a port nobody listens on has no process; without one the text says the system does not tell', async () => {
    const port = await tcpListener('127.0.0.1');
    await cleanups.pop()!();
    expect(await listeningProcess(port)).toBeUndefined();
    expect(describeOccupant({ kind: 'other', port })).toBe(`Port ${port} is held by another program (the system does not say which)`);
  });
});
