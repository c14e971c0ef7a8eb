// `npm start` after the build: the desktop app when Electron can run here, else the headless manager.
// Electron is found without loading the `electron` module, which would try to download its binary from
// wherever it is imported; here the download is attempted once, and only where a window could be shown.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const electronPkg = path.join(root, 'node_modules', 'electron');

function installedBinary(env, platform) {
  if (env.ELECTRON_OVERRIDE_DIST_PATH) {
    const exe = platform === 'win32' ? 'electron.exe' : platform === 'darwin' ? 'Electron.app/Contents/MacOS/Electron' : 'electron';
    return path.join(env.ELECTRON_OVERRIDE_DIST_PATH, exe);
  }
  const pathFile = path.join(electronPkg, 'path.txt');
  return existsSync(pathFile) ? path.join(electronPkg, 'dist', readFileSync(pathFile, 'utf8').trim()) : undefined;
}

/** The Electron binary to run, or why there is none. */
function electronLaunch(env, platform) {
  if (platform === 'linux' && !env.DISPLAY && !env.WAYLAND_DISPLAY) return { reason: 'there is no display (DISPLAY/WAYLAND_DISPLAY unset)' };
  let binary = installedBinary(env, platform);
  if (binary === undefined) {
    // electron >= 42 has no postinstall: its binary comes on first use.
    spawnSync(process.execPath, [path.join(electronPkg, 'install.js')], { stdio: 'inherit', timeout: 600_000 });
    binary = installedBinary(env, platform);
  }
  return binary !== undefined && existsSync(binary) ? { binary } : { reason: 'the Electron binary is not installed and could not be downloaded' };
}

function run(command, args) {
  const child = spawn(command, args, { stdio: 'inherit', cwd: root });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

const args = process.argv.slice(2);
const launch = electronLaunch(process.env, process.platform);
if (launch.binary) {
  run(launch.binary, [root, ...args]);
} else {
  process.stderr.write(`npm start: not starting the desktop app because ${launch.reason}; running the headless manager instead (dashboard on its port).\n`);
  run(process.execPath, [path.join(root, 'dist/main/cli.js'), 'startworkermanager', ...args]);
}
