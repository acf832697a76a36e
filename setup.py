"""
Declares the C accelerator, C{wsproto_tw.core._speedups}; everything else is
in setup.cfg.

By default the extension is optional: when no C compiler is available it is
left out and wsproto_tw runs on its pure-Python code. Two environment
variables change that, at build time:

  - C{WSPROTO_TW_REQUIRE_SPEEDUPS=1}: a failure to compile the extension
    fails the build (C{run-tests.sh} sets it, so that it never tests an
    old build or none);
  - C{WSPROTO_TW_NO_SPEEDUPS=1}: the extension is not built at all (the same
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
        )
    ]

setup(ext_modules=extensions)
