/**
 * Ending a worker's whole process tree, and waiting for a pid to go. Workers are spawned as process-group
 * leaders (detached), so on POSIX a signal to `-pid` reaches everything they started; Windows has no
 * groups, so `taskkill /T /F` walks the tree.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { loadExeca } from '../python-env/execa-lazy.js';
import { isPidAlive } from './liveness.js';

/** Polls until `gone()`; true if that happened within the time. */
async function waitUntil(gone: () => boolean, timeoutMs: number, pollMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gone()) return true;
    await sleep(pollMs);
  }
  return gone();
}

/** Polls until `pid` is gone; true if it went within the time. */
function waitForPidExit(pid: number, timeoutMs: number, pollMs = 25): Promise<boolean> {
  return waitUntil(() => !isPidAlive(pid), timeoutMs, pollMs);
}

/** Whether process group `pgid` has a member left (it outlives its leader while the leader's children run). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function signalTree(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Not a group leader (a worker the Python CLI started): the process alone.
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * SIGTERM to the tree, SIGKILL after `graceMs` if it is still there; resolves true once the pid is gone.
 * POSIX: for a group leader the whole group is waited for and killed, so a child that ignores SIGTERM
 * does not survive its leader's exit. Windows: one forced `taskkill /T`, since a console-less worker
 * cannot receive a polite signal.
 */
export async function terminateTree(pid: number, graceMs: number): Promise<boolean> {
  if (process.platform === 'win32') {
    if (!isPidAlive(pid)) return true;
    const execa = await loadExeca();
    await execa('taskkill', ['/PID', String(pid), '/T', '/F'], { reject: false, windowsHide: true });
    return waitForPidExit(pid, 2_000);
  }
  // A group with the pid as its id is that pid's own; without one it is no leader (a worker the Python CLI
  // started): the pid alone.
  const gone = groupAlive(pid) ? () => !groupAlive(pid) : () => !isPidAlive(pid);
  if (gone()) return true;
  signalTree(pid, 'SIGTERM');
  if (await waitUntil(gone, graceMs)) return true;
  signalTree(pid, 'SIGKILL');
  // Killed orphans stay zombies (group members) until init reaps them: success is the pid's exit.
  await waitUntil(gone, 2_000);
  return !isPidAlive(pid);
}
