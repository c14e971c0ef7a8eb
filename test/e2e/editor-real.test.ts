/**
 * The REAL FuncNodes editor (funcnodes-react-flow from the pinned, cached FuncNodes venv) in headless
 * Chromium against this manager's editor route, with a real worker: the page loads under its CSP without a
 * violation, reaches the manager, selects the worker and opens the worker's own WebSocket, which answers.
 */
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { createWorker, startTestManager, waitFor, type TestManager } from '../helpers/manager.js';
import { realFuncnodes } from '../helpers/real-funcnodes.js';
import { realWorkerEnv } from '../helpers/real-worker.js';

let browser: Browser;
let m: TestManager | undefined;

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await m?.close();
  await browser?.close();
});

describe('the real FuncNodes editor', () => {
  it('loads from the worker env, passes its CSP and connects to a real worker', async () => {
    const fn = await realFuncnodes();
    m = await startTestManager({ env: await realWorkerEnv(fn) });
    const client = await m.connect();
    const uuid = await createWorker(client, m.workersDir, 'real-graph');
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) problems.push(msg.text());
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    const sockets: string[] = [];
    const answered = new Set<string>();
    page.on('websocket', (ws) => {
      sockets.push(ws.url());
      ws.on('framereceived', () => answered.add(ws.url()));
    });
    const hub = m.url.replace(/^ws:/, 'http:');
    // The page first, the worker stopped: the editor picks the worker when the manager lists it active.
    const response = await page.goto(`${hub}/editor/${uuid}/`);
    expect(response?.status()).toBe(200);
    client.send({ type: 'set_active', workerid: uuid });
    await waitFor(() => sockets.some((u) => !u.startsWith(m!.url) && answered.has(u)), 90_000, 'the editor to talk to the worker');
    const workerSocket = sockets.find((u) => !u.startsWith(m!.url))!;
    expect(workerSocket).toMatch(/^ws:\/\/(127\.0\.0\.1|localhost):\d+/);
    expect(sockets.some((u) => u.startsWith(`ws://${new URL(hub).host}`))).toBe(true);
    expect(problems).toEqual([]);
    if (process.env.FNWM_SCREENSHOTS === '1') {
      // The editor's status bar says the worker runs once its first frames are in.
      await page.getByText('running', { exact: true }).first().waitFor();
      await page.screenshot({ path: path.resolve(import.meta.dirname, '..', '..', 'docs', 'screenshots', 'editor-real.png') });
    }
    await context.close();
  }, 180_000);
});
