/**
 * The FuncNodes config dir and the manager's settings in `config.json` (spec §2.1–2.2).
 * The file is only read, never rewritten: the Python tools own it.
 */
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { wsUrl } from '../../../src-shared/address.js';
import type { Logger } from '../logs/log.js';

export const DEFAULT_HOST = 'localhost';
export const DEFAULT_PORT = 9380;
export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

export interface ManagerSettings {
  /** Absolute config dir after the `custom_config_dir` redirect. */
  configDir: string;
  workersDir: string;
  host: string;
  port: number;
  /** `worker_manager.python`: the interpreter for workers without a venv, below `FUNCNODES_PYTHON`. */
  python?: string;
  /** `worker_manager.uv`: the uv executable for venvs, or `false` to never use uv (default: `uv` on PATH). */
  uv?: string | false;
  /** Extra browser origins allowed to connect (`worker_manager.allowed_origins`). */
  allowedOrigins: string[];
  /** Extra names accepted in the `Host` header (`worker_manager.allowed_hosts`). */
  allowedHosts: string[];
  maxPayload: number;
  /** Default of `in_venv` for new workers: `FUNCNODES_WORKER_IN_VENV` (spec §2.2). */
  inVenvDefault: boolean;
  /** Leave the workers this manager started running when it stops (`--keep-workers`, `worker_manager.keep_workers`). */
  keepWorkers: boolean;
  /** Lifecycle deadlines in ms from `worker_manager.*_timeout` (seconds); unset keys keep the defaults. */
  timeouts: { connectTimeoutMs?: number; startTimeoutMs?: number; stopTimeoutMs?: number };
  /** `config.json` as read, for keys other modules need. */
  raw: Record<string, unknown>;
}

/** The URL clients dial for these settings (a wildcard bind is dialled on loopback). */
export function managerUrl(settings: Pick<ManagerSettings, 'host' | 'port'>): string {
  return wsUrl(settings.host, settings.port);
}

export interface ConfigOverrides {
  dir?: string;
  host?: string;
  port?: number;
  keepWorkers?: boolean;
}

import type { Env } from '../env.js';

const TRUTHY = new Set(['1', 'True', 'true', 'yes', 'Yes', 'YES']);

/** `FUNCNODES_WORKER_IN_VENV` truthiness exactly as the original (spec §2.2). */
export function envFlag(value: string | undefined, fallback: boolean): boolean {
  return value === undefined ? fallback : TRUTHY.has(value);
}

/** Base dir: `--dir`, else `FUNCNODES_CONFIG_DIR`, else `~/.funcnodes` (spec §2.1 step 1). */
export function baseConfigDir(env: Env, dir?: string): string {
  const home = env.HOME || env.USERPROFILE || os.homedir();
  const chosen = dir ?? env.FUNCNODES_CONFIG_DIR ?? path.join(home, '.funcnodes');
  return path.resolve(chosen);
}

async function readJsonObject(file: string): Promise<Record<string, unknown> | undefined> {
  try {
    const data: unknown = JSON.parse(await readFile(file, 'utf8'));
    return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** `config.json`, else its backup `config.json.bu`, else empty (defaults). */
async function readConfigFile(dir: string, log?: Logger): Promise<Record<string, unknown>> {
  const main = await readJsonObject(path.join(dir, 'config.json'));
  if (main) return main;
  const backup = await readJsonObject(path.join(dir, 'config.json.bu'));
  if (backup) log?.warn(`config.json in ${dir} is missing or invalid; using config.json.bu`);
  return backup ?? {};
}

function section(raw: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = raw[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** A positive number of seconds, as ms. */
function seconds(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value * 1000 : undefined;
}

function validPort(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535 ? value : undefined;
}

export async function loadSettings(overrides: ConfigOverrides = {}, env: Env = process.env, log?: Logger): Promise<ManagerSettings> {
  let configDir = baseConfigDir(env, overrides.dir);
  await mkdir(configDir, { recursive: true });
  let raw = await readConfigFile(configDir, log);
  const custom = raw.custom_config_dir;
  if (typeof custom === 'string' && custom !== '') {
    configDir = path.resolve(configDir, custom);
    await mkdir(configDir, { recursive: true });
    raw = await readConfigFile(configDir, log);
  }
  const wm = section(raw, 'worker_manager');
  const port = overrides.port ?? validPort(wm.port) ?? DEFAULT_PORT;
  const maxPayload = typeof wm.max_payload === 'number' && wm.max_payload > 0 ? wm.max_payload : DEFAULT_MAX_PAYLOAD;
  const workersDir = path.join(configDir, 'workers');
  await mkdir(workersDir, { recursive: true });
  return {
    configDir,
    workersDir,
    host: overrides.host ?? (typeof wm.host === 'string' ? wm.host : DEFAULT_HOST),
    port,
    python: typeof wm.python === 'string' && wm.python !== '' ? wm.python : undefined,
    uv: wm.uv === false ? false : typeof wm.uv === 'string' && wm.uv !== '' ? wm.uv : undefined,
    allowedOrigins: stringList(wm.allowed_origins),
    allowedHosts: stringList(wm.allowed_hosts),
    maxPayload,
    inVenvDefault: envFlag(env.FUNCNODES_WORKER_IN_VENV, true),
    keepWorkers: overrides.keepWorkers ?? wm.keep_workers === true,
    timeouts: { connectTimeoutMs: seconds(wm.connect_timeout), startTimeoutMs: seconds(wm.start_timeout), stopTimeoutMs: seconds(wm.stop_timeout) },
    raw,
  };
}
