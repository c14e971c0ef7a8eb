/**
 * The dashboard end to end: the real headless manager (stand-in workers) serves the built renderer, and
 * headless Chromium drives it. With FNWM_SCREENSHOTS=1, screenshots of the main states are written to
 * docs/screenshots/ (not on every run: they differ each time and would dirty the tree).
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createUiHandler, resolveFile } from '../../src-main/core/hub/ui-server.js';
import { launchChromium, RENDERER_DIR, requireRendererBuild } from '../helpers/browser.js';
import { makeTempDir, readUntil, startTestManager, waitFor, type TestManager, type TestManagerOptions } from '../helpers/manager.js';
import { offlinePip } from '../helpers/python-env.js';

const SCREENSHOTS = path.resolve(import.meta.dirname, '..', '..', 'docs', 'screenshots');
const FAST = { stopMs: 3000, killGraceMs: 500, connectMs: 10_000, startMs: 15_000 };
/** Long enough for the start's progress to be seen, short enough for a quick test. */
const BOOT = { FUNCNODES_STANDIN: JSON.stringify({ boot_delay: 2.5 }) };

/** A name that is not loopback to the hub's Origin and Host checks, but reaches 127.0.0.1. */
const FOREIGN = 'foreign.test';

let browser: Browser;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  requireRendererBuild();
  browser = await launchChromium([`--host-resolver-rules=MAP ${FOREIGN} 127.0.0.1`]);
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
afterAll(async () => {
  await browser?.close();
});

async function manager(options: TestManagerOptions = {}): Promise<TestManager> {
  const m = await startTestManager({ timing: FAST, onHttp: createUiHandler({ dir: RENDERER_DIR }), ...options });
  cleanups.push(() => m.close());
  return m;
}

/** `allowedErrors`: console errors a test causes on purpose (WebSocket failures always are). */
async function newPage(options: { colorScheme?: 'light' | 'dark'; allowedErrors?: RegExp } = {}): Promise<{ page: Page; context: BrowserContext }> {
  const context = await browser.newContext({ viewport: { width: 1180, height: 640 }, colorScheme: options.colorScheme ?? 'light' });
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    if (msg.type() === 'error' && !text.includes('WebSocket') && !options.allowedErrors?.test(text)) problems.push(`console: ${text}`);
  });
  cleanups.push(() => expect(problems).toEqual([]));
  return { page, context };
}

const httpUrl = (m: TestManager) => `${m.url.replace(/^ws:/, 'http:')}/`;
// Animations finished, so a fading-in overlay is shown as the user sees it a moment later.
const shot = async (page: Page, name: string) => {
  if (process.env.FNWM_SCREENSHOTS === '1') await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), animations: 'disabled' });
};
const connectionText = (page: Page) => page.locator('.conn-text');
const row = (page: Page, name: string) => page.locator('tbody tr', { has: page.locator('.name', { hasText: new RegExp(`^${name}$`) }) });

describe('dashboard', () => {
  it('creates a worker from the form, starts it with progress, stops it and deletes it', async () => {
    const m = await manager({ env: BOOT });
    const { page, context } = await newPage();
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: httpUrl(m).slice(0, -1) });
    await page.goto(httpUrl(m));

    await expect.poll(() => connectionText(page).textContent()).toBe('Connected');
    await expect.poll(() => page.locator('.connection').textContent()).toContain('Workermanager');
    await expect.poll(() => page.locator('.empty').textContent()).toContain('No workers yet');

    // The form validates before it sends anything.
    await page.getByRole('button', { name: 'New worker' }).click();
    const dialog = page.getByRole('dialog', { name: 'New worker' });
    await dialog.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => dialog.locator('#nw-name-error').textContent()).toBe('Enter a name.');
    expect(await page.evaluate('document.activeElement.id')).toBe('nw-name');
    expect(await dialog.getByLabel('Name').getAttribute('aria-invalid')).toBe('true');
    await dialog.getByLabel('Name').fill('demo');
    expect(await dialog.locator('#nw-name-error').count()).toBe(0);
    const venv = dialog.getByRole('checkbox', { name: /virtual environment/ });
    // This manager's default (FUNCNODES_WORKER_IN_VENV=0 in the tests) comes from manager_info.
    expect(await venv.isChecked()).toBe(false);
    expect(await dialog.getByRole('checkbox', { name: 'Copy libraries' }).isDisabled()).toBe(true);
    await shot(page, 'new-worker');
    await dialog.getByRole('button', { name: 'Create' }).click();

    const demo = row(page, 'demo');
    await demo.waitFor();
    expect(await demo.locator('.badge.new').textContent()).toBe('new');
    expect(await demo.getAttribute('data-state')).toBe('inactive');
    const uuid = (await demo.getAttribute('data-uuid'))!;
    expect(await readdir(m.workersDir)).toContain(`worker_${uuid}.json`);

    // Start: the blocking overlay shows the manager's progress while the worker boots.
    await demo.getByRole('button', { name: 'Start demo', exact: true }).click();
    const overlay = page.getByRole('alertdialog');
    await expect.poll(() => overlay.locator('#overlay-text').textContent(), { timeout: 10_000 }).toMatch(/starting|Contacting worker/);
    expect(await page.locator('.statusbar').textContent()).toMatch(/starting|Contacting worker/);
    await shot(page, 'starting');
    // Dismissing the overlay frees the page, but this worker stays busy until its start ends.
    await overlay.getByRole('button', { name: 'Dismiss' }).click();
    expect(await overlay.count()).toBe(0);
    expect(await demo.getByRole('button', { name: 'Restart demo' }).isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'New worker' }).isEnabled()).toBe(true);

    await expect.poll(() => demo.getAttribute('data-state'), { timeout: 15_000 }).toBe('active');
    await expect.poll(() => overlay.count()).toBe(0);
    const address = (await demo.locator('td').nth(1).textContent())!;
    const port = Number(/^127\.0\.0\.1:(\d+)$/.exec(address)?.[1] ?? /^localhost:(\d+)$/.exec(address)?.[1]);
    expect(port).toBeGreaterThanOrEqual(m.ports.start);
    expect(port).toBeLessThanOrEqual(m.ports.end);
    expect(Number(await demo.locator('td').nth(2).textContent())).toBeGreaterThan(1);
    await expect.poll(() => demo.locator('time').textContent()).toMatch(/^\d+s$/);
    expect(await page.locator('.statusbar').textContent()).toBe('Ready');

    await demo.getByRole('button', { name: 'Copy address of demo' }).click();
    await expect.poll(() => page.evaluate('navigator.clipboard.readText()')).toMatch(new RegExp(`^ws://(127\\.0\\.0\\.1|localhost):${port}$`));

    await demo.getByRole('button', { name: 'Show logs of demo' }).click();
    const logs = page.getByRole('region', { name: 'Log of demo' });
    await expect.poll(() => logs.locator('pre').textContent(), { timeout: 10_000 }).toContain(uuid);
    await shot(page, 'dashboard');
    await logs.getByRole('button', { name: 'Close log' }).click();

    await demo.getByRole('button', { name: 'Stop demo' }).click();
    await expect.poll(() => demo.getAttribute('data-state'), { timeout: 15_000 }).toBe('inactive');

    // Delete asks first, naming the worker and its files; cancelling keeps it.
    await demo.getByRole('button', { name: 'Delete demo' }).click();
    const confirm = page.getByRole('dialog', { name: /Delete worker “demo”/ });
    const text = (await confirm.textContent())!;
    for (const part of [`worker_${uuid}.json`, `worker_${uuid}.p`, `worker_${uuid}.runstate`, `worker_${uuid}/`, m.workersDir]) expect(text).toContain(part);
    await shot(page, 'delete-confirm');
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    expect(await confirm.count()).toBe(0);
    expect(await demo.count()).toBe(1);

    await demo.getByRole('button', { name: 'Delete demo' }).click();
    await confirm.getByRole('button', { name: 'Delete “demo”' }).click();
    await expect.poll(() => demo.count(), { timeout: 10_000 }).toBe(0);
    await waitFor(async () => !(await readdir(m.workersDir)).some((f) => f.includes(uuid)), 5000, 'the worker files to be removed');
  });

  it('works from the keyboard, shows a crashed worker and manager errors as dismissible notices (dark theme)', async () => {
    // Every stand-in worker of this manager dies (exit code 3) a moment after it starts answering.
    // pip finds no package anywhere, so a venv worker's creation fails (after making its venv).
    const m = await manager({ env: { FUNCNODES_STANDIN: JSON.stringify({ crash_after: 0.5 }), ...offlinePip('/nonexistent-fnwm-wheelhouse') } });
    const { page } = await newPage({ colorScheme: 'dark' });
    await page.goto(httpUrl(m));
    await expect.poll(() => connectionText(page).textContent()).toBe('Connected');
    const client = await m.connect();
    const uuids: string[] = [];
    for (const name of ['alpha', 'beta']) {
      client.send({ type: 'new_worker', kwargs: { name, in_venv: false } });
      uuids.push((await readUntil(client, 'worker_created')).found.uuid);
    }
    await row(page, 'beta').waitFor();
    const alpha = row(page, 'alpha');
    await alpha.getByRole('button', { name: 'Start alpha', exact: true }).click();
    await expect.poll(() => alpha.getAttribute('data-state'), { timeout: 15_000 }).toBe('crashed');
    expect(await alpha.locator('.detail').textContent()).toMatch(/\b3\b/);
    expect(await alpha.getByRole('button', { name: 'Start alpha', exact: true }).isEnabled()).toBe(true);

    // Keyboard: Tab reaches the search box and "New worker"; Escape closes the dialog.
    await page.getByRole('searchbox', { name: 'Search workers' }).focus();
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'New worker' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.count()).toBe(0);
    expect(await page.evaluate('document.activeElement.textContent')).toBe('New worker');

    // A venv worker whose install finds no package: the error reaches the page as a notice.
    await page.keyboard.press('Enter');
    await page.keyboard.type('gamma');
    await page.getByRole('checkbox', { name: /virtual environment/ }).check();
    await page.getByLabel('Reference worker').selectOption(uuids[0]);
    await page.getByRole('checkbox', { name: 'Copy nodespace' }).check();
    await page.getByRole('button', { name: 'Create' }).click();
    const notice = page.getByRole('alert');
    await notice.first().waitFor({ timeout: 60_000 });
    expect(await notice.first().textContent()).toMatch(/Could not create worker: .*pip install funcnodes/);
    expect(await page.getByRole('dialog').count()).toBe(0);
    await shot(page, 'dark-error');
    await notice.first().getByRole('button', { name: 'Dismiss notice' }).click();
    await expect.poll(() => notice.count()).toBe(0);
  }, 90_000);

  it('reconnects after the manager restarts on the same port', async () => {
    const dir = await makeTempDir();
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const first = await manager({ dir });
    // Chromium may fetch the favicon late, while the manager is down.
    const { page } = await newPage({ allowedErrors: /ERR_CONNECTION_REFUSED/ });
    await page.goto(httpUrl(first));
    await expect.poll(() => connectionText(page).textContent()).toBe('Connected');

    await first.service.stop('restart test');
    await expect.poll(() => connectionText(page).textContent()).toMatch(/^Reconnecting \(attempt \d+/);
    await shot(page, 'reconnecting');

    const second = await manager({ dir, port: first.service.port });
    await expect.poll(() => connectionText(page).textContent(), { timeout: 15_000 }).toBe('Connected');
    // The new connection is subscribed again: a worker created elsewhere shows up.
    const client = await second.connect();
    client.send({ type: 'new_worker', kwargs: { name: 'after-restart', in_venv: false } });
    await row(page, 'after-restart').waitFor({ timeout: 10_000 });
  });

  it('a page from a foreign origin cannot drive the hub', async () => {
    const m = await manager();
    // An attacker's copy of the dashboard on another site, pointed at the hub (and without our CSP header).
    const foreign = http.createServer((req, res) => {
      const file = resolveFile(RENDERER_DIR, req.url ?? '/');
      readFile(file ?? '').then(
        (body) => res.writeHead(200, { 'Content-Type': file!.endsWith('.js') ? 'text/javascript' : file!.endsWith('.css') ? 'text/css' : 'text/html' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => foreign.close(resolve)));
    const foreignOrigin = `http://${FOREIGN}:${(foreign.address() as AddressInfo).port}`;

    const { page } = await newPage();
    await page.goto(`${foreignOrigin}/?ws=${encodeURIComponent(`${m.url}/`)}`);
    await expect.poll(() => connectionText(page).textContent()).toMatch(/^Reconnecting/);
    expect(await page.getByRole('button', { name: 'New worker' }).isDisabled()).toBe(true);
    // Runs in the page: a raw WebSocket to the hub, as any script of that page could open.
    const dial = (url: string) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => {
          resolve('open');
          ws.close();
        };
        ws.onclose = (event) => resolve(`closed ${event.code}`);
      });
    expect(await page.evaluate(dial, `${m.url}/`)).toBe('closed 1006');
    expect(m.logs.some((line) => line.includes(`Refused WebSocket upgrade from origin "${foreignOrigin}"`))).toBe(true);

    // DNS rebinding: the foreign name resolving to the hub itself. The page loads, its Host is refused.
    const rebound = await newPage();
    await rebound.page.goto(`http://${FOREIGN}:${m.service.port}/`);
    await expect.poll(() => connectionText(rebound.page).textContent()).toMatch(/^Reconnecting/);
    expect(m.logs.some((line) => line.includes(`Host "${FOREIGN}:${m.service.port}" is not allowed`))).toBe(true);
    expect((await readdir(m.workersDir)).filter((f) => f.endsWith('.json'))).toEqual([]);

    // The same browser on the manager's own origin is let in.
    const own = await newPage();
    await own.page.goto(httpUrl(m));
    expect(await own.page.evaluate(dial, `${m.url}/`)).toBe('open');
  });

  it('lists 1,000 workers and filters them', async () => {
    const dir = await makeTempDir();
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const workersDir = path.join(dir, 'workers');
    await mkdir(workersDir);
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const uuid = `bulk${String(i).padStart(4, '0')}`;
        return writeFile(path.join(workersDir, `worker_${uuid}.json`), JSON.stringify({ type: 'WSWorker', uuid, name: `bulk worker ${i}`, host: 'localhost', port: 9400, env_path: null }));
      }),
    );
    const m = await manager({ dir });
    const { page } = await newPage();
    await page.goto(httpUrl(m));
    await expect.poll(() => page.locator('tbody tr').count(), { timeout: 15_000 }).toBe(1000);

    const search = page.getByRole('searchbox', { name: 'Search workers' });
    await search.fill('bulk worker 99');
    await expect.poll(() => page.locator('tbody tr').count()).toBe(11);
    await shot(page, 'search');
    expect(await page.locator('.count').textContent()).toBe('11 of 1000');
  });
});
