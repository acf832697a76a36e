"""
The sans-I/O boundary of L{wsproto_tw.sockjs}: its framing and session
modules import neither Twisted nor zope.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.tools import freshImports


class BoundaryTests(SynchronousTestCase):
    """
    Tests for the import boundary of the SockJS core.
    """

    def test_coreImportsNoTwisted(self):
        """
        Importing C{wsproto_tw.sockjs.frames}, C{session} and C{config}
        in a fresh interpreter loads no C{twisted} or C{zope} module.
        """
        imported, leaked = freshImports(
            self, ["wsproto_tw.sockjs.frames", "wsproto_tw.sockjs.session", "wsproto_tw.sockjs.config"]
        )
        self.assertIn("wsproto_tw.sockjs.session", imported)
        self.assertEqual(leaked, [])
