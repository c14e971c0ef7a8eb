/**
 * A worker's own virtualenv: creation with visible progress, the updates of a start (once, in the
 * manager), snapshots before each update and rollback to the last one. Installer output is streamed
 * as progress frames at the current step's fill value. The user's PIP_*, UV_* and proxy variables
 * reach every installer untouched (they are in `env`).
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logs/log.js';
import { ReportedError, type Report } from '../operation-errors.js';
import { progress, progressStep, type WorkerConfig } from '../../../src-shared/protocol.js';
import {
  addFuncnodesCommands,
  freezeCommand,
  makeVenvCommands,
  pyprojectText,
  restoreCommand,
  updateCommands,
  updatePlan,
  updateTools,
  VENV_DIR,
  type Tools,
} from './commands.js';
import { inspectPython } from './discovery.js';
import { describe, runCommand, throttleLines, type Command } from './installer.js';
import { listSnapshots, markStarted, saveSnapshot, type Snapshot } from './snapshots.js';
import { repairAdvice, venvPythonProblem } from './venv-check.js';

import type { Env } from '../env.js';

export interface PythonEnvsOptions extends Tools {
  env: Env;
  log: Logger;
}

/** Longest installer line sent as a progress message. */
const MAX_LINE = 300;

export class PythonEnvs {
  constructor(private readonly opts: PythonEnvsOptions) {}

  /**
   * Sequence N's venv part (spec §3.6, §4.2): "Making virtual environment.", "Adding funcnodes", with the
   * installers' lines in between. Writes `pyproject.toml` next to `.venv` (the Python CLI needs it) and
   * returns the absolute `env_path`. Throws a ReportedError naming the cause.
   */
  async create(dataDir: string, report: Report, signal?: AbortSignal): Promise<string> {
    const python = await inspectPython(this.opts.python, this.opts.env);
    if (python.problem) throw new ReportedError(python.problem);
    const venvDir = path.join(dataDir, VENV_DIR);
    const pyproject = path.join(dataDir, 'pyproject.toml');
    const hasPyproject = existsSync(pyproject);
    report(progressStep.makingVenv());
    await this.runAll(makeVenvCommands(this.opts, venvDir, hasPyproject), venvDir, progressStep.makingVenv().progress, report, signal);
    // uv init wrote one already; pip needs ours.
    if (!existsSync(pyproject)) await writeFile(pyproject, pyprojectText(`worker-${path.basename(dataDir)}`));
    report(progressStep.addingFuncnodes());
    await this.runAll(addFuncnodesCommands(this.opts, venvDir), venvDir, progressStep.addingFuncnodes().progress, report, signal);
    return venvDir;
  }

  /**
   * Before a worker with a venv is spawned: check the venv, snapshot it, update (spec §3.6 A 2a), snapshot
   * it again. A failed update is reported as an `error` progress and the worker starts with what it has.
   * The note (only when the installed versions changed) tells a failed start how to roll back;
   * `onStarted` marks the versions this start runs with as good once the worker answers.
   */
  async prepareStart(
    config: WorkerConfig,
    dataDir: string,
    venvDir: string,
    report: Report,
    signal?: AbortSignal,
  ): Promise<{ note?: string; onStarted?: () => Promise<void> }> {
    const { log } = this.opts;
    await this.assertUsable(venvDir, config.uuid);
    report(progressStep.updating());
    const plan = updatePlan(config);
    const tools = updateTools(this.opts, venvDir);
    const commands = updateCommands(tools, venvDir, plan);
    if (commands.length === 0) return {};
    const snapshot = async (when: string): Promise<Snapshot | undefined> => {
      try {
        return await saveSnapshot(dataDir, await runCommand(freezeCommand(tools, venvDir), { env: this.installEnv(tools, venvDir), signal }));
      } catch (err) {
        if (signal?.aborted) throw err;
        report(progress(`Could not record the installed versions ${when} updating: ${(err as Error).message}`, 0.3, true, 'error'));
        return undefined;
      }
    };
    const before = await snapshot('before');
    for (const name of plan.upgrade) report(progressStep.updatingPackage(name));
    for (const spec of plan.pinned) report(progress(`installing ${spec}`, 0.3));
    log.info(`Updating the environment of worker ${config.uuid}: ${[...plan.upgrade, ...plan.pinned].join(' ')}`);
    // Whether an update command ran through: a later one may still fail, but versions may have changed.
    let ran = false;
    try {
      await this.runAll(commands, venvDir, progressStep.updatingPackage('').progress, report, signal, () => (ran = true), tools);
    } catch (err) {
      if (signal?.aborted) throw err;
      log.warn(`Updating worker ${config.uuid} failed, starting it with its installed versions: ${(err as Error).message}`);
      report(progress(`Could not update the environment, starting with the installed versions: ${(err as Error).message}`, 0.3, true, 'error'));
    }
    // saveSnapshot reuses the newest file for the same versions, so a new id means they changed.
    const after = ran ? await snapshot('after') : before;
    const onStarted = after ? () => markStarted(after) : undefined;
    if (!before || !after || after.id === before.id) return { onStarted };
    return {
      onStarted,
      note:
        `Its environment was updated just before this start (snapshot ${before.id} is the one before the update); ` +
        `"fnwm worker --uuid ${config.uuid} env rollback" restores the versions of the last successful start, "env rollback --to ${before.id}" those before the update.`,
    };
  }

  /** Snapshots, newest first. */
  history(dataDir: string): Promise<Snapshot[]> {
    return listSnapshots(dataDir);
  }

  /** Reinstalls the versions of snapshot `to`, by default of the newest one a start succeeded with. */
  async rollback(uuid: string, dataDir: string, venvDir: string, report: Report, to?: string): Promise<Snapshot> {
    await this.assertUsable(venvDir, uuid);
    const snapshots = await listSnapshots(dataDir);
    if (snapshots.length === 0) throw new ReportedError(`There is no environment snapshot in ${dataDir} yet (one is taken before each update on start).`);
    const target = to === undefined ? snapshots.find((s) => s.started) : snapshots.find((s) => s.id === to);
    if (!target) {
      const ids = snapshots.map((s) => `${s.id}${s.started ? ' (started)' : ''}`).join(', ');
      throw new ReportedError(
        to === undefined
          ? `No snapshot has had a successful start yet; choose one with --to (snapshots: ${ids}).`
          : `There is no snapshot ${to} (snapshots: ${ids}).`,
      );
    }
    const step = progress(`Restoring the environment of ${target.id}.`, 0.5);
    report(step);
    const tools = updateTools(this.opts, venvDir);
    await this.runAll([restoreCommand(tools, venvDir, target.file)], venvDir, step.progress, report, undefined, undefined, tools);
    return target;
  }

  /** A venv whose Python is gone cannot run anything: say so instead of a spawn error. */
  private async assertUsable(venvDir: string, uuid: string): Promise<void> {
    const { problem } = await venvPythonProblem(venvDir);
    if (problem) throw new ReportedError(`Its virtual environment ${venvDir} is broken: ${problem}. ${repairAdvice(this.opts.python, venvDir, uuid)}`);
  }

  /** uv must sync the worker's venv, whatever the user's UV_PROJECT_ENVIRONMENT says. */
  private installEnv(tools: Tools, venvDir: string): Env {
    return tools.uv ? { ...this.opts.env, UV_PROJECT_ENVIRONMENT: path.basename(venvDir) } : this.opts.env;
  }

  /**
   * Runs the commands in order; each output line becomes a progress frame at the step's `fill` (throttled).
   * `ran` is called after each command that succeeded.
   */
  private async runAll(
    commands: Command[],
    venvDir: string,
    fill: number,
    report: Report,
    signal?: AbortSignal,
    ran?: () => void,
    tools: Tools = this.opts,
  ): Promise<void> {
    const env = this.installEnv(tools, venvDir);
    const lines = throttleLines((line) => report(progress(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line, fill)));
    try {
      for (const command of commands) {
        this.opts.log.info(`Running ${describe(command)} in ${command.cwd}`);
        await runCommand(command, { env, onLine: lines.line, signal });
        ran?.();
      }
    } finally {
      lines.stop();
    }
  }
}
