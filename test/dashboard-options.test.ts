/**
 * The dashboard's per-worker supervision options (restart policy, autostart) in Debian's headless Chromium
 * against the real manager: the row's options button opens the controls, and a change lands in the
 * worker JSON and comes back through worker_states.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { createUiHandler } from '../src-main/core/hub/ui-server.js';
import { launchChromium, RENDERER_DIR, requireRendererBuild } from './helpers/browser.js';
import { createWorker, startTestManager, waitFor } from './helpers/manager.js';

it('sets a worker\'s restart policy and autostart from its row', async () => {
  requireRendererBuild();
  const m = await startTestManager({ onHttp: createUiHandler({ dir: RENDERER_DIR }) });
  const browser = await launchChromium();
  try {
    const uuid = await createWorker(await m.connect(), m.workersDir, 'tuned');
    const page = await browser.newPage();
    await page.goto(`${m.url.replace(/^ws:/, 'http:')}/`);
    const button = page.getByRole('button', { name: 'Options of tuned' });
    await expect.poll(() => button.textContent()).toBe('on-failure');
    await button.click();
    await page.getByRole('combobox', { name: 'Restart policy of tuned' }).selectOption('always');
    await page.getByRole('combobox', { name: 'Autostart of tuned' }).selectOption('unless-stopped');
    const file = path.join(m.workersDir, `worker_${uuid}.json`);
    const stored = async () => {
      const json = JSON.parse(await readFile(file, 'utf8')) as { workermanager?: unknown; autostart?: unknown };
      return { workermanager: json.workermanager, autostart: json.autostart };
    };
    const expected = JSON.stringify({ workermanager: { restart: 'always' }, autostart: 'unless-stopped' });
    await waitFor(async () => JSON.stringify(await stored()) === expected, 5000, 'the options in the worker JSON');
    await expect.poll(() => button.textContent()).toBe('always, autostart unless-stopped');
  } finally {
    await browser.close();
    await m.close();
  }
}, 60_000);
