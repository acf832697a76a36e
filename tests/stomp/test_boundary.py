"""
The sans-I/O boundary of L{wsproto_tw.stomp}: every module but the Twisted
adapter imports neither Twisted nor zope.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.tools import freshImports

# The modules that may import Twisted: the adapter and what it needs.
TWISTED_MODULES = ("wsproto_tw.stomp.options", "wsproto_tw.stomp.server", "wsproto_tw.stomp.relayclient")


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
        imported, leaked = freshImports(self, ["wsproto_tw.stomp"], skip=TWISTED_MODULES)
        for name in ("broker", "config", "errors", "events", "frames", "relay", "routing", "session"):
            self.assertIn(f"wsproto_tw.stomp.{name}", imported)
        self.assertEqual(leaked, [])
