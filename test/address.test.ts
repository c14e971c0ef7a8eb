/** The one way a bind host becomes a dialable ws:// URL (src-shared/address.ts). */
import { describe, expect, it } from 'vitest';
import { dialableHost, isWildcardHost, wsUrl } from '../src-shared/address.js';

describe('wsUrl', () => {
  it.each([
    ['::', 'ws://[::1]:9380'],
    ['[::]', 'ws://[::1]:9380'],
    ['::1', 'ws://[::1]:9380'],
    ['[::1]', 'ws://[::1]:9380'],
    ['fe80::1', 'ws://[fe80::1]:9380'],
    ['0.0.0.0', 'ws://127.0.0.1:9380'],
    ['', 'ws://127.0.0.1:9380'],
    [undefined, 'ws://127.0.0.1:9380'],
    ['localhost', 'ws://localhost:9380'],
    ['worker.example.org', 'ws://worker.example.org:9380'],
    ['127.0.0.1', 'ws://127.0.0.1:9380'],
  ])('%j dials %s', (host, url) => {
    expect(wsUrl(host, 9380)).toBe(url);
  });

  it('uses wss for ssl', () => {
    expect(wsUrl('::', 1, true)).toBe('wss://[::1]:1');
  });

  it('names the wildcards and their loopbacks', () => {
    for (const host of ['', '0.0.0.0', '::', '[::]', undefined]) expect(isWildcardHost(host), String(host)).toBe(true);
    for (const host of ['127.0.0.1', '::1', 'localhost']) expect(isWildcardHost(host), host).toBe(false);
    expect(dialableHost('[::]')).toBe('::1');
    expect(dialableHost('0.0.0.0')).toBe('127.0.0.1');
  });
});
