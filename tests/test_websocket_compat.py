"""
Tests for L{wsproto_tw.websocket}, the drop-in for C{twisted.web.websocket},
written against that module's public API only: the applications below are
written as for Twisted's module, and only their import differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import (
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from twisted.test.iosim import ConnectionCompleter
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.iweb import IAgentEndpointFactory
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data
from zope.interface import implementer

import wsproto_tw.websocket
from tests.helpers import RecordingProducer
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.websocket import (
    ConnectionRejected,
    WebSocketClientEndpoint,
    WebSocketClientFactory,
    WebSocketProtocol,
    WebSocketResource,
    WebSocketServerFactory,
    WebSocketTransport,
)


@dataclass
class Peer(WebSocketProtocol):
    """
    One side of a connection, written as for C{twisted.web.websocket}: it
    answers C{"request"} messages and records everything else.
    """

    events: list[str] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    received: list[Any] = field(default_factory=list)
    lostReason: Failure | None = None
    lost: Deferred = field(default_factory=Deferred)
    waiting: Deferred | None = None

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport
        self.events.append("started")

    def negotiationFinished(self) -> None:
        self.events.append("finished")

    def textMessageReceived(self, message: str) -> None:
        if message == "request":
            self.transport.sendTextMessage("response")
        else:
            self._got(message)

    def bytesMessageReceived(self, data: bytes) -> None:
        if data == b"request":
            self.transport.sendBytesMessage(b"\x00resp\x01onse\xff")
        else:
            self._got(data)

    def pongReceived(self, payload: bytes) -> None:
        self.pongs.append(payload)
        self._got(("pong", payload))

    def connectionLost(self, reason: Failure) -> None:
        self.events.append("lost")
        self.lostReason = reason
        self.lost.callback(None)

    def _got(self, message: Any) -> None:
        self.received.append(message)
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            waiting.callback(message)

    def next(self) -> Deferred:
        """
        @return: a Deferred firing with the next message (or pong) recorded.
        """
        self.waiting = Deferred()
        return self.waiting


class ServerFactory(WebSocketServerFactory[Peer]):
    def __init__(self) -> None:
        self.peers: list[Peer] = []
        self.requests: list[Any] = []

    def buildProtocol(self, request: Any) -> Peer:
        self.requests.append(request)
        peer = Peer()
        self.peers.append(peer)
        return peer


class ClientFactory(WebSocketClientFactory[Peer]):
    def __init__(self) -> None:
        self.urls: list[str] = []

    def buildProtocol(self, url: str) -> Peer:
        self.urls.append(url)
        return Peer()


class PublicNamesTests(SynchronousTestCase):
    """
    The module exports what C{twisted.web.websocket} exports.
    """

    def test_names(self) -> None:
        """
        C{__all__} lists exactly Twisted's seven public names.
        """
        self.assertEqual(
            sorted(wsproto_tw.websocket.__all__),
            [
                "ConnectionRejected",
                "WebSocketClientEndpoint",
                "WebSocketClientFactory",
                "WebSocketProtocol",
                "WebSocketResource",
                "WebSocketServerFactory",
                "WebSocketTransport",
            ],
        )
        for name in wsproto_tw.websocket.__all__:
            self.assertTrue(hasattr(wsproto_tw.websocket, name), name)


class LoopbackTests(TestCase):
    """
    A L{WebSocketResource} in a site on a loopback port, and
    L{WebSocketClientEndpoint} clients.
    """

    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        self.serverFactory = ServerFactory()
        self.root = Resource()
        self.resource = WebSocketResource(self.serverFactory)
        self.root.putChild(b"connect", self.resource)
        self.root.putChild(b"page", Data(b"just a page", "text/plain"))
        self.tracked = WrappingFactory(Site(self.root))
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(self.tracked)
        self.addCleanup(port.stopListening)
        self.addCleanup(self.serverConnectionsGone)
        self.base = f"http://127.0.0.1:{port.getHost().port}"

    @inlineCallbacks
    def serverConnectionsGone(self) -> Any:
        for _ in range(500):
            if not self.tracked.protocols:
                return
            yield deferLater(reactor, 0.01, lambda: None)
        self.fail("server connections left open")

    def connect(self, path: str = "/connect", url: str | None = None, **kwargs: Any) -> Deferred:
        endpoint = WebSocketClientEndpoint.new(reactor, url or self.base + path, **kwargs)
        return Deferred.fromCoroutine(endpoint.connect(ClientFactory()))

    @inlineCallbacks
    def closeBoth(self, client: Peer) -> Any:
        client.transport.loseConnection()
        yield client.lost
        yield self.serverFactory.peers[0].lost

    @inlineCallbacks
    def test_textMessages(self) -> Any:
        """
        Text messages go both ways; negotiation is reported on both sides.
        """
        client = yield self.connect()
        self.assertEqual(client.events, ["started", "finished"])
        answer = client.next()
        client.transport.sendTextMessage("request")
        self.assertEqual((yield answer), "response")
        [server] = self.serverFactory.peers
        self.assertEqual(server.events, ["started", "finished"])
        self.assertEqual(self.serverFactory.requests[0].uri, b"/connect")
        yield self.closeBoth(client)

    @inlineCallbacks
    def test_bytesMessages(self) -> Any:
        """
        Binary messages go both ways, as bytes.
        """
        client = yield self.connect()
        answer = client.next()
        client.transport.sendBytesMessage(b"request")
        self.assertEqual((yield answer), b"\x00resp\x01onse\xff")
        yield self.closeBoth(client)

    @inlineCallbacks
    def test_pingPong(self) -> Any:
        """
        C{ping} gets the peer's pong, with the same payload, at
        C{pongReceived}.
        """
        client = yield self.connect()
        answer = client.next()
        client.transport.ping(b"123")
        self.assertEqual((yield answer), ("pong", b"123"))
        yield self.closeBoth(client)

    @inlineCallbacks
    def test_connectionLost(self) -> Any:
        """
        C{loseConnection()} closes the connection, and both sides'
        C{connectionLost} hear of it as a clean close: a
        L{ConnectionDone}.
        """
        client = yield self.connect()
        [server] = self.serverFactory.peers
        self.assertIsNone(server.lostReason)
        client.transport.loseConnection()
        yield client.lost
        yield server.lost
        self.assertTrue(client.lostReason.check(ConnectionDone))
        self.assertTrue(server.lostReason.check(ConnectionDone))
        self.assertEqual(client.events[-1], "lost")

    @inlineCallbacks
    def test_closeCode(self) -> Any:
        """
        C{loseConnection(code)} sends C{code}; the other side's reason
        carries it.
        """
        client = yield self.connect()
        [server] = self.serverFactory.peers
        server.transport.loseConnection(4000)
        yield client.lost
        self.assertEqual(client.lostReason.value.code, 4000)
        yield server.lost

    @inlineCallbacks
    def test_refusedByHTTP(self) -> Any:
        """
        Connecting to a URL that answers without upgrading fails with
        L{ConnectionRejected}, whose C{response} has the status, headers and
        body.
        """
        failure = yield self.assertFailure(self.connect("/page"), ConnectionRejected)
        response = failure.response
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"text/plain"])
        self.assertEqual((yield readBody(response)), b"just a page")
        failure = yield self.assertFailure(self.connect("/nothing"), ConnectionRejected)
        self.assertEqual(failure.response.code, 404)

    @inlineCallbacks
    def test_refusedByTCP(self) -> Any:
        """
        Connecting to a port where nothing listens fails with the
        endpoint's L{ConnectionRefusedError}.
        """
        closed = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(Resource()))
        port = closed.getHost().port
        yield closed.stopListening()
        yield self.assertFailure(self.connect(url=f"http://127.0.0.1:{port}/connect"), ConnectionRefusedError)

    @inlineCallbacks
    def test_wsURL(self) -> Any:
        """
        A C{ws://} URL works as well as C{http://}.
        """
        client = yield self.connect(url=self.base.replace("http://", "ws://") + "/connect")
        answer = client.next()
        client.transport.sendTextMessage("request")
        self.assertEqual((yield answer), "response")
        yield self.closeBoth(client)

    @inlineCallbacks
    def test_plainGet(self) -> Any:
        """
        A plain HTTP GET gets C{426 Upgrade Required}.
        """
        pool = HTTPConnectionPool(reactor, persistent=False)
        response = yield Agent(reactor, pool=pool).request(b"GET", (self.base + "/connect").encode())
        self.assertEqual(response.code, 426)
        self.assertIn(b"websocket", (yield readBody(response)))
        yield pool.closeCachedConnections()

    @inlineCallbacks
    def test_limits(self) -> Any:
        """
        Passing a L{Config} adds wsproto_tw's limits: a message over
        C{max_message_size} closes the connection with 1009, a
        L{ConnectionLost} for both sides.
        """
        self.root.putChild(b"small", WebSocketResource(self.serverFactory, Config(max_message_size=16)))
        client = yield self.connect("/small")
        client.transport.sendTextMessage("x" * 17)
        yield client.lost
        self.assertEqual(client.lostReason.value.code, 1009)
        self.assertTrue(client.lostReason.check(ConnectionLost))
        [server] = self.serverFactory.peers
        yield server.lost
        self.assertEqual(server.lostReason.value.code, 1009)

    @inlineCallbacks
    def test_keepalive(self) -> Any:
        """
        Passing a L{Config} adds keepalive: the server pings on its own, and
        the client's pongs reach the server's C{pongReceived}.
        """
        self.root.putChild(b"alive", WebSocketResource(self.serverFactory, Config(ping_interval=0.05)))
        client = yield self.connect("/alive")
        [server] = self.serverFactory.peers
        kind, _ = yield server.next()
        self.assertEqual(kind, "pong")
        self.assertEqual(client.pongs, [])
        yield self.closeBoth(client)

    @inlineCallbacks
    def test_compression(self) -> Any:
        """
        Passing a L{Config} with compression on both sides negotiates
        permessage-deflate, transparently to the applications.
        """
        compressed = Config(compression=PerMessageDeflate())
        resource = WebSocketResource(self.serverFactory, compressed)
        self.root.putChild(b"deflate", resource)
        client = yield self.connect("/deflate", config=compressed)
        [connection] = resource.webSocketFactory.connections
        self.assertIn("permessage-deflate", connection.extensions)
        answer = client.next()
        client.transport.sendTextMessage("request")
        self.assertEqual((yield answer), "response")
        yield self.closeBoth(client)


@implementer(IAgentEndpointFactory)
class MemoryEndpoints:
    """
    Connects to the URL's host and port over a memory reactor's TCP.
    """

    def __init__(self, memory: MemoryReactorClock) -> None:
        self.memory = memory

    def endpointForURI(self, uri: Any) -> TCP4ClientEndpoint:
        return TCP4ClientEndpoint(self.memory, uri.host.decode(), uri.port)


class ProducerTests(SynchronousTestCase):
    """
    C{attachProducer} relays the connection's backpressure to a producer,
    over in-memory connections.
    """

    def test_backpressure(self) -> None:
        """
        The producer is paused while the transport's write buffer is full,
        resumed when it drains, and stopped when the connection is lost;
        once detached it hears nothing more.
        """
        memory = MemoryReactorClock()
        serverFactory = ServerFactory()
        root = Resource()
        root.putChild(b"connect", WebSocketResource(serverFactory, reactor=memory))
        memory.listenTCP(80, Site(root, reactor=memory))
        # An endpoint factory of its own, as the dataclass allows: resolving
        # names on a memory reactor needs a recent Twisted.
        endpoint = WebSocketClientEndpoint(MemoryEndpoints(memory), "http://127.0.0.1:80/connect")
        connected = Deferred.fromCoroutine(endpoint.connect(ClientFactory()))
        pump = ConnectionCompleter(memory).succeedOnce()
        pump.flush()
        client = self.successResultOf(connected)
        [server] = serverFactory.peers
        events: list[str] = []
        server.transport.attachProducer(RecordingProducer(events))
        pump.serverIO.producer.pauseProducing()
        pump.serverIO.producer.resumeProducing()
        self.assertEqual(events, ["paused", "resumed"])
        server.transport.detachProducer()
        pump.serverIO.producer.pauseProducing()
        pump.serverIO.producer.resumeProducing()
        self.assertEqual(events, ["paused", "resumed"])
        server.transport.attachProducer(RecordingProducer(events))
        client.transport.loseConnection()
        pump.flush()
        self.assertEqual(events, ["paused", "resumed", "stopped"])
        self.assertIsNotNone(server.lostReason)
