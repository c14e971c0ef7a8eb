/**
 * The app's command line: the CLI's `--dir`, `--host`, `--port`, `--no-auth`, `--token-file` (same meaning as `fnwm startworkermanager`)
 * and `--hidden` (tray only; what the login item passes). Chromium's own switches and the app path that
 * Electron puts into argv are ignored.
 */
import { parseArgs } from 'node:util';
import type { ConfigOverrides } from '../core/registry/config.js';
import type { AuthOptions } from '../core/hub/remote-auth.js';

export interface LaunchOptions {
  hidden: boolean;
  overrides: ConfigOverrides;
  /** `--no-auth`, `--token-file F` (remote access, as `fnwm startworkermanager`). */
  auth: AuthOptions;
  /** Why an option was ignored, for the log. */
  problems: string[];
}

export function parseLaunchOptions(argv: readonly string[]): LaunchOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: false,
    allowPositionals: true,
    options: { hidden: { type: 'boolean' }, dir: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, 'no-auth': { type: 'boolean' }, 'token-file': { type: 'string' } },
  });
  const problems: string[] = [];
  const overrides: ConfigOverrides = {};
  const text = (key: 'dir' | 'host' | 'port' | 'token-file') => {
    const value = values[key];
    if (value === undefined) return undefined;
    if (typeof value === 'string' && value !== '') return value;
    problems.push(`--${key} needs a value`);
    return undefined;
  };
  const dir = text('dir');
  if (dir !== undefined) overrides.dir = dir;
  const host = text('host');
  if (host !== undefined) overrides.host = host;
  const port = text('port');
  if (port !== undefined) {
    const n = Number(port);
    if (Number.isInteger(n) && n >= 0 && n <= 65535) overrides.port = n;
    else problems.push(`--port ${port} is not a port number; using the configured port`);
  }
  const auth: AuthOptions = {};
  if (values['no-auth'] === true) auth.auth = false;
  const tokenFile = text('token-file');
  if (tokenFile !== undefined) auth.tokenFile = tokenFile;
  return { hidden: values.hidden === true, overrides, auth, problems };
}
