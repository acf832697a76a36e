# -*- test-case-name: tests.test_resource -*-
"""
WebSocket inside a C{twisted.web} site: L{WebSocketResource} upgrades the
requests that reach its place in an ordinary resource tree, so one port
serves pages and WebSockets.

    root = static.File("public")
    root.putChild(b"ws", WebSocketResource(ChatApplication))
    endpoints.serverFromString(reactor, "tcp:8080").listen(server.Site(root))

The opening handshake follows every rule, limit and option of the
standalone server (L{wsproto_tw.server.WebSocketServerFactory}): the
resource gives the request that C{twisted.web} already parsed to the same
sans-I/O core, which answers it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IProtocol, IReactorTime
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from wsproto_tw.core.config import Config
from wsproto_tw.core.errors import HandshakeFailed
from wsproto_tw.core.handshake import STATUS_PHRASES, HandshakeRequest, validate_request
from wsproto_tw.server import WebSocketServerFactory

__all__ = ["WebSocketResource", "mountAt", "takeOverChannel"]


class WebSocketResource(Resource):
    """
    A leaf resource that accepts WebSocket connections at its place in the
    tree (and below it: C{request.path} tells the application where).

    Answers, for a request that does not ask for a WebSocket upgrade, go
    through C{twisted.web} and keep the HTTP connection open: a plain C{GET}
    gets C{426 Upgrade Required}, another method C{405}. A request over
    HTTP/2 gets C{505}: WebSocket over HTTP/2 (RFC 8441) is not supported,
    and a client must connect over HTTP/1.1 for it. An upgrade request takes
    over the HTTP/1.1 connection; from then on the core answers it, with
    C{101} or an error status, as the standalone server does.

    @ivar applicationFactory: called with no arguments to build each
        connection's L{IWebSocketApplication
        <wsproto_tw.interfaces.IWebSocketApplication>}.
    @ivar webSocketFactory: the L{WebSocketServerFactory} that builds the
        connections: its C{config}, its open C{connections} and its
        C{shutdown()} serve this resource as they serve a listening port.
    """

    isLeaf = True

    def __init__(
        self,
        applicationFactory: Callable[[], Any],
        config: Config | None = None,
        reactor: IReactorTime | None = None,
    ) -> None:
        """
        @param applicationFactory: builds each connection's application.
        @param config: limits, timeouts, subprotocols, allowed origins and
            compression; the defaults of L{Config} if L{None}.
        @param reactor: the L{IReactorTime} for timeouts; the global reactor
            if L{None}.
        """
        super().__init__()
        self.applicationFactory = applicationFactory
        self._prepared: Any = None
        self.webSocketFactory = WebSocketServerFactory(self._takePrepared, config, reactor)

    @property
    def config(self) -> Config:
        """
        The L{Config} of every connection this resource accepts.
        """
        return self.webSocketFactory.config

    def applicationFor(self, request: Any) -> Any:
        """
        Build the application of the connection C{request} opens. Override
        it to use what C{twisted.web} knows of the request (its session, its
        C{getUser()}); the default calls L{applicationFactory}.

        @param request: the L{twisted.web.server.Request}.
        @return: an L{IWebSocketApplication
            <wsproto_tw.interfaces.IWebSocketApplication>}.
        """
        return self.applicationFactory()

    def _takePrepared(self) -> Any:
        application, self._prepared = self._prepared, None
        return application

    def render(self, request: Any) -> bytes | int:
        """
        Upgrade C{request}, or answer why it can't be upgraded.
        """
        if request.clientproto.startswith(b"HTTP/2"):
            return _answer(
                request,
                505,
                "websocket over http/2 is not supported here; connect over http/1.1",
            )
        handshake = handshakeRequest(request)
        if "websocket" not in [token.lower() for token in handshake.tokens("upgrade")]:
            try:
                validate_request(handshake, self.config.allowed_origins)
            except HandshakeFailed as exc:
                return _answer(request, exc.status, exc.reason, exc.headers)
        channel = request.channel
        if not isinstance(channel, HTTPChannel):
            return _answer(request, 500, "this http channel can't switch to websocket")
        transport = channel.transport
        if transport is None:
            return NOT_DONE_YET  # the client went away
        self._prepared = self.applicationFor(request)
        try:
            protocol = self.webSocketFactory.buildProtocol(transport.getPeer())
        finally:
            self._prepared = None
        unread = takeOverChannel(channel, protocol)
        # The core answers the request as the standalone server would: with
        # 101, or with the error status of the rule it breaks.
        protocol.dataReceived(requestHead(request) + unread)
        return NOT_DONE_YET


def mountAt(path: str, resource: Resource, fallback: Resource) -> Resource:
    """
    A root resource that serves C{resource} at C{path} and below it, and
    C{fallback} (a L{twisted.web.static.File}, say) everywhere else, so that
    C{path} may have several segments without intermediate resources.

    @param path: an absolute URL path such as C{"/ws"} or C{"/api/live"}.
    @raise ValueError: C{path} is not absolute, or is C{"/"}.
    """
    if not path.startswith("/") or not path.strip("/"):
        raise ValueError(f"path must be absolute and not /: {path!r}")
    return _Mount(path.strip("/").encode("utf-8").split(b"/"), resource, fallback)


class _Mount(Resource):
    def __init__(self, segments: list[bytes], resource: Resource, fallback: Resource) -> None:
        super().__init__()
        self._segments = segments
        self._resource = resource
        self._fallback = fallback

    def getChildWithDefault(self, name: bytes, request: Any) -> Resource:
        rest = len(self._segments) - 1
        if [name, *request.postpath[:rest]] == self._segments:
            request.prepath.extend(request.postpath[:rest])
            del request.postpath[:rest]
            return self._resource
        if self._fallback.isLeaf:
            # As if the fallback were the root: it gets the whole path.
            request.prepath.pop()
            request.postpath.insert(0, name)
            return self._fallback
        return self._fallback.getChildWithDefault(name, request)

    def render(self, request: Any) -> bytes | int:
        return self._fallback.render(request)


def takeOverChannel(channel: HTTPChannel, protocol: IProtocol) -> bytes:
    """
    Hand the connection that C{channel} serves to C{protocol}: it receives
    every byte that arrives from now on, and the connection's loss.

    Twisted has no public API for switching an HTTP/1.1 connection to
    another protocol, so this is the one place that relies on how
    L{HTTPChannel} is built (tested with Twisted 24.11 and 26.10):
      - it receives bytes through C{dataReceived} and, once it has parsed a
        request head, C{rawDataReceived}, both looked up on the instance;
      - bytes read past the request while it is being handled wait in
        C{_dataBuffer};
      - it registers itself as its transport's producer.

    @param channel: the channel of the request being rendered.
    @param protocol: the protocol to connect to the channel's transport.
    @return: the bytes the channel read past the request head and had not
        parsed; the caller feeds them to C{protocol} (after the head).
    """
    transport = channel.transport
    channel.setTimeout(None)
    transport.unregisterProducer()
    channel.dataReceived = protocol.dataReceived  # type: ignore[method-assign]
    # LineReceiver passes what follows the head in the same read here.
    channel.rawDataReceived = protocol.dataReceived  # type: ignore[method-assign]
    channel.connectionLost = protocol.connectionLost  # type: ignore[method-assign]
    buffered = getattr(channel, "_dataBuffer", None) or []
    unread = b"".join(buffered)
    del buffered[:]
    protocol.makeConnection(transport)
    return unread


def requestHead(request: Any) -> bytes:
    """
    The HTTP/1.1 request head that C{twisted.web} parsed, as bytes.

    @param request: a L{twisted.web.server.Request}.
    """
    lines = [b" ".join((request.method, request.uri, request.clientproto))]
    for name, values in request.requestHeaders.getAllRawHeaders():
        lines.extend(name + b": " + value for value in values)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def handshakeRequest(request: Any) -> HandshakeRequest:
    """
    @param request: a L{twisted.web.server.Request}.
    @return: the L{HandshakeRequest} the core would parse from C{request}'s
        head.
    """
    version = request.clientproto.partition(b"/")[2]
    major, _, minor = version.partition(b".")
    try:
        httpVersion = (int(major), int(minor or b"0"))
    except ValueError:
        httpVersion = (0, 0)
    return HandshakeRequest(
        method=request.method.decode("latin-1"),
        target=request.uri.decode("latin-1"),
        http_version=httpVersion,
        headers=tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, values in request.requestHeaders.getAllRawHeaders()
            for value in values
        ),
    )


def _answer(request: Any, status: int, reason: str, headers: tuple = ()) -> bytes:
    """
    Answer C{request} through C{twisted.web} with C{status} and C{reason}
    as a one-line plain-text body.
    """
    phrase = STATUS_PHRASES.get(status, "HTTP Version Not Supported" if status == 505 else "Error")
    request.setResponseCode(status, phrase.encode("ascii"))
    for name, value in headers:
        request.setHeader(name, value)
    request.setHeader("Content-Type", "text/plain; charset=utf-8")
    return (reason + "\n").encode("utf-8")
