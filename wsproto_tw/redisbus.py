# -*- test-case-name: tests.stomp.test_bus -*-
"""
A publish/subscribe bus between processes through Redis (C{PUBLISH},
C{SUBSCRIBE}): L{RedisBus}, on C{txredisapi}'s Twisted client (the C{redis}
extra: C{pip install 'wsproto_tw[redis]'}).

    bus = RedisBus("tcp:127.0.0.1:6379")
    broker = BusBroker(bus)
    bus.received = broker.bus_message_received
    bus.service.setServiceParent(application)

Two connections, each kept by C{txredisapi} with backoff (0.5 s at first,
at most C{maxRetryDelay}): one subscribes (again to every channel after a
reconnection), one publishes. An outage is logged once, and so is the
return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.endpoints import clientFromString
from twisted.logger import Logger

from wsproto_tw.wire import setNoDelay

__all__ = ["RedisBus"]

_log = Logger(namespace="wsproto_tw.bus")


class _NoDelay:
    """
    A Redis connection with Nagle's algorithm off, as every TCP connection
    of ours (L{wsproto_tw.wire.setNoDelay}): a PUBLISH made while the last
    is unacknowledged goes out at once.
    """

    transport: Any

    def connectionMade(self) -> Any:
        setNoDelay(self.transport)
        return super().connectionMade()  # type: ignore[misc]


def _txredisapi() -> Any:
    try:
        import txredisapi
    except ImportError:
        raise ImportError("the Redis bus needs txredisapi: pip install 'wsproto_tw[redis]'") from None
    return txredisapi


class _BusService(Service):
    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus

    def startService(self) -> None:
        super().startService()
        self.bus._start()

    def stopService(self) -> Any:
        super().stopService()
        return self.bus._stop()


class RedisBus:
    """
    A L{Bus <wsproto_tw.stomp.bus.Bus>} through a Redis server.

    @ivar received: called with (channel, payload) for each message of a
        subscribed channel.
    @ivar connected: whether both connections are up.
    @ivar service: start it to connect, stop it to disconnect.
    @ivar channels: the channels subscribed to.
    """

    received: Callable[[str, bytes], None] | None = None

    def __init__(self, endpoint: str, *, reactor: Any = None, maxRetryDelay: float = 5.0) -> None:
        """
        @param endpoint: a client endpoint description of the Redis
            server, e.g. C{"tcp:127.0.0.1:6379"}.
        @raise ImportError: C{txredisapi} is missing.
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self._txredisapi = _txredisapi()
        self.reactor = reactor
        self.description = endpoint
        self.endpoint = clientFromString(reactor, endpoint)
        self.maxRetryDelay = maxRetryDelay
        self.channels: set[str] = set()
        self.connected = False
        self.service = _BusService(self)
        self._subscriber: Any = None
        self._publisher: Any = None
        self._factories: list[Any] = []
        self._everUp = False

    # Bus

    def subscribe(self, channel: str) -> None:
        self.channels.add(channel)
        if self._subscriber is not None:
            self._subscriber.subscribe(channel).addErrback(self._failed, "SUBSCRIBE")

    def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        if self._subscriber is not None:
            self._subscriber.unsubscribe(channel).addErrback(self._failed, "UNSUBSCRIBE")

    def publish(self, channel: str, payload: bytes) -> None:
        if self._publisher is not None:
            self._publisher.publish(channel, payload).addErrback(self._failed, "PUBLISH")

    def _failed(self, failure: Any, command: str) -> None:
        _log.warn("redis bus: {command} failed: {why}", command=command, why=failure.getErrorMessage())

    # Connections

    def _factory(self, kind: str) -> Any:
        txredisapi = self._txredisapi
        bus = self

        if kind == "subscriber":

            class Subscriber(_NoDelay, txredisapi.SubscriberProtocol):
                # txredisapi parses what follows each bulk reply in a later
                # reactor turn (setLineMode pauses and calls back), so a burst
                # of messages was delivered one per turn, each with a write
                # call per client: here the rest is parsed in the same turn,
                # in a loop (not recursively).
                _rest: bytes | None = None
                _parsing = False

                def setLineMode(self, extra: bytes = b"") -> None:
                    self.line_mode = 1
                    if extra:
                        self._rest = extra if self._rest is None else extra + self._rest

                def dataReceived(self, data: bytes, unpause: bool = False) -> Any:
                    if self._parsing:
                        self._rest = data if self._rest is None else self._rest + data
                        return None
                    self._parsing = True
                    try:
                        result = super().dataReceived(data, unpause)
                        while self._rest is not None and not result:
                            rest, self._rest = self._rest, None
                            result = super().dataReceived(rest)
                        return result
                    finally:
                        self._parsing = False

                def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
                    if bus.received is not None:
                        name = channel.decode("utf-8", "replace") if isinstance(channel, bytes) else channel
                        bus.received(name, message if isinstance(message, bytes) else str(message).encode("utf-8"))

                def connectionLost(self, why: Any) -> None:
                    bus._lost(self)
                    super().connectionLost(why)

            factory = txredisapi.SubscriberFactory(isLazy=True)
            factory.protocol = Subscriber
        else:

            class Publisher(_NoDelay, txredisapi.RedisProtocol):
                def connectionLost(self, why: Any) -> None:
                    bus._lost(self)
                    super().connectionLost(why)

            factory = txredisapi.RedisFactory(self.description, None, 1, isLazy=True, charset=None)
            factory.protocol = Publisher
        factory.charset = None  # payloads are octets
        factory.initialDelay = 0.5
        factory.maxDelay = self.maxRetryDelay
        build = factory.buildProtocol

        def buildProtocol(addr: Any) -> Any:
            protocol = build(addr)
            protocol.whenConnected().addCallback(self._up, kind)
            return protocol

        factory.buildProtocol = buildProtocol
        factory.connectionError = lambda message: _log.warn("redis bus: {message}", message=message)
        return factory

    def _start(self) -> None:
        for kind in ("subscriber", "publisher"):
            factory = self._factory(kind)
            self._factories.append(factory)
            factory.startConnecting(self.endpoint)

    def _stop(self) -> Any:
        from twisted.internet.defer import gatherResults

        factories, self._factories = self._factories, []
        return gatherResults([factory.disconnect() for factory in factories], consumeErrors=True)

    def _up(self, protocol: Any, kind: str) -> None:
        if kind == "subscriber":
            self._subscriber = protocol
            if self.channels:
                protocol.subscribe(sorted(self.channels)).addErrback(self._failed, "SUBSCRIBE")
        else:
            self._publisher = protocol
        if self._subscriber is not None and self._publisher is not None and not self.connected:
            self.connected = True
            _log.info("redis bus: connected to {endpoint}{again}", endpoint=self.description,
                      again=" again" if self._everUp else "")
            self._everUp = True

    def _lost(self, protocol: Any) -> None:
        if protocol is self._subscriber:
            self._subscriber = None
        elif protocol is self._publisher:
            self._publisher = None
        else:
            return
        if self.connected:
            self.connected = False
            _log.warn("redis bus: connection to {endpoint} lost; delivering in this process until it is back",
                      endpoint=self.description)
