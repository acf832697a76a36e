# -*- test-case-name: tests.test_protocol -*-
"""
The Twisted Protocol that drives a core connection: it feeds received bytes to
the core, delivers the core's events to the application, writes the core's
bytes, closes the transport when the core asks, and keeps one timer armed for
the core's next deadline. It parses nothing.
"""

from __future__ import annotations

import heapq
import time
import weakref
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IConsumer, IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, Connection, ServerConnection, State
from wsproto_tw.core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    HandshakeFailure,
    Opened,
    Ping,
    Pong,
    RequestReceived,
    TextMessage,
)
from wsproto_tw.errors import ConnectionClosed, Reject
from wsproto_tw.interfaces import IWebSocketApplication, IWebSocketTransport

_log = Logger(namespace="wsproto_tw")

_NO_PAUSES: frozenset[str] = frozenset()
# The pause that is the peer's doing (it does not read what we write); the
# others are ours, and suspend keepalive (a pong may wait unread).
_WRITES_ONLY: frozenset[str] = frozenset(("writes",))


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


@implementer(IWebSocketApplication)
class WebSocketApplication:
    """
    A base application that does nothing; subclass it and override what you
    need. C{self.transport} is the L{IWebSocketTransport}.
    """

    transport: Any = None

    def requestReceived(self, request: Any) -> Any:
        return None

    def connectionOpened(self, transport: Any) -> None:
        pass

    def textMessageReceived(self, text: str) -> Any:
        return None

    def binaryMessageReceived(self, data: bytes) -> Any:
        return None

    def pingReceived(self, payload: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        pass


@implementer(IWebSocketTransport, IConsumer, IPushProducer)
class WebSocketProtocol(Protocol):
    """
    One WebSocket connection over one stream transport, server or client.

    Build it through L{wsproto_tw.server.WebSocketServerFactory} or
    L{wsproto_tw.client.connectWebSocket}.

    Flow control, both ways:
      - inbound: reading from the socket stops while the application has
        paused it (L{pauseReading}), while more than
        C{Config.max_pending_messages} messages (or C{max_pending_bytes})
        wait for their handler's Deferred, and while the peer does not read
        what we write; the peer then feels TCP backpressure;
      - outbound: the protocol is the transport's push producer, so it knows
        when the transport's write buffer is full; it relays that to an
        application producer registered with L{registerProducer} (it is an
        C{IConsumer}: each C{write} is a binary message), fires
        L{whenDrained} Deferreds when the buffer drains, and fails the
        connection with 1008 when a peer that does not read lets more than
        C{Config.max_write_buffer} bytes pile up or keeps the buffer full
        for C{Config.write_buffer_timeout} seconds.
    """

    def __init__(
        self,
        application: Any,
        config: Config,
        clock: IReactorTime,
        makeCore: Callable[[float], Connection],
        onOpen: Deferred | None = None,
        onClose: Callable[[WebSocketProtocol], None] | None = None,
        overLimit: Callable[[], bool] | None = None,
    ) -> None:
        self._app = application
        self._config = config
        self._clock = clock
        self._makeCore = makeCore
        self._onOpen = onOpen
        self._onClose = onClose
        self._overLimit = overLimit
        # Every attribute is set here, even those Twisted sets later: then
        # all instances share one table of attribute names (CPython's
        # key-sharing instance dicts, up to 30 names), where an attribute
        # first set elsewhere would give each connection a dict of its own.
        self.factory: Any = None
        self.connected = 0
        self.transport: Any = None
        self._conn: Connection = None  # type: ignore[assignment]
        # The next deadline's entry in the clock's _SharedTimer.
        self._timers = _sharedTimer(clock)
        self._timer: list | None = None
        self._opened = False
        self._closing = False
        #: True while L{_deliver} runs: L{_flush} then waits for the
        #: caller's flush after the loop, so a batch of answers is one
        #: transport write.
        self._delivering = False
        self._abortCall: IDelayedCall | None = None
        self._startedAt = 0.0
        self.request: Any = None
        self.response: Any = None
        # Why reading is paused; the transport reads when this is empty.
        self._pauses: frozenset[str] = _NO_PAUSES
        self._pendingMessages = 0
        self._pendingBytes = 0
        # Outbound: the transport's write buffer is full while this is true.
        self._writePaused = False
        self._writtenWhilePaused = 0
        self._writeStall: IDelayedCall | None = None
        self._drained: list[Deferred] | None = None
        self._producer: Any = None
        self._streaming = True

    # -- IWebSocketTransport ---------------------------------------------

    @property
    def subprotocol(self) -> str | None:
        return self._conn.subprotocol

    @property
    def extensions(self) -> str | None:
        return self._conn.extensions

    @property
    def roundTripTime(self) -> float | None:
        return self._conn.rtt

    def sendText(self, text: str) -> None:
        self._conn.send_text(text)
        self._flush()

    def sendBinary(self, data: bytes) -> None:
        self._conn.send_binary(data)
        self._flush()

    def ping(self, payload: bytes = b"") -> None:
        self._conn.send_ping(payload)
        self._flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._conn.send_close(code, reason, now=self._clock.seconds())
        self._flush()

    def abortConnection(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()

    def goAway(self, code: int = 1001, reason: str = "going away") -> None:
        """
        Close for a server shutdown: open connections get a Close frame with
        C{code}, others are dropped.
        """
        if self._opened:
            self.close(code, reason)
        elif self.transport is not None:
            self.transport.abortConnection()

    def pauseReading(self) -> None:
        """
        Stop delivering messages and reading from the socket until
        L{resumeReading}.
        """
        self._pauseReading("application")

    def resumeReading(self) -> None:
        """
        Undo L{pauseReading}.
        """
        self._resumeReading("application")

    def whenDrained(self) -> Deferred:
        """
        @return: a Deferred that fires (with L{None}) once the transport's
            write buffer is no longer full: at once if it isn't.
        """
        if not self._writePaused:
            from twisted.internet.defer import succeed

            return succeed(None)
        d: Deferred = Deferred()
        if self._drained is None:
            self._drained = []
        self._drained.append(d)
        return d

    # -- IConsumer: an application producer streaming into the connection --

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register a producer whose C{write}s become binary messages; it is
        paused while the transport's write buffer is full.

        @raise RuntimeError: a producer is already registered.
        """
        if self._producer is not None:
            raise RuntimeError(f"a producer is already registered: {self._producer!r}")
        self._producer = producer
        self._streaming = bool(streaming)
        if self._streaming:
            if self._writePaused:
                producer.pauseProducing()
        else:
            self._clock.callLater(0, self._pull)

    def unregisterProducer(self) -> None:
        self._producer = None

    def write(self, data: bytes) -> None:
        """
        Send C{data} as one binary message (C{IConsumer}).
        """
        self.sendBinary(data)
        if self._producer is not None and not self._streaming and not self._writePaused:
            self._clock.callLater(0, self._pull)

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def _pull(self) -> None:
        if self._producer is not None and not self._streaming and not self._writePaused:
            self._producer.resumeProducing()

    # -- IPushProducer: the transport tells us its write buffer is full ----

    def pauseProducing(self) -> None:
        if self._writePaused:
            return
        self._writePaused = True
        self._writtenWhilePaused = 0
        if self._opened:
            # Before the connection opens, a full buffer is a TLS transport
            # holding the opening request until its own handshake is done:
            # pausing reading then would stall that handshake for good.
            self._pauseReading("writes")
        if self._producer is not None and self._streaming:
            self._producer.pauseProducing()
        timeout = self._config.write_buffer_timeout
        if timeout is not None:
            self._writeStall = self._clock.callLater(timeout, self._writeStalled, "peer is not reading")

    def resumeProducing(self) -> None:
        if not self._writePaused:
            return
        self._writePaused = False
        if self._writeStall is not None and self._writeStall.active():
            self._writeStall.cancel()
        self._writeStall = None
        drained, self._drained = self._drained or (), None
        for d in drained:
            d.callback(None)
        if self._producer is not None:
            if self._streaming:
                self._producer.resumeProducing()
            else:
                self._pull()
        self._resumeReading("writes")

    def stopProducing(self) -> None:
        pass  # connectionLost follows

    def _writeStalled(self, reason: str) -> None:
        self._writeStall = None
        self._conn.fail(1008, reason, now=self._clock.seconds())
        self._closing = True
        _log.info("dropping {peer}: {reason}", peer=_peer(self.transport), reason=reason)
        self.transport.abortConnection()

    # -- reading --------------------------------------------------------

    def _pauseReading(self, why: str) -> None:
        pauses = self._pauses
        if not pauses and self.transport is not None and not self._closing:
            self.transport.pauseProducing()
        if why != "writes" and (not pauses or pauses == _WRITES_ONLY) and self._conn is not None:
            # We stop reading by our own choice: the peer's pong may wait
            # unread meanwhile, so keepalive must not count against it.
            self._conn.pause_keepalive()
        self._pauses = pauses | {why}

    def _resumeReading(self, why: str) -> None:
        if why not in self._pauses:
            return
        self._pauses = pauses = self._pauses - {why}
        conn = self._conn
        if conn is None:
            return
        if why != "writes" and (not pauses or pauses == _WRITES_ONLY):
            conn.resume_keepalive(now=self._clock.seconds())
            if pauses:
                self._flush()  # re-arm the timer for the keepalive deadlines
        if pauses:
            return
        if not self._closing:
            self.transport.resumeProducing()
        # Deliver what was read before the pause.
        try:
            self._deliver()
        finally:
            self._flush()

    def getPeer(self) -> Any:
        return self.transport.getPeer()

    def getHost(self) -> Any:
        return self.transport.getHost()

    # -- Protocol --------------------------------------------------------

    def connectionMade(self) -> None:
        now = self._clock.seconds()
        self._startedAt = time.monotonic()
        self._conn = conn = self._makeCore(now)
        if isinstance(conn, ServerConnection):
            # The request the core parses carries the peer's address.
            conn.peer = self.transport.getPeer()
        self.transport.registerProducer(self, True)
        self._flush()

    def dataReceived(self, data: bytes) -> None:
        self._conn.receive_data(data, now=self._clock.seconds())
        try:
            self._deliver()
        finally:
            # What was sent before anything went wrong goes out too.
            self._flush()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        conn = self._conn
        if conn is None:
            return
        conn.receive_eof()
        self._deliver()
        if self._timer is not None:
            self._timers.cancel(self._timer)
        for call in (self._abortCall, self._writeStall):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._abortCall = self._writeStall = None
        drained, self._drained = self._drained or (), None
        for d in drained:
            d.errback(Failure(ConnectionClosed(conn.close_code, conn.close_reason, conn.was_clean)))
        if self._onOpen is not None:
            onOpen, self._onOpen = self._onOpen, None
            onOpen.errback(reason)
        closed = ConnectionClosed(conn.close_code, conn.close_reason, conn.was_clean)
        try:
            if self._opened:
                _log.info(
                    "closed {peer} {path} code={code} clean={clean} reason={reason!r}"
                    " subprotocol={subprotocol} after {duration:.1f}s",
                    peer=_peer(self.transport),
                    path=self.request.path if self.request is not None else "-",
                    code=closed.code,
                    clean=closed.wasClean,
                    reason=closed.reason,
                    subprotocol=conn.subprotocol,
                    duration=time.monotonic() - self._startedAt,
                )
                self._opened = False
                self._app.connectionLost(Failure(closed))
        finally:
            # The factory forgets the connection even if the application
            # failed in connectionLost.
            if self._onClose is not None:
                self._onClose(self)

    # -- the pump ----------------------------------------------------------

    def _deliver(self) -> None:
        """
        Hand every pending core event to the application. What it sends
        meanwhile is written by the caller's L{_flush}, once.
        """
        outer = self._delivering
        self._delivering = True
        try:
            while True:
                try:
                    self._deliverEvents()
                    return
                except Exception:
                    # An application callback raised: fail the connection,
                    # then go on with what is left (the failure's event).
                    self._applicationFailed(Failure())
        finally:
            self._delivering = outer

    def _applicationFailed(self, failure: Failure) -> None:
        """
        The application raised from a callback: log it, and fail the
        connection with 1011 (the caller flushes the Close frame).
        """
        _log.failure("application failed on {peer}", failure, peer=_peer(self.transport))
        self._conn.fail(1011, "internal error", now=self._clock.seconds())

    def _deliverEvents(self) -> None:
        app = self._app
        nextEvent = self._conn.next_event
        while not (self._pauses and self._opened):
            # While reading is paused, what was received waits in the core.
            event = nextEvent()
            if event is None:
                return
            kind = type(event)
            if kind is TextMessage:
                result = app.textMessageReceived(event.text)
                if result is not None:
                    self._pending(result, len(event.text))
            elif kind is BinaryMessage:
                result = app.binaryMessageReceived(event.data)
                if result is not None:
                    self._pending(result, len(event.data))
            elif kind is Ping:
                app.pingReceived(event.payload)
            elif kind is Pong:
                app.pongReceived(event.payload)
            elif kind is RequestReceived:
                self._negotiate(event)
            elif kind is Opened:
                self.response = event.response
                self._open()
            elif kind is HandshakeFailure:
                self._handshakeFailed(event.error)
            elif kind is ConnectionFailed:
                error = event.error
                if error is not None:
                    # A bug in the core: log its traceback.
                    _log.failure(
                        "failing {peer}: {code} {reason}",
                        Failure(error, type(error), error.__traceback__),
                        peer=_peer(self.transport),
                        code=event.code,
                        reason=event.reason,
                    )
                else:
                    _log.info(
                        "failing {peer}: {code} {reason}",
                        peer=_peer(self.transport),
                        code=event.code,
                        reason=event.reason,
                    )
            elif kind is CloseReceived:
                pass  # connectionLost reports the close

    def _pending(self, result: Any, size: int) -> None:
        """
        Count a message whose handler returned a Deferred until it fires, and
        stop reading past the high-water mark.
        """
        if not isinstance(result, Deferred) or result.called:
            return
        self._pendingMessages += 1
        self._pendingBytes += size
        config = self._config
        if self._pendingMessages > config.max_pending_messages or self._pendingBytes > config.max_pending_bytes:
            self._pauseReading("backlog")
        result.addBoth(self._settled, size)

    def _settled(self, result: Any, size: int) -> None:
        self._pendingMessages -= 1
        self._pendingBytes -= size
        if isinstance(result, Failure):
            _log.failure("application failed on a message", result)
        config = self._config
        if (
            "backlog" in self._pauses
            and self._pendingMessages <= config.max_pending_messages // 2
            and self._pendingBytes <= config.max_pending_bytes // 2
        ):
            self._resumeReading("backlog")

    def _flush(self) -> None:
        """
        Write what the core queued, close the transport if it asks, and keep
        the timer armed for its next deadline.
        """
        if self._delivering:
            return  # the caller of _deliver flushes once it is done
        conn = self._conn
        data = conn.data_to_send()
        if data:
            if self._writePaused:
                # The transport's buffer is full already: count what piles
                # up behind it.
                self._writtenWhilePaused += len(data)
                if self._writtenWhilePaused > self._config.max_write_buffer and not self._closing:
                    self._writeStalled("write buffer over its limit")
                    return
            self.transport.write(data)
        if conn.wants_transport_closed and not self._closing:
            self._closing = True
            # A registered producer would keep the transport from closing
            # once its buffer drains.
            self.transport.unregisterProducer()
            self.transport.loseConnection()
            # A peer that doesn't read can keep loseConnection waiting for
            # the write buffer forever: abort after the close timeout.
            self._abortCall = self._clock.callLater(
                self._config.close_timeout, self.transport.abortConnection
            )
        deadline = conn.next_deadline()
        # Deadlines only move later on the hot path: re-arm only for an
        # earlier one (entries start with their deadline).
        if deadline is not None and (self._timer is None or deadline < self._timer[0]):
            self._armTimer(deadline)

    def _armTimer(self, deadline: float) -> None:
        if self._timer is not None:
            self._timers.cancel(self._timer)
        self._timer = self._timers.schedule(deadline, self)

    def _timerFired(self) -> None:
        # Deadlines only move later on the hot path, so the timer is re-armed
        # lazily here rather than on every message.
        self._timer = None
        conn = self._conn
        conn.handle_timer(now=self._clock.seconds())
        try:
            self._deliver()
        finally:
            self._flush()

    # -- the opening handshake -------------------------------------------

    def _negotiate(self, event: RequestReceived) -> None:
        self.request = event.request
        if self._overLimit is not None and self._overLimit():
            self._conn.reject(503, "too many connections; try again later", (("Retry-After", "5"),))
            return
        d = maybeDeferred(self._app.requestReceived, self.request)
        d.addCallbacks(self._accept, self._reject)
        d.addErrback(self._negotiationFailed)
        if self._conn.state is State.CONNECTING:
            # The application answers later: read nothing meanwhile.
            self._pauseReading("negotiating")

    def _accept(self, result: Any) -> None:
        conn = self._conn
        if conn.state is not State.CONNECTING:
            return  # timed out or lost meanwhile
        assert isinstance(conn, ServerConnection)
        if result is None:
            result = Accept()
        if not isinstance(result, Accept):
            raise TypeError(f"requestReceived must return None or Accept, not {result!r}")
        conn.accept(result.subprotocol, result.headers, now=self._clock.seconds())
        self._flush()
        self._open()
        self._resumeReading("negotiating")

    def _reject(self, failure: Failure) -> None:
        conn = self._conn
        if conn.state is not State.CONNECTING:
            return
        assert isinstance(conn, ServerConnection)
        if failure.check(Reject):
            error = failure.value
            # A Reject with a status or headers that can't be sent raises
            # here, and _negotiationFailed answers 500.
            conn.reject(error.status, error.reason, error.headers)
        else:
            _log.failure("application failed in requestReceived", failure)
            conn.reject(500, "internal server error")
        self._resumeReading("negotiating")
        self._flush()

    def _negotiationFailed(self, failure: Failure) -> None:
        """
        Answering the request failed: the application's answer can't be sent
        (a subprotocol the client did not offer, a value that is not an
        L{Accept}, a header with a line break, a L{Reject} with a status that
        is not an error), or C{connectionOpened} raised. Answer 500 at once,
        or fail the connection with 1011 if it has opened.
        """
        _log.failure(
            "application failed answering the opening handshake from {peer}", failure, peer=_peer(self.transport)
        )
        conn = self._conn
        if conn.state is State.CONNECTING:
            assert isinstance(conn, ServerConnection)
            conn.reject(500, "internal server error")
        else:
            conn.fail(1011, "internal error", now=self._clock.seconds())
        self._resumeReading("negotiating")
        self._flush()

    def _open(self) -> None:
        self._opened = True
        _log.info(
            "opened {peer} {path} subprotocol={subprotocol}",
            peer=_peer(self.transport),
            path=self.request.path if self.request is not None else "-",
            subprotocol=self._conn.subprotocol,
        )
        self._app.transport = self
        self._app.connectionOpened(self)
        if self._onOpen is not None:
            onOpen, self._onOpen = self._onOpen, None
            onOpen.callback(self)

    def _handshakeFailed(self, error: Exception) -> None:
        _log.info(
            "handshake failed from {peer}: {error}",
            peer=_peer(self.transport),
            error=error,
        )
        if self._onOpen is not None:
            onOpen, self._onOpen = self._onOpen, None
            onOpen.errback(Failure(error))


class _SharedTimer:
    """
    One reactor timer for every connection on a clock. Each connection's
    next deadline waits in a heap and the clock holds one L{IDelayedCall},
    for the earliest: a connection that waits for its next keepalive ping
    costs a heap entry, not a delayed call of its own.

    An entry is a list C{[deadline, sequence, protocol]}; cancelling it
    forgets the protocol, and the entry leaves the heap when its time comes
    (or when cancelled entries pile up).
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._heap: list[list] = []
        self._live = 0
        self._sequence = 0
        self._call: IDelayedCall | None = None
        self._callAt: float | None = None

    def schedule(self, deadline: float, protocol: WebSocketProtocol) -> list:
        """
        Call C{protocol._timerFired()} at C{deadline}.

        @return: the entry, for L{cancel}.
        """
        self._sequence += 1
        entry = [deadline, self._sequence, protocol]
        heapq.heappush(self._heap, entry)
        self._live += 1
        if self._callAt is None or deadline < self._callAt:
            self._arm(deadline)
        return entry

    def cancel(self, entry: list) -> None:
        """
        Forget an entry that has not fired.
        """
        if entry[2] is None:
            return
        entry[2] = None
        self._live -= 1
        if self._live == 0:
            # Nothing left to wait for: leave the clock empty.
            self._heap.clear()
            self._disarm()
        elif len(self._heap) > 64 and len(self._heap) > 2 * self._live:
            self._heap = [e for e in self._heap if e[2] is not None]
            heapq.heapify(self._heap)

    def _arm(self, deadline: float) -> None:
        self._disarm()
        self._callAt = deadline
        self._call = self._clock.callLater(max(0.0, deadline - self._clock.seconds()), self._fire)

    def _disarm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = self._callAt = None

    def _fire(self) -> None:
        self._call = self._callAt = None
        now = self._clock.seconds()
        heap = self._heap
        due = []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap))
        # What the protocols schedule meanwhile waits for a later turn.
        for entry in due:
            protocol = entry[2]
            if protocol is not None:  # not cancelled by an earlier one
                entry[2] = None
                self._live -= 1
                try:
                    protocol._timerFired()
                except Exception:
                    # As the reactor would for a delayed call of its own:
                    # log it, and go on with the others.
                    _log.failure("timer of {protocol!r} failed", protocol=protocol)
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        if heap and (self._callAt is None or heap[0][0] < self._callAt):
            self._arm(heap[0][0])


_sharedTimers: weakref.WeakKeyDictionary[Any, _SharedTimer] = weakref.WeakKeyDictionary()


def _sharedTimer(clock: IReactorTime) -> _SharedTimer:
    """
    @return: the L{_SharedTimer} of C{clock}.
    """
    timer = _sharedTimers.get(clock)
    if timer is None:
        timer = _sharedTimers[clock] = _SharedTimer(clock)
    return timer


def _peer(transport: Any) -> str:
    try:
        address = transport.getPeer()
    except Exception:
        return "?"
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None:
        return f"{host}:{port}"
    return getattr(address, "name", None) or str(address)


def serverCore(config: Config) -> Callable[[float], Connection]:
    """
    @return: a factory of L{ServerConnection} cores for L{WebSocketProtocol}.
    """
    return lambda now: ServerConnection(config, now=now)


def clientCore(config: Config, **kwargs: Any) -> Callable[[float], Connection]:
    """
    @return: a factory of L{ClientConnection} cores for L{WebSocketProtocol}.
    """
    return lambda now: ClientConnection(config, now=now, **kwargs)
