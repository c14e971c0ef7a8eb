/**
 * Whether a live pid's process names the worker: its command line contains the worker's uuid (the manager
 * and the Python CLI both start workers with `worker --uuid <uuid> start`). Linux reads
 * `/proc/<pid>/cmdline`; a platform without a reader answers `undefined` (cannot tell), and the uuid probe
 * alone decides. Another platform's reader (e.g. `ps -o args=` on macOS, WMI on Windows) plugs into
 * `COMMAND_LINE_READERS`.
 */
import { readFileSync } from 'node:fs';

type CommandLineReader = (pid: number) => string | undefined;

function linuxCommandLine(pid: number): string | undefined {
  try {
    // NUL-separated arguments; an empty file is a zombie or a kernel thread.
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ');
  } catch {
    return undefined;
  }
}

const COMMAND_LINE_READERS: Partial<Record<NodeJS.Platform, CommandLineReader>> = { linux: linuxCommandLine };

/** True: it names the worker; false: it does not; undefined: this platform cannot tell (or the process went). */
export function commandLineNames(pid: number, uuid: string, platform: NodeJS.Platform = process.platform): boolean | undefined {
  const reader = COMMAND_LINE_READERS[platform];
  if (reader === undefined) return undefined;
  const line = reader(pid);
  if (line === undefined) return undefined;
  return line.split(' ').includes(uuid);
}
