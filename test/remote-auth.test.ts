/**
 * Token authentication for a manager bound beyond loopback (src-main/core/hub/remote-auth.ts), with a real
 * non-loopback peer: the clients run in a network namespace joined to the host by a veth pair
 * (test/helpers/netns.ts). Loopback binds are unchanged (the protocol tests run on 127.0.0.1 without any token).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authSettings, isLoopbackPeer, readToken, requestToken, TOKEN_FILE } from '../src-main/core/hub/remote-auth.js';
import { tokenProtocols } from '../src-shared/token-protocol.js';
import { assertCliBuilt, cliEnv, fnwm, lines, show } from './helpers/cli.js';
import { createWorker, makeTempDir, startTestManager, type TestManager } from './helpers/manager.js';
import { canMakeNamespace, makePeerNamespace, type PeerNamespace } from './helpers/netns.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');

describe('token helpers', () => {
  it('reads the token from the header, a subprotocol or the query; knows loopback peers', () => {
    expect(requestToken({ headers: { authorization: 'Bearer abc' }, url: '/' })).toBe('abc');
    expect(requestToken({ headers: { 'sec-websocket-protocol': tokenProtocols('xyz').join(', ') }, url: '/' })).toBe('xyz');
    expect(requestToken({ headers: {}, url: '/?token=q1' })).toBe('q1');
    expect(requestToken({ headers: { authorization: 'Basic abc' }, url: '/' })).toBeUndefined();
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopbackPeer(address), address).toBe(true);
    for (const address of ['10.0.0.1', '::ffff:10.0.0.1', '0.0.0.0', '::', undefined]) expect(isLoopbackPeer(address), String(address)).toBe(false);
  });

  it('makes the token once, 0600, in the config dir; refuses a short one; config and flags choose the file', async () => {
    const dir = await makeTempDir('fnwm-token-');
    const file = path.join(dir, TOKEN_FILE);
    expect(await readToken(file, { create: false })).toBeUndefined();
    const token = (await readToken(file, { create: true }))!;
    expect(token).toMatch(/^[\w-]{43}$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readToken(file, { create: true })).toBe(token);
    await writeFile(file, 'short\n');
    await expect(readToken(file, { create: true })).rejects.toThrow('at least 16 characters');
    expect(authSettings({ configDir: dir, raw: {} })).toEqual({ enabled: true, tokenFile: file });
    expect(authSettings({ configDir: dir, raw: { worker_manager: { auth: false, token_file: 'sub/t' } } })).toEqual({ enabled: false, tokenFile: path.join(dir, 'sub/t') });
    expect(authSettings({ configDir: dir, raw: {} }, { auth: false, tokenFile: '/etc/x' })).toEqual({ enabled: false, tokenFile: '/etc/x' });
  });
});

describe.runIf(canMakeNamespace)('a manager bound to 0.0.0.0, reached from a real non-loopback peer', () => {
  let peer: PeerNamespace;
  let manager: TestManager;
  let token: string;
  let url: string;

  beforeAll(async () => {
    peer = await makePeerNamespace();
    const dir = await makeTempDir('fnwm-auth-');
    // The address other machines use must be an accepted Host name (the Host check stays).
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ worker_manager: { allowed_hosts: [peer.hostIp] } }));
    manager = await startTestManager({ dir, host: '0.0.0.0' });
    token = (await readFile(path.join(dir, TOKEN_FILE), 'utf8')).trim();
    url = `ws://${peer.hostIp}:${manager.service.port}/`;
  });

  afterAll(async () => {
    await manager?.close();
    await peer?.remove();
  });

  /** One upgrade from inside the namespace: the status it was refused with, or the identify reply. */
  async function upgradeFromPeer(target: string, options: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<{ status?: number; identify?: unknown; protocol?: string }> {
    const script = `
      import WebSocket from 'ws';
      const [url, protocols, headers] = process.argv.slice(1).map((a) => JSON.parse(a));
      const ws = new WebSocket(url, protocols, { headers, handshakeTimeout: 5000 });
      ws.on('unexpected-response', (_req, res) => { console.log(JSON.stringify({ status: res.statusCode })); process.exit(0); });
      ws.on('open', () => ws.send('identify'));
      ws.on('message', (data) => { console.log(JSON.stringify({ identify: JSON.parse(String(data)), protocol: ws.protocol })); ws.close(); });
      ws.on('error', (err) => { console.error(err.message); process.exit(2); });
    `;
    // From the repo root, so `ws` resolves from its node_modules.
    const [command, ...prefix] = peer.exec as [string, ...string[]];
    const args = [...prefix, process.execPath, '--input-type=module', '-e', script, JSON.stringify(target), JSON.stringify(options.protocols ?? []), JSON.stringify(options.headers ?? {})];
    const { stdout } = await run(command, args, { cwd: root, timeout: 20_000 });
    return JSON.parse(stdout.trim()) as { status?: number; identify?: unknown; protocol?: string };
  }

  it('without a token, with a wrong one: 401 and nothing runs; with the right one (header, subprotocol, query): served', async () => {
    expect(await upgradeFromPeer(url)).toEqual({ status: 401 });
    expect(await upgradeFromPeer(url, { headers: { Authorization: 'Bearer wrong-token-wrong-token' } })).toEqual({ status: 401 });
    expect(await upgradeFromPeer(url, { protocols: tokenProtocols(`${token}x`) })).toEqual({ status: 401 });
    expect(manager.logs.some((line) => line.includes(`Refused WebSocket upgrade from ${peer.peerIp}: no valid token`))).toBe(true);

    expect((await upgradeFromPeer(url, { headers: { Authorization: `Bearer ${token}` } })).identify).toMatchObject({ class: 'WorkerManager' });
    // The browser way: the plain protocol is chosen, so the token is never echoed.
    expect(await upgradeFromPeer(url, { protocols: tokenProtocols(token) })).toMatchObject({ protocol: 'fnwm', identify: { class: 'WorkerManager' } });
    expect((await upgradeFromPeer(`${url}?token=${token}`)).identify).toMatchObject({ class: 'WorkerManager' });
    // Host and Origin checks stay: a right token from a foreign page is still refused.
    expect(await upgradeFromPeer(url, { headers: { Authorization: `Bearer ${token}`, Origin: 'https://evil.example' } })).toEqual({ status: 403 });
  });

  it('from 127.0.0.1 no token is needed', async () => {
    const client = await manager.connect();
    client.send('identify');
    expect(await client.next()).toMatchObject({ kind: 'identify' });
  });

  it('fnwm from the other machine: refused with advice without the token, works with --token and with the token file', async () => {
    assertCliBuilt();
    const clientDir = await makeTempDir('fnwm-auth-client-');
    const env = cliEnv(manager.ports);
    const client = await manager.connect();
    await createWorker(client, manager.workersDir, 'remote-visible');
    const prefix = peer.exec;
    const args = ['--dir', clientDir, '--host', peer.hostIp, '--port', String(manager.service.port), 'worker', 'list'];

    const refused = await fnwm(args, env, 25_000, prefix);
    expect(refused.exitCode, show(refused)).toBe(1);
    expect(refused.stderr).toContain('needs its token');
    expect(refused.stderr).toContain('--token');
    // It did not start a manager of its own in the client's config dir.
    expect(existsSync(path.join(clientDir, 'logs', 'fnwm-manager.log'))).toBe(false);

    const withFlag = await fnwm(['--token', token, ...args], env, 25_000, prefix);
    expect(withFlag.exitCode, show(withFlag)).toBe(0);
    expect(lines(withFlag.stdout).some((line) => line.endsWith('\tremote-visible'))).toBe(true);

    await writeFile(path.join(clientDir, TOKEN_FILE), `${token}\n`, { mode: 0o600 });
    const withFile = await fnwm(args, env, 25_000, prefix);
    expect(withFile.exitCode, show(withFile)).toBe(0);
    expect(lines(withFile.stdout).some((line) => line.endsWith('\tremote-visible'))).toBe(true);
  });
});

describe('--no-auth', () => {
  it('turns the token off with a loud warning; loopback binds make no token file', async () => {
    const open = await startTestManager({ host: '0.0.0.0', auth: { auth: false } });
    try {
      expect(open.logs.some((line) => line.includes('AUTHENTICATION IS OFF'))).toBe(true);
      expect(existsSync(path.join(open.dir, TOKEN_FILE))).toBe(false);
    } finally {
      await open.close();
    }
    const local = await startTestManager();
    try {
      expect(existsSync(path.join(local.dir, TOKEN_FILE))).toBe(false);
      expect(local.logs.some((line) => line.includes('token'))).toBe(false);
    } finally {
      await local.close();
    }
  });
});
