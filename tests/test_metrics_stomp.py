"""
Tests for the STOMP families of L{wsproto_tw.metrics.Metrics}
(L{Metrics.watchStomp}): sessions, subscriptions, frames by command,
messages delivered and ERROR frames, after scripted sessions over
STOMP-over-TCP on string transports.
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
