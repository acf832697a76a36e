# -*- test-case-name: tests.test_server -*-
"""
Serving WebSocket: the server factory and the application base class.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from types import CoroutineType
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IProtocolNegotiationFactory, IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.application import StreamingWebSocketApplication, WebSocketApplication
from wsproto_tw._pump import _peer, _Role
from wsproto_tw.connection import WebSocketConnection
from wsproto_tw.core.codes import CloseCode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ServerConnection, State
from wsproto_tw.core.events import RequestReceived
from wsproto_tw.errors import ConnectionClosed, Reject
from wsproto_tw.flow import PauseReason
from wsproto_tw.wire import StreamWire

_log = Logger(namespace="wsproto_tw")

# A module global: on Python 3.11 each State.CONNECTING costs a lookup
# through EnumType's __getattr__ (see wsproto_tw.core.connection).
_CONNECTING = State.CONNECTING

__all__ = [
    "Accept",
    "WebSocketConnection",
    "Config",
    "ConnectionClosed",
    "Reject",
    "ShutdownService",
    "StreamingWebSocketApplication",
    "WebSocketApplication",
    "WebSocketServerFactory",
]


class Accept:
    """
    What an application's C{requestReceived} returns to accept with a chosen
    subprotocol or extra response headers.

    @ivar subprotocol: the subprotocol to answer with (one the client
        offered), L{None} for none, or C{...} for the configured choice.
    @ivar headers: extra response headers as (name, value) pairs.
    """

    def __init__(self, subprotocol: Any = ..., headers: tuple | list = ()) -> None:
        self.subprotocol = subprotocol
        self.headers = tuple(headers)


class _ServerRole(_Role):
    """
    The server side of a connection: the application answers the opening
    request (C{requestReceived}), at once or later through a Deferred;
    reading waits meanwhile. Over C{max_connections}, C{503}.
    """

    __slots__ = ("_overLimit",)

    def __init__(self, overLimit: Callable[[], bool] | None) -> None:
        self._overLimit = overLimit

    def requestReceived(self, connection: WebSocketConnection, event: RequestReceived) -> None:
        core = connection._conn
        if self._overLimit is not None and self._overLimit():
            core.reject(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections; try again later", (("Retry-After", "5"),))
            return
        try:
            result = connection._app.requestReceived(event.request)
        except BaseException:
            d = fail(Failure(captureVars=Deferred.debug))  # as maybeDeferred
        else:
            # (None first: Deferred's isinstance check is an ABC's, in Python.)
            if result is None or not isinstance(result, (Deferred, Failure, CoroutineType)):
                # Answered at once (the usual case): what the callbacks
                # below would do, without building a Deferred; reading was
                # never paused.
                if core.state is _CONNECTING:
                    try:
                        self._answer(result, connection)
                    except BaseException:
                        self._failed(Failure(), connection)
                return
            d = maybeDeferred(lambda: result)
        d.addCallbacks(self._accept, self._reject, (connection,), None, (connection,))
        d.addErrback(self._failed, connection)
        if core.state is State.CONNECTING:
            # The application answers later: read nothing meanwhile.
            connection._pause(PauseReason.NEGOTIATING)

    def _accept(self, result: Any, connection: WebSocketConnection) -> None:
        if connection._conn.state is not State.CONNECTING:
            return  # timed out or lost meanwhile
        self._answer(result, connection)
        connection._resume(PauseReason.NEGOTIATING)

    def _answer(self, result: Any, connection: WebSocketConnection) -> None:
        """
        Accept as the application's C{result} says (L{None} or an
        L{Accept}), and open the connection.
        """
        core = connection._conn
        assert isinstance(core, ServerConnection)
        # Accepted while the request's read is delivered: at that read's
        # time, as the core dates what the read brought (one float for an
        # idle connection's lastActivity and openedAt, not two).
        delivering = connection._delivering
        now = connection.lastActivity
        if not delivering or now is None:
            now = connection._clock.seconds()
        if result is None:
            # Accept(), without making one: the configured subprotocol, no
            # extra headers.
            core.accept(now=now)
        elif isinstance(result, Accept):
            core.accept(result.subprotocol, result.headers, now=now)
        else:
            raise TypeError(f"requestReceived must return None or Accept, not {result!r}")
        if not delivering:
            # Answered later: the 101 goes out now (while the request's
            # read is delivered, the pump writes it once that is done).
            connection._flush()
        connection._open(now)

    def _reject(self, failure: Failure, connection: WebSocketConnection) -> None:
        core = connection._conn
        if core.state is not State.CONNECTING:
            return
        assert isinstance(core, ServerConnection)
        if failure.check(Reject):
            error = failure.value
            # A Reject with a status or headers that can't be sent raises
            # here, and _failed answers 500.
            core.reject(error.status, error.reason, error.headers)
        else:
            _log.failure("application failed in requestReceived", failure)
            core.reject(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")
        connection._resume(PauseReason.NEGOTIATING)
        connection._flush()

    def _failed(self, failure: Failure, connection: WebSocketConnection) -> None:
        """
        Answering the request failed: the application's answer can't be sent
        (a subprotocol the client did not offer, a value that is not an
        L{Accept}, a header with a line break, a L{Reject} with a status that
        is not an error), or C{connectionOpened} raised. Answer 500 at once,
        or fail the connection with 1011 if it has opened.
        """
        _log.failure(
            "application failed answering the opening handshake from {peer}", failure, peer=_peer(connection.wire)
        )
        core = connection._conn
        if core.state is State.CONNECTING:
            assert isinstance(core, ServerConnection)
            core.reject(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")
        else:
            core.fail(CloseCode.INTERNAL_ERROR, "internal error", now=connection._clock.seconds())
        connection._resume(PauseReason.NEGOTIATING)
        connection._flush()


class _FailedApplication(WebSocketApplication):
    """
    What a connection gets when the application factory raised: its
    request is answered C{500 Internal Server Error}.
    """

    def requestReceived(self, request: Any) -> Any:
        raise Reject(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")


@implementer(IProtocolNegotiationFactory)
class WebSocketServerFactory(Factory):
    """
    A factory of server-side WebSocket connections, each driving one
    application built by C{applicationFactory}.

    Over TLS it declares, by ALPN, that it speaks C{http/1.1} (RFC 7301;
    the protocol of the opening handshake, RFC 6455 section 4.1): a
    client that offers ALPN, as every browser does, gets C{http/1.1}; a
    client that offers none gets none.

    @ivar config: the L{Config} every connection shares.
    @ivar connections: the open (or opening) L{WebSocketConnection}s. A
        connection leaves the set when it is lost, never during a call the
        application makes on it (a close that such a call completes is
        carried out in a later reactor turn); code that may run while
        connections are lost (a callback of the reactor's own) iterates
        over a copy (C{list(factory.connections)}), as
        L{wsproto_tw.broadcast.broadcast} does.
    @ivar metrics: the L{Metrics <wsproto_tw.metrics.Metrics>} that count
        these connections, or L{None}.
    """

    noisy = False

    def __init__(
        self,
        applicationFactory: Callable[[], Any],
        config: Config | None = None,
        reactor: IReactorTime | None = None,
        metrics: Any = None,
    ) -> None:
        """
        @param metrics: a L{Metrics <wsproto_tw.metrics.Metrics>} to count
            the connections in, or L{None}.
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor  # type: ignore[assignment]
        self.metrics: Any = None
        if metrics is not None:
            metrics.watch(self)
        self.applicationFactory = applicationFactory
        self.config = config if config is not None else Config()
        self.reactor = reactor
        self.connections: set[WebSocketConnection] = set()
        config = self.config
        self._makeCore = lambda now: ServerConnection(config, now=now)
        self._waiters: list[Deferred] = []
        self._abort: Any = None
        limit = self.config.max_connections
        # The server side keeps no per-connection state: one for all.
        self._role = _ServerRole(None if limit is None else (lambda: len(self.connections) > limit))
        # One bound method for every connection, not one each.
        self._onLost = self._lost

    def buildProtocol(self, addr: Any) -> StreamWire:
        """
        @return: the L{StreamWire} of a new L{WebSocketConnection}, which
            is in L{connections} until it is gone.
        """
        # The wire's factory is its connection's, which buildConnection
        # set: nothing to set on the wire.
        return StreamWire(self.buildConnection())

    def buildConnection(self, streamRequest: Any = None) -> WebSocketConnection:
        """
        Build a server connection and its application, for any wire.

        @param streamRequest: for a WebSocket over an HTTP/2 stream (RFC
            8441), the L{HandshakeRequest <wsproto_tw.core.HandshakeRequest>}
            of its extended CONNECT; the wire then carries only frames.
        @return: a L{WebSocketConnection} that has no wire yet; it is in
            L{connections} until it is gone.
        """
        makeCore = self._makeCore
        if streamRequest is not None:
            config = self.config
            makeCore = lambda now: ServerConnection(config, now=now, stream_request=streamRequest)  # noqa: E731
        try:
            application = self.applicationFactory()
        except Exception:
            # The request is answered 500 rather than dropped unanswered.
            _log.failure("the application factory failed; answering 500")
            application = _FailedApplication()
        connection = WebSocketConnection(
            application,
            self.config,
            self.reactor,
            makeCore,
            self._role,
            onClose=self._onLost,
        )
        connection.factory = self
        self.connections.add(connection)
        return connection

    def acceptableProtocols(self) -> list[bytes]:
        """
        The ALPN protocol names (RFC 7301) this factory speaks over TLS.

        Twisted's TLS endpoints (since 26.4) always select from this list
        when a client offers ALPN, and fail the handshake with an
        C{internal_error} alert when a factory declares nothing.

        @return: C{[b"http/1.1"]}.
        """
        return [b"http/1.1"]

    def _lost(self, connection: WebSocketConnection) -> None:
        if self.metrics is not None:
            # Counted as closed before it leaves the set a scrape reads.
            self.metrics.closed(connection)
        self.connections.discard(connection)
        if not self.connections and self._waiters:
            if self._abort is not None and self._abort.active():
                self._abort.cancel()
            self._abort = None
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def shutdown(
        self, code: int = CloseCode.GOING_AWAY, reason: str = "going away", grace: float = 10.0
    ) -> Deferred:
        """
        Close every connection: open ones with C{code} (1001 Going Away by
        default), the others at once; after C{grace} seconds, drop whatever
        is left.

        @return: a Deferred that fires once every connection is gone.
        """
        if not self.connections:
            return succeed(None)
        d: Deferred = Deferred()
        self._waiters.append(d)
        if self._abort is None:
            for connection in list(self.connections):
                connection.goAway(code, reason)
            self._abort = self.reactor.callLater(grace, self._abortAll)
        return d

    def _abortAll(self) -> None:
        self._abort = None
        for connection in list(self.connections):
            connection.abortConnection()


class ShutdownService(Service):
    """
    A service whose C{stopService} closes a factory's connections with 1001
    Going Away and waits for them, up to a grace period. Add it to the
    parent before the listening services, so that listening stops first.
    """

    def __init__(self, factory: WebSocketServerFactory, grace: float = 10.0) -> None:
        self.factory = factory
        self.grace = grace

    def stopService(self) -> Deferred:
        super().stopService()
        return self.factory.shutdown(grace=self.grace)
