# -*- test-case-name: tests.test_server -*-
"""
Serving WebSocket: the server factory and the application base class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IProtocolNegotiationFactory, IReactorTime
from twisted.internet.protocol import Factory
from zope.interface import implementer

from wsproto_tw._protocol import Accept, WebSocketApplication, WebSocketProtocol, serverCore
from wsproto_tw.core.config import Config
from wsproto_tw.errors import ConnectionClosed, Reject

__all__ = [
    "Accept",
    "Config",
    "ConnectionClosed",
    "Reject",
    "ShutdownService",
    "WebSocketApplication",
    "WebSocketServerFactory",
]


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
    @ivar connections: the open (or opening) L{WebSocketProtocol}s.
    """

    noisy = False

    def __init__(
        self,
        applicationFactory: Callable[[], Any],
        config: Config | None = None,
        reactor: IReactorTime | None = None,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor  # type: ignore[assignment]
        self.applicationFactory = applicationFactory
        self.config = config if config is not None else Config()
        self.reactor = reactor
        self.connections: set[WebSocketProtocol] = set()
        self._makeCore = serverCore(self.config)
        self._waiters: list[Deferred] = []
        self._abort: Any = None
        limit = self.config.max_connections
        self._overLimit = None if limit is None else (lambda: len(self.connections) > limit)

    def buildProtocol(self, addr: Any) -> WebSocketProtocol:
        protocol = WebSocketProtocol(
            self.applicationFactory(),
            self.config,
            self.reactor,
            self._makeCore,
            onClose=self._lost,
            overLimit=self._overLimit,
        )
        protocol.factory = self
        self.connections.add(protocol)
        return protocol

    def acceptableProtocols(self) -> list[bytes]:
        """
        The ALPN protocol names (RFC 7301) this factory speaks over TLS.

        Twisted's TLS endpoints (since 26.4) always select from this list
        when a client offers ALPN, and fail the handshake with an
        C{internal_error} alert when a factory declares nothing.

        @return: C{[b"http/1.1"]}.
        """
        return [b"http/1.1"]

    def _lost(self, protocol: WebSocketProtocol) -> None:
        self.connections.discard(protocol)
        if not self.connections and self._waiters:
            if self._abort is not None and self._abort.active():
                self._abort.cancel()
            self._abort = None
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)

    def shutdown(self, code: int = 1001, reason: str = "going away", grace: float = 10.0) -> Deferred:
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
            for protocol in list(self.connections):
                protocol.goAway(code, reason)
            self._abort = self.reactor.callLater(grace, self._abortAll)
        return d

    def _abortAll(self) -> None:
        self._abort = None
        for protocol in list(self.connections):
            protocol.abortConnection()


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
