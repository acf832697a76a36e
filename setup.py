"""
Declares the C accelerators, C{wsproto_tw.core._speedups} (the core's
masking and buffers) and C{wsproto_tw._sockets} (a broadcast's sends, in
the Twisted layer); everything else is in setup.cfg.

By default the extensions are optional: when no C compiler is available they
are left out and wsproto_tw runs on its pure-Python code. Two environment
variables change that, at build time:

  - C{WSPROTO_TW_REQUIRE_SPEEDUPS=1}: a failure to compile the extensions
    fails the build (C{run-tests.sh} sets it, so that it never tests an
    old build or none);
  - C{WSPROTO_TW_NO_SPEEDUPS=1}: the extensions are not built at all (the same
    variable makes an installed accelerator unused at run time).
"""

import os

from setuptools import Extension, setup

if os.environ.get("WSPROTO_TW_NO_SPEEDUPS"):
    extensions = []
else:
    extensions = [
        Extension(
            "wsproto_tw.core._speedups",
            sources=["wsproto_tw/core/_speedups.c"],
            optional=not os.environ.get("WSPROTO_TW_REQUIRE_SPEEDUPS"),
        ),
        Extension(
            "wsproto_tw._sockets",
            sources=["wsproto_tw/_sockets.c"],
            optional=not os.environ.get("WSPROTO_TW_REQUIRE_SPEEDUPS"),
        ),
    ]

setup(ext_modules=extensions)
