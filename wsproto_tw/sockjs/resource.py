# -*- test-case-name: tests.sockjs.test_resource -*-
"""
SockJS inside a C{twisted.web} site: L{SockJSResource} serves the SockJS
0.3 protocol at its place in the tree (the I{prefix}), for clients such
as C{sockjs-client} that fall back to HTTP streaming and polling when a
proxy blocks the WebSocket upgrade. Each session runs an ordinary
application (L{IWebSocketApplication
<wsproto_tw.interfaces.IWebSocketApplication>}) over a L{SockJSSession
<wsproto_tw.sockjs.transport.SockJSSession>}.

    root.putChild(b"echo", SockJSResource(EchoApplication))

URLs below the prefix:

  - C{/} the greeting; C{/info} (C{GET}, C{OPTIONS}) what the server
    offers; C{/iframe.html} and C{/iframe-VERSION.html} the page of
    iframe-based transports;
  - C{/SERVER/SESSION/TRANSPORT}: receiving transports C{xhr},
    C{xhr_streaming}, C{eventsource}, C{htmlfile} and C{jsonp}; sending
    ones C{xhr_send} and C{jsonp_send}; and C{websocket} (SockJS framing
    over a WebSocket). SERVER and SESSION are not empty and have no dot;
    SERVER is for load balancers and is ignored;
  - C{/websocket}: a plain WebSocket, no SockJS framing.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from wsproto_tw.application import WebSocketApplication
from wsproto_tw.core.config import Config
from wsproto_tw.errors import Reject
from wsproto_tw.resource import WebSocketResource, handshakeRequest
from wsproto_tw.sockjs.config import SockJSConfig
from wsproto_tw.sockjs.frames import (
    Framing,
    SockJSRequestError,
    encode_json,
    eventsource_framing,
    htmlfile_framing,
    jsonp_framing,
    valid_callback,
    valid_session_part,
    websocket_framing,
    xhr_framing,
    xhr_streaming_framing,
)
from wsproto_tw.sockjs.transport import ResponseSink, _SinkProducer, SockJSSession

__all__ = ["SockJSResource"]

_log = Logger(namespace="wsproto_tw.sockjs")

_GREETING = b"Welcome to SockJS!\n"
_YEAR = 365 * 24 * 3600
_NO_CACHE = b"no-store, no-cache, must-revalidate, max-age=0"
_IFRAME = re.compile(rb"iframe[0-9a-z_.\-]*\.html")

_IFRAME_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script>
    document.domain = document.domain;
    _sockjs_onload = function(){SockJS.bootstrap_iframe();};
  </script>
  <script src="%s"></script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"""

# transport name: (allowed methods, receiving?, CORS?)
_TRANSPORTS: dict[bytes, tuple[tuple[bytes, ...], bool, bool]] = {
    b"xhr": ((b"POST",), True, True),
    b"xhr_streaming": ((b"POST",), True, True),
    b"xhr_send": ((b"POST",), False, True),
    b"eventsource": ((b"GET",), True, False),
    b"htmlfile": ((b"GET",), True, False),
    b"jsonp": ((b"GET",), True, False),
    b"jsonp_send": ((b"POST",), False, False),
    b"websocket": ((b"GET",), False, False),
}

_CONTENT_TYPES = {
    "xhr": b"application/javascript; charset=UTF-8",
    "xhr_streaming": b"application/javascript; charset=UTF-8",
    "eventsource": b"text/event-stream; charset=UTF-8",
    "htmlfile": b"text/html; charset=UTF-8",
    "jsonp": b"application/javascript; charset=UTF-8",
}


class SockJSResource(Resource):
    """
    A leaf resource serving SockJS at its place in the tree.

    @ivar applicationFactory: called with no arguments to build each
        session's application.
    @ivar config: the L{SockJSConfig}.
    @ivar sessions: the HTTP sessions kept, by session id (WebSocket
        sessions are not kept: each lives as long as its connection).
    @ivar webSocketResource: the L{WebSocketResource} of the raw
        C{/websocket} URL; its C{webSocketFactory} holds its connections.
    """

    isLeaf = True

    def __init__(
        self,
        applicationFactory: Callable[[], Any],
        config: SockJSConfig | None = None,
        webSocketConfig: Config | None = None,
        reactor: IReactorTime | None = None,
    ) -> None:
        """
        @param applicationFactory: builds each session's application.
        @param config: the SockJS options; the defaults of L{SockJSConfig}
            if L{None}.
        @param webSocketConfig: the L{Config} of the WebSocket transports,
            and the flow-control limits of every session.
        @param reactor: the L{IReactorTime} of the deadlines; the global
            reactor if L{None}.
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor  # type: ignore[assignment]
        self.applicationFactory = applicationFactory
        self.config = config if config is not None else SockJSConfig()
        self.webSocketConfig = webSocketConfig if webSocketConfig is not None else Config()
        self.sessions: dict[bytes, SockJSSession] = {}
        self._clock = reactor
        self.webSocketResource = WebSocketResource(applicationFactory, self.webSocketConfig, reactor)
        self._bridged = WebSocketResource(lambda: _WebSocketBridge(self), self.webSocketConfig, reactor)
        self._stopping = False
        self._waiters: list[Deferred] = []
        self._abort: Any = None
        self._iframe = (_IFRAME_PAGE % self.config.sockjs_url).encode("utf-8")
        self._etag = b'"' + hashlib.sha256(self._iframe).hexdigest()[:32].encode("ascii") + b'"'

    def shutdown(self, grace: float = 10.0) -> Deferred:
        """
        Close for a server shutdown. Every HTTP session is closed with
        C{1001 "going away"}: its close frame goes to its receiving request
        now, or to the next poll, and the session is forgotten once its
        application has been told. The WebSocket connections of both
        WebSocket URLs close as L{WebSocketServerFactory.shutdown
        <wsproto_tw.server.WebSocketServerFactory.shutdown>} closes them.
        After C{grace} seconds, what is left is dropped. New sessions are
        still accepted meanwhile; stop listening first.

        @return: a Deferred that fires once every session and WebSocket
            connection is gone.
        """
        if not self._stopping:
            self._stopping = True
            for session in list(self.sessions.values()):
                session.goAway(1001, "going away")
                if session.closed:
                    session.abortConnection()
            if self.sessions:
                self._abort = self._clock.callLater(grace, self._abortAll)
        sessions: Deferred = Deferred()
        if self.sessions:
            self._waiters.append(sessions)
        else:
            sessions.callback(None)
        return gatherResults(
            [
                sessions,
                self.webSocketResource.webSocketFactory.shutdown(grace=grace),
                self._bridged.webSocketFactory.shutdown(grace=grace),
            ]
        ).addCallback(lambda _: None)

    def _abortAll(self) -> None:
        self._abort = None
        for session in list(self.sessions.values()):
            session.abortConnection()

    def _lost(self, session: SockJSSession) -> None:
        if self._stopping:
            # Told, during a shutdown: no need to keep serving its close
            # frame until the disconnect delay.
            session.abortConnection()

    def render(self, request: Any) -> bytes | int:
        """
        Answer C{request} by the path below the prefix: a static URL, a
        WebSocket URL or a session URL (see the module's docstring); 404
        for anything else, 405 (with C{Allow}) for a wrong method.
        """
        path = request.postpath
        if path in ([], [b""]):
            return self._greeting(request)
        if len(path) == 1:
            name = path[0]
            if name == b"info":
                return self._info(request)
            if _IFRAME.fullmatch(name):
                return self._iframePage(request)
            if name == b"websocket" and self.config.websocket:
                return self._webSocket(request, self.webSocketResource)
            return _notFound(request)
        if len(path) != 3:
            return _notFound(request)
        server, session, transport = path
        if not (valid_session_part(server.decode("utf-8", "replace"))
                and valid_session_part(session.decode("utf-8", "replace"))):
            return _notFound(request)
        spec = _TRANSPORTS.get(transport)
        if spec is None or (transport == b"websocket" and not self.config.websocket):
            return _notFound(request)
        methods, receiving, cors = spec
        if not self._originAllowed(request):
            return _error(request, 403, "origin not allowed")
        if request.method == b"OPTIONS" and cors:
            return _options(request, methods)
        if request.method not in methods:
            return _notAllowed(request, methods)
        if transport == b"websocket":
            return self._webSocket(request, self._bridged)
        request.setHeader(b"Cache-Control", _NO_CACHE)
        if cors:
            _cors(request)
        if self.config.cookie_needed:
            request.addCookie(b"JSESSIONID", request.getCookie(b"JSESSIONID") or b"dummy", path=b"/")
        if receiving:
            return self._receiving(request, session, transport.decode("ascii"))
        return self._sending(request, session, transport)

    def _originAllowed(self, request: Any) -> bool:
        """
        @return: whether C{request}'s C{Origin}, if it has one, is one of
            C{Config.allowed_origins} (any, if that is L{None}), as for the
            WebSocket transports, whose handshake checks it too.
        """
        allowed = self.webSocketConfig.allowed_origins
        origin = request.getHeader(b"Origin")
        if allowed is None or origin is None:
            return True
        return origin.decode("latin-1").strip().lower() in allowed

    # -- static URLs -----------------------------------------------------

    def _greeting(self, request: Any) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            return _notAllowed(request, (b"GET",))
        request.setHeader(b"Content-Type", b"text/plain; charset=UTF-8")
        return _GREETING

    def _info(self, request: Any) -> bytes:
        if not self._originAllowed(request):
            return _error(request, 403, "origin not allowed")
        if request.method == b"OPTIONS":
            return _options(request, (b"GET",))
        if request.method != b"GET":
            return _notAllowed(request, (b"GET", b"OPTIONS"))
        request.setHeader(b"Content-Type", b"application/json; charset=UTF-8")
        request.setHeader(b"Cache-Control", _NO_CACHE)
        _cors(request)
        info = {
            "websocket": self.config.websocket,
            "cookie_needed": self.config.cookie_needed,
            "origins": ["*:*"],
            "entropy": secrets.randbelow(1 << 32),
        }
        return encode_json(info).encode("utf-8")

    def _iframePage(self, request: Any) -> bytes:
        if request.method != b"GET":
            return _notAllowed(request, (b"GET",))
        _cached(request)
        request.setHeader(b"ETag", self._etag)
        if request.getHeader(b"If-None-Match") == self._etag:
            request.setResponseCode(http.NOT_MODIFIED)
            request.defaultContentType = None
            return b""
        request.setHeader(b"Content-Type", b"text/html; charset=UTF-8")
        return self._iframe

    def _webSocket(self, request: Any, resource: WebSocketResource) -> bytes | int:
        if request.method != b"GET":
            return _notAllowed(request, (b"GET",))
        upgrade = (request.getHeader(b"Upgrade") or b"").lower()
        if upgrade != b"websocket":
            return _error(request, 400, 'Can "Upgrade" only to "WebSocket".')
        connection = [token.strip().lower() for token in (request.getHeader(b"Connection") or b"").split(b",")]
        if b"upgrade" not in connection:
            return _error(request, 400, '"Connection" must be "Upgrade".')
        return resource.render(request)

    # -- sessions --------------------------------------------------------

    def _receiving(self, request: Any, sessionId: bytes, transport: str) -> bytes | int:
        framing = self._framing(request, transport)
        if not isinstance(framing, Framing):
            return framing
        request.setHeader(b"Content-Type", _CONTENT_TYPES[transport])
        session = self.sessions.get(sessionId)
        if session is not None:
            session.attach(ResponseSink(request), framing)
            return NOT_DONE_YET
        application = self.applicationFactory()
        opening = replace(handshakeRequest(request), peer=request.getClientAddress())
        try:
            answer = application.requestReceived(opening)
        except Reject as reject:
            return _error(request, reject.status, reject.reason, reject.headers)
        if isinstance(answer, Deferred):
            answer.addCallbacks(
                lambda _: self._open(request, sessionId, application, opening, framing),
                lambda failure: self._refused(request, failure),
            )
        else:
            self._open(request, sessionId, application, opening, framing)
        return NOT_DONE_YET

    def _open(self, request: Any, sessionId: bytes, application: Any, opening: Any, framing: Framing) -> None:
        if _gone(request):
            return
        session = self.sessions.get(sessionId)
        if session is None:
            session = SockJSSession(
                application,
                self.config.session,
                self.webSocketConfig,
                self._clock,
                request=opening,
                peer=request.getClientAddress(),
                host=request.getHost(),
                onClose=lambda closed: self._forget(sessionId, closed),
                onLost=self._lost,
            )
            self.sessions[sessionId] = session
        session.attach(ResponseSink(request), framing)

    def _refused(self, request: Any, failure: Failure) -> None:
        if _gone(request):
            return
        if failure.check(Reject):
            reject = failure.value
            body = _error(request, reject.status, reject.reason, reject.headers)
        else:
            _log.failure("application failed in requestReceived", failure)
            body = _error(request, 500, "internal error")
        request.write(body)
        request.finish()

    def _forget(self, sessionId: bytes, session: SockJSSession) -> None:
        if self.sessions.get(sessionId) is session:
            del self.sessions[sessionId]
        if self._stopping and not self.sessions:
            if self._abort is not None and self._abort.active():
                self._abort.cancel()
            self._abort = None
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def _framing(self, request: Any, transport: str) -> Framing | bytes:
        if transport == "xhr":
            return xhr_framing()
        if transport == "xhr_streaming":
            return xhr_streaming_framing()
        if transport == "eventsource":
            return eventsource_framing()
        callback = (request.args.get(b"c") or [b""])[0].decode("utf-8", "replace")
        if not callback:
            return _error(request, 500, '"callback" parameter required')
        if not valid_callback(callback):
            return _error(request, 500, 'invalid "callback" parameter')
        return htmlfile_framing(callback) if transport == "htmlfile" else jsonp_framing(callback)

    def _sending(self, request: Any, sessionId: bytes, transport: bytes) -> bytes | int:
        session = self.sessions.get(sessionId)
        if session is None:
            return _notFound(request)
        content = request.content
        content.seek(0, 2)
        if content.tell() > self.config.max_request_body:
            return _error(request, 413, "Payload too large.")
        content.seek(0)
        payload = content.read()
        if transport == b"jsonp_send":
            contentType = (request.getHeader(b"Content-Type") or b"").split(b";")[0].strip().lower()
            if contentType == b"application/x-www-form-urlencoded":
                # The form's field d, percent-encoded UTF-8 (as str: parse_qs
                # on bytes would re-encode what it decodes as ASCII).
                form = parse_qs(payload.decode("latin-1"), encoding="utf-8", errors="replace")
                payload = (form.get("d") or [""])[0]
        try:
            reading = session.receive(payload)
        except SockJSRequestError as error:
            return _error(request, error.status, str(error))
        if transport == b"jsonp_send":
            request.setHeader(b"Content-Type", b"text/plain; charset=UTF-8")
            body = b"ok"
        else:
            request.setHeader(b"Content-Type", b"text/plain; charset=UTF-8")
            request.setResponseCode(http.NO_CONTENT)
            body = b""
        if reading.called:
            return body

        def answer(_: Any) -> None:
            if not (_gone(request)):
                request.write(body)
                request.finish()

        # The application paused reading: the client waits for this answer
        # before it sends more.
        reading.addCallback(answer)
        return NOT_DONE_YET


class _WebSocketBridge(WebSocketApplication):
    """
    The application of one C{websocket}-transport connection: a
    L{SockJSSession} whose frames are the connection's text messages, and
    whose application the resource's factory builds.
    """

    def __init__(self, resource: SockJSResource) -> None:
        self._resource = resource
        self._application = resource.applicationFactory()
        self._session: SockJSSession | None = None
        self._ws: Any = None

    def requestReceived(self, request: Any) -> Any:
        return self._application.requestReceived(request)

    def connectionOpened(self, transport: Any) -> None:
        self._ws = transport
        resource = self._resource
        self._session = session = SockJSSession(
            self._application,
            resource.config.session,
            resource.webSocketConfig,
            resource._clock,
            request=transport.request,
            peer=transport.getPeer(),
            host=transport.getHost(),
        )
        session.attach(_MessageSink(transport), websocket_framing())

    def textMessageReceived(self, text: str) -> None:
        if self._session is None:
            return
        try:
            self._session.receive(text, allowEmpty=True)
        except SockJSRequestError:
            # Broken JSON: close the WebSocket at once, with a close frame
            # (sockjs-node closes with 3000 "Broken framing.").
            self._ws.close(3000, "Broken framing.")

    def binaryMessageReceived(self, data: bytes) -> None:
        self._ws.close(1003, "sockjs carries text only")

    def connectionLost(self, reason: Failure) -> None:
        if self._session is not None:
            closed = reason.value
            self._session.end(
                getattr(closed, "code", 1006), getattr(closed, "reason", ""), getattr(closed, "wasClean", False)
            )


class _MessageSink(_SinkProducer):
    """
    The WebSocket connection of a C{websocket}-transport session: each
    frame is a text message. Its write buffer's backpressure reaches the
    session, and pausing the session's reading pauses the connection's.
    """

    def __init__(self, webSocket: Any) -> None:
        self.webSocket = webSocket
        self.session: Any = None
        self.receiver: Any = None
        self._done = False
        webSocket.registerProducer(self, True)

    def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.webSocket.sendText(chunk.decode("utf-8"))

    def finish(self) -> None:
        if not self._done:
            self._done = True
            self.webSocket.unregisterProducer()
            self.webSocket.close(1000, "")

    def pauseReading(self) -> None:
        self.webSocket.pauseReading()

    def resumeReading(self) -> None:
        self.webSocket.resumeReading()

    def stopProducing(self) -> None:
        self._done = True


def _gone(request: Any) -> bool:
    """
    @return: whether C{request} was answered, or its client went away.
    """
    return bool(request.finished or getattr(request, "_disconnected", False))


def _notFound(request: Any) -> bytes:
    request.setResponseCode(http.NOT_FOUND)
    request.setHeader(b"Content-Type", b"text/plain; charset=UTF-8")
    return b"Not found.\n"


def _notAllowed(request: Any, methods: tuple[bytes, ...]) -> bytes:
    request.setResponseCode(http.NOT_ALLOWED)
    request.setHeader(b"Allow", b", ".join(methods))
    request.defaultContentType = None
    return b""


def _error(request: Any, status: int, message: str, headers: tuple = ()) -> bytes:
    request.setResponseCode(status)
    for name, value in headers:
        request.setHeader(name, value)
    request.setHeader(b"Content-Type", b"text/plain; charset=UTF-8")
    return message.encode("utf-8")


def _cors(request: Any) -> None:
    """
    Allow the request's origin, with credentials (cookies), and the
    headers a preflight asked for. A missing or C{null} origin (a page
    from a C{file:} URL) is allowed as C{*}.
    """
    origin = request.getHeader(b"Origin")
    request.setHeader(b"Access-Control-Allow-Origin", origin if origin and origin != b"null" else b"*")
    request.setHeader(b"Access-Control-Allow-Credentials", b"true")
    request.setHeader(b"Vary", b"Origin")
    headers = request.getHeader(b"Access-Control-Request-Headers")
    if headers:
        request.setHeader(b"Access-Control-Allow-Headers", headers)


def _cached(request: Any) -> None:
    request.setHeader(b"Cache-Control", b"public, max-age=%d" % _YEAR)
    request.setHeader(b"Expires", http.datetimeToString(time.time() + _YEAR))
    request.setHeader(b"Access-Control-Max-Age", b"%d" % _YEAR)


def _options(request: Any, methods: tuple[bytes, ...]) -> bytes:
    request.setResponseCode(http.NO_CONTENT)
    _cached(request)
    request.setHeader(b"Access-Control-Allow-Methods", b", ".join((b"OPTIONS",) + methods))
    _cors(request)
    request.defaultContentType = None
    return b""
