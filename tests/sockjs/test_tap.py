"""
Tests for C{twistd websocket --sockjs PREFIX}.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from tests.sockjs.helpers import Exchange
from wsproto_tw import tap
from wsproto_tw.resource import WebSocketSite

_UPGRADE = (
    b"GET /anywhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\r\n"
)


class _Reactor(Clock):
    """
    A clock that records system event triggers.
    """

    def __init__(self) -> None:
        super().__init__()
        self.triggers: list[tuple] = []

    def addSystemEventTrigger(self, phase, event, callable, *args):
        self.triggers.append((phase, event, callable, args))


def _site(*arguments: str, reactor: Clock | None = None) -> WebSocketSite:
    options = tap.Options()
    options.parseOptions(list(arguments))
    factory, listening = tap._listening(options, options.config(), reactor or Clock())
    return listening


class SockJSOptionTests(SynchronousTestCase):
    """
    Tests for the C{--sockjs} option.
    """

    def test_beside(self):
        """
        With C{--sockjs}, the prefix serves SockJS and every other path is
        still a WebSocket.
        """
        site = _site("--sockjs", "/sockjs", "--sockjs", "/a/b/")
        for path in (b"/sockjs/info", b"/a/b/info"):
            exchange = Exchange(site, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            response = exchange.response()
            self.assertEqual(response.status, 200, path)
            self.assertTrue(json.loads(response.body)["websocket"])
        exchange = Exchange(site, _UPGRADE)
        self.assertTrue(exchange.transport.value().startswith(b"HTTP/1.1 101 "))

    def test_broadcastShared(self):
        """
        With C{--mode broadcast}, SockJS clients join the same group as
        WebSocket clients, and the chat page is still served.
        """
        site = _site("--mode", "broadcast", "--sockjs", "/sockjs")
        self.assertEqual(Exchange(site, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").response().status, 200)
        ws = Exchange(site, _UPGRADE.replace(b"/anywhere", b"/ws"))
        self.assertTrue(ws.transport.value().startswith(b"HTTP/1.1 101 "))
        ws.transport.clear()
        poll = b"POST /sockjs/000/s/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        self.assertEqual(Exchange(site, poll).response().body, b"o\n")
        send = b'POST /sockjs/000/s/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n["hello"]'
        self.assertEqual(Exchange(site, send).response().status, 204)
        self.assertEqual(ws.transport.value(), b"\x81\x05hello")
        self.assertEqual(Exchange(site, poll).response().body, b'a["hello"]\n')

    def test_shutdown(self):
        """
        When the reactor shuts down, each prefix's sessions are told 1001
        within C{--shutdown-grace}.
        """
        reactor = _Reactor()
        _site("--sockjs", "/sockjs", "--shutdown-grace", "3", reactor=reactor)
        [(phase, event, shutdown, args)] = reactor.triggers
        self.assertEqual((phase, event, shutdown.__name__, args), ("before", "shutdown", "shutdown", (3.0,)))

    def test_badPrefix(self):
        """
        A prefix that is not a path below C{/} is a usage error.
        """
        for prefix in ("sockjs", "/", "//"):
            self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--sockjs", prefix])

    def test_none(self):
        """
        Without C{--sockjs}, what is served does not change.
        """
        options = tap.Options()
        options.parseOptions([])
        factory, listening = tap._listening(options, options.config(), Clock())
        self.assertIs(factory, listening)
