/**
 * A workers dir that cannot be listed (EMFILE, EACCES) is reported, and the manager keeps the workers it
 * knows instead of announcing that they are all gone. `readdir` is made to fail with vitest's module mock:
 * as root, permissions cannot make it fail.
 */
import type * as FsPromises from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src-main/core/logs/log.js';
import { Registry } from '../src-main/core/registry/registry.js';
import { collect, createWorker, makeTempDir, readUntil, startTestManager, waitFor, type TestManager } from './helpers/manager.js';

const failing = vi.hoisted(() => ({ dir: undefined as string | undefined, code: 'EMFILE' }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  const readdir = ((dir: string, ...rest: unknown[]) => {
    if (failing.dir !== undefined && path.resolve(String(dir)) === failing.dir) {
      return Promise.reject(Object.assign(new Error(`${failing.code}: cannot list ${String(dir)}`), { code: failing.code }));
    }
    return (actual.readdir as (...args: unknown[]) => Promise<unknown>)(dir, ...rest);
  }) as typeof actual.readdir;
  return { ...actual, readdir, default: { ...actual, readdir } };
});

const managers: TestManager[] = [];
afterEach(async () => {
  failing.dir = undefined;
  for (const m of managers.splice(0)) await m.close();
});

describe('a workers dir that cannot be listed', () => {
  it('Registry.list reports the failure instead of listing no workers', async () => {
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'worker_a.json'), JSON.stringify({ type: 'WSWorker', uuid: 'a' }));
    const registry = new Registry(dir, createLogger('error', () => undefined));
    expect((await registry.list()).json).toEqual(['a']);
    failing.dir = path.resolve(dir);
    failing.code = 'EACCES';
    await expect(registry.list()).rejects.toMatchObject({ code: 'EACCES' });
  });

  it('keeps the last known workers, reports it, and broadcasts no empty list', async () => {
    const m = await startTestManager({ supervisor: { observer: { safetyRescanMs: 100 } } });
    managers.push(m);
    const client = await m.connect();
    client.send('worker_status');
    await readUntil(client, 'worker_status');
    const uuid = await createWorker(client, m.workersDir, 'kept');
    await waitFor(() => m.service.supervisor.find(uuid) !== undefined, 5000, 'the worker to be known');
    await collect(client, 200); // the creation's last frames and broadcast
    failing.dir = path.resolve(m.workersDir);
    failing.code = 'EMFILE';
    await waitFor(() => m.logs.some((l) => l.includes(`Cannot list ${m.workersDir}`) && l.includes('keeping the last known workers')), 5000, 'the failure to be reported');
    // Several rescans fail meanwhile: no frame at all (the lists did not change), and the worker is still known.
    expect(await collect(client, 400)).toEqual([]);
    expect(m.service.supervisor.find(uuid)).toBeDefined();
    client.send('worker_status');
    const { found } = await readUntil(client, 'worker_status');
    expect(found.inactive.map((w) => w.uuid)).toEqual([uuid]);
  });
});
