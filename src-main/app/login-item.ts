/**
 * "Start at login", always with `--hidden`: the OS login items on macOS and Windows, an XDG autostart
 * `.desktop` file on Linux (Electron has no login items there).
 */
import { readFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { App } from 'electron';
import { writeFileAtomic } from '../core/registry/registry.js';

export interface LoginItem {
  get(): Promise<boolean>;
  set(enabled: boolean): Promise<void>;
}

export const HIDDEN_ARG = '--hidden';

export function osLoginItem(app: Pick<App, 'getLoginItemSettings' | 'setLoginItemSettings'>): LoginItem {
  const args = [HIDDEN_ARG];
  return {
    get: () => Promise.resolve(app.getLoginItemSettings({ args }).openAtLogin),
    set: (enabled) => {
      app.setLoginItemSettings({ openAtLogin: enabled, args });
      return Promise.resolve();
    },
  };
}

/** Desktop Entry spec: an Exec argument with spaces or specials is double-quoted, with `"`, `` ` ``, `$`, `\` escaped. */
export function quoteExecArg(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/["`$\\]/g, '\\$&')}"`;
}

export function desktopEntry(name: string, exec: string): string {
  return [
    '[Desktop Entry]',
    'Type=Application',
    `Name=${name}`,
    `Exec=${quoteExecArg(exec)} ${HIDDEN_ARG}`,
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

/** `configHome`: $XDG_CONFIG_HOME or ~/.config; `exec`: the AppImage path when run as one, else the binary. */
export function xdgLoginItem(options: { configHome: string; fileName: string; name: string; exec: string }): LoginItem {
  const file = path.join(options.configHome, 'autostart', options.fileName);
  return {
    get: () =>
      readFile(file, 'utf8').then(
        (text) => text.includes(`Exec=${quoteExecArg(options.exec)} `),
        () => false,
      ),
    set: async (enabled) => {
      if (!enabled) return rm(file, { force: true });
      await mkdir(path.dirname(file), { recursive: true });
      await writeFileAtomic(file, desktopEntry(options.name, options.exec));
    },
  };
}
