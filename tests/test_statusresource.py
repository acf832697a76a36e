"""
Tests for the data behind the metrics endpoint's C{/status} page:
L{Metrics.snapshot}, L{StatusResource} (C{/status.json}) and the page
itself (L{statusPage}), on connections driven over string transports and
a L{Clock}. The page is loaded in Chromium by
L{tests.interop.test_statuspage}.
"""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from tests.helpers import MASK, clientFrame, closePayload, requestBytes
from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.metrics import Health, Metrics, StatusResource, metricsSite, statusPage
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


class Echo(WebSocketApplication):
    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText(text)


class SnapshotTests(SynchronousTestCase):
    """
    L{Metrics.snapshot} and C{/status.json}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.metrics = Metrics(CollectorRegistry())
        self.factory = WebSocketServerFactory(
            Echo, Config(ping_interval=None), reactor=self.clock, metrics=self.metrics
        )

    def connect(self, port: int, path: str = "/chat") -> tuple:
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        protocol.makeConnection(transport)
        protocol.dataReceived(requestBytes(target=path))
        return protocol, transport

    def test_snapshot(self):
        """
        The snapshot holds the open connections, messages and bytes each
        way, close codes, and the connections whose writes are paused as
        slow consumers, paused longest first, with their times as seconds
        ago. What a paused connection's peer sends waits undelivered (its
        reading is paused too), but counts as activity.
        """
        self.clock.advance(100)
        gone, _ = self.connect(1)
        gone.dataReceived(clientFrame(Opcode.TEXT, b"hi", mask=MASK))
        gone.dataReceived(clientFrame(Opcode.CLOSE, closePayload(1000), mask=MASK))
        gone.connectionLost(None)
        slower, _ = self.connect(2, "/a")
        self.clock.advance(1)
        slow, _ = self.connect(3, "/b")
        fine, _ = self.connect(4)
        self.clock.advance(2)
        slower.connection.writesPaused()
        self.clock.advance(3)
        slow.connection.writesPaused()
        slow.dataReceived(clientFrame(Opcode.TEXT, b"hey", mask=MASK))
        self.clock.advance(4)
        snapshot = self.metrics.snapshot(self.clock.seconds())
        self.assertEqual((snapshot["open"], snapshot["opened"]), ({"websocket": 3}, {"websocket": 4}))
        # The slow connection's "hey" waits while its writes are paused.
        self.assertEqual(snapshot["messages"]["received"], {"text": 1, "binary": 0})
        self.assertEqual(snapshot["messages"]["sent"], {"text": 1, "binary": 0})
        self.assertEqual(snapshot["messageBytes"]["received"], {"text": 2, "binary": 0})
        self.assertEqual(snapshot["closeCodes"], {"received": {"1000": 1}, "sent": {"1000": 1}})
        self.assertEqual(snapshot["failures"], {})
        self.assertEqual(snapshot["handshakes"], {"101": 4})
        self.assertEqual(
            snapshot["slowConsumers"],
            [
                {"peer": "127.0.0.1:2", "path": "/a", "pausedFor": 7.0, "openFor": 10.0, "lastActivity": 10.0,
                 "messagesSent": 0, "bytesSent": slower.connection.statistics.bytes_sent},
                {"peer": "127.0.0.1:3", "path": "/b", "pausedFor": 4.0, "openFor": 9.0, "lastActivity": 4.0,
                 "messagesSent": 0, "bytesSent": slow.connection.statistics.bytes_sent},
            ],
        )
        self.assertEqual(self.metrics.snapshot(self.clock.seconds(), slowest=1)["slowConsumers"][0]["path"], "/a")
        slower.connection.writesResumed()
        self.assertEqual([c["path"] for c in self.metrics.snapshot(0)["slowConsumers"]], ["/b"])
        self.assertIsNotNone(fine)

    def test_statusJSON(self):
        """
        C{/status.json} is the snapshot as JSON, with the clock's time and
        the readiness.
        """
        self.clock.advance(5)
        self.connect(1)
        health = Health(ready=True)
        health.addReadinessCheck("broker", lambda: False)
        request = DummyRequest([b""])
        body = StatusResource(self.metrics, health, self.clock).render_GET(request)
        data = json.loads(body)
        self.assertEqual((data["time"], data["ready"], data["open"]), (5, False, {"websocket": 1}))
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-type"), [b"application/json"])


class PageTests(SynchronousTestCase):
    """
    The page itself, and where the metrics site serves it.
    """

    def test_selfContained(self):
        """
        The page loads nothing from elsewhere: no C{src} or C{href}
        attribute, no C{@import}, no URL but C{status.json}.
        """
        page = statusPage().data.decode("utf-8")
        self.assertNotRegex(page, r"\b(src|href)\s*=")
        self.assertNotIn("@import", page)
        self.assertNotRegex(page, r"https?://")
        self.assertEqual(re.findall(r"fetch\('([^']*)'", page), ["status.json"])

    def test_siteServesStatus(self):
        """
        L{metricsSite} given a L{Metrics} serves C{/status} and
        C{/status.json}; without one, neither.
        """
        metrics = Metrics(None)
        with_ = metricsSite(CollectorRegistry(), metrics=metrics, clock=Clock()).resource
        without = metricsSite(CollectorRegistry()).resource
        self.assertIn(b"status", with_.children)
        self.assertIsInstance(with_.children[b"status.json"], StatusResource)
        self.assertNotIn(b"status", without.children)
        self.assertNotIn(b"status.json", without.children)
