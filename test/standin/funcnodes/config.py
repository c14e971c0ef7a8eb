"""Config dir, worker file paths, worker JSON handling and stand-in options."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from typing import Any


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ[name])
    except (KeyError, ValueError):
        return default


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return default


def read_json(path: str) -> Any:
    """Parsed content, or None when the file is missing or not valid JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json_atomic(path: str, data: Any) -> None:
    # Like the real worker: temp file in the same dir (mkstemp makes it 0600), then rename.
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def resolve_config_dir(cli_dir: str | None) -> str:
    """--dir, else $FUNCNODES_CONFIG_DIR, else ~/.funcnodes; then a `custom_config_dir` redirect (spec 2.1)."""
    base = os.path.abspath(
        cli_dir or os.environ.get("FUNCNODES_CONFIG_DIR") or os.path.join(os.path.expanduser("~"), ".funcnodes")
    )
    os.environ["FUNCNODES_CONFIG_DIR"] = base  # the real --dir does this too; children inherit it
    conf = read_json(os.path.join(base, "config.json"))
    if not isinstance(conf, dict):
        conf = read_json(os.path.join(base, "config.json.bu"))
    custom = conf.get("custom_config_dir") if isinstance(conf, dict) else None
    return os.path.abspath(custom) if custom else base


@dataclasses.dataclass(frozen=True)
class WorkerFiles:
    workers_dir: str
    uuid: str

    def _path(self, suffix: str) -> str:
        return os.path.join(self.workers_dir, f"worker_{self.uuid}{suffix}")

    @property
    def json(self) -> str:
        return self._path(".json")

    @property
    def p(self) -> str:
        return self._path(".p")

    @property
    def runstate(self) -> str:
        return self._path(".runstate")

    @property
    def data_dir(self) -> str:
        return self._path("")

    @property
    def log(self) -> str:
        return os.path.join(self.data_dir, f"funcnodes.{self.uuid}.log")

    @property
    def nodespace(self) -> str:
        return os.path.join(self.data_dir, "nodespace.json")


def find_worker(workers_dir: str, uuid: str | None, name: str | None) -> tuple[str, dict]:
    """The real CLI lookup (spec 8): by uuid exactly, else the first JSON with that name."""
    if uuid:
        conf = read_json(WorkerFiles(workers_dir, uuid).json)
        if not isinstance(conf, dict):
            raise LookupError("No worker found with the given uuid")
        if name and conf.get("name") != name:
            raise LookupError("The worker with the given uuid does not have the given name")
        return uuid, conf
    for fname in os.listdir(workers_dir):
        if fname.startswith("worker_") and fname.endswith(".json"):
            conf = read_json(os.path.join(workers_dir, fname))
            if isinstance(conf, dict) and conf.get("name") == name:
                return fname[len("worker_") :].split(".", 1)[0], conf
    raise LookupError("No worker found with the given name")


_UPDATE_ON_STARTUP = ("funcnodes", "funcnodes-core", "funcnodes-worker")


def _autostart(value: object) -> object:
    """funcnodes-worker 1.6's normalisation of the `autostart` policy (true, false/null, or a policy name)."""
    if value is True:
        return "unless-stopped"
    if value is False or value is None:
        return "never"
    return value


def complete_config(conf: dict, uuid: str) -> dict:
    """Fill the standard keys (spec 2.4) in the real key order; unknown keys follow, untouched."""
    update = conf.get("update_on_startup")
    update = dict(update) if isinstance(update, dict) else {}
    for pkg in _UPDATE_ON_STARTUP:
        update.setdefault(pkg, True)
    standard = {
        "type": conf.get("type") or "WSWorker",
        "uuid": uuid,
        "name": conf.get("name") or uuid,
        "data_path": None,  # a CLI-started worker always uses (and writes) the default data dir
        "env_path": conf.get("env_path"),
        "worker_dependencies": conf.get("worker_dependencies") or {},
        "package_dependencies": conf.get("package_dependencies") or {},
        "pid": conf.get("pid", os.getpid()),
        "autostart": _autostart(conf.get("autostart")),
        "update_on_startup": update,
        "host": conf.get("host") or os.environ.get("FUNCNODES_HOST") or "localhost",
        "port": conf.get("port", env_int("FUNCNODES_WS_WORKER_STARTPORT", 9382)),
        "ssl": False,
    }
    return {**standard, **{k: v for k, v in conf.items() if k not in standard}}


@dataclasses.dataclass
class Options:
    """Failure modes of the stand-in (README.md): JSON key `standin`, else env FUNCNODES_STANDIN."""

    boot_delay: float = 0.0
    wrong_uuid: str | None = None
    noise: int = 0
    never_bind: bool = False
    crash_after: float | None = None
    exit_code: int | None = None
    exit_at: str | None = None
    ignore_stop: bool = False
    stop_order: str | None = None
    # The real CLI's upgrade before a worker with env_path runs (__main__._upgrade_in_worker); false skips it.
    in_worker_upgrade: bool = True

    @classmethod
    def load(cls, conf: dict) -> Options:
        merged: dict = {}
        raw = os.environ.get("FUNCNODES_STANDIN")
        if raw:
            try:
                env = json.loads(raw)
            except ValueError:
                env = None
            if isinstance(env, dict):
                merged.update(env)
            else:
                print("standin: FUNCNODES_STANDIN is not a JSON object, ignored", file=sys.stderr)
        if isinstance(conf.get("standin"), dict):
            merged.update(conf["standin"])
        known = {f.name for f in dataclasses.fields(cls)}
        for key in merged.keys() - known:
            print(f"standin: unknown option {key!r} ignored", file=sys.stderr)
        return cls(**{k: v for k, v in merged.items() if k in known})
