/**
 * The worker's command line. A worker without a venv gets the original's (spec §4.4). A venv worker gets
 * a small launcher: FuncNodes' `worker start` would upgrade funcnodes, funcnodes-core and funcnodes-worker
 * again in the worker (`python -m uv add/lock/sync`, `funcnodes/cli/worker.py` `start_existing_worker`,
 * 1.5-1.7) and exit 1 when the index cannot be reached, although the manager has just run the updates
 * itself (envs.ts). No option or variable turns that off, so the launcher enters the worker the way the
 * CLI does after its upgrade step. Where those names do not exist (another FuncNodes layout) it runs the
 * CLI itself in the same process with the same arguments, i.e. the spec §4.4 command line.
 * Either way the argv keeps `worker --uuid <uuid> start`, so `ps` shows which worker it is.
 */
import type { WorkerConfig } from '../../../src-shared/protocol.js';

/**
 * Python run with `-P -c`. The config dir comes from FUNCNODES_CONFIG_DIR (the manager sets it; funcnodes
 * reads it on import). Limits: it uses `fn.worker.<type>`, `fn.logging.set_logging_dir` and
 * `WorkerManager.get_all_workercfg`, which are public but undocumented; it does not load `.env` the way
 * `cli/main.py` does (funcnodes_core's config still loads it); `--profile` is not supported.
 */
export const LAUNCHER = `import sys, runpy
a = sys.argv; uuid = a[a.index("--uuid") + 1]; debug = "--debug" in a
try:
    import funcnodes as fn
    from funcnodes_worker.worker import worker_json_get_data_path
    fn.worker.worker_manager.WorkerManager; fn.logging.set_logging_dir
except (ImportError, AttributeError):
    sys.argv = ["funcnodes", *a[1:]]; runpy.run_module("funcnodes", run_name="__main__", alter_sys=True); raise SystemExit
if debug: fn.FUNCNODES_LOGGER.setLevel("DEBUG")
cfg = next((c for c in fn.worker.worker_manager.WorkerManager(debug=debug).get_all_workercfg() if c["uuid"] == uuid), None)
if cfg is None: sys.exit("No worker found with the given uuid")
fn.logging.set_logging_dir(worker_json_get_data_path(cfg))
getattr(fn.worker, cfg.get("type") or "WSWorker")(uuid=cfg["uuid"], debug=debug).run_forever()
`;

export interface WorkerCommandOptions {
  configDir: string;
  debug: boolean;
}

/** `<python> -m funcnodes …` (no venv) or `<python> -P -c LAUNCHER …` (venv), both with `[--debug] --dir D worker --uuid U start`. */
export function workerCommand(python: string, config: WorkerConfig, opts: WorkerCommandOptions): { file: string; args: string[] } {
  const cli = [...(opts.debug ? ['--debug'] : []), '--dir', opts.configDir, 'worker', '--uuid', config.uuid, 'start'];
  return { file: python, args: config.env_path ? ['-P', '-c', LAUNCHER, ...cli] : ['-m', 'funcnodes', ...cli] };
}

/** The command line for logs, with the launcher's code shown as `<launcher>`. */
export function commandText(command: { file: string; args: string[] }): string {
  return [command.file, ...command.args.map((arg) => (arg === LAUNCHER ? '<launcher>' : arg))].join(' ');
}
