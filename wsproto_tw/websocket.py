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

Where wsproto_tw behaves differently, it is on the side of the RFC:
C{loseConnection(code)} runs the closing handshake instead of dropping
TCP at once; a plain C{GET} gets C{426 Upgrade Required} instead of C{400};
C{connectionLost} receives a failure whose value is both a
L{twisted.internet.error.ConnectionDone} (a clean close with code 1000 or
1001) or L{twisted.internet.error.ConnectionLost} (anything else) and a
L{wsproto_tw.errors.ConnectionClosed} (with C{code}, C{reason},
C{wasClean}).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IPushProducer, IReactorTCP
from twisted.python.failure import Failure
from twisted.web.client import URI, BrowserLikePolicyForHTTPS, ResponseDone
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgentEndpointFactory, IPolicyForHTTPS, IResponse
from zope.interface import implementer

from wsproto_tw.client import connectWebSocket
from wsproto_tw.core.config import Config
from wsproto_tw.core.handshake import split_url
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

    @ivar response: that response, an L{IResponse}: its C{code}, C{phrase},
        C{headers}, and its body through C{deliverBody} (or
        L{twisted.web.client.readBody}); at most the first 4 KiB of it.
    """

    response: Any


@implementer(IResponse)
class _RejectionResponse:
    """
    The HTTP response of a refused opening handshake, with the body already
    read.
    """

    version = (b"HTTP", 1, 1)
    request = None
    previousResponse = None

    def __init__(self, code: int, phrase: str, headers: list, body: bytes) -> None:
        self.code = code
        self.phrase = phrase.encode("latin-1", "replace")
        self.headers = Headers()
        for name, value in headers:
            self.headers.addRawHeader(name, value)
        self.length = len(body) if body else UNKNOWN_LENGTH
        self._body = body

    def deliverBody(self, protocol: Any) -> None:
        protocol.makeConnection(_DoneTransport())
        if self._body:
            protocol.dataReceived(self._body)
        protocol.connectionLost(Failure(ResponseDone()))

    def setPreviousResponse(self, response: Any) -> None:
        self.previousResponse = response


class _DoneTransport:
    """
    The transport of a response body that has been read already.
    """

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass

    def abortConnection(self) -> None:
        pass


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

    def sendBytesMessage(self, data: bytes) -> None:
        self._open().sendBinary(bytes(data))

    def ping(self, payload: bytes = b"") -> None:
        self._open().ping(payload)

    def loseConnection(self, code: int = 1000, reason: str = "") -> None:
        transport = self._adapter.transport
        if transport is None:
            # Still negotiating: close as soon as the connection opens.
            self._adapter.closeOnOpen = (code, reason)
        else:
            transport.close(code, reason)

    def attachProducer(self, producer: IPushProducer) -> None:
        self._open().registerProducer(producer, True)
        self._adapter.producer = producer

    def detachProducer(self) -> None:
        self._adapter.producer = None
        if self._adapter.transport is not None:
            self._adapter.transport.unregisterProducer()


@implementer(IWebSocketApplication)
class _Adapter:
    """
    The wsproto_tw application that drives one L{WebSocketProtocol}.

    @ivar transport: wsproto_tw's transport, once the connection is open.
    """

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport: Any = None
        self.producer: Any = None
        self.closeOnOpen: tuple[int, str] | None = None
        self.webSocketTransport = _Transport(self)
        self._started = False
        self._lost = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.protocol.negotiationStarted(self.webSocketTransport)

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
        # The connection has told an attached producer to stop, as a TCP
        # transport does.
        self.producer = None
        self.protocol.connectionLost(streamReason(reason))


class WebSocketResource(_WebSocketResource):
    """
    A resource that accepts WebSocket connections at its place in a
    C{twisted.web} resource tree, each driving a L{WebSocketProtocol}.

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


@implementer(IAgentEndpointFactory)
class _EndpointFactory:
    """
    Connects over TCP for C{ws}/C{http} URLs and TLS for C{wss}/C{https}.
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
            return wrapClientTLS(self._tlsPolicy.creatorForNetloc(uri.host, uri.port), endpoint)
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
        endpoint = self.endpointFactory.endpointForURI(uri)
        built: list[_Adapter] = []

        def applicationFactory() -> _Adapter:
            adapter = _Adapter(protocolFactory.buildProtocol(self.url))
            built.append(adapter)
            adapter.start()
            return adapter

        try:
            await connectWebSocket(
                endpoint, wsUrl, applicationFactory, config=self.config, reactor=self.reactor
            )
        except Exception as exc:
            if built:
                # The protocol was told the negotiation started: tell it how
                # it ended.
                built[-1].connectionLost(Failure(ConnectionClosed(1006, str(exc))))
            if isinstance(exc, HandshakeRejected) and exc.status:
                raise ConnectionRejected(
                    _RejectionResponse(exc.status, exc.reason, exc.headers, exc.body)
                ) from None
            raise
        return built[-1].protocol
