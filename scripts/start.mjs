// `npm start` after the build: the desktop app when Electron can run here, else the headless manager.
// Electron is detected without loading the `electron` module (that would try to download the binary).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The Electron binary that would run, or why none can. */
function electronLaunch(projectRoot, env, platform) {
  const pkg = path.join(projectRoot, 'node_modules', 'electron');
  const pathFile = path.join(pkg, 'path.txt');
  const binary = env.ELECTRON_OVERRIDE_DIST_PATH
    ? path.join(env.ELECTRON_OVERRIDE_DIST_PATH, platform === 'win32' ? 'electron.exe' : platform === 'darwin' ? 'Electron.app/Contents/MacOS/Electron' : 'electron')
    : existsSync(pathFile)
      ? path.join(pkg, 'dist', readFileSync(pathFile, 'utf8').trim())
      : undefined;
  if (binary === undefined || !existsSync(binary)) return { reason: 'the Electron binary is not installed (npx install-electron fetches it)' };
  if (platform === 'linux' && !env.DISPLAY && !env.WAYLAND_DISPLAY) return { reason: 'there is no display (DISPLAY/WAYLAND_DISPLAY unset)' };
  return { binary };
}

function run(command, args) {
  const child = spawn(command, args, { stdio: 'inherit', cwd: root });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const launch = electronLaunch(root, process.env, process.platform);
  if (launch.binary) {
    run(launch.binary, [root, ...args]);
  } else {
    process.stderr.write(`npm start: not starting the desktop app because ${launch.reason}; running the headless manager instead (dashboard on its port).\n`);
    run(process.execPath, [path.join(root, 'dist/main/cli.js'), 'startworkermanager', ...args]);
  }
}
