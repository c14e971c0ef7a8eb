/**
 * Access tokens of managers on other machines that the window uses (remote access, core/hub/remote-auth.ts),
 * kept in the app's settings file (0600) per `host:port`, encrypted with Electron's safeStorage (the OS
 * keychain or secret service) where it is available, else as plain text in that file. A manager of this
 * machine's own config needs none stored: its token file is read.
 */
import type { SafeStorage } from 'electron';
import type { Logger } from '../core/logs/log.js';
import { loadSettings, type ConfigOverrides } from '../core/registry/config.js';
import { authSettings, readToken } from '../core/hub/remote-auth.js';
import { isLoopbackHostname } from '../../src-shared/token-protocol.js';

/** The part of Electron's safeStorage used here. */
export type SecretBox = Pick<SafeStorage, 'isEncryptionAvailable' | 'encryptString' | 'decryptString'>;

export function sealToken(token: string, box: SecretBox | undefined): string {
  return box?.isEncryptionAvailable() ? `safe:${box.encryptString(token).toString('base64')}` : `plain:${token}`;
}

/** undefined when it cannot be opened (another user's keychain, a broken entry): the window asks again. */
export function openToken(sealed: string, box: SecretBox | undefined): string | undefined {
  if (sealed.startsWith('plain:')) return sealed.slice('plain:'.length);
  if (!sealed.startsWith('safe:') || !box?.isEncryptionAvailable()) return undefined;
  try {
    return box.decryptString(Buffer.from(sealed.slice('safe:'.length), 'base64'));
  } catch {
    return undefined;
  }
}

/** A token as the window gives it: one word, no spaces (it goes into a header and a subprotocol). */
export function validToken(value: unknown): string {
  if (typeof value !== 'string' || !/^[\w.~+/=-]{16,512}$/.test(value)) throw new Error('An access token is 16 to 512 characters without spaces');
  return value;
}

/**
 * The token the window needs for `managerUrl`: none on loopback; else the one stored for its host, else
 * this machine's own token file (the same config).
 */
export async function tokenForManager(
  managerUrl: string,
  stored: Record<string, string>,
  box: SecretBox | undefined,
  own: { overrides: ConfigOverrides; env: Record<string, string | undefined>; log: Logger },
): Promise<string | null> {
  const url = new URL(managerUrl);
  if (isLoopbackHostname(url.hostname)) return null;
  const sealed = stored[url.host];
  const opened = sealed === undefined ? undefined : openToken(sealed, box);
  if (opened !== undefined) return opened;
  try {
    const settings = await loadSettings({ dir: own.overrides.dir }, own.env);
    return (await readToken(authSettings(settings).tokenFile, { create: false })) ?? null;
  } catch (err) {
    own.log.warn(`Reading this machine's manager token failed: ${(err as Error).message}`);
    return null;
  }
}
