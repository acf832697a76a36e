# -*- test-case-name: tests.test_protocol -*-
"""
One WebSocket connection as the application sees it: L{WebSocketConnection}
drives a sans-I/O core over a wire (the loop itself is L{wsproto_tw._pump}).

Above it, the application (L{IWebSocketApplication}) and the connection's
contract with it (L{IWebSocketTransport}). Below it, the wire
(L{IWire}) that carries the bytes: a L{StreamWire
<wsproto_tw.wire.StreamWire>} over a TCP/TLS connection or a C{twisted.web}
channel taken over. The connection knows nothing of which wire it is on,
and parses nothing: the core does.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer
from zope.interface import implementer

from wsproto_tw._pump import Pump, _peer
from wsproto_tw.core.codes import CloseCode
from wsproto_tw.core.connection import Connection
from wsproto_tw.core.errors import InvalidState
from wsproto_tw.flow import FlowControlled
from wsproto_tw.interfaces import IWebSocketTransport, IWireReceiver
from wsproto_tw.wire import writeEach

__all__ = ["WebSocketConnection", "sendPreparedEach"]


@implementer(IWebSocketTransport, IConsumer, IWireReceiver)
class WebSocketConnection(FlowControlled, Pump):
    """
    One WebSocket connection, server or client, over any L{IWire}: the pump
    between the wire, the sans-I/O core and the application.

    Build it through L{wsproto_tw.server.WebSocketServerFactory},
    L{wsproto_tw.resource.WebSocketResource} or L{wsproto_tw.client}.

    Flow control, both ways, is kept by two objects (L{wsproto_tw.flow}):
      - inbound (L{InboundFlow}): the wire stops reading while the
        application has paused it (L{pauseReading}), while more than
        C{Config.max_pending_messages} messages (or C{max_pending_bytes})
        wait for their handler's Deferred, while the server application
        has not answered the opening request, and while the peer does not
        read what we write; the peer then feels backpressure;
      - outbound (L{OutboundFlow}): the wire tells the connection when its
        write buffer is full; that pauses an application producer
        registered with L{registerProducer}, holds L{whenDrained}
        Deferreds, and fails the connection with 1008 when a peer that does
        not read lets more than C{Config.max_write_buffer} bytes pile up or
        keeps the buffer full for C{Config.write_buffer_timeout} seconds.

    @ivar wire: the L{IWire}, once connected.
    @ivar transport: the wire's own Twisted transport (TLS details live
        there), or L{None}. Read it, don't drive it: the connection sends
        on its socket directly, so bytes written to it, C{startTLS} or
        C{abortConnection} called on it are not seen by the connection
        (call the connection's own C{abortConnection}).
    @ivar request: the L{HandshakeRequest <wsproto_tw.core.HandshakeRequest>}
        (server), or L{None}.
    @ivar response: the L{HandshakeResponse
        <wsproto_tw.core.HandshakeResponse>} (client), or L{None}.
    @ivar openedAt: when the connection opened, in seconds on the
        reactor's clock, or L{None} until it opens.
    @ivar lastActivity: when bytes last arrived from the peer, in seconds
        on the reactor's clock (set once per read), or L{None} before any.
    @ivar writesPausedSince: while the peer does not read what we write
        (the wire's write buffer is full), since when, in seconds on the
        reactor's clock; L{None} while it reads. The metrics endpoint's
        C{/status} page lists the connections paused longest as the
        slowest consumers.
    """


    __slots__ = ()

    def __repr__(self) -> str:
        return f"<WebSocketConnection {_peer(self.wire)}>"

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

    @property
    def statistics(self) -> Any:
        """
        What the connection has carried so far, a L{Statistics
        <wsproto_tw.core.stats.Statistics>}, or L{None} before the wire
        connects.
        """
        return None if self._conn is None else self._conn.stats

    @property
    def closeRecord(self) -> Any:
        """
        The close codes sent, received and failed with so far, a
        L{CloseRecord <wsproto_tw.core.stats.CloseRecord>}, or L{None}
        before the wire connects.
        """
        return None if self._conn is None else self._conn.close_record

    def sendText(self, text: str) -> None:
        self._conn.send_text(text)
        if not self._delivering:  # else the pump writes it (no call here)
            self._flushSent()

    def sendBinary(self, data: bytes) -> None:
        self._conn.send_binary(data)
        if not self._delivering:
            self._flushSent()

    def beginMessage(self, binary: bool = False) -> None:
        self._conn.begin_message(binary)

    def sendMessageData(self, data: bytes | str) -> None:
        self._conn.send_message_data(data)
        self._flushSent()

    def endMessage(self, data: bytes | str | None = None) -> None:
        self._conn.end_message(data)
        self._flush()

    def sendPrepared(self, message: Any) -> None:
        """
        Send a message prepared once for many connections (see
        L{wsproto_tw.broadcast}): its frame, built once, is written as it
        is wherever the connection's compression allows.

        @param message: a L{PreparedMessage
            <wsproto_tw.core.prepared.PreparedMessage>}.
        """
        if self._delivering or self._outflow is not None:
            # Within a delivery (the flush comes after it) or with the
            # write buffer's accounting on: the general path.
            self._conn.send_prepared(message)
            self._flushSent()
            return
        frame = self._conn.take_prepared(message)
        if frame is not None:
            self.wire.write(frame)
        else:
            self._flushSent()

    def ping(self, payload: bytes = b"") -> None:
        self._conn.send_ping(payload)
        self._flush()

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        self._conn.send_close(code, reason, now=self._clock.seconds())
        self._flush()

    def abortConnection(self) -> None:
        if self.wire is not None:
            self.wire.abortConnection()

    def dropSlowConsumer(self, reason: str) -> None:
        """
        Drop a peer that does not read what we send, as the connection's
        own write-buffer limits do: the connection fails with 1008 (policy
        violation) and C{reason}, counted as a slow-consumer drop in its
        statistics (and the metrics), and the TCP connection is aborted
        (a closing handshake can't get through a full buffer).

        @param reason: why, for the close reason and the log line.
        """
        if self.wire is not None and self._conn is not None:
            self._writeStalled(reason)

    def whenDrained(self) -> Deferred:
        # Without an OutboundFlow the buffer has never been full: fired at
        # once, and no flow object made for it (a broadcast asks each
        # member, every message).
        outflow = self._outflow
        if outflow is None:
            return succeed(None)
        return outflow.whenDrained()

    def goAway(self, code: int = CloseCode.GOING_AWAY, reason: str = "going away") -> None:
        if self._opened:
            self.close(code, reason)
        elif self.wire is not None:
            self.wire.abortConnection()

    def getPeer(self) -> Any:
        return self.wire.getPeer()

    def getHost(self) -> Any:
        return self.wire.getHost()

    # pauseReading, resumeReading, whenDrained and the IConsumer methods:
    # FlowControlled.


def sendPreparedEach(connections: list[WebSocketConnection], message: Any) -> int:
    """
    L{WebSocketConnection.sendPrepared} on each of C{connections}: a
    broadcast's fan-out, with as little work per recipient as it allows.

    Each connection the core can hand the shared frame to at once (open,
    no compression, nothing queued, no message under way in pieces, not
    inside a delivery, its write buffer never full) is counted by one call
    for them all (L{Connection.take_prepared_each
    <wsproto_tw.core.connection.Connection.take_prepared_each>}), and the
    frame is written to their wires by one call (L{writeEach
    <wsproto_tw.wire.writeEach>}). The others are sent the message one by
    one, as L{WebSocketConnection.sendPrepared} does.

    @param connections: open L{WebSocketConnection}s, each once.
    @param message: a L{PreparedMessage
        <wsproto_tw.core.prepared.PreparedMessage>}.
    @return: how many connections the message was sent to (or dropped by,
        closing): all but those in the middle of a message sent in pieces
        (C{beginMessage} without its C{endMessage} yet, RFC 6455 §5.4) or
        still opening, which raise L{InvalidState} and are skipped.
    """
    count = 0
    ready = []
    cores = []
    wires = []
    for connection in connections:
        if connection._delivering or connection._outflow is not None:
            try:
                connection.sendPrepared(message)
            except InvalidState:
                continue
            count += 1
        else:
            ready.append(connection)
            cores.append(connection._conn)
            wires.append(connection.wire)
    count += len(ready)
    left = Connection.take_prepared_each(cores, message)
    if left:
        # Not taken (queued behind other bytes, compressed, closing, ...):
        # sent the message one by one, after the others.
        for i in left:
            wires[i] = None
        wires = [wire for wire in wires if wire is not None]
    if wires:
        writeEach(wires, message.frame())
    for i in left:
        try:
            ready[i].sendPrepared(message)
        except InvalidState:
            count -= 1
    return count
