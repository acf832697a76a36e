# -*- test-case-name: tests.stomp.test_relay -*-
"""
The sans-I/O half of a relay to an external STOMP broker (RabbitMQ with
C{rabbitmq_stomp}, ActiveMQ, Artemis), the model Spring's broker relay set:

  - L{BrokerLink}: one client connection to the broker, as bytes in and
    bytes out: C{CONNECT} with the relay's credentials and virtual host,
    C{CONNECTED}, heart-beats both ways, frames.
  - L{RelaySession}: a client's L{StompSession} whose frames, once it is
    connected, go to its own broker connection unchanged (C{SUBSCRIBE},
    C{UNSUBSCRIBE}, C{SEND}, C{ACK}, C{NACK}, C{BEGIN}, C{COMMIT},
    C{ABORT}, with their C{receipt} headers), except C{SEND}s to the
    application prefix, which go to the application's handlers as
    before; the broker's C{MESSAGE}, C{RECEIPT} and C{ERROR} frames go
    back to the client unchanged.

The Twisted half is L{wsproto_tw.stomp.relayclient}. Nothing here imports
Twisted, reads a clock or does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsproto_tw.stomp.broker import AckMode, Subscription
from wsproto_tw.stomp.errors import StompError
from wsproto_tw.stomp.events import SessionFailed
from wsproto_tw.stomp.frames import Command, Frame, FrameReader, Version, serialize
from wsproto_tw.stomp.session import SessionState, StompSession, negotiate_heart_beat

__all__ = ["BROKER_NOT_AVAILABLE", "BrokerConnected", "BrokerFailed", "BrokerLink", "LinkState", "RelaySession"]

#: The C{message} of the C{ERROR} a client gets when its broker connection
#: can't be opened or is lost.
BROKER_NOT_AVAILABLE = "broker not available"

# The frames of a connected client that go to its broker connection.
_RELAYED = frozenset({"SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK", "BEGIN", "COMMIT", "ABORT"})


class LinkState(enum.Enum):
    """
    Where a L{BrokerLink} is: C{CONNECT} sent, C{CONNECTED} received, or
    closed (by either side, or failed).
    """

    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


@dataclass(frozen=True)
class BrokerConnected:
    """
    The broker answered C{CONNECTED}.

    @ivar version: the version the broker chose.
    @ivar heart_beat: the negotiated (send, receive) intervals in ms.
    @ivar headers: every header of the C{CONNECTED} frame.
    """

    version: Version
    heart_beat: tuple[int, int]
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BrokerFailed:
    """
    The link is unusable: the broker refused C{CONNECT} (its C{ERROR}'s
    C{message}), sent bytes that are not frames, went silent past its
    heart-beat, or did not answer in time. The connection should be
    closed.

    @ivar message: what went wrong, in lower case.
    """

    message: str


class BrokerLink:
    """
    One STOMP connection to a broker, client side, sans-I/O.

    Feed it what the broker sent with L{receive_data}; take events with
    L{events} (L{BrokerConnected} once, then each received L{Frame}, and
    L{BrokerFailed} when it fails), the octets to write with
    L{data_to_send}, and close the connection once C{wants_close} is
    true. Drive heart-beats and the C{CONNECTED} timeout with
    L{next_deadline} and L{handle_timer}.

    @ivar state: the L{LinkState}.
    @ivar version: the version in use: the one asked for until the broker
        answers.
    @ivar heart_beat: negotiated (send, receive) intervals in ms.
    @ivar wants_close: the connection should be closed once the pending
        octets are written.
    """

    def __init__(
        self,
        *,
        version: Version = Version.V1_2,
        login: str | None = None,
        passcode: str | None = None,
        host: str | None = None,
        heart_beat: tuple[int, int] = (10000, 10000),
        heart_beat_grace: float = 2.0,
        connect_timeout: float = 10.0,
        max_frame_size: int = 1 << 20,
        now: float,
    ) -> None:
        """
        Queue the C{CONNECT} frame.

        @param version: the version to ask for (C{accept-version}).
        @param login: the C{login} header, or L{None} for none.
        @param passcode: the C{passcode} header, or L{None} for none.
        @param host: the C{host} header (RabbitMQ reads it as the virtual
            host), or L{None} for none.
        @param heart_beat: (cx, cy) in ms as C{CONNECT} announces them.
        @param heart_beat_grace: the broker may be silent this many times
            its negotiated interval.
        @param connect_timeout: seconds for C{CONNECTED} to arrive.
        @param now: the time, in seconds.
        """
        self.state = LinkState.CONNECTING
        self.version = version
        self.heart_beat = (0, 0)
        self.wants_close = False
        self._ours = heart_beat
        self._grace = heart_beat_grace
        self._reader = FrameReader(max_frame_size=max_frame_size)
        self._events: list[Any] = []
        self._out: list[bytes] = []
        self._connect_by: float | None = now + connect_timeout
        self._send_at: float | None = None
        self._receive_by: float | None = None
        headers = [("accept-version", version.value)]
        if host is not None:
            headers.append(("host", host))
        if login is not None:
            headers.append(("login", login))
        if passcode is not None:
            headers.append(("passcode", passcode))
        if version is not Version.V1_0:
            headers.append(("heart-beat", "%d,%d" % heart_beat))
        self._out.append(serialize(Frame(Command.CONNECT, tuple(headers)), None))

    # Output

    def events(self) -> list[Any]:
        """
        @return: the events since the last call, oldest first.
        """
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """
        @return: the octets to write since the last call.
        """
        out, self._out = b"".join(self._out), []
        return out

    def send(self, frame: Frame) -> None:
        """
        Queue C{frame} for the broker, as the link's version writes it;
        a body with a NUL in it gets a C{content-length}.

        @raise StompError: the link is not connected.
        @raise ValueError: a header can't be written in the version.
        """
        if self.state is not LinkState.CONNECTED:
            raise StompError(BROKER_NOT_AVAILABLE)
        if b"\x00" in frame.body and frame.get("content-length") is None:
            frame = Frame(frame.command, frame.headers + (("content-length", str(len(frame.body))),), frame.body)
        self._out.append(serialize(frame, self.version))

    def disconnect(self) -> None:
        """
        End the link: C{DISCONNECT} if connected, then close.
        """
        if self.state is LinkState.CONNECTED:
            self._out.append(serialize(Frame(Command.DISCONNECT), self.version))
        self._close()

    def _close(self) -> None:
        self.state = LinkState.CLOSED
        self.wants_close = True
        self._connect_by = self._send_at = self._receive_by = None

    def _fail(self, message: str) -> None:
        if self.state is not LinkState.CLOSED:
            self._close()
            self._events.append(BrokerFailed(message))

    # Input

    def receive_data(self, data: bytes, *, now: float) -> None:
        """
        The broker sent C{data}. Never raises for what the broker did: a
        fault is a L{BrokerFailed} event.
        """
        if self.state is LinkState.CLOSED:
            return
        if self._receive_by is not None:
            self._receive_by = now + self.heart_beat[1] * self._grace / 1000
        self._reader.feed(data)
        try:
            while self.state is not LinkState.CLOSED:
                frame = self._reader.next_frame()
                if frame is None:
                    return
                self._handle(frame, now)
        except StompError as exc:
            self._fail(f"the broker sent a bad frame: {exc.message}")

    def _handle(self, frame: Frame, now: float) -> None:
        if self.state is LinkState.CONNECTING:
            if frame.command != Command.CONNECTED:
                self._fail(frame.get("message") or f"the broker answered {frame.command}")
                return
            try:
                self.version = Version(frame.get("version", "1.0"))
            except ValueError:
                self._fail("the broker chose an unknown version")
                return
            self._reader.version = self.version
            theirs = (0, 0)
            parts = frame.get("heart-beat", "0,0").split(",")
            if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
                theirs = (int(parts[0]), int(parts[1]))
            self.heart_beat = negotiate_heart_beat(self._ours, theirs)
            send, receive = self.heart_beat
            self._send_at = now + send / 1000 if send else None
            self._receive_by = now + receive * self._grace / 1000 if receive else None
            self._connect_by = None
            self.state = LinkState.CONNECTED
            self._events.append(BrokerConnected(self.version, self.heart_beat, frame.headers))
            return
        self._events.append(frame)
        if frame.command == Command.ERROR:
            # STOMP 1.2, "ERROR": the broker closes the connection after it.
            self._close()

    def receive_eof(self) -> None:
        """
        The connection is gone.
        """
        self._fail("the broker closed the connection")

    # Time

    def next_deadline(self) -> float | None:
        """
        @return: when L{handle_timer} must next be called, or L{None}.
        """
        pending = [t for t in (self._connect_by, self._send_at, self._receive_by) if t is not None]
        return min(pending, default=None)

    def handle_timer(self, *, now: float) -> None:
        """
        Fail if C{CONNECTED} is late or the broker is silent past its
        heart-beat; send a heart-beat when one is due.
        """
        if self._connect_by is not None and now >= self._connect_by:
            self._fail("the broker did not answer CONNECT in time")
            return
        if self._receive_by is not None and now >= self._receive_by:
            self._fail(f"no heart-beat from the broker in {self.heart_beat[1]} ms")
            return
        if self._send_at is not None and now >= self._send_at:
            self._out.append(b"\n")
            self._send_at = now + self.heart_beat[0] / 1000


class RelaySession(StompSession):
    """
    A L{StompSession} whose broker is external: once connected, the
    client's frames other than C{CONNECT}, C{DISCONNECT} and C{SEND}s to
    the application prefix are handed to C{forward} as they are (the
    broker answers their receipts), and the broker's frames come back
    through L{broker_frame_received}.

    The session's own broker (C{broker}) still carries what the
    application's handlers publish, and is told when the session ends
    (C{detach}). A handler's C{reply} reaches the client on its
    subscriptions to the destination, as the client named them.

    @ivar forward: called with each L{Frame} for the broker, once set by
        the layer above (when the broker accepted the session's link).
    """

    forward: Callable[[Frame], None] | None = None

    def _handle(self, frame: Frame, now: float) -> None:
        if self.state is SessionState.CONNECTED and frame.command in _RELAYED:
            prefix = self.config.app_prefix
            destination = frame.get("destination") or ""
            application = (
                frame.command == Command.SEND and prefix is not None and destination.startswith(prefix)
            )
            if not application:
                if self.forward is None:
                    raise StompError(BROKER_NOT_AVAILABLE)
                self.forward(frame)
                self._track(frame)
                return
        super()._handle(frame, now)

    def _track(self, frame: Frame) -> None:
        # The client's subscriptions as it named them, for what handlers
        # send it alone (ApplicationRequest.reply); the broker has the real
        # ones.
        if frame.command == Command.SUBSCRIBE:
            destination = frame.get("destination")
            id = frame.get("id", destination)
            if destination is not None and id is not None:
                self._subscriptions[id] = Subscription(self, id, destination, AckMode.AUTO)
        elif frame.command == Command.UNSUBSCRIBE:
            self._subscriptions.pop(frame.get("id", frame.get("destination")) or "", None)

    def broker_frame_received(self, frame: Frame) -> None:
        """
        The broker sent C{frame} on this session's link: pass it to the
        client. An C{ERROR} ends the session (the broker closes its
        connection after one).
        """
        if self.state is not SessionState.CONNECTED:
            return
        if frame.command == Command.CONNECTED:
            return
        try:
            self._send(frame)
        except ValueError:
            self.fail(StompError(f"a {frame.command} of the broker can't be written in STOMP {self.version.value}"))
            return
        if frame.command == Command.MESSAGE:
            self.messages_delivered += 1
        elif frame.command == Command.ERROR:
            self.errors_sent += 1
            self._events.append(SessionFailed(StompError(frame.get("message") or "broker error")))
            self._close()
        self._wake()
