/**
 * The preload as it ships: the built dist/preload/index.cjs run in a context like Electron's sandboxed
 * preload (its own global, `require` that knows only `electron`, a `process` with argv), with fake
 * contextBridge and ipcRenderer. It must expose exactly `window.fnwm`: the manager URL from the window's
 * switch and one function per IPC channel. Needs `npm run build` first.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { IPC_CHANNELS } from '../../src-main/app/ipc-channels.js';

const BUNDLE = path.resolve(import.meta.dirname, '../../dist/preload/index.cjs');

function loadPreload(argv: string[]) {
  const exposed = new Map<string, unknown>();
  const invoked: unknown[][] = [];
  const required: string[] = [];
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.set(key, api) },
    ipcRenderer: {
      invoke: (...args: unknown[]) => {
        invoked.push(args);
        return Promise.resolve(`answer to ${String(args[0])}`);
      },
    },
  };
  const module = { exports: {} };
  const sandbox = {
    require: (name: string) => {
      required.push(name);
      if (name !== 'electron') throw new Error(`module not found: ${name}`);
      return electron;
    },
    module,
    exports: module.exports,
    process: { argv, platform: process.platform, sandboxed: true, contextIsolated: true, type: 'renderer' },
  };
  vm.runInNewContext(readFileSync(BUNDLE, 'utf8'), sandbox, { filename: BUNDLE });
  return { exposed, invoked, required };
}

describe('preload (built)', () => {
  it('exposes window.fnwm: the manager URL and one function per IPC channel, nothing else, requiring only electron', async () => {
    expect(existsSync(BUNDLE), 'run `npm run build` first').toBe(true);
    const { exposed, invoked, required } = loadPreload(['/app/electron', '--type=renderer', '--fnwm-manager-url=ws://localhost:9380']);
    expect(required).toEqual(['electron']);
    expect([...exposed.keys()]).toEqual(['fnwm']);
    const api = exposed.get('fnwm') as Record<string, unknown>;
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
    await call('managerToken');
    await call('setManagerToken', 'a-token-of-some-length');
    expect(invoked).toEqual([
      ['app:info'],
      ['settings:get'],
      ['settings:set', { startHidden: true }],
      ['login:get'],
      ['login:set', true],
      ['logs:open'],
      ['external:open', 'https://funcnodes.example/'],
      ['manager:token'],
      ['manager:set-token', 'a-token-of-some-length'],
    ]);
    expect(new Set(invoked.map((args) => args[0]))).toEqual(new Set(IPC_CHANNELS));
  });

  it('without the switch the manager URL is undefined (the page then uses ?ws= or its own origin)', () => {
    const api = loadPreload(['/app/electron']).exposed.get('fnwm') as Record<string, unknown>;
    expect(api.managerUrl).toBeUndefined();
  });
});
