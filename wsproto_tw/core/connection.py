# -*- test-case-name: tests.core.test_connection -*-
"""
The WebSocket connection state machine: one object per connection that turns
received bytes into events and commands into bytes to send. Every state
transition is made in this file, through one table (L{_TRANSITIONS}); the
message under way is an object of its own (L{wsproto_tw.core.assembly}),
and keepalive a base class whose state is in the connection's own slots
(L{wsproto_tw.core.keepalive}).

Every method taking C{now} wants the current time in seconds on the
caller's clock: any monotonic clock, the same for every call on a
connection. Only differences between values matter; deadlines come back on
that clock (L{Connection.next_deadline}).
"""

from __future__ import annotations

import base64
import enum
import os
import struct
from collections.abc import Callable, Iterator
from typing import Any

from wsproto_tw.core.assembly import MessageAssembler, MessageStream
from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.errors import (
    HandshakeFailed,
    HandshakeRejected,
    HandshakeTimeout,
    HeadTooLarge,
    InvalidState,
    InvalidText,
    MessageTooBig,
    PeerViolation,
)
from wsproto_tw.core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Event,
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
from wsproto_tw.core.frames import (
    SMALL_BINARY_HEADS,
    SMALL_TEXT_HEADS,
    FrameReader,
    build_frame,
    build_frame_pieces,
    is_valid_wire_code,
)
from wsproto_tw.core.handshake import (
    HandshakeRequest,
    PeerSource,
    _resolving_peer,
    build_accept_response,
    build_error_response,
    build_request,
    build_response,
    build_stream_error_response,
    build_stream_request_fields,
    check_request_start,
    check_response_start,
    parse_response,
    read_request,
    validate_response,
    validate_stream_request,
    validate_stream_response,
)
from wsproto_tw.core.keepalive import Keepalive
from wsproto_tw.core.prepared import PreparedMessage
from wsproto_tw.core.stats import CloseRecord, ConnectionStatistics

_pack_code = struct.Struct("!H").pack
_unpack_code = struct.Struct("!H").unpack_from

# Bytes a client may send after its request head before the server accepts.
_MAX_EARLY_DATA = 64 * 1024
# Bytes of a rejection's body kept for HandshakeRejected.
_MAX_REJECT_BODY = 4096
# Payloads from this size on are queued behind their frame header rather
# than joined to it (data_to_send_pieces): copying is then the dearer part.
_SEPARATE_PAYLOAD = 64 * 1024


class State(enum.Enum):
    """
    RFC 6455 §4-§7 connection states.
    """

    CONNECTING = "CONNECTING"
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"

    # Members are singletons compared by identity: hashed by it too, in C
    # (Enum's own __hash__ is a Python call, on every transition).
    __hash__ = object.__hash__


class Role(enum.Enum):
    SERVER = "server"
    CLIENT = "client"


class _Input(enum.Enum):
    """
    What moves a connection from one L{State} to the next.
    """

    # The opening handshake completed (server: accept(); client: a valid 101).
    OPENED = "opened"
    # The opening handshake failed or was refused, or timed out.
    HANDSHAKE_FAILED = "handshake failed"
    # We sent Close first (RFC 6455 §7.1.2).
    CLOSE_SENT = "close sent"
    # The peer's Close arrived, first or in answer to ours (RFC 6455 §7.1.5).
    CLOSE_RECEIVED = "close received"
    # The connection was failed (RFC 6455 §7.1.7), by the peer's fault, ours
    # or the caller's.
    FAILED = "failed"
    # The close deadline passed: the peer did not answer our Close, or (a
    # client) the server did not close TCP after the closing handshake.
    CLOSE_TIMEOUT = "close timeout"
    # The transport closed.
    EOF = "eof"

    __hash__ = object.__hash__  # as State's


_deflate_module: Any = None


def _deflate() -> Any:
    """
    @return: L{wsproto_tw.core.deflate}, imported on first use (an import
        statement in a function costs a Python call into importlib each
        time: its package's C{_handle_fromlist}).
    """
    global _deflate_module
    if _deflate_module is None:
        from wsproto_tw.core import deflate

        _deflate_module = deflate
    return _deflate_module


_S = State
_I = _Input
#: Every allowed transition: C{(state, input) -> next state}. Anything else
#: is a bug of ours and raises L{IllegalTransition}.
_TRANSITIONS: dict[tuple[State, _Input], State] = {
    (_S.CONNECTING, _I.OPENED): _S.OPEN,
    (_S.CONNECTING, _I.HANDSHAKE_FAILED): _S.CLOSED,
    (_S.CONNECTING, _I.FAILED): _S.CLOSED,
    (_S.CONNECTING, _I.EOF): _S.CLOSED,
    (_S.OPEN, _I.CLOSE_SENT): _S.CLOSING,
    (_S.OPEN, _I.CLOSE_RECEIVED): _S.CLOSED,
    (_S.OPEN, _I.FAILED): _S.CLOSED,
    (_S.OPEN, _I.EOF): _S.CLOSED,
    (_S.CLOSING, _I.CLOSE_RECEIVED): _S.CLOSED,
    (_S.CLOSING, _I.FAILED): _S.CLOSED,
    (_S.CLOSING, _I.CLOSE_TIMEOUT): _S.CLOSED,
    (_S.CLOSING, _I.EOF): _S.CLOSED,
    # A client after the closing handshake waits in CLOSED for the server to
    # close TCP (RFC 6455 §7.1.1), and gives up at the close deadline.
    (_S.CLOSED, _I.CLOSE_TIMEOUT): _S.CLOSED,
    (_S.CLOSED, _I.EOF): _S.CLOSED,
}
del _S, _I


class IllegalTransition(RuntimeError):
    """
    A transition that L{_TRANSITIONS} does not allow was attempted: a bug in
    this module, never the peer's doing. Raised while parsing, it fails the
    connection with 1011 like any other bug of ours.
    """


# The members the hot paths compare with, as module globals: on Python 3.11
# an enum class defines __getattr__ (EnumType's), which sends every lookup
# of an attribute on it (State.OPEN) down the slow path of a class with
# __getattr__, several hundred instructions rather than a global's few
# dozen; about 25 such lookups went into each connection's handshakes,
# two into each message echoed.
_CONNECTING, _OPEN, _CLOSING, _CLOSED = State.CONNECTING, State.OPEN, State.CLOSING, State.CLOSED
_SERVER, _CLIENT = Role.SERVER, Role.CLIENT
_OPENED, _CLOSE_RECEIVED, _EOF = _Input.OPENED, _Input.CLOSE_RECEIVED, _Input.EOF
_TEXT, _PING, _PONG, _CLOSE = Opcode.TEXT, Opcode.PING, Opcode.PONG, Opcode.CLOSE
_NORMAL_CLOSURE, _NO_STATUS_RCVD, _ABNORMAL_CLOSURE = (
    CloseCode.NORMAL_CLOSURE, CloseCode.NO_STATUS_RCVD, CloseCode.ABNORMAL_CLOSURE
)

#: What L{Connection._events} and L{Connection._out} hold while empty:
#: one shared empty tuple, so that an idle connection has no lists of its
#: own. A list takes its place at the first append.
_NOTHING: Any = ()

# The hot path's TextMessage and BinaryMessage, made without a call of
# their dataclass __init__ (a Python frame that sets the one field through
# object.__setattr__, to get past the frozen class's __setattr__): the
# object is made, and its slot set through the slot's own descriptor, in
# two C calls. The same objects (equal, hashable, frozen) as the
# constructor's.
_new_event = object.__new__
_set_text = TextMessage.__dict__["text"].__set__
_set_data = BinaryMessage.__dict__["data"].__set__
# So are the opening and the closing handshake's events (one of each per
# connection).
_set_request = RequestReceived.__dict__["request"].__set__
_set_request_subprotocol = RequestReceived.__dict__["subprotocol"].__set__
_set_close_code = CloseReceived.__dict__["code"].__set__
_set_close_reason = CloseReceived.__dict__["reason"].__set__

# The events that carry a peer's data message (or a piece of one).
_DATA_EVENTS = (TextMessage, BinaryMessage, MessageStarted, MessageData, MessageEnded, Ping, Pong)


class _Outgoing:
    """
    A message being sent in pieces (L{Connection.begin_message}).

    @ivar opcode: L{Opcode.TEXT} or L{Opcode.BINARY}.
    @ivar deflate: its L{DeflateStream
        <wsproto_tw.core.deflate.DeflateStream>} when it is compressed,
        else L{None}.
    @ivar frames: the frames queued so far.
    @ivar size: its payload so far, in bytes (uncompressed).
    """

    __slots__ = ("opcode", "deflate", "frames", "size")

    def __init__(self, opcode: Opcode, deflate: Any) -> None:
        self.opcode = opcode
        self.deflate = deflate
        self.frames = 0
        self.size = 0


class Connection(Keepalive):
    """
    What the server and client connections share: frames, messages, the
    closing handshake, keepalive and timers.

    L{state} starts as L{State.CONNECTING} and changes only in
    L{_transition}, by L{_TRANSITIONS}; the one way into L{State.CLOSED} is
    L{_go_closed}.

    @ivar state: the current L{State}.
    @ivar subprotocol: the negotiated subprotocol, or L{None}.
    @ivar extensions: the negotiated C{Sec-WebSocket-Extensions} value, or
        L{None}.
    @ivar wants_transport_closed: the transport should be closed once
        L{data_to_send} has been written.
    @ivar close_code: the close code to report: the peer's if it sent one,
        else ours, else 1006.
    @ivar close_reason: the matching reason.
    @ivar rtt: the last keepalive round-trip time in seconds, or L{None}.
    @ivar stats: what the connection has carried (L{Statistics}: a
        L{ConnectionStatistics} over counts kept in the connection's own
        slots, made at each read).
    @ivar stream_messages: streaming mode: when set, each data message
        received comes out as L{MessageStarted}, then a L{MessageData} per
        piece as it arrives (a frame, or as much of one as was received),
        then L{MessageEnded}, instead of one L{TextMessage} or
        L{BinaryMessage}; nothing of the message is kept once its piece is
        handed on. The limits are the same (C{max_message_size} on the
        whole message so far: 1009; text validated as it arrives: 1007).
        Set it before the message it should apply to begins; C{False} by
        default.
    """

    role: Role

    # One connection per peer, many peers: no per-instance dict.
    # Laid out in this order: what every send reads first, side by side.
    __slots__ = (
        # What every send reads first, side by side (slots are laid out in
        # this order).
        "state", "_sending", "_codec", "_mask_source", "_out",
        "_bytes_sent", "_text_sent", "_text_bytes_sent", "_binary_sent", "_binary_bytes_sent",
        "subprotocol", "extensions", "wants_transport_closed", "rtt",
        "_events", "_now", "_reader", "_head_scan",
        "_message", "_close_sent", "_close_received", "_failed", "_open_by", "_close_by",
        "stream_messages",
        # The rest of the counts behind stats (ConnectionStatistics), as
        # slots of the connection itself.
        "_bytes_received",
        "_text_received", "_text_bytes_received", "_binary_received", "_binary_bytes_received",
        "_deflate_bytes_in", "_deflate_bytes_out",
        "_handshake_status", "_rtt_counts", "_rtt_sum", "_read_pauses", "_slow_consumer_drops",
    )

    def __init__(
        self, config: Config, *, now: float, mask_source: Callable[[int], bytes] = os.urandom
    ) -> None:
        """
        @param now: the current time in seconds, on the caller's clock: the
            opening deadline runs from it.
        @param mask_source: returns that many random bytes (client masking
            keys and nonce).
        """
        # The keepalive deadlines (and _config) are slots of the connection
        # itself: no object of their own.
        Keepalive.__init__(self, config)
        # Clients mask what they send (RFC 6455 §5.3); servers don't.
        self._mask_source = mask_source if self.role is _CLIENT else None
        self.state = _CONNECTING
        self.subprotocol: str | None = None
        self.extensions: str | None = None
        self.wants_transport_closed = False
        self.rtt: float | None = None
        self._bytes_received = self._bytes_sent = 0
        self._text_received = self._text_bytes_received = 0
        self._binary_received = self._binary_bytes_received = 0
        self._text_sent = self._text_bytes_sent = 0
        self._binary_sent = self._binary_bytes_sent = 0
        self._deflate_bytes_in = self._deflate_bytes_out = 0
        self._handshake_status: int | None = None
        self._rtt_counts: list[int] | None = None
        self._rtt_sum = 0.0
        self._read_pauses: dict[str, int] | None = None
        self._slow_consumer_drops = 0
        # Empty until used, and again once drained: an idle connection
        # holds the shared empty tuple, not two empty lists of its own.
        self._events: list[Event] = _NOTHING  # type: ignore[assignment]
        self._now = now
        self._out: list[bytes] = _NOTHING  # type: ignore[assignment]
        self._reader = FrameReader(self.role is _SERVER, config.frame_limit)  # expect_mask, max_frame_size
        self._codec: Any = None
        self._head_scan = 0
        # The message being received, when it comes in more than one piece
        # (or compressed); None between messages.
        self._message: MessageAssembler | MessageStream | None = None
        self.stream_messages = False
        # The message being sent in pieces (begin_message); None between
        # messages.
        self._sending: _Outgoing | None = None
        # The closing handshake: one record.
        self._close_sent: int | None = None
        self._close_received: tuple[int, str] | None = None
        self._failed: tuple[int, str] | None = None
        # Deadlines, on the caller's clock.
        self._open_by = None if config.open_timeout is None else now + config.open_timeout
        self._close_by: float | None = None

    @property
    def stats(self) -> ConnectionStatistics:
        """
        What the connection has carried: a L{Statistics} over its own
        counts (a new view at each read; the counts are the connection's).
        """
        return ConnectionStatistics(self)

    # -- I/O in ----------------------------------------------------------

    def receive_data(self, data: bytes, *, now: float) -> None:
        """
        Feed bytes received from the transport. They are parsed lazily, as
        L{events} is iterated, so that what the application sends in answer
        to one message goes out before the core acts on the next frame.

        @param now: the current time in seconds, on the caller's clock (when
            the bytes arrived): the idle timeout runs from it, and the events
            the bytes produce are dated by it.
        """
        self._bytes_received += len(data)
        if self.state is _CLOSED:
            return
        message = self._message
        if message is None or self._events or not self._reader.feed_into(data, message.absorb):
            self._reader.feed(data)
        self._now = now
        if self.idle_by is not None:
            self.idle_by = now + self._config.idle_timeout

    def receive_buffer(self, minimum: int, maximum: int) -> memoryview | None:
        """
        Where the next bytes received may be written straight into place,
        if that is where they will end up: while the payload of a frame of
        an uncompressed binary message is under way (not in streaming
        mode), with nothing else received and unparsed, a view of the room
        for the rest of that payload in the message itself. A transport
        that can receive into a buffer (C{recv_into}) writes there and
        reports how much with L{receive_into_buffer}, instead of calling
        L{receive_data}: the payload is then copied once, into the
        message, and unmasked in place.

        The view must be released before L{receive_into_buffer} is called.

        @param minimum: the fewest bytes worth receiving this way.
        @param maximum: the most bytes wanted.
        @return: a writable memoryview of between C{minimum} and C{maximum}
            bytes (fewer than the rest of the payload if the message's size
            limit leaves less room: the bytes past the limit come through
            L{receive_data}, which fails the connection with 1009); or
            L{None}, and the bytes are to be fed to L{receive_data}.
        """
        if self._events or (self.state is not _OPEN and self.state is not _CLOSING):
            return None
        message = self._message
        if message is None:
            return None
        room = self._reader.direct_room()
        if room < minimum:
            return None
        view = message.reserve(min(room, maximum))
        if view is not None and len(view) < minimum:
            view.release()
            return None
        return view

    def receive_into_buffer(self, n: int, *, now: float) -> None:
        """
        The first C{n} bytes of the view L{receive_buffer} returned were
        received (the view released since): they join the message,
        unmasked in place, in the place of a L{receive_data} call with
        them.

        @param n: more than C{0}, at most the view's length.
        @param now: the current time in seconds, on the caller's clock (when
            the bytes arrived), as for L{receive_data}.
        """
        self._bytes_received += n
        key, offset = self._reader.payload_received(n)
        self._message.commit(n, key, offset)
        self._now = now
        if self.idle_by is not None:
            self.idle_by = now + self._config.idle_timeout

    def receive_eof(self) -> None:
        """
        The transport closed. Nothing more will be received or sent; the
        bytes received before it are still parsed and their events reported.
        """
        if self.state is _CLOSED:
            # Closed already (the usual case: after the closing handshake):
            # all that _go_closed(EOF) would still change is a client's wait
            # for the server to close, which is over.
            self._close_by = None
            return
        if self.state is not State.CONNECTING or self.role is Role.CLIENT:
            # Parsing is lazy: parse what is buffered now, keeping its events
            # queued in order, before the buffer goes.
            pending = list(self.events())
            if pending:
                self._events = pending
        if self.role is Role.CLIENT and self.state is State.CONNECTING:
            self._client_eof()
        self._go_closed(_Input.EOF)

    # -- I/O out ---------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """
        Parse what was received and yield what happened, oldest first. Never
        raises for anything the peer does: violations become a Close frame
        and a L{ConnectionFailed} event.
        """
        next_event = self.next_event
        while True:
            event = next_event()
            if event is None:
                return
            yield event

    def next_event(self) -> Event | None:
        """
        @return: the next event, parsing only as far as needed, or L{None}.
        """
        while not self._events:
            state = self.state
            try:
                if state is _OPEN or state is _CLOSING:
                    message = self._message
                    if message is not None and type(message) is MessageStream and message.pending:
                        # The rest of a compressed piece, inflated a
                        # bounded part at a time (streaming mode).
                        self._stream_out(message, message.more())
                        continue
                    piece = self._reader.read_piece()
                    if piece is None:
                        return None
                    opcode, fin, rsv1, data, start, end = piece
                    if (
                        start
                        and end
                        and fin
                        and not rsv1
                        and 0 < opcode < 0x8
                        and message is None
                        and not self.stream_messages
                    ):
                        # The common case, a whole, uncompressed data
                        # message in one piece: its event is made and
                        # returned here, with no call of its own.
                        limit = self._config.max_message_size
                        if limit and len(data) > limit:
                            raise MessageTooBig(f"message of {len(data)} bytes exceeds the limit of {limit}")
                        if opcode is _TEXT:
                            try:
                                text = data.decode("utf-8")  # utf8.decode_text, inline
                            except UnicodeDecodeError:
                                raise InvalidText("invalid utf-8 in text message") from None
                            event = _new_event(TextMessage)
                            _set_text(event, text)
                            self._text_received += 1
                            self._text_bytes_received += len(data)
                        else:
                            event = _new_event(BinaryMessage)
                            _set_data(event, data)
                            self._binary_received += 1
                            self._binary_bytes_received += len(data)
                        return event
                    self._receive_piece(opcode, fin, rsv1, data, start, end)
                elif state is _CONNECTING:
                    self._receive_head(self._now)
                    if not self._events:
                        if self.state is _OPEN:
                            continue
                        return None
                else:
                    return None
            except PeerViolation as exc:
                self._fail(exc.close_code, str(exc), self._now)
            except (HandshakeFailed, HandshakeRejected) as exc:
                self._handshake_failed(exc)
            except Exception as exc:
                # Our own bug: the core logs nothing (it has no logger of
                # its own); the event carries the exception to the caller.
                self._fail(CloseCode.INTERNAL_ERROR, "internal error", self._now, error=exc)
        events = self._events
        event = events.pop(0)
        if not events:
            self._events = _NOTHING  # type: ignore[assignment]
        return event

    def has_unread(self) -> bool:
        """
        @return: whether events or received bytes wait to be read: if not,
            L{next_event} returns L{None} until more bytes are received, and
            a caller that holds back what it sends until the events are
            read may send it now. (A part of a frame's payload kept as it
            came is not counted: L{True} is a hint, L{False} is exact only
            between frames.)
        """
        return bool(self._events) or bool(self._reader.buffer)

    def data_to_send(self) -> bytes:
        """
        @return: the bytes to write to the transport since the last call.
        """
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        self._out = _NOTHING  # type: ignore[assignment]
        self._bytes_sent += len(data)
        return data

    def data_to_send_pieces(self) -> list[bytes]:
        """
        The same bytes as L{data_to_send}, not joined: a list of pieces to
        write in order, in which a large payload (64 KiB or more) is a piece
        of its own, the very C{bytes} object the application sent when it
        needs no masking, rather than a copy joined to its frame header. A
        transport that can send pieces without joining them then sends the
        payload without a copy.

        @return: a new list of C{bytes}, empty if there is nothing to send.
        """
        pieces = self._out
        if not pieces:
            return []
        self._out = _NOTHING  # type: ignore[assignment]
        self._bytes_sent += len(pieces[0]) if len(pieces) == 1 else sum(map(len, pieces))
        return pieces

    def data_to_send_if_read(self) -> list[bytes] | None:
        """
        L{data_to_send_pieces}, if nothing waits to be read (L{has_unread}
        is false), in one call: what a caller that holds back what it sends
        until the events are read may write now.

        @return: a new list of C{bytes}, empty if nothing is queued; or
            L{None} if events or received bytes wait to be read, and then
            nothing is taken.
        """
        if self._events or self._reader.buffer:
            return None
        pieces = self._out
        if not pieces:
            return []
        self._out = _NOTHING  # type: ignore[assignment]
        self._bytes_sent += len(pieces[0]) if len(pieces) == 1 else sum(map(len, pieces))
        return pieces

    def next_deadline(self) -> float | None:
        """
        @return: when L{handle_timer} must next be called, in seconds on the
            caller's clock (the clock of the C{now} arguments), or L{None}.
        """
        deadline = self.keepalive_deadline()
        for by in (self._open_by, self._close_by):
            if by is not None and (deadline is None or by < deadline):
                deadline = by
        return deadline

    def handle_timer(self, *, now: float) -> None:
        """
        Act on every deadline that has passed at C{now}.

        @param now: the current time in seconds, on the caller's clock.
        """
        self._now = now
        # A connection that fell idle (its keepalive ping is due) lets its
        # empty receive buffer go.
        self._reader.release()
        if self._open_by is not None and now >= self._open_by:
            self._open_by = None
            if self.state is State.CONNECTING:
                self._open_timed_out()
                return
        if self._close_by is not None and now >= self._close_by:
            # The peer did not finish the closing handshake in time.
            self._go_closed(_Input.CLOSE_TIMEOUT)
            return
        if self.pong_overdue(now):
            self._fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout", now, drop=True)
            return
        if self.idle_expired(now):
            self.send_close(CloseCode.GOING_AWAY, "idle timeout", now=now)
            return
        payload = self.ping_due(now)
        if payload is not None:
            self._send_frame(Opcode.PING, payload)

    # -- commands --------------------------------------------------------

    def send_text(self, text: str) -> None:
        """
        Queue a text message. Dropped silently once the closing handshake has
        started (the peer can no longer be expected to read it).

        @raise TypeError: C{text} is not a str.
        @raise InvalidState: the connection is not open yet, or a message
            is being sent in pieces (L{begin_message}).
        """
        if not isinstance(text, str):
            raise TypeError(f"send_text takes str, not {type(text).__name__}")
        if self._sending is not None:
            raise InvalidState("a message is being sent in pieces: end_message() first")
        if self.state is _OPEN or self._writable():
            payload = text.encode("utf-8")
            n = len(payload)
            self._text_sent += 1
            self._text_bytes_sent += n
            if n < 126 and self._codec is None and self._mask_source is None:
                # A server's small uncompressed message: one header lookup.
                out = self._out
                if out is _NOTHING:
                    out = self._out = []
                out.append(SMALL_TEXT_HEADS[n] + payload)
            else:
                self._send_message(Opcode.TEXT, payload)

    def send_binary(self, data: bytes | bytearray | memoryview) -> None:
        """
        Queue a binary message. Dropped silently once closing.

        @raise TypeError: C{data} is not bytes-like.
        @raise InvalidState: the connection is not open yet, or a message
            is being sent in pieces (L{begin_message}).
        """
        if type(data) is not bytes:
            if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(f"send_binary takes bytes, not {type(data).__name__}")
            data = bytes(data)
        if self._sending is not None:
            raise InvalidState("a message is being sent in pieces: end_message() first")
        if self.state is _OPEN or self._writable():
            n = len(data)
            self._binary_sent += 1
            self._binary_bytes_sent += n
            if n < 126 and self._codec is None and self._mask_source is None:
                out = self._out
                if out is _NOTHING:
                    out = self._out = []
                out.append(SMALL_BINARY_HEADS[n] + data)
            else:
                self._send_message(Opcode.BINARY, data)

    def send_prepared(self, message: PreparedMessage) -> None:
        """
        Queue a message prepared once for many connections (a broadcast):
        the same as L{send_text} or L{send_binary} with its content, but a
        server queues the frame the message built once, shared with the
        other connections, unless its compression has to refer to what it
        sent before. Dropped silently once closing.

        @raise InvalidState: the connection is not open yet, or a message
            is being sent in pieces (L{begin_message}).
        """
        frame = self.take_prepared(message)
        if frame is not None:
            # Queued after all: data_to_send_pieces counts it as sent.
            self._bytes_sent -= len(frame)
            self._out = [frame]

    def take_prepared(self, message: PreparedMessage) -> bytes | None:
        """
        L{send_prepared}, but when nothing is queued to send, a shared
        frame is handed back instead of queued, for the caller to write at
        once. This is a broadcast's per-recipient path: the frame built
        once goes from here to the socket with no queue between.

        @return: the frame (C{bytes}, unmasked, shared with the other
            recipients) for the caller to write, counted as sent; or
            L{None} when the connection queued the message (a client masks
            each frame, a compression context refers to what was sent
            before, other bytes wait to be sent before it) or dropped it
            (closing).
        @raise InvalidState: the connection is not open yet, or a message
            is being sent in pieces (L{begin_message}).
        """
        if self._sending is not None:
            raise InvalidState("a message is being sent in pieces: end_message() first")
        if self.state is not _OPEN and not self._writable():
            return None
        opcode = message.opcode
        payload = message.payload
        if opcode is _TEXT:
            self._text_sent += 1
            self._text_bytes_sent += len(payload)
        else:
            self._binary_sent += 1
            self._binary_bytes_sent += len(payload)
        codec = self._codec
        if self._mask_source is not None:
            # RFC 6455 §5.3: a client masks each frame with a new key.
            self._send_message(opcode, payload)
            return None
        if codec is None:
            frame = message._frame
            if frame is None:
                frame = message.frame()
        else:
            shared = message.deflated_frame(codec)
            if shared is None:
                self._send_message(opcode, payload)
                return None
            frame, size = shared
            if size >= 0:
                self._deflate_bytes_in += len(payload)
                self._deflate_bytes_out += size
        out = self._out
        if out:
            out.append(frame)  # after what is queued, in order
            return None
        self._bytes_sent += len(frame)
        return frame

    @staticmethod
    def take_prepared_each(connections: list[Connection], message: PreparedMessage) -> list[int]:
        """
        L{take_prepared} for many connections at once, a broadcast's
        common case only: each open server connection without compression,
        with nothing queued and no message under way in pieces, counts
        the message's shared frame (L{PreparedMessage.frame}) as sent, for
        the caller to write at once. The others are left as they were, to
        be sent the message one by one (L{take_prepared} or
        L{send_prepared}, which queue it, drop it or raise).

        One call for all the connections, and no call per connection: the
        cost per recipient is the checks and the counts.

        @param connections: the connections, a C{list}.
        @return: the indices in C{connections} of those left as they were,
            in order (usually none).
        """
        frame = message.frame()
        n = len(frame)
        size = len(message.payload)
        opened = State.OPEN
        left = []
        if message.opcode is Opcode.TEXT:
            for i, conn in enumerate(connections):
                if (
                    conn.state is opened
                    and conn._sending is None
                    and conn._codec is None
                    and conn._mask_source is None
                    and not conn._out
                ):
                    conn._text_sent += 1
                    conn._text_bytes_sent += size
                    conn._bytes_sent += n
                else:
                    left.append(i)
        else:
            for i, conn in enumerate(connections):
                if (
                    conn.state is opened
                    and conn._sending is None
                    and conn._codec is None
                    and conn._mask_source is None
                    and not conn._out
                ):
                    conn._binary_sent += 1
                    conn._binary_bytes_sent += size
                    conn._bytes_sent += n
                else:
                    left.append(i)
        return left

    def begin_message(self, binary: bool) -> None:
        """
        Start a message sent in pieces (RFC 6455 §5.4): each
        L{send_message_data} queues one frame (the first with the text or
        binary opcode, the next ones continuation frames, none with FIN),
        and L{end_message} queues the last one, with FIN. Nothing is queued
        yet. Until L{end_message}, no other data message may be sent
        (L{send_text}, L{send_binary}, L{send_prepared} raise); pings,
        pongs and Close may go out between the frames (RFC 6455 §5.4).

        With permessage-deflate, the message is compressed as one stream
        over its frames (RFC 7692 §7.2.1; RSV1 on the first frame only):
        each piece is compressed and flushed as it is given, so that it
        goes out at once, whatever its size (C{min_size} does not apply).

        Once the closing handshake has started, its frames are dropped
        silently, as for L{send_text}.

        @param binary: C{True} for a binary message (pieces are bytes),
            C{False} for text (pieces are C{str}).
        @raise InvalidState: a message is already being sent in pieces, or
            the connection is not open yet.
        """
        if self._sending is not None:
            raise InvalidState("a message is already being sent in pieces: end_message() first")
        if self.state is State.CONNECTING:
            raise InvalidState("can't send before the opening handshake completes")
        codec = self._codec
        self._sending = _Outgoing(
            Opcode.BINARY if binary else Opcode.TEXT, None if codec is None else codec.compress_stream()
        )

    def send_message_data(self, data: bytes | bytearray | memoryview | str) -> None:
        """
        Queue the next piece of the message begun by L{begin_message} as
        one frame without FIN. An empty piece queues nothing.

        @param data: C{str} for a text message (encoded to UTF-8), bytes-like
            for a binary one.
        @raise InvalidState: no message was begun.
        @raise TypeError: C{data} is not of the message's type.
        """
        payload = self._message_piece(data)
        if payload:
            self._send_piece(payload, False)

    def end_message(self, data: bytes | bytearray | memoryview | str | None = None) -> None:
        """
        Queue the last frame, with FIN, of the message begun by
        L{begin_message}: C{data} as its payload, or an empty one. A
        message begun and ended with no data in between is one frame.

        @param data: the last piece, as for L{send_message_data}, or
            L{None}.
        @raise InvalidState: no message was begun.
        @raise TypeError: C{data} is not of the message's type.
        """
        if data is None:
            if self._sending is None:
                raise InvalidState("no message is being sent in pieces: begin_message() first")
            payload = b""
        else:
            payload = self._message_piece(data)
        self._send_piece(payload, True)
        outgoing = self._sending
        self._sending = None
        if self.state is State.OPEN:
            if outgoing.opcode is Opcode.TEXT:
                self._text_sent += 1
                self._text_bytes_sent += outgoing.size
            else:
                self._binary_sent += 1
                self._binary_bytes_sent += outgoing.size

    def _message_piece(self, data: Any) -> bytes:
        """
        @return: C{data} as the payload of the next frame of the message
            being sent in pieces.
        @raise InvalidState: no message was begun.
        @raise TypeError: C{data} is not of the message's type.
        """
        outgoing = self._sending
        if outgoing is None:
            raise InvalidState("no message is being sent in pieces: begin_message() first")
        if outgoing.opcode is Opcode.TEXT:
            if not isinstance(data, str):
                raise TypeError(f"a text message's pieces are str, not {type(data).__name__}")
            return data.encode("utf-8")
        if isinstance(data, str) or not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a binary message's pieces are bytes, not {type(data).__name__}")
        return bytes(data)

    def _send_piece(self, payload: bytes, fin: bool) -> None:
        """
        Queue one frame of the message being sent in pieces, unless closing.
        """
        if self.state is not State.OPEN:
            return
        outgoing = self._sending
        first = outgoing.frames == 0
        outgoing.frames += 1
        outgoing.size += len(payload)
        deflate = outgoing.deflate
        if deflate is not None:
            size = len(payload)
            payload = deflate.compress(payload, fin)
            self._deflate_bytes_in += size
            self._deflate_bytes_out += len(payload)
        self._send_frame(outgoing.opcode if first else Opcode.CONTINUATION, payload, fin, first and deflate is not None)

    def send_ping(self, payload: bytes = b"") -> None:
        """
        Queue a ping.

        @raise ValueError: the payload is over 125 bytes.
        """
        if len(payload) > 125:
            raise ValueError("ping payload over 125 bytes")
        if self._writable():
            self._send_frame(Opcode.PING, bytes(payload))

    def send_pong(self, payload: bytes = b"") -> None:
        """
        Queue an unsolicited pong (RFC 6455 §5.5.3: a unidirectional heartbeat).
        """
        if len(payload) > 125:
            raise ValueError("pong payload over 125 bytes")
        if self._writable():
            self._send_frame(Opcode.PONG, bytes(payload))

    def send_close(self, code: int | None = CloseCode.NORMAL_CLOSURE, reason: str = "", *, now: float) -> None:
        """
        Start the closing handshake (RFC 6455 §7.1.2). Does nothing if it has
        started already.

        @param code: a code valid on the wire, or L{None} for a Close frame
            without a code.
        @param now: the current time in seconds, on the caller's clock: the
            peer has C{close_timeout} from it to answer.
        @raise ValueError: the code can't be sent, or the reason is over 123
            bytes.
        @raise InvalidState: the connection is not open yet.
        """
        payload = _close_payload(code, reason)
        if self.state is State.CONNECTING:
            raise InvalidState("can't close before the opening handshake completes; reject it instead")
        if self.state is not State.OPEN:
            return
        self._close_sent = CloseCode.NO_STATUS_RCVD if code is None else code
        self._send_frame(Opcode.CLOSE, payload)
        self._transition(_Input.CLOSE_SENT)
        self.stop_keepalive()
        self._close_by = now + self._config.close_timeout

    def pause_keepalive(self) -> None:
        """
        The caller stopped reading from the transport (its application is
        busy, or paused it): a pong may be waiting unread, and so may any
        other byte. Until L{resume_keepalive}, send no keepalive ping and
        enforce neither the pong deadline nor the idle timeout. The opening
        and closing deadlines still apply.
        """
        self.keepalive_paused = True

    def resume_keepalive(self, *, now: float) -> None:  # type: ignore[override]
        """
        The caller reads again: re-arm what L{pause_keepalive} suspended. An
        unanswered keepalive ping gets a full C{ping_timeout} from C{now},
        and the idle timeout starts over; a ping that fell due meanwhile
        goes out at once.

        @param now: the current time in seconds, on the caller's clock.
        """
        if Keepalive.resume_keepalive(self, now=now):
            # What waited unread is parsed from now on.
            self._now = now

    def fail(self, code: int, reason: str, *, now: float) -> None:
        """
        Fail the connection for a local reason (a slow consumer, an
        overloaded server, an application that raised): queue a Close frame
        with C{code} and ask for the transport to be closed; messages
        parsed but not yet taken from L{next_event} are dropped. Does
        nothing once closed.

        @param now: the current time in seconds, on the caller's clock.
        @raise ValueError: C{code} can't be sent.
        """
        _close_payload(code, reason)
        if self._events:
            # What was parsed and not yet handed over is dropped with the
            # rest of what the peer sent: after a local failure (the
            # application raised, say) nothing more is delivered.
            self._events = [event for event in self._events if not isinstance(event, _DATA_EVENTS)] or _NOTHING
        self._fail(code, reason, now, drop=True)

    # -- the close record ------------------------------------------------

    @property
    def close_code(self) -> int:
        return self.close_status()[0]

    @property
    def close_reason(self) -> str:
        return self.close_status()[1]

    @property
    def was_clean(self) -> bool:
        """
        Whether both Close frames were exchanged (RFC 6455 §7.1.4) without the
        connection being failed.
        """
        return self.close_status()[2]

    def close_status(self) -> tuple[int, str, bool]:
        """
        L{close_code}, L{close_reason} and L{was_clean}, at once: what a
        connection's loss reports.

        @return: C{(code, reason, clean)}: the peer's code and reason if it
            sent a Close frame, else those the connection failed with, else
            the code we sent (no reason), else 1006 (no reason); and whether
            both Close frames were exchanged without a failure.
        """
        received = self._close_received
        failed = self._failed
        sent = self._close_sent
        if received is not None:
            return received[0], received[1], sent is not None and failed is None
        if failed is not None:
            return failed[0], failed[1], False
        if sent is not None:
            return sent, "", False
        return _ABNORMAL_CLOSURE, "", False

    @property
    def close_record(self) -> CloseRecord:
        """
        The close codes sent, received and failed with so far.
        """
        received = self._close_received
        failed = self._failed
        return CloseRecord(
            self._close_sent, None if received is None else received[0], None if failed is None else failed[0]
        )

    # -- internals: frames -----------------------------------------------

    def _emit(self, event: Event) -> None:
        events = self._events
        if events is _NOTHING:
            events = self._events = []
        events.append(event)

    def _queue(self, data: bytes) -> None:
        out = self._out
        if out is _NOTHING:
            out = self._out = []
        out.append(data)

    def _writable(self) -> bool:
        if self.state is _OPEN:
            return True
        if self.state is _CONNECTING:
            raise InvalidState("can't send before the opening handshake completes")
        return False

    def _send_frame(self, opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> None:
        mask_source = self._mask_source
        key = None if mask_source is None else mask_source(4)
        out = self._out
        if out is _NOTHING:
            out = self._out = []
        if len(payload) < _SEPARATE_PAYLOAD:
            out.append(build_frame(opcode, payload, fin, rsv1, key))
        else:
            # A large payload is queued as it is, behind its header, not
            # copied after it: see data_to_send_pieces.
            out.extend(build_frame_pieces(opcode, payload, fin, rsv1, key))

    def _send_message(self, opcode: Opcode, payload: bytes) -> None:
        rsv1 = False
        if self._codec is not None:
            size = len(payload)
            payload, rsv1 = self._codec.compress(payload)
            if rsv1:
                self._deflate_bytes_in += size
                self._deflate_bytes_out += len(payload)
        self._send_frame(opcode, payload, True, rsv1)

    def _receive_piece(
        self, opcode: Opcode, fin: bool, rsv1: bool, data: bytes, start: bool, end: bool
    ) -> None:
        if opcode >= 0x8:
            if rsv1:
                raise PeerViolation("rsv1 set on a control frame")
            self._receive_control(opcode, data, self._now)
        else:
            # A piece of a fragmented or compressed message, or of a frame
            # that arrives in pieces (RFC 6455 §5.4): a whole uncompressed
            # message in one piece is next_event's.
            message = self._message
            if start:
                if opcode is Opcode.CONTINUATION:
                    if message is None:
                        raise PeerViolation("continuation frame without a message to continue")
                    if rsv1:
                        raise PeerViolation("rsv1 set on a continuation frame")
                elif message is not None:
                    raise PeerViolation("new message started before the previous one finished")
                elif self.stream_messages:
                    config = self._config
                    message = self._message = MessageStream(
                        opcode, self._codec if rsv1 else None, config.max_message_size, config.max_fragments
                    )
                    self._emit(MessageStarted(opcode is Opcode.BINARY))
                else:
                    config = self._config
                    message = self._message = MessageAssembler(
                        opcode,
                        self._codec if rsv1 else None,
                        config.max_message_size,
                        config.max_fragments,
                        len(data) + self._reader.remaining,
                    )
            if type(message) is MessageStream:
                self._receive_stream_piece(message, data, start, fin and end)
                return
            event = message.add(data, start, fin and end)
            if event is not None:
                self._message = None
                self._emit(event)
                if type(event) is TextMessage:
                    self._text_received += 1
                    self._text_bytes_received += message.size
                else:
                    self._binary_received += 1
                    self._binary_bytes_received += message.size

    def _receive_stream_piece(self, message: MessageStream, data: bytes, start: bool, last: bool) -> None:
        """
        Streaming mode: hand on the next piece of the message under way.
        """
        self._stream_out(message, message.add(data, start, last))

    def _stream_out(self, message: MessageStream, chunk: bytes | str) -> None:
        """
        Queue the events of a piece of a streamed message (or of a part of
        one inflated by L{MessageStream.more}).
        """
        events = self._events
        if events is _NOTHING:
            events = self._events = []
        if chunk:
            events.append(MessageData(chunk))
        if message.complete:
            self._message = None
            events.append(MessageEnded())
            if message.opcode is Opcode.TEXT:
                self._text_received += 1
                self._text_bytes_received += message.size
            else:
                self._binary_received += 1
                self._binary_bytes_received += message.size

    def _receive_control(self, opcode: Opcode, payload: bytes, now: float) -> None:
        if opcode is _PING:
            # RFC 6455 §5.5.2: answer with a pong, unless closing.
            if self.state is State.OPEN:
                self._send_frame(Opcode.PONG, payload)
            self._emit(Ping(payload))
        elif opcode is _PONG:
            rtt = self.pong_received(payload, now)
            if rtt is not None:
                self.rtt = rtt
                self.stats.round_trip(rtt)
            self._emit(Pong(payload, rtt))
        else:
            self._receive_close(payload, now)

    def _receive_close(self, payload: bytes, now: float) -> None:
        # RFC 6455 §5.5.1, §7.1.5, §7.4
        if len(payload) == 0:
            code, reason = CloseCode.NO_STATUS_RCVD, ""
        elif len(payload) == 1:
            raise PeerViolation("close frame with a 1-byte payload")
        else:
            code = _unpack_code(payload)[0]
            if not is_valid_wire_code(code):
                raise PeerViolation(f"invalid close code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidText("invalid utf-8 in close reason") from None
        self._close_received = (code, reason)
        if self.state is _OPEN:
            # Echo the peer's code; answer a Close without one with 1000.
            echo = _NORMAL_CLOSURE if code == _NO_STATUS_RCVD else code
            self._close_sent = echo
            self._send_frame(_CLOSE, _pack_code(echo))
        event = _new_event(CloseReceived)  # CloseReceived(code, reason)
        _set_close_code(event, code)
        _set_close_reason(event, reason)
        self._emit(event)
        self._closed(_CLOSE_RECEIVED, now)

    def _closed(self, input: _Input, now: float, drop: bool = False) -> None:
        """
        Both Close frames are exchanged, or the connection failed: RFC 6455
        §7.1.1, the server closes TCP first; the client waits for it, unless
        it drops the connection.
        """
        if self.role is _SERVER or drop:
            self._go_closed(input)
        else:
            self._go_closed(input, close_by=now + self._config.close_timeout)

    def _transition(self, input: _Input) -> None:
        """
        Move to the state L{_TRANSITIONS} gives for C{input}: the one place
        L{state} changes.

        @raise IllegalTransition: the table allows no such transition.
        """
        try:
            self.state = _TRANSITIONS[self.state, input]
        except KeyError:
            raise IllegalTransition(f"no transition from {self.state.value} on {input.value}") from None

    def _go_closed(self, input: _Input, close_by: float | None = None) -> None:
        """
        The one way into L{State.CLOSED}: parse nothing more (drop the
        receive buffer and the message under way), stop every deadline, and
        ask for the transport to be closed once L{data_to_send} is written,
        unless it closed already (C{input} is EOF).

        @param close_by: instead of asking, wait until then (seconds, on
            the caller's clock) for the peer to close the transport: a client
            after the closing handshake (RFC 6455 §7.1.1).
        """
        self._transition(input)
        self._reader.clear()
        self._message = None
        self.stop_keepalive()
        self._open_by = None
        self._close_by = close_by
        if close_by is None and input is not _EOF:
            self.wants_transport_closed = True

    def _fail(
        self, code: int, reason: str, now: float, drop: bool = False, error: BaseException | None = None
    ) -> None:
        """
        Fail the connection (RFC 6455 §7.1.7): send a Close frame if we
        haven't, and stop reading.

        @param error: the exception of a bug of our own, for
            L{ConnectionFailed.error}.
        """
        if self.state is State.CLOSED:
            return
        if self.state is State.CONNECTING:
            if error is not None:
                # Nothing goes on the wire, but the caller must hear of it.
                self._emit(ConnectionFailed(code, reason, error))
            self._go_closed(_Input.FAILED)
            return
        self._failed = (code, reason)
        if self._close_sent is None:
            self._close_sent = code
            self._send_frame(Opcode.CLOSE, _close_payload(code, reason))
        self._emit(ConnectionFailed(code, reason, error))
        self._closed(_Input.FAILED, now, drop)

    def _opened(self, now: float) -> None:
        self._transition(_OPENED)
        self._open_by = None
        self.start_keepalive(now)

    def _take_head(self) -> bytes | None:
        """
        Take the HTTP head (up to the blank line) off the receive buffer,
        leaving whatever follows it there.

        @raise HeadTooLarge: the head is over the limit.
        """
        buffer = self._reader.buffer
        end = buffer.find(b"\r\n\r\n", self._head_scan)
        limit = self._config.max_head_size
        if end < 0:
            if limit and len(buffer) > limit:
                raise HeadTooLarge(f"head over {limit} bytes")
            self._head_scan = max(0, len(buffer) - 3)
            return None
        if limit and end + 4 > limit:
            raise HeadTooLarge(f"head over {limit} bytes")
        head = bytes(buffer[:end])
        del buffer[: end + 4]
        # Mostly nothing follows the head yet: an idle connection keeps
        # no buffer of its own.
        self._reader.release()
        return head

    # -- role hooks ------------------------------------------------------

    def _receive_head(self, now: float) -> None:
        raise NotImplementedError

    def _handshake_failed(self, error: Exception) -> None:
        raise NotImplementedError

    def _open_timed_out(self) -> None:
        raise NotImplementedError

    def _client_eof(self) -> None:
        pass


class ServerConnection(Connection):
    """
    The server side: parses the opening request, then waits for L{accept} or
    L{reject}.

    A WebSocket over an HTTP/2 stream (RFC 8441) starts from the extended
    CONNECT request its carrier parsed (C{stream_request}): nothing but
    frames is read, the request is checked by L{validate_stream_request},
    and the answer is a head without C{Sec-WebSocket-Accept} (C{200}, or
    the error status and its body) that the carrier turns into its HEADERS
    frame, followed by frames.

    @ivar request: the L{HandshakeRequest} once it has arrived.
    @ivar peer: the peer's address as the transport layer knows it, or
        L{None}: the request carries it as L{HandshakeRequest.peer}. Given
        as a L{PeerSource}, it is asked for when first read (by whoever
        reads it here or on the request).
    """

    role = Role.SERVER

    __slots__ = (
        "request", "_peer", "_stream_request", "_proposal",
    )

    def __init__(
        self,
        config: Config,
        *,
        now: float,
        mask_source: Callable[[int], bytes] = os.urandom,
        stream_request: HandshakeRequest | None = None,
    ) -> None:
        """
        @param now: the current time in seconds, on the caller's clock (the
            connection was made): the opening deadline runs from it.
        @param stream_request: the extended CONNECT request of an HTTP/2
            stream (RFC 8441), or L{None} to parse an HTTP/1.1 head.
        """
        Connection.__init__(self, config, now=now, mask_source=mask_source)  # (no super object)
        self._stream_request = stream_request
        self.request: HandshakeRequest | None = None
        self._peer: object = None
        # Between the request and the answer: (the Sec-WebSocket-Key or
        # None, the subprotocol picked, the Sec-WebSocket-Extensions answer,
        # its DeflateCodec); one slot, None once answered.
        self._proposal: tuple[str | None, str | None, str | None, Any] | None = None

    def _receive_head(self, now: float) -> None:
        if self.request is not None:
            # Waiting for accept() or reject(): keep what the client sends
            # early, within a bound.
            if len(self._reader.buffer) > _MAX_EARLY_DATA:
                raise HandshakeFailed("data before the handshake completed")
            return
        config = self._config
        request = self._stream_request
        key = None
        if request is not None:
            # RFC 8441 §4, §5: an HTTP/2 stream; what it carries is frames.
            validate_stream_request(request, config.allowed_origins)
        else:
            head = self._take_head()
            if head is None:
                check_request_start(self._reader.buffer)  # fail early garbage at once
                return
            # The request gets what the transport layer gave, a PeerSource
            # still unasked if it was one.
            request, key = read_request(head, config.max_headers, self._peer, config.allowed_origins)
        subprotocol = None
        if config.subprotocols:
            offered = request.subprotocols
            for name in config.subprotocols:
                if name in offered:
                    subprotocol = name
                    break
        if subprotocol is None and config.require_subprotocol:
            raise HandshakeFailed(
                "no common subprotocol; this server speaks " + ", ".join(config.subprotocols)
            )
        extensions = codec = None
        if config.compression is not None:
            extensions, codec = _deflate().negotiate_server(config.compression, request.get("sec-websocket-extensions"))
        self.request = request
        event = _new_event(RequestReceived)  # RequestReceived(request, subprotocol)
        _set_request(event, request)
        _set_request_subprotocol(event, subprotocol)
        self._emit(event)
        self._proposal = (key, subprotocol, extensions, codec)

    def accept(
        self,
        subprotocol: str | None | type[Ellipsis] = ...,
        extra_headers: list[tuple[str, str]] | tuple = (),
        *,
        now: float,
    ) -> None:
        """
        Accept the opening handshake (RFC 6455 §4.2.2): queue the C{101}
        response and open the connection.

        @param subprotocol: the subprotocol to answer with; by default the
            one the configuration picked (see L{RequestReceived}).
        @param now: the current time in seconds, on the caller's clock:
            keepalive and the idle timeout run from it.
        @raise InvalidState: no request has arrived, or it was answered.
        @raise ValueError: the subprotocol was not offered by the client.
        """
        if self.state is not _CONNECTING or self.request is None:
            raise InvalidState(f"can't accept in state {self.state.value}")
        assert self._proposal is not None
        key, proposed, extensions, codec = self._proposal
        if subprotocol is ...:
            subprotocol = proposed
        elif subprotocol is not None and subprotocol not in self.request.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        if self._stream_request is not None:
            # RFC 8441 §5: a 2xx answer, without Sec-WebSocket-Accept.
            fields = []
            if subprotocol is not None:
                fields.append(("Sec-WebSocket-Protocol", subprotocol))
            if extensions:
                fields.append(("Sec-WebSocket-Extensions", extensions))
            self._queue(build_response(200, [*fields, *extra_headers]))
            self._handshake_status = 200
        else:
            assert key is not None
            self._queue(build_accept_response(key, subprotocol, extensions, extra_headers))
            self._handshake_status = 101
        self.subprotocol = subprotocol
        self.extensions = extensions
        if codec is not None:
            self._codec = codec
            self._reader.allow_rsv1()
        # What only the handshake needed goes: an idle connection keeps less.
        self._proposal = None
        self.request._compact()
        # Bytes that arrived with the request head stay in the buffer: they
        # are frames, parsed as events() is iterated.
        self._opened(now)

    def reject(self, status: int = 403, reason: str = "forbidden", headers: list[tuple[str, str]] | tuple = ()) -> None:
        """
        Reject the opening handshake with an HTTP error response; the
        transport is to be closed after it.

        @raise InvalidState: the handshake was already answered.
        @raise ValueError: C{status} is not an error status.
        """
        if self.state is not State.CONNECTING:
            raise InvalidState(f"can't reject in state {self.state.value}")
        if not 400 <= status <= 599:
            raise ValueError(f"reject needs a 4xx or 5xx status, not {status}")
        self._handshake_failed(HandshakeFailed(reason, status, headers))

    def _handshake_failed(self, error: Exception) -> None:
        assert isinstance(error, HandshakeFailed)
        self._handshake_status = error.status
        if self._stream_request is not None:
            self._queue(build_stream_error_response(error))
        else:
            self._queue(build_error_response(error))
        self._emit(HandshakeFailure(error))
        self._go_closed(_Input.HANDSHAKE_FAILED)

    def _open_timed_out(self) -> None:
        self._handshake_failed(HandshakeFailed("opening handshake timed out", 408))


# The peer's address, asked of a PeerSource when first read.
ServerConnection.peer = _resolving_peer(ServerConnection._peer)  # type: ignore[attr-defined]


class ClientConnection(Connection):
    """
    The client side: queues the opening request at once, then checks the
    server's answer (RFC 6455 §4.1).

    Over an HTTP/2 stream (RFC 8441, C{stream=True}), nothing is queued:
    the carrier sends an extended CONNECT with L{stream_fields}, and feeds
    the answer's HEADERS as a head (status line and fields), then the
    stream's data; a 2xx answer opens the connection.

    @ivar response: the L{HandshakeResponse} once it has arrived.
    @ivar stream_fields: over an HTTP/2 stream, the request's fields
        besides its pseudo-headers, names in lower case; else L{None}.
    """

    role = Role.CLIENT

    __slots__ = ("key", "response", "stream_fields", "_reject", "_offer")

    def __init__(
        self,
        config: Config,
        *,
        host: str,
        target: str = "/",
        origin: str | None = None,
        extra_headers: list[tuple[str, str]] | tuple = (),
        now: float,
        mask_source: Callable[[int], bytes] = os.urandom,
        stream: bool = False,
    ) -> None:
        """
        @param host: the C{Host} header's value.
        @param target: the request target (path and query).
        @param origin: the C{Origin} header's value, or L{None} for none.
        @param extra_headers: more request headers, as (name, value) pairs.
        @param now: the current time in seconds, on the caller's clock (the
            connection was made): the opening deadline runs from it.
        @param mask_source: returns that many random bytes: the nonce, and
            each frame's masking key (RFC 6455 §5.3).
        @param stream: the connection is an HTTP/2 stream (RFC 8441).
        """
        super().__init__(config, now=now, mask_source=mask_source)
        # RFC 6455 §4.1 item 7: a fresh random 16-byte nonce.
        self.key = base64.b64encode(mask_source(16)).decode("ascii")
        self.response = None
        self._reject: HandshakeRejected | None = None
        self._offer: str | None = None
        if config.compression is not None:
            from wsproto_tw.core import deflate

            self._offer = deflate.client_offer(config.compression)
        self.stream_fields: list[tuple[str, str]] | None = None
        if stream:
            self.stream_fields = build_stream_request_fields(origin, config.subprotocols, self._offer, extra_headers)
        else:
            self._queue(
                build_request(host, target, self.key, origin, config.subprotocols, self._offer, extra_headers)
            )

    def _receive_head(self, now: float) -> None:
        if self._reject is not None:
            self._collect_reject_body(eof=False)
            return
        stream = self.stream_fields is not None
        if not stream:
            # Another protocol on this port (TLS, SSH) fails at its first bytes.
            check_response_start(self._reader.buffer)
        head = self._take_head()
        if head is None:
            return
        response = parse_response(head, self._config.max_headers)
        self.response = response
        # RFC 8441 §5: over HTTP/2, any 2xx accepts.
        if not (200 <= response.status < 300 if stream else response.status == 101):
            self._reject = HandshakeRejected(
                response.reason or "unexpected status", response.status, response.headers
            )
            self._collect_reject_body(eof=False)
            return
        if stream:
            validate_stream_response(response, self._config.subprotocols)
        else:
            validate_response(response, self.key, self._config.subprotocols)
        extensions = response.get("sec-websocket-extensions")
        if extensions is not None:
            if self._offer is None:
                raise HandshakeRejected(
                    "server answered with an extension that was not offered",
                    response.status,
                    response.headers,
                )
            from wsproto_tw.core import deflate

            self._codec = deflate.client_accept(self._config.compression, extensions)
            self._reader.allow_rsv1()
        self.subprotocol = response.subprotocol
        self.extensions = extensions
        self._opened(now)
        self._emit(Opened(response, self.subprotocol, extensions))

    def _collect_reject_body(self, eof: bool) -> None:
        reject = self._reject
        assert reject is not None and self.response is not None
        buffer = self._reader.buffer
        length = self.response.get("content-length")
        want = _MAX_REJECT_BODY
        if length is not None and length.strip().isdigit():
            want = min(want, int(length))
        if eof or len(buffer) >= want or (length is None and buffer):
            reject.body = bytes(buffer[:want])
            self._handshake_failed(reject)

    def _client_eof(self) -> None:
        if self._reject is not None:
            self._collect_reject_body(eof=True)
        elif self.response is None:
            self._handshake_failed(HandshakeRejected("connection closed before the handshake response"))

    def _handshake_failed(self, error: Exception) -> None:
        if self.state is State.CLOSED:
            return
        if isinstance(error, HandshakeFailed):
            # A response head over the limit: report it as a bad response.
            error = HandshakeRejected(f"malformed response: {error.reason}")
        self._emit(HandshakeFailure(error))
        self._go_closed(_Input.HANDSHAKE_FAILED)

    def _open_timed_out(self) -> None:
        self._handshake_failed(HandshakeTimeout("opening handshake timed out"))


def _close_payload(code: int | None, reason: str) -> bytes:
    """
    @raise ValueError: C{code} can't be sent or C{reason} is too long.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not is_valid_wire_code(code):
        raise ValueError(f"close code {code} can't be sent (RFC 6455 §7.4)")
    encoded = reason.encode("utf-8")
    if len(encoded) > 123:
        raise ValueError("close reason over 123 bytes")
    return _pack_code(code) + encoded
