/**
 * The packaging check: electron-builder `--dir` with a stand-in Electron distribution (the real one cannot
 * be downloaded here) packs the app, and its app.asar holds the built main, preload and renderer, the
 * icons, and of node_modules only the production dependencies. Needs `npm run build` first.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { listPackage } from '@electron/asar';
import { afterAll, describe, expect, it } from 'vitest';
import pkg from '../package.json' with { type: 'json' };
import { makeTempDir } from './helpers/manager.js';

const root = path.resolve(import.meta.dirname, '..');
let out: string | undefined;
afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

/** What electron-builder needs of an unpacked Electron to pack around it. */
async function standInElectron(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'resources'), { recursive: true });
  await writeFile(path.join(dir, 'electron'), '#!/bin/sh\necho "stand-in Electron: cannot run" >&2\nexit 1\n');
  await chmod(path.join(dir, 'electron'), 0o755);
  await writeFile(path.join(dir, 'version'), `v${pkg.devDependencies.electron}`);
  await writeFile(path.join(dir, 'LICENSE'), 'stand-in');
  await writeFile(path.join(dir, 'LICENSES.chromium.html'), 'stand-in');
}

/** The packages `npm ci --omit=dev` would install, from the lockfile. */
async function productionPackages(): Promise<Set<string>> {
  const lock = JSON.parse(await readFile(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
  const names = new Set<string>();
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (key === '' || entry.dev === true) continue;
    names.add(key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length));
  }
  return names;
}

describe.runIf(process.platform === 'linux')('packaging', () => {
  it('electron-builder --dir packs main, preload, renderer, icons and only the runtime dependencies', async () => {
    expect(existsSync(path.join(root, 'dist/main/index.js')), 'run `npm run build` first').toBe(true);
    out = await makeTempDir('fnwm-pack-');
    const electronDist = path.join(out, 'electron-dist');
    await standInElectron(electronDist);
    // The benchmark's build output lands in dist/ too; it must stay out of the app.
    const benchProbe = path.join(root, 'dist/bench/packaging-probe.js');
    await mkdir(path.dirname(benchProbe), { recursive: true });
    await writeFile(benchProbe, '// must not be packed\n');
    const started = Date.now();
    try {
      await promisify(execFile)(
        path.join(root, 'node_modules/.bin/electron-builder'),
        ['--dir', '--linux', `-c.electronDist=${electronDist}`, `-c.directories.output=${path.join(out, 'release')}`],
        { cwd: root, env: { ...process.env, CI: 'true' }, timeout: 120_000 },
      );
    } finally {
      await rm(benchProbe);
      await rmdir(path.dirname(benchProbe)).catch(() => undefined);
    }
    console.log(`electron-builder --dir took ${Date.now() - started} ms`);

    const unpacked = path.join(out, 'release', 'linux-unpacked');
    expect(existsSync(path.join(unpacked, 'funcnodes-workermanager'))).toBe(true);
    const files = listPackage(path.join(unpacked, 'resources', 'app.asar'), { isPack: false }).map((f) => f.replaceAll(path.sep, '/'));
    const has = (file: string) => expect(files, file).toContain(file);
    for (const file of ['/package.json', '/dist/main/index.js', '/dist/main/cli.js', '/dist/preload/index.cjs', '/dist/renderer/index.html', '/assets/icon.png']) has(file);
    for (const state of ['running', 'busy', 'stopped', 'error']) {
      for (const variant of ['.png', '@2x.png', '.ico', 'Template.png', 'Template@2x.png']) has(`/assets/tray/tray-${state}${variant}`);
    }
    expect(files.some((f) => f.startsWith('/dist/renderer/assets/') && f.endsWith('.js'))).toBe(true);
    // Nothing that is not run: no sources, tests, benchmark, maps, SVG sources.
    expect(files.filter((f) => /^\/(src-main|src-preload|src-renderer|test|bench|scripts|dist\/bench|assets\/src)\//.test(f) || f.endsWith('.map'))).toEqual([]);

    const modules = new Set(files.flatMap((f) => /^\/node_modules\/((?:@[^/]+\/)?[^/]+)\/package\.json$/.exec(f)?.[1] ?? []));
    console.log(`node_modules in app.asar: ${[...modules].sort().join(' ')}`);
    expect(modules).toContain('ws');
    expect(modules).toContain('execa');
    const production = await productionPackages();
    expect([...modules].filter((name) => !production.has(name))).toEqual([]);
    for (const dev of Object.keys(pkg.devDependencies)) expect(modules).not.toContain(dev);
  }, 120_000);
});
