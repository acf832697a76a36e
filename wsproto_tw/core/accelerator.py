"""
The C accelerator (C{wsproto_tw.core._speedups}), looked up once for the
whole core.

Each core module that has a C counterpart for a hot function takes it from
L{speedups}; its pure-Python function stays the reference (the tests run
both) and is what runs when the accelerator is not built or the
environment variable C{WSPROTO_TW_NO_SPEEDUPS} is set to a non-empty value
when the core is first imported.
"""

from __future__ import annotations

import os
from types import ModuleType


#: Whether C code may run at all: false when C{WSPROTO_TW_NO_SPEEDUPS} is
#: set to a non-empty value (the Twisted layer's C helpers obey it too).
wanted: bool = not os.environ.get("WSPROTO_TW_NO_SPEEDUPS")


def _load() -> ModuleType | None:
    if not wanted:
        return None
    try:
        from wsproto_tw.core import _speedups
    except ImportError:
        return None
    return _speedups


#: The C accelerator module, or C{None} when the pure-Python code runs.
speedups: ModuleType | None = _load()
