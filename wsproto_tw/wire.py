# -*- test-case-name: tests.test_protocol -*-
"""
The stream wire: a WebSocket connection carried by a byte stream, a TCP or
TLS connection after an HTTP/1.1 upgrade or a C{twisted.web} channel taken
over. It is the Twisted L{Protocol} of that stream, and the L{IWire} of one
L{WebSocketConnection <wsproto_tw.connection.WebSocketConnection>}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.interfaces import IWire

__all__ = ["StreamWire"]

#: Pieces from this size on are handed to a plain TCP transport only once its
#: write buffer is empty (see L{StreamWire.writeSequence}).
LARGE_PIECE = 1 << 20


# StreamWire._flags: the transport looks like Twisted's plain TCP
# connection; it says its buffer is full; the connection was told the
# writes paused; it asked to close once what is held has gone out.
_PLAIN = 1
_FULL = 2
_TOLD = 4
_CLOSING = 8


def _plainTCP(transport: Any) -> bool:
    """
    @return: whether C{transport} is Twisted's own TCP connection without
        TLS, the transport whose write buffer L{StreamWire} looks into.
    """
    return (
        isinstance(transport, tcp.Connection)
        and not getattr(transport, "TLS", False)
        and hasattr(transport, "_tempDataLen")
        and hasattr(transport, "dataBuffer")
        and hasattr(transport, "offset")
        and hasattr(transport, "_writeDisconnecting")
    )


def _idle(transport: Any) -> bool:
    """
    @return: whether a plain TCP transport is connected, not closing, still
        without TLS, and has nothing left to send.
    """
    return (
        transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnecting
        and not transport._writeDisconnected
        and not getattr(transport, "TLS", False)  # startTLS since: bytes go through TLS
        and not transport._tempDataLen
        and transport.offset == len(transport.dataBuffer)
    )


@implementer(IWire, IPushProducer, IHalfCloseableProtocol)
class StreamWire(Protocol):
    """
    Moves bytes between a stream transport and a connection (an
    L{IWireReceiver <wsproto_tw.interfaces.IWireReceiver>}), and relays the
    transport's write-buffer state: it registers as the transport's push
    producer, so the transport tells it when its buffer is full.

    A peer that shuts down only its sending side (a TCP half-close, a FIN
    while it still reads) is told what we still have to say, such as the
    answer to its Close frame (RFC 6455 section 7.1.1), before the
    connection closes.

    @ivar connection: the L{IWireReceiver} it carries.
    @ivar factory: the connection's C{factory} (kept there, not here).
    """

    def __init__(self, connection: Any) -> None:
        # Every attribute is set here, even those Twisted sets later: then
        # all instances share one table of attribute names (CPython's
        # key-sharing instance dicts). Five at most: an instance's values
        # then take 40 bytes less than with six to ten.
        self.connected = 0
        self.transport: Any = None
        self.connection = connection
        # Pieces held back until the transport drains (see writeSequence).
        self._held: list[bytes] | None = None
        # _PLAIN, _FULL, _TOLD and _CLOSING.
        self._flags = 0

    @property
    def factory(self) -> Any:
        return getattr(self.connection, "factory", None)

    @factory.setter
    def factory(self, factory: Any) -> None:
        # A factory's buildProtocol sets it; the connection has it already.
        if getattr(self.connection, "factory", None) is not factory:
            self.connection.factory = factory

    # -- Protocol ----------------------------------------------------------

    def connectionMade(self) -> None:
        if _plainTCP(self.transport):
            self._flags |= _PLAIN
        self.transport.registerProducer(self, True)
        self.connection.wireConnected(self)

    def dataReceived(self, data: bytes) -> None:
        self.connection.bytesReceived(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._held = None
        self.connection.wireLost(reason)

    # -- IHalfCloseableProtocol ----------------------------------------------

    def readConnectionLost(self) -> None:
        self.connection.readLost()

    def writeConnectionLost(self) -> None:
        pass  # we never close only our sending side

    # -- IPushProducer: the transport's write buffer -------------------------

    def pauseProducing(self) -> None:
        flags = self._flags
        self._flags = flags | _FULL | _TOLD
        if not flags & _TOLD:
            self.connection.writesPaused()

    def resumeProducing(self) -> None:
        self._flags &= ~_FULL
        held = self._held
        if held:
            # The buffer is empty: the next large piece can go in alone.
            self._held = None
            self._writePieces(held)
            if self._flags & _FULL:
                return  # it filled again: the connection stays paused
        if self._flags & _CLOSING:
            self._loseConnection()
            return
        self._flags &= ~_TOLD
        self.connection.writesResumed()

    def stopProducing(self) -> None:
        pass  # connectionLost follows

    # -- IWire ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Queue C{data} for the peer. Over plain TCP, when the transport has
        nothing waiting to be sent, C{data} is sent at once on the
        transport's socket (one C{send} call) and only what the kernel did
        not take is queued (errors, too, are left to the transport's own
        write path): Twisted's C{write} would queue
        it all, ask the reactor to watch the socket for writability and
        send in a later reactor turn, two C{epoll_ctl} calls and a turn
        per write, which is most of what one message alone on a
        connection, or one recipient of a broadcast, costs.
        """
        held = self._held
        if held:
            held.append(data)
            return
        transport = self.transport
        if self._flags & _PLAIN and _idle(transport):
            try:
                sent = transport.socket.send(data)
            except OSError:
                # Full (EWOULDBLOCK, ENOBUFS), interrupted, or the
                # connection is lost: Twisted's own write path sorts it out.
                sent = 0
            if sent == len(data):
                return
            if sent:
                data = data[sent:]
        transport.write(data)

    def writeSequence(self, pieces: list[bytes]) -> None:
        """
        Queue C{pieces} for the peer, in order, copying a large payload as
        little as the transport allows.

        Twisted's TCP transport joins what is queued into one C{bytes}
        before it sends, a copy of all of it, unless that is a single
        C{bytes} object. So over plain TCP (not TLS, whose transport copies
        into the TLS engine anyway), a C{bytes} piece of L{LARGE_PIECE}
        bytes or more is queued only while the transport's buffer is empty
        and alone: what comes before it (a frame header) is sent at once
        with the transport's own C{writeSomeData}; while the buffer is full,
        the pieces wait here until the transport says it has drained (it
        tells its producer), and are counted as written meanwhile. A piece
        that cannot go in alone is written as usual, copied.

        @param pieces: C{bytes} objects.
        """
        held = self._held
        if held:
            held.extend(pieces)
        elif self._flags & _PLAIN:
            self._writePieces(pieces)
        else:
            self.transport.writeSequence(pieces)

    def _writePieces(self, pieces: list[bytes]) -> None:
        """
        Write C{pieces} with nothing held, holding back from the first large
        piece that cannot go in alone while the buffer is full.
        """
        transport = self.transport
        start = 0
        for i, piece in enumerate(pieces):
            if len(piece) < LARGE_PIECE or type(piece) is not bytes:
                continue
            if not _idle(transport):
                if self._flags & _FULL:
                    # It will say when it has drained.
                    if start < i:
                        transport.writeSequence(pieces[start:i])
                    self._held = pieces[i:]
                    return
                continue  # no word will come: write it as usual
            if start < i:
                before = pieces[start] if i - start == 1 else b"".join(pieces[start:i])
                sent = transport.writeSomeData(before)
                if not isinstance(sent, int) or sent < len(before):
                    # Not all went out (or the connection is lost, which
                    # the transport finds out by itself): queue as usual.
                    transport.write(before[sent:] if isinstance(sent, int) else before)
            transport.write(piece)
            start = i + 1
        if start == 0:
            transport.writeSequence(pieces)
        elif start < len(pieces):
            transport.writeSequence(pieces[start:])

    def loseConnection(self) -> None:
        if self._held:
            # What is held goes out first: the transport closes once it has
            # drained (an abortConnection drops it all).
            self._flags |= _CLOSING
        else:
            self._loseConnection()

    def _loseConnection(self) -> None:
        self._flags &= ~_CLOSING
        # A registered producer would keep the transport from closing once
        # its buffer drains.
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def abortConnection(self) -> None:
        self._held = None
        self._flags &= ~_CLOSING
        if self.transport is not None:
            self.transport.abortConnection()

    def pauseReading(self) -> None:
        self.transport.pauseProducing()

    def resumeReading(self) -> None:
        self.transport.resumeProducing()

    def getPeer(self) -> Any:
        return self.transport.getPeer()

    def getHost(self) -> Any:
        return self.transport.getHost()
