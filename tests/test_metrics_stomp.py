"""
Tests for the STOMP families of L{wsproto_tw.metrics.Metrics}
(L{Metrics.watchStomp}): sessions, subscriptions, frames by command,
messages delivered and ERROR frames, after scripted sessions over
STOMP-over-TCP on string transports; and SockJS sessions under the wire
C{sockjs} (L{Metrics.watchSockJS}).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw import tap
from wsproto_tw.metrics import Metrics
from wsproto_tw.stomp.server import StompServer


def session(server: StompServer) -> tuple[object, StringTransport]:
    """
    @return: a connected STOMP-over-TCP protocol of C{server}, and its
        transport.
    """
    protocol = server.streamFactory().buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


class StompMetricsTests(SynchronousTestCase):
    """
    L{Metrics.watchStomp} reads a L{StompServer}'s sessions at scrape time.
    """

    def setUp(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.server = StompServer(reactor=Clock())

    def value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)

    def test_notWatched(self):
        """
        Without a watched STOMP server, a scrape shows no STOMP family.
        """
        names = {family.name for family in self.registry.collect()}
        self.assertFalse([name for name in names if name.startswith("wsproto_tw_stomp_")])

    def test_scriptedSessions(self):
        """
        Two subscribers, a publisher, and a client that breaks the
        protocol: the scrape counts the sessions (open and started), the
        live subscriptions, every frame received by command, the MESSAGE
        frames delivered and the ERROR frame; frames of sessions that ended
        stay counted.
        """
        self.metrics.watchStomp(self.server)
        self.metrics.watchStomp(self.server)
        self.assertEqual(self.metrics.stompServers, [self.server])
        connect = b"CONNECT\naccept-version:1.2\nhost:h\n\n\x00"
        subscribers = []
        for n in range(2):
            protocol, transport = session(self.server)
            protocol.dataReceived(connect + b"SUBSCRIBE\nid:%d\ndestination:/topic/a\n\n\x00" % n)
            subscribers.append((protocol, transport))
        publisher, _ = session(self.server)
        publisher.dataReceived(connect + b"SEND\ndestination:/topic/a\n\none\x00SEND\ndestination:/topic/a\n\ntwo\x00")
        self.assertEqual(subscribers[0][1].value().count(b"MESSAGE\n"), 2)
        broken, brokenTransport = session(self.server)
        broken.dataReceived(connect + b"NOPE\n\n\x00")
        self.assertIn(b"ERROR\n", brokenTransport.value())

        self.assertEqual(self.value("wsproto_tw_stomp_sessions_open"), 4)
        self.assertEqual(self.value("wsproto_tw_stomp_sessions_total"), 4)
        self.assertEqual(self.value("wsproto_tw_stomp_subscriptions"), 2)
        self.assertEqual(self.value("wsproto_tw_stomp_frames_received_total", command="CONNECT"), 4)
        self.assertEqual(self.value("wsproto_tw_stomp_frames_received_total", command="SUBSCRIBE"), 2)
        self.assertEqual(self.value("wsproto_tw_stomp_frames_received_total", command="SEND"), 2)
        self.assertEqual(self.value("wsproto_tw_stomp_frames_received_total", command="NOPE"), 1)
        self.assertEqual(self.value("wsproto_tw_stomp_messages_delivered_total"), 4)
        self.assertEqual(self.value("wsproto_tw_stomp_errors_sent_total"), 1)

        # Sessions end: their counts stay, the gauges go down.
        broken.connectionLost(None)
        subscribers[0][0].connectionLost(None)
        self.assertEqual(self.value("wsproto_tw_stomp_sessions_open"), 2)
        self.assertEqual(self.value("wsproto_tw_stomp_sessions_total"), 4)
        self.assertEqual(self.value("wsproto_tw_stomp_subscriptions"), 1)
        self.assertEqual(self.value("wsproto_tw_stomp_frames_received_total", command="CONNECT"), 4)
        self.assertEqual(self.value("wsproto_tw_stomp_messages_delivered_total"), 4)
        self.assertEqual(self.value("wsproto_tw_stomp_errors_sent_total"), 1)

    def test_twistdModeStomp(self):
        """
        C{twistd websocket --mode stomp --metrics} watches its STOMP server.
        """
        options = tap.Options()
        options.parseOptions(["--port", "tcp:0", "--mode", "stomp", "--metrics", "tcp:0"])
        service = tap.makeService(options)
        self.assertIsNotNone(options.stompServer)
        self.assertEqual(service.registry.get_sample_value("wsproto_tw_stomp_sessions_total"), 0)
        session(options.stompServer)[0].dataReceived(b"CONNECT\naccept-version:1.2\nhost:h\n\n\x00")
        self.assertEqual(service.registry.get_sample_value("wsproto_tw_stomp_sessions_total"), 1)


class SockJSMetricsTests(SynchronousTestCase):
    """
    L{Metrics.watchSockJS}: SockJS sessions under the wire C{sockjs}.
    """

    def test_sessionsCounted(self):
        """
        A watching L{Metrics} counts the sessions that open as opened and
        open under C{wire="sockjs"}, and a closed one as no longer open;
        C{twistd websocket --sockjs} watches them.
        """
        from tests.sockjs.helpers import SockJSSite

        registry = CollectorRegistry()
        Metrics(registry).watchSockJS()

        def value(name: str) -> float | None:
            return registry.get_sample_value(name, {"wire": "sockjs"})

        opened, open_ = value("wsproto_tw_connections_opened_total"), value("wsproto_tw_connections_open")
        site = SockJSSite()
        site.fetch("POST", "/000/a/xhr")
        site.fetch("POST", "/000/b/xhr")
        self.assertEqual(value("wsproto_tw_connections_opened_total"), opened + 2)
        self.assertEqual(value("wsproto_tw_connections_open"), open_ + 2)
        site.resource.sessions[b"a"].close(1000)
        site.fetch("POST", "/000/a/xhr")
        self.assertEqual(value("wsproto_tw_connections_open"), open_ + 1)
        self.assertEqual(value("wsproto_tw_connections_opened_total"), opened + 2)

        options = tap.Options()
        options.parseOptions(["--port", "tcp:0", "--sockjs", "/sockjs", "--metrics", "tcp:0"])
        service = tap.makeService(options)
        self.assertIsNotNone(service.registry.get_sample_value("wsproto_tw_connections_open", {"wire": "sockjs"}))


class ReadinessWiringTests(SynchronousTestCase):
    """
    C{twistd websocket --metrics} makes C{/readyz} depend on the broker of
    C{--stomp-relay} and the bus of C{--redis}.
    """

    def service(self, *argv: str) -> tuple:
        options = tap.Options()
        options.parseOptions(["--port", "tcp:0", "--metrics", "tcp:0", *argv])
        service = tap.makeService(options)
        service.health.ready = True  # as when listening
        return options, service.health

    def test_relayBroker(self):
        """
        With C{--stomp-relay}, the server is unready (C{broker}) while the
        relay's system connection to the broker is down.
        """
        options, health = self.service("--mode", "stomp", "--stomp-relay", "tcp:127.0.0.1:1")
        self.assertEqual(health.unready(), ["broker"])
        options.stompServer.broker.system = object()  # connected
        self.assertEqual(health.unready(), [])

    def test_redisBus(self):
        """
        With C{--redis}, in C{--mode stomp} and C{--mode broadcast}, the
        server is unready (C{bus}) while the Redis bus is not connected.
        """
        for mode in ("stomp", "broadcast"):
            options, health = self.service("--mode", mode, "--redis", "tcp:127.0.0.1:1")
            self.assertEqual(health.unready(), ["bus"], mode)
            bus = options.stompServer.broker.bus if mode == "stomp" else options.busService.bus
            bus.connected = True
            self.assertEqual(health.unready(), [], mode)

    def test_nothingToWaitFor(self):
        """
        Without a relay or a bus, readiness is listening alone.
        """
        _, health = self.service("--mode", "stomp")
        self.assertEqual(health.unready(), [])


class RelayCountsTests(SynchronousTestCase):
    """
    A relayed session (L{RelaySession <wsproto_tw.stomp.relay.RelaySession>})
    counts as an embedded one does.
    """

    def test_relayedFramesCounted(self):
        """
        The client's frames count by command (relayed ones too), the
        broker's C{MESSAGE} frames passed on count as delivered, and its
        C{ERROR} as an C{ERROR} sent.
        """
        from tests.stomp.test_relay import frame, relaySession
        from wsproto_tw.stomp.frames import Frame

        session, forwarded = relaySession()
        session.receive_data(frame("SUBSCRIBE", "id:0", "destination:/topic/a"), now=1)
        self.assertEqual(len(forwarded), 1)
        session.broker_frame_received(
            Frame("MESSAGE", (("subscription", "0"), ("message-id", "1"), ("content-length", "1")), b"x")
        )
        session.broker_frame_received(Frame("ERROR", (("message", "gone"),)))
        self.assertEqual(
            ({str(getattr(c, "value", c)): n for c, n in session.frames_received.items()},
             session.messages_delivered, session.errors_sent),
            ({"CONNECT": 1, "SUBSCRIBE": 1}, 1, 1),
        )
