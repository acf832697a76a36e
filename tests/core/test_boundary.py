"""
The sans-I/O boundary: the core imports neither Twisted nor zope.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

import wsproto_tw

_SCRIPT = """
import pkgutil, sys
import wsproto_tw.core
names = ["wsproto_tw.core"]
for info in pkgutil.walk_packages(wsproto_tw.core.__path__, "wsproto_tw.core."):
    __import__(info.name)
    names.append(info.name)
print(",".join(names))
print(",".join(sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("twisted", "zope")
)))
"""


class BoundaryTests(SynchronousTestCase):
    """
    Tests for the import boundary of L{wsproto_tw.core}.
    """

    def test_coreImportsNoTwisted(self):
        """
        Importing C{wsproto_tw.core} and every module in it, in a fresh
        interpreter, loads no C{twisted} or C{zope} module.
        """
        root = os.path.dirname(os.path.dirname(os.path.abspath(wsproto_tw.__file__)))
        result = subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=60,
            env={**os.environ, "PYTHONPATH": root},
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        imported, leaked = result.stdout.splitlines()
        for name in ("codes", "config", "connection", "errors", "events", "frames", "handshake", "utf8"):
            self.assertIn(f"wsproto_tw.core.{name}", imported.split(","))
        self.assertEqual(leaked, "")
