/** What the worker list derives from hub state, the manager URL choice, and new-worker validation. */
import { describe, expect, it } from 'vitest';
import { config, runtime } from './fixtures.js';
import { formatDuration } from '../../src-shared/duration.js';
import { resolveManagerUrl } from '../../src-renderer/src/manager-url.js';
import {
  envLabel,
  filterItems,
  hostPort,
  validateNewWorker,
  workerAddress,
  workerItems,
  workerPid,
  workerState,
} from '../../src-renderer/src/worker-view.js';


describe('workerItems', () => {
  it('lists every known worker once, sorted by name, with its runtime', () => {
    const items = workerItems({
      active: [config('u2', { name: 'beta' })],
      inactive: [config('u1', { name: 'Alpha' }), config('u3', { name: 'worker 10' }), config('u4', { name: 'worker 9' })],
      runtime: { u2: runtime('u2', { state: 'stopping' }), u5: runtime('u5', { name: 'gamma', state: 'starting' }) },
    });
    expect(items.map((i) => i.uuid)).toEqual(['u1', 'u2', 'u5', 'u4', 'u3']);
    expect(items.find((i) => i.uuid === 'u2')).toMatchObject({ listedActive: true, runtime: { state: 'stopping' } });
    expect(items.find((i) => i.uuid === 'u5')).toMatchObject({ config: undefined, listedActive: false });
  });

  it('is empty before the first worker_status', () => {
    expect(workerItems({ active: null, inactive: [], runtime: {} })).toEqual([]);
  });
});

describe('workerState', () => {
  it('prefers the supervisor state and falls back to the lists of the original', () => {
    expect(workerState({ runtime: runtime('a', { state: 'crashed' }), listedActive: false })).toBe('crashed');
    expect(workerState({ runtime: undefined, listedActive: true })).toBe('active');
    expect(workerState({ runtime: undefined, listedActive: false })).toBe('inactive');
  });
});

describe('filterItems', () => {
  const items = workerItems({
    active: [config('aaa-1', { name: 'Demo one' })],
    inactive: [config('bbb-2', { name: 'other' })],
    runtime: { 'bbb-2': runtime('bbb-2', { state: 'crashed' }) },
  });
  it('matches name or uuid, case-insensitively, and the state', () => {
    expect(filterItems(items, 'demo', 'all').map((i) => i.uuid)).toEqual(['aaa-1']);
    expect(filterItems(items, ' BBB ', 'all').map((i) => i.uuid)).toEqual(['bbb-2']);
    expect(filterItems(items, '', 'crashed').map((i) => i.uuid)).toEqual(['bbb-2']);
    expect(filterItems(items, 'demo', 'crashed')).toEqual([]);
    expect(filterItems(items, '', 'all')).toHaveLength(2);
  });
});

describe('addresses and labels', () => {
  it('makes wildcard binds dialable and brackets IPv6', () => {
    expect(workerAddress(config('a', { host: '0.0.0.0', port: 9401 }))).toBe('ws://127.0.0.1:9401');
    expect(workerAddress(config('a', { host: '::', port: 9401 }))).toBe('ws://[::1]:9401');
    expect(workerAddress(config('a', { host: '', port: 9401 }))).toBe('ws://127.0.0.1:9401');
    expect(workerAddress(config('a', { host: 'localhost', port: 9401 }))).toBe('ws://localhost:9401');
    expect(workerAddress(config('a', { host: '::1', port: 9401 }))).toBe('ws://[::1]:9401');
    expect(workerAddress(config('a', { host: 'box', port: 9401, ssl: true }))).toBe('wss://box:9401');
    expect(workerAddress(config('a', { port: undefined }))).toBeNull();
    expect(workerAddress(undefined)).toBeNull();
    expect(hostPort(config('a', { host: '0.0.0.0', port: 9401 }))).toBe('127.0.0.1:9401');
    expect(hostPort(undefined)).toBe('–');
  });

  it('names the environment', () => {
    expect(envLabel(config('a', { env_path: '/w/.venv' }))).toBe('/w/.venv');
    expect(envLabel(config('a', { env_path: null }))).toBe('system Python');
    expect(envLabel(undefined)).toBe('system Python');
  });

  it('takes the pid from the runtime, else the worker JSON', () => {
    expect(workerPid({ config: config('a', { pid: 5 }), runtime: runtime('a', { pid: 6 }) })).toBe(6);
    expect(workerPid({ config: config('a', { pid: 5 }), runtime: undefined })).toBe(5);
    expect(workerPid({ config: undefined, runtime: undefined })).toBeNull();
  });

  it('formats uptimes', () => {
    expect([0, 45_000, 723_000, 5 * 3600_000 + 20 * 60_000, 3 * 86400_000 + 4 * 3600_000, -5].map(formatDuration)).toEqual(['0s', '45s', '12m 3s', '5h 20m', '3d 4h', '0s']);
  });
});

describe('validateNewWorker', () => {
  const existing = workerItems({ active: [], inactive: [config('ref-1', { name: 'Base' })], runtime: {} });
  const input = { name: ' demo ', inVenv: false, reference: '', copyLib: true, copyNS: true };

  it('sends the trimmed name, no reference and no copies without one', () => {
    expect(validateNewWorker(input, existing)).toEqual({ ok: true, options: { name: 'demo', copyLib: false, copyNS: false, in_venv: false } });
  });

  it('passes the reference and what to copy from it', () => {
    expect(validateNewWorker({ ...input, reference: 'ref-1', copyNS: false, inVenv: true }, existing)).toEqual({
      ok: true,
      options: { name: 'demo', reference: 'ref-1', copyLib: true, copyNS: false, in_venv: true },
    });
  });

  it('rejects an empty, too long or taken name and a vanished reference', () => {
    expect(validateNewWorker({ ...input, name: '  ' }, existing)).toEqual({ ok: false, errors: { name: 'Enter a name.' } });
    expect(validateNewWorker({ ...input, name: 'x'.repeat(101) }, existing)).toMatchObject({ ok: false, errors: { name: expect.stringMatching(/at most 100/) as unknown } });
    expect(validateNewWorker({ ...input, name: 'base' }, existing)).toEqual({ ok: false, errors: { name: 'A worker named "base" already exists.' } });
    expect(validateNewWorker({ ...input, reference: 'gone' }, existing)).toEqual({ ok: false, errors: { reference: 'That worker no longer exists.' } });
  });
});

describe('resolveManagerUrl', () => {
  const page = { protocol: 'http:', host: 'localhost:9380', search: '' };
  it('prefers the preload bridge, then ?ws=, then the page origin', () => {
    expect(resolveManagerUrl('ws://127.0.0.1:9999', { ...page, search: '?ws=ws://x:1' })).toBe('ws://127.0.0.1:9999');
    expect(resolveManagerUrl(undefined, { ...page, search: '?ws=ws%3A%2F%2Fx%3A1%2F' })).toBe('ws://x:1/');
    expect(resolveManagerUrl(undefined, page)).toBe('ws://localhost:9380/');
    expect(resolveManagerUrl(undefined, { ...page, protocol: 'https:' })).toBe('wss://localhost:9380/');
  });
});
