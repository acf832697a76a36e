# -*- test-case-name: tests.test_server -*-
"""
Serving WebSocket: the server factory and the application base class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory

from wsproto_tw._protocol import Accept, WebSocketApplication, WebSocketProtocol, serverCore
from wsproto_tw.core.config import Config
from wsproto_tw.errors import ConnectionClosed, Reject

__all__ = [
    "Accept",
    "Config",
    "ConnectionClosed",
    "Reject",
    "WebSocketApplication",
    "WebSocketServerFactory",
]


class WebSocketServerFactory(Factory):
    """
    A factory of server-side WebSocket connections, each driving one
    application built by C{applicationFactory}.

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

    def buildProtocol(self, addr: Any) -> WebSocketProtocol:
        protocol = WebSocketProtocol(
            self.applicationFactory(),
            self.config,
            self.reactor,
            self._makeCore,
            onClose=self.connections.discard,
        )
        protocol.factory = self
        self.connections.add(protocol)
        return protocol
