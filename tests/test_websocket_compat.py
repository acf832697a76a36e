"""
Tests for L{wsproto_tw.websocket}, the drop-in for C{twisted.web.websocket},
written against that module's public API only: the applications below are
written as for Twisted's module, and only their import differs.
"""

from __future__ import annotations

import os
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
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import AccumulatingProtocol, MemoryReactorClock
from twisted.protocols.policies import WrappingFactory
from twisted.python.failure import Failure
from twisted.test.iosim import ConnectionCompleter
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory, IPolicyForHTTPS
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data
from zope.interface import implementer

import wsproto_tw.websocket
from tests.helpers import RecordingProducer
from tests.test_client import listenTLS, makeCertificate
from tests.tools import protocolsGone
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.errors import HandshakeRejected
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
        self.peers: list[Peer] = []

    def buildProtocol(self, url: str) -> Peer:
        self.urls.append(url)
        peer = Peer()
        self.peers.append(peer)
        return peer


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
        self.addCleanup(protocolsGone, self, self.tracked)
        self.base = f"http://127.0.0.1:{port.getHost().port}"

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
        body; the body's protocol gets L{ConnectionDone} at its end, as with
        Twisted's module.
        """
        failure = yield self.assertFailure(self.connect("/page"), ConnectionRejected)
        response = failure.response
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"text/plain"])
        self.assertEqual(response.length, len(b"just a page"))
        reader = AccumulatingProtocol()
        reader.closedDeferred = Deferred()
        response.deliverBody(reader)
        yield reader.closedDeferred
        self.assertEqual(reader.data, b"just a page")
        self.assertIs(reader.closedReason.type, ConnectionDone)
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
        A plain HTTP GET gets C{400} with the body C{websocket protocol
        negotiation error}, as from Twisted's module; so does a HEAD,
        without the body.
        """
        pool = HTTPConnectionPool(reactor, persistent=False)
        agent = Agent(reactor, pool=pool)
        url = (self.base + "/connect").encode()
        response = yield agent.request(b"GET", url)
        self.assertEqual(response.code, 400)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"text/plain"])
        self.assertEqual((yield readBody(response)), b"websocket protocol negotiation error")
        response = yield agent.request(b"HEAD", url)
        self.assertEqual(response.code, 400)
        self.assertEqual((yield readBody(response)), b"")
        yield pool.closeCachedConnections()
        self.assertEqual(self.serverFactory.peers, [])

    @inlineCallbacks
    def test_upgradeBreakingRules(self) -> Any:
        """
        A request that asks for a WebSocket but breaks a rule of RFC 6455 is
        answered by wsproto_tw's core: another version gets C{426} and the
        version it supports.
        """
        pool = HTTPConnectionPool(reactor, persistent=False)
        headers = Headers(
            {
                b"Upgrade": [b"websocket"],
                b"Connection": [b"Upgrade"],
                b"Sec-WebSocket-Key": [b"dGhlIHNhbXBsZSBub25jZQ=="],
                b"Sec-WebSocket-Version": [b"8"],
            }
        )
        response = yield Agent(reactor, pool=pool).request(b"GET", (self.base + "/connect").encode(), headers)
        self.assertEqual(response.code, 426)
        self.assertEqual(response.headers.getRawHeaders(b"sec-websocket-version"), [b"13"])
        yield readBody(response)
        yield pool.closeCachedConnections()

    @inlineCallbacks
    def test_producerStoppedOnceOnClose(self) -> Any:
        """
        Over a real socket, an attached producer is the socket's producer,
        and after a closing handshake it is told C{stopProducing} once.
        """
        client = yield self.connect()
        [server] = self.serverFactory.peers
        events: list[str] = []
        producer = RecordingProducer(events)
        server.transport.attachProducer(producer)
        [channel] = self.tracked.protocols.keys()
        self.assertIs(channel.transport.producer, producer)
        client.transport.loseConnection()
        yield client.lost
        yield server.lost
        self.assertEqual(events, ["stopped"])

    @inlineCallbacks
    def test_producerStoppedOnceOnAbort(self) -> Any:
        """
        When the socket goes away without a closing handshake, the socket
        itself tells the attached producer C{stopProducing}; it is not told
        again.
        """
        client = yield self.connect()
        [server] = self.serverFactory.peers
        events: list[str] = []
        server.transport.attachProducer(RecordingProducer(events))
        [channel] = self.tracked.protocols.keys()
        channel.transport.abortConnection()
        yield server.lost
        yield client.lost
        self.assertEqual(events, ["stopped"])
        self.assertEqual(server.lostReason.value.code, 1006)

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
class TLSTests(TestCase):
    """
    L{WebSocketClientEndpoint} to C{wss://} servers whose certificates are
    made at test time, with Twisted's TLS policies.
    """

    timeout = 30

    def serve(self, **certificate: Any) -> tuple[str, int]:
        """
        Serve the resource over TLS with a self-signed certificate.

        @param certificate: L{makeCertificate}'s arguments.
        @return: the certificate's path, and the port.
        """
        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp, **certificate)
        self.serverFactory = ServerFactory()
        root = Resource()
        root.putChild(b"connect", WebSocketResource(self.serverFactory))
        tracked = WrappingFactory(Site(root))
        port = listenTLS(self, tracked, certPath, keyPath)
        self.addCleanup(protocolsGone, self, tracked)
        return certPath, port

    def connect(self, port: int, tlsPolicy: Any) -> Deferred:
        endpoint = WebSocketClientEndpoint.new(reactor, f"wss://localhost:{port}/connect", tlsPolicy)
        return Deferred.fromCoroutine(endpoint.connect(ClientFactory()))

    @inlineCallbacks
    def test_trusted(self) -> Any:
        """
        A certificate for the host, trusted by the policy's trust root:
        the connection opens.
        """
        certPath, port = self.serve()
        client = yield self.connect(port, BrowserLikePolicyForHTTPS(trustRoot=trustRoot(certPath)))
        self.assertEqual(client.events, ["started", "finished"])
        client.transport.loseConnection()
        yield client.lost

    @inlineCallbacks
    def test_noSubjectAltName(self) -> Any:
        """
        Through Twisted's verifying policy, a trusted certificate without a
        C{subjectAltName} is for no host (RFC 6125 §6.4.4), even one whose
        common name is the host's: the connection fails with
        L{service_identity.CertificateError} (Twisted's own check would only
        log it and go on) and nothing opens on the server.
        """
        from service_identity import CertificateError

        certPath, port = self.serve(san=False)
        error = yield self.assertFailure(
            self.connect(port, BrowserLikePolicyForHTTPS(trustRoot=trustRoot(certPath))), CertificateError
        )
        self.assertEqual(str(error), "Certificate does not contain any `subjectAltName`s.")
        self.assertEqual(self.serverFactory.peers, [])

    @inlineCallbacks
    def test_verifyFailureSaysWhy(self) -> Any:
        """
        Through Twisted's verifying policy, a certificate that fails
        verification fails with OpenSSL's error saying why, as
        L{wsproto_tw.client.connect}'s does.
        """
        from OpenSSL.SSL import Error

        certPath, port = self.serve()
        error = yield self.assertFailure(self.connect(port, BrowserLikePolicyForHTTPS()), Error)
        self.assertEqual(error.args, ([("SSL routines", "", "certificate verify failed: self-signed certificate")],))

    @inlineCallbacks
    def test_policyThatDoesNotVerify(self) -> Any:
        """
        A policy whose settings do not verify the certificate is left as it
        is: the host is not checked either.
        """
        from twisted.internet.ssl import CertificateOptions

        @implementer(IPolicyForHTTPS)
        class Unverified:
            def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
                return CertificateOptions()

        certPath, port = self.serve(san=False)
        client = yield self.connect(port, Unverified())
        self.assertEqual(client.events, ["started", "finished"])
        client.transport.loseConnection()
        yield client.lost


def trustRoot(certPath: str) -> Any:
    """
    @return: the certificate in C{certPath}, as a trust root.
    """
    from twisted.internet.ssl import Certificate

    with open(certPath, "rb") as f:
        return Certificate.loadPEM(f.read())


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
    C{attachProducer} makes a producer the producer of the connection's
    stream transport, as Twisted's module does, over in-memory connections.
    """

    def setUp(self) -> None:
        memory = MemoryReactorClock()
        self.serverFactory = ServerFactory()
        root = Resource()
        root.putChild(b"connect", WebSocketResource(self.serverFactory, reactor=memory))
        memory.listenTCP(80, Site(root, reactor=memory))
        # An endpoint factory of its own, as the dataclass allows: resolving
        # names on a memory reactor needs a recent Twisted.
        endpoint = WebSocketClientEndpoint(MemoryEndpoints(memory), "http://127.0.0.1:80/connect", reactor=memory)
        connected = Deferred.fromCoroutine(endpoint.connect(ClientFactory()))
        self.pump = ConnectionCompleter(memory).succeedOnce()
        self.pump.flush()
        self.client = self.successResultOf(connected)
        [self.server] = self.serverFactory.peers
        self.events: list[str] = []

    def test_backpressure(self) -> None:
        """
        The stream transport pauses and resumes the attached producer
        itself; once detached, the producer hears nothing more, and the
        next send makes wsproto_tw's own transport the stream's producer
        again.
        """
        stream = self.pump.serverIO
        own = stream.producer
        self.assertIsNotNone(own)
        producer = RecordingProducer(self.events)
        self.server.transport.attachProducer(producer)
        self.assertIs(stream.producer, producer)
        stream.producer.pauseProducing()
        stream.producer.resumeProducing()
        self.assertEqual(self.events, ["paused", "resumed"])
        self.server.transport.detachProducer()
        self.assertIsNone(stream.producer)
        self.server.transport.sendTextMessage("more")
        self.assertIs(stream.producer, own)
        own.pauseProducing()
        own.resumeProducing()
        self.assertEqual(self.events, ["paused", "resumed"])

    def test_attachWhileFull(self) -> None:
        """
        A producer attached while the stream's write buffer is full is
        paused at once, and resumed when the stream drains.
        """
        self.pump.serverIO.producer.pauseProducing()
        self.server.transport.attachProducer(RecordingProducer(self.events))
        self.assertEqual(self.events, ["paused"])
        self.pump.serverIO.producer.resumeProducing()
        self.assertEqual(self.events, ["paused", "resumed"])

    def test_attachTwice(self) -> None:
        """
        Attaching a second producer raises L{RuntimeError}; after a detach,
        another one can be attached.
        """
        first = RecordingProducer(self.events)
        self.server.transport.attachProducer(first)
        self.assertRaises(RuntimeError, self.server.transport.attachProducer, RecordingProducer([]))
        self.assertIs(self.pump.serverIO.producer, first)
        self.server.transport.detachProducer()
        second = RecordingProducer(self.events)
        self.server.transport.attachProducer(second)
        self.assertIs(self.pump.serverIO.producer, second)

    def test_stoppedOnClose(self) -> None:
        """
        An attached producer is told C{stopProducing} once when the
        connection closes; a detached one is not told.
        """
        self.server.transport.attachProducer(RecordingProducer([]))
        self.server.transport.detachProducer()
        self.server.transport.attachProducer(RecordingProducer(self.events))
        self.client.transport.loseConnection()
        self.pump.flush()
        self.assertEqual(self.events, ["stopped"])
        self.assertIsNotNone(self.server.lostReason)

    def test_clientSide(self) -> None:
        """
        A client's attached producer is its stream's producer too, and is
        stopped once when the connection closes.
        """
        producer = RecordingProducer(self.events)
        self.client.transport.attachProducer(producer)
        self.assertIs(self.pump.clientIO.producer, producer)
        self.pump.clientIO.producer.pauseProducing()
        self.assertEqual(self.events, ["paused"])
        self.server.transport.loseConnection()
        self.pump.flush()
        self.assertEqual(self.events, ["paused", "stopped"])
        self.assertIsNotNone(self.client.lostReason)

    def test_attachWhileClosing(self) -> None:
        """
        A producer attached once the connection is closing is stopped at
        once, and the closing is not held up.
        """
        self.server.transport.loseConnection()
        self.pump.flush()
        self.client.transport.loseConnection()
        self.server.transport.attachProducer(RecordingProducer(self.events))
        self.assertEqual(self.events, ["stopped"])
        self.assertIsNone(self.pump.serverIO.producer)


class CannedServer(Factory):
    """
    Builds plain protocols whose answers the tests write by hand.
    """

    def __init__(self) -> None:
        self.protocols: list[Protocol] = []

    def buildProtocol(self, addr: Any) -> Protocol:
        protocol = Protocol()
        protocol.factory = self
        self.protocols.append(protocol)
        return protocol


class RefusalTests(SynchronousTestCase):
    """
    A refused opening handshake fails the connection with
    L{ConnectionRejected} as soon as the response head has arrived, and the
    body is streamed to C{deliverBody} as it arrives, over in-memory
    connections to a server whose answers are written by hand.
    """

    def setUp(self) -> None:
        self.memory = MemoryReactorClock()
        self.serverEnd = CannedServer()
        self.memory.listenTCP(80, self.serverEnd)
        self.clientFactory = ClientFactory()
        endpoint = WebSocketClientEndpoint(MemoryEndpoints(self.memory), "http://127.0.0.1:80/ws", reactor=self.memory)
        self.connected = Deferred.fromCoroutine(endpoint.connect(self.clientFactory))
        self.pump = ConnectionCompleter(self.memory).succeedOnce()
        self.clientCalls: list[str] = []
        self.pump.clientIO.pauseProducing = lambda: self.clientCalls.append("pause")  # type: ignore[method-assign]
        self.pump.clientIO.resumeProducing = lambda: self.clientCalls.append("resume")  # type: ignore[method-assign]
        self.pump.flush()
        [self.server] = self.serverEnd.protocols

    def answer(self, data: bytes) -> None:
        """
        Write C{data} from the server, and deliver it.
        """
        self.server.transport.write(data)
        self.pump.flush()

    def rejected(self) -> Any:
        """
        @return: the response of the L{ConnectionRejected} the connection
            failed with.
        """
        return self.failureResultOf(self.connected, ConnectionRejected).value.response

    def read(self, response: Any) -> AccumulatingProtocol:
        """
        @return: the protocol C{response}'s body is delivered to.
        """
        reader = AccumulatingProtocol()
        response.deliverBody(reader)
        return reader

    def test_rejectedOnHead(self) -> None:
        """
        The connection fails as soon as the head arrives, with the status,
        phrase, headers and length; the body follows as it arrives, and the
        client closes the connection once it is complete: its protocol gets
        L{ConnectionDone}.
        """
        self.answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\nX-Why: origin\r\n\r\n")
        response = self.rejected()
        self.assertEqual((response.code, response.phrase, response.length), (403, b"Forbidden", 10))
        self.assertEqual(response.headers.getRawHeaders(b"x-why"), [b"origin"])
        reader = self.read(response)
        self.assertEqual(reader.data, b"")
        self.answer(b"01234")
        self.assertEqual(reader.data, b"01234")
        self.assertIsNone(reader.closedReason)
        self.answer(b"56789")
        self.assertEqual(reader.data, b"0123456789")
        self.assertIs(reader.closedReason.type, ConnectionDone)
        self.assertTrue(self.pump.clientIO.disconnecting)

    def test_chunked(self) -> None:
        """
        A chunked body is delivered without its chunks.
        """
        self.answer(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        response = self.rejected()
        self.assertEqual(response.length, UNKNOWN_LENGTH)
        reader = self.read(response)
        self.assertEqual(reader.data, b"hel")
        self.answer(b"lo\r\n6\r\n world\r\n0\r\n\r\n")
        self.assertEqual(reader.data, b"hello world")
        self.assertIs(reader.closedReason.type, ConnectionDone)

    def test_untilClose(self) -> None:
        """
        A body without a length lasts until the server closes.
        """
        self.answer(b"HTTP/1.0 500 Oops\r\n\r\nsomething ")
        reader = self.read(self.rejected())
        self.answer(b"broke")
        self.assertIsNone(reader.closedReason)
        self.server.transport.loseConnection()
        self.pump.flush()
        self.assertEqual(reader.data, b"something broke")
        self.assertIs(reader.closedReason.type, ConnectionDone)

    def test_pausedUntilRead(self) -> None:
        """
        The connection is not read while nobody reads the body: what came
        with the head is kept for C{deliverBody}, which resumes reading.
        """
        self.answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nno")
        response = self.rejected()
        self.assertEqual(self.clientCalls, ["pause"])
        reader = self.read(response)
        self.assertEqual(self.clientCalls, ["pause", "resume"])
        self.assertEqual(reader.data, b"no")
        self.answer(b"pe")
        self.assertEqual(reader.data, b"nope")

    def test_bodyBeforeDeliver(self) -> None:
        """
        A body that has all arrived before C{deliverBody} is delivered whole,
        with how it ended; a second C{deliverBody} raises.
        """
        self.answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
        response = self.rejected()
        reader = self.read(response)
        self.assertEqual(reader.data, b"nope")
        self.assertIs(reader.closedReason.type, ConnectionDone)
        self.assertRaises(RuntimeError, response.deliverBody, AccumulatingProtocol())

    def test_noBody(self) -> None:
        """
        A response without a body (a 1xx, as Twisted's tests send) ends at
        its head.
        """
        self.answer(b"HTTP/1.1 102 Processing\r\n\r\n")
        reader = self.read(self.rejected())
        self.assertEqual(reader.data, b"")
        self.assertIs(reader.closedReason.type, ConnectionDone)

    def test_cutShort(self) -> None:
        """
        A body cut short ends with L{HandshakeRejected}.
        """
        self.answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\nabc")
        reader = self.read(self.rejected())
        self.server.transport.loseConnection()
        self.pump.flush()
        self.assertEqual(reader.data, b"abc")
        reader.closedReason.trap(HandshakeRejected)
        self.assertEqual(reader.closedReason.value.reason, "response body cut short")

    def test_malformedChunk(self) -> None:
        """
        A malformed chunk ends the body with L{HandshakeRejected}, and the
        client drops the connection.
        """
        self.answer(b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n")
        reader = self.read(self.rejected())
        self.assertTrue(self.pump.clientIO.disconnecting)
        self.pump.flush()
        self.assertEqual(reader.data, b"ok")
        reader.closedReason.trap(HandshakeRejected)
        self.assertEqual(reader.closedReason.value.reason, "malformed response: bad chunk size b'zz'")

    def test_protocolTold(self) -> None:
        """
        The client's protocol, told that the negotiation started, is told of
        the refusal with C{connectionLost}.
        """
        self.answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        self.rejected()
        [peer] = self.clientFactory.peers
        self.assertEqual(peer.events, ["started", "lost"])
        self.assertEqual(peer.lostReason.value.code, 1006)
        self.assertEqual(peer.lostReason.value.reason, "refused with 403")

    def test_invalidSwitch(self) -> None:
        """
        A C{101} that breaks RFC 6455 (a wrong C{Sec-WebSocket-Accept}) is a
        refusal too, with an empty body.
        """
        self.answer(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: wrong\r\n\r\n"
        )
        response = self.rejected()
        self.assertEqual(response.code, 101)
        reader = self.read(response)
        self.assertEqual(reader.data, b"")
        self.assertIs(reader.closedReason.type, ConnectionDone)

    def test_notHTTP(self) -> None:
        """
        An answer that is not HTTP fails the connection with
        L{HandshakeRejected} without a status, from wsproto_tw's core (whose
        tests check its reasons).
        """
        self.answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        failure = self.failureResultOf(self.connected, HandshakeRejected)
        self.assertEqual(failure.value.status, 0)
        self.assertEqual(self.clientFactory.peers[0].events, ["started", "lost"])

    def test_closedBeforeHead(self) -> None:
        """
        A server that closes after part of a head fails the connection with
        L{HandshakeRejected}, from wsproto_tw's core.
        """
        self.answer(b"HTTP/1.1 403 Forb")
        self.assertNoResult(self.connected)
        self.server.transport.loseConnection()
        self.pump.flush()
        failure = self.failureResultOf(self.connected, HandshakeRejected)
        self.assertEqual(failure.value.status, 0)
