/**
 * A real non-loopback peer on this machine: a network namespace joined to the host by a veth pair, each end
 * with an address of a random 10.x.y.0/30 (parallel runs pick different ones). Traffic goes only between
 * the two ends. Needs root and `ip` (iproute2); `remove` always deletes both.
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Root, Linux and `ip`: a namespace can be made. */
export const canMakeNamespace = process.platform === 'linux' && process.getuid?.() === 0 && existsSync('/usr/sbin/ip');

export interface PeerNamespace {
  name: string;
  /** The host's end: a non-loopback address of this machine. */
  hostIp: string;
  /** The namespace's end: the peer's address as the host sees it. */
  peerIp: string;
  /** Prefix that runs a command inside the namespace. */
  exec: string[];
  remove(): Promise<void>;
}

export async function makePeerNamespace(): Promise<PeerNamespace> {
  const id = `${process.pid % 10_000}${randomInt(100)}`;
  const name = `fnwm-ns-${id}`;
  const hostLink = `fnwa${id}`;
  const nsLink = `fnwb${id}`;
  const subnet = `10.${randomInt(200, 250)}.${randomInt(256)}`;
  const ip = (...args: string[]) => run('ip', args);
  const remove = async () => {
    // Deleting our end removes the pair; deleting the namespace removes anything left in it.
    await ip('link', 'del', hostLink).catch(() => undefined);
    await ip('netns', 'del', name).catch(() => undefined);
  };
  try {
    await ip('netns', 'add', name);
    await ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', nsLink);
    await ip('link', 'set', nsLink, 'netns', name);
    await ip('addr', 'add', `${subnet}.1/30`, 'dev', hostLink);
    await ip('link', 'set', hostLink, 'up');
    await ip('netns', 'exec', name, 'ip', 'addr', 'add', `${subnet}.2/30`, 'dev', nsLink);
    await ip('netns', 'exec', name, 'ip', 'link', 'set', nsLink, 'up');
  } catch (err) {
    await remove();
    throw err;
  }
  return { name, hostIp: `${subnet}.1`, peerIp: `${subnet}.2`, exec: ['ip', 'netns', 'exec', name], remove };
}
