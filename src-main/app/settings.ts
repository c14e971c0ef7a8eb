/**
 * The desktop app's own settings (`settings.json` under Electron's userData): things the FuncNodes
 * config.json has no key for. A missing or broken file means defaults plus one log line, never a crash;
 * an invalid change is refused with a clear error and the file is left as it was.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../core/logs/log.js';
import { writeJsonAtomic } from '../core/registry/registry.js';

export interface AppSettings {
  /** Start with only the tray icon, no window (as `--hidden`). */
  startHidden: boolean;
  /** The workers this app started, when it quits or Stop manager is chosen: ask, stop them, or keep them running. */
  workersOnQuit: WorkersOnQuit;
  /** Closing the window quits the app instead of leaving it in the tray. */
  quitOnWindowClose: boolean;
  /** Interpreter for workers without a venv (as FUNCNODES_PYTHON); null: the manager's usual lookup. */
  python: string | null;
  /** Access tokens of managers on other machines, per `host:port`, sealed (manager-tokens.ts). */
  managerTokens: Record<string, string>;
}

export type WorkersOnQuit = 'ask' | 'stop' | 'keep';
export const WORKERS_ON_QUIT: readonly WorkersOnQuit[] = ['ask', 'stop', 'keep'];

export class SettingsError extends Error {}

/** Tray icons may be invisible on Linux desktops, so there closing the window quits by default. */
export function defaultSettings(platform: NodeJS.Platform): AppSettings {
  return { startHidden: false, workersOnQuit: 'ask', quitOnWindowClose: platform === 'linux', python: null, managerTokens: {} };
}

/** Checks a (partial) settings object key by key; throws naming the first bad key. */
export function parseSettingsPatch(value: unknown): Partial<AppSettings> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SettingsError('Settings must be a JSON object');
  const patch: Partial<AppSettings> = {};
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    switch (key) {
      case 'startHidden':
      case 'quitOnWindowClose':
        if (typeof item !== 'boolean') throw new SettingsError(`Setting ${key} must be true or false`);
        patch[key] = item;
        break;
      case 'workersOnQuit':
        if (!WORKERS_ON_QUIT.includes(item as WorkersOnQuit)) throw new SettingsError(`Setting workersOnQuit must be one of ${WORKERS_ON_QUIT.join(', ')}`);
        patch.workersOnQuit = item as WorkersOnQuit;
        break;
      // The boolean this setting replaced: a file written before keeps its meaning.
      case 'keepWorkers':
        if (typeof item !== 'boolean') throw new SettingsError(`Setting ${key} must be true or false`);
        patch.workersOnQuit ??= item ? 'keep' : 'ask';
        break;
      case 'managerTokens':
        if (typeof item !== 'object' || item === null || Array.isArray(item) || Object.values(item).some((v) => typeof v !== 'string')) {
          throw new SettingsError('Setting managerTokens must map host:port to text');
        }
        patch.managerTokens = { ...(item as Record<string, string>) };
        break;
      case 'python':
        if (item !== null && (typeof item !== 'string' || item.trim() === '')) throw new SettingsError('Setting python must be a path or null');
        patch.python = item;
        break;
      default:
        throw new SettingsError(`Unknown setting ${JSON.stringify(key)}`);
    }
  }
  return patch;
}

export class SettingsStore {
  private current: AppSettings;
  private saving: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly defaults: AppSettings,
    private readonly log: Logger,
  ) {
    this.current = { ...defaults };
  }

  get(): AppSettings {
    return { ...this.current };
  }

  async load(): Promise<AppSettings> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch {
      return this.get();
    }
    try {
      this.current = { ...this.defaults, ...parseSettingsPatch(JSON.parse(text)) };
    } catch (err) {
      this.log.warn(`Ignoring ${this.file} and using default settings: ${(err as Error).message}`);
      this.current = { ...this.defaults };
    }
    return this.get();
  }

  async update(value: unknown): Promise<AppSettings> {
    const patch = parseSettingsPatch(value);
    // One write at a time, each from the settings the last one saved: two quick toggles both stick.
    const run = this.saving.then(() => this.save(patch));
    this.saving = run.catch(() => undefined);
    return run;
  }

  private async save(patch: Partial<AppSettings>): Promise<AppSettings> {
    const next = { ...this.current, ...patch };
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeJsonAtomic(this.file, next);
    this.current = next;
    return this.get();
  }
}
