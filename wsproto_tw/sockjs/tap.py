# -*- test-case-name: tests.sockjs.test_tap -*-
"""
C{twistd websocket --sockjs PREFIX}: SockJS beside the plain WebSocket, on
the same ports, for the same application.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.python import usage

from wsproto_tw.core.config import Config
from wsproto_tw.sockjs.config import SockJSConfig

__all__ = ["checkPrefix", "mountSockJS"]


def checkPrefix(prefix: str) -> str:
    """
    Check the value of a C{--sockjs} option.

    @return: C{prefix} without a trailing slash.
    @raise usage.UsageError: C{prefix} does not start with C{/}, or is C{/}.
    """
    if not prefix.startswith("/") or not prefix.strip("/"):
        raise usage.UsageError(f"--sockjs must start with / and name a path below /, not {prefix!r}")
    return prefix.rstrip("/")


def mountSockJS(
    prefixes: list[str],
    applicationFactory: Callable[[], Any],
    config: Config,
    reactor: IReactorTime,
    factory: Any,
    listening: Any,
    grace: float = 10.0,
) -> tuple[Any, Any]:
    """
    Serve SockJS at each of C{prefixes} beside what C{listening} serves.

    @param applicationFactory: the application factory of the WebSocket
        (shared: one broadcast group for WebSocket and SockJS clients).
    @param config: the WebSocket L{Config}, also the sessions' flow limits.
    @param factory: the L{WebSocketServerFactory
        <wsproto_tw.server.WebSocketServerFactory>} of the WebSocket
        connections.
    @param listening: that same factory (every path a WebSocket), or a
        L{WebSocketSite <wsproto_tw.resource.WebSocketSite>}.
    @param grace: seconds the sessions are given to be told C{1001} when
        the reactor shuts down (L{SockJSResource.shutdown
        <wsproto_tw.sockjs.resource.SockJSResource.shutdown>}), as the
        WebSocket connections are.
    @return: the factory and the protocol factory to listen with: a site
        whose root serves SockJS at each prefix and the rest as before.
    """
    from wsproto_tw.resource import WebSocketResource, WebSocketSite, mountAt
    from wsproto_tw.sockjs.resource import SockJSResource

    if not prefixes:
        return factory, listening
    if isinstance(listening, WebSocketSite):
        site = listening
    else:
        # Every path was a WebSocket: it still is, but through a site now.
        everywhere = WebSocketResource(applicationFactory, config, reactor)
        factory = everywhere.webSocketFactory
        site = WebSocketSite(everywhere, config, reactor=reactor)
    for prefix in prefixes:
        sockjs = SockJSResource(applicationFactory, SockJSConfig(), config, reactor)
        site.resource = mountAt(prefix, sockjs, site.resource)
        addTrigger = getattr(reactor, "addSystemEventTrigger", None)
        if addTrigger is not None:
            addTrigger("before", "shutdown", sockjs.shutdown, grace)
    return factory, site
