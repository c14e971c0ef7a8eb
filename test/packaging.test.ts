/**
 * The packaging check: `scripts/pack-here.mjs` (npm run dist:here) runs electron-builder with a stand-in
 * Electron distribution (the real one cannot be downloaded here): the unpacked app's app.asar holds the
 * built main, preload and renderer, the icons and no node_modules (every package is bundled into
 * dist/main), its code imports only Electron and Node's built-ins, and the preload only `electron`. The
 * tar.gz target needs Debian's 7za (p7zip-full); without it that test is skipped and says so. Needs
 * `npm run build` first.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
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

const HAS_7ZA = existsSync(process.env.ELECTRON_BUILDER_7ZIP_PATH || '/usr/bin/7za');
if (!HAS_7ZA) console.warn('packaging: /usr/bin/7za is missing (apt-get install -y p7zip-full): the tar.gz check is skipped');

/** Bare module names a bundle imports or requires. */
function importedModules(code: string): Set<string> {
  const names = new Set<string>();
  for (const [, name] of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']([a-z@][\w@/:.-]*)["']/g)) names.add(name ?? '');
  return names;
}

describe.runIf(process.platform === 'linux')('packaging', () => {
  it('dist:here packs main, preload, renderer and icons, and no node_modules; the code imports only electron and built-ins', async () => {
    expect(existsSync(path.join(root, 'dist/main/index.js')), 'run `npm run build` first').toBe(true);
    out = await makeTempDir('fnwm-pack-');
    // The benchmark's build output lands in dist/ too; it must stay out of the app.
    const benchProbe = path.join(root, 'dist/bench/packaging-probe.js');
    await mkdir(path.dirname(benchProbe), { recursive: true });
    await writeFile(benchProbe, '// must not be packed\n');
    const started = Date.now();
    try {
      await promisify(execFile)(process.execPath, [path.join(root, 'scripts/pack-here.mjs'), '--out', path.join(out, 'release'), 'dir', ...(HAS_7ZA ? ['tar.gz'] : [])], {
        cwd: root,
        timeout: 120_000,
      });
    } finally {
      await rm(benchProbe);
      await rmdir(path.dirname(benchProbe)).catch(() => undefined);
    }
    console.log(`dist:here took ${Date.now() - started} ms`);

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
    const mainFiles = files.filter((f) => /^\/dist\/main\/.*\.js$/.test(f));
    const bare = new Set<string>();
    for (const file of mainFiles) for (const name of importedModules(extractFile(asar, file.slice(1)).toString('utf8'))) bare.add(name);
    expect(bare).toContain('electron');
    const allowed = new Set(['electron', ...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'bufferutil', 'utf-8-validate']);
    expect([...bare].filter((name) => !allowed.has(name))).toEqual([]);
    // A sandboxed preload can require nothing but electron.
    expect([...importedModules(extractFile(asar, 'dist/preload/index.cjs').toString('utf8'))]).toEqual(['electron']);
  }, 120_000);

  it.runIf(HAS_7ZA)('the tar.gz holds the unpacked app: the launcher, app.asar and the stand-in Electron files', async () => {
    expect(out, 'the dir test packs first').toBeDefined();
    const archive = path.join(out!, 'release', `funcnodes-workermanager-${pkg.version}.tar.gz`);
    expect(existsSync(archive)).toBe(true);
    const { stdout } = await promisify(execFile)('tar', ['-tzf', archive]);
    const entries = stdout.split('\n').filter(Boolean);
    const top = `funcnodes-workermanager-${pkg.version}`;
    for (const entry of ['funcnodes-workermanager', 'resources/app.asar', 'version']) expect(entries, entry).toContain(`${top}/${entry}`);
    expect(entries.every((e) => e.startsWith(`${top}/`))).toBe(true);
  });
});
