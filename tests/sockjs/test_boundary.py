"""
The sans-I/O boundary of L{wsproto_tw.sockjs}: its framing and session
modules import neither Twisted nor zope.
"""

from __future__ import annotations

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

import wsproto_tw

_SCRIPT = """
import sys
import wsproto_tw.sockjs.frames, wsproto_tw.sockjs.session, wsproto_tw.sockjs.config
print(",".join(sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("twisted", "zope")
)))
print(",".join(sorted(name for name in sys.modules if name.startswith("wsproto_tw"))))
"""


class BoundaryTests(SynchronousTestCase):
    """
    Tests for the import boundary of the SockJS core.
    """

    def test_coreImportsNoTwisted(self):
        """
        Importing C{wsproto_tw.sockjs.frames}, C{session} and C{config}
        in a fresh interpreter loads no C{twisted} or C{zope} module.
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
        leaked, imported = result.stdout.splitlines()
        self.assertIn("wsproto_tw.sockjs.session", imported.split(","))
        self.assertEqual(leaked, "")
