"""
Tests for L{wsproto_tw.metrics}, L{wsproto_tw.logs} and the operations
options of C{twistd websocket} (C{--metrics}, C{--log-level},
C{--log-format}): a real scrape over loopback after real WebSocket
sessions, the collector over counters set by hand, the health resources,
and the service tree.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
import types
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from twisted.application.service import Application, MultiService
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock, deferLater
from twisted.internet.threads import deferToThread
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, Logger, LogLevel, formatEventAsClassicLogText
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody
from twisted.web.test.requesthelper import DummyRequest

from tests.helpers import requestBytes
from tests.tools import QueueingClient
from wsproto_tw import tap
from wsproto_tw.client import connectWebSocket
from wsproto_tw.core.config import Config
from wsproto_tw.core.errors import HandshakeRejected
from wsproto_tw.core.stats import RTT_BUCKETS, CloseRecord, Statistics
from wsproto_tw.errors import Reject
from wsproto_tw.logs import FastLogger, formatClassicText, logObserver, twistdLogFile
from wsproto_tw.metrics import (
    Health,
    HealthResource,
    HealthService,
    Metrics,
    MetricsResource,
    metricsSite,
)
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory

#: Every family a scrape shows, even before any connection.
FAMILIES = {
    "wsproto_tw_connections_open",
    "wsproto_tw_connections_opened",
    "wsproto_tw_handshakes",
    "wsproto_tw_messages_received",
    "wsproto_tw_messages_sent",
    "wsproto_tw_message_bytes_received",
    "wsproto_tw_message_bytes_sent",
    "wsproto_tw_wire_bytes_received",
    "wsproto_tw_wire_bytes_sent",
    "wsproto_tw_close_codes_received",
    "wsproto_tw_close_codes_sent",
    "wsproto_tw_failures",
    "wsproto_tw_ping_rtt_seconds",
    "wsproto_tw_slow_consumer_drops",
    "wsproto_tw_read_pauses",
    "wsproto_tw_compression_input_bytes",
    "wsproto_tw_compression_output_bytes",
    "wsproto_tw_compression_ratio",
}


def samples(text: str) -> dict[tuple, float]:
    """
    @return: every sample of a scrape in the text format, keyed by its name
        and its sorted label pairs.
    """
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def families(text: str) -> set[str]:
    """
    @return: the names of the families of a scrape.
    """
    return {family.name for family in text_string_to_metric_families(text)}


class ServerApplication(WebSocketApplication):
    """
    Echoes every message, refuses the path C{/forbidden} with 403, and
    fails on the text C{boom}.
    """

    def requestReceived(self, request: Any) -> None:
        if request.path == "/forbidden":
            raise Reject(403, "forbidden")

    def textMessageReceived(self, text: str) -> None:
        if text == "boom":
            raise RuntimeError("boom")
        self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.transport.sendBinary(data)


class LoopbackScrapeTests(TestCase):
    """
    A server with metrics on one loopback port, its metrics site on
    another, and the project's own client.
    """

    def setUp(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.factory = WebSocketServerFactory(
            ServerApplication, Config(ping_interval=None), reactor=reactor, metrics=self.metrics
        )
        self.health = Health(ready=True)
        return self._listen()

    @inlineCallbacks
    def _listen(self) -> Any:
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(self.factory)
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        site = metricsSite(self.registry, self.health)
        metricsPort = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.addCleanup(metricsPort.stopListening)
        self.metricsURL = f"http://127.0.0.1:{metricsPort.getHost().port}"

    @inlineCallbacks
    def get(self, path: str) -> Any:
        """
        GET a path of the metrics site.

        @return: a Deferred firing with the status code and the body.
        """
        from twisted.web.client import HTTPConnectionPool

        pool = HTTPConnectionPool(reactor, persistent=False)
        response = yield Agent(reactor, pool=pool).request(b"GET", (self.metricsURL + path).encode("ascii"))
        body = yield readBody(response)
        return response.code, body

    @inlineCallbacks
    def scrape(self) -> Any:
        """
        @return: a Deferred firing with the samples of C{/metrics}.
        """
        code, body = yield self.get("/metrics")
        self.assertEqual(code, 200)
        return samples(body.decode("utf-8"))

    def connect(self, path: str = "/chat") -> tuple[Deferred, QueueingClient]:
        application = QueueingClient()
        d = connectWebSocket(
            TCP4ClientEndpoint(reactor, "127.0.0.1", self.port),
            f"ws://127.0.0.1:{self.port}{path}",
            lambda: application,
            config=Config(ping_interval=None),
        )
        return d, application

    @inlineCallbacks
    def serverIdle(self) -> Any:
        """
        Wait until the server has forgotten every connection.
        """
        for _ in range(500):
            if not self.factory.connections:
                return
            yield deferLater(reactor, 0.01, lambda: None)
        self.fail(f"connections left: {self.factory.connections}")

    @inlineCallbacks
    def test_scrapeAfterSessions(self) -> Any:
        """
        After an echo session closed by the client, a connection the
        server fails, and a refused handshake, C{/metrics} counts exactly
        what happened: connections, handshakes by status, messages and
        payload bytes by type, wire bytes (as the clients counted them),
        close codes and failures.
        """
        before = yield self.scrape()
        self.assertEqual(before[("wsproto_tw_connections_opened_total", ("wire", "websocket"))], 0)

        d, first = self.connect()
        echo = yield d
        echo.sendText("h\u00e9llo")
        echo.sendBinary(b"abc")
        self.assertEqual((yield first.messages.get()), "h\u00e9llo")
        self.assertEqual((yield first.messages.get()), b"abc")
        during = yield self.scrape()
        self.assertEqual(during[("wsproto_tw_connections_open", ("wire", "websocket"))], 1)
        self.assertEqual(during[("wsproto_tw_messages_received_total", ("type", "text"))], 1)
        echo.close(4000, "done")
        closed = yield first.lost
        self.assertEqual((closed.code, closed.wasClean), (4000, True))
        yield self.serverIdle()
        # Every byte either side sent, the other received.
        one = yield self.scrape()
        self.assertEqual(
            (one[("wsproto_tw_wire_bytes_received_total",)], one[("wsproto_tw_wire_bytes_sent_total",)]),
            (echo.statistics.bytes_sent, echo.statistics.bytes_received),
        )

        d, second = self.connect()
        failing = yield d
        failing.sendText("boom")
        closed = yield second.lost
        self.assertEqual(closed.code, 1011)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        yield self.serverIdle()

        after = yield self.scrape()
        expected = {
            ("wsproto_tw_connections_open", ("wire", "websocket")): 0,
            ("wsproto_tw_connections_opened_total", ("wire", "websocket")): 2,
            ("wsproto_tw_handshakes_total", ("status", "101")): 2,
            ("wsproto_tw_messages_received_total", ("type", "text")): 2,
            ("wsproto_tw_messages_received_total", ("type", "binary")): 1,
            ("wsproto_tw_messages_sent_total", ("type", "text")): 1,
            ("wsproto_tw_messages_sent_total", ("type", "binary")): 1,
            ("wsproto_tw_message_bytes_received_total", ("type", "text")): 6 + 4,
            ("wsproto_tw_message_bytes_received_total", ("type", "binary")): 3,
            ("wsproto_tw_message_bytes_sent_total", ("type", "text")): 6,
            ("wsproto_tw_message_bytes_sent_total", ("type", "binary")): 3,
            ("wsproto_tw_close_codes_received_total", ("code", "4000")): 1,
            ("wsproto_tw_close_codes_sent_total", ("code", "4000")): 1,
            ("wsproto_tw_close_codes_sent_total", ("code", "1011")): 1,
            ("wsproto_tw_failures_total", ("code", "1011")): 1,
            ("wsproto_tw_slow_consumer_drops_total",): 0,
            ("wsproto_tw_ping_rtt_seconds_count",): 0,
            ("wsproto_tw_wire_bytes_sent_total",): echo.statistics.bytes_received + failing.statistics.bytes_received,
        }
        self.maxDiff = None
        self.assertEqual({key: after.get(key) for key in expected}, expected)
        # The server closed the failed connection at once: the client's
        # answering Close frame (8 bytes) may or may not have been read.
        received = after[("wsproto_tw_wire_bytes_received_total",)]
        sent = echo.statistics.bytes_sent + failing.statistics.bytes_sent
        self.assertIn(received, (sent, sent - 8))
        # Nothing else was counted: no other status, code or failure.
        for name in ("handshakes_total", "close_codes_received_total", "close_codes_sent_total", "failures_total"):
            keys = {key for key in after if key[0] == "wsproto_tw_" + name}
            self.assertEqual(keys, {key for key in expected if key[0] == "wsproto_tw_" + name})

        d, third = self.connect("/forbidden")
        error = yield self.assertFailure(d, HandshakeRejected)
        self.assertEqual(error.status, 403)
        yield self.serverIdle()
        refused = yield self.scrape()
        self.assertEqual(refused[("wsproto_tw_handshakes_total", ("status", "403"))], 1)
        self.assertEqual(refused[("wsproto_tw_connections_opened_total", ("wire", "websocket"))], 2)
        self.assertGreater(
            refused[("wsproto_tw_wire_bytes_received_total",)], after[("wsproto_tw_wire_bytes_received_total",)]
        )

    @inlineCallbacks
    def test_everyFamily(self) -> Any:
        """
        A scrape shows every family, before any connection too.
        """
        code, body = yield self.get("/metrics")
        self.assertEqual(code, 200)
        self.assertEqual(families(body.decode("utf-8")) & FAMILIES, FAMILIES)

    @inlineCallbacks
    def test_healthStates(self) -> Any:
        """
        C{/health} and C{/readyz} answer 200 C{ok} while the server is
        ready and 503 once it is not; C{/healthz} answers 200 either way.
        """
        for path in ("/health", "/readyz", "/healthz"):
            self.assertEqual((yield self.get(path)), (200, b"ok\n"))
        self.health.ready = False
        for path in ("/health", "/readyz"):
            self.assertEqual((yield self.get(path)), (503, b"not ready\n"))
        self.assertEqual((yield self.get("/healthz")), (200, b"ok\n"))


class ResourceScrapeTests(TestCase):
    """
    Metrics of a L{WebSocketResource} on a C{twisted.web} site, scraped from
    a L{MetricsResource} mounted on the same site.
    """

    @inlineCallbacks
    def test_resourceConnections(self):
        """
        A watched resource's connections are counted, and the metrics
        resource serves them from the same site.
        """
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        from wsproto_tw.resource import WebSocketResource

        registry = CollectorRegistry()
        metrics = Metrics(registry)
        webSocket = WebSocketResource(ServerApplication, Config(ping_interval=None), reactor)
        metrics.watch(webSocket.webSocketFactory)
        root = Resource()
        root.putChild(b"ws", webSocket)
        root.putChild(b"metrics", MetricsResource(registry))
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(root))
        self.addCleanup(port.stopListening)
        number = port.getHost().port
        application = QueueingClient()
        connection = yield connectWebSocket(
            TCP4ClientEndpoint(reactor, "127.0.0.1", number), f"ws://127.0.0.1:{number}/ws", lambda: application
        )
        connection.sendText("hi")
        self.assertEqual((yield application.messages.get()), "hi")
        connection.close()
        yield application.lost
        for _ in range(500):
            if not webSocket.webSocketFactory.connections:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        from twisted.web.client import HTTPConnectionPool

        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        response = yield agent.request(b"GET", f"http://127.0.0.1:{number}/metrics".encode("ascii"))
        scraped = samples((yield readBody(response)).decode("utf-8"))
        self.assertEqual(
            (
                scraped[("wsproto_tw_connections_opened_total", ("wire", "websocket"))],
                scraped[("wsproto_tw_connections_open", ("wire", "websocket"))],
                scraped[("wsproto_tw_messages_received_total", ("type", "text"))],
                scraped[("wsproto_tw_close_codes_received_total", ("code", "1000"))],
                scraped[("wsproto_tw_wire_bytes_received_total",)],
            ),
            (1, 0, 1, 1, connection.statistics.bytes_sent),
        )


class FakeConnection:
    """
    What L{Metrics} reads of a connection.
    """

    def __init__(self, wire: Any = None, record: CloseRecord = CloseRecord(None, None, None)) -> None:
        self.statistics = Statistics()
        self.statistics.handshake_status = 101
        self.closeRecord = record
        self.wire = wire


class FakeFactory:
    """
    What L{Metrics} reads of a factory.
    """

    metrics: Any = None

    def __init__(self) -> None:
        self.connections: set = set()


class H2Wire:
    """
    A wire that names itself.
    """

    wireName = "http2"


class CollectorTests(SynchronousTestCase):
    """
    L{Metrics} adds up the counters of live and closed connections.
    """

    def setUp(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.factory = FakeFactory()
        self.metrics.watch(self.factory)

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def test_watchSetsMetrics(self):
        """
        C{watch} makes the factory's C{metrics} the collector, once.
        """
        self.metrics.watch(self.factory)
        self.assertIs(self.factory.metrics, self.metrics)
        self.assertEqual(self.metrics.factories, [self.factory])

    def test_factoryArgument(self):
        """
        L{WebSocketServerFactory}C{(metrics=)} watches the factory.
        """
        factory = WebSocketServerFactory(WebSocketApplication, reactor=object(), metrics=self.metrics)
        self.assertIs(factory.metrics, self.metrics)
        self.assertIn(factory, self.metrics.factories)
        self.assertIsNone(WebSocketServerFactory(WebSocketApplication, reactor=object()).metrics)

    def test_liveThenClosed(self):
        """
        A live connection's counters show at scrape time; once it is closed
        they stay in the totals, and it no longer counts as open.
        """
        connection = FakeConnection(record=CloseRecord(1000, 1000, None))
        connection.statistics.text_received = 3
        connection.statistics.text_bytes_received = 30
        self.factory.connections.add(connection)
        self.assertEqual(self.value("wsproto_tw_connections_open", wire="websocket"), 1)
        self.assertEqual(self.value("wsproto_tw_messages_received_total", type="text"), 3)
        self.assertIsNone(self.value("wsproto_tw_close_codes_sent_total", code="1000"))
        self.metrics.closed(connection)
        self.factory.connections.discard(connection)
        self.assertEqual(self.value("wsproto_tw_connections_open", wire="websocket"), 0)
        self.assertEqual(self.value("wsproto_tw_connections_opened_total", wire="websocket"), 1)
        self.assertEqual(self.value("wsproto_tw_messages_received_total", type="text"), 3)
        self.assertEqual(self.value("wsproto_tw_message_bytes_received_total", type="text"), 30)
        self.assertEqual(self.value("wsproto_tw_close_codes_sent_total", code="1000"), 1)
        self.assertEqual(self.value("wsproto_tw_close_codes_received_total", code="1000"), 1)

    def test_wireLabel(self):
        """
        A connection is counted under its wire's C{wireName}, else under
        C{websocket}; a wire seen once stays in the gauge.
        """
        stream = FakeConnection(H2Wire())
        self.factory.connections.update({stream, FakeConnection(object())})
        self.assertEqual(self.value("wsproto_tw_connections_open", wire="http2"), 1)
        self.assertEqual(self.value("wsproto_tw_connections_open", wire="websocket"), 1)
        self.metrics.closed(stream)
        self.factory.connections.discard(stream)
        # Once seen, a wire shows 0 open rather than nothing.
        self.assertEqual(self.value("wsproto_tw_connections_open", wire="http2"), 0)
        self.assertEqual(self.value("wsproto_tw_connections_opened_total", wire="http2"), 1)

    def test_unopenedConnections(self):
        """
        A connection whose handshake is unanswered or refused is not open,
        and only an answered handshake counts; one whose wire never
        connected counts nothing.
        """
        waiting, refused = FakeConnection(), FakeConnection()
        waiting.statistics.handshake_status = None
        refused.statistics.handshake_status = 503
        unconnected = FakeConnection()
        unconnected.statistics = None
        self.factory.connections.update({waiting, refused, unconnected})
        self.assertEqual(self.value("wsproto_tw_connections_open", wire="websocket"), 0)
        self.assertEqual(self.value("wsproto_tw_handshakes_total", status="503"), 1)
        self.metrics.closed(unconnected)
        self.assertEqual(self.value("wsproto_tw_connections_opened_total", wire="websocket"), 0)

    def test_roundTripHistogram(self):
        """
        Keepalive round trips of live and closed connections make one
        cumulative histogram.
        """
        closed, live = FakeConnection(), FakeConnection()
        closed.statistics.round_trip(0.002)
        closed.statistics.round_trip(0.3)
        live.statistics.round_trip(0.002)
        self.metrics.closed(closed)
        self.factory.connections.add(live)
        self.assertEqual(self.value("wsproto_tw_ping_rtt_seconds_bucket", le="0.001"), 0)
        self.assertEqual(self.value("wsproto_tw_ping_rtt_seconds_bucket", le="0.0025"), 2)
        self.assertEqual(self.value("wsproto_tw_ping_rtt_seconds_bucket", le="0.25"), 2)
        self.assertEqual(self.value("wsproto_tw_ping_rtt_seconds_bucket", le="0.5"), 3)
        self.assertEqual(self.value("wsproto_tw_ping_rtt_seconds_bucket", le="+Inf"), 3)
        self.assertEqual(self.value("wsproto_tw_ping_rtt_seconds_count"), 3)
        self.assertAlmostEqual(self.value("wsproto_tw_ping_rtt_seconds_sum"), 0.304)
        self.assertEqual(len(RTT_BUCKETS), 13)

    def test_slowConsumersAndPauses(self):
        """
        Slow-consumer drops and read pauses are counted, pauses by reason
        in lower case.
        """
        dropped, paused = FakeConnection(CloseRecord(1008, None, 1008)), FakeConnection()
        dropped.closeRecord = CloseRecord(1008, None, 1008)
        dropped.statistics.slow_consumer_drops = 1
        dropped.statistics.read_paused("WRITES")
        paused.statistics.read_paused("WRITES")
        paused.statistics.read_paused("BACKLOG")
        self.metrics.closed(dropped)
        self.factory.connections.add(paused)
        self.assertEqual(self.value("wsproto_tw_slow_consumer_drops_total"), 1)
        self.assertEqual(self.value("wsproto_tw_failures_total", code="1008"), 1)
        self.assertEqual(self.value("wsproto_tw_read_pauses_total", reason="writes"), 2)
        self.assertEqual(self.value("wsproto_tw_read_pauses_total", reason="backlog"), 1)

    def test_compressionRatio(self):
        """
        The compression ratio is the uncompressed over the compressed bytes
        of the messages sent compressed; without any, it has no sample.
        """
        self.assertIsNone(self.value("wsproto_tw_compression_ratio"))
        connection = FakeConnection()
        connection.statistics.deflate_bytes_in = 1000
        connection.statistics.deflate_bytes_out = 250
        self.factory.connections.add(connection)
        self.assertEqual(self.value("wsproto_tw_compression_ratio"), 4.0)
        self.assertEqual(self.value("wsproto_tw_compression_input_bytes_total"), 1000)
        self.assertEqual(self.value("wsproto_tw_compression_output_bytes_total"), 250)

    def test_describeWithoutCollecting(self):
        """
        Registering asks L{Metrics.describe}, which names every family
        without reading any connection.
        """
        self.assertEqual({family.name for family in self.metrics.describe()}, FAMILIES)
        self.assertEqual([family.samples for family in self.metrics.describe()], [[]] * len(FAMILIES))


class ConnectionCountsTests(SynchronousTestCase):
    """
    What the Twisted layer counts for metrics: read pauses by reason and
    slow-consumer drops, on a server connection over a L{StringTransport}.
    """

    def serve(self, config: Config) -> tuple[Any, Any, CollectorRegistry]:
        registry = CollectorRegistry()
        factory = WebSocketServerFactory(WebSocketApplication, config, reactor=Clock(), metrics=Metrics(registry))
        wire = factory.buildProtocol(None)
        transport = StringTransport()
        wire.makeConnection(transport)
        wire.dataReceived(requestBytes())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))
        return wire, transport, registry

    def test_readPauses(self):
        """
        Each time reading stops, the reason is counted: the application
        pausing it, the peer not reading our writes.
        """
        wire, transport, registry = self.serve(Config(ping_interval=None))
        wire.connection.pauseReading()
        wire.connection.resumeReading()
        wire.pauseProducing()
        self.assertEqual(registry.get_sample_value("wsproto_tw_read_pauses_total", {"reason": "application"}), 1)
        self.assertEqual(registry.get_sample_value("wsproto_tw_read_pauses_total", {"reason": "writes"}), 1)

    def test_slowConsumerDropped(self):
        """
        A peer dropped for not reading counts once as a slow consumer, and
        as a failure with 1008 once it is gone.
        """
        wire, transport, registry = self.serve(Config(ping_interval=None, max_write_buffer=1000))
        wire.pauseProducing()
        wire.connection.sendBinary(b"x" * 600)
        wire.connection.sendBinary(b"x" * 600)
        self.assertTrue(transport.disconnected)
        self.assertEqual(registry.get_sample_value("wsproto_tw_slow_consumer_drops_total"), 1)
        wire.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(registry.get_sample_value("wsproto_tw_slow_consumer_drops_total"), 1)
        self.assertEqual(registry.get_sample_value("wsproto_tw_failures_total", {"code": "1008"}), 1)
        self.assertEqual(registry.get_sample_value("wsproto_tw_connections_open", {"wire": "websocket"}), 0)


class ResourceTests(SynchronousTestCase):
    """
    L{MetricsResource} and L{HealthResource} render in the reactor thread.
    """

    def test_metricsText(self):
        """
        L{MetricsResource} renders its registry in the Prometheus text
        format.
        """
        registry = CollectorRegistry()
        Metrics(registry)
        request = DummyRequest([b""])
        body = MetricsResource(registry).render_GET(request)
        self.assertTrue(request.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))
        self.assertEqual(families(body.decode("utf-8")), FAMILIES)

    def test_metricsOpenMetrics(self):
        """
        A scraper asking for OpenMetrics gets it.
        """
        registry = CollectorRegistry()
        Metrics(registry)
        request = DummyRequest([b""])
        request.requestHeaders.setRawHeaders(b"accept", [b"application/openmetrics-text; version=1.0.0"])
        body = MetricsResource(registry).render_GET(request)
        self.assertTrue(
            request.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"application/openmetrics-text")
        )
        self.assertTrue(body.endswith(b"# EOF\n"))

    def test_readiness(self):
        """
        A readiness resource answers 503 while its L{Health} is not ready;
        a liveness one answers 200 regardless.
        """
        health = Health()
        request = DummyRequest([b""])
        self.assertEqual(HealthResource(health).render_GET(request), b"not ready\n")
        self.assertEqual(request.responseCode, 503)
        request = DummyRequest([b""])
        self.assertEqual(HealthResource(health, ready=False).render_GET(request), b"ok\n")
        self.assertEqual(request.responseCode, None)  # 200, the default
        health.ready = True
        request = DummyRequest([b""])
        self.assertEqual(HealthResource(health).render_GET(request), b"ok\n")
        self.assertIsNone(request.responseCode)

    def test_readinessChecks(self):
        """
        While a readiness check added with L{Health.addReadinessCheck}
        returns a false value or raises, C{/readyz} answers 503 naming it;
        liveness is not affected; a removed check no longer counts.
        """
        health = Health(ready=True)
        broker = {"connected": False}
        health.addReadinessCheck("broker", lambda: broker["connected"])
        health.addReadinessCheck("bus", lambda: 1 / 0)

        def get(resource: HealthResource) -> tuple[int | None, bytes]:
            request = DummyRequest([b""])
            body = resource.render_GET(request)
            return request.responseCode, body

        self.assertEqual(get(HealthResource(health)), (503, b"not ready: broker, bus\n"))
        self.assertEqual(get(HealthResource(health, ready=False)), (None, b"ok\n"))
        broker["connected"] = True
        self.assertEqual(get(HealthResource(health)), (503, b"not ready: bus\n"))
        health.removeReadinessCheck("bus")
        self.assertEqual(get(HealthResource(health)), (None, b"ok\n"))
        health.ready = False
        broker["connected"] = False
        self.assertEqual(get(HealthResource(health)), (503, b"not ready: stopping, broker\n"))

    def test_healthService(self):
        """
        L{HealthService} makes its L{Health} ready when started and not
        ready when stopped.
        """
        health = Health()
        service = HealthService(health)
        service.startService()
        self.assertTrue(health.ready)
        service.stopService()
        self.assertFalse(health.ready)

    def test_siteWritesNoAccessLog(self):
        """
        The metrics site writes no access log line.
        """
        site = metricsSite(CollectorRegistry())
        written = []
        site.logFile = io.StringIO()
        site._logFormatter = lambda *a: written.append(a) or "line\n"
        site.log(DummyRequest([b"metrics"]))
        self.assertEqual((written, site.logFile.getvalue()), ([], ""))


def parse(*argv: str) -> tap.Options:
    options = tap.Options()
    options.parseOptions(list(argv))
    return options


class TapOptionsTests(SynchronousTestCase):
    """
    C{twistd websocket --metrics}, C{--log-level}, C{--log-format}.
    """

    def test_defaults(self):
        """
        By default there is no metrics endpoint: the service is the
        WebSocket one, whose children listen; twistd's log goes through
        wsproto_tw's observer, at C{info}, in twistd's text lines written
        by L{formatClassicText}.
        """
        options = parse("--port", "tcp:0")
        self.assertEqual((options["metrics"], options["log-level"], options["log-format"]), (None, None, None))
        path = self.mktemp()
        options.parent = {"logfile": path}  # as twistd --logfile PATH
        self.addCleanup(signal.signal, signal.SIGUSR1, signal.getsignal(signal.SIGUSR1))
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        service = tap.makeService(options)
        self.assertIsInstance(service, MultiService)
        self.assertEqual([type(child).__name__ for child in service][-1], "ListeningService")
        event = dict(
            log_format="opened {peer} {path}", peer="127.0.0.1:5", path="/",
            log_time=time.time(), log_namespace="wsproto_tw", log_level=LogLevel.info,
        )
        service.logObserver(dict(event))
        service.logObserver(dict(event, log_level=LogLevel.debug, peer="127.0.0.1:6"))
        with open(path) as f:
            self.assertEqual(f.read(), formatClassicText(event))

    def test_metricsEndpoint(self):
        """
        C{--metrics} takes an endpoint description; a bare number is a TCP
        port; anything else is a usage error.
        """
        self.assertEqual(parse("--metrics", "9108")["metrics"], "tcp:9108")
        self.assertEqual(parse("--metrics", "tcp:9108:interface=127.0.0.1")["metrics"], "tcp:9108:interface=127.0.0.1")
        error = self.assertRaises(UsageError, parse, "--metrics", "many")
        self.assertIn("--metrics many: not an endpoint", str(error))

    def test_logValues(self):
        """
        C{--log-level} and C{--log-format} take known names, in any case.
        """
        options = parse("--log-level", "WARN", "--log-format", "JSON")
        self.assertEqual((options["log-level"], options["log-format"]), ("warn", "json"))
        self.assertIn("not 'loud'", str(self.assertRaises(UsageError, parse, "--log-level", "loud")))
        self.assertIn("text or json", str(self.assertRaises(UsageError, parse, "--log-format", "xml")))

    def test_serviceOrder(self):
        """
        With C{--metrics}, the root holds the metrics endpoint, the
        WebSocket service and the health service, in that order: stopping
        turns readiness off first and stops the metrics endpoint last.
        """
        service = tap.makeService(parse("--port", "tcp:0", "--metrics", "tcp:0"))
        children = list(service)
        self.assertEqual(
            [type(child).__name__ for child in children], ["_MetricsPort", "_OperationsService", "HealthService"]
        )
        self.assertIs(children[2].health, service.health)
        # The root gives twistd the log observer; the WebSocket service inside does not.
        self.assertIsNotNone(service.logObserver)
        self.assertIsNone(children[1].logObserver)
        [factory] = {c.factory for c in children[1] if isinstance(getattr(c, "factory", None), WebSocketServerFactory)}
        self.assertEqual(factory.metrics.factories, [factory])



class TapServiceTests(TestCase):
    """
    The C{twistd websocket --metrics} service, started and stopped.
    """

    @inlineCallbacks
    def test_stoppingTurnsUnreadyFirst(self):
        """
        Stopping the service turns readiness off before the WebSocket
        factory is told to shut down, and the metrics endpoint waits for
        its connections.
        """
        service = tap.makeService(
            parse("--port", "tcp:0:interface=127.0.0.1", "--metrics", "tcp:0:interface=127.0.0.1")
        )
        [factory] = {
            c.factory for c in list(service)[1] if isinstance(getattr(c, "factory", None), WebSocketServerFactory)
        }
        seen = []
        original = factory.shutdown

        def recordingShutdown(**kwargs: Any) -> Deferred:
            seen.append(service.health.ready)
            return original(**kwargs)

        factory.shutdown = recordingShutdown
        service.privilegedStartService()
        service.startService()
        self.assertTrue(service.health.ready)
        yield service.stopService()
        self.assertFalse(service.health.ready)
        self.assertEqual(seen, [False, False])


class TwistdTests(TestCase):
    """
    A real C{twistd websocket --metrics ... --log-format json}.
    """

    @inlineCallbacks
    def test_readinessDuringShutdown(self):
        """
        The metrics endpoint serves C{/metrics} and C{/readyz}; on SIGTERM,
        C{/readyz} answers 503 while a connection is still being closed
        (here, a client that does not read, so its close waits), and the
        log is JSON lines carrying the events' fields by name.
        """
        from tests.processes import Twistd

        process = Twistd(
            self,
            "--port", "tcp:0:interface=127.0.0.1",
            "--metrics", "tcp:0:interface=127.0.0.1",
            "--log-format", "json",
            "--shutdown-grace", "20",
        )
        metricsPort = int(process.waitFor(r'"metrics starting on (\d+)"').group(1))
        port = int(process.waitFor(r'"WebSocketServerFactory starting on (\d+)"').group(1))
        base = f"http://127.0.0.1:{metricsPort}"

        @inlineCallbacks
        def get(path: str) -> Any:
            from twisted.web.client import HTTPConnectionPool

            agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
            response = yield agent.request(b"GET", (base + path).encode("ascii"))
            body = yield readBody(response)
            return response.code, body

        self.assertEqual((yield get("/readyz")), (200, b"ok\n"))
        application = QueueingClient()
        connection = yield connectWebSocket(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port), f"ws://127.0.0.1:{port}/", lambda: application
        )
        connection.sendText("hello")
        self.assertEqual((yield application.messages.get()), "hello")
        code, body = yield get("/metrics")
        scraped = samples(body.decode("utf-8"))
        self.assertEqual(scraped[("wsproto_tw_connections_open", ("wire", "websocket"))], 1)
        self.assertEqual(scraped[("wsproto_tw_messages_sent_total", ("type", "text"))], 1)
        self.assertIn(("process_cpu_seconds_total",), scraped)

        connection.pauseReading()
        process.process.terminate()
        for _ in range(500):
            code, body = yield get("/readyz")
            if code == 503:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        self.assertEqual((code, body), (503, b"not ready\n"))
        self.assertEqual((yield get("/healthz")), (200, b"ok\n"))
        self.assertFalse(application.lost.called)
        connection.resumeReading()
        closed = yield application.lost
        self.assertEqual(closed.code, 1001)
        yield deferToThread(process.process.wait, 30)
        output = process.stop()
        events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        [opened] = [event for event in events if event.get("log_format", "").startswith("opened {peer}")]
        self.assertEqual((opened["path"], opened["log_namespace"]), ("/", "wsproto_tw"))
        self.assertRegex(opened["peer"], r"^127\.0\.0\.1:\d+$")
        [closedEvent] = [event for event in events if event.get("log_format", "").startswith("closed {peer}")]
        self.assertEqual((closedEvent["code"], closedEvent["clean"]), (1001, True))


class LogTests(SynchronousTestCase):
    """
    L{wsproto_tw.logs}: the level filter, JSON lines, and twistd's log file.
    """

    def test_levelDropsInfo(self):
        """
        At C{warn}, info events are dropped and warnings written.
        """
        out = io.StringIO()
        log = Logger(namespace="wsproto_tw", observer=logObserver(out, "warn"))
        log.info("opened {peer}", peer="127.0.0.1:1")
        log.warn("dropping {peer}", peer="127.0.0.1:2")
        self.assertNotIn("127.0.0.1:1", out.getvalue())
        self.assertIn("dropping 127.0.0.1:2", out.getvalue())

    def test_textObserverIsAFunction(self):
        """
        The text observer is a plain function that provides
        L{ILogObserver} (the log publisher calls it as a Python function,
        not through a C{__call__} slot), and writes each line as it comes,
        flushed.
        """
        flushed = []

        class Out(io.StringIO):
            def flush(self) -> None:
                flushed.append(self.getvalue())

        out = Out()
        observer = logObserver(out, "info")
        self.assertIsInstance(observer, types.FunctionType)
        self.assertTrue(ILogObserver.providedBy(observer))
        log = Logger(namespace="wsproto_tw", observer=observer)
        log.info("opened {peer}", peer="127.0.0.1:1")
        log.debug("hidden {peer}", peer="127.0.0.1:2")
        self.assertEqual(len(flushed), 1)
        self.assertTrue(flushed[0].endswith(" [wsproto_tw#info] opened 127.0.0.1:1\n"), flushed)

    def test_jsonLines(self):
        """
        In JSON, each event is one line, an object with the event's fields
        by name.
        """
        out = io.StringIO()
        log = Logger(namespace="wsproto_tw", observer=logObserver(out, "info", "json"))
        log.info("closed {peer} code={code}", peer="127.0.0.1:1", code=1000)
        log.info("opened {peer} {path}", peer="127.0.0.1:2", path="/chat")
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 2)
        first, second = map(json.loads, lines)
        self.assertEqual((first["peer"], first["code"], first["log_namespace"]), ("127.0.0.1:1", 1000, "wsproto_tw"))
        self.assertEqual(first["log_level"]["name"], "info")
        self.assertEqual((second["peer"], second["path"]), ("127.0.0.1:2", "/chat"))

    def test_twistdLogFile(self):
        """
        The log goes where twistd's would: standard output with
        C{--logfile=-} or C{--nodaemon} alone, else the log file; nowhere
        of ours with C{--syslog}.
        """
        import sys

        self.assertIs(twistdLogFile({"logfile": "-"}), sys.stdout)
        self.assertIs(twistdLogFile({"nodaemon": True, "logfile": None}), sys.stdout)
        self.assertIs(twistdLogFile(None), sys.stdout)
        self.assertIsNone(twistdLogFile({"syslog": True}))
        self.assertIsNone(twistdLogFile({"logger": "quiet_log.observer"}))
        path = self.mktemp()
        self.addCleanup(signal.signal, signal.SIGUSR1, signal.getsignal(signal.SIGUSR1))
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        logFile = twistdLogFile({"logfile": path})
        self.addCleanup(logFile.close)
        self.assertIsInstance(logFile, LogFile)
        self.assertEqual(logFile.path, os.path.abspath(path))
        # SIGUSR1 rotates it, through the reactor.
        handler = signal.getsignal(signal.SIGUSR1)
        self.assertTrue(callable(handler))

    def test_classicText(self):
        """
        L{formatClassicText} writes exactly the lines of Twisted's classic
        format: time stamp, system, text, continuation lines indented, and
        Twisted's own answer for what it can't format.
        """
        now = time.time()
        events = [
            dict(
                log_format="closed {peer} code={code} reason={reason!r} after {duration:.1f}s",
                peer="127.0.0.1:5", code=1000, reason="it's", duration=1.25,
                log_time=now, log_namespace="wsproto_tw", log_level=LogLevel.info,
            ),
            dict(log_format="{log_text}", log_text="two\nlines", log_system="-", log_time=now + 1),
            dict(log_format="Hello!"),
            dict(log_format="{a[0]} {b.real}", a=[1], b=3, log_time=0.0, log_namespace="n", log_level=LogLevel.warn),
            dict(log_format="{missing}", log_time=5.5),
            dict(log_format="{f()}", f=lambda: "called", log_time=now),
            dict(log_format=""),
            dict(),
        ]
        for event in events:
            self.assertEqual(formatClassicText(dict(event)), formatEventAsClassicLogText(dict(event)))
        self.assertIn(" [wsproto_tw#info] closed 127.0.0.1:5 code=1000", formatClassicText(events[0]))

    def test_compiledFormats(self):
        """
        A format whose fields are plain names is made once into a function
        that gives what C{str.format_map} gives, conversions, format specs,
        braces, quotes and backslashes in its text and all; any other
        format is left to C{format_map} (and then to Twisted's formatter).
        """
        from wsproto_tw import logs

        event = {
            "peer": "127.0.0.1:5", "path": "/", "code": 1000, "clean": True, "reason": "it's \"q\" {x}\\",
            "subprotocol": None, "duration": 1.25, "x": "\xe9", "class": 7,
        }
        compiled = [
            "opened {peer} {path} subprotocol={subprotocol}",
            "closed {peer} {path} code={code} clean={clean} reason={reason!r} subprotocol={subprotocol}"
            " after {duration:.1f}s",
            "{x!a:>8} {x!s:_<3} {reason!r} {{literal}} }}{{ {class}",
            "quote \" ' \\ \n{x}",
            "plain",
            "",
        ]
        for format in compiled:
            made = logs._compiled(format)
            self.assertTrue(callable(made), format)
            self.assertEqual(made(event), format.format_map(event), format)
            self.assertIs(logs._COMPILED[format], made)
        for format in ["{0}", "{}", "{a.b}", "{a[0]}", "{x:{y}}", "{x", "x}", "{x!z}", "{ x}", "{\xe9}"]:
            self.assertIs(logs._compiled(format), False, format)
        now = time.time()
        for format in compiled + ["{a[0]} {b.real}", "{missing}", "{x!r} {missing}"]:
            event = dict(event, log_format=format, a=[1], b=3, log_time=now, log_namespace="n", log_level=LogLevel.info)
            self.assertEqual(formatClassicText(dict(event)), formatEventAsClassicLogText(dict(event)), format)

    def test_compiledFormatsBounded(self):
        """
        Past a bound, new formats are still formatted but not kept.
        """
        from wsproto_tw import logs

        self.patch(logs, "_COMPILED", {})
        self.patch(logs, "_MAX_COMPILED", 2)
        for n in range(5):
            event = {"log_format": f"n{n} {{v}}", "v": n, "log_time": 0.0, "log_system": "-"}
            self.assertEqual(formatClassicText(event), formatEventAsClassicLogText(dict(event)))
        self.assertEqual(sorted(logs._COMPILED), ["n0 {v}", "n1 {v}"])

    def test_compiledFormatsNotMadePastBounds(self):
        """
        Once the bound is reached, a new format is not made into a function
        at all (a program building a format per event pays no compile per
        event); nor is a format longer than C{_MAX_FORMAT} characters
        (making one costs more the longer it is). Both are still formatted.
        """
        from wsproto_tw import logs

        def fail(format):
            self.fail(f"compiled {format!r}")

        self.patch(logs, "_COMPILED", {"kept {v}": logs._compile("kept {v}")})
        self.patch(logs, "_MAX_COMPILED", 1)
        self.patch(logs, "_compile", fail)
        event = {"log_format": "new {v}", "v": 1, "log_time": 0.0, "log_system": "-"}
        self.assertEqual(formatClassicText(event), formatEventAsClassicLogText(dict(event)))
        self.assertIs(logs._compiled("kept {v}"), logs._COMPILED["kept {v}"])
        self.patch(logs, "_MAX_COMPILED", 256)
        long = "{v} " * (logs._MAX_FORMAT // 4 + 1)
        event = {"log_format": long, "v": 2, "log_time": 0.0, "log_system": "-"}
        self.assertEqual(formatClassicText(event), formatEventAsClassicLogText(dict(event)))
        self.assertNotIn(long, logs._COMPILED)

    def test_explicitInfoObserver(self):
        """
        C{--log-level info} alone (the default level) also logs through
        wsproto_tw's observer.
        """
        service = tap.makeService(parse("--port", "tcp:0", "--log-level", "info"))
        self.assertIsNotNone(service.logObserver)

    def test_applicationObserver(self):
        """
        With C{--log-level} or C{--log-format}, the service gives twistd's
        application its log observer.
        """
        options = parse("--port", "tcp:0", "--log-level", "warn", "--log-format", "json")
        service = tap.makeService(options)
        application = Application("websocket")
        service.setServiceParent(application)
        observer = application.getComponent(ILogObserver)
        self.assertIs(observer, service.logObserver)
        self.assertIsNotNone(observer)


class FastLoggerTests(SynchronousTestCase):
    """
    L{FastLogger} emits the events L{Logger} does, the same keys in the
    same order, at less cost.
    """

    def _events(self, loggerType: type) -> list[dict]:
        events: list[dict] = []
        log = loggerType(namespace="wsproto_tw", source=self, observer=events.append)
        log.info("opened {peer}", peer="127.0.0.1:5")
        log.emit(LogLevel.warn, "dropping {peer}", peer="127.0.0.1:6")
        log.info("traced", log_trace=[])
        for event in events:
            self.assertIsInstance(event.pop("log_time"), float)
            logger = event.pop("log_logger")
            self.assertIsInstance(logger, loggerType)
            if "log_trace" in event:
                self.assertEqual(event["log_trace"], [(logger, events.append)])
                event["log_trace"] = "traced"
        return events

    def test_sameEvents(self) -> None:
        """
        Its events, but for their time and logger, equal L{Logger}'s, keys
        in the same order (the order JSON lines list them in).
        """
        fast, twisted = self._events(FastLogger), self._events(Logger)
        self.assertEqual(fast, twisted)
        self.assertEqual([list(event) for event in fast], [list(event) for event in twisted])
        self.assertEqual(fast[0]["log_level"], LogLevel.info)
        self.assertEqual(fast[1]["log_level"], LogLevel.warn)

    def test_invalidLevel(self) -> None:
        """
        An event at a level that is not a L{LogLevel} is reported as
        L{Logger} reports it: a critical event naming it, instead.
        """
        events: list[dict] = []
        FastLogger(observer=events.append).emit("loud", "x")  # type: ignore[arg-type]
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["log_level"], LogLevel.critical)
        self.assertEqual(events[0]["invalidLevel"], "loud")
