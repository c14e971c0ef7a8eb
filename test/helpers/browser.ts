/**
 * Headless Debian Chromium for the e2e tests (playwright-core never downloads a browser), and the check
 * that the renderer has been built.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const RENDERER_DIR = path.resolve(import.meta.dirname, '..', '..', 'dist', 'renderer');

/** `npm test` builds first; a lone run of the e2e tests needs the build too. */
export function requireRendererBuild(): void {
  if (!existsSync(path.join(RENDERER_DIR, 'index.html'))) {
    throw new Error(`The renderer is not built (${RENDERER_DIR}/index.html is missing): run \`npm run build:renderer\` first.`);
  }
}

/** `extraArgs` e.g. `--host-resolver-rules=…` to give a test server a foreign name. */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install it with \`apt-get install -y chromium\` (.ci/run does).`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}
