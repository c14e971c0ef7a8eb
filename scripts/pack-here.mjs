// `npm run dist:here -- [targets…] [--out DIR]`: electron-builder for Linux on a machine that cannot download
// Electron or electron-builder's tools (toolchain.md §3). A stand-in Electron distribution (a script that
// only says it cannot run) takes the binary's place via `electronDist`, and Debian's 7za (p7zip-full) packs
// tar.gz. The result checks the packaging (files, layout, archive), it is not a runnable app. Default
// targets: dir and tar.gz. Needs `npm run build` first (dist:here does it).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(execFileSync(process.execPath, ['-p', 'JSON.stringify(require("./package.json"))'], { cwd: root, encoding: 'utf8' }));
const SEVEN_ZIP = process.env.ELECTRON_BUILDER_7ZIP_PATH || '/usr/bin/7za';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { out: { type: 'string' } } });
const targets = positionals.length > 0 ? positionals : ['dir', 'tar.gz'];
const out = path.resolve(values.out ?? path.join(root, 'release'));

if (!existsSync(path.join(root, 'dist/main/index.js'))) fail('dist/ is missing: run `npm run build` first');
if (targets.some((t) => t !== 'dir') && !existsSync(SEVEN_ZIP)) {
  fail(`${SEVEN_ZIP} is missing: install Debian's p7zip-full (apt-get install -y p7zip-full), or set ELECTRON_BUILDER_7ZIP_PATH`);
}
const unsupported = targets.filter((t) => t !== 'dir' && t !== 'tar.gz');
if (unsupported.length > 0) fail(`${unsupported.join(', ')} cannot be built here (they download their tools); build them on a desktop with network: npm run dist`);

const electronDist = mkdtempSync(path.join(tmpdir(), 'fnwm-electron-dist-'));
try {
  standInElectron(electronDist);
  execFileSync(
    path.join(root, 'node_modules/.bin/electron-builder'),
    ['--linux', ...targets, `-c.electronDist=${electronDist}`, `-c.directories.output=${out}`],
    { cwd: root, stdio: 'inherit', env: { ...process.env, CI: 'true', ELECTRON_BUILDER_7ZIP_PATH: SEVEN_ZIP } },
  );
} finally {
  rmSync(electronDist, { recursive: true, force: true });
}

/** What electron-builder needs of an unpacked Electron to pack around it. */
function standInElectron(dir) {
  mkdirSync(path.join(dir, 'resources'), { recursive: true });
  writeFileSync(path.join(dir, 'electron'), '#!/bin/sh\necho "stand-in Electron (npm run dist:here): cannot run" >&2\nexit 1\n');
  chmodSync(path.join(dir, 'electron'), 0o755);
  writeFileSync(path.join(dir, 'version'), `v${pkg.devDependencies.electron}`);
  writeFileSync(path.join(dir, 'LICENSE'), 'stand-in');
  writeFileSync(path.join(dir, 'LICENSES.chromium.html'), 'stand-in');
}

function fail(message) {
  process.stderr.write(`dist:here: ${message}\n`);
  process.exit(1);
}
