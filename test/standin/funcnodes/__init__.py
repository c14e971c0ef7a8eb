"""Stand-in for the FuncNodes Python worker, used by the Workermanager tests.

It speaks the worker's file and WebSocket protocol (spec sections 2.3-2.7, 5, 14)
with the Python standard library only. See ../README.md.
"""

__version__ = "0.0.0+standin"

import logging as _logging

FUNCNODES_LOGGER = _logging.getLogger("funcnodes")

# The names the manager's launcher uses (`fn.worker.…`, `fn.logging.…`), as the real package exposes them.
from . import logging, worker  # noqa: E402
