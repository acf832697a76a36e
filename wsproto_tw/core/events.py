# -*- test-case-name: tests.core.test_connection -*-
"""
Events: things that happened on a connection, as the core reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsproto_tw.core.handshake import HandshakeRequest, HandshakeResponse


@dataclass(frozen=True, slots=True)
class Event:
    """
    Base class of every event.
    """


@dataclass(frozen=True, slots=True)
class RequestReceived(Event):
    """
    Server: a valid opening request arrived; call C{accept()} or C{reject()}.

    @ivar subprotocol: the subprotocol the configuration picks, or L{None}.
    """

    request: HandshakeRequest
    subprotocol: str | None


@dataclass(frozen=True, slots=True)
class Opened(Event):
    """
    Client: the server accepted; the connection is open.
    """

    response: HandshakeResponse
    subprotocol: str | None
    extensions: str | None


@dataclass(frozen=True, slots=True)
class HandshakeFailure(Event):
    """
    The opening handshake failed: the server answered an error status, or the
    client got a bad answer, or the deadline passed.

    @ivar error: a L{wsproto_tw.core.errors.HandshakeFailed} (server) or
        L{wsproto_tw.core.errors.HandshakeRejected} /
        L{wsproto_tw.core.errors.HandshakeTimeout} (client).
    """

    error: Exception


@dataclass(frozen=True, slots=True)
class TextMessage(Event):
    text: str


@dataclass(frozen=True, slots=True)
class BinaryMessage(Event):
    data: bytes


@dataclass(frozen=True, slots=True)
class MessageStarted(Event):
    """
    Streaming mode (L{Connection.stream_messages
    <wsproto_tw.core.connection.Connection.stream_messages>}): the first
    frame of a data message arrived. L{MessageData} events follow with its
    content, then L{MessageEnded}, unless the connection fails first (a
    L{ConnectionFailed} then ends the message). Control events (L{Ping},
    L{Pong}, L{CloseReceived}) may come between them (RFC 6455 §5.4).

    @ivar binary: C{True} for a binary message, C{False} for text.
    """

    binary: bool


@dataclass(frozen=True, slots=True)
class MessageData(Event):
    """
    Streaming mode: the next piece of the message under way, as it arrived
    (a frame, or the part of one that a read brought), never empty.

    @ivar data: C{bytes} (binary, inflated if compressed) or C{str} (text,
        decoded incrementally: a code point split between pieces comes out
        whole with the later one).
    """

    data: bytes | str


@dataclass(frozen=True, slots=True)
class MessageEnded(Event):
    """
    Streaming mode: the message under way is complete (its last frame,
    with FIN, arrived, and for text the whole is valid UTF-8).
    """


@dataclass(frozen=True, slots=True)
class Ping(Event):
    """
    A ping arrived; the core has already queued the pong.
    """

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong(Event):
    """
    A pong arrived.

    @ivar rtt: the round-trip time in seconds when this pong answers the
        core's own keepalive ping, else L{None}.
    """

    payload: bytes
    rtt: float | None = None


@dataclass(frozen=True, slots=True)
class CloseReceived(Event):
    """
    The peer sent a Close frame; the core has already answered it if needed.
    """

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed(Event):
    """
    The core failed the connection (RFC 6455 §7.1.7): the peer broke the
    protocol or a limit, or a timeout passed.

    @ivar error: the unexpected exception when the core failed because of a
        bug of its own (code 1011), with its traceback, for the caller to
        log; else L{None}.
    """

    code: int
    reason: str
    error: BaseException | None = field(default=None, compare=False, repr=False)
