/**
 * The editor route (`/editor/<uuid>/…`) on a real HTTP server, with the bundle locator asking real
 * interpreters: a venv with the fake funcnodes-react-flow installed, and one without it.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { askPython, EditorBundles, type EditorBundle } from '../src-main/core/hub/editor-bundle.js';
import { createEditorHandler, editorPolicy } from '../src-main/core/hub/editor-route.js';
import type { WorkerConfig } from '../src-shared/protocol.js';
import { buildEditorWheels, makeEditorVenv } from './helpers/fake-editor.js';
import { makeTempDir } from './helpers/manager.js';

const UUID = 'w1';
const WORKERS: Record<string, WorkerConfig> = {
  w1: { uuid: 'w1', name: 'one', type: 'WSWorker', host: '0.0.0.0', port: 9411 },
  w2: { uuid: 'w2', name: 'two', type: 'WSWorker', host: 'localhost', port: 9412, env_path: '/nowhere/.venv' },
};

let dir: string;
let bundleDir: string;
let server: http.Server;
let base: string;
const asked: string[] = [];
let answer: EditorBundle | null;
let bundles: EditorBundles;

beforeAll(async () => {
  dir = await makeTempDir('fnwm-editor-route-');
  bundleDir = path.join(dir, 'pkg', 'static');
  await mkdir(bundleDir, { recursive: true });
  await writeFile(
    path.join(bundleDir, 'index.html'),
    '<html><head><script type="module" crossorigin src="/static/funcnodes_react_flow.es.js"></script></head><body><script>fetch("/worker_manager");fetch("/worker")</script></body></html>',
  );
  await writeFile(path.join(bundleDir, 'funcnodes_react_flow.es.js'), 'window.x = 1;\n');
  await writeFile(path.join(bundleDir, '.hidden'), 'hidden\n');
  await writeFile(path.join(dir, 'pkg', 'secret.txt'), 'outside the bundle\n');
  answer = { dir: bundleDir, version: '2.4.0' };
  bundles = new EditorBundles((python) => {
    asked.push(python);
    return Promise.resolve(answer);
  });
  const handler = createEditorHandler(
    {
      bundles,
      workerConfig: (uuid) => Promise.resolve(WORKERS[uuid]),
      pythonsFor: (config) => [config.env_path ? '/venv/python' : '/manager/python', '/manager/python'],
      hubUrl: () => 'ws://127.0.0.1:1',
    },
    (_req, res) => {
      res.writeHead(200, { 'Content-Security-Policy': "script-src 'self'", 'Content-Type': 'text/plain' });
      res.end('dashboard');
    },
  );
  server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** A raw GET: the path goes out exactly as written (fetch would normalise `..`). */
function get(rawPath: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/`, { method, path: rawPath }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('editor route', () => {
  it('serves index.html with its absolute paths moved under the worker prefix and the worker preselected', async () => {
    const r = await get(`/editor/${UUID}/`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.body).toContain('src="/editor/w1/static/funcnodes_react_flow.es.js"');
    expect(r.body).toContain('fetch("/editor/w1/worker_manager");fetch("/editor/w1/worker")');
    expect(r.body).not.toMatch(/["']\/(static|worker)/);
    expect(r.body).toContain('localStorage.setItem("funcnodes__active_worker","w1")');
    expect((await get(`/editor/${UUID}/index.html`)).body).toBe(r.body);
  });

  it('gives the editor its own CSP and leaves the dashboard strict', async () => {
    const editor = await get(`/editor/${UUID}/`);
    const csp = String(editor.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self' 'unsafe-inline' 'unsafe-eval'");
    expect(csp).toMatch(/connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ ws:\/\/127\.0\.0\.1:\* ws:\/\/localhost:\* http:\/\/127\.0\.0\.1:\*/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('wss:');
    const dashboard = await get('/');
    expect(dashboard.body).toBe('dashboard');
    expect(dashboard.headers['content-security-policy']).toBe("script-src 'self'");
    // An ssl worker adds the secure schemes; a worker on another host is named exactly.
    const remote = editorPolicy('127.0.0.1:1', { uuid: 'x', host: 'lab.example', port: 9500, ssl: true } as WorkerConfig);
    expect(remote).toContain('wss://127.0.0.1:*');
    expect(remote).toContain('wss://lab.example:9500');
    expect(remote).toContain('https://lab.example:9500');
  });

  it('answers /worker_manager with the hub URL the page reached, /worker with the dialable worker address', async () => {
    const wm = await get(`/editor/${UUID}/worker_manager`);
    expect(wm.status).toBe(200);
    expect(wm.headers['content-type']).toMatch(/^text\/plain/);
    expect(wm.body).toBe(`ws://${new URL(base).host}`);
    const w = await get(`/editor/${UUID}/worker`);
    expect(w.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(w.body)).toEqual({ host: '127.0.0.1', port: 9411, ssl: false });
    expect(JSON.parse((await get('/editor/w2/worker')).body)).toEqual({ host: 'localhost', port: 9412, ssl: false });
  });

  it('serves the static assets and nothing outside the bundle', async () => {
    const js = await get(`/editor/${UUID}/static/funcnodes_react_flow.es.js`);
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    expect(js.body).toBe('window.x = 1;\n');
    for (const p of [
      `/editor/${UUID}/static/../secret.txt`,
      `/editor/${UUID}/static/%2e%2e/secret.txt`,
      `/editor/${UUID}/static/..%2fsecret.txt`,
      `/editor/${UUID}/static/.hidden`,
      `/editor/${UUID}/static/%00`,
      `/editor/${UUID}/static/..\\secret.txt`,
      `/editor/${UUID}/../../etc/passwd`,
      `/editor/..%2f..%2fetc/passwd`,
      `/editor/${UUID}/other`,
    ]) {
      const r = await get(p);
      expect(r.status, p).toBe(404);
      expect(r.body, p).not.toContain('outside the bundle');
    }
  });

  it('404s unknown and invalid workers, redirects the bare prefix, refuses other methods', async () => {
    expect((await get('/editor/nope/')).body).toBe('No worker nope.\n');
    expect((await get('/editor/bad%20id/')).status).toBe(404);
    const bare = await get(`/editor/${UUID}`);
    expect(bare.status).toBe(308);
    expect(bare.headers.location).toBe(`/editor/${UUID}/`);
    const post = await get(`/editor/${UUID}/`, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('without a bundle anywhere: 503 naming the Pythons asked, worker venv first, and the install command', async () => {
    answer = null;
    bundles.forget();
    asked.length = 0;
    try {
      const r = await get('/editor/w2/');
      expect(r.status).toBe(503);
      expect(r.body).toContain('not installed in any environment checked: /venv/python, /manager/python');
      expect(r.body).toContain('/venv/python -m pip install funcnodes-react-flow');
      expect(asked).toEqual(['/venv/python', '/manager/python']);
      // "Not there" is not cached: the next request asks again.
      await get('/editor/w2/');
      expect(asked).toEqual(['/venv/python', '/manager/python', '/venv/python', '/manager/python']);
    } finally {
      answer = { dir: bundleDir, version: '2.4.0' };
    }
  });
});

describe('editor bundle locator', () => {
  it('caches a found bundle per interpreter until forget()', async () => {
    const calls: string[] = [];
    const bundles = new EditorBundles((python) => {
      calls.push(python);
      return Promise.resolve(python === '/b' ? { dir: '/b/static', version: '1' } : null);
    });
    expect(await bundles.find(['/a', '/b', '/b'])).toEqual({ ok: true, python: '/b', bundle: { dir: '/b/static', version: '1' } });
    expect(await bundles.find(['/b'])).toMatchObject({ ok: true });
    expect(calls).toEqual(['/a', '/b']);
    bundles.forget();
    await bundles.find(['/b']);
    expect(calls).toEqual(['/a', '/b', '/b']);
  });

  it('asks real interpreters: a venv with funcnodes-react-flow installed, and one without', async () => {
    const wheelhouse = path.join(dir, 'wheels');
    await buildEditorWheels(wheelhouse);
    const [withEditor, without] = await Promise.all([
      makeEditorVenv(path.join(dir, 'venv-editor'), wheelhouse),
      makeEditorVenv(path.join(dir, 'venv-plain'), wheelhouse, false),
    ]);
    const found = await askPython(withEditor);
    expect(found?.version).toBe('9.9.9');
    expect(found?.dir).toMatch(/site-packages[/\\]funcnodes_react_flow[/\\]static$/);
    expect(await askPython(without)).toBeNull();
    expect(await askPython(path.join(dir, 'no-such-python'))).toBeNull();
  }, 120_000);
});
