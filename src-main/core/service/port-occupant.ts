/**
 * Who holds the manager's port when binding fails: another Workermanager (it answers `ping` + `identify`),
 * else some other program, named where the OS tells us (Linux: the listening socket's inode in
 * /proc/net/tcp{,6}, then the process whose fd points at it; only our own user's processes are readable).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { probeManager, UnauthorizedError } from '../hub/client.js';
import { loadSettings, managerUrl, type ConfigOverrides } from '../registry/config.js';
import type { IdentifyReply } from '../../../src-shared/protocol.js';

export interface PortProcess {
  pid: number;
  name: string;
}

export type PortOccupant =
  | { kind: 'workermanager'; url: string; identity: IdentifyReply }
  | { kind: 'other'; port: number; process?: PortProcess };

export interface OccupantDeps {
  probe(url: string): Promise<IdentifyReply | undefined>;
  findProcess(port: number): Promise<PortProcess | undefined>;
}

/** A manager that refuses the probe for want of its token (remote-auth.ts) is still a Workermanager. */
export const NEEDS_TOKEN_PY = 'unknown: it needs its access token';

async function probeOrTokenless(url: string): Promise<IdentifyReply | undefined> {
  try {
    return await probeManager(url);
  } catch (err) {
    if (err instanceof UnauthorizedError) return { class: 'WorkerManager', py: NEEDS_TOKEN_PY };
    throw err;
  }
}

const defaultDeps: OccupantDeps = { probe: probeOrTokenless, findProcess: (port) => listeningProcess(port) };

export async function identifyPortOccupant(url: string, port: number, deps: OccupantDeps = defaultDeps): Promise<PortOccupant> {
  const identity = await deps.probe(url);
  if (identity) return { kind: 'workermanager', url, identity };
  const found = await deps.findProcess(port);
  return found ? { kind: 'other', port, process: found } : { kind: 'other', port };
}

/** One sentence for the tray, the dialog and the log. */
export function describeOccupant(occupant: PortOccupant): string {
  if (occupant.kind === 'workermanager') return `Another Workermanager already runs on ${occupant.url} (its Python: ${occupant.identity.py})`;
  const holder = occupant.process ? `${occupant.process.name} (pid ${occupant.process.pid})` : 'another program (the system does not say which)';
  return `Port ${occupant.port} is held by ${holder}`;
}

/**
 * After a bind failed with EADDRINUSE: who holds the port. Pass the overrides and env the bind used, so
 * the port asked about (config.json plus those overrides) is the one that failed.
 */
export async function portTakenBy(overrides: ConfigOverrides, env: Record<string, string | undefined>): Promise<{ occupant: PortOccupant; message: string }> {
  const settings = await loadSettings(overrides, env);
  const occupant = await identifyPortOccupant(managerUrl(settings), settings.port);
  return { occupant, message: describeOccupant(occupant) };
}

/** TCP state 0A is LISTEN in /proc/net/tcp. */
const LISTEN = '0A';

export async function listeningProcess(port: number, procRoot = '/proc'): Promise<PortProcess | undefined> {
  if (process.platform !== 'linux') return undefined;
  const inodes = new Set<string>();
  for (const table of ['net/tcp', 'net/tcp6']) {
    const text = await readFile(`${procRoot}/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const inode = fields[9];
      if (local === undefined || inode === undefined || fields[3] !== LISTEN) continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port && inode !== '0') inodes.add(inode);
    }
  }
  if (inodes.size === 0) return undefined;
  const pids = (await readdir(procRoot).catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    const fds = await readdir(`${procRoot}/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) {
        const name = (await readFile(`${procRoot}/${pid}/comm`, 'utf8').catch(() => '?')).trim();
        return { pid: Number(pid), name };
      }
    }
  }
  return undefined;
}
