/**
 * The dashboard opened from another machine (a manager bound to 0.0.0.0, token auth): headless Chromium
 * loads it over a non-loopback address of this machine (the host end of a veth pair, so the hub sees a
 * non-loopback peer), is asked for the token, keeps it for the session, and takes a one-time ?token=.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_FILE } from '../../src-main/core/hub/remote-auth.js';
import { createUiHandler } from '../../src-main/core/hub/ui-server.js';
import { launchChromium, RENDERER_DIR, requireRendererBuild } from '../helpers/browser.js';
import { makeTempDir, startTestManager, type TestManager } from '../helpers/manager.js';
import { canMakeNamespace, makePeerNamespace, type PeerNamespace } from '../helpers/netns.js';

describe.runIf(canMakeNamespace)('dashboard from another machine', () => {
  let browser: Browser;
  let peer: PeerNamespace;
  let manager: TestManager;
  let token: string;
  let pageUrl: string;

  beforeAll(async () => {
    requireRendererBuild();
    peer = await makePeerNamespace();
    const dir = await makeTempDir('fnwm-e2e-token-');
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: { allowed_hosts: [peer.hostIp] } }));
    manager = await startTestManager({ dir, host: '0.0.0.0', onHttp: createUiHandler({ dir: RENDERER_DIR }) });
    token = (await readFile(path.join(dir, TOKEN_FILE), 'utf8')).trim();
    pageUrl = `http://${peer.hostIp}:${manager.service.port}/`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await manager?.close();
    await peer?.remove();
  });

  it('asks for the token while it cannot connect, refuses a wrong one, keeps the right one for the session', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(pageUrl);
    const prompt = page.getByRole('form', { name: 'Access token' });
    await expect.poll(() => prompt.isVisible()).toBe(true);
    await expect.poll(() => page.locator('.conn-text').textContent()).toMatch(/^Reconnecting/);
    expect(manager.logs.some((line) => line.includes(`Refused WebSocket upgrade from ${peer.hostIp}: no valid token`))).toBe(true);

    await prompt.getByLabel('Access token').fill('not-the-token-not-the-token');
    await prompt.getByRole('button', { name: 'Connect' }).click();
    await expect.poll(() => prompt.textContent()).toContain('did not accept this access token');
    expect(await page.locator('.conn-text').textContent()).not.toBe('Connected');

    await prompt.getByLabel('Access token').fill(token);
    await prompt.getByRole('button', { name: 'Connect' }).click();
    await expect.poll(() => page.locator('.conn-text').textContent()).toBe('Connected');
    expect(await prompt.count()).toBe(0);
    expect(await page.evaluate(() => sessionStorage.getItem('fnwm-token'))).toBe(token);

    // The same tab later: no question.
    await page.reload();
    await expect.poll(() => page.locator('.conn-text').textContent()).toBe('Connected');
    expect(await prompt.count()).toBe(0);
    await context.close();
  });

  it('a one-time ?token= in the address connects and leaves the address bar', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${pageUrl}?token=${encodeURIComponent(token)}`);
    await expect.poll(() => page.locator('.conn-text').textContent()).toBe('Connected');
    expect(page.url()).toBe(pageUrl);
    await context.close();
  });
});
