# -*- test-case-name: tests.sockjs.test_transport -*-
"""
A SockJS session as the application sees it: L{SockJSSession} provides
L{IWebSocketTransport} over the sans-I/O L{Session
<wsproto_tw.sockjs.session.Session>}, with the flow objects of
L{wsproto_tw.flow}, so that the same application classes run over SockJS
as over a WebSocket.

Below it, I{sinks} carry its frames to the client: an HTTP response
(L{ResponseSink}) for the HTTP transports, or a WebSocket connection (the
C{websocket} transport, see L{wsproto_tw.sockjs.resource}).

What differs from a WebSocket, for the application:

  - SockJS carries text only: L{SockJSSession.sendBinary} (and
    C{IConsumer.write}) raise L{TypeError}; no binary message arrives;
  - SockJS has no frames: a text message sent in pieces
    (L{SockJSSession.beginMessage}) is buffered and sent whole by
    C{endMessage}, and a streaming application
    (L{IStreamingWebSocketApplication
    <wsproto_tw.interfaces.IStreamingWebSocketApplication>}) receives
    each message as one piece;
  - L{SockJSSession.ping} sends a heartbeat frame (C{h}); no pong comes
    back, so C{pongReceived} and C{pingReceived} are never called, and
    C{roundTripTime} stays L{None};
  - the application's close code goes to the client in the close frame;
    C{connectionLost} follows once that frame has been handed to a
    receiving request (clean), or when the session times out (5 s
    without a receiving request: 1006, unclean), or when a receiving
    request is cut off (1002, unclean);
  - C{subprotocol} and C{extensions} are L{None}.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw._timers import sharedTimer
from wsproto_tw.core.config import Config
from wsproto_tw.errors import ConnectionClosed, InvalidState
from wsproto_tw.flow import FlowControlled, InboundFlow, OutboundFlow, PauseReason
from wsproto_tw.interfaces import IStreamingWebSocketApplication, IWebSocketTransport
from wsproto_tw.sockjs.frames import Framing
from wsproto_tw.sockjs.session import Closed, MessageReceived, Opened, Receiver, Session, SessionConfig, SessionState
from wsproto_tw.wire import addressName

__all__ = ["ResponseSink", "SessionCounts", "SockJSSession"]

_log = Logger(namespace="wsproto_tw.sockjs")


class SessionCounts:
    """
    The SockJS sessions of this process, for L{wsproto_tw.metrics} (the
    C{sockjs} wire of C{connections_open} and C{connections_opened}):
    two plain integers, counted as sessions open and close.

    @cvar opened: sessions opened.
    @cvar closed: sessions that opened and then closed.
    """

    opened = 0
    closed = 0


class Sink(Protocol):
    """
    What carries one receiving request's frames.
    """

    def write(self, chunks: list[bytes]) -> None:
        """
        Send C{chunks}, one framed frame each.
        """

    def finish(self) -> None:
        """
        End the request: nothing more goes to it.
        """


class _SinkProducer:
    """
    The push producer half of a L{Sink} that has a write buffer: the
    buffer filling up (C{pauseProducing}) and draining
    (C{resumeProducing}) pauses and resumes the writes of the session
    attached, if any.

    @ivar session: the L{SockJSSession} the sink carries frames for, or
        L{None} before it is attached.
    """

    session: SockJSSession | None

    def pauseProducing(self) -> None:
        if self.session is not None:
            self.session._sinkPaused(True)

    def resumeProducing(self) -> None:
        if self.session is not None:
            self.session._sinkPaused(False)


@implementer(IPushProducer)
class ResponseSink(_SinkProducer):
    """
    The HTTP response of a receiving request: frames are written to it as
    they come, and the channel's backpressure (the client does not read)
    reaches the session as a paused write.

    @ivar request: the L{twisted.web.server.Request}.
    """

    def __init__(self, request: Any) -> None:
        self.request = request
        self.session: SockJSSession | None = None
        self.receiver: Receiver | None = None
        self._done = False
        request.notifyFinish().addBoth(self._lost)
        request.registerProducer(self, True)

    def write(self, chunks: list[bytes]) -> None:
        if not self._done:
            self.request.write(b"".join(chunks))

    def finish(self) -> None:
        if self._done:
            return
        self._done = True
        self.request.unregisterProducer()
        self.request.finish()

    def _lost(self, result: Any) -> None:
        if self._done:
            return
        # The client or the network dropped the request first.
        self._done = True
        if self.request.channel is not None:
            self.request.unregisterProducer()
        if self.session is not None and self.receiver is not None:
            self.session._sinkLost(self.receiver)

    # IPushProducer, for the channel (pausing and resuming are
    # _SinkProducer's).

    def stopProducing(self) -> None:
        pass  # notifyFinish reports the loss


@implementer(IWebSocketTransport, IConsumer)
class SockJSSession(FlowControlled):
    """
    One SockJS session, the application's L{IWebSocketTransport}.

    Flow control, as far as SockJS allows: L{pauseReading} holds the
    messages that arrive (and the answer to the request that sent them,
    so a client waits before it sends more); a handler's unfired Deferred
    counts against C{Config.max_pending_messages} as on a WebSocket.
    Writes count as paused (L{whenDrained}, a registered producer) while
    more than C{queue_high_water} characters wait for a receiving request,
    or while the receiving response's channel does not drain; a write
    buffer that stays full for C{Config.write_buffer_timeout} seconds
    fails the session with 1008.

    @ivar request: the L{HandshakeRequest <wsproto_tw.core.HandshakeRequest>}
        of the request that opened the session.
    @ivar response: always L{None}.
    @ivar subprotocol: always L{None}.
    @ivar extensions: always L{None}.
    @ivar roundTripTime: always L{None}.
    @ivar closed: whether the session is closed for the application (its
        C{connectionLost} was called, or is due).
    @ivar openedAt: when the session opened, in seconds on the reactor's
        clock, or L{None} until it opens.
    @ivar lastActivity: when a sending request (or the WebSocket) last
        brought messages, in seconds on the reactor's clock, or L{None}.
    """

    response = None
    subprotocol = None
    extensions = None
    roundTripTime = None

    __slots__ = (
        "_app", "_clock", "_core", "request", "_peer", "_host", "_onClose", "_inbound", "_outbound",
        "_sink", "_receiver", "_sinkFull", "_held", "_reading", "_timers", "_timer", "_opened", "_over",
        "_delivering", "_onLost", "closed", "openedAt", "lastActivity", "_streaming", "_pieces", "_piecesSize",
    )

    def __init__(
        self,
        application: Any,
        config: SessionConfig,
        webSocketConfig: Config,
        clock: IReactorTime,
        request: Any = None,
        peer: Any = None,
        host: Any = None,
        onClose: Any = None,
        onLost: Any = None,
    ) -> None:
        """
        @param application: the L{IWebSocketApplication
            <wsproto_tw.interfaces.IWebSocketApplication>}.
        @param config: the session's timings and limits.
        @param webSocketConfig: the flow-control limits
            (C{max_pending_messages}, C{max_pending_bytes},
            C{write_buffer_timeout}).
        @param clock: the L{IReactorTime} of every deadline.
        @param request: the opening request, for L{request}.
        @param peer: the client's address, for L{getPeer}.
        @param host: our address, for L{getHost}.
        @param onClose: called with the session once it is over.
        @param onLost: called with the session once the application has
            been told it is closed (C{connectionLost}).
        """
        self._app = application
        self._clock = clock
        self._core = Session(config, now=clock.seconds())
        self.request = request
        self._peer = peer
        self._host = host
        self._onClose = onClose
        self._onLost = onLost
        self.closed = False
        self.openedAt: float | None = None
        self.lastActivity: float | None = None
        self._inbound = InboundFlow(webSocketConfig)
        self._outbound = OutboundFlow(webSocketConfig, clock, self._writeStalled)
        self._sink: Any = None
        self._receiver: Receiver | None = None
        self._sinkFull = False
        # Made on first use: most sessions never hold a message back.
        self._held: deque[str] | None = None
        self._reading: list[Deferred] | None = None
        self._timers = sharedTimer(clock)
        self._timer: Any = None
        self._opened = False
        self._over = False
        self._delivering = False
        # Whether the application takes messages piece by piece.
        self._streaming = IStreamingWebSocketApplication.providedBy(application)
        # The pieces of a text message sent in pieces (beginMessage), or None.
        self._pieces: list[str] | None = None
        self._piecesSize = 0

    def __repr__(self) -> str:
        return f"<SockJSSession {self._core.state.value}>"

    # -- IWebSocketTransport ---------------------------------------------

    def sendText(self, text: str) -> None:
        if self._pieces is not None:
            raise InvalidState("a message is being sent in pieces: endMessage() first")
        self._core.send_text(text, now=self._clock.seconds())
        self._pump()

    def beginMessage(self, binary: bool = False) -> None:
        """
        Start a text message sent in pieces. SockJS has no frames: the
        pieces are kept and sent as one message by L{endMessage}.

        @raise TypeError: C{binary} is true: SockJS carries text only.
        @raise InvalidState: a message is already being sent in pieces.
        """
        if binary:
            raise TypeError("sockjs carries text messages only: begin a text message")
        if self._pieces is not None:
            raise InvalidState("a message is already being sent in pieces: endMessage() first")
        self._pieces = []

    def sendMessageData(self, data: str) -> None:
        """
        Keep the next piece of the message begun by L{beginMessage}.

        @raise InvalidState: no message was begun.
        @raise TypeError: C{data} is not a str.
        """
        pieces = self._pieces
        if pieces is None:
            raise InvalidState("no message is being sent in pieces: beginMessage() first")
        if not isinstance(data, str):
            raise TypeError(f"a text message's pieces are str, not {type(data).__name__}")
        if not data:
            return
        # Held until endMessage: bounded by max_queue_size with what is
        # queued; dropped once the session is no longer open.
        held = self._piecesSize + len(data)
        if not self._core.reserve(held, now=self._clock.seconds()):
            pieces.clear()
            self._piecesSize = 0
            self._pump()
            return
        pieces.append(data)
        self._piecesSize = held

    def endMessage(self, data: str | None = None) -> None:
        """
        Send the message begun by L{beginMessage}, its pieces and C{data}
        joined, as one SockJS message.

        @raise InvalidState: no message was begun.
        @raise TypeError: C{data} is not a str.
        """
        if data is not None:
            self.sendMessageData(data)
        elif self._pieces is None:
            raise InvalidState("no message is being sent in pieces: beginMessage() first")
        text = "".join(self._pieces)
        self._pieces = None
        self._piecesSize = 0
        self.sendText(text)

    def sendBinary(self, data: bytes) -> None:
        """
        @raise TypeError: always: SockJS carries text messages only. Send
            text (base64, say, if it must be bytes).
        """
        raise TypeError("sockjs carries text messages only: send text")

    def ping(self, payload: bytes = b"") -> None:
        """
        Send a heartbeat frame now; no pong comes back.
        """
        self._core.send_heartbeat(now=self._clock.seconds())
        self._pump()

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._core.close(code, reason, now=self._clock.seconds())
        self._pump()

    def abortConnection(self) -> None:
        """
        End the session at once: the receiving request ends, the client
        gets no close frame, C{connectionLost} reports 1006.
        """
        self._core.end(1006, "session aborted", was_clean=False)
        self._pump()

    def goAway(self, code: int = 1001, reason: str = "going away") -> None:
        if self._core.state in (SessionState.NEW, SessionState.OPEN):
            self.close(code, reason)

    def getPeer(self) -> Any:
        return self._peer

    def getHost(self) -> Any:
        return self._host

    # pauseReading, resumeReading, whenDrained and the IConsumer methods:
    # FlowControlled.

    # -- what the resource calls -----------------------------------------

    @property
    def state(self) -> SessionState:
        """
        The core's L{SessionState}.
        """
        return self._core.state

    def attach(self, sink: Any, framing: Framing) -> None:
        """
        A receiving request arrived: C{sink} carries its frames.
        """
        receiver = self._core.attach(framing, now=self._clock.seconds())
        sink.session = self
        sink.receiver = receiver
        if self._core.receiver is receiver:
            self._sink, self._receiver = sink, receiver
            self._sinkFull = False
        else:
            sink.write(receiver.data_to_send())
            sink.finish()
        self._pump()

    def receive(self, payload: bytes | str, allowEmpty: bool = False) -> Deferred:
        """
        A sending request (or the WebSocket) brought C{payload}.

        @return: a Deferred that fires once the session reads again: at
            once, unless the application paused reading.
        @raise wsproto_tw.sockjs.frames.SockJSRequestError: C{payload} is
            empty or not JSON strings; the request is answered with it.
        """
        self.lastActivity = now = self._clock.seconds()
        self._core.receive(payload, now=now, allow_empty=allowEmpty)
        self._pump()
        if not self._inbound.paused:
            return succeed(None)
        d: Deferred = Deferred()
        if self._reading is None:
            self._reading = []
        self._reading.append(d)
        return d

    def end(self, code: int, reason: str, wasClean: bool) -> None:
        """
        The session is over at once (its WebSocket is gone).
        """
        self._sink = self._receiver = None
        self._core.end(code, reason, was_clean=wasClean)
        self._pump()

    # -- sinks -----------------------------------------------------------

    def _sinkLost(self, receiver: Receiver) -> None:
        if receiver is self._receiver:
            self._sink = self._receiver = None
            self._sinkFull = False
        self._core.detach(receiver, now=self._clock.seconds())
        self._pump()

    def _sinkPaused(self, full: bool) -> None:
        self._sinkFull = full
        self._pump()

    # -- reading ---------------------------------------------------------

    def _pause(self, reason: PauseReason) -> None:
        stopReading, _ = self._inbound.pause(reason)
        if stopReading and self._sink is not None and hasattr(self._sink, "pauseReading"):
            self._sink.pauseReading()

    def _resume(self, reason: PauseReason) -> None:
        change = self._inbound.resume(reason)
        if change is None or not change[0]:
            return
        if self._sink is not None and hasattr(self._sink, "resumeReading"):
            self._sink.resumeReading()
        self._pump()
        if not self._inbound.paused:
            waiting, self._reading = self._reading or (), None
            for d in waiting:
                d.callback(None)

    # -- the pump --------------------------------------------------------

    def _pump(self) -> None:
        """
        Deliver the core's events to the application, write what it has
        for the attached sink, keep the outbound flow and the timer in
        step, and forget the session once it is over.
        """
        if self._delivering:
            return  # the outer call goes on
        self._delivering = True
        try:
            self._deliver()
            self._writeSink()
        finally:
            self._delivering = False
        if self._over:
            return
        core = self._core
        full = core.writes_paused or self._sinkFull
        if full and not self._outbound.paused:
            self._outbound.pause()
        elif not full and self._outbound.paused:
            self._outbound.resume()
        deadline = core.next_deadline()
        if self._timer is None or deadline is None or self._timer.deadline != deadline:
            if self._timer is not None:
                self._timers.cancel(self._timer)
                self._timer = None
            if deadline is not None:
                self._timer = self._timers.schedule(deadline, self)
        if core.state is SessionState.CLOSED:
            self._forget()

    def _deliver(self) -> None:
        core = self._core
        while True:
            events = core.events()
            if not events and not (self._held and not self._inbound.paused):
                return
            for event in events:
                if type(event) is MessageReceived:
                    if self._held is None:
                        self._held = deque()
                    self._held.append(event.text)
                elif type(event) is Opened:
                    self._open()
                elif type(event) is Closed:
                    self._deliverHeld()
                    self._closed(event)
            self._deliverHeld()
            self._writeSink()

    def _deliverHeld(self) -> None:
        held = self._held
        if held is None:
            return
        while held and not self._inbound.paused and not self._over:
            text = held.popleft()
            try:
                if self._streaming:
                    result = self._deliverPieces(text)
                else:
                    result = self._app.textMessageReceived(text)
            except Exception:
                self._applicationFailed(Failure())
                continue
            if isinstance(result, Deferred) and not result.called:
                if self._inbound.messagePending(len(text)):
                    self._pause(PauseReason.BACKLOG)
                result.addBoth(self._settled, len(text))

    def _deliverPieces(self, text: str) -> Any:
        """
        Hand a message to a streaming application, as one piece.

        @return: the Deferred of C{messageDataReceived} or C{messageEnded}
            that has not fired, if any, else L{None}.
        """
        app = self._app
        app.messageStarted(False)
        result = app.messageDataReceived(text) if text else None
        ended = app.messageEnded()
        if isinstance(result, Deferred) and not result.called:
            if isinstance(ended, Deferred) and not ended.called:
                return DeferredList([result, ended])
            return result
        return ended

    def _settled(self, result: Any, size: int) -> None:
        if isinstance(result, Failure):
            _log.failure("application failed on a message", result)
        if self._inbound.messageSettled(size):
            self._resume(PauseReason.BACKLOG)

    def _writeSink(self) -> None:
        receiver, sink = self._receiver, self._sink
        if receiver is None or sink is None:
            return
        chunks = receiver.data_to_send()
        if chunks:
            sink.write(chunks)
        if receiver.finished:
            # A finished response's channel no longer holds our writes.
            self._sink = self._receiver = None
            self._sinkFull = False
            sink.finish()

    def _open(self) -> None:
        self._opened = True
        self.openedAt = self._clock.seconds()
        SessionCounts.opened += 1
        _log.info("opened sockjs session {peer} {path}", peer=_address(self._peer), path=self._path())
        app = self._app
        app.transport = self
        try:
            app.connectionOpened(self)
        except Exception:
            self._applicationFailed(Failure())

    def _closed(self, event: Closed) -> None:
        self._held = None
        closed = ConnectionClosed(event.code, event.reason, event.was_clean)
        self._outbound.stop(Failure(closed))
        waiting, self._reading = self._reading or (), None
        for d in waiting:
            d.callback(None)
        self.closed = True
        _log.info(
            "closed sockjs session {peer} {path} code={code} clean={clean} reason={reason!r}",
            peer=_address(self._peer),
            path=self._path(),
            code=event.code,
            clean=event.was_clean,
            reason=event.reason,
        )
        if self._opened:
            self._opened = False
            SessionCounts.closed += 1
            try:
                self._app.connectionLost(Failure(closed))
            except Exception:
                _log.failure("application failed in connectionLost")
        if self._onLost is not None:
            self._onLost(self)

    def _path(self) -> str:
        return self.request.path if self.request is not None else "-"

    def _applicationFailed(self, failure: Failure) -> None:
        _log.failure("application failed on a sockjs session", failure)
        self._core.close(1011, "internal error", now=self._clock.seconds())

    def _writeStalled(self, reason: str) -> None:
        _log.info("dropping a sockjs session: {reason}", reason=reason)
        self._core.end(1008, reason, was_clean=False)
        self._pump()

    def _timerFired(self) -> None:
        self._timer = None
        self._core.handle_timer(now=self._clock.seconds())
        self._pump()

    def _forget(self) -> None:
        self._over = True
        if self._timer is not None:
            self._timers.cancel(self._timer)
            self._timer = None
        if self._onClose is not None:
            self._onClose(self)


def _address(address: Any) -> str:
    """
    @return: C{address} as L{addressName} writes it (C{host:port},
        C{[host]:port} for IPv6), or C{?} without a host.
    """
    return addressName(address) if getattr(address, "host", None) is not None else "?"
