"""
The sans-I/O boundary: the core imports neither Twisted nor zope.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.tools import freshImports


class BoundaryTests(SynchronousTestCase):
    """
    Tests for the import boundary of L{wsproto_tw.core}.
    """

    def test_coreImportsNoTwisted(self):
        """
        Importing C{wsproto_tw.core} and every module in it, in a fresh
        interpreter, loads no C{twisted} or C{zope} module.
        """
        imported, leaked = freshImports(self, ["wsproto_tw.core"])
        for name in ("codes", "config", "connection", "errors", "events", "frames", "handshake", "utf8"):
            self.assertIn(f"wsproto_tw.core.{name}", imported)
        self.assertEqual(leaked, [])
