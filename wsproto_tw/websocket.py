# -*- test-case-name: tests.test_websocket_compat -*-
"""
A drop-in for Twisted's own C{twisted.web.websocket}: the same public names,
with the same behaviour, running on wsproto_tw. An application written for
Twisted's module runs here once its import changes from
C{twisted.web.websocket} to C{wsproto_tw.websocket}, and gains wsproto_tw's
limits, timeouts, keepalive, subprotocols and compression: pass a
L{wsproto_tw.core.Config} as C{config} to L{WebSocketResource} or
L{WebSocketClientEndpoint.new}.

Servers put a L{WebSocketResource} in a C{twisted.web} resource tree;
clients call C{WebSocketClientEndpoint.new(reactor, url).connect(factory)}.
Both sides' application code conforms to L{WebSocketProtocol}.

Twisted's own tests of its module (C{twisted/web/test/test_websocket.py})
pass against this one with only their import changed
(C{tests.test_twisted_suite} runs them).

Where wsproto_tw behaves differently, it is on the side of the RFC:
C{loseConnection(code)} runs the closing handshake instead of dropping
TCP at once; a request that asks for a WebSocket but breaks a rule of
RFC 6455 gets the status of that rule (C{426} and
C{Sec-WebSocket-Version: 13} for another version, say) where Twisted
answers C{400}; C{connectionLost} receives a failure whose value is both a
L{twisted.internet.error.ConnectionDone} (a clean close with code 1000 or
1001) or L{twisted.internet.error.ConnectionLost} (anything else) and a
L{wsproto_tw.errors.ConnectionClosed} (with C{code}, C{reason},
C{wasClean}).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer, IReactorTCP, IStreamClientEndpoint
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.web.client import URI, BrowserLikePolicyForHTTPS
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory, IPolicyForHTTPS, IResponse
from zope.interface import implementer

from wsproto_tw.client import _hostChecked, connectWebSocket
from wsproto_tw.core.codes import CloseCode
from wsproto_tw.core.config import Config
from wsproto_tw.core.errors import HandshakeFailed
from wsproto_tw.core.handshake import HandshakeResponse, parse_response, split_tokens, split_url
from wsproto_tw.core.httpbody import ResponseBody, split_head
from wsproto_tw.errors import ConnectionClosed, HandshakeRejected, InvalidState
from wsproto_tw.interfaces import IWebSocketApplication
from wsproto_tw.resource import WebSocketResource as _WebSocketResource
from wsproto_tw.wrap import streamReason

__all__ = [
    "ConnectionRejected",
    "WebSocketClientEndpoint",
    "WebSocketClientFactory",
    "WebSocketProtocol",
    "WebSocketResource",
    "WebSocketServerFactory",
    "WebSocketTransport",
]


class WebSocketTransport(typing.Protocol):
    """
    What a L{WebSocketProtocol} sends messages through.
    """

    def sendTextMessage(self, text: str) -> None:
        """
        Send a text message.
        """

    def sendBytesMessage(self, data: bytes) -> None:
        """
        Send a binary message.
        """

    def loseConnection(self, code: int = 1000) -> None:
        """
        Close the connection with C{code}, through the closing handshake.
        """

    def ping(self, payload: bytes = b"") -> None:
        """
        Send a ping; the pong arrives at C{pongReceived}.
        """

    def attachProducer(self, producer: IPushProducer) -> None:
        """
        Attach a producer: it is paused while the connection's write buffer
        is full, resumed when it drains, stopped when the connection is lost.
        """

    def detachProducer(self) -> None:
        """
        Detach the producer given to L{attachProducer}.
        """


class WebSocketProtocol(typing.Protocol):
    """
    Receives the events of one WebSocket connection, on either side.
    """

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        """
        The opening handshake has begun; C{transport} sends once it is over.
        """

    def negotiationFinished(self) -> None:
        """
        The opening handshake succeeded: the connection is open.
        """

    def pongReceived(self, payload: bytes) -> None:
        """
        A pong arrived.
        """

    def textMessageReceived(self, message: str) -> None:
        """
        A whole text message arrived.
        """

    def bytesMessageReceived(self, data: bytes) -> None:
        """
        A whole binary message arrived.
        """

    def connectionLost(self, reason: Failure) -> None:
        """
        The connection is closed.
        """


_WSP = TypeVar("_WSP", covariant=True, bound=WebSocketProtocol)


class WebSocketServerFactory(typing.Protocol[_WSP]):
    """
    Builds the L{WebSocketProtocol} of each connection a
    L{WebSocketResource} accepts.
    """

    def buildProtocol(self, request: Any) -> _WSP:
        """
        @param request: the L{twisted.web.server.Request} asking to upgrade.
        @return: the connection's L{WebSocketProtocol}.
        """


class WebSocketClientFactory(typing.Protocol[_WSP]):
    """
    Builds the L{WebSocketProtocol} of each connection a
    L{WebSocketClientEndpoint} makes.
    """

    def buildProtocol(self, url: str) -> _WSP:
        """
        @param url: the URL being connected to.
        @return: the connection's L{WebSocketProtocol}.
        """


@dataclass
class ConnectionRejected(Exception):
    """
    The server answered the opening handshake with an HTTP response other
    than C{101}.

    @ivar response: that response, an L{IResponse}, given as soon as its
        head has arrived: its C{code}, C{phrase} and C{headers}, and its
        body streamed to the protocol given to C{deliverBody} as it
        arrives. That protocol's C{connectionLost} gets
        L{ConnectionDone <twisted.internet.error.ConnectionDone>} once the
        body is complete and the connection closed, as with Twisted's
        module (so L{twisted.web.client.readBody} fails with it), or another
        failure if the body was cut short or malformed.
    """

    response: Any


@implementer(IResponse)
class _RefusalResponse:
    """
    The HTTP response of a refused opening handshake. Its body is buffered
    until a protocol is given to L{deliverBody}, then streamed to it; the
    connection does not read while nobody reads the body.
    """

    version = (b"HTTP", 1, 1)
    request = None
    previousResponse = None

    def __init__(
        self, code: int, phrase: str, headers: Iterable[tuple[str, str]], length: int | None, transport: Any
    ) -> None:
        """
        @param length: the body's length, if the head gives it.
        @param transport: the connection the body arrives on, or L{None} if
            it has all arrived.
        """
        self.code = code
        self.phrase = phrase.encode("latin-1", "replace")
        self.headers = Headers()
        for name, value in headers:
            self.headers.addRawHeader(name, value)
        self.length = UNKNOWN_LENGTH if length is None else length
        self._transport = transport
        self._buffered: list[bytes] | None = []
        self._protocol: Any = None
        self._reason: Failure | None = None

    @classmethod
    def received(
        cls, code: int, phrase: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> _RefusalResponse:
        """
        @return: a response whose body has all arrived: C{body}, ended by
            the connection's close.
        """
        response = cls(code, phrase, headers, len(body), None)
        response.bodyReceived(body)
        response.bodyFinished(Failure(ConnectionDone()))
        return response

    def deliverBody(self, protocol: Any) -> None:
        """
        Deliver the body to C{protocol}: what arrived already at once, the
        rest as it arrives, then C{connectionLost}.

        @raise RuntimeError: the body was delivered already.
        """
        buffered, self._buffered = self._buffered, None
        if buffered is None:
            raise RuntimeError("the response body has been delivered already")
        self._protocol = protocol
        protocol.makeConnection(_BodyTransport(self._transport))
        for data in buffered:
            protocol.dataReceived(data)
        if self._reason is not None:
            self._finish()
        elif self._transport is not None:
            self._transport.resumeProducing()

    def setPreviousResponse(self, response: Any) -> None:
        self.previousResponse = response

    def bodyReceived(self, data: bytes) -> None:
        """
        The next bytes of the body arrived.
        """
        if not data:
            return
        if self._protocol is not None:
            self._protocol.dataReceived(data)
        elif self._buffered is not None:
            self._buffered.append(data)

    def bodyFinished(self, reason: Failure) -> None:
        """
        The body ended (C{reason} says how), or no more of it will come.
        """
        if self._reason is None:
            self._reason = reason
            if self._protocol is not None:
                self._finish()

    def _finish(self) -> None:
        protocol, self._protocol = self._protocol, None
        assert self._reason is not None
        protocol.connectionLost(self._reason)


@implementer(IPushProducer)
class _BodyTransport:
    """
    What a refusal's body protocol can do to the connection its body
    arrives on: pause and resume reading it, or stop it.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def pauseProducing(self) -> None:
        if self._transport is not None:
            self._transport.pauseProducing()

    def resumeProducing(self) -> None:
        if self._transport is not None:
            self._transport.resumeProducing()

    def stopProducing(self) -> None:
        if self._transport is not None:
            self._transport.stopProducing()

    def abortConnection(self) -> None:
        if self._transport is not None:
            self._transport.abortConnection()


class _RefusalWatch(ProtocolWrapper):
    """
    Stands between a client's connection and its wsproto_tw protocol until
    the head of the server's answer has arrived. A C{101}, or an answer that
    is not well-formed HTTP, goes to the protocol, which checks it and runs
    the connection; from then on the watch passes bytes through. Any other
    answer is a refusal: the protocol is told the connection is gone, and
    the response is handed on (L{_RefusalWatchingEndpoint.refusal}) as soon
    as its head is here, its body streamed as it arrives. Twisted's module
    does the same.
    """

    factory: _WatchingFactory

    def __init__(self, factory: _WatchingFactory, wrappedProtocol: Any) -> None:
        super().__init__(factory, wrappedProtocol)
        # What arrived before the head was whole; None once it was.
        self._held: bytearray | None = bytearray()
        self._body: ResponseBody | None = None
        self._refusal: _RefusalResponse | None = None
        self._closing = False

    def dataReceived(self, data: bytes) -> None:
        if self._held is None:
            if self._refusal is None:
                self.wrappedProtocol.dataReceived(data)
            else:
                self._bodyReceived(data)
            return
        self._held += data
        config = self.factory.config
        try:
            found = split_head(self._held, config.max_head_size)
            if found is None:
                return
            response: HandshakeResponse | None = parse_response(found[0], config.max_headers)
            assert response is not None
            body = None if response.status == HTTPStatus.SWITCHING_PROTOCOLS else ResponseBody(response)
        except (HandshakeFailed, HandshakeRejected):
            # Not HTTP, or a body of unknown length: the protocol's core
            # rejects it with its own reason.
            response = body = None
        held, self._held = bytes(self._held), None
        if response is None or body is None:
            self.wrappedProtocol.dataReceived(held)
            return
        assert found is not None
        self._refused(response, body, found[1])

    def _refused(self, response: HandshakeResponse, body: ResponseBody, rest: bytes) -> None:
        transport = self.transport
        self._body = body
        self._refusal = refusal = _RefusalResponse(
            response.status, response.reason, response.headers, body.length, transport
        )
        self.factory.endpoint.refusal = refusal
        # The protocol (its wire) registered itself as the connection's
        # producer; it hears no more of the connection.
        transport.unregisterProducer()
        # Read no more until someone reads the body (deliverBody resumes).
        transport.pauseProducing()
        self._bodyReceived(rest)
        self.wrappedProtocol.connectionLost(Failure(ConnectionDone("the server refused the upgrade")))

    def _bodyReceived(self, data: bytes) -> None:
        body, refusal = self._body, self._refusal
        assert body is not None and refusal is not None
        if self._closing:
            return
        refusal.bodyReceived(body.receive_data(data))
        if body.error is not None:
            self._closing = True
            self.transport.abortConnection()
        elif body.done:
            # As Twisted's module does: close once the body is complete.
            self._closing = True
            self.loseConnection()

    def connectionLost(self, reason: Failure) -> None:
        if self._refusal is None:
            if self._held:
                # Let the protocol's core judge what came before the close.
                held, self._held = bytes(self._held), None
                self.wrappedProtocol.dataReceived(held)
            super().connectionLost(reason)
            return
        self.factory.unregisterProtocol(self)
        body = self._body
        assert body is not None
        body.receive_eof()
        self._refusal.bodyFinished(reason if body.error is None else Failure(body.error))


class _WatchingFactory(WrappingFactory):
    """
    Builds a L{_RefusalWatch} around each protocol of the factory it wraps.

    @ivar endpoint: the L{_RefusalWatchingEndpoint} connecting.
    @ivar config: gives the limits of a response head.
    """

    protocol = _RefusalWatch
    noisy = False

    def __init__(self, wrappedFactory: Any, endpoint: _RefusalWatchingEndpoint, config: Config) -> None:
        super().__init__(wrappedFactory)
        self.endpoint = endpoint
        self.config = config


@implementer(IStreamClientEndpoint)
class _RefusalWatchingEndpoint:
    """
    Connects through another endpoint, watching for a refusal of the
    opening handshake.

    @ivar refusal: the L{_RefusalResponse} of a refusal, once its head has
        arrived.
    """

    def __init__(self, endpoint: IStreamClientEndpoint, config: Config) -> None:
        self._endpoint = endpoint
        self._config = config
        self.refusal: _RefusalResponse | None = None

    def connect(self, protocolFactory: Any) -> Any:
        return self._endpoint.connect(_WatchingFactory(protocolFactory, self, self._config))


class _Transport:
    """
    The L{WebSocketTransport} of one connection, over wsproto_tw's
    L{IWebSocketTransport <wsproto_tw.interfaces.IWebSocketTransport>}.
    """

    def __init__(self, adapter: _Adapter) -> None:
        self._adapter = adapter

    def _open(self) -> Any:
        transport = self._adapter.transport
        if transport is None:
            raise InvalidState("the websocket is not open yet")
        return transport

    def sendTextMessage(self, text: str) -> None:
        self._open().sendText(text)
        self._adapter.sent()

    def sendBytesMessage(self, data: bytes) -> None:
        self._open().sendBinary(bytes(data))
        self._adapter.sent()

    def ping(self, payload: bytes = b"") -> None:
        self._open().ping(payload)
        self._adapter.sent()

    def loseConnection(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        transport = self._adapter.transport
        if transport is None:
            # Still negotiating: close as soon as the connection opens.
            self._adapter.closeOnOpen = (code, reason)
        else:
            transport.close(code, reason)

    def attachProducer(self, producer: IPushProducer) -> None:
        """
        Make C{producer} the producer of the connection's stream transport,
        as Twisted's module does: the transport pauses it while its write
        buffer is full, resumes it when the buffer drains, and stops it
        when the connection is lost. Attached to a closing connection, it
        is stopped at once.

        @raise RuntimeError: a producer is attached already.
        """
        self._adapter.attach(self._open(), producer)

    def detachProducer(self) -> None:
        """
        Detach the producer given to L{attachProducer}.
        """
        self._adapter.detach()


def _stream(connection: Any) -> Any:
    """
    @param connection: wsproto_tw's transport of one connection, a
        L{WebSocketConnection <wsproto_tw.connection.WebSocketConnection>}.
    @return: the stream transport (TCP, TLS) under it; the connection's
        wire (a L{StreamWire <wsproto_tw.wire.StreamWire>}) is that
        transport's producer.
    """
    return connection.transport


@implementer(IWebSocketApplication)
class _Adapter:
    """
    The wsproto_tw application that drives one L{WebSocketProtocol}.

    @ivar transport: wsproto_tw's transport, once the connection is open.
    @ivar producer: the producer attached with C{attachProducer}, if any.
    """

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport: Any = None
        self.producer: Any = None
        self.closeOnOpen: tuple[int, str] | None = None
        self.webSocketTransport = _Transport(self)
        self._started = False
        self._lost = False
        # A producer was detached: the connection's wire becomes the
        # stream's producer again at the next send.
        self._reclaim = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.protocol.negotiationStarted(self.webSocketTransport)

    def attach(self, transport: Any, producer: IPushProducer) -> None:
        """
        Put C{producer} in the place of C{transport} as its stream's
        producer.
        """
        if self.producer is not None:
            raise RuntimeError(f"a producer is attached already: {self.producer!r}")
        stream = _stream(transport)
        if getattr(stream, "disconnecting", False):
            # The connection is closing: as a socket transport does for a
            # producer registered once it has closed.
            producer.stopProducing()
            return
        full = False
        if not self._reclaim:
            # The connection's wire stops being the stream's producer: the
            # connection must not stay paused for a buffer it will hear no
            # more of.
            stream.unregisterProducer()
            drained = transport.whenDrained()
            full = not drained.called
            drained.addErrback(lambda failure: None)
            if full:
                transport.writesResumed()
        self._reclaim = False
        stream.registerProducer(producer, True)
        self.producer = producer
        if full:
            producer.pauseProducing()

    def detach(self) -> None:
        """
        Take the attached producer off the stream.
        """
        if self.producer is None:
            return
        self.producer = None
        if self.transport is not None:
            _stream(self.transport).unregisterProducer()
            self._reclaim = True

    def sent(self) -> None:
        """
        The application sent something: after a producer was detached, the
        connection's wire is the stream's producer again, for the
        connection's write-buffer limits and its pausing of reads while the
        peer does not read.
        """
        if self._reclaim and not self._lost:
            self._reclaim = False
            _stream(self.transport).registerProducer(self.transport.wire, True)

    def requestReceived(self, request: Any) -> None:
        self.start()
        return None

    def connectionOpened(self, transport: Any) -> None:
        self.transport = transport
        self.protocol.negotiationFinished()
        if self.closeOnOpen is not None:
            transport.close(*self.closeOnOpen)

    def textMessageReceived(self, text: str) -> None:
        self.protocol.textMessageReceived(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.protocol.bytesMessageReceived(data)

    def pingReceived(self, payload: bytes) -> None:
        pass  # the core has answered it

    def pongReceived(self, payload: bytes) -> None:
        self.protocol.pongReceived(payload)

    def connectionLost(self, reason: Failure) -> None:
        if self._lost:
            return
        self._lost = True
        producer, self.producer = self.producer, None
        if producer is not None and self._producerStillRuns(producer):
            producer.stopProducing()
        self.protocol.connectionLost(streamReason(reason))

    def _producerStillRuns(self, producer: Any) -> bool:
        """
        Whether the attached C{producer} still has to be told
        C{stopProducing} now that the connection is lost.

        A socket transport tells its producer as the connection goes
        (C{FileDescriptor.connectionLost}) and lets go of it. wsproto_tw's
        transport takes the producer off the stream before it closes the
        stream itself, after a closing handshake or a failure, and then
        nobody has told it. Some transports (the test transports of
        C{twisted.internet.testing} and C{twisted.test.iosim}) never tell
        it, and keep holding it.
        """
        stream = _stream(self.transport)
        return getattr(stream, "producer", None) is producer or bool(getattr(stream, "disconnecting", False))


class WebSocketResource(_WebSocketResource):
    """
    A resource that accepts WebSocket connections at its place in a
    C{twisted.web} resource tree, each driving a L{WebSocketProtocol}.

    As with Twisted's module, a C{GET} (or C{HEAD}) that does not ask for a
    WebSocket gets C{400} with the body C{websocket protocol negotiation
    error}; a request that does ask for one is answered by wsproto_tw's
    core, by RFC 6455's rules.

    @ivar factory: the L{WebSocketServerFactory} given.
    """

    def __init__(
        self,
        factory: WebSocketServerFactory[WebSocketProtocol],
        config: Config | None = None,
        reactor: Any = None,
    ) -> None:
        """
        @param factory: its C{buildProtocol(request)} builds each
            connection's L{WebSocketProtocol}.
        @param config: wsproto_tw's limits, timeouts, keepalive,
            subprotocols, allowed origins and compression.
        @param reactor: the L{IReactorTime} for timeouts; the global reactor
            by default.
        """
        self.factory = factory
        super().__init__(self._noApplication, config, reactor)

    @staticmethod
    def _noApplication() -> None:
        raise TypeError("applications are built per request, by applicationFor")

    def applicationFor(self, request: Any) -> _Adapter:
        return _Adapter(self.factory.buildProtocol(request))

    def render(self, request: Any) -> bytes | int:
        """
        Upgrade C{request}, or answer why it can't be upgraded.
        """
        if request.method in (b"GET", b"HEAD") and not request.clientproto.startswith(b"HTTP/2"):
            upgrade = b",".join(request.requestHeaders.getRawHeaders(b"upgrade", []))
            if "websocket" not in [token.lower() for token in split_tokens(upgrade.decode("latin-1"))]:
                request.setResponseCode(HTTPStatus.BAD_REQUEST)
                request.setHeader(b"content-type", b"text/plain")
                return b"websocket protocol negotiation error"
        return super().render(request)


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    """
    Connects over TCP for C{ws}/C{http} URLs and TLS for C{wss}/C{https}.
    Where the TLS policy gives Twisted's verifying settings, the host name
    is checked as L{wsproto_tw.client.connect} checks it: a certificate
    without C{subjectAltName} fails the connection (Twisted's own check
    only logs it), and one that fails verification says why.
    """

    def __init__(
        self, reactor: Any, tlsPolicy: IPolicyForHTTPS, connectTimeout: float | None, bindAddress: Any
    ) -> None:
        self._reactor = reactor
        self._tlsPolicy = tlsPolicy
        self._connectTimeout = connectTimeout
        self._bindAddress = bindAddress

    def endpointForURI(self, uri: URI) -> Any:
        kwargs: dict[str, Any] = {}
        if self._connectTimeout is not None:
            kwargs["timeout"] = self._connectTimeout
        if self._bindAddress is not None:
            kwargs["bindAddress"] = self._bindAddress
        host = uri.host.decode("ascii")
        endpoint = HostnameEndpoint(self._reactor, host, uri.port, **kwargs)
        if uri.scheme in (b"http", b"ws"):
            return endpoint
        if uri.scheme in (b"https", b"wss"):
            return wrapClientTLS(_hostChecked(self._tlsPolicy.creatorForNetloc(uri.host, uri.port)), endpoint)
        raise SchemeNotSupported(f"unsupported scheme: {uri.scheme!r}")


def _urls(url: str) -> tuple[str, URI]:
    """
    @return: C{url} as a C{ws://} or C{wss://} URL, and as the C{http} or
        C{https} L{URI} an L{IAgentEndpointFactory} expects.
    @raise ValueError: C{url} is not an http, https, ws or wss URL.
    """
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
    wsUrl = urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))
    secure, host, port, _hostHeader, target = split_url(wsUrl)
    httpScheme = b"https" if secure else b"http"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    uri = URI(
        httpScheme,
        netloc.encode("idna"),
        host.encode("idna"),
        port,
        target.partition("?")[0].encode("utf-8"),
        b"",
        target.partition("?")[2].encode("utf-8"),
        b"",
    )
    return wsUrl, uri


@dataclass(frozen=True)
class WebSocketClientEndpoint:
    """
    A URL to connect to and a way to reach it.

    @ivar endpointFactory: makes the stream endpoint for the URL.
    @ivar url: the C{ws://}, C{wss://}, C{http://} or C{https://} URL.
    @ivar config: wsproto_tw's limits, timeouts, keepalive, offered
        subprotocols and compression; the defaults if L{None}.
    @ivar reactor: the L{IReactorTime} for timeouts; the global reactor if
        L{None}.
    """

    endpointFactory: IAgentEndpointFactory
    url: str
    config: Config | None = None
    reactor: Any = field(default=None, compare=False)

    @classmethod
    def new(
        cls,
        reactor: IReactorTCP,
        url: str,
        tlsPolicy: IPolicyForHTTPS | None = None,
        connectTimeout: int | None = None,
        bindAddress: bytes | None = None,
        *,
        config: Config | None = None,
    ) -> WebSocketClientEndpoint:
        """
        @param reactor: the reactor to connect (and time out) with.
        @param url: where the server is.
        @param tlsPolicy: the TLS policy for C{wss://} and C{https://}; a
            L{BrowserLikePolicyForHTTPS} (the platform's trust roots, host
            name checked) by default.
        @param connectTimeout: seconds for each TCP connection attempt.
        @param bindAddress: the local address to connect from.
        @param config: as L{WebSocketClientEndpoint.config}.
        """
        if tlsPolicy is None:
            tlsPolicy = BrowserLikePolicyForHTTPS()
        factory = _EndpointFactory(reactor, tlsPolicy, connectTimeout, bindAddress)
        return cls(factory, url, config, reactor)

    async def connect(self, protocolFactory: WebSocketClientFactory[_WSP]) -> _WSP:
        """
        Connect, and complete the opening handshake.

        @param protocolFactory: its C{buildProtocol(url)} builds the
            connection's L{WebSocketProtocol} once the stream is connected.
        @return: a coroutine that returns that protocol once the connection
            is open.
        @raise ConnectionRejected: the server refused the upgrade.
        """
        wsUrl, uri = _urls(self.url)
        config = self.config if self.config is not None else Config()
        endpoint = _RefusalWatchingEndpoint(self.endpointFactory.endpointForURI(uri), config)
        built: list[_Adapter] = []

        def applicationFactory() -> _Adapter:
            adapter = _Adapter(protocolFactory.buildProtocol(self.url))
            built.append(adapter)
            adapter.start()
            return adapter

        try:
            await connectWebSocket(endpoint, wsUrl, applicationFactory, config=config, reactor=self.reactor)
        except Exception as exc:
            refusal = endpoint.refusal
            if refusal is None and isinstance(exc, HandshakeRejected) and exc.status:
                # A 101 that breaks the rules, or a refusal whose body's
                # length is unknown: the core kept the first bytes of it.
                refusal = _RefusalResponse.received(exc.status, exc.reason, exc.headers, exc.body)
            if built:
                # The protocol was told the negotiation started: tell it how
                # it ended.
                why = f"refused with {refusal.code}" if refusal is not None else str(exc)
                built[-1].connectionLost(Failure(ConnectionClosed(CloseCode.ABNORMAL_CLOSURE, why)))
            if refusal is not None:
                raise ConnectionRejected(refusal) from None
            raise
        return built[-1].protocol
