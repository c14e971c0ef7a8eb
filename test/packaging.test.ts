/**
 * The packaging check: electron-builder `--dir` with a stand-in Electron distribution (the real one cannot
 * be downloaded here) packs the app, and its app.asar holds the built main, preload and renderer, the
 * icons and no node_modules (every package is bundled into dist/main). Needs `npm run build` first.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { chmod, mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { extractFile, listPackage } from '@electron/asar';
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

describe.runIf(process.platform === 'linux')('packaging', () => {
  it('electron-builder --dir packs main, preload, renderer and icons, and no node_modules', async () => {
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
    const asar = path.join(unpacked, 'resources', 'app.asar');
    const files = listPackage(asar, { isPack: false }).map((f) => f.replaceAll(path.sep, '/'));
    const has = (file: string) => expect(files, file).toContain(file);
    for (const file of ['/package.json', '/dist/main/index.js', '/dist/main/cli.js', '/dist/preload/index.cjs', '/dist/renderer/index.html', '/assets/icon.png']) has(file);
    for (const state of ['running', 'busy', 'stopped', 'error']) {
      for (const variant of ['.png', '@2x.png', '.ico', 'Template.png', 'Template@2x.png']) has(`/assets/tray/tray-${state}${variant}`);
    }
    expect(files.some((f) => f.startsWith('/dist/renderer/assets/') && f.endsWith('.js'))).toBe(true);
    // Nothing that is not run: no sources, tests, benchmark, maps, SVG sources.
    expect(files.filter((f) => /^\/(src-main|src-preload|src-renderer|test|bench|scripts|dist\/bench|assets\/src)\//.test(f) || f.endsWith('.map'))).toEqual([]);

    // ws, execa and its dependencies are bundled into dist/main (vite.main.config.ts): the app carries no
    // node_modules, and its code may import nothing but Node's built-ins, electron and its own chunks.
    expect(files.filter((f) => f.startsWith('/node_modules/'))).toEqual([]);
    const mainFiles = files.filter((f) => /^\/dist\/(main|preload)\/.*\.c?js$/.test(f));
    const bare = new Set<string>();
    for (const file of mainFiles) {
      const code = extractFile(asar, file.slice(1)).toString('utf8');
      for (const [, name] of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']([a-z@][\w@/:.-]*)["']/g)) bare.add(name ?? '');
    }
    const allowed = new Set(['electron', ...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'bufferutil', 'utf-8-validate']);
    expect([...bare].filter((name) => !allowed.has(name))).toEqual([]);
  }, 120_000);
});
