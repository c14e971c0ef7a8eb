"""`python -m funcnodes`: the subset of the FuncNodes CLI that the Workermanager uses (spec 4.4, 8)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from . import __version__
from .config import Options, WorkerFiles, find_worker, resolve_config_dir
from .worker import run_worker

USAGE_HINT = "the stand-in implements only: funcnodes [--dir D] [--debug] worker [--uuid U] [--name N] start"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="funcnodes", description="FuncNodes stand-in worker (tests only)")
    parser.add_argument("--dir", help="config dir (else $FUNCNODES_CONFIG_DIR, else ~/.funcnodes)")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--profile", action="store_true", help="accepted and ignored")
    parser.add_argument("--use-subprocess-monitor", type=int, help="accepted and ignored")
    parser.add_argument("--version", action="version", version=__version__)
    tasks = parser.add_subparsers(dest="task")
    worker = tasks.add_parser("worker")
    # Like the real CLI, --uuid/--name belong to `worker` and come before its subcommand.
    worker.add_argument("--uuid")
    worker.add_argument("--name")
    worker_tasks = worker.add_subparsers(dest="workertask")
    start = worker_tasks.add_parser("start")
    start.add_argument("--workertype", help="accepted and ignored")
    return parser


def _read_all_workers(workers_dir: str) -> None:
    """As the real CLI does at start: every worker JSON is read as a dict; a JSON array or null raises."""
    from .config import read_json

    for fname in sorted(os.listdir(workers_dir)):
        if fname.startswith("worker_") and fname.endswith(".json"):
            read_json(os.path.join(workers_dir, fname)).get("uuid")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.task != "worker" or args.workertask != "start":
        print(USAGE_HINT, file=sys.stderr)
        return 2
    if not args.uuid and not args.name:
        print("worker start needs --uuid or --name", file=sys.stderr)
        return 2
    workers_dir = os.path.join(resolve_config_dir(args.dir), "workers")
    os.makedirs(workers_dir, exist_ok=True)
    if os.environ.get("FUNCNODES_STANDIN_READ_ALL"):
        _read_all_workers(workers_dir)
    try:
        uuid, config = find_worker(workers_dir, args.uuid, args.name)
    except LookupError as err:
        print(err, file=sys.stderr)
        return 1
    if config.get("env_path") and Options.load(config).in_worker_upgrade and not _upgrade_in_worker(config):
        return 1
    return run_worker(WorkerFiles(workers_dir, uuid), config, args.debug)


def _upgrade_in_worker(config: dict) -> bool:
    """The real CLI's `start_existing_worker` (funcnodes 1.5-1.7, cli/worker.py) before it runs a worker with
    `env_path`: venvmngr's `install_package(pkg, upgrade=True)`, i.e. `<this python> -m uv add pkg`,
    `uv lock --upgrade-package pkg`, `uv sync` in the project dir, for funcnodes and funcnodes-core per their
    `update_on_startup` flag and funcnodes-worker gated by the funcnodes-core flag (the upstream slip).
    The first failure ends the CLI with exit 1 (venvmngr raises, nothing catches it)."""
    flags = config.get("update_on_startup") if isinstance(config.get("update_on_startup"), dict) else {}
    packages = [
        pkg
        for pkg, flag in (("funcnodes", "funcnodes"), ("funcnodes-core", "funcnodes-core"), ("funcnodes-worker", "funcnodes-core"))
        if flags.get(flag, True)
    ]
    project = os.path.dirname(os.path.abspath(config["env_path"]))
    for pkg in packages:
        for step in (["add", pkg], ["lock", "--upgrade-package", pkg], ["sync"]):
            cmd = [sys.executable, "-m", "uv", *step]
            if subprocess.run(cmd, cwd=project).returncode != 0:
                print(f"Failed to call {' '.join(cmd)}", file=sys.stderr)
                return False
    return True


if __name__ == "__main__":
    sys.exit(main())
