"""`funcnodes_worker.worker`: only `worker_json_get_data_path`, which the manager's launcher calls."""

from __future__ import annotations

import os

from funcnodes.config import resolve_config_dir


def worker_json_get_data_path(cfg: dict) -> str:
    """The worker's data dir: its `data_path`, else `<workers dir>/worker_<uuid>` (spec 2.3)."""
    return cfg.get("data_path") or os.path.join(resolve_config_dir(None), "workers", f"worker_{cfg['uuid']}")
