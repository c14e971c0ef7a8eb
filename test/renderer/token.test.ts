/** The dashboard's access token (src-renderer/src/token.ts): when it is asked for, where it is kept. */
import { describe, expect, it } from 'vitest';
import { isLoopbackHostname, mayNeedToken, pageToken, socketProtocols, TOKEN_KEY, type PageEnv } from '../../src-renderer/src/token.js';

function env(href: string, stored: Record<string, string> = {}): PageEnv & { stored: Record<string, string>; urls: string[] } {
  const url = new URL(href);
  const urls: string[] = [];
  return {
    location: { hostname: url.hostname, search: url.search, pathname: url.pathname, hash: url.hash },
    stored,
    urls,
    storage: {
      getItem: (key) => stored[key] ?? null,
      setItem: (key, value) => void (stored[key] = value),
      removeItem: (key) => void delete stored[key],
    },
    replaceUrl: (next) => void urls.push(next),
  };
}

describe('dashboard token', () => {
  it('may be needed only for a manager on another machine', () => {
    expect(mayNeedToken('ws://lab.example:9380/')).toBe(true);
    expect(mayNeedToken('wss://192.168.1.5/')).toBe(true);
    for (const host of ['localhost', '127.0.0.1', '127.3.4.5', '[::1]', 'app.localhost']) {
      expect(isLoopbackHostname(host), host).toBe(true);
      expect(mayNeedToken(`ws://${host}:9380/`), host).toBe(false);
    }
    expect(mayNeedToken('not a url')).toBe(false);
  });

  it('a ?token= in the address is taken once: stored for the session and removed from the address bar', () => {
    const page = env('http://lab.example:9380/?token=abc&ws=ws://lab.example:9380#top');
    expect(pageToken(page)).toBe('abc');
    expect(page.stored[TOKEN_KEY]).toBe('abc');
    expect(page.urls).toEqual(['/?ws=ws%3A%2F%2Flab.example%3A9380#top']);
    expect(pageToken(env('http://lab.example:9380/', { [TOKEN_KEY]: 'kept' }))).toBe('kept');
    expect(pageToken(env('http://lab.example:9380/'))).toBeNull();
  });

  it('offers the plain protocol first and the token second, or nothing without a token', () => {
    expect(socketProtocols('abc')).toEqual(['fnwm', 'fnwm-token.abc']);
    expect(socketProtocols(null)).toEqual([]);
  });
});
