/**
 * After the whole run, no worker (stand-in `-m funcnodes`) or manager (`dist/main/cli.js`) that this run
 * started may still be alive. Processes are recognised by the run's marker in their environment, which
 * every child inherits from the test processes (vitest.config.ts sets it). Linux only: it reads /proc.
 */
import { readdirSync, readFileSync } from 'node:fs';

export const RUN_MARKER = 'FNWM_TEST_RUN';

function read(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

/** Live processes of this run that a test should have ended, as `pid command line`. */
export function leftoverProcesses(runId: string): string[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const pid of pids) {
    const cmdline = read(`/proc/${pid}/cmdline`).split('\0').join(' ').trim();
    if (!/ -m funcnodes |dist\/main\/cli\.js/.test(` ${cmdline} `)) continue;
    if (/^Z/m.test(read(`/proc/${pid}/stat`).split(') ')[1] ?? '')) continue;
    if (read(`/proc/${pid}/environ`).split('\0').includes(`${RUN_MARKER}=${runId}`)) found.push(`${pid} ${cmdline}`);
  }
  return found;
}

/** Waits briefly for processes that are just exiting, then returns what is left (and kills it). */
export async function reapLeftovers(runId: string, graceMs = 3000): Promise<string[]> {
  const deadline = Date.now() + graceMs;
  let left = leftoverProcesses(runId);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = leftoverProcesses(runId);
  }
  for (const line of left) {
    try {
      process.kill(Number(line.split(' ')[0]), 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  return left;
}
