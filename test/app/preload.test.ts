/**
 * The preload's API shape (src-preload/index.ts) with `electron` mocked (the real module cannot load in
 * Node): exactly one world key, the manager URL from the window's switch, one function per IPC channel.
 */
import { describe, expect, it, vi } from 'vitest';
import { IPC_CHANNELS } from '../../src-main/app/ipc-channels.js';

const bridge = vi.hoisted(() => ({ exposed: new Map<string, unknown>(), invoked: [] as unknown[][] }));
vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => bridge.exposed.set(key, api) },
  ipcRenderer: {
    invoke: (...args: unknown[]) => {
      bridge.invoked.push(args);
      return Promise.resolve(`answer to ${String(args[0])}`);
    },
  },
}));

describe('preload', () => {
  it('exposes window.fnwm: the manager URL and one function per IPC channel, nothing else', async () => {
    process.argv.push('--fnwm-manager-url=ws://localhost:9380');
    try {
      await import('../../src-preload/index.js');
    } finally {
      process.argv.pop();
    }
    expect([...bridge.exposed.keys()]).toEqual(['fnwm']);
    const api = bridge.exposed.get('fnwm') as Record<string, unknown>;
    expect(api.managerUrl).toBe('ws://localhost:9380');
    const functions = Object.keys(api).filter((key) => typeof api[key] === 'function');
    expect(Object.keys(api).sort()).toEqual(['managerUrl', ...functions].sort());
    expect(functions).toHaveLength(IPC_CHANNELS.length);

    const call = (name: string, ...args: unknown[]) => (api[name] as (...a: unknown[]) => Promise<unknown>)(...args);
    expect(await call('info')).toBe('answer to app:info');
    await call('getSettings');
    await call('setSettings', { startHidden: true });
    await call('getStartAtLogin');
    await call('setStartAtLogin', true);
    await call('openLogsFolder');
    await call('openExternal', 'https://funcnodes.example/');
    expect(bridge.invoked).toEqual([
      ['app:info'],
      ['settings:get'],
      ['settings:set', { startHidden: true }],
      ['login:get'],
      ['login:set', true],
      ['logs:open'],
      ['external:open', 'https://funcnodes.example/'],
    ]);
    expect(new Set(bridge.invoked.map((args) => args[0]))).toEqual(new Set(IPC_CHANNELS));
  });
});
