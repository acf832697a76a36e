# -*- test-case-name: tests.test_broadcast -*-
"""
One message to many connections, encoded once.

    from wsproto_tw.broadcast import broadcast

    broadcast(factory.connections, '{"price": 101.5}')

The message's frame is built once and the same bytes are written to every
server connection that can take them: all of them without compression,
and, with permessage-deflate, those that compress each message on its own
(C{server_no_context_takeover}, or a policy with C{context_size=0}), one
compressed frame per distinct setting. A connection that keeps a
compression context compresses the message itself (its output depends on
what it sent before), and so does a client (each frame masked with its own
key). Any other L{IWebSocketTransport} (a SockJS session, say) is sent the
message with C{sendText} or C{sendBinary}.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wsproto_tw.connection import WebSocketConnection, sendPreparedEach
from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.errors import InvalidState
from wsproto_tw.core.prepared import PreparedMessage

__all__ = ["PreparedMessage", "broadcast", "sendPrepared"]


def sendPrepared(transport: Any, message: PreparedMessage) -> None:
    """
    Send a prepared message on one L{IWebSocketTransport}: its shared frame
    where the transport takes prepared messages, C{sendText} or
    C{sendBinary} otherwise.
    """
    send = getattr(transport, "sendPrepared", None)
    if send is not None:
        send(message)
    elif message.opcode is Opcode.TEXT:
        transport.sendText(message.message)
    else:
        transport.sendBinary(message.message)


def broadcast(transports: Iterable[Any], message: str | bytes | PreparedMessage) -> int:
    """
    Send one message to every transport in C{transports}, encoding it once.

    @param transports: open L{IWebSocketTransport}s, such as a server
        factory's C{connections} (those still opening are skipped, those
        closing drop the message, as C{sendText} does).
    @param message: C{str} for text, C{bytes} for binary, or a
        L{PreparedMessage} already built.
    @return: how many transports it was sent to: not those still opening,
        nor those in the middle of a message sent in pieces
        (C{beginMessage} without its C{endMessage} yet: a message can't
        go out between its frames, RFC 6455 §5.4), which are skipped.
    @raise TypeError: C{message} is none of these.
    """
    if not isinstance(message, PreparedMessage):
        message = PreparedMessage(message)
    count = 0
    connections = []
    for transport in list(transports):
        if type(transport) is WebSocketConnection:
            if transport.openedAt is not None:
                connections.append(transport)
            continue  # (else still in its opening handshake: skipped)
        if getattr(transport, "openedAt", 0) is None:
            continue  # still in its opening handshake
        try:
            sendPrepared(transport, message)
        except InvalidState:
            continue  # sending a message in pieces: skipped
        count += 1
    # The connections, all in one go (in pieces ones skipped there).
    return count + sendPreparedEach(connections, message)
