"""Stand-in for the FuncNodes Python worker, used by the Workermanager tests.

It speaks the worker's file and WebSocket protocol (spec sections 2.3-2.7, 5, 14)
with the Python standard library only. See ../README.md.
"""

__version__ = "0.0.0+standin"
