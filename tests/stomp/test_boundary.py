"""
The sans-I/O boundary of L{wsproto_tw.stomp}: every module but the Twisted
adapter imports neither Twisted nor zope.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

import wsproto_tw

# The modules that may import Twisted: the adapter and what it needs.
TWISTED_MODULES = ("wsproto_tw.stomp.options", "wsproto_tw.stomp.server", "wsproto_tw.stomp.relayclient")

_SCRIPT = """
import pkgutil, sys
import wsproto_tw.stomp
names = ["wsproto_tw.stomp"]
for info in pkgutil.walk_packages(wsproto_tw.stomp.__path__, "wsproto_tw.stomp."):
    if info.name in sys.argv[1].split(","):
        continue
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
    Tests for the import boundary of the sans-I/O STOMP modules.
    """

    def test_sansIOImportsNoTwisted(self):
        """
        Importing C{wsproto_tw.stomp} and every module in it except the
        Twisted adapter, in a fresh interpreter, loads no C{twisted} or
        C{zope} module.
        """
        root = os.path.dirname(os.path.dirname(os.path.abspath(wsproto_tw.__file__)))
        result = subprocess.run(
            [sys.executable, "-c", _SCRIPT, ",".join(TWISTED_MODULES)],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=60,
            env={**os.environ, "PYTHONPATH": root},
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        imported, leaked = result.stdout.splitlines()
        for name in ("broker", "config", "errors", "events", "frames", "relay", "routing", "session"):
            self.assertIn(f"wsproto_tw.stomp.{name}", imported.split(","))
        self.assertEqual(leaked, "")
