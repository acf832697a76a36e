"""
Tests for L{wsproto_tw.sockjs.transport}: a SockJS session is the
applications' L{IWebSocketTransport}, with the same flow control, over
HTTP and over the C{websocket} transport.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.helpers import clientFrame, parseFrames
from tests.sockjs.helpers import CloseApplication, RecordingApplication, SockJSSite
from wsproto_tw.apps import BroadcastGroup
from wsproto_tw.interfaces import IWebSocketTransport
from wsproto_tw.sockjs.config import SockJSConfig
from wsproto_tw.sockjs.session import SessionConfig

_UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
}


def _session(site: SockJSSite, name: bytes = b"s") -> Any:
    site.fetch("POST", "/000/" + name.decode() + "/xhr")
    return site.resource.sessions[name]



class _Sink:
    """
    A response that takes what a session writes and forgets it.
    """

    session = receiver = None

    def write(self, chunks):
        pass

    def finish(self):
        pass

class TransportTests(SynchronousTestCase):
    """
    Tests for L{SockJSSession} as an L{IWebSocketTransport}.
    """

    def setUp(self):
        RecordingApplication.instances.clear()

    def test_interfaces(self):
        """
        A session provides L{IWebSocketTransport} and L{IConsumer}, and is
        the application's C{transport}.
        """
        site = SockJSSite(RecordingApplication)
        session = _session(site)
        self.assertTrue(verifyObject(IWebSocketTransport, session))
        self.assertTrue(verifyObject(IConsumer, session))
        self.assertIs(RecordingApplication.instances[0].transport, session)
        self.assertEqual(session.request.path, "/echo/000/s/xhr")
        self.assertEqual(session.getPeer().host, "127.0.0.1")
        self.assertIsNone(session.subprotocol)

    def test_binaryRefused(self):
        """
        SockJS carries text only: C{sendBinary} and C{write} raise
        L{TypeError}.
        """
        session = _session(SockJSSite())
        self.assertRaises(TypeError, session.sendBinary, b"x")
        self.assertRaises(TypeError, session.write, b"x")

    def test_closeCodeChecked(self):
        """
        C{close} with a code that means "none was sent" raises
        L{ValueError}.
        """
        session = _session(SockJSSite())
        self.assertRaises(ValueError, session.close, 1006)

    def test_pingSendsHeartbeat(self):
        """
        C{ping} sends C{h} to the waiting poll.
        """
        site = SockJSSite()
        session = _session(site)
        waiting = site.send("POST", "/000/s/xhr")
        session.ping()
        self.assertEqual(waiting.response().body, b"h\n")

    def test_pauseReading(self):
        """
        While the application has paused reading, messages wait and so
        does the answer to the request that sent them; on resume both go.
        """
        site = SockJSSite(RecordingApplication)
        session = _session(site)
        application = RecordingApplication.instances[0]
        session.pauseReading()
        sent = site.send("POST", "/000/s/xhr_send", b'["a","b"]')
        self.assertIsNone(sent.response().status)
        self.assertEqual(application.events, ["opened"])
        session.resumeReading()
        self.assertEqual(application.events, ["opened", "a", "b"])
        self.assertEqual(sent.response().status, 204)

    def test_backlog(self):
        """
        Handlers' unfired Deferreds count toward C{max_pending_messages}:
        past it, reading pauses until they settle.
        """
        from wsproto_tw.core.config import Config

        pending: list[Deferred] = []

        class Slow(RecordingApplication):
            def textMessageReceived(self, text):
                self.events.append(text)
                d: Deferred = Deferred()
                pending.append(d)
                return d

        site = SockJSSite(Slow)
        site.resource.webSocketConfig = Config(max_pending_messages=1)
        session = _session(site)
        application = RecordingApplication.instances[0]
        site.fetch("POST", "/000/s/xhr_send", b'["1","2","3"]')
        self.assertEqual(application.events, ["opened", "1", "2"])
        pending[0].callback(None)
        pending[1].callback(None)
        self.assertEqual(application.events, ["opened", "1", "2", "3"])
        self.assertIs(session, site.resource.sessions[b"s"])

    def test_whenDrained(self):
        """
        Past C{queue_high_water} characters waiting for a poll,
        C{whenDrained} waits; the next poll takes them and fires it.
        """
        config = SockJSConfig(session=SessionConfig(queue_high_water=4, max_queue_size=100))
        site = SockJSSite(config=config)
        session = _session(site)
        self.assertTrue(session.whenDrained().called)
        session.sendText("12345")
        drained = session.whenDrained()
        self.assertFalse(drained.called)
        self.assertEqual(site.fetch("POST", "/000/s/xhr").body, b'a["12345"]\n')
        self.assertTrue(drained.called)

    def test_broadcast(self):
        """
        The broadcast application runs over SockJS sessions unchanged.
        """
        group = BroadcastGroup()
        site = SockJSSite(group)
        _session(site, b"a")
        _session(site, b"b")
        site.fetch("POST", "/000/a/xhr_send", b'["hello"]')
        self.assertEqual(site.fetch("POST", "/000/b/xhr").body, b'a["hello"]\n')
        self.assertEqual(site.fetch("POST", "/000/a/xhr").body, b'a["hello"]\n')
        self.assertEqual(len(group.members), 2)

    def test_abortConnection(self):
        """
        C{abortConnection} ends the session at once: the waiting poll ends
        empty, and the application sees 1006.
        """
        site = SockJSSite(RecordingApplication)
        session = _session(site)
        waiting = site.send("POST", "/000/s/xhr")
        session.abortConnection()
        self.assertEqual(waiting.response().status, 200)
        self.assertTrue(waiting.response().complete)
        self.assertEqual(RecordingApplication.instances[0].events[-1], ("lost", 1006, "session aborted", False))
        self.assertEqual(site.resource.sessions, {})


class WebSocketTransportTests(SynchronousTestCase):
    """
    Tests for the C{websocket} transport: SockJS frames as WebSocket text
    messages.
    """

    def setUp(self):
        RecordingApplication.instances.clear()

    def _open(self, site: SockJSSite) -> Any:
        exchange = site.send("GET", "/000/w/websocket", headers=_UPGRADE)
        self.assertEqual(parseFrames(exchange.transport.value()), [(1, b"o", True, 0)])
        exchange.transport.clear()
        return exchange

    def test_echo(self):
        """
        Messages arrive as a JSON array (or string); empty messages are
        ignored; each answer is an C{a} frame.
        """
        site = SockJSSite()
        exchange = self._open(site)
        exchange.channel.dataReceived(clientFrame(1, b""))
        exchange.channel.dataReceived(clientFrame(1, b'["a","b"]'))
        exchange.channel.dataReceived(clientFrame(1, b'"c"'))
        self.assertEqual(
            [payload for _, payload, _, _ in parseFrames(exchange.transport.value())],
            [b'a["a"]', b'a["b"]', b'a["c"]'],
        )
        self.assertEqual(site.resource.sessions, {})

    def test_brokenJSON(self):
        """
        Broken JSON closes the WebSocket at once, cleanly: a close frame
        with 3000 C{Broken framing.} (as sockjs-node does), then TCP.
        """
        for payload in (b'["a', b"[" * 100000):
            site = SockJSSite(RecordingApplication)
            exchange = self._open(site)
            exchange.transport.clear()
            exchange.channel.dataReceived(clientFrame(1, payload))
            frames = parseFrames(exchange.transport.value())
            self.assertEqual([(op, payload) for op, payload, _, _ in frames], [(8, b"\x0b\xb8Broken framing.")])
            exchange.channel.dataReceived(clientFrame(8, b"\x0b\xb8"))
            self.assertTrue(exchange.transport.disconnecting or exchange.transport.disconnected)

    def test_applicationClose(self):
        """
        An application's close sends its close frame, then closes the
        WebSocket; the application sees a clean close with its code.
        """
        site = SockJSSite(CloseApplication)
        exchange = site.send("GET", "/000/w/websocket", headers=_UPGRADE)
        frames = parseFrames(exchange.transport.value())
        self.assertEqual([(op, payload) for op, payload, _, _ in frames][:2], [(1, b"o"), (1, b'c[3000,"Go away!"]')])
        self.assertEqual(frames[2][0], 8)

    def test_clientClose(self):
        """
        The client's close reaches the application as its close code.
        """
        site = SockJSSite(RecordingApplication)
        exchange = self._open(site)
        exchange.channel.dataReceived(clientFrame(8, b"\x03\xe8bye"))
        exchange.drop()
        self.assertEqual(RecordingApplication.instances[0].events, ["opened", ("lost", 1000, "bye", True)])

    def test_heartbeat(self):
        """
        A WebSocket session sent nothing for 25 seconds gets C{h}.
        """
        site = SockJSSite()
        exchange = self._open(site)
        site.clock.advance(24.9)
        self.assertNotIn(1, [op for op, _, _, _ in parseFrames(exchange.transport.value())])
        site.clock.advance(0.1)
        texts = [payload for op, payload, _, _ in parseFrames(exchange.transport.value()) if op == 1]
        self.assertEqual(texts, [b"h"])


class MemoryTests(SynchronousTestCase):
    """
    Tests for what an idle session costs.
    """

    def test_idleSession(self):
        """
        An open session waiting for its next poll (its application, core,
        flow objects and timer entry; not its opening request's headers)
        takes less than 1.5 KiB.
        """
        import gc
        import tracemalloc

        from twisted.internet.address import IPv4Address
        from twisted.internet.task import Clock

        from wsproto_tw.apps import EchoApplication
        from wsproto_tw.core.config import Config
        from wsproto_tw.sockjs.frames import xhr_framing
        from wsproto_tw.sockjs.transport import SockJSSession

        from twisted.logger import Logger

        from wsproto_tw.sockjs import transport as transportModule

        # What observers keep of the "opened" log lines (trial's workers,
        # for one, hold log events) is not the session's.
        self.patch(transportModule, "_log", Logger(observer=lambda event: None))
        clock, config, webSocketConfig, framing = Clock(), SessionConfig(), Config(), xhr_framing()
        sessions = []

        def idle() -> None:
            peer = IPv4Address("TCP", "127.0.0.1", 50000)
            session = SockJSSession(EchoApplication(), config, webSocketConfig, clock, peer=peer)
            session.attach(_Sink(), framing)
            sessions.append(session)

        for _ in range(50):
            idle()
        gc.collect()
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(2000):
            idle()
        gc.collect()
        each = (tracemalloc.get_traced_memory()[0] - before) / 2000
        self.assertLess(each, 1536)
        self.assertEqual(len(sessions), 2050)


class PeerNameTests(SynchronousTestCase):
    """
    A session's log lines name the peer as every log line does.
    """

    def test_ipv6Peer(self):
        """
        An IPv6 peer is named C{[host]:port} (RFC 3986 section 3.2.2).
        """
        from twisted.internet.address import IPv6Address
        from twisted.internet.task import Clock
        from twisted.logger import capturedLogs, formatEvent

        from wsproto_tw.apps import EchoApplication
        from wsproto_tw.core.config import Config
        from wsproto_tw.sockjs.frames import xhr_framing
        from wsproto_tw.sockjs.transport import SockJSSession

        peer = IPv6Address("TCP", "::1", 50000)
        session = SockJSSession(EchoApplication(), SessionConfig(), Config(), Clock(), peer=peer)
        with capturedLogs() as events:
            session.attach(_Sink(), xhr_framing())
        lines = [formatEvent(event) for event in events]
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("opened sockjs session [::1]:50000 "), lines)
