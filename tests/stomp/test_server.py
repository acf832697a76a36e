"""
Tests for L{wsproto_tw.stomp.server}, the Twisted adapter, with a
recording transport and a L{Clock}.
"""

from __future__ import annotations

from typing import Any

from twisted.cred import strcred
from twisted.cred.checkers import AllowAnonymousAccess, InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from tests.stomp.helpers import frame
from wsproto_tw.core.handshake import HandshakeRequest
from wsproto_tw.errors import ConnectionClosed
from wsproto_tw.interfaces import IWebSocketApplication
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.errors import DestinationError
from wsproto_tw.stomp.server import StompApplication, StompServer, portalFor

CONFIG = StompConfig(server="test", heart_beat=(0, 0))


class RecordingTransport:
    """
    The part of an C{IWebSocketTransport} the adapter uses, recording what
    it is asked to do.
    """

    def __init__(self, subprotocol: str | None = None) -> None:
        self.subprotocol = subprotocol
        self.sent: list[Any] = []
        self.closed: tuple[int, str] | None = None

    def sendText(self, text: str) -> None:
        self.sent.append(text)

    def sendBinary(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)

    def take(self) -> list[Any]:
        sent, self.sent = self.sent, []
        return sent


def opened(server: StompServer, subprotocol: str | None = None) -> tuple[StompApplication, RecordingTransport]:
    app = server.buildApplication()
    transport = RecordingTransport(subprotocol)
    app.connectionOpened(transport)
    return app, transport


def lose(app: StompApplication) -> None:
    app.connectionLost(Failure(ConnectionClosed(1000, "", True)))


class ApplicationTests(SynchronousTestCase):
    """
    Tests for L{StompApplication}.
    """

    def test_interface(self):
        """
        A L{StompApplication} provides L{IWebSocketApplication}.
        """
        app = StompServer(CONFIG, reactor=Clock()).buildApplication()
        self.assertTrue(verifyObject(IWebSocketApplication, app))

    def test_subprotocolRule(self):
        """
        C{requestReceived} answers the subprotocol the server's rule picks
        among the client's offers: by default the first STOMP one.
        """
        request = HandshakeRequest("GET", "/", (1, 1), (("Sec-WebSocket-Protocol", "chat, v10.stomp, v11.stomp"),))
        accept = StompServer(CONFIG, reactor=Clock()).buildApplication().requestReceived(request)
        self.assertEqual(accept.subprotocol, "v10.stomp")
        highest = StompServer(StompConfig(subprotocol_rule="highest"), reactor=Clock())
        self.assertEqual(highest.buildApplication().requestReceived(request).subprotocol, "v11.stomp")
        request = HandshakeRequest("GET", "/", (1, 1), ())
        self.assertIsNone(highest.buildApplication().requestReceived(request).subprotocol)

    def test_textAndBinaryCarryFrames(self):
        """
        Frames arrive in text and binary messages alike, split or packed;
        a frame that is not UTF-8 leaves in a binary message.
        """
        server = StompServer(CONFIG, reactor=Clock())
        app, transport = opened(server, "v12.stomp")
        data = frame("CONNECT", "accept-version:1.2") + frame("SUBSCRIBE", "id:0", "destination:/topic/t")
        app.binaryMessageReceived(data[:7])
        app.textMessageReceived(data[7:].decode())
        app.binaryMessageReceived(frame("SEND", "destination:/topic/t", "content-length:1", body=b"\xff"))
        [connected, message] = transport.take()
        self.assertEqual(connected, "CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:test\nsession:session-1\n\n\x00")
        self.assertEqual(
            message, b"MESSAGE\ndestination:/topic/t\nmessage-id:1\nsubscription:0\ncontent-length:1\n\n\xff\x00"
        )

    def test_errorCloses(self):
        """
        After C{ERROR} the WebSocket connection is closed with 1000.
        """
        app, transport = opened(StompServer(CONFIG, reactor=Clock()))
        app.textMessageReceived("SEND\n\n\x00")
        self.assertEqual(transport.take(), ["ERROR\nmessage:expected CONNECT, got SEND\ncontent-length:0\n\n\x00"])
        self.assertEqual(transport.closed, (1000, ""))

    def test_disconnectCloses(self):
        """
        C{DISCONNECT} gets its C{RECEIPT}, then the connection is closed.
        """
        app, transport = opened(StompServer(CONFIG, reactor=Clock()))
        app.textMessageReceived((frame("CONNECT") + frame("DISCONNECT", "receipt:r")).decode())
        self.assertEqual(transport.take()[1], "RECEIPT\nreceipt-id:r\n\n\x00")
        self.assertEqual(transport.closed, (1000, ""))

    def test_heartBeatTimers(self):
        """
        The negotiated heart-beats run on the reactor's clock: an EOL is
        sent every send interval, and a client silent past its interval
        (times the grace) gets C{ERROR} and a close.
        """
        clock = Clock()
        server = StompServer(StompConfig(server="test", heart_beat=(1000, 1000), heart_beat_grace=2), reactor=clock)
        app, transport = opened(server)
        app.textMessageReceived(frame("CONNECT", "accept-version:1.1", "heart-beat:1000,1000").decode())
        transport.take()
        clock.advance(1)
        self.assertEqual(transport.take(), ["\n"])
        app.textMessageReceived("\n")
        clock.advance(1)
        self.assertEqual(transport.take(), ["\n"])
        clock.advance(1)
        self.assertEqual(transport.take(), ["ERROR\nmessage:no heart-beat from the client in 1000 ms\ncontent-length:0\n\n\x00"])
        self.assertEqual(transport.closed, (1000, ""))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_connectTimeout(self):
        """
        A connection that sends no C{CONNECT} within C{connect_timeout}
        gets C{ERROR} and is closed.
        """
        clock = Clock()
        server = StompServer(StompConfig(server="test", connect_timeout=3), reactor=clock)
        app, transport = opened(server)
        clock.advance(3)
        self.assertEqual(transport.take(), ["ERROR\nmessage:no CONNECT accepted within 3 seconds\ncontent-length:0\n\n\x00"])
        self.assertEqual(transport.closed, (1000, ""))

    def test_connectionLostEndsSession(self):
        """
        When the connection is lost, the session leaves the server, its
        timer is cancelled and its queue messages go to others.
        """
        clock = Clock()
        server = StompServer(StompConfig(server="test", heart_beat=(1000, 0)), reactor=clock)
        a, ta = opened(server)
        b, tb = opened(server)
        a.textMessageReceived((frame("CONNECT", "accept-version:1.2", "heart-beat:0,1000")
                               + frame("SUBSCRIBE", "id:0", "destination:/queue/q", "ack:client")).decode())
        b.textMessageReceived(frame("CONNECT", "accept-version:1.2").decode())
        server.publish("/queue/q", "job")
        self.assertEqual(len(ta.take()), 2)
        self.assertEqual(len(server.sessions), 2)
        lose(a)
        self.assertEqual(len(server.sessions), 1)
        self.assertEqual(clock.getDelayedCalls(), [])
        b.textMessageReceived(frame("SUBSCRIBE", "id:0", "destination:/queue/q").decode())
        self.assertEqual(tb.take()[-1], "MESSAGE\ndestination:/queue/q\nmessage-id:2\nsubscription:0\n"
                         "content-type:text/plain;charset=utf-8\ncontent-length:3\n\njob\x00")


class PublishTests(SynchronousTestCase):
    """
    Tests for L{StompServer.publish} and L{StompServer.route}.
    """

    def test_publishReachesSubscribers(self):
        """
        Server code's C{publish} goes out at once to every subscriber's
        transport.
        """
        server = StompServer(CONFIG, reactor=Clock())
        app, transport = opened(server)
        app.textMessageReceived((frame("CONNECT", "accept-version:1.2")
                                 + frame("SUBSCRIBE", "id:s", "destination:/topic/prices")).decode())
        transport.take()
        server.publish("/topic/prices", b"42", [("x-symbol", "ACME")])
        self.assertEqual(
            transport.take(),
            ["MESSAGE\ndestination:/topic/prices\nmessage-id:1\nsubscription:s\nx-symbol:ACME\ncontent-length:2\n\n42\x00"],
        )
        self.assertRaises(DestinationError, server.publish, "/nowhere", b"")

    def test_route(self):
        """
        C{route} registers a handler of an application destination.
        """
        server = StompServer(CONFIG, reactor=Clock())

        @server.route("/app/echo/{word}")
        def echo(request):
            request.reply("/topic/echo", request.params["word"])

        app, transport = opened(server)
        app.textMessageReceived((frame("CONNECT", "accept-version:1.2")
                                 + frame("SUBSCRIBE", "id:e", "destination:/topic/echo")
                                 + frame("SEND", "destination:/app/echo/hi")).decode())
        self.assertEqual(transport.take()[-1], "MESSAGE\ndestination:/topic/echo\nmessage-id:session-1-reply-1\n"
                         "subscription:e\ncontent-type:text/plain;charset=utf-8\ncontent-length:2\n\nhi\x00")


class AuthenticationTests(SynchronousTestCase):
    """
    Tests for logins checked through C{twisted.cred}.
    """

    def connect(self, server: StompServer, *headers: str) -> RecordingTransport:
        app, transport = opened(server)
        app.textMessageReceived(frame("CONNECT", "accept-version:1.2", *headers).decode())
        return transport

    def test_portalAccepts(self):
        """
        A login the portal's checker accepts gets C{CONNECTED} naming the
        user, who becomes the session's principal: with an in-memory
        checker, and with C{strcred}'s C{memory:} and C{file:} checkers.
        """
        users = self.mktemp()
        with open(users, "w") as f:
            f.write("ann:secret\n")
        for checker in (
            InMemoryUsernamePasswordDatabaseDontUse(ann=b"secret"),
            strcred.makeChecker("memory:ann:secret"),
            strcred.makeChecker("file:" + users),
        ):
            server = StompServer(CONFIG, portal=portalFor(checker), reactor=Clock())
            transport = self.connect(server, "login:ann", "passcode:secret")
            self.assertEqual(
                transport.take(),
                ["CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:test\nsession:session-1\nuser-name:ann\n\n\x00"],
            )
            [session] = server.sessions
            self.assertEqual(session.principal, "ann")

    def test_portalRefuses(self):
        """
        A wrong passcode, an unknown user, and (without an anonymous
        checker) no login at all get C{ERROR} and a close.
        """
        from twisted.logger import capturedLogs, formatEvent

        server = StompServer(CONFIG, portal=portalFor(strcred.makeChecker("memory:ann:secret")), reactor=Clock())
        with capturedLogs() as events:
            for headers in (("login:ann", "passcode:wrong"), ("login:bob", "passcode:secret"), ()):
                transport = self.connect(server, *headers)
                self.assertEqual(transport.take(), ["ERROR\nmessage:authentication failed\ncontent-length:0\n\n\x00"])
                self.assertEqual(transport.closed, (1000, ""))
        refusals = [formatEvent(e) for e in events if "login refused" in formatEvent(e)]
        # The log line says why, even when the checker's error has no message.
        self.assertEqual(len(refusals), 3, refusals)
        for line in refusals:
            self.assertFalse(line.endswith(": "), line)
        self.assertIn("stomp login refused for 'ann': UnauthorizedLogin", refusals)
        self.flushLoggedErrors()

    def test_anonymousChecker(self):
        """
        With L{AllowAnonymousAccess}, a C{CONNECT} without C{login} is
        accepted with no principal.
        """
        server = StompServer(CONFIG, portal=portalFor(AllowAnonymousAccess()), reactor=Clock())
        transport = self.connect(server)
        self.assertEqual(transport.take(), ["CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:test\nsession:session-1\n\n\x00"])

    def test_deferredAuthenticate(self):
        """
        An C{authenticate} callable may answer later: frames that followed
        C{CONNECT} wait for it; a failure refuses the login.
        """
        answers: list[Deferred] = []
        server = StompServer(CONFIG, authenticate=lambda login, passcode, host: answers.append(Deferred()) or answers[-1],
                             reactor=Clock())
        app, transport = opened(server)
        app.textMessageReceived((frame("CONNECT", "accept-version:1.2", "login:x")
                                 + frame("BEGIN", "transaction:t", "receipt:r")).decode())
        self.assertEqual(transport.take(), [])
        answers[0].callback("x")
        self.assertEqual(transport.take(), ["CONNECTED\nversion:1.2\nheart-beat:0,0\nserver:test\nsession:session-1\nuser-name:x\n\n\x00",
                                            "RECEIPT\nreceipt-id:r\n\n\x00"])
        server = StompServer(CONFIG, authenticate=lambda *a: fail(ValueError("no")), reactor=Clock())
        transport = self.connect(server, "login:x")
        self.assertEqual(transport.take(), ["ERROR\nmessage:authentication failed\ncontent-length:0\n\n\x00"])

    def test_portalOrCallable(self):
        """
        A portal and an C{authenticate} callable exclude each other.
        """
        self.assertRaises(ValueError, StompServer, portal=portalFor(), authenticate=print, reactor=Clock())


class StreamTests(SynchronousTestCase):
    """
    Tests for STOMP over a byte stream (L{StompServer.streamFactory}).
    """

    def test_framesOverBytes(self):
        """
        Over a byte stream, frames and heart-beats are written as octets,
        and C{ERROR} is followed by closing the connection.
        """
        clock = Clock()
        server = StompServer(StompConfig(server="test", heart_beat=(1000, 0)), reactor=clock)
        protocol = server.streamFactory().buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(frame("CONNECT", "accept-version:1.1", "heart-beat:0,1000")[:5])
        protocol.dataReceived(frame("CONNECT", "accept-version:1.1", "heart-beat:0,1000")[5:])
        self.assertEqual(transport.value(), b"CONNECTED\nversion:1.1\nheart-beat:1000,0\nserver:test\nsession:session-1\n\n\x00")
        transport.clear()
        clock.advance(1)
        self.assertEqual(transport.value(), b"\n")
        transport.clear()
        protocol.dataReceived(b"BOGUS\n\n\x00")
        self.assertEqual(transport.value(), b"ERROR\nmessage:unknown command BOGUS\ncontent-length:0\n\n\x00")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(server.sessions, set())
        self.assertEqual(clock.getDelayedCalls(), [])

    def subscriber(self, server, transport):
        protocol = server.streamFactory(max_write_buffer=100_000).buildProtocol(None)
        protocol.makeConnection(transport)
        protocol.dataReceived(frame("CONNECT", "accept-version:1.2"))
        protocol.dataReceived(frame("SUBSCRIBE", "id:0", "destination:/topic/t"))
        transport.clear()
        return protocol

    def test_nonReadingSubscriberDropped(self):
        """
        The stream protocol is its transport's push producer; while the
        transport is paused (the peer is not reading) what is written is
        counted, and past C{max_write_buffer} octets nothing more is
        written and the connection is aborted.
        """
        server = StompServer(CONFIG, reactor=Clock())
        transport = StringTransport()
        protocol = self.subscriber(server, transport)
        self.assertIs(transport.producer, protocol)
        self.assertTrue(transport.streaming)
        protocol.pauseProducing()
        for _ in range(100):
            server.publish("/topic/t", b"x" * 10_000)
        self.assertTrue(transport.disconnected)
        self.assertLessEqual(len(transport.value()), 100_000)
        self.assertGreater(len(transport.value()), 80_000)

    def test_abortLogNamesIPv6Peer(self):
        """
        The log line of the abort names an IPv6 peer C{[host]:port} (RFC
        3986 section 3.2.2), as every log line names peers.
        """
        from twisted.internet.address import IPv6Address
        from twisted.logger import capturedLogs, formatEvent

        server = StompServer(CONFIG, reactor=Clock())
        transport = StringTransport(peerAddress=IPv6Address("TCP", "::1", 61613))
        protocol = self.subscriber(server, transport)
        protocol.pauseProducing()
        with capturedLogs() as events:
            for _ in range(11):
                server.publish("/topic/t", b"x" * 10_000)
        lines = [formatEvent(event) for event in events]
        self.assertIn("stomp connection [::1]:61613 aborted: peer is not reading (more than 100000 bytes waiting)", lines)

    def test_resumeResetsCount(self):
        """
        Only what is written while the transport is paused counts: once it
        resumes, the count starts again at the next pause.
        """
        server = StompServer(CONFIG, reactor=Clock())
        transport = StringTransport()
        protocol = self.subscriber(server, transport)
        for _ in range(3):
            protocol.pauseProducing()
            for _ in range(8):
                server.publish("/topic/t", b"x" * 10_000)
            protocol.resumeProducing()
        self.assertFalse(transport.disconnecting)
        self.assertGreater(len(transport.value()), 240_000)

    def test_closeUnregisters(self):
        """
        Closing the connection (after C{ERROR}) unregisters the producer,
        without which a transport does not close.
        """
        server = StompServer(CONFIG, reactor=Clock())
        transport = StringTransport()
        protocol = self.subscriber(server, transport)
        protocol.dataReceived(b"BOGUS\n\n\x00")
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(transport.producer)

    def test_closeTimeout(self):
        """
        A connection still closing C{close_timeout} seconds after its
        C{ERROR} (its peer does not read what is left) is aborted; one that
        closes in time leaves no timer behind.
        """
        aborted = []

        class Transport(StringTransport):
            def abortConnection(self):
                aborted.append(True)

        clock = Clock()
        server = StompServer(CONFIG, reactor=clock)
        transport = Transport()
        protocol = server.streamFactory(close_timeout=5).buildProtocol(None)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"BOGUS\n\n\x00")
        self.assertTrue(transport.disconnecting)
        clock.advance(4.9)
        self.assertEqual(aborted, [])
        clock.advance(0.1)
        self.assertEqual(aborted, [True])
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])

        transport = Transport()
        protocol = server.streamFactory(close_timeout=5).buildProtocol(None)
        protocol.makeConnection(transport)
        protocol.dataReceived(b"BOGUS\n\n\x00")
        protocol.connectionLost(Failure(ConnectionDone()))
        clock.advance(10)
        self.assertEqual((aborted, clock.getDelayedCalls()), ([True], []))
        self.assertRaises(ValueError, server.streamFactory, close_timeout=0)


class StreamLoopbackTests(TestCase):
    """
    L{StompServer.streamFactory} over a real loopback TCP connection.
    """

    def test_nonReadingSubscriberDropped(self):
        """
        A TCP subscriber that stops reading is disconnected once more than
        C{max_write_buffer} octets wait behind the full socket buffers,
        instead of the server buffering all that is published to it.
        """
        from twisted.internet import reactor
        from twisted.internet.protocol import ClientFactory, Protocol

        server = StompServer(CONFIG, reactor=reactor)
        port = reactor.listenTCP(0, server.streamFactory(max_write_buffer=256 * 1024), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        lost: Deferred = Deferred()

        class Stalled(Protocol):
            def connectionMade(self):
                self.transport.write(frame("CONNECT", "accept-version:1.2") + frame("SUBSCRIBE", "id:0", "destination:/topic/t"))
                self.transport.pauseProducing()  # never read


        factory = ClientFactory()
        factory.protocol = Stalled
        connector = reactor.connectTCP("127.0.0.1", port.getHost().port, factory)
        self.addCleanup(connector.disconnect)
        published = [0]

        def pump():
            # The client does not read, so only the server sees the end.
            if server.sessions:
                for _ in range(10):
                    server.publish("/topic/t", b"x" * 100_000)
                    published[0] += 1
            elif published[0]:
                lost.callback(None)
                return
            if published[0] < 500:
                reactor.callLater(0.001, pump)
            else:
                lost.callback(None)

        reactor.callLater(0.05, pump)

        def check(_):
            self.assertLess(published[0], 2000)
            self.assertEqual(server.sessions, set())

        lost.addCallback(check)
        return lost

    test_nonReadingSubscriberDropped.timeout = 20  # type: ignore[attr-defined]


class ConnectDeadlineOverPortsTests(TestCase):
    """
    C{StompConfig.connect_timeout} over real loopback ports of
    L{StompServer.streamFactory}: plain TCP and TLS (Twisted's C{ssl:}
    endpoint, as C{twistd websocket --stomp-port ssl:...} listens).
    """

    timeout = 30

    def setUp(self):
        import os

        from twisted.internet import reactor

        from tests.test_tls import selfSignedCertificate

        self.reactor = reactor
        self.keyPath, self.certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        self.server = StompServer(StompConfig(server="test", heart_beat=(0, 0), connect_timeout=1), reactor=reactor)

    def listen(self, tls: bool) -> Any:
        from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint

        from tests.tools import serverTLS

        if tls:
            endpoint = SSL4ServerEndpoint(self.reactor, 0, serverTLS(self.keyPath, self.certPath), interface="127.0.0.1")
        else:
            endpoint = TCP4ServerEndpoint(self.reactor, 0, interface="127.0.0.1")
        return endpoint.listen(self.server.streamFactory()).addCallback(self._listening)

    def _listening(self, port: Any) -> int:
        self.addCleanup(port.stopListening)
        return port.getHost().port

    def connect(self, portNumber: int, tls: bool, send: bytes = b"") -> Any:
        """
        @return: a Deferred firing with what the server sent before it
            closed the connection.
        """
        from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint
        from twisted.internet.protocol import Factory, Protocol

        from tests.tools import trustingTLS

        closed: Deferred = Deferred()

        class Silent(Protocol):
            received = b""

            def connectionMade(self):
                self.transport.write(send)

            def dataReceived(self, data):
                self.received += data

            def connectionLost(self, reason):
                closed.callback(self.received)

        if tls:
            endpoint = SSL4ClientEndpoint(self.reactor, "127.0.0.1", portNumber, trustingTLS(self.certPath, None))
        else:
            endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", portNumber)
        endpoint.connect(Factory.forProtocol(Silent)).addErrback(closed.errback)
        # Well within the test's timeout: the server closes after 1 s.
        return closed.addTimeout(10, self.reactor)

    async def test_silentOverTCP(self):
        """
        A TCP client that sends nothing gets C{ERROR} after
        C{connect_timeout}, and the connection closes.
        """
        portNumber = await self.listen(tls=False)
        received = await self.connect(portNumber, tls=False)
        self.assertEqual(received, b"ERROR\nmessage:no CONNECT accepted within 1 seconds\ncontent-length:0\n\n\x00")

    async def test_silentOverTLS(self):
        """
        A TLS client that completes its handshake and sends nothing more
        gets C{ERROR} after C{connect_timeout}, and the connection closes.
        """
        portNumber = await self.listen(tls=True)
        received = await self.connect(portNumber, tls=True)
        self.assertEqual(received, b"ERROR\nmessage:no CONNECT accepted within 1 seconds\ncontent-length:0\n\n\x00")

    async def test_noHandshakeOverTLS(self):
        """
        A client of a TLS port that sends nothing, or one byte, never
        completes the TLS handshake: after C{connect_timeout} its
        connection is closed all the same (the C{ERROR} can't be said
        before the handshake), instead of TLS waiting for ever to finish
        the handshake before closing.
        """
        portNumber = await self.listen(tls=True)
        for send in (b"", b"\x16"):
            self.assertEqual(await self.connect(portNumber, tls=False, send=send), b"")
        self.assertEqual(self.server.sessions, set())
