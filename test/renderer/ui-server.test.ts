/**
 * The HTTP handler that serves the built dashboard: files, content types, security headers, methods, the
 * missing-build message, and no way out of the build dir (raw requests, so no client normalises the path).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentSecurityPolicy, createUiHandler, defaultRendererDir, resolveFile } from '../../src-main/core/hub/ui-server.js';
import { makeTempDir } from '../helpers/manager.js';

let base: string;
let dir: string;
let server: http.Server;
let port: number;

beforeAll(async () => {
  base = await makeTempDir('fnwm-ui-');
  dir = path.join(base, 'renderer');
  await mkdir(path.join(dir, 'assets'), { recursive: true });
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>dash</title>');
  await writeFile(path.join(dir, 'assets', 'app-1.js'), 'console.log(1)');
  await writeFile(path.join(dir, 'assets', 'app-1.css'), 'body{}');
  await writeFile(path.join(dir, '.secret'), 'dotfile');
  await writeFile(path.join(base, 'secret.txt'), 'outside');
  server = http.createServer(createUiHandler({ dir }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(base, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Sends the request target exactly as given. */
function request(target: string, method = 'GET', headers: Record<string, string> = {}, to = port): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: to, method, path: target, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('createUiHandler', () => {
  it('serves index.html on / with a strict CSP naming the WebSocket of the requested host', async () => {
    const r = await request('/');
    expect(r.status).toBe(200);
    expect(r.body).toContain('<title>dash</title>');
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['cache-control']).toBe('no-cache');
    const csp = r.headers['content-security-policy'];
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${port}`);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
  });

  it('serves assets with their content types, ignoring the query', async () => {
    const js = await request('/assets/app-1.js?v=1');
    expect(js).toMatchObject({ status: 200, body: 'console.log(1)' });
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toContain('immutable');
    expect((await request('/assets/app-1.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await request('/index.html')).status).toBe(200);
  });

  it('answers HEAD with the headers and no body', async () => {
    const r = await request('/assets/app-1.js', 'HEAD');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('14');
    expect(r.body).toBe('');
  });

  it('refuses other methods with 405 and Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await request('/', method);
      expect(r.status, method).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
    }
  });

  it('answers 404 for unknown paths and directories', async () => {
    expect((await request('/nope.js')).status).toBe(404);
    expect((await request('/assets')).status).toBe(404);
    expect((await request('/assets/')).status).toBe(404);
  });

  it.each([
    '/../secret.txt',
    '/assets/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/assets/%2E%2E%2F%2E%2E%2Fsecret.txt',
    '/..%2fsecret.txt',
    '/..%5csecret.txt',
    '/assets/..\\..\\secret.txt',
    '/.secret',
    '/%00/index.html',
    '/%E0%A4%A',
    'secret.txt',
    'http://127.0.0.1/../secret.txt',
  ])('never leaves the build dir: %s', async (target) => {
    const r = await request(target);
    // 400 is Node's own parser refusing a malformed request target.
    expect([400, 404]).toContain(r.status);
    expect(r.body).not.toContain('outside');
    expect(r.body).not.toContain('dotfile');
  });

  it('keeps a hostile Host header out of the CSP', async () => {
    const r = await request('/', 'GET', { Host: "evil; script-src 'unsafe-inline'" });
    expect(r.headers['content-security-policy']).toBe(contentSecurityPolicy(undefined));
    expect(r.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(contentSecurityPolicy('localhost:9380')).toContain("connect-src 'self' ws://localhost:9380;");
    expect(contentSecurityPolicy('[::1]:9380')).toContain("connect-src 'self';");
  });

  it('says to run the build when there is none', async () => {
    const missing = http.createServer(createUiHandler({ dir: path.join(base, 'not-built') }));
    await new Promise<void>((resolve) => missing.listen(0, '127.0.0.1', resolve));
    try {
      const r = await request('/', 'GET', {}, (missing.address() as AddressInfo).port);
      expect(r.status).toBe(503);
      expect(r.body).toContain('npm run build');
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    } finally {
      await new Promise((resolve) => missing.close(resolve));
    }
  });
});

describe('resolveFile', () => {
  it('maps / to index.html and keeps everything inside the root', () => {
    expect(resolveFile('/r', '/')).toBe(path.join('/r', 'index.html'));
    expect(resolveFile('/r', '/assets/a.js?x#y')).toBe(path.join('/r', 'assets', 'a.js'));
    expect(resolveFile('/r', '//etc/passwd')).toBe(path.join('/r', 'etc', 'passwd'));
    expect(resolveFile('/r', '/../r2/x')).toBeUndefined();
  });
});

describe('defaultRendererDir', () => {
  const repo = path.resolve(import.meta.dirname, '..', '..');
  it('finds dist/renderer from the source module and from a bundle below dist/', () => {
    expect(defaultRendererDir()).toBe(path.join(repo, 'dist', 'renderer'));
    expect(defaultRendererDir(pathToFileURL('/opt/app/resources/app.asar/dist/main/chunks/service-x.js').href)).toBe('/opt/app/resources/app.asar/dist/renderer');
    expect(defaultRendererDir(pathToFileURL('/opt/app/dist/main/cli.js').href)).toBe('/opt/app/dist/renderer');
  });
});
