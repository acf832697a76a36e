# -*- test-case-name: tests.test_resource,tests.test_targets -*-
"""
WebSocket inside a C{twisted.web} site: L{WebSocketResource} upgrades the
requests that reach its place in an ordinary resource tree, so one port
serves pages and WebSockets.

    config = Config()
    root = static.File("public")
    root.putChild(b"ws", WebSocketResource(ChatApplication, config))
    endpoints.serverFromString(reactor, "tcp:8080").listen(WebSocketSite(root, config))

The opening handshake follows every rule, limit and option of the
standalone server (L{wsproto_tw.server.WebSocketServerFactory}): the
resource gives the request that C{twisted.web} already parsed to the same
sans-I/O core, which answers it. L{WebSocketSite} applies the limits that
come before that, while C{twisted.web} reads the request: the absolute
C{open_timeout} and the head size limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet.interfaces import IDelayedCall, IHalfCloseableProtocol, IProtocol, IReactorTime, ISSLTransport
from twisted.logger import Logger
from twisted.web import http
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from zope.interface import alsoProvides

from wsproto_tw.core.config import Config
from wsproto_tw.core.errors import HandshakeFailed
from wsproto_tw.core.handshake import (
    STATUS_PHRASES,
    HandshakeRequest,
    check_request_start,
    parse_target,
    validate_request,
)
from wsproto_tw.server import WebSocketServerFactory
from wsproto_tw.wire import addressName

__all__ = ["WebSocketResource", "WebSocketSite", "mountAt", "takeOverChannel"]


class WebSocketResource(Resource):
    """
    A leaf resource that accepts WebSocket connections at its place in the
    tree (and below it: C{request.path} tells the application where).

    Answers, for a request that does not ask for a WebSocket upgrade, go
    through C{twisted.web} and keep the HTTP connection open: a plain C{GET}
    gets C{426 Upgrade Required}, another method C{405}. Over the HTTP/2
    connections of a L{WebSocketSite} built with C{http2=True}, an extended
    CONNECT (RFC 8441) takes its stream over (L{wsproto_tw.http2}) and the
    core answers it, with C{200} or an error status; another request there
    gets C{405}. Over Twisted's own HTTP/2 (any other site), a request gets
    C{505}, and a client must connect over HTTP/1.1. An upgrade request takes
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
            return self._renderHTTP2(request)
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


    def _renderHTTP2(self, request: Any) -> bytes | int:
        """
        Take an extended CONNECT's stream over (RFC 8441), or answer why
        not.
        """
        from wsproto_tw.http2 import webSocketStream

        stream = webSocketStream(request)
        if stream is None:
            return _answer(
                request,
                505,
                "websocket over http/2 is not supported here; connect over http/1.1",
            )
        if request.method != b"CONNECT":
            return _answer(
                request,
                405,
                "a websocket over http/2 opens with an extended connect (rfc 8441)",
                (("Allow", "CONNECT"),),
            )
        handshake = replace(handshakeRequest(request), peer=request.getClientAddress())
        self._prepared = self.applicationFor(request)
        try:
            connection = self.webSocketFactory.buildConnection(handshake)
        finally:
            self._prepared = None
        # The core answers the request as over HTTP/1.1: 200, or the error
        # status of the rule it breaks.
        stream.takeOver(connection)
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


class WebSocketSite(Site):
    """
    A L{twisted.web.server.Site} that bounds what comes before a request
    reaches its resource, as the standalone server does for its handshake:

      - C{config.open_timeout} is an absolute deadline, from the moment the
        connection is made, for its first request to arrive whole (head and
        body), whether a WebSocket resource then takes the connection over
        or an ordinary resource answers it. A client that sends nothing or
        drips bytes gets C{408 Request Timeout} and is disconnected.
        Every later request on a kept-alive connection has the same time
        from its first byte to arrive whole; between requests, the site's
        own idle timeout (C{timeout}) governs the connection, as in any
        L{Site}.
      - A request head whose lines add up to more than
        C{config.max_head_size} bytes (0: C{twisted.web}'s own 16 KiB), or
        that has more than C{config.max_headers} header fields, gets
        C{431 Request Header Fields Too Large} and the connection closes.
        These limits apply to every request of the site.

      - The connection's first request is answered with C{400} as soon as
        its first bytes can't begin an HTTP/1.1 request (a TLS handshake
        on a plain-text port, a bare LF, a malformed request line), as
        the standalone server does, rather than when the deadline passes.
      - A request target in absolute-form (C{GET http://host/chat},
        which a server must accept, RFC 9112 §3.2.2) finds the resource
        of its path, C{/chat}, as the origin-form C{GET /chat} does.

    A connection that does not close within C{config.close_timeout} of
    such an answer is aborted. A plain L{Site} has none of this: only its
    idle timeout (one minute by default), started again by every byte
    received, bounds a connection that has not finished its request, so a
    client dripping bytes is kept forever; and it drops an over-long header
    line without an answer.

    Give it the L{Config} of the site's L{WebSocketResource}s.

    With C{http2=True}, over TLS it offers C{h2} and C{http/1.1} by ALPN
    and serves HTTP/2 with L{wsproto_tw.http2.HTTP2Channel}: pages as
    C{twisted.web} does, and WebSockets over HTTP/2 (RFC 8441) on the same
    connection; HTTP/1.1 clients upgrade as before. Without it, a request
    over HTTP/2 (Twisted's own) for a L{WebSocketResource} gets C{505}.

    @ivar config: the L{Config} whose C{open_timeout}, C{max_head_size},
        C{max_headers} and C{close_timeout} apply.
    @ivar http2: whether WebSocket over HTTP/2 is served.
    @ivar http2MaxStreams: the most streams an HTTP/2 connection has open
        at once (C{SETTINGS_MAX_CONCURRENT_STREAMS}).
    """

    def __init__(
        self,
        resource: Any,
        config: Config | None = None,
        reactor: IReactorTime | None = None,
        http2: bool = False,
        http2MaxStreams: int = 100,
        **kwargs: Any,
    ) -> None:
        """
        @param resource: the root resource.
        @param config: the defaults of L{Config} if L{None}.
        @param reactor: the L{IReactorTime} for the deadline and the site's
            own timeouts; the global reactor if L{None}.
        @param http2: serve WebSocket over HTTP/2 (RFC 8441), see above.
        @param http2MaxStreams: streams open at once per HTTP/2 connection.
        @param kwargs: passed to L{Site} (C{logPath}, C{timeout},
            C{requestFactory} ...).
        """
        if http2:
            _requireH2()
        super().__init__(resource, reactor=reactor, **kwargs)
        self.config = config if config is not None else Config()
        self.http2 = http2
        self.http2MaxStreams = http2MaxStreams

    def protocol(self) -> Any:  # type: ignore[override]
        """
        Build a connection's protocol: a channel that applies L{config},
        wrapped as L{Site} wraps its own so that it can switch to HTTP/2.
        """
        channel = _LimitedChannel(self.config, self.reactor)
        if self.http2:
            from wsproto_tw.http2 import http2Switch

            proxy = http2Switch(self.config, self.reactor, self.http2MaxStreams)
        else:
            proxy = _http2Switch()
        return channel if proxy is None else proxy(channel)

    def getResourceFor(self, request: Any) -> Any:
        """
        Find the resource for C{request}, by the path of its target in
        absolute-form too: C{twisted.web} would look up C{http:} and the
        host as path segments.
        """
        if not request.path.startswith(b"/"):
            try:
                path = parse_target(request.path.decode("latin-1"))[0]
            except HandshakeFailed:
                pass  # Not absolute-form: found, or not, as twisted.web does.
            else:
                request.path = path.encode("latin-1")
                request.postpath = [unquote_to_bytes(segment) for segment in request.path[1:].split(b"/")]
        return super().getResourceFor(request)

    def acceptableProtocols(self) -> list[bytes]:
        """
        The ALPN protocols offered over TLS: those of L{Site}, without
        C{h2} if this Twisted can't switch our channel to HTTP/2.
        """
        if self.http2:
            return [b"h2", b"http/1.1"]
        protocols = super().acceptableProtocols()
        if _http2Switch() is None:
            protocols = [name for name in protocols if name != b"h2"]
        return protocols


def _requireH2() -> None:
    """
    @raise ImportError: the C{h2} or C{priority} package, which WebSocket
        over HTTP/2 (and Twisted's HTTP/2 for pages) needs, is not
        installed.
    """
    try:
        import h2.settings  # noqa: F401
        import priority  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"websocket over http/2 needs the {(exc.name or 'h2').split('.')[0]} package: pip install 'wsproto_tw[http2]'"
        ) from None


def _http2Switch() -> Callable[[HTTPChannel], Any] | None:
    """
    The wrapper that serves a connection with Twisted's HTTP/2 channel
    instead of the L{HTTPChannel} it wraps when TLS negotiated C{h2} by
    ALPN, or L{None} if this Twisted has none.

    Twisted has no public way to do this with a channel of one's own: this
    is the one place that relies on the private class
    C{twisted.web.http._GenericHTTPChannelProtocol} (what
    L{Site.buildProtocol} returns; tested with Twisted 26.10). Without it,
    L{WebSocketSite} serves HTTP/1.1 only.
    """
    return getattr(http, "_GenericHTTPChannelProtocol", None)


class _LimitedChannel(HTTPChannel):
    """
    The HTTP/1.1 channel of L{WebSocketSite}: an L{HTTPChannel} with an
    absolute deadline for the first request and head limits answered with
    C{431}.
    """

    _log = Logger()

    def __init__(self, config: Config, clock: IReactorTime) -> None:
        super().__init__()
        self._config = config
        self._clock = clock
        self._openDeadline: IDelayedCall | None = None
        self._abortCall: IDelayedCall | None = None
        self._headBytes = 0
        self._headFields = 0
        # The first request's head so far, checked as it arrives.
        self._early: bytearray | None = bytearray()
        if config.max_head_size:
            # Raise or lower twisted.web's limits to ours: ours, checked
            # first, answer 431 where its own would answer 400 or nothing.
            self.MAX_LENGTH = config.max_head_size
            self.totalHeadersSize = config.max_head_size
        self.maxHeaders = config.max_headers

    def connectionMade(self) -> None:
        super().connectionMade()  # May call setTimeout(None): before ours.
        if self._config.open_timeout is not None:
            self._openDeadline = self._clock.callLater(self._config.open_timeout, self._openTimedOut)

    def dataReceived(self, data: bytes) -> None:
        if (
            data
            and self._openDeadline is None
            and self._early is None
            and not self.requests
            and self._config.open_timeout is not None
            and self.transport is not None
            and not self.transport.disconnecting
        ):
            # The first byte of a later request on a kept-alive connection
            # (Twisted holds back what arrives while a request is being
            # answered): it too must arrive whole in time. Twisted's idle
            # timeout, started again by every byte, can't bound it.
            self._openDeadline = self._clock.callLater(self._config.open_timeout, self._openTimedOut)
        early = self._early
        if early is not None:
            early += data
            try:
                check_request_start(early)
            except HandshakeFailed as exc:
                self._early = None
                self._refuse(exc.status, exc.reason)
                return
            if len(early) > self.totalHeadersSize:
                self._early = None  # The head limits answer this one.
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        # Counted as the core counts a head: each line with its CRLF.
        self._headBytes += len(line) + 2
        limit = self.totalHeadersSize
        if self._headBytes > limit:
            self._refuse(431, f"request head over {limit} bytes")
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._refuse(431, f"request head over {self.MAX_LENGTH} bytes")

    def headerReceived(self, line: bytes) -> bool:
        self._headFields += 1
        if self._headFields > self._config.max_headers:
            self._refuse(431, f"more than {self._config.max_headers} header fields")
            return False
        return bool(super().headerReceived(line))

    def allHeadersReceived(self) -> None:
        self._headBytes = self._headFields = 0
        self._early = None
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        # The whole request is here: from now on the resource that answers
        # it, or the WebSocket connection that takes the channel over, or
        # the site's idle timeout, decides how long the connection lasts.
        self._stopOpenDeadline()
        super().allContentReceived()

    def setTimeout(self, period: float | None) -> float | None:
        # Whatever stops timing this channel takes charge of how long the
        # connection lasts: takeOverChannel, Twisted's switch to its HTTP/2
        # channel, the handling of a whole request, the connection's loss.
        if period is None:
            self._stopOpenDeadline()
        return super().setTimeout(period)  # type: ignore[no-any-return]

    def _stopOpenDeadline(self) -> None:
        if self._openDeadline is not None:
            if self._openDeadline.active():
                self._openDeadline.cancel()
            self._openDeadline = None

    def _openTimedOut(self) -> None:
        self._openDeadline = None
        if getattr(self.transport, "negotiatedProtocol", None) == b"h2":
            return  # Twisted's HTTP/2 channel serves this connection.
        self._refuse(408, f"no complete request within {self._config.open_timeout:g} s")

    def _refuse(self, status: int, reason: str) -> None:
        """
        Answer C{status} with C{reason} as a one-line body (unless the
        connection is already closing, after a C{400} from C{twisted.web}
        say), close the connection, and abort it if it is still open after
        C{close_timeout}.
        """
        self._stopOpenDeadline()
        transport = self.transport
        if transport is None:
            return
        if not getattr(transport, "disconnecting", False):
            peer = transport.getPeer()
            self._log.info(
                "refused {peer}: {status} {reason}",
                peer=addressName(peer),
                status=status,
                reason=reason,
            )
            transport.write(_plainResponse(status, reason))
            self.loseConnection()
        if self._abortCall is None:
            self._abortCall = self._clock.callLater(self._config.close_timeout, transport.abortConnection)

    def connectionLost(self, reason: Any) -> None:
        self._stopOpenDeadline()
        if self._abortCall is not None:
            if self._abortCall.active():
                self._abortCall.cancel()
            self._abortCall = None
        super().connectionLost(reason)


def _plainResponse(status: int, reason: str) -> bytes:
    """
    A complete C{HTTP/1.1} response with C{status} and C{reason} as a
    one-line plain-text body, closing the connection.
    """
    phrase = STATUS_PHRASES.get(status, "Error")
    body = (reason + "\n").encode("utf-8")
    return (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii") + body


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
    # What the transport reports a half-close to: the channel, or the
    # wrapper Site puts around it. HTTPChannel is not half-closeable; the
    # WebSocket wire is (RFC 6455 section 7.1.1: answer a Close even after
    # the peer's FIN). Not under TLS: the TCP connection's end goes to the
    # TLS layer (its protocol, reached through the transport), which loses
    # the connection; taken for a half-close, it would be waited on until
    # close_timeout.
    if IHalfCloseableProtocol.providedBy(protocol) and not ISSLTransport.providedBy(transport):
        reported = getattr(transport, "protocol", channel)
        alsoProvides(reported, IHalfCloseableProtocol)
        reported.readConnectionLost = protocol.readConnectionLost
        reported.writeConnectionLost = protocol.writeConnectionLost
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
