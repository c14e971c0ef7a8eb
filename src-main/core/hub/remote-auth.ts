/**
 * Token authentication for a manager bound to a non-loopback address (additive to the original, which has
 * none): a peer that is not loopback must carry the manager's token on the WebSocket upgrade, as
 * `Authorization: Bearer <token>` (programs), a `Sec-WebSocket-Protocol` value `fnwm-token.<token>` or a
 * `token` query parameter (browsers, which cannot set headers). Loopback peers never need it, so every
 * local client of the original keeps working. The token lives in a 0600 file in the config dir, made at
 * the first start that needs it (Jupyter's answer to the same problem).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { ManagerSettings } from '../registry/config.js';
import { bindAddresses, isLoopbackAddress } from './hub.js';
import type { Logger } from '../logs/log.js';
import { TOKEN_PROTOCOL_PREFIX } from '../../../src-shared/token-protocol.js';

export const TOKEN_FILE = 'manager_token';
/** A token shorter than this is refused: it could be guessed. */
const MIN_TOKEN_LENGTH = 16;

export class TokenFileError extends Error {}

export interface AuthOptions {
  /** false: `--no-auth`; default: config `worker_manager.auth` (on unless `false`). */
  auth?: boolean;
  /** `--token-file`; default: config `worker_manager.token_file`, else `manager_token` in the config dir. */
  tokenFile?: string;
}

export interface AuthSettings {
  enabled: boolean;
  tokenFile: string;
}

export function authSettings(settings: Pick<ManagerSettings, 'configDir' | 'raw'>, options: AuthOptions = {}): AuthSettings {
  const section = settings.raw.worker_manager;
  const wm = typeof section === 'object' && section !== null ? (section as Record<string, unknown>) : {};
  const configured = typeof wm.token_file === 'string' && wm.token_file !== '' ? wm.token_file : undefined;
  return {
    enabled: options.auth ?? wm.auth !== false,
    tokenFile: path.resolve(settings.configDir, options.tokenFile ?? configured ?? TOKEN_FILE),
  };
}

/** The token in `file`; with `create`, a new random one is written there (0600) when the file does not exist. */
export async function readToken(file: string, options: { create: boolean; log?: Logger }): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TokenFileError(`Cannot read the token file ${file}: ${(err as Error).message}`);
    if (!options.create) return undefined;
    try {
      await writeFile(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
      options.log?.info(`Made a new access token in ${file}`);
    } catch (writeErr) {
      // Another manager made it first: use that one.
      if ((writeErr as NodeJS.ErrnoException).code !== 'EEXIST') throw new TokenFileError(`Cannot write the token file ${file}: ${(writeErr as Error).message}`);
    }
    return readToken(file, { create: false, log: options.log });
  }
  const token = text.trim();
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new TokenFileError(`The token file ${file} must hold one token of at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }
  if (process.platform !== 'win32' && ((await stat(file)).mode & 0o077) !== 0) {
    options.log?.warn(`The token file ${file} can be read by other users; run: chmod 600 ${JSON.stringify(file)}`);
  }
  return token;
}

export function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return v4 === '::1' || /^127\.\d+\.\d+\.\d+$/.test(v4);
}

/** The token an upgrade request carries, from the header, a subprotocol or the query, in that order. */
export function requestToken(req: Pick<IncomingMessage, 'headers' | 'url'>): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (bearer) return bearer[1];
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  const fromProtocol = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX));
  if (fromProtocol) return fromProtocol.slice(TOKEN_PROTOCOL_PREFIX.length);
  const query = new URL(req.url ?? '/', 'ws://x').searchParams.get('token');
  return query ?? undefined;
}

/** Constant-time: compares digests, so neither length nor content leaks through timing. */
function sameToken(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The hub's upgrade check: loopback peers pass; others need the token (none loaded yet: nobody passes). */
export function upgradeAuthorizer(token: () => string | undefined): (req: IncomingMessage) => boolean {
  return (req) => {
    if (isLoopbackPeer(req.socket.remoteAddress)) return true;
    const expected = token();
    const given = requestToken(req);
    return expected !== undefined && given !== undefined && sameToken(given, expected);
  };
}

/**
 * Bound beyond loopback, other machines need the token, loaded (or made) before binding so a bad token
 * file fails the start before the port is taken. Loopback binds are exactly the original.
 */
export async function remoteAccess(settings: Pick<ManagerSettings, 'configDir' | 'raw' | 'host'>, options: AuthOptions, log: Logger): Promise<{ authorize?: (req: IncomingMessage) => boolean }> {
  const auth = authSettings(settings, options);
  if ((await bindAddresses(settings.host)).every(isLoopbackAddress)) return {};
  if (!auth.enabled) {
    log.warn(`AUTHENTICATION IS OFF (--no-auth / worker_manager.auth: false): anyone who can reach ${settings.host} can run code on this machine.`);
    return {};
  }
  const token = await readToken(auth.tokenFile, { create: true, log });
  log.info(`Connections from other machines need the token in ${auth.tokenFile}`);
  return { authorize: upgradeAuthorizer(() => token) };
}
