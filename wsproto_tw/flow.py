# -*- test-case-name: tests.test_flow -*-
"""
Flow control for one WebSocket connection, both ways, as small objects
that a L{WebSocketConnection <wsproto_tw.connection.WebSocketConnection>}
holds:

  - L{InboundFlow}: why reading from the wire is paused (a set of
    L{PauseReason}s), and the backlog of messages whose handler's Deferred
    has not fired yet, with a high and a low water mark;
  - L{OutboundFlow}: whether the wire's write buffer is full, what piles up
    behind it, the stall deadline, L{whenDrained <OutboundFlow.whenDrained>}
    Deferreds, and the application's producer;
  - L{PullToPush}: a pull producer driven as a push producer, shared by the
    connection and L{wsproto_tw.wrap};
  - L{FlowControlled}: the flow-control half of C{IWebSocketTransport} and
    C{IConsumer}, over those objects, for every kind of connection (a
    WebSocket on any wire, a SockJS session).

None of them writes or reads: they keep the state and tell their owner
what to do.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.core.config import Config

__all__ = ["FlowControlled", "InboundFlow", "OutboundFlow", "PauseReason", "PullToPush"]


class PauseReason(enum.Flag):
    """
    Why a connection does not read from its wire.

    @cvar APPLICATION: the application called C{pauseReading()}.
    @cvar BACKLOG: too many messages (or bytes) wait for their handler's
        Deferred (C{Config.max_pending_messages}, C{max_pending_bytes}).
    @cvar NEGOTIATING: the server application has not answered the opening
        request yet.
    @cvar WRITES: the peer does not read what we write (the wire's write
        buffer is full). This one is the peer's doing; the others are ours,
        and suspend keepalive, since the peer's pong may wait unread.
    """

    APPLICATION = enum.auto()
    BACKLOG = enum.auto()
    NEGOTIATING = enum.auto()
    WRITES = enum.auto()


_NONE = PauseReason(0)
_OURS = PauseReason.APPLICATION | PauseReason.BACKLOG | PauseReason.NEGOTIATING


class InboundFlow:
    """
    The pause reasons of one connection's reading, and its backlog.

    @ivar reasons: the L{PauseReason}s in force.
    @ivar paused: C{bool(reasons)}, kept as a plain attribute for the
        message loop.
    @ivar pendingMessages: messages whose handler's Deferred has not fired.
    @ivar pendingBytes: their size, in bytes (characters for text).
    """

    __slots__ = ("reasons", "paused", "pendingMessages", "pendingBytes", "_maxMessages", "_maxBytes")

    def __init__(self, config: Config) -> None:
        self.reasons = _NONE
        self.paused = False
        self.pendingMessages = 0
        self.pendingBytes = 0
        self._maxMessages = config.max_pending_messages
        self._maxBytes = config.max_pending_bytes

    def pause(self, reason: PauseReason) -> tuple[bool, bool]:
        """
        Add C{reason}.

        @return: C{(stopReading, suspendKeepalive)}: whether this is the
            first reason (the wire must stop reading), and whether it is
            the first of our own reasons (keepalive must be suspended).
        """
        before = self.reasons
        self.reasons = before | reason
        self.paused = True
        return not before, bool(reason & _OURS) and not (before & _OURS)

    def resume(self, reason: PauseReason) -> tuple[bool, bool] | None:
        """
        Remove C{reason}.

        @return: L{None} if C{reason} was not in force; else
            C{(startReading, resumeKeepalive)}: whether no reason is left
            (the wire may read again, and what waits may be delivered),
            and whether no reason of our own is left after removing one of
            ours (keepalive starts over).
        """
        before = self.reasons
        if not before & reason:
            return None
        self.reasons = after = before & ~reason
        self.paused = bool(after)
        return not after, bool(reason & _OURS) and not (after & _OURS)

    def messagePending(self, size: int) -> bool:
        """
        Count a message whose handler returned an unfired Deferred.

        @param size: its length.
        @return: whether the backlog is now over its high-water mark
            (C{max_pending_messages} or C{max_pending_bytes}).
        """
        self.pendingMessages += 1
        self.pendingBytes += size
        return self.pendingMessages > self._maxMessages or self.pendingBytes > self._maxBytes

    def messageSettled(self, size: int) -> bool:
        """
        Forget a message whose handler's Deferred fired.

        @param size: its length, as given to L{messagePending}.
        @return: whether reading is paused for the backlog and the backlog
            is now at or under its low-water mark (half of each limit).
        """
        self.pendingMessages -= 1
        self.pendingBytes -= size
        return (
            bool(self.reasons & PauseReason.BACKLOG)
            and self.pendingMessages <= self._maxMessages // 2
            and self.pendingBytes <= self._maxBytes // 2
        )


class OutboundFlow:
    """
    The outbound side of one connection: the wire's write buffer, and the
    application's producer.

    While the wire says its buffer is full (L{pause}), what is written
    behind it is counted; past C{Config.max_write_buffer} bytes, or
    C{Config.write_buffer_timeout} seconds after the buffer filled, the
    owner's C{onStall(reason)} is called, once.

    @ivar paused: whether the wire's write buffer is full.
    @ivar producer: the application's registered push producer (a pull
        producer is wrapped in a L{PullToPush}), or L{None}.
    """

    __slots__ = ("paused", "producer", "_written", "_stall", "_drained", "_clock", "_limit", "_timeout", "_onStall")

    def __init__(self, config: Config, clock: IReactorTime, onStall: Callable[[str], None]) -> None:
        self.paused = False
        self.producer: Any = None
        self._written = 0
        self._stall: IDelayedCall | None = None
        self._drained: list[Deferred] | None = None
        self._clock = clock
        self._limit = config.max_write_buffer
        self._timeout = config.write_buffer_timeout
        self._onStall = onStall

    def pause(self) -> bool:
        """
        The wire's write buffer is full: pause the producer, and start the
        stall deadline.

        @return: whether it was not full before.
        """
        if self.paused:
            return False
        self.paused = True
        self._written = 0
        if self.producer is not None:
            self.producer.pauseProducing()
        if self._timeout is not None:
            self._stall = self._clock.callLater(self._timeout, self._stalled, "peer is not reading")
        return True

    def resume(self) -> bool:
        """
        The wire's write buffer has drained: stop the stall deadline, fire
        the L{whenDrained} Deferreds, resume the producer.

        @return: whether it was full before.
        """
        if not self.paused:
            return False
        self.paused = False
        self._cancelStall()
        drained, self._drained = self._drained or (), None
        for d in drained:
            d.callback(None)
        if self.producer is not None:
            self.producer.resumeProducing()
        return True

    def overLimit(self, size: int) -> bool:
        """
        Count C{size} bytes written while the buffer is full.

        @return: whether more than C{max_write_buffer} bytes have piled up
            since it filled.
        """
        if not self.paused:
            return False
        self._written += size
        return self._written > self._limit

    def whenDrained(self) -> Deferred:
        """
        @return: a Deferred that fires with L{None} once the write buffer is
            not full: at once if it isn't.
        """
        if not self.paused:
            return succeed(None)
        d: Deferred = Deferred()
        if self._drained is None:
            self._drained = []
        self._drained.append(d)
        return d

    def register(self, producer: Any, streaming: bool) -> None:
        """
        Register the application's producer (C{IConsumer.registerProducer}).

        @raise RuntimeError: a producer is already registered.
        """
        if self.producer is not None:
            raise RuntimeError(f"a producer is already registered: {self.producer!r}")
        if not streaming:
            producer = PullToPush(producer, self._clock)
        self.producer = producer
        if self.paused:
            producer.pauseProducing()
        if not streaming:
            producer.start()

    def unregister(self) -> None:
        """
        Forget the producer (C{IConsumer.unregisterProducer}).
        """
        producer, self.producer = self.producer, None
        if isinstance(producer, PullToPush):
            producer.stop()

    def stop(self, reason: Failure) -> None:
        """
        The wire is gone: cancel the stall deadline, fail the L{whenDrained}
        Deferreds with C{reason}, and tell the producer to stop, as a TCP
        transport does.
        """
        self._cancelStall()
        drained, self._drained = self._drained or (), None
        for d in drained:
            d.errback(reason)
        producer, self.producer = self.producer, None
        if producer is not None:
            producer.stopProducing()

    def _cancelStall(self) -> None:
        if self._stall is not None and self._stall.active():
            self._stall.cancel()
        self._stall = None

    def _stalled(self, reason: str) -> None:
        self._stall = None
        self._onStall(reason)


@implementer(IPushProducer)
class PullToPush:
    """
    Drive a pull producer (C{streaming=False}) as a push producer: ask it
    for data (C{resumeProducing}) once per reactor turn while not paused.
    """

    def __init__(self, pull: Any, clock: IReactorTime) -> None:
        """
        @param pull: the pull producer.
        @param clock: the L{IReactorTime} whose turns pace it.
        """
        self._pull = pull
        self._clock = clock
        self._paused = False
        self._running = False
        self._call: IDelayedCall | None = None

    def start(self) -> None:
        """
        Start asking for data.
        """
        self._running = True
        self._schedule()

    def stop(self) -> None:
        """
        Stop asking, without telling the pull producer.
        """
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        if self._running and not self._paused and self._call is None:
            self._call = self._clock.callLater(0, self._tick)

    def _tick(self) -> None:
        self._call = None
        if self._running and not self._paused:
            self._pull.resumeProducing()
            self._schedule()

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stop()
        self._pull.stopProducing()


class FlowControlled:
    """
    The flow-control methods of L{IWebSocketTransport
    <wsproto_tw.interfaces.IWebSocketTransport>} and C{IConsumer}, the same
    for every kind of connection. A subclass provides C{_pause(reason)} and
    C{_resume(reason)} (which act on its L{InboundFlow}), C{_outbound} (its
    L{OutboundFlow}) and C{sendBinary}.
    """

    __slots__ = ()

    # What the subclass provides (not defined here, so that a base class
    # of the subclass can provide them too).
    _outbound: OutboundFlow
    _pause: Callable[[PauseReason], None]
    _resume: Callable[[PauseReason], None]
    sendBinary: Callable[[bytes], None]

    def pauseReading(self) -> None:
        self._pause(PauseReason.APPLICATION)

    def resumeReading(self) -> None:
        self._resume(PauseReason.APPLICATION)

    def whenDrained(self) -> Deferred:
        return self._outbound.whenDrained()

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._outbound.register(producer, bool(streaming))

    def unregisterProducer(self) -> None:
        self._outbound.unregister()

    def write(self, data: bytes) -> None:
        self.sendBinary(data)

    def writeSequence(self, data: list[bytes]) -> None:
        self.sendBinary(b"".join(data))
