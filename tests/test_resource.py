"""
Tests for L{wsproto_tw.resource}: WebSocket at its place in a C{twisted.web}
site, pages elsewhere on the same connection's port.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import AccumulatingProtocol, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from twisted.web.static import Data
from zope.interface.verify import verifyObject

from tests.helpers import clientFrame, closePayload, parseFrames, requestBytes, sentCloseCode
from wsproto_tw.apps import EchoApplication
from wsproto_tw.core.config import Config
from wsproto_tw.interfaces import IWebSocketApplication
from wsproto_tw.resource import (
    WebSocketResource,
    WebSocketSite,
    handshakeRequest,
    mountAt,
    requestHead,
    takeOverChannel,
)
from wsproto_tw.server import Accept, WebSocketApplication

PEER = IPv4Address("TCP", "192.0.2.7", 40000)


class Recorder(WebSocketApplication):
    """
    An application that records what happens to it.
    """

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.messages: list[Any] = []
        self.lost: list[Any] = []

    def requestReceived(self, request: Any) -> Any:
        self.requests.append(request)
        return None

    def textMessageReceived(self, text: str) -> None:
        self.messages.append(text)
        self.transport.sendText(text.upper())

    def connectionLost(self, reason: Any) -> None:
        self.lost.append(reason)


class Fixture:
    """
    A C{twisted.web} site with a page at C{/} and a WebSocket at C{/ws},
    served over in-memory connections.
    """

    def __init__(self, config: Config | None = None, resource: WebSocketResource | None = None) -> None:
        self.clock = Clock()
        self.applications: list[Recorder] = []
        self.resource = resource or WebSocketResource(self.newApplication, config, reactor=self.clock)
        root = Resource()
        root.putChild(b"", Data(b"<h1>home</h1>", "text/html"))
        root.putChild(b"ws", self.resource)
        self.site = Site(root, reactor=self.clock)

    def newApplication(self) -> Recorder:
        application = Recorder()
        self.applications.append(application)
        return application

    def connect(self, data: bytes = b"", peer: Any = PEER) -> tuple[Any, StringTransport]:
        """
        Open a connection from C{peer} to the site and send it C{data}.
        """
        protocol = self.site.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        if data:
            protocol.dataReceived(data)
        return protocol, transport


class UpgradeTests(SynchronousTestCase):
    """
    L{WebSocketResource} upgrades requests at its place in the tree; other
    resources answer HTTP as usual.
    """

    def test_upgradeAndEcho(self) -> None:
        """
        An opening request for C{/ws} gets C{101}, and the connection then
        speaks WebSocket with the application.
        """
        fixture = Fixture()
        protocol, transport = fixture.connect(requestBytes(target="/ws"))
        response = transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), response)
        self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", response)
        transport.clear()
        protocol.dataReceived(clientFrame(0x1, b"hello"))
        self.assertEqual(parseFrames(transport.value()), [(0x1, b"HELLO", True, 0)])
        [application] = fixture.applications
        self.assertEqual(application.messages, ["hello"])
        verifyObject(IWebSocketApplication, application)

    def test_applicationSeesRequest(self) -> None:
        """
        The application's C{requestReceived} gets the request as sent (path
        below the resource, query, headers) and the peer's address.
        """
        fixture = Fixture()
        fixture.connect(requestBytes(target="/ws/room/7?user=ann", headers=[("X-Token", "abc")]))
        [request] = fixture.applications[0].requests
        self.assertEqual(request.path, "/ws/room/7")
        self.assertEqual(request.query, "user=ann")
        self.assertEqual(request.get("x-token"), "abc")
        self.assertEqual(request.peer, PEER)

    def test_framesInTheSameRead(self) -> None:
        """
        Frames that arrive in the same read as the request head are neither
        lost nor parsed as HTTP.
        """
        fixture = Fixture()
        _, transport = fixture.connect(requestBytes(target="/ws") + clientFrame(0x1, b"early") + clientFrame(0x1, b"bird"))
        self.assertEqual(
            [payload for _, payload, _, _ in parseFrames(transport.value())], [b"EARLY", b"BIRD"]
        )

    def test_pageOnSameSite(self) -> None:
        """
        The other resources of the site still serve HTTP.
        """
        fixture = Fixture()
        _, transport = fixture.connect(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(transport.value().endswith(b"<h1>home</h1>"))
        self.assertEqual(fixture.applications, [])

    def test_closeAndConnectionLost(self) -> None:
        """
        A Close frame gets its echo and the connection closes; the
        application hears of it once, with the peer's code.
        """
        fixture = Fixture()
        protocol, transport = fixture.connect(requestBytes(target="/ws"))
        transport.clear()
        protocol.dataReceived(clientFrame(0x8, closePayload(1000, b"bye")))
        self.assertEqual(sentCloseCode(transport), 1000)
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(None)
        [application] = fixture.applications
        [reason] = application.lost
        self.assertEqual((reason.value.code, reason.value.reason, reason.value.wasClean), (1000, "bye", True))

    def test_connectionsTracked(self) -> None:
        """
        C{webSocketFactory.connections} holds the open connections, and
        C{shutdown()} closes them with 1001.
        """
        fixture = Fixture()
        protocol, transport = fixture.connect(requestBytes(target="/ws"))
        self.assertEqual(len(fixture.resource.webSocketFactory.connections), 1)
        transport.clear()
        fixture.resource.webSocketFactory.shutdown()
        self.assertEqual(sentCloseCode(transport), 1001)
        protocol.connectionLost(None)
        self.assertEqual(fixture.resource.webSocketFactory.connections, set())

    def test_applicationFor(self) -> None:
        """
        A subclass can build each application from the C{twisted.web}
        request through L{WebSocketResource.applicationFor}.
        """
        seen = []

        class PerUser(WebSocketResource):
            def applicationFor(self, request: Any) -> Any:
                seen.append(request.getHeader(b"x-user"))
                return EchoApplication()

        fixture = Fixture(resource=PerUser(EchoApplication, reactor=Clock()))
        _, transport = fixture.connect(requestBytes(target="/ws", headers=[("X-User", "ann")]))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))
        self.assertEqual(seen, [b"ann"])

    def test_acceptWithHeaders(self) -> None:
        """
        The application can accept with a subprotocol and extra headers, as
        with the standalone server.
        """

        class Chooser(Recorder):
            def requestReceived(self, request: Any) -> Any:
                return Accept("b", [("X-Room", "7")])

        resource = WebSocketResource(Chooser, reactor=Clock())
        fixture = Fixture(resource=resource)
        _, transport = fixture.connect(requestBytes(target="/ws", headers=[("Sec-WebSocket-Protocol", "a, b")]))
        response = transport.value()
        self.assertIn(b"Sec-WebSocket-Protocol: b\r\n", response)
        self.assertIn(b"X-Room: 7\r\n", response)


class RefusalTests(SynchronousTestCase):
    """
    Requests that can't be upgraded get the status and explanation of the
    rule they break.
    """

    def test_plainGet(self) -> None:
        """
        A C{GET} without C{Upgrade: websocket} gets C{426} with C{Upgrade}
        and C{Sec-WebSocket-Version} headers and a one-line explanation, and
        the HTTP connection stays open for more requests.
        """
        fixture = Fixture()
        _, transport = fixture.connect(b"GET /ws HTTP/1.1\r\nHost: example.com\r\n\r\n")
        response = transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n"), response)
        self.assertIn(b"Upgrade: websocket\r\n", response)
        self.assertIn(b"Sec-Websocket-Version: 13\r\n", response)
        self.assertTrue(response.endswith(b"\r\n\r\nthis is a websocket endpoint; send an upgrade: websocket request\n"))
        self.assertFalse(transport.disconnecting)
        self.assertEqual(fixture.applications, [])

    def test_otherMethod(self) -> None:
        """
        A C{POST} gets C{405} with C{Allow: GET}.
        """
        fixture = Fixture()
        _, transport = fixture.connect(b"POST /ws HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n")
        response = transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 405 "), response)
        self.assertIn(b"Allow: GET\r\n", response)

    def test_badVersion(self) -> None:
        """
        An upgrade request for another WebSocket version gets the core's
        C{426} answer, and the connection closes after it.
        """
        fixture = Fixture()
        request = requestBytes(target="/ws").replace(b"Version: 13", b"Version: 8")
        _, transport = fixture.connect(request)
        response = transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n"), response)
        self.assertIn(b"unsupported websocket version 8", response)
        self.assertTrue(transport.disconnecting)

    def test_missingKey(self) -> None:
        """
        An upgrade request without C{Sec-WebSocket-Key} gets C{400}.
        """
        fixture = Fixture()
        request = requestBytes(target="/ws").replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"")
        _, transport = fixture.connect(request)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "))
        self.assertIn(b"missing sec-websocket-key header", transport.value())

    def test_originPolicy(self) -> None:
        """
        C{Config.allowed_origins} applies: another origin gets C{403}.
        """
        fixture = Fixture(Config(allowed_origins=frozenset({"https://good.example"})))
        _, transport = fixture.connect(requestBytes(target="/ws", headers=[("Origin", "https://evil.example")]))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 403 "), transport.value())
        self.assertEqual(fixture.applications[0].requests, [])
        _, transport = fixture.connect(requestBytes(target="/ws", headers=[("Origin", "https://good.example")]))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))

    def test_headerLimit(self) -> None:
        """
        C{Config.max_headers} applies to the request C{twisted.web} parsed.
        """
        fixture = Fixture(Config(max_headers=8))
        extra = [(f"X-Extra-{n}", "1") for n in range(10)]
        _, transport = fixture.connect(requestBytes(target="/ws", headers=extra))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 431 "), transport.value())

    def test_requiredSubprotocol(self) -> None:
        """
        C{Config.require_subprotocol} applies: a client offering none of
        the server's subprotocols gets C{400}.
        """
        fixture = Fixture(Config(subprotocols=("chat",), require_subprotocol=True))
        _, transport = fixture.connect(requestBytes(target="/ws", headers=[("Sec-WebSocket-Protocol", "other")]))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "))
        self.assertIn(b"no common subprotocol", transport.value())

    def test_openTimeout(self) -> None:
        """
        C{Config.open_timeout} applies while the application decides.
        """
        from twisted.internet.defer import Deferred

        class Undecided(WebSocketApplication):
            def requestReceived(self, request: Any) -> Deferred:
                return Deferred()

        clock = Clock()
        resource = WebSocketResource(Undecided, Config(open_timeout=5), reactor=clock)
        fixture = Fixture(resource=resource)
        _, transport = fixture.connect(requestBytes(target="/ws"))
        self.assertEqual(transport.value(), b"")
        clock.advance(5)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "), transport.value())
        self.assertTrue(transport.disconnecting)

    def test_http10(self) -> None:
        """
        An HTTP/1.0 upgrade request gets C{400}.
        """
        fixture = Fixture()
        request = requestBytes(target="/ws").replace(b"HTTP/1.1", b"HTTP/1.0")
        _, transport = fixture.connect(request)
        self.assertIn(b" 400 ", transport.value().split(b"\r\n")[0])
        self.assertIn(b"needs http/1.1", transport.value())

    def test_http2RequestLine(self) -> None:
        """
        An upgrade request saying C{HTTP/2.0} in HTTP/1.1 syntax is refused
        (by C{twisted.web}'s own channel, with C{400}), never upgraded.
        """
        for version in (b"HTTP/2.0", b"HTTP/3.0"):
            fixture = Fixture()
            request = requestBytes(target="/ws").replace(b"HTTP/1.1", version)
            _, transport = fixture.connect(request)
            self.assertEqual(transport.value().split(b"\r\n")[0], b"HTTP/1.1 400 Bad Request")
            self.assertEqual(fixture.applications, [])

    def test_requestBody(self) -> None:
        """
        An upgrade request with a body gets C{400}: nothing is opened.
        """
        for header, body in ((b"Content-Length: 5", b"\x81\x80abc"), (b"Transfer-Encoding: chunked", b"0\r\n\r\n")):
            fixture = Fixture()
            request = requestBytes(target="/ws").replace(b"\r\n\r\n", b"\r\n" + header + b"\r\n\r\n") + body
            _, transport = fixture.connect(request)
            self.assertIn(b" 400 ", transport.value().split(b"\r\n")[0])
            self.assertIn(b"request body not allowed", transport.value())
            self.assertNotIn(b"101", transport.value())


class TakeOverChannelTests(SynchronousTestCase):
    """
    L{takeOverChannel}, the one use of Twisted's private HTTP channel
    behaviour, works with the installed Twisted.
    """

    def setUp(self) -> None:
        self.protocol = AccumulatingProtocol()
        self.protocol.closedDeferred = None
        self.unread: list[bytes] = []
        self.clock = Clock()
        test = self

        class Switch(Resource):
            isLeaf = True

            def render(self, request: Any) -> int:
                test.unread.append(takeOverChannel(request.channel, test.protocol))
                request.channel.transport.write(b"switched\r\n")
                return NOT_DONE_YET

        site = Site(Switch(), reactor=self.clock, timeout=30)
        self.channel = site.buildProtocol(PEER)
        self.transport = StringTransport(peerAddress=PEER)
        self.channel.makeConnection(self.transport)

    def test_bytesAfterHead(self) -> None:
        """
        The protocol receives the bytes that followed the request head in
        the same read, then every later read; the channel parses none of it.
        """
        self.channel.dataReceived(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\nGET /not-http")
        self.channel.dataReceived(b" more\r\n\r\n")
        self.assertEqual(self.unread, [b""])
        self.assertEqual(self.protocol.data, b"GET /not-http more\r\n\r\n")
        self.assertEqual(self.transport.value(), b"switched\r\n")
        self.assertIs(self.protocol.transport, self.transport)
        self.assertEqual(self.protocol.made, 1)

    def test_bodyRemainder(self) -> None:
        """
        Bytes read past a request body are returned, for the caller to feed
        first.
        """
        self.channel.dataReceived(b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiEXTRA")
        self.assertEqual(self.unread, [b"EXTRA"])
        self.assertEqual(self.protocol.data, b"")

    def test_connectionLostAndProducer(self) -> None:
        """
        The channel is no longer its transport's producer and its timeout no
        longer runs; the connection's loss reaches the protocol.
        """
        from twisted.web.http import HTTPChannel

        self.assertIsInstance(self.transport.producer, HTTPChannel)
        self.channel.dataReceived(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertIsNone(self.transport.producer)
        self.clock.advance(3600)
        self.assertFalse(self.transport.disconnecting)
        self.channel.connectionLost(None)
        self.assertTrue(self.protocol.closed)


class HelperTests(SynchronousTestCase):
    """
    L{requestHead}, L{handshakeRequest} and L{mountAt}.
    """

    def parsed(self, data: bytes) -> Any:
        captured = []

        class Capture(Resource):
            isLeaf = True

            def render(self, request: Any) -> bytes:
                captured.append(request)
                return b""

        channel = Site(Capture(), reactor=Clock()).buildProtocol(PEER)
        channel.makeConnection(StringTransport())
        channel.dataReceived(data)
        return captured[0]

    def test_requestHead(self) -> None:
        """
        L{requestHead} rebuilds the head from the parsed request, with every
        header value, repeated ones included.
        """
        request = self.parsed(b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-Rep: 1\r\nX-Rep: 2\r\n\r\n")
        head = requestHead(request)
        self.assertTrue(head.startswith(b"GET /a?b=1 HTTP/1.1\r\n"))
        self.assertTrue(head.endswith(b"\r\n\r\n"))
        self.assertIn(b"X-Rep: 1\r\nX-Rep: 2\r\n", head)
        self.assertIn(b"Host: h\r\n", head)

    def test_handshakeRequest(self) -> None:
        """
        L{handshakeRequest} gives the core's view of the parsed request.
        """
        request = self.parsed(b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-Rep: 1\r\nX-Rep: 2\r\n\r\n")
        handshake = handshakeRequest(request)
        self.assertEqual((handshake.method, handshake.target, handshake.http_version), ("GET", "/a?b=1", (1, 1)))
        self.assertEqual(handshake.get("x-rep"), "1, 2")

    def test_mountAt(self) -> None:
        """
        L{mountAt} serves the resource at a path of several segments and
        below it, and the fallback everywhere else.
        """
        live = Data(b"live", "text/plain")
        live.isLeaf = True
        fallback = Data(b"fallback", "text/plain")
        fallback.isLeaf = True
        root = mountAt("/api/live", live, fallback)
        site = Site(root, reactor=Clock())
        for path, expected in [
            (b"/api/live", b"live"),
            (b"/api/live/x", b"live"),
            (b"/api", b"fallback"),
            (b"/api/other", b"fallback"),
            (b"/", b"fallback"),
        ]:
            channel = site.buildProtocol(PEER)
            transport = StringTransport()
            channel.makeConnection(transport)
            channel.dataReceived(b"GET " + path + b" HTTP/1.1\r\nHost: h\r\n\r\n")
            self.assertTrue(transport.value().endswith(expected), (path, transport.value()))

    def test_mountAtRoot(self) -> None:
        """
        L{mountAt} refuses C{/} and relative paths.
        """
        for path in ("/", "ws", ""):
            self.assertRaises(ValueError, mountAt, path, Resource(), Resource())


class SiteFixture(Fixture):
    """
    L{Fixture} served by a L{WebSocketSite} with C{config}, whose own idle
    timeout is 300 seconds.
    """

    def __init__(self, config: Config | None = None) -> None:
        super().__init__(config)
        self.config = config or Config()
        self.site = WebSocketSite(self.site.resource, self.config, reactor=self.clock, timeout=300)


def refusal(status: bytes, reason: bytes) -> bytes:
    """
    The whole answer of L{WebSocketSite} refusing a connection.
    """
    body = reason + b"\n"
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )


class SiteOpenTimeoutTests(SynchronousTestCase):
    """
    L{WebSocketSite} gives each connection C{Config.open_timeout}, from the
    moment it is made, to deliver its first request whole.
    """

    def assertDripRefused(self, fixture: SiteFixture, protocol: Any, transport: Any) -> None:
        """
        A request head dripped a byte every 0.1 seconds gets nothing for
        4.9 seconds, then C{408} (C{open_timeout=5}) and the connection
        closes.
        """
        head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"a" * 100
        for byte in head[:49]:
            protocol.dataReceived(bytes([byte]))
            fixture.clock.advance(0.1)
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(head[49:50])
        fixture.clock.advance(0.2)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 Request Timeout\r\n"), transport.value())
        self.assertTrue(transport.disconnecting)

    def test_idleClient(self) -> None:
        """
        A client that sends nothing gets C{408} at the deadline and the
        connection closes; it is aborted C{close_timeout} later if it is
        still open.
        """
        fixture = SiteFixture(Config(open_timeout=5, close_timeout=3))
        _, transport = fixture.connect()
        fixture.clock.advance(4.9)
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        fixture.clock.advance(0.1)
        self.assertEqual(
            transport.value(), refusal(b"408 Request Timeout", b"no complete request within 5 s")
        )
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        fixture.clock.advance(3)
        self.assertTrue(transport.disconnected)

    def test_refusalLogNamesIPv6Peer(self) -> None:
        """
        The log line of a refusal names an IPv6 peer C{[host]:port} (RFC
        3986 section 3.2.2).
        """
        from twisted.internet.address import IPv6Address
        from twisted.logger import capturedLogs, formatEvent

        fixture = SiteFixture(Config(open_timeout=5))
        fixture.connect(peer=IPv6Address("TCP", "2001:db8::7", 40000))
        with capturedLogs() as events:
            fixture.clock.advance(5)
        lines = [formatEvent(event) for event in events]
        self.assertIn("refused [2001:db8::7]:40000: 408 no complete request within 5 s", lines)

    def test_drippingClient(self) -> None:
        """
        Bytes dripped every 0.1 seconds don't move the deadline: a client
        still dripping its head after 5 seconds gets C{408}.
        """
        fixture = SiteFixture(Config(open_timeout=5))
        protocol, transport = fixture.connect()
        self.assertDripRefused(fixture, protocol, transport)

    def test_slowBody(self) -> None:
        """
        The deadline covers the first request's body too.
        """
        fixture = SiteFixture(Config(open_timeout=5))
        _, transport = fixture.connect(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345")
        fixture.clock.advance(5)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "), transport.value())

    def test_webSocketStopsDeadline(self) -> None:
        """
        A WebSocket request that arrives in time takes the connection over
        and the deadline no longer applies to it.
        """
        fixture = SiteFixture(Config(open_timeout=5, ping_interval=None))
        protocol, transport = fixture.connect()
        fixture.clock.advance(4)
        protocol.dataReceived(requestBytes(target="/ws"))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "), transport.value())
        transport.clear()
        fixture.clock.advance(60)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(clientFrame(0x1, b"late"))
        self.assertEqual(parseFrames(transport.value()), [(0x1, b"LATE", True, 0)])

    def test_firstRequestStopsDeadline(self) -> None:
        """
        Once its first ordinary request has arrived, the connection stays
        open past the deadline; the site's own idle timeout then applies.
        """
        fixture = SiteFixture(Config(open_timeout=5))
        _, transport = fixture.connect(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "), transport.value())
        transport.clear()
        fixture.clock.advance(299)
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        fixture.clock.advance(1)
        self.assertTrue(transport.disconnecting)

    def test_drippingLaterRequest(self) -> None:
        """
        On a kept-alive connection, a later request dripped byte by byte
        gets C{408} C{open_timeout} after its first byte: the site's idle
        timeout, started again by every byte, would keep it forever.
        """
        fixture = SiteFixture(Config(open_timeout=5))
        protocol, transport = fixture.connect(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "), transport.value())
        transport.clear()
        fixture.clock.advance(100)  # idle between requests: the site's timeout
        self.assertFalse(transport.disconnecting)
        self.assertDripRefused(fixture, protocol, transport)

    def test_laterRequestsInTime(self) -> None:
        """
        Later requests that arrive whole in time are answered, and leave no
        deadline behind: the connection then lasts the site's idle timeout.
        """
        fixture = SiteFixture(Config(open_timeout=5))
        protocol, transport = fixture.connect(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        for _ in range(3):
            transport.clear()
            fixture.clock.advance(10)
            protocol.dataReceived(b"GET / HTTP/1.1\r\n")
            fixture.clock.advance(4)
            protocol.dataReceived(b"Host: a\r\n\r\n")
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "), transport.value())
        transport.clear()
        self.assertEqual([call for call in fixture.clock.getDelayedCalls() if "openTimedOut" in repr(call)], [])
        fixture.clock.advance(299)
        self.assertFalse(transport.disconnecting)
        fixture.clock.advance(1)
        self.assertTrue(transport.disconnecting)

    def test_noOpenTimeout(self) -> None:
        """
        With C{open_timeout=None}, only the site's idle timeout applies.
        """
        fixture = SiteFixture(Config(open_timeout=None))
        _, transport = fixture.connect(b"GET / HTTP/1.1\r\n")
        fixture.clock.advance(299)
        self.assertFalse(transport.disconnecting)
        fixture.clock.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")

    def test_connectionLostCancels(self) -> None:
        """
        A connection lost before its deadline leaves no timer behind.
        """
        fixture = SiteFixture()
        protocol, _ = fixture.connect(b"GET / HTTP/1.1\r\n")
        self.assertNotEqual(fixture.clock.getDelayedCalls(), [])
        protocol.connectionLost(None)
        self.assertEqual(fixture.clock.getDelayedCalls(), [])

    def test_afterBadRequest(self) -> None:
        """
        A connection that C{twisted.web} already answered with C{400} gets
        no second answer at the deadline, but is aborted if it is still
        open C{close_timeout} later.
        """
        fixture = SiteFixture(Config(open_timeout=5, close_timeout=3))
        _, transport = fixture.connect(b"GET / HTTP/1.2\r\n")
        answer = transport.value()
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer)
        self.assertTrue(transport.disconnecting)
        fixture.clock.advance(5)
        self.assertEqual(transport.value(), answer)
        self.assertFalse(transport.disconnected)
        fixture.clock.advance(3)
        self.assertTrue(transport.disconnected)

    def test_http2(self) -> None:
        """
        A connection whose TLS negotiated C{h2} is served by Twisted's
        HTTP/2 channel (L{WebSocketSite} wraps its channels as L{Site}
        does), and gets no C{408} from the HTTP/1.1 channel it left, whose
        deadline is gone.
        """
        from twisted.web.http import H2_ENABLED

        if not H2_ENABLED:
            raise self.skipTest("twisted.web has no HTTP/2 here (install h2 and priority)")
        from h2.config import H2Configuration
        from h2.connection import H2Connection
        from h2.events import ResponseReceived

        fixture = SiteFixture(Config(open_timeout=5))
        protocol = fixture.site.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        transport.negotiatedProtocol = b"h2"  # type: ignore[attr-defined]
        protocol.makeConnection(transport)
        client = H2Connection(H2Configuration(client_side=True))
        client.initiate_connection()
        client.send_headers(
            1, [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "a")], end_stream=True
        )
        protocol.dataReceived(client.data_to_send())
        deadlines = [call for call in fixture.clock.getDelayedCalls() if call.func.__name__ == "_openTimedOut"]
        self.assertEqual(deadlines, [])
        fixture.clock.advance(10)
        events = client.receive_data(transport.value())
        statuses = [dict(event.headers)[b":status"] for event in events if isinstance(event, ResponseReceived)]
        self.assertEqual(statuses, [b"200"])
        self.assertNotIn(b"408", transport.value())
        self.assertFalse(transport.disconnecting)


class SiteHeadLimitTests(SynchronousTestCase):
    """
    L{WebSocketSite} answers a request head over C{Config.max_head_size} or
    with more than C{Config.max_headers} fields with C{431} and a one-line
    explanation, then closes.
    """

    def test_longHeaderLine(self) -> None:
        """
        A header line longer than C{max_head_size}, whole or still
        arriving, gets C{431}.
        """
        for end in (b"\r\n\r\n", b""):
            fixture = SiteFixture()
            head = requestBytes(target="/ws")[:-2] + b"X-Big: " + b"a" * 16400 + end
            _, transport = fixture.connect(head)
            self.assertEqual(
                transport.value(),
                refusal(b"431 Request Header Fields Too Large", b"request head over 16384 bytes"),
            )
            self.assertTrue(transport.disconnecting)

    def test_headTooLarge(self) -> None:
        """
        Header lines that add up to more than C{max_head_size} get C{431}.
        """
        fixture = SiteFixture()
        extra = [(f"X-Extra-{n}", "a" * 1000) for n in range(17)]
        _, transport = fixture.connect(requestBytes(target="/ws", headers=extra))
        self.assertEqual(
            transport.value(), refusal(b"431 Request Header Fields Too Large", b"request head over 16384 bytes")
        )

    def test_tooManyHeaders(self) -> None:
        """
        More than C{max_headers} fields get C{431}; exactly as many are
        served, on every request of a connection.
        """
        fixture = SiteFixture()
        fields = b"".join(b"X-Extra-%d: 1\r\n" % n for n in range(99))
        request = b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"
        protocol, transport = fixture.connect(request)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "), transport.value())
        transport.clear()
        protocol.dataReceived(request)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "), transport.value())
        transport.clear()
        protocol.dataReceived(request.replace(b"\r\n\r\n", b"\r\nX-One-Too-Many: 1\r\n\r\n"))
        self.assertEqual(
            transport.value(), refusal(b"431 Request Header Fields Too Large", b"more than 100 header fields")
        )
        self.assertTrue(transport.disconnecting)

    def test_configuredLimits(self) -> None:
        """
        The limits are those of the site's L{Config}, below or above
        C{twisted.web}'s own.
        """
        small = SiteFixture(Config(max_head_size=1024, max_headers=4))
        _, transport = small.connect(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 1024 + b"\r\n\r\n")
        self.assertEqual(
            transport.value(), refusal(b"431 Request Header Fields Too Large", b"request head over 1024 bytes")
        )
        _, transport = small.connect(requestBytes(target="/ws"))
        self.assertEqual(
            transport.value(), refusal(b"431 Request Header Fields Too Large", b"more than 4 header fields")
        )
        large = SiteFixture(Config(max_head_size=64 * 1024))
        _, transport = large.connect(requestBytes(target="/ws", headers=[("X-Big", "a" * 40000)]))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "), transport.value()[:200])
