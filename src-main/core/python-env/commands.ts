/**
 * The installer command lines, with pip (`python -m venv`, `<venv python> -m pip`) or with uv (the
 * original's steps, spec §4.2). Which command runs where (updateTools looks at which files exist); envs.ts runs them.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { WorkerConfig } from '../../../src-shared/protocol.js';
import { pythonInVenv } from './python.js';
import type { Command } from './installer.js';

/**
 * The interpreter that creates venvs, and uv if used. Commands take the venv dir; they run in its parent,
 * the uv project dir (spec §2.8).
 */
export interface Tools {
  python: string;
  uv?: string;
}

export const VENV_DIR = '.venv';

/** "Making virtual environment.": a venv in `<project>/.venv` (uv: a uv project with pip in it). */
export function makeVenvCommands(tools: Tools, venvDir: string, hasPyproject: boolean): Command[] {
  const project = path.dirname(venvDir);
  if (!tools.uv) return [{ file: tools.python, args: ['-m', 'venv', venvDir], cwd: project }];
  const uv = (...args: string[]): Command => ({ file: tools.uv!, args, cwd: project });
  return [
    ...(hasPyproject
      ? []
      : [uv('init', '--no-workspace', '--no-pin-python', '--no-readme', '--python', tools.python, '--description', 'A Funcnodes worker environment')]),
    uv('venv', '--python', tools.python),
    { file: pythonInVenv(venvDir), args: ['-m', 'ensurepip', '--upgrade'], cwd: project },
    ...upgradeWithUv(tools.uv, project, ['pip'], []),
  ];
}

/** "Adding funcnodes". */
export function addFuncnodesCommands(tools: Tools, venvDir: string): Command[] {
  const project = path.dirname(venvDir);
  if (tools.uv) return upgradeWithUv(tools.uv, project, ['funcnodes'], []);
  return [{ file: pythonInVenv(venvDir), args: ['-m', 'pip', 'install', 'funcnodes'], cwd: project }];
}

/** `pyproject.toml` for a pip-made env: the Python CLI opens a venv only next to one (spec §2.8). */
export function pyprojectText(name: string): string {
  return [
    '[project]',
    `name = "${name.replace(/[^A-Za-z0-9._-]/g, '-')}"`,
    'version = "0.1.0"',
    'description = "A Funcnodes worker environment"',
    'requires-python = ">=3.11"',
    'dependencies = ["pip", "funcnodes"]',
    '',
  ].join('\n');
}

// ------------------------------------------------------------ updates on start (spec §4.3)

export interface UpdatePlan {
  /** Upgraded to the newest version. */
  upgrade: string[];
  /** Installed at their pin (`name==1.2`, `name>=1`). */
  pinned: string[];
}

const CORE_PACKAGES = ['funcnodes', 'funcnodes-core', 'funcnodes-worker'] as const;

/** Spec §4.2: underscores become hyphens; a version starting with `<>!=~` is a specifier, else `==version`. */
function packageSpec(name: string, version: string): string {
  return `${name.replaceAll('_', '-')}${/^[<>!=~]/.test(version) ? version : `==${version}`}`;
}

/**
 * What a start updates: each core package whose `update_on_startup` flag is not `false` (a missing key
 * means true, all three honoured), every unpinned `package_dependencies` entry, and pinned ones at their pin.
 */
export function updatePlan(config: WorkerConfig): UpdatePlan {
  const flags = config.update_on_startup ?? {};
  const upgrade: string[] = CORE_PACKAGES.filter((name) => flags[name] !== false);
  const pinned: string[] = [];
  for (const dep of Object.values(config.package_dependencies ?? {})) {
    if (typeof dep !== 'object' || dep === null || typeof dep.package !== 'string' || dep.package === '') continue;
    const name = dep.package.replaceAll('_', '-');
    if (typeof dep.version === 'string' && dep.version !== '') pinned.push(packageSpec(name, dep.version));
    else if (!upgrade.includes(name)) upgrade.push(name);
  }
  return { upgrade, pinned };
}

/** uv inside a venv: FuncNodes depends on uv, so its venvs have one. */
export function uvInVenv(venvDir: string): string {
  return process.platform === 'win32' ? path.join(venvDir, 'Scripts', 'uv.exe') : path.join(venvDir, 'bin', 'uv');
}

/**
 * The tools that update (and snapshot, restore) an existing venv. A uv project (a `uv.lock` next to the
 * venv) is updated through uv, because the worker's own `uv sync` (its module installs) would undo what
 * pip changed behind the lock: the venv's own uv when it has one, else the configured uv. Anything else
 * (our pip-made venvs) with pip.
 */
export function updateTools(tools: Tools, venvDir: string): Tools {
  if (!existsSync(path.join(path.dirname(venvDir), 'uv.lock'))) return { python: tools.python };
  const own = uvInVenv(venvDir);
  const uv = existsSync(own) ? own : tools.uv;
  return uv ? { python: tools.python, uv } : { python: tools.python };
}

export function updateCommands(tools: Tools, venvDir: string, plan: UpdatePlan): Command[] {
  const project = path.dirname(venvDir);
  if (tools.uv) return upgradeWithUv(tools.uv, project, plan.upgrade, plan.pinned);
  const pip = (...args: string[]): Command => ({ file: pythonInVenv(venvDir), args: ['-m', 'pip', 'install', ...args], cwd: project });
  // Separate runs: `--upgrade` would move a range pin (`>=1`) to its newest match.
  return [...(plan.upgrade.length > 0 ? [pip('--upgrade', ...plan.upgrade)] : []), ...(plan.pinned.length > 0 ? [pip(...plan.pinned)] : [])];
}

/** The original's triple `uv add` + `uv lock --upgrade-package` + `uv sync`, once for all packages. */
function upgradeWithUv(uv: string, project: string, upgrade: string[], pinned: string[]): Command[] {
  const run = (...args: string[]): Command => ({ file: uv, args, cwd: project });
  if (upgrade.length + pinned.length === 0) return [];
  return [
    run('add', ...upgrade, ...pinned),
    ...(upgrade.length > 0 ? [run('lock', ...upgrade.flatMap((name) => ['--upgrade-package', name]))] : []),
    run('sync'),
  ];
}

// ------------------------------------------------------------ snapshots

export function freezeCommand(tools: Tools, venvDir: string): Command {
  const [project, venvPy] = [path.dirname(venvDir), pythonInVenv(venvDir)];
  return tools.uv ? { file: tools.uv, args: ['pip', 'freeze', '--python', venvPy], cwd: project } : { file: venvPy, args: ['-m', 'pip', 'freeze'], cwd: project };
}

export function restoreCommand(tools: Tools, venvDir: string, requirements: string): Command {
  const [project, venvPy] = [path.dirname(venvDir), pythonInVenv(venvDir)];
  return tools.uv
    ? { file: tools.uv, args: ['pip', 'install', '--python', venvPy, '-r', requirements], cwd: project }
    : { file: venvPy, args: ['-m', 'pip', 'install', '-r', requirements], cwd: project };
}
