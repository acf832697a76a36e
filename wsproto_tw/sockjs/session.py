# -*- test-case-name: tests.sockjs.test_session -*-
"""
One SockJS session on the server, sans-I/O: which request receives its
frames, what waits for the next one, and its deadlines. Time arrives as
C{now} (seconds, on the caller's clock); nothing here reads a clock,
imports Twisted or does I/O.

A session outlives the HTTP requests that carry it. Each I{receiving}
request (an C{xhr} poll, an C{xhr_streaming}, C{eventsource} or
C{htmlfile} stream, a C{jsonp} poll, or a WebSocket) is L{attached
<Session.attach>} as a L{Receiver}; what the application sends goes to
the attached receiver, or waits in a bounded queue for the next one. Only
one receiver may be attached at a time: another gets
C{c[2010,"Another connection still open"]}. Requests that send (C{xhr_send},
C{jsonp_send}) hand their body to L{Session.receive}.

Deadlines (L{SessionConfig}):

  - a heartbeat frame C{h} goes to an attached receiver that was sent
    nothing for C{heartbeat_interval} seconds (25 by default);
  - a session with no receiver attached for C{disconnect_delay} seconds (5
    by default) is over: the client has gone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wsproto_tw.sockjs.frames import (
    ANOTHER_CONNECTION,
    CLOSE_INTERRUPTED,
    HEARTBEAT,
    OPEN,
    Framing,
    close_frame,
    decode_messages,
    messages_frame,
)

__all__ = [
    "Closed",
    "MessageReceived",
    "Opened",
    "Receiver",
    "Session",
    "SessionConfig",
    "SessionState",
    "check_close_code",
]


@dataclass(frozen=True)
class SessionConfig:
    """
    The protocol's timings and the limits of one session.

    @ivar heartbeat_interval: seconds without a frame after which an
        attached receiver is sent C{h}; L{None} for no heartbeat.
    @ivar disconnect_delay: seconds a session is kept without a receiving
        request before it is over.
    @ivar response_limit: bytes a streaming response carries (after its
        prelude) before it ends, so that the client, which keeps the whole
        response in memory, opens a new one.
    @ivar max_queue_size: characters of messages that may wait for a
        receiver; past it the session fails with 1008.
    @ivar queue_high_water: characters waiting above which the session
        reports its writes paused (L{Session.writes_paused}).
    @raise ValueError: a value is out of range.
    """

    heartbeat_interval: float | None = 25.0
    disconnect_delay: float = 5.0
    response_limit: int = 128 * 1024
    max_queue_size: int = 1 << 20
    queue_high_water: int = 64 * 1024

    def __post_init__(self) -> None:
        if self.heartbeat_interval is not None and self.heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive or None")
        if self.disconnect_delay <= 0:
            raise ValueError("disconnect_delay must be positive")
        if self.response_limit <= 0:
            raise ValueError("response_limit must be positive")
        if not 0 < self.queue_high_water <= self.max_queue_size:
            raise ValueError("queue_high_water must be positive and at most max_queue_size")


class SessionState(enum.Enum):
    """
    Where a session is.

    @cvar NEW: created; the open frame has not been sent.
    @cvar OPEN: open; messages flow both ways.
    @cvar CLOSING: closed, by the application or by a failure: every
        receiving request gets the close frame until the disconnect delay
        passes.
    @cvar CLOSED: over; forget it.
    """

    NEW = "new"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True)
class Opened:
    """
    The open frame went out: the application may send.
    """


@dataclass(frozen=True)
class MessageReceived:
    """
    The client sent a message.

    @ivar text: the message.
    """

    text: str


@dataclass(frozen=True)
class Closed:
    """
    The session is closed for the application (reported once).

    @ivar code: the close code.
    @ivar reason: the close reason.
    @ivar was_clean: whether the close frame reached a receiving request.
    """

    code: int
    reason: str
    was_clean: bool


def check_close_code(code: int) -> None:
    """
    @raise ValueError: C{code} is not one an application may close with:
        1000 to 4999, except 1005, 1006 and 1015, which mean that no close
        code was sent.
    """
    if not isinstance(code, int) or not 1000 <= code <= 4999 or code in (1005, 1006, 1015):
        raise ValueError(f"invalid close code: {code!r}")


class Receiver:
    """
    One request that carries frames to the client.

    @ivar framing: the transport's L{Framing}.
    @ivar finished: whether the request must now end (after what
        L{data_to_send} returns); nothing more is written to it.
    @ivar sent: bytes of frames written, after the prelude.
    """

    __slots__ = ("framing", "finished", "sent", "_chunks", "_limit")

    def __init__(self, framing: Framing, limit: int | None) -> None:
        self.framing = framing
        self.finished = False
        self.sent = 0
        self._limit = limit
        self._chunks: list[bytes] = [framing.prelude] if framing.prelude else []

    def data_to_send(self) -> list[bytes]:
        """
        @return: what to write to the request since the last call, one
            chunk per frame (the prelude first); a WebSocket sends each as
            one text message.
        """
        chunks, self._chunks = self._chunks, []
        return chunks

    def _write(self, frame: str) -> None:
        chunk = self.framing.encode(frame)
        self._chunks.append(chunk)
        self.sent += len(chunk)
        if not self.framing.streaming or (self._limit is not None and self.sent >= self._limit):
            self.finished = True


class Session:
    """
    The state of one SockJS session.

    @ivar state: the L{SessionState}.
    @ivar queued: characters of messages waiting for a receiver.
    """

    __slots__ = (
        "_config", "state", "queued", "_queue", "_receiver", "_close", "_reported", "_events",
        "_disconnect_at", "_heartbeat_at",
    )

    def __init__(self, config: SessionConfig, *, now: float) -> None:
        self._config = config
        self.state = SessionState.NEW
        self.queued = 0
        self._queue: list[str] = []
        self._receiver: Receiver | None = None
        self._close: tuple[int, str] | None = None
        self._reported = False
        self._events: list[object] = []
        self._disconnect_at: float | None = now + config.disconnect_delay
        self._heartbeat_at: float | None = None

    # -- receiving requests -----------------------------------------------

    def attach(self, framing: Framing, *, now: float) -> Receiver:
        """
        A receiving request arrived.

        @param framing: how its transport carries frames.
        @return: the request's L{Receiver}: it gets the open frame if the
            session is new, what waits in the queue, or the close frame;
            C{c[2010,"Another connection still open"]} if another request
            is attached already (the session is left as it was).
        """
        limit = self._config.response_limit if framing.bounded else None
        receiver = Receiver(framing, limit)
        if self._receiver is not None:
            receiver._write(ANOTHER_CONNECTION)
            receiver.finished = True
            return receiver
        if self.state is SessionState.CLOSED:
            receiver._write(close_frame(*(self._close or CLOSE_INTERRUPTED)))
            receiver.finished = True
            return receiver
        self._receiver = receiver
        self._disconnect_at = None
        if self.state is SessionState.NEW:
            self.state = SessionState.OPEN
            self._events.append(Opened())
            receiver._write(OPEN)
        self._pump(now)
        return receiver

    def detach(self, receiver: Receiver, *, now: float) -> None:
        """
        A receiving request was cut off before it finished (the client or
        the network dropped it): a session that was open is closed with
        C{c[1002,"Connection interrupted"]}, since frames may have been
        lost.
        """
        if receiver is not self._receiver or receiver.finished:
            return
        receiver.finished = True
        receiver._chunks.clear()
        self._detached(now)
        if self.state is SessionState.OPEN:
            self._fail(*CLOSE_INTERRUPTED, now=now)

    def _detached(self, now: float) -> None:
        self._receiver = None
        self._heartbeat_at = None
        self._disconnect_at = now + self._config.disconnect_delay

    # -- messages ---------------------------------------------------------

    def receive(self, payload: bytes | str, *, now: float, allow_empty: bool = False) -> None:
        """
        The client sent C{payload}: a JSON array of messages, or one JSON
        string. An open session reports each as a L{MessageReceived};
        another ignores them.

        @raise wsproto_tw.sockjs.frames.PayloadExpected: C{payload} is empty
            (unless C{allow_empty}).
        @raise wsproto_tw.sockjs.frames.BrokenJSON: it is not JSON strings.
        """
        messages = decode_messages(payload, allow_empty=allow_empty)
        if self.state is SessionState.OPEN:
            self._events.extend(MessageReceived(text) for text in messages)

    def send_text(self, text: str, *, now: float) -> None:
        """
        Send a message: to the attached receiver, or queued for the next
        one. Past C{max_queue_size} characters queued, the session fails
        with 1008. Dropped unless the session is open.

        @raise TypeError: C{text} is not a str.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        if self.state is not SessionState.OPEN:
            return
        self._queue.append(text)
        self.queued += len(text)
        if self.queued > self._config.max_queue_size:
            self._fail(1008, "message queue over its limit", now=now)
            return
        self._pump(now)

    def reserve(self, size: int, *, now: float) -> bool:
        """
        Count C{size} characters an application holds for a message it
        sends in pieces against C{max_queue_size}, with what is queued:
        past it the session fails with 1008, as L{send_text} does.

        @return: whether the session is open and they fit.
        """
        if self.state is not SessionState.OPEN:
            return False
        if self.queued + size > self._config.max_queue_size:
            self._fail(1008, "message queue over its limit", now=now)
            return False
        return True

    def send_heartbeat(self, *, now: float) -> None:
        """
        Send C{h} to the attached receiver now, if there is one.
        """
        receiver = self._receiver
        if receiver is not None and self.state is SessionState.OPEN:
            receiver._write(HEARTBEAT)
            self._afterWrite(now)

    @property
    def writes_paused(self) -> bool:
        """
        Whether more than C{queue_high_water} characters wait for a
        receiver: the application should stop sending until they leave.
        """
        return self.queued > self._config.queue_high_water

    # -- closing ----------------------------------------------------------

    def close(self, code: int, reason: str, *, now: float) -> None:
        """
        Close the session: the close frame goes out after what is queued,
        to this receiver or the next. L{Closed} is reported once it is
        handed to a receiving request, or when the disconnect delay
        passes without one.

        @raise ValueError: see L{check_close_code}.
        """
        check_close_code(code)
        if self.state not in (SessionState.NEW, SessionState.OPEN):
            return
        self.state = SessionState.CLOSING
        self._close = (code, reason)
        self._pump(now)

    def end(self, code: int, reason: str, *, was_clean: bool) -> None:
        """
        The session is over for good, at once (its WebSocket is gone, or
        it was aborted): the attached receiver gets nothing more, and
        L{Closed} is reported if it was not: with C{code} and C{reason},
        or, if the session was closed already, with its own close code,
        unclean.
        """
        if self._receiver is not None:
            self._receiver.finished = True
            self._receiver = None
        if self._close is not None:
            # Closed already, and the frame never reached the client: the
            # close is ours, and not clean.
            code, reason = self._close
            was_clean = False
        self._report(code, reason, was_clean)
        self.state = SessionState.CLOSED
        self._queue.clear()
        self.queued = 0
        self._disconnect_at = self._heartbeat_at = None

    def _fail(self, code: int, reason: str, *, now: float) -> None:
        """
        Close at once for a failure: what is queued is dropped and
        L{Closed} is reported now; the close frame waits for a receiver.
        """
        self._queue.clear()
        self.queued = 0
        self.state = SessionState.CLOSING
        self._close = (code, reason)
        self._report(code, reason, False)
        receiver = self._receiver
        if receiver is not None and not receiver.finished:
            receiver._write(close_frame(code, reason))
            receiver.finished = True
            self._detached(now)

    def _report(self, code: int, reason: str, was_clean: bool) -> None:
        if not self._reported:
            self._reported = True
            self._events.append(Closed(code, reason, was_clean))

    # -- the pump ---------------------------------------------------------

    def _pump(self, now: float) -> None:
        """
        Hand what waits to the attached receiver: the queued messages as
        one frame, then the close frame of a closing session.
        """
        receiver = self._receiver
        if receiver is None:
            return
        if self._queue and not receiver.finished:
            receiver._write(messages_frame(self._queue))
            self._queue = []
            self.queued = 0
        if self.state is SessionState.CLOSING and not receiver.finished:
            assert self._close is not None
            receiver._write(close_frame(*self._close))
            receiver.finished = True
            self._report(*self._close, True)
        self._afterWrite(now)

    def _afterWrite(self, now: float) -> None:
        receiver = self._receiver
        if receiver is None:
            return
        if receiver.finished:
            self._detached(now)
        elif self._config.heartbeat_interval is not None:
            self._heartbeat_at = now + self._config.heartbeat_interval

    # -- time -------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """
        @return: when L{handle_timer} must next be called, or L{None}.
        """
        pending = [t for t in (self._disconnect_at, self._heartbeat_at) if t is not None]
        return min(pending, default=None)

    def handle_timer(self, *, now: float) -> None:
        """
        Act on the deadlines that have passed: send a heartbeat, or end a
        session that has had no receiving request for the disconnect
        delay.
        """
        if self._heartbeat_at is not None and now >= self._heartbeat_at:
            self._heartbeat_at = None
            self.send_heartbeat(now=now)
        if self._disconnect_at is not None and now >= self._disconnect_at and self._receiver is None:
            self.end(1006, "session timed out", was_clean=False)

    # -- output -----------------------------------------------------------

    @property
    def receiver(self) -> Receiver | None:
        """
        The attached receiver, or L{None}.
        """
        return self._receiver

    def events(self) -> list[object]:
        """
        @return: what happened since the last call, in order:
            L{Opened}, L{MessageReceived}, L{Closed}.
        """
        events, self._events = self._events, []
        return events
