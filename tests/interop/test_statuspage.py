"""
The metrics endpoint's C{/status} page in a real browser: Debian's
Chromium, headless, driven by Playwright (C{playwright-core}, as in
L{tests.interop.test_browser}), loads it after a scripted session against
our server on loopback, and the test reads the numbers the page shows.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.task import deferLater

from tests.interop.exchange import InteropTestCase
from tests.interop.tools import CHROMIUM_FLAGS
from tests.tools import QueueingClient
from wsproto_tw.client import connectWebSocket
from wsproto_tw.core.config import Config
from wsproto_tw.metrics import Health, Metrics, metricsSite
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory

#: What the server sends a client that asks for a flood: more than the
#: kernel's loopback buffers hold, so that the server's writes pause.
FLOOD = 32
FLOOD_SIZE = 1 << 20


class Server(WebSocketApplication):
    """
    Echoes every message; answers the text C{flood} with L{FLOOD} binary
    messages of L{FLOOD_SIZE} bytes.
    """

    def textMessageReceived(self, text: str) -> None:
        if text == "flood":
            for _ in range(FLOOD):
                self.transport.sendBinary(b"\x00" * FLOOD_SIZE)
        else:
            self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.transport.sendBinary(data)


def number(text: str) -> float:
    """
    @return: a number as the page shows it (with thousands separators).
    """
    return float(text.replace(",", ""))


class StatusPageTests(InteropTestCase):
    """
    C{/status} in Chromium.
    """

    async def waitFor(self, condition: Any, what: str) -> None:
        for _ in range(1000):
            if condition():
                return
            await deferLater(reactor, 0.01, lambda: None)
        self.fail(f"timed out waiting for {what}")

    async def test_statusAfterSession(self) -> None:
        """
        After an echo session closed with 1000, one closed with 4001, and a
        client that stopped reading while the server floods it, the page
        shows one open connection of three, the messages and wire bytes
        each way, the close codes, message rates once it has refreshed, and
        the flooded client as the slowest consumer. It loads nothing but
        C{/status} and C{status.json}.
        """
        registry = CollectorRegistry()
        metrics = Metrics(registry)
        serverConfig = Config(ping_interval=None, max_write_buffer=1 << 30, write_buffer_timeout=None)
        factory = WebSocketServerFactory(Server, serverConfig, reactor=reactor, metrics=metrics)
        port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        site = metricsSite(registry, Health(ready=True), metrics)
        metricsPort = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.addCleanup(metricsPort.stopListening)
        number_ = port.getHost().port

        async def connect(path: str) -> tuple[Any, QueueingClient]:
            client = QueueingClient()
            connection = await connectWebSocket(
                TCP4ClientEndpoint(reactor, "127.0.0.1", number_),
                f"ws://127.0.0.1:{number_}{path}",
                lambda: client,
                config=Config(ping_interval=None),
            )
            return connection, client

        first, firstApp = await connect("/one")
        first.sendText("hello")
        first.sendBinary(b"abc")
        self.assertEqual(await firstApp.messages.get(), "hello")
        self.assertEqual(await firstApp.messages.get(), b"abc")
        first.close(1000)
        await firstApp.lost

        second, secondApp = await connect("/two")
        second.sendText("x")
        self.assertEqual(await secondApp.messages.get(), "x")
        second.close(4001, "bye")
        await secondApp.lost

        slow, slowApp = await connect("/slow")
        self.addCleanup(lambda: slowApp.lost)
        self.addCleanup(slow.abortConnection)
        slow.pauseReading()
        slow.sendText("flood")
        await self.waitFor(
            lambda: len(factory.connections) == 1
            and next(iter(factory.connections)).writesPausedSince is not None,
            "the server's writes to the slow client to pause",
        )
        [serverSide] = factory.connections
        await self.waitFor(lambda: serverSide.statistics.binary_sent == FLOOD, "the flood to be queued")

        url = f"http://127.0.0.1:{metricsPort.getHost().port}/status?interval=0.2"
        browser = self.spawnNode("status.js", self.tools.chromium, url, "3", *CHROMIUM_FLAGS)
        shown = await browser.nextLine("what the status page shows", 90)
        self.assertNotIn("errors", shown, shown)
        figures, tables = shown["figures"], shown["tables"]
        snapshot = metrics.snapshot(reactor.seconds())

        self.assertEqual(number(figures["open"]), 1)
        self.assertEqual(number(figures["opened"]), 3)
        # hello, abc, x, flood in; hello, abc, x and the flood out.
        self.assertEqual(number(figures["messages-received"]), 4)
        self.assertEqual(number(figures["messages-sent"]), 3 + FLOOD)
        sent = sum(c.statistics.bytes_sent for c in (first, second, slow))
        self.assertEqual(number(figures["bytes-received"]), sent)
        self.assertEqual(number(figures["bytes-sent"]), snapshot["wireBytes"]["sent"])
        self.assertGreater(number(figures["bytes-sent"]), FLOOD * FLOOD_SIZE)
        # Rates are shown once two refreshes are apart; nothing moved since.
        for name in ("messages-received", "messages-sent", "bytes-received", "bytes-sent"):
            self.assertEqual(number(figures["rate-" + name]), 0, name)
        self.assertEqual(figures["ready"], "ready")
        self.assertEqual(figures["error"], "")
        self.assertEqual(tables["wires"], [["websocket", "1", "3"]])
        self.assertEqual(tables["close-codes"], [["1000", "1", "1", "0"], ["4001", "1", "1", "0"]])
        [row] = tables["slow-consumers"]
        self.assertFalse(shown["visible"]["slow-none"])
        self.assertEqual(row[0], f"127.0.0.1:{slow.getHost().port}")
        self.assertEqual(row[1], "/slow")
        self.assertGreaterEqual(number(row[2]), 0)
        self.assertEqual(number(row[4]), FLOOD)
        self.assertEqual(
            sorted({request.split("?")[0].rsplit("/", 1)[1] for request in shown["requests"]}),
            ["status", "status.json"],
        )
        await browser.stop()
