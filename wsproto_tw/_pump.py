# -*- test-case-name: tests.test_protocol -*-
"""
The pump of a WebSocket connection: what moves between its wire, its
sans-I/O core and its application. L{WebSocketConnection
<wsproto_tw.connection.WebSocketConnection>} adds, on top of it, what the
application calls.

It feeds the bytes a wire receives to the core, hands the core's events to
the application (the server and client differences live in a L{_Role}),
writes the core's bytes to the wire, closes the wire when the core asks,
keeps one deadline in the reactor's L{SharedTimer
<wsproto_tw._timers.SharedTimer>}, and pauses and resumes the wire as the
flow objects (L{wsproto_tw.flow}) decide. It parses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from wsproto_tw._timers import sharedTimer
from wsproto_tw.core.codes import CloseCode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import Connection, ServerConnection
from wsproto_tw.core.handshake import PeerSource
from wsproto_tw.core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    HandshakeFailure,
    MessageData,
    MessageEnded,
    MessageStarted,
    Opened,
    Ping,
    Pong,
    RequestReceived,
    TextMessage,
)
from wsproto_tw.errors import ConnectionClosed
from wsproto_tw.flow import InboundFlow, OutboundFlow, PauseReason
from wsproto_tw.interfaces import IStreamingWebSocketApplication
from wsproto_tw.logs import FastLogger
from wsproto_tw.wire import addressName

__all__ = ["Pump"]

_log = FastLogger(namespace="wsproto_tw")


class _Role:
    """
    What differs between the server and the client side of a connection;
    the base does nothing. L{wsproto_tw.server} and L{wsproto_tw.client}
    subclass it.
    """

    __slots__ = ()

    def requestReceived(self, connection: Any, event: RequestReceived) -> None:
        """
        Server: the opening request arrived; answer it through the core.
        """

    def opened(self, connection: Any) -> None:
        """
        The connection opened and the application's C{connectionOpened} ran.
        """

    def handshakeFailed(self, connection: Any, error: Exception) -> None:
        """
        The opening handshake failed with C{error}.
        """

    def wireLost(self, connection: Any, reason: Failure) -> None:
        """
        The wire is gone; the core has not been told yet.
        """

    def lost(self, connection: Any, reason: Failure) -> None:
        """
        The wire is gone and the core's last events were delivered; the
        application has not been told yet.
        """


class _Abort:
    """
    A L{SharedTimer <wsproto_tw._timers.SharedTimer>} owner that aborts a
    wire when its entry falls due.
    """

    __slots__ = ("_timerFired",)

    def __init__(self, wire: Any) -> None:
        self._timerFired = wire.abortConnection


class Pump(PeerSource):
    """
    The wire-facing half of a connection (its C{IWireReceiver} methods)
    and the loop between wire, core and application. Not used on its own:
    L{WebSocketConnection <wsproto_tw.connection.WebSocketConnection>} is
    the class to build.
    """

    # Slots are laid out in this order: those every send reads come first,
    # side by side (a broadcast reads them for each of many connections).
    __slots__ = (
        "_conn",
        "wire",
        "_delivering",
        "_outflow",
        "writesPausedSince",
        "_app",
        "_config",
        "_clock",
        "_makeCore",
        "_role",
        "_onClose",
        "request",
        "response",
        "factory",
        "openedAt",
        "lastActivity",
        "_timer",
        "_opened",
        "_closing",
        "_abortCall",
        "_inflow",
        "__weakref__",
    )

    def __init__(
        self,
        application: Any,
        config: Config,
        clock: IReactorTime,
        makeCore: Callable[[float], Connection],
        role: _Role | None = None,
        onClose: Callable[[Any], None] | None = None,
    ) -> None:
        """
        @param application: the L{IWebSocketApplication}.
        @param config: the limits and policies.
        @param clock: the L{IReactorTime} for every deadline.
        @param makeCore: called with the current time (seconds, on
            C{clock}) when the wire connects; returns the core.
        @param role: what the server or the client side adds.
        @param onClose: called with the connection once it is gone.
        """
        self._app = application
        self._config = config
        self._clock = clock
        self._makeCore = makeCore
        self._role = role if role is not None else _Role()
        self._onClose = onClose
        self.wire: Any = None
        self.request: Any = None
        self.response: Any = None
        self.factory: Any = None
        self.openedAt: float | None = None
        self.lastActivity: float | None = None
        self.writesPausedSince: float | None = None
        self._conn: Connection = None  # type: ignore[assignment]
        # The next deadline's entry in the clock's SharedTimer (looked up
        # when a deadline is scheduled or cancelled, not kept per
        # connection).
        self._timer: Any = None
        self._opened = False
        self._closing = False
        #: True while L{_deliver} runs: L{_flush} then waits for the
        #: caller's flush after the loop, so a batch of answers is one
        #: wire write.
        self._delivering = False
        # The SharedTimer entry that aborts the wire once it is closing.
        self._abortCall: list | None = None
        # The flow objects are made the first time something needs them
        # (most connections never pause either way): see _inbound and
        # _outbound.
        self._inflow: InboundFlow | None = None
        self._outflow: OutboundFlow | None = None

    @property
    def transport(self) -> Any:
        """
        The wire's own Twisted transport, or L{None} before the wire
        connects.
        """
        wire = self.wire
        return None if wire is None else wire.transport

    @property
    def _inbound(self) -> InboundFlow:
        """
        The L{InboundFlow}, made at the first use.
        """
        inflow = self._inflow
        if inflow is None:
            inflow = self._inflow = InboundFlow(self._config)
        return inflow

    @property
    def _outbound(self) -> OutboundFlow:
        """
        The L{OutboundFlow}, made at the first use.
        """
        outflow = self._outflow
        if outflow is None:
            outflow = self._outflow = OutboundFlow(self._config, self._clock, self._writeStalled)
        return outflow

    # -- IWireReceiver ---------------------------------------------------

    def wireConnected(self, wire: Any) -> None:
        self.wire = wire
        now = self._clock.seconds()
        self._conn = conn = self._makeCore(now)
        if IStreamingWebSocketApplication.providedBy(self._app):
            # The application takes messages piece by piece.
            conn.stream_messages = True
        if isinstance(conn, ServerConnection):
            # The request the server core parses carries the peer's address,
            # asked of the wire (peer_address) only if someone reads it.
            # A wire that can tell the address itself is the source: it does
            # not refer back to this connection once lost (no cycle).
            conn.peer = wire if isinstance(wire, PeerSource) else self
        self._flush()

    def bytesReceived(self, data: bytes) -> None:
        self.lastActivity = now = self._clock.seconds()
        self._conn.receive_data(data, now=now)
        try:
            self._deliver()
        finally:
            # What was sent before anything went wrong goes out too.
            self._flush()

    def receiveBuffer(self, minimum: int, maximum: int) -> memoryview | None:
        """
        Where the wire may receive the next bytes straight into place: the
        core's L{receive_buffer
        <wsproto_tw.core.connection.Connection.receive_buffer>}, unless
        reading is paused or the wire is closing.

        @return: a writable memoryview of C{minimum} to C{maximum} bytes,
            to be released before L{bytesReceivedInto}; or L{None}: the
            bytes are to come through L{bytesReceived}.
        """
        inflow = self._inflow
        if self._closing or (inflow is not None and inflow.paused) or self._conn is None:
            return None
        return self._conn.receive_buffer(minimum, maximum)

    def bytesReceivedInto(self, n: int) -> None:
        """
        The wire received C{n} bytes into the view L{receiveBuffer}
        returned (and released it).
        """
        self.lastActivity = now = self._clock.seconds()
        self._conn.receive_into_buffer(n, now=now)
        try:
            self._deliver()
        finally:
            self._flush()

    def writesPaused(self) -> None:
        if not self._outbound.pause():
            return
        self.writesPausedSince = self._clock.seconds()
        if self._opened and not getattr(self.wire, "readsWhileWritesWait", False):
            # Before the connection opens, a full buffer is a TLS transport
            # holding the opening request until its own handshake is done:
            # pausing reading then would stall that handshake for good.
            self._pause(PauseReason.WRITES)

    def writesResumed(self) -> None:
        outflow = self._outflow
        if outflow is not None and outflow.resume():
            self.writesPausedSince = None
            self._resume(PauseReason.WRITES)

    def readLost(self) -> None:
        # The peer half-closed: the core parses what it sent, goes CLOSED
        # and asks for the wire to close, after what is queued (our answer
        # to its Close, say) has been written (RFC 6455 section 7.1.1).
        conn = self._conn
        if conn is None:
            return
        conn.receive_eof()
        try:
            self._deliver()
        finally:
            self._closeWire()
            self._flush()

    def wireLost(self, reason: Failure) -> None:
        conn = self._conn
        if conn is None:
            return
        self._role.wireLost(self, reason)
        conn.receive_eof()
        if conn.has_unread():
            # (Usually nothing: the closing handshake's events were
            # delivered as it was read.)
            self._deliver()
        if self._timer is not None or self._abortCall is not None:
            timers = sharedTimer(self._clock)
            if self._timer is not None:
                timers.cancel(self._timer)
            if self._abortCall is not None:
                timers.cancel(self._abortCall)
            self._timer = self._abortCall = None
        closed = ConnectionClosed(*conn.close_status())
        failure = Failure(closed)  # one for the Deferreds and the application
        if self._outflow is not None:
            self._outflow.stop(failure)
        self._role.lost(self, reason)
        try:
            if self._opened:
                _log.info(
                    "closed {peer} {path} code={code} clean={clean} reason={reason!r}"
                    " subprotocol={subprotocol} after {duration:.1f}s",
                    peer=self._peerName(),
                    path=self.request.path if self.request is not None else "-",
                    code=closed.code,
                    clean=closed.wasClean,
                    reason=closed.reason,
                    subprotocol=conn.subprotocol,
                    duration=self._clock.seconds() - self.openedAt,
                )
                self._opened = False
                self._app.connectionLost(failure)
        finally:
            # The factory forgets the connection even if the application
            # failed in connectionLost.
            if self._onClose is not None:
                self._onClose(self)
            # The application is told nothing more: the link to it goes,
            # so that the application and the connection (its transport,
            # which refers back to it) are freed by reference counting as
            # soon as they are let go, not by the cyclic garbage collector.
            self._app = None

    # -- reading ---------------------------------------------------------

    def _pause(self, reason: PauseReason) -> None:
        stopReading, suspendKeepalive = self._inbound.pause(reason)
        if stopReading and self.wire is not None and not self._closing:
            self._conn.stats.read_paused(reason.name)
            self.wire.pauseReading()
        if suspendKeepalive and self._conn is not None:
            # We stop reading by our own choice: the peer's pong may wait
            # unread meanwhile, so keepalive must not count against it.
            self._conn.pause_keepalive()

    def _resume(self, reason: PauseReason) -> None:
        inflow = self._inflow
        change = None if inflow is None else inflow.resume(reason)
        conn = self._conn
        if change is None or conn is None:
            return
        startReading, resumeKeepalive = change
        if resumeKeepalive:
            conn.resume_keepalive(now=self._clock.seconds())
            if not startReading:
                self._flush()  # re-arm the timer for the keepalive deadlines
        if not startReading:
            return
        if not self._closing:
            self.wire.resumeReading()
        # Deliver what was read before the pause.
        try:
            self._deliver()
        finally:
            self._flush()

    # -- the pump --------------------------------------------------------

    def _deliver(self) -> None:
        """
        Hand every pending core event to the application. What it sends
        meanwhile is written by the caller's L{_flush}, once (but see the
        lone message below).
        """
        outer = self._delivering
        self._delivering = True
        try:
            while True:
                app = self._app
                conn = self._conn
                try:
                    while True:
                        # While reading is paused, what was received waits in the core
                        # (a callback may have made the flow object meanwhile).
                        inflow = self._inflow
                        if inflow is not None and inflow.paused and self._opened:
                            return
                        event = conn.next_event()
                        if event is None:
                            return
                        kind = type(event)
                        if kind is TextMessage or kind is BinaryMessage:
                            if kind is TextMessage:
                                payload = event.text
                                result = app.textMessageReceived(payload)
                            else:
                                payload = event.data
                                result = app.binaryMessageReceived(payload)
                            if result is not None:
                                self._pending(result, len(payload))
                            pieces = conn.data_to_send_if_read()
                            if pieces is not None:
                                # Nothing else was received (next_event would parse
                                # nothing): what the application queued is written
                                # now, and the delivery ends. The answer to a message
                                # that came alone goes out before the pump looks at
                                # deadlines or returns to the reactor (its latency);
                                # the caller's _flush does the rest (closing, the
                                # timer). Answers to messages read together still go
                                # out in one write, from that _flush.
                                if len(pieces) == 1 and self._outflow is None:
                                    self.wire.write(pieces[0])
                                elif pieces:
                                    self._write(pieces)
                                return
                        elif kind is MessageData:
                            result = app.messageDataReceived(event.data)
                            if result is not None:
                                self._pending(result, len(event.data))
                        # The opening and closing handshakes' events (one
                        # each per connection) come before those a message
                        # has one of, or none.
                        elif kind is RequestReceived:
                            self.request = event.request
                            self._role.requestReceived(self, event)
                            if not conn.has_unread():
                                # (The usual case: the client waits for the
                                # answer before it sends a frame.)
                                return
                        elif kind is CloseReceived:
                            pass  # wireLost reports the close
                        elif kind is MessageStarted:
                            app.messageStarted(event.binary)
                        elif kind is MessageEnded:
                            result = app.messageEnded()
                            if result is not None:
                                self._pending(result, 0)
                        elif kind is Ping:
                            app.pingReceived(event.payload)
                        elif kind is Pong:
                            app.pongReceived(event.payload)
                        elif kind is Opened:
                            self.response = event.response
                            self._open()
                        elif kind is HandshakeFailure:
                            _log.info("handshake failed from {peer}: {error}", peer=_peer(self.wire), error=event.error)
                            self._role.handshakeFailed(self, event.error)
                        elif kind is ConnectionFailed:
                            self._logFailure(event)
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
        _log.failure("application failed on {peer}", failure, peer=_peer(self.wire))
        self._conn.fail(CloseCode.INTERNAL_ERROR, "internal error", now=self._clock.seconds())

    def _logFailure(self, event: ConnectionFailed) -> None:
        error = event.error
        if error is not None:
            # A bug in the core: log its traceback.
            _log.failure(
                "failing {peer}: {code} {reason}",
                Failure(error, type(error), error.__traceback__),
                peer=_peer(self.wire),
                code=event.code,
                reason=event.reason,
            )
        else:
            _log.info("failing {peer}: {code} {reason}", peer=_peer(self.wire), code=event.code, reason=event.reason)

    def _pending(self, result: Any, size: int) -> None:
        """
        Count a message whose handler returned a Deferred until it fires, and
        stop reading past the high-water mark.
        """
        if not isinstance(result, Deferred) or result.called:
            return
        if self._inbound.messagePending(size):
            self._pause(PauseReason.BACKLOG)
        result.addBoth(self._settled, size)

    def _settled(self, result: Any, size: int) -> None:
        if isinstance(result, Failure):
            _log.failure("application failed on a message", result)
        if self._inbound.messageSettled(size):
            self._resume(PauseReason.BACKLOG)

    def _flush(self) -> None:
        """
        Write what the core queued, close the wire if the core asks, and
        keep the timer armed for its next deadline.
        """
        if self._delivering:
            return  # the caller of _deliver flushes once it is done
        conn = self._conn
        pieces = conn.data_to_send_pieces()
        if pieces:
            if len(pieces) == 1 and self._outflow is None:
                self.wire.write(pieces[0])  # _write's common case, inline
            elif not self._write(pieces):
                return
        if conn.wants_transport_closed:
            self._closeWire()
            if self._app is None:
                return  # lost at once (wireLost ran): no deadline is left
        deadline = conn.next_deadline()
        # Deadlines only move later on the hot path: re-arm only for an
        # earlier one (entries start with their deadline).
        if deadline is not None:
            timer = self._timer
            if timer is None:
                self._timer = sharedTimer(self._clock).schedule(deadline, self)
            elif deadline < timer.deadline:
                timers = sharedTimer(self._clock)
                timers.cancel(timer)
                self._timer = timers.schedule(deadline, self)

    def _write(self, pieces: list[bytes]) -> bool:
        """
        Write C{pieces} to the wire.

        @return: C{False} if the write buffer went over its limit instead
            (the connection is then failed).
        """
        if len(pieces) == 1:
            data = pieces[0]
            size = len(data)
        else:
            # A large payload is a piece of its own (not copied behind its
            # frame header): a wire that can, writes it as it is.
            data = None
            size = sum(map(len, pieces))
        outflow = self._outflow
        if outflow is not None and outflow.overLimit(size) and not self._closing:
            # The wire's buffer was full already and more than
            # max_write_buffer piled up behind it.
            self._writeStalled("write buffer over its limit")
            return False
        if data is not None:
            self.wire.write(data)
        else:
            writeSequence = getattr(self.wire, "writeSequence", None)
            if writeSequence is None:
                self.wire.write(b"".join(pieces))
            else:
                writeSequence(pieces)
        return True

    def _flushSent(self) -> None:
        """
        L{_flush} after the application queued a data message (or a piece of
        one): the hot path of sending, and of each recipient of a
        broadcast. Queuing data never asks the core to close the wire nor
        brings a deadline forward (the core's deadlines are the opening and
        closing handshakes' and the keepalive's, which sending does not
        move), so only the bytes are written; anything else takes the
        general path.
        """
        if self._delivering:
            return  # the caller of _deliver flushes once it is done
        pieces = self._conn.data_to_send_pieces()
        if len(pieces) == 1 and self._outflow is None:
            self.wire.write(pieces[0])
        elif pieces:
            self._write(pieces)

    def _closeWire(self) -> None:
        """
        Close the wire once what was written has gone out (once).
        """
        if self._closing:
            return
        self._closing = True
        self.wire.loseConnection()
        if self._app is None:
            return  # closed at once: wireLost has run
        # A peer that doesn't read can keep loseConnection waiting for the
        # write buffer forever: abort after the close timeout (an entry in
        # the shared timer, not a delayed call of its own).
        self._abortCall = sharedTimer(self._clock).schedule(
            self._clock.seconds() + self._config.close_timeout, _Abort(self.wire)
        )

    def _timerFired(self) -> None:
        # Deadlines only move later on the hot path, so the timer is re-armed
        # lazily here rather than on every message.
        self._timer = None
        self._conn.handle_timer(now=self._clock.seconds())
        try:
            self._deliver()
        finally:
            self._flush()

    def _writeStalled(self, reason: str) -> None:
        self._conn.fail(CloseCode.POLICY_VIOLATION, reason, now=self._clock.seconds())
        self._conn.stats.slow_consumer_drops = 1
        self._closing = True
        _log.info("dropping {peer}: {reason}", peer=_peer(self.wire), reason=reason)
        self.wire.abortConnection()

    def _open(self, now: float | None = None) -> None:
        """
        The connection opened.

        @param now: when, in seconds on the clock, or L{None} for the
            clock's current time.
        """
        self._opened = True
        self.openedAt = self._clock.seconds() if now is None else now
        _log.info(
            "opened {peer} {path} subprotocol={subprotocol}",
            peer=self._peerName(),
            path=self.request.path if self.request is not None else "-",
            subprotocol=self._conn.subprotocol,
        )
        self._app.transport = self
        self._app.connectionOpened(self)
        self._role.opened(self)

    def peer_address(self) -> Any:
        """
        The peer's address, for the server core (L{PeerSource}): asked of
        the wire the first time someone reads it.
        """
        return self.wire.getPeer()

    def _peerName(self) -> str:
        """
        L{_peer} of the wire, or of the address the server core was given
        if that is not the wire's own (read without asking for it: a log
        line makes no address object to keep).
        """
        address = getattr(self._conn, "_peer", None)
        if address is None or isinstance(address, PeerSource):
            return _peer(self.wire)
        return addressName(address)


def _peer(wire: Any) -> str:
    """
    @return: the peer's address as C{host:port}, a socket path, or C{?}:
        the wire's C{peerName()} if it has one, else what
        L{wsproto_tw.wire.addressName} makes of its C{getPeer()}.
    """
    try:
        peerName = getattr(wire, "peerName", None)
        if peerName is not None:
            return peerName()
        address = wire.getPeer()
    except Exception:
        return "?"
    return addressName(address)
