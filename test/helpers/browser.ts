/**
 * Headless Chromium for the e2e tests, driven by playwright-core, and the check that the renderer has been
 * built. Nothing is downloaded at run time; the browser is the first of:
 * 1. `CHROMIUM_PATH` (an error if it names no file);
 * 2. a system Chromium or Chrome at its usual path (`/usr/bin/chromium` first);
 * 3. what playwright-core finds itself: the Chrome or Edge channels, or a browser `npx playwright install` put
 *    in its cache;
 * 4. on Linux x64, the Chromium shipped inside the pinned devDependency `@sparticuz/chromium`, unpacked once
 *    from the package's own files into `node_modules/.cache/`.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress } from 'node:zlib';
import { chromium, type Browser, type LaunchOptions } from 'playwright-core';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const RENDERER_DIR = path.join(ROOT, 'dist', 'renderer');

// The background-networking flags keep Chromium from calling Google's hosts on a machine with a closed network.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const SYSTEM_PATHS: Partial<Record<NodeJS.Platform, string[]>> = {
  linux: ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome-stable', '/usr/bin/google-chrome', '/snap/bin/chromium'],
  darwin: ['/Applications/Chromium.app/Contents/MacOS/Chromium'],
};
/** playwright-core knows where these are installed on each OS (Chrome also on macOS and Windows). */
const CHANNELS = ['chrome', 'msedge'];

const NO_BROWSER =
  'No Chromium for the e2e tests: install Chromium or Google Chrome (Debian: `apt-get install chromium`), or set CHROMIUM_PATH to one (the Chromium packaged in @sparticuz/chromium runs on Linux x64 only).';

/** `npm test` builds first; a lone run of the e2e tests needs the build too. */
export function requireRendererBuild(): void {
  if (!existsSync(path.join(RENDERER_DIR, 'index.html'))) {
    throw new Error(`The renderer is not built (${RENDERER_DIR}/index.html is missing): run \`npm run build:renderer\` first.`);
  }
}

/** `extraArgs` e.g. `--host-resolver-rules=…` to give a test server a foreign name. */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  const options: LaunchOptions = { headless: true, args: [...FLAGS, ...extraArgs] };
  const system = systemChromium();
  if (system !== undefined) return chromium.launch({ ...options, executablePath: system });
  for (const channel of CHANNELS) {
    try {
      return await chromium.launch({ ...options, channel });
    } catch (err) {
      // Only "not installed" moves on; a browser that is there but fails to start is the failure to report.
      if (!String(err).includes(`distribution '${channel}' is not found`)) throw err;
    }
  }
  if (existsSync(chromium.executablePath())) return chromium.launch(options);
  return chromium.launch({ ...options, executablePath: await packagedChromium() });
}

function systemChromium(): string | undefined {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) {
    if (!existsSync(configured)) throw new Error(`CHROMIUM_PATH=${configured} does not exist.`);
    return configured;
  }
  return SYSTEM_PATHS[process.platform]?.find((p) => existsSync(p));
}

/**
 * The package's own `executablePath()` unpacks to a fixed `/tmp/chromium` and trusts any file there, even one
 * half-written by a concurrent run; this unpacks the same `bin/chromium.br` (the only file a headless,
 * GPU-less run needs) to a path named for the pinned version, and renames it into place only when complete.
 */
async function packagedChromium(): Promise<string> {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(NO_BROWSER);
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = require.resolve('@sparticuz/chromium');
  } catch {
    throw new Error(`${NO_BROWSER} @sparticuz/chromium is not installed: run \`npm ci\`.`);
  }
  const packageDir = path.resolve(path.dirname(entry), '..', '..');
  const { version } = require(path.join(packageDir, 'package.json')) as { version: string };
  const executable = path.join(ROOT, 'node_modules', '.cache', `sparticuz-chromium-${version}`, 'chromium');
  if (existsSync(executable)) return executable;
  await mkdir(path.dirname(executable), { recursive: true });
  const partial = `${executable}.${process.pid}.partial`;
  try {
    await pipeline(createReadStream(path.join(packageDir, 'bin', 'chromium.br')), createBrotliDecompress(), createWriteStream(partial, { mode: 0o755 }));
    await rename(partial, executable);
  } finally {
    await rm(partial, { force: true });
  }
  return executable;
}
