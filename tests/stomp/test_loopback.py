"""
STOMP over real loopback WebSocket connections: a L{StompServer}'s factory
listening on 127.0.0.1, and wsproto_tw's own client speaking STOMP frames.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from wsproto_tw.client import connect
from wsproto_tw.core.config import Config
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.server import StompServer

from tests.stomp.helpers import frame, sessionsGone
from tests.tools import QueueingClient


class LoopbackTests(TestCase):
    """
    Tests over loopback TCP with the global reactor.
    """

    timeout = 30

    def listen(self, config: StompConfig | None = None) -> tuple[StompServer, str]:
        server = StompServer(config or StompConfig(server="test", heart_beat=(0, 0)), reactor=reactor)
        port = reactor.listenTCP(0, server.webSocketFactory(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(sessionsGone, server, reactor)
        return server, f"ws://127.0.0.1:{port.getHost().port}/stomp"

    @inlineCallbacks
    def open(self, url: str, *subprotocols: str) -> Any:
        app = QueueingClient()
        transport = yield connect(url, lambda: app, config=Config(subprotocols=subprotocols), reactor=reactor)
        self.addCleanup(lambda: None if app.lost.called else transport.abortConnection())
        return app, transport

    @inlineCallbacks
    def test_seedScenario(self) -> Any:
        """
        A client offering C{v10.stomp, v11.stomp} gets C{v10.stomp} and a
        STOMP 1.0 session; it subscribes, sends, receives its message,
        and disconnects with a receipt before the server closes.
        """
        server, url = self.listen()
        app, transport = yield self.open(url, "v10.stomp", "v11.stomp")
        self.assertEqual(transport.subprotocol, "v10.stomp")
        transport.sendText(frame("CONNECT", "accept-version:1.0,1.1", "host:localhost").decode())
        connected = yield app.messages.get()
        self.assertEqual(connected, "CONNECTED\nversion:1.0\nserver:test\nsession:session-1\n\n\x00")
        transport.sendText(
            (frame("SUBSCRIBE", "destination:/topic/greetings", "receipt:s")
             + frame("SEND", "destination:/topic/greetings", body=b"hello")).decode()
        )
        self.assertEqual((yield app.messages.get()), "RECEIPT\nreceipt-id:s\n\n\x00")
        self.assertEqual(
            (yield app.messages.get()),
            "MESSAGE\ndestination:/topic/greetings\nmessage-id:1\nsubscription:/topic/greetings\n"
            "content-length:5\n\nhello\x00",
        )
        transport.sendText(frame("DISCONNECT", "receipt:bye").decode())
        self.assertEqual((yield app.messages.get()), "RECEIPT\nreceipt-id:bye\n\n\x00")
        closed = yield app.lost
        self.assertEqual((closed.code, closed.wasClean), (1000, True))
        yield sessionsGone(server, reactor)

    @inlineCallbacks
    def test_queueAndServerPublish(self) -> Any:
        """
        Two 1.2 clients share a queue in turn; a message published by
        server code reaches a topic subscriber; a binary body arrives in a
        binary message.
        """
        server, url = self.listen()
        apps = []
        for _ in range(2):
            app, transport = yield self.open(url, "v12.stomp")
            transport.sendText(
                (frame("CONNECT", "accept-version:1.2", "host:localhost")
                 + frame("SUBSCRIBE", "id:q", "destination:/queue/jobs")
                 + frame("SUBSCRIBE", "id:t", "destination:/topic/news", "receipt:ready")).decode()
            )
            self.assertTrue((yield app.messages.get()).startswith("CONNECTED\nversion:1.2\n"))
            self.assertEqual((yield app.messages.get()), "RECEIPT\nreceipt-id:ready\n\n\x00")
            apps.append((app, transport))
        first, second = apps
        first[1].sendBinary(frame("SEND", "destination:/queue/jobs", body=b"1") + frame("SEND", "destination:/queue/jobs", body=b"2"))
        one = yield first[0].messages.get()
        two = yield second[0].messages.get()
        self.assertTrue(one.endswith("\n\n1\x00") and two.endswith("\n\n2\x00"), (one, two))
        server.publish("/topic/news", b"\x00\xff", [("content-type", "application/octet-stream")])
        for app, _ in apps:
            self.assertEqual(
                (yield app.messages.get()).split(b"\n", 4)[4],
                b"content-type:application/octet-stream\ncontent-length:2\n\n\x00\xff\x00",
            )
        for app, transport in apps:
            transport.close()
            yield app.lost
