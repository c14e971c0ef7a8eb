/**
 * Open editor end to end: the real manager serves the dashboard and the editor route; the editor package
 * is the fake funcnodes-react-flow (test/fixtures/fake-react-flow) installed in a real venv whose Python
 * runs the stand-in workers. Headless Chromium clicks "Open editor" on a stopped worker: the worker starts,
 * and the editor page (loaded under /editor/<uuid>/ with the editor's CSP) reaches the manager and then
 * the worker's own WebSocket. With FNWM_SCREENSHOTS=1 it writes docs/screenshots/editor-*.png.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createUiHandler } from '../../src-main/core/hub/ui-server.js';
import { launchChromium, RENDERER_DIR, requireRendererBuild } from '../helpers/browser.js';
import { buildEditorWheels, makeEditorVenv } from '../helpers/fake-editor.js';
import { createWorker, makeTempDir, startTestManager, type TestManager } from '../helpers/manager.js';
import { standinPython } from '../helpers/standin.js';

const SCREENSHOTS = path.resolve(import.meta.dirname, '..', '..', 'docs', 'screenshots');
const FAST = { stopMs: 3000, killGraceMs: 500, connectMs: 10_000, startMs: 15_000 };

let browser: Browser;
let root: string;
let editorPython: string;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  requireRendererBuild();
  root = await makeTempDir('fnwm-e2e-editor-');
  await buildEditorWheels(path.join(root, 'wheels'));
  editorPython = await makeEditorVenv(path.join(root, 'venv'), path.join(root, 'wheels'));
  browser = await launchChromium();
}, 120_000);
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await browser?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function manager(python: string): Promise<TestManager> {
  const m = await startTestManager({ timing: FAST, onHttp: createUiHandler({ dir: RENDERER_DIR }), env: { FUNCNODES_PYTHON: python } });
  cleanups.push(() => m.close());
  return m;
}

const shot = async (page: Page, name: string) => {
  if (process.env.FNWM_SCREENSHOTS === '1') await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), animations: 'disabled' });
};

describe('Open editor', () => {
  it('on a stopped worker starts it, and the editor page connects to the worker', async () => {
    const m = await manager(editorPython);
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'graph');
    const context = await browser.newContext({ viewport: { width: 1180, height: 640 } });
    cleanups.push(() => context.close());
    const problems: string[] = [];
    context.on('weberror', (e) => problems.push(e.error().message));
    const loaded: string[] = [];
    context.on('response', (r) => loaded.push(`${r.status()} ${new URL(r.url()).pathname}`));
    const page = await context.newPage();
    const httpBase = m.url.replace(/^ws:/, 'http:');
    await page.goto(`${httpBase}/`);
    const row = page.locator(`tr[data-uuid="${uuid}"]`);
    await expect.poll(() => row.getAttribute('data-state')).toBe('inactive');
    await shot(page, 'editor-button');

    const [editor] = await Promise.all([context.waitForEvent('page'), row.getByRole('button', { name: 'Open editor of graph' }).click()]);
    const violations: string[] = [];
    editor.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) violations.push(msg.text());
    });
    await editor.waitForLoadState();
    expect(editor.url()).toBe(`${httpBase}/editor/${uuid}/`);
    // Started by the click; the page picks it once the manager lists it active, then dials the worker.
    await expect.poll(() => row.getAttribute('data-state'), { timeout: 20_000 }).toBe('active');
    await expect.poll(async () => `${await editor.locator('#root').textContent()}\n${await editor.locator('#root').getAttribute('data-log')}`, { timeout: 20_000 }).toMatch(new RegExp(`^connected to worker ${uuid} at ws://(127\\.0\\.0\\.1|localhost):\\d+\n`));
    const log = await editor.locator('#root').getAttribute('data-log');
    expect(log).toContain(`manager ws://${new URL(httpBase).host}; worker endpoint ws://`);
    // The assets and endpoints came from the rewritten paths under the worker's prefix.
    for (const file of ['static/funcnodes_react_flow.es.js', 'static/funcnodes_react_flow.css', 'worker_manager', 'worker']) {
      expect(loaded).toContain(`200 /editor/${uuid}/${file}`);
    }
    expect(violations).toEqual([]);
    expect(problems).toEqual([]);
    await shot(editor, 'editor-page');
  }, 90_000);

  it('without funcnodes-react-flow the page says which Python was checked and how to install it', async () => {
    const m = await manager(standinPython);
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'plain');
    const context = await browser.newContext({ viewport: { width: 1180, height: 400 } });
    cleanups.push(() => context.close());
    const page = await context.newPage();
    const response = await page.goto(`${m.url.replace(/^ws:/, 'http:')}/editor/${uuid}/`);
    expect(response?.status()).toBe(503);
    const text = await page.locator('body').textContent();
    expect(text).toContain(`not installed in any environment checked: ${standinPython}`);
    expect(text).toContain(`${standinPython} -m pip install funcnodes-react-flow`);
    await shot(page, 'editor-missing');
  }, 60_000);
});
