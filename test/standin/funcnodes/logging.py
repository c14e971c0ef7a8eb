"""`funcnodes.logging` (funcnodes_core._logging): only what the manager's launcher calls."""

from __future__ import annotations

_dir: str | None = None


def set_logging_dir(path: str) -> None:
    """The real one moves the log files there; the stand-in logs to its data dir already (worker.py)."""
    global _dir
    _dir = path
