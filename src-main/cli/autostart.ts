/**
 * Finds the Workermanager for a config dir, starting one headless manager in the background when nothing
 * answers ping + identify. A lock file makes concurrent CLI calls start one manager, not several (the
 * original's auto-start can start many, spec §7 and §11.21).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { probeManager } from '../core/hub/client.js';
import { managerUrl, type ManagerSettings } from '../core/registry/config.js';
import type { IdentifyReply } from '../../src-shared/protocol.js';

export class AutostartError extends Error {}

export interface AutostartOptions {
  /** The script that runs `startworkermanager` (this CLI). */
  cliScript: string;
  timeoutMs?: number;
}

/** Returns the answering manager's URL and identity, starting one if needed. */
export async function ensureManager(settings: ManagerSettings, options: AutostartOptions): Promise<{ url: string; identity: IdentifyReply; started: boolean }> {
  const url = managerUrl(settings);
  const identity = await probeManager(url);
  if (identity) return { url, identity, started: false };

  const lock = path.join(settings.configDir, 'fnwm-autostart.lock');
  const logFile = path.join(settings.configDir, 'logs', 'fnwm-manager.log');
  const ownsLock = await takeLock(lock);
  try {
    if (ownsLock) {
      // Another CLI may have finished starting one between our probe and the lock.
      const again = await probeManager(url);
      if (again) return { url, identity: again, started: false };
      startInBackground(settings, options.cliScript, logFile);
    }
    const deadline = Date.now() + (options.timeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      const found = await probeManager(url, 1000);
      if (found) return { url, identity: found, started: ownsLock };
      await sleep(100);
    }
  } finally {
    if (ownsLock) await rm(lock, { force: true });
  }
  const tail = await readFile(logFile, 'utf8').then(
    (text) => text.trim().split('\n').slice(-3).join(' | '),
    () => '',
  );
  throw new AutostartError(`No Workermanager answers on ${url} and one started in the background did not come up${tail ? `: ${tail}` : ''} (log: ${logFile})`);
}

/** `O_EXCL` create; a lock older than 30 s is from a crashed CLI and is taken over (once). */
async function takeLock(lock: string, retry = true): Promise<boolean> {
  try {
    await writeFile(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new AutostartError(`Cannot start a Workermanager: cannot write ${lock} (${(err as Error).message})`);
    }
    const age = await stat(lock).then(
      (s) => Date.now() - s.mtimeMs,
      () => Infinity,
    );
    if (age > 30_000 && retry) {
      await rm(lock, { force: true });
      return takeLock(lock, false);
    }
    return false;
  }
}

function startInBackground(settings: ManagerSettings, cliScript: string, logFile: string): void {
  mkdirSync(path.dirname(logFile), { recursive: true });
  const out = openSync(logFile, 'a');
  try {
    const child = spawn(
      process.execPath,
      [cliScript, 'startworkermanager', '--dir', settings.configDir, '--host', settings.host, '--port', String(settings.port)],
      { detached: true, stdio: ['ignore', out, out], cwd: settings.configDir },
    );
    child.unref();
  } finally {
    closeSync(out);
  }
}
