# -*- test-case-name: tests.stomp.test_session -*-
"""
One client's STOMP session on the server: bytes in, frames, events and
WebSocket messages out. Sans-I/O: time arrives as C{now}, authentication
is a pair of commands the layer above calls after L{ConnectRequested}.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from typing import Any

from wsproto_tw.stomp.broker import AckMode, Broker, Message, Subscription
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.errors import (
    AuthenticationFailed,
    DestinationError,
    FrameError,
    ProtocolError,
    StompError,
    VersionMismatch,
)
from wsproto_tw.stomp.events import ConnectRequested, SessionEnded, SessionFailed
from wsproto_tw.stomp.frames import Command, Frame, FrameReader, Version, escape, serialize
from wsproto_tw.stomp.routing import Router

__all__ = ["ApplicationRequest", "SessionState", "StompSession", "encode_body", "negotiate_heart_beat"]

_logger = logging.getLogger("wsproto_tw.stomp")


def _size(frame: Frame) -> int:
    """
    @return: the octets C{frame} holds, as counted against
        L{StompConfig.max_transaction_bytes}: its body and its headers'
        names and values.
    """
    return len(frame.body) + sum(len(name) + len(value) for name, value in frame.headers)


# Headers a SEND carries that are not passed on to the MESSAGE frames.
_SEND_ONLY = frozenset({"destination", "transaction", "receipt", "content-length", "message-id", "subscription", "ack"})
_TRANSACTED = frozenset({"SEND", "ACK", "NACK"})


class SessionState(enum.Enum):
    """
    Where a session is: waiting for C{CONNECT}, waiting for the
    authentication answer, connected, or closed (after C{ERROR} or
    C{DISCONNECT}, or when the connection is gone).
    """

    AWAITING_CONNECT = "awaiting-connect"
    AUTHENTICATING = "authenticating"
    CONNECTED = "connected"
    CLOSED = "closed"


def negotiate_heart_beat(ours: tuple[int, int], theirs: tuple[int, int]) -> tuple[int, int]:
    """
    The heart-beat intervals of a session (STOMP 1.2, "Heart-beating").

    @param ours: (cx, cy) of the server: we can send every cx ms, we want
        to receive every cy ms.
    @param theirs: (cx, cy) of the client's C{CONNECT}.
    @return: (send, receive) in milliseconds: how often we send a
        heart-beat, and how often we expect traffic; C{0} for never. Each
        is the larger of what the two sides asked, or C{0} if either side
        said C{0}.
    """
    send = 0 if ours[0] == 0 or theirs[1] == 0 else max(ours[0], theirs[1])
    receive = 0 if ours[1] == 0 or theirs[0] == 0 else max(ours[1], theirs[0])
    return send, receive


def encode_body(body: str | bytes, headers: Sequence[tuple[str, str]] = ()) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """
    A body and its headers as a frame carries them: a C{str} is encoded
    as UTF-8 and labelled C{text/plain;charset=utf-8} unless C{headers}
    already has a C{content-type}.

    @raise TypeError: C{body} is neither C{str} nor C{bytes}.
    """
    headers = tuple(headers)
    if isinstance(body, str):
        if not any(name == "content-type" for name, _ in headers):
            headers += (("content-type", "text/plain;charset=utf-8"),)
        return body.encode("utf-8"), headers
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), headers
    raise TypeError(f"a body must be str or bytes, not {type(body).__name__}")


def _passed_on(headers: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    # User headers of a SEND, the first of each name only.
    seen: set[str] = set()
    out = []
    for name, value in headers:
        if name in _SEND_ONLY or name in seen:
            continue
        seen.add(name)
        out.append((name, value))
    return tuple(out)


class ApplicationRequest:
    """
    A frame sent to an application destination, as its handler sees it.

    @ivar session: the sender's L{StompSession} (C{principal},
        C{subprotocol}, C{session_id}, C{version}).
    @ivar destination: the destination the frame was sent to.
    @ivar params: the values of the matched pattern's parameters.
    @ivar headers: the frame's headers.
    @ivar body: the frame's body octets.
    """

    def __init__(self, session: StompSession, frame: Frame, params: dict[str, str]) -> None:
        self.session = session
        self.destination = frame.get("destination") or ""
        self.params = params
        self.headers = frame.headers
        self.body = frame.body

    @property
    def text(self) -> str:
        """
        The body decoded as UTF-8.

        @raise UnicodeDecodeError: it is not UTF-8.
        """
        return self.body.decode("utf-8")

    def reply(self, destination: str, body: str | bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        """
        Send a C{MESSAGE} to the sender alone, on each of its subscriptions
        to C{destination} (none: nothing is sent).
        """
        self.session.send_message(destination, body, headers)

    def publish(self, destination: str, body: str | bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        """
        Send a message to any broker destination, as a C{SEND} would.

        @raise DestinationError: the destination is unknown or full.
        """
        data, headers = encode_body(body, headers)
        self.session.broker.publish(Message(destination, _passed_on(headers), data))


class StompSession:
    """
    A server-side STOMP session.

    Feed it what the client sent with L{receive_data}; take the events
    with L{events}, the WebSocket messages to send with
    L{messages_to_send} (a C{str} goes as a text message, C{bytes} as a
    binary one: a frame whose octets are not UTF-8), and close the
    connection once C{wants_close} is true. Drive heart-beats with
    L{next_deadline} and L{handle_timer}.

    The broker delivers to the session at any time (another session sent
    something); then C{wake}, when set, is called so the layer above
    flushes.

    @ivar state: the L{SessionState}.
    @ivar version: the negotiated L{Version}, or L{None} before.
    @ivar principal: the authenticated user name, or L{None}.
    @ivar heart_beat: negotiated (send, receive) intervals in ms.
    @ivar wants_close: the connection should be closed once the pending
        messages are sent.
    @ivar wake: called with no arguments when messages are queued outside
        L{receive_data} and L{handle_timer}.
    @ivar frames_received: the frames the client sent, by command (plain
        counts, for L{wsproto_tw.metrics}).
    @ivar messages_delivered: the C{MESSAGE} frames queued for the client.
    @ivar errors_sent: the C{ERROR} frames queued for the client.
    """

    def __init__(
        self,
        config: StompConfig,
        broker: Broker,
        *,
        session_id: str,
        subprotocol: str | None = None,
        router: Router | None = None,
        now: float = 0.0,
    ) -> None:
        """
        @param subprotocol: the WebSocket subprotocol answered; a STOMP one
            fixes the version the session accepts.
        @param router: the handlers of application destinations.
        @param now: the time the session starts, in seconds.
        """
        self.config = config
        self.broker = broker
        self.session_id = session_id
        self.subprotocol = subprotocol
        self.router = router
        self.state = SessionState.AWAITING_CONNECT
        self.version: Version | None = None
        self.principal: str | None = None
        self.heart_beat = (0, 0)
        self.wants_close = False
        self.wake: Callable[[], None] | None = None
        self._reader = FrameReader(
            max_frame_size=config.max_frame_size,
            max_headers=config.max_headers,
            max_header_line=config.max_header_line,
        )
        self._events: list[Any] = []
        self._out: list[str | bytes] = []
        self._subscriptions: dict[str, Subscription] = {}
        self._transactions: dict[str, list[Frame]] = {}
        self._transaction_bytes = 0
        self._pending_connect: tuple[Version, tuple[int, int]] | None = None
        self._send_at: float | None = None
        self._receive_by: float | None = None
        self._connect_by = None if config.connect_timeout is None else now + config.connect_timeout
        # When the frame now partly received must be complete.
        self._frame_by: float | None = None
        self._replies = 0
        self.frames_received: dict[str, int] = {}
        self.messages_delivered = 0
        self.errors_sent = 0

    @property
    def subscription_count(self) -> int:
        """
        The client's subscriptions now.
        """
        return len(self._subscriptions)

    # Output

    def events(self) -> list[Any]:
        """
        @return: the events since the last call, oldest first.
        """
        events, self._events = self._events, []
        return events

    def messages_to_send(self) -> list[str | bytes]:
        """
        @return: the WebSocket messages to send since the last call, each
            one frame or one heart-beat (C{"\\n"}).
        """
        out, self._out = self._out, []
        return out

    def _send(self, frame: Frame) -> None:
        data = serialize(frame, self.version)
        try:
            self._out.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            self._out.append(data)

    def _wake(self) -> None:
        if self.wake is not None:
            self.wake()

    # Input

    def receive_data(self, data: bytes, *, now: float) -> None:
        """
        The client sent C{data}: the octets of a text (UTF-8 encoded) or
        binary WebSocket message. Frames may be split across messages or
        packed several to one. Never raises for what the client did: an
        error queues C{ERROR} and sets C{wants_close}.
        """
        if self.state is SessionState.CLOSED:
            return
        if self._receive_by is not None:
            self._receive_by = now + self.heart_beat[1] * self.config.heart_beat_grace / 1000
        self._reader.feed(data)
        self._advance(now)

    def _advance(self, now: float) -> None:
        frame = None
        try:
            while self.state in (SessionState.AWAITING_CONNECT, SessionState.CONNECTED):
                frame = self._reader.next_frame()
                if frame is None:
                    # Part of a frame waits (heart-beat octets are skipped
                    # by next_frame): its deadline runs from its first octet.
                    if not self._reader.buffered:
                        self._frame_by = None
                    elif self._frame_by is None and self.config.frame_timeout is not None:
                        self._frame_by = now + self.config.frame_timeout
                    return
                self._frame_by = None
                counts = self.frames_received
                counts[frame.command] = counts.get(frame.command, 0) + 1
                self._handle(frame, now)
                frame = None
        except StompError as exc:
            self._fail(exc, frame)
        except Exception:
            _logger.exception("stomp session %s: internal error", self.session_id)
            self._fail(StompError("internal error"), frame)

    def _handle(self, frame: Frame, now: float) -> None:
        command = frame.command
        if self.state is SessionState.AWAITING_CONNECT:
            if command not in (Command.CONNECT, Command.STOMP):
                raise ProtocolError(f"expected CONNECT, got {command}")
            self._connect(frame)
            return
        if command in (Command.CONNECT, Command.STOMP):
            raise ProtocolError("already connected")
        if command == Command.DISCONNECT:
            self._receipt(frame)
            self._close()
            self._events.append(SessionEnded())
            return
        transaction = frame.get("transaction")
        if command in _TRANSACTED and transaction is not None:
            frames = self._transaction(transaction)
            if len(frames) >= self.config.max_transaction_frames:
                raise ProtocolError(f"transaction {transaction} has too many frames")
            size = _size(frame)
            if self._transaction_bytes + size > self.config.max_transaction_bytes:
                raise ProtocolError(
                    f"open transactions hold too many bytes (at most {self.config.max_transaction_bytes})"
                )
            self._check(frame)
            frames.append(frame)
            self._transaction_bytes += size
        elif command == Command.BEGIN:
            name = self._required(frame, "transaction")
            if name in self._transactions:
                raise ProtocolError(f"transaction {name} is already open")
            if len(self._transactions) >= self.config.max_transactions:
                raise ProtocolError(f"too many open transactions (at most {self.config.max_transactions})")
            self._transactions[name] = []
        elif command == Command.COMMIT:
            frames = self._transaction(self._required(frame, "transaction"))
            del self._transactions[frame.get("transaction")]
            self._transaction_bytes -= sum(_size(buffered) for buffered in frames)
            for buffered in frames:
                self._apply(buffered)
        elif command == Command.ABORT:
            frames = self._transaction(self._required(frame, "transaction"))
            del self._transactions[frame.get("transaction")]
            self._transaction_bytes -= sum(_size(buffered) for buffered in frames)
        elif command == Command.SUBSCRIBE:
            self._subscribe(frame)
        elif command == Command.UNSUBSCRIBE:
            self._unsubscribe(frame)
        elif command in _TRANSACTED:
            self._check(frame)
            self._apply(frame)
        else:
            raise ProtocolError(f"unknown command {command}")
        self._receipt(frame)

    @staticmethod
    def _required(frame: Frame, name: str) -> str:
        value = frame.get(name)
        if value is None:
            raise ProtocolError(f"{frame.command} without header {name}")
        return value

    def _transaction(self, name: str) -> list[Frame]:
        frames = self._transactions.get(name)
        if frames is None:
            raise ProtocolError(f"unknown transaction {name}")
        return frames

    def _receipt(self, frame: Frame) -> None:
        receipt = frame.get("receipt")
        if receipt is not None:
            self._send(Frame(Command.RECEIPT, (("receipt-id", receipt),)))

    # CONNECT

    def _connect(self, frame: Frame) -> None:
        accepted = frame.get("accept-version")
        offered = {"1.0"} if accepted is None else {v.strip() for v in accepted.split(",")}
        ours = self.config.versions
        pinned = Version.from_subprotocol(self.subprotocol) if self.subprotocol else None
        if pinned is not None:
            ours = (pinned,)
        common = [v for v in ours if v.value in offered]
        if not common:
            listed = ",".join(v.value for v in ours)
            raise VersionMismatch(
                "supported protocol versions are " + " ".join(v.value for v in ours),
                headers=(("version", listed),),
            )
        version = max(common, key=lambda v: v.value)
        heart_beat = (0, 0)
        if version is not Version.V1_0:
            value = frame.get("heart-beat", "0,0")
            parts = value.split(",")
            if len(parts) != 2 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
                raise FrameError("heart-beat must be two numbers of milliseconds")
            heart_beat = (int(parts[0]), int(parts[1]))
        self.state = SessionState.AUTHENTICATING
        self._pending_connect = (version, heart_beat)
        self._events.append(
            ConnectRequested(version, frame.get("login"), frame.get("passcode"), frame.get("host"), frame.headers)
        )

    def accept_connect(self, principal: str | None, *, now: float) -> None:
        """
        Accept the C{CONNECT} that L{ConnectRequested} reported: send
        C{CONNECTED} and go on with the frames that followed it.

        @param principal: the authenticated user, or L{None}.
        @raise ProtocolError: no C{CONNECT} is waiting (caller misuse).
        """
        if self.state is SessionState.CLOSED:
            return
        if self.state is not SessionState.AUTHENTICATING or self._pending_connect is None:
            raise ProtocolError("no CONNECT is waiting for an answer")
        version, theirs = self._pending_connect
        self._pending_connect = None
        self.version = version
        self.principal = principal
        self._reader.version = version
        headers = [("version", version.value)]
        if version is not Version.V1_0:
            self.heart_beat = negotiate_heart_beat(self.config.heart_beat, theirs)
            headers.append(("heart-beat", "%d,%d" % self.config.heart_beat))
        headers += [("server", self.config.server), ("session", self.session_id)]
        if principal is not None:
            headers.append(("user-name", principal))
        self._send(Frame(Command.CONNECTED, tuple(headers)))
        self.state = SessionState.CONNECTED
        self._connect_by = None
        send, receive = self.heart_beat
        self._send_at = now + send / 1000 if send else None
        self._receive_by = now + receive * self.config.heart_beat_grace / 1000 if receive else None
        self._advance(now)

    def reject_connect(self, message: str = "authentication failed") -> None:
        """
        Refuse the waiting C{CONNECT}: send C{ERROR} and close.
        """
        if self.state is SessionState.AUTHENTICATING:
            self._fail(AuthenticationFailed(message), None)

    # Frames of a connected session

    def _check(self, frame: Frame) -> None:
        # The checks that a frame entering a transaction must pass at once.
        if frame.command == Command.SEND:
            self._required(frame, "destination")
        elif frame.command == Command.NACK and self.version is Version.V1_0:
            raise ProtocolError("NACK is not a STOMP 1.0 command")
        else:
            self._ack_target(frame)

    def _ack_target(self, frame: Frame) -> tuple[str, str | None]:
        # STOMP 1.2: the id header, the MESSAGE's ack; 1.1: message-id and
        # subscription; 1.0: message-id.
        if self.version is Version.V1_2:
            return self._required(frame, "id"), None
        if self.version is Version.V1_1:
            return self._required(frame, "message-id"), self._required(frame, "subscription")
        return self._required(frame, "message-id"), frame.get("subscription")

    def _apply(self, frame: Frame) -> None:
        if frame.command == Command.SEND:
            self._publish(frame)
        elif frame.command == Command.ACK:
            self.broker.ack(self, *self._ack_target(frame))
        else:
            self.broker.nack(self, *self._ack_target(frame))

    def _publish(self, frame: Frame) -> None:
        destination = self._required(frame, "destination")
        prefix = self.config.app_prefix
        if prefix is not None and destination.startswith(prefix):
            found = self.router.match(destination) if self.router is not None else None
            if found is None:
                raise DestinationError(f"no handler for {destination}")
            handler, params = found
            try:
                handler(ApplicationRequest(self, frame, params))
            except StompError:
                raise
            except Exception:
                _logger.exception("stomp session %s: handler of %s raised", self.session_id, destination)
                raise StompError(f"the handler of {destination} failed") from None
            return
        self.broker.publish(Message(destination, _passed_on(frame.headers), frame.body))

    def _subscribe(self, frame: Frame) -> None:
        destination = self._required(frame, "destination")
        if self.version is Version.V1_0:
            id = frame.get("id", destination)
        else:
            id = self._required(frame, "id")
        try:
            ack = AckMode(frame.get("ack", "auto"))
        except ValueError:
            raise ProtocolError("ack must be auto, client or client-individual") from None
        if id in self._subscriptions:
            raise ProtocolError(f"subscription id {id} is already in use")
        if len(self._subscriptions) >= self.config.max_subscriptions:
            raise ProtocolError(f"too many subscriptions (at most {self.config.max_subscriptions})")
        # The broker may deliver at once (a queue with waiting messages).
        self._subscriptions[id] = None  # type: ignore[assignment]
        try:
            self._subscriptions[id] = self.broker.subscribe(self, id, destination, ack)
        except BaseException:
            del self._subscriptions[id]
            raise

    def _unsubscribe(self, frame: Frame) -> None:
        if self.version is Version.V1_0:
            id = frame.get("id", frame.get("destination"))
            if id is None:
                raise ProtocolError("UNSUBSCRIBE without an id or destination header")
        else:
            id = self._required(frame, "id")
        if id not in self._subscriptions:
            raise ProtocolError(f"no subscription {id}")
        del self._subscriptions[id]
        self.broker.unsubscribe(self, id)

    # What the broker and the application call

    def deliver(self, subscription: Subscription, message_id: str, message: Message) -> None:
        """
        Queue a C{MESSAGE} frame of C{subscription} (the broker calls this).
        """
        if self.state is not SessionState.CONNECTED:
            return
        version = self.version
        # The octets after the per-subscription headers are the same for
        # every subscriber of this version: made once per message.
        tail = message.wire.get(version)
        if tail is None:
            tail = message.wire[version] = self._message_tail(message)
        # The escaped destination and subscription id, once per subscription.
        head = subscription.wire
        if head is None:
            try:
                destination = escape(subscription.destination, version, "MESSAGE")
                id = escape(subscription.id, version, "MESSAGE")
            except ValueError:
                self.fail(StompError(f"a message to {subscription.destination} can't be written in STOMP {version.value}"))
                return
            head = subscription.wire = (
                "MESSAGE\ndestination:" + destination + "\nmessage-id:",
                "\nsubscription:" + id,
                version is Version.V1_2 and subscription.ack is not AckMode.AUTO,
            )
        before, after, ack = head
        # Message ids are ours: digits, or a session id and digits.
        text = before + message_id + after + ("\nack:" + message_id if ack else "")
        self._out.append(text + tail if isinstance(tail, str) else text.encode("utf-8") + tail)
        self.messages_delivered += 1
        self._wake()

    def _message_tail(self, message: Message) -> str | bytes:
        # User headers, content-length, blank line, body, NUL: as text when
        # it is UTF-8 (a text WebSocket message), else as octets.
        headers = message.headers
        if self.version is Version.V1_0:
            # STOMP 1.0 can't carry a line break in a header, nor a colon in
            # a name: such user headers are left out.
            headers = tuple(
                (name, value) for name, value in headers
                if ":" not in name and not any(c in name + value for c in "\r\n")
            )
        headers += (("content-length", str(len(message.body))),)
        lines = "".join(
            "\n" + escape(name, self.version, "MESSAGE") + ":" + escape(value, self.version, "MESSAGE")
            for name, value in headers
        )
        data = (lines + "\n\n").encode("utf-8") + message.body + b"\x00"
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data

    def send_message(self, destination: str, body: str | bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        """
        Send a C{MESSAGE} to this session alone, on each of its
        subscriptions to C{destination}. Messages sent this way are never
        waiting for an acknowledgement.
        """
        data, headers = encode_body(body, headers)
        message = Message(destination, _passed_on(headers), data)
        for subscription in list(self._subscriptions.values()):
            if subscription is not None and subscription.destination == destination:
                self._replies += 1
                self.deliver(
                    Subscription(self, subscription.id, destination, AckMode.AUTO),
                    f"{self.session_id}-reply-{self._replies}", message,
                )

    def fail(self, error: StompError) -> None:
        """
        Send C{ERROR} for C{error} and close (the broker calls this, e.g.
        for a slow consumer).
        """
        if self.state is not SessionState.CLOSED:
            self._fail(error, None)
            self._wake()

    def _fail(self, error: StompError, frame: Frame | None) -> None:
        headers = [("message", " ".join(error.message.splitlines()))]
        if frame is not None and frame.get("receipt") is not None:
            headers.append(("receipt-id", frame.get("receipt")))  # type: ignore[arg-type]
        headers += error.headers
        body = error.detail.encode("utf-8")
        if body:
            headers.append(("content-type", "text/plain;charset=utf-8"))
        headers.append(("content-length", str(len(body))))
        self._send(Frame(Command.ERROR, tuple(headers), body))
        self.errors_sent += 1
        self._events.append(SessionFailed(error))
        self._close()

    def _close(self) -> None:
        self.state = SessionState.CLOSED
        self.wants_close = True
        self._send_at = self._receive_by = self._connect_by = None
        self._end()

    def _end(self) -> None:
        self._transactions.clear()
        self._transaction_bytes = 0
        self._subscriptions.clear()
        self.broker.detach(self)

    def connection_lost(self) -> None:
        """
        The connection is gone: end the subscriptions (the broker delivers
        their unacknowledged queue messages again) and drop open
        transactions.
        """
        if self.state is not SessionState.CLOSED:
            self.state = SessionState.CLOSED
            self._send_at = self._receive_by = self._connect_by = None
            self._end()

    # Heart-beats

    def next_deadline(self) -> float | None:
        """
        @return: when L{handle_timer} must next be called, or L{None}.
        """
        pending = [t for t in (self._send_at, self._receive_by, self._connect_by, self._frame_by) if t is not None]
        return min(pending, default=None)

    def handle_timer(self, *, now: float) -> None:
        """
        Send a heart-beat if one is due; fail the session if the client
        has been silent for longer than its heart-beat allows, if it
        is not connected C{connect_timeout} seconds after the start, or if
        a frame it began has not ended C{frame_timeout} seconds later.
        """
        if self._connect_by is not None and now >= self._connect_by:
            self._fail(StompError(f"no CONNECT accepted within {self.config.connect_timeout:g} seconds"), None)
            return
        if self._receive_by is not None and now >= self._receive_by:
            self._fail(StompError(f"no heart-beat from the client in {self.heart_beat[1]} ms"), None)
            return
        if self._frame_by is not None and now >= self._frame_by:
            self._fail(StompError(f"a frame was not complete within {self.config.frame_timeout:g} seconds"), None)
            return
        if self._send_at is not None and now >= self._send_at:
            self._out.append("\n")
            self._send_at = now + self.heart_beat[0] / 1000
