"""
Tests for L{wsproto_tw.sockjs.testserver}: the four services SockJS
conformance suites expect.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

from tests.sockjs.helpers import PRELUDE, Exchange
from wsproto_tw.sockjs.testserver import testRoot


def _fetch(site: Site, head: bytes, body: bytes = b"") -> Exchange:
    return Exchange(site, head + b"\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


class TestServerTests(SynchronousTestCase):
    """
    Tests for L{testRoot}.
    """

    def setUp(self):
        clock = Clock()
        # The site's channel timeouts on the test's clock too: on the global
        # reactor they would outlive this test and dirty a later one.
        self.site = Site(testRoot(clock), reactor=clock)

    def test_echoLimit(self):
        """
        C{/echo} ends a stream after 4096 bytes.
        """
        stream = _fetch(self.site, b"POST /echo/0/s/xhr_streaming HTTP/1.1")
        _fetch(self.site, b"POST /echo/0/s/xhr_send HTTP/1.1", b'["' + b"x" * 4096 + b'"]')
        response = stream.response()
        self.assertEqual(response.body, PRELUDE + b'o\na["' + b"x" * 4096 + b'"]\n')
        self.assertTrue(response.complete)

    def test_options(self):
        """
        C{/disabled_websocket_echo} has no WebSocket; C{/cookie_needed_echo}
        needs cookies.
        """
        info = json.loads(_fetch(self.site, b"GET /disabled_websocket_echo/info HTTP/1.1").response().body)
        self.assertFalse(info["websocket"])
        info = json.loads(_fetch(self.site, b"GET /cookie_needed_echo/info HTTP/1.1").response().body)
        self.assertTrue(info["cookie_needed"])

    def test_close(self):
        """
        C{/close} closes each session with C{3000 "Go away!"}.
        """
        response = _fetch(self.site, b"POST /close/0/s/xhr_streaming HTTP/1.1").response()
        self.assertEqual(response.body, PRELUDE + b'o\nc[3000,"Go away!"]\n')
