"""
Tests for the C{headers} argument of L{wsproto_tw.client.connectWebSocket}
and L{wsproto_tw.client.connect}: (name, value) pairs or a mapping, as
other WebSocket libraries accept.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.test_client import requestHead, startFake
from wsproto_tw.client import connect


class HeadersTests(SynchronousTestCase):
    """
    Extra request headers may be given as pairs or as a mapping.
    """

    def test_mapping(self) -> None:
        """
        A dict of names to values is sent, one field per entry, in its
        order.
        """
        _, endpoint, _, _, _ = startFake(headers={"X-A": "1", "Authorization": "Bearer t0ken"})
        head = endpoint.transport.value().split(b"\r\n\r\n", 1)[0]
        self.assertIn(b"\r\nX-A: 1\r\nAuthorization: Bearer t0ken", head)
        self.assertEqual(requestHead(endpoint.transport)["x-a"], "1")

    def test_pairs(self) -> None:
        """
        (name, value) pairs are sent as given, repeated names included.
        """
        _, endpoint, _, _, _ = startFake(headers=[("X-A", "1"), ("X-A", "2")])
        self.assertIn(b"\r\nX-A: 1\r\nX-A: 2\r\n", endpoint.transport.value())

    def test_neither(self) -> None:
        """
        Anything else is a L{TypeError} saying what is expected, raised by
        the call itself before connecting.
        """
        for headers in (["X-A: 1"], [("X-A", "1", "2")], [None]):
            error = self.assertRaises(TypeError, connect, "ws://127.0.0.1:1/", object, headers=headers)
            self.assertEqual(
                str(error),
                f"headers must be (name, value) pairs or a mapping of names to values, not {headers[0]!r}",
            )
