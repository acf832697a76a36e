# -*- test-case-name: tests.test_protocol -*-
"""
The stream wire: a WebSocket connection carried by a byte stream, a TCP or
TLS connection after an HTTP/1.1 upgrade or a C{twisted.web} channel taken
over. It is the Twisted L{Protocol} of that stream, and the L{IWire} of one
L{WebSocketConnection <wsproto_tw.connection.WebSocketConnection>}.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import main, tcp
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer, ITCPTransport
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.core import accelerator
from wsproto_tw.core.handshake import PeerSource
from wsproto_tw.interfaces import IWire

__all__ = ["StreamWire", "sendEach", "setNoDelay", "writeEach"]

#: Pieces from this size on are handed to a plain TCP transport only once its
#: write buffer is empty (see L{StreamWire.writeSequence}).
LARGE_PIECE = 1 << 20

#: The reason a connection closed by us is lost for: one for every
#: connection, as the reactor's own (C{_disconnectSelectable}).
_CONNECTION_DONE = Failure(main.CONNECTION_DONE)

#: What Twisted's TCP transport sends at most per call (its C{SEND_LIMIT},
#: 128 KiB by default) once a wire that is its protocol has handed it a
#: large piece: a 16 MiB payload then leaves in a few dozen reactor turns
#: rather than 128.
LARGE_SEND = 1 << 20

#: Reads straight into a message (see L{StreamWire.dataReceived}) follow a
#: read of at least this many bytes, and are made while at least this many
#: payload bytes are still to come.
DIRECT_READ_MIN = 1 << 16

#: The most bytes one read straight into a message asks for: they are
#: unmasked in place right after, while still in the CPU's cache.
DIRECT_READ_CHUNK = 1 << 20

#: The most bytes read straight into messages per reactor turn: then the
#: other connections get their turn.
DIRECT_READ_TURN = 8 << 20


# StreamWire._flags: the transport looks like Twisted's plain TCP
# connection; it says its buffer is full; the connection was told the
# writes paused; it asked to close once what is held has gone out; a read
# is being handed on (dataReceived is on the stack).
_PLAIN = 1
_FULL = 2
_TOLD = 4
_CLOSING = 8
_READING = 16


def _plainTCP(transport: Any) -> bool:
    """
    @return: whether C{transport} is Twisted's own TCP connection without
        TLS, the transport whose write buffer L{StreamWire} looks into.
    """
    # What the transport's type has is found out once per type (on its
    # first transport: some of the attributes are set by its __init__).
    known = _TCP_TYPES.get(type(transport))
    if known is None:
        known = _hasTCPAttributes(transport)
        if len(_TCP_TYPES) < _MAX_TCP_TYPES:
            _TCP_TYPES[type(transport)] = known
    return known and not transport.TLS


# Transport types, and whether they are Twisted's TCP connection with the
# attributes StreamWire looks into (a few types; bounded all the same).
_TCP_TYPES: dict[type, bool] = {}
_MAX_TCP_TYPES = 64


def setNoDelay(transport: Any) -> None:
    """
    Turn Nagle's algorithm off on C{transport}'s TCP connection (TLS over
    TCP included), so that a small frame written while an earlier one is
    still unacknowledged goes out at once instead of waiting for that
    acknowledgement, which a peer delaying its ACKs holds up to about 40
    ms (RFC 1122 section 4.2.3.2). Frames are written whole, and what a
    connection queues while it handles one read goes out in one write:
    holding them gains nothing. Over any other transport (a UNIX socket, a
    test's) it does nothing.

    @param transport: a Twisted transport.
    """
    if ITCPTransport.providedBy(transport):
        try:
            transport.setTcpNoDelay(True)
        except (OSError, AttributeError):
            # A UNIX socket's transport, which inherits the interface; TLS,
            # which declares it over whatever transport it runs on.
            pass


def _hasTCPAttributes(transport: Any) -> bool:
    """
    @return: whether C{transport} is Twisted's own TCP connection, with the
        attributes of its write buffer and state that L{StreamWire} reads.
    """
    return (
        isinstance(transport, tcp.Connection)
        and hasattr(transport, "TLS")
        and hasattr(transport, "_tempDataLen")
        and hasattr(transport, "dataBuffer")
        and hasattr(transport, "offset")
        and hasattr(transport, "_writeDisconnecting")
        and hasattr(transport, "_aborting")
    )


def _reading(transport: Any) -> bool:
    """
    @return: whether a plain TCP transport is connected and neither closing
        nor aborted (it stops reading then).
    """
    return transport.connected and not transport.disconnecting and not getattr(transport, "_aborting", False)


def _idle(transport: Any) -> bool:
    """
    @return: whether a plain TCP transport is connected, not closing nor
        aborted, still without TLS, and has nothing left to send.
    """
    return (
        transport.connected
        and not transport.disconnecting
        # abortConnection leaves it connected until the next reactor turn,
        # dropping whatever is written meanwhile.
        and not transport._aborting
        and not transport._writeDisconnecting
        and not transport._writeDisconnected
        and not getattr(transport, "TLS", False)  # startTLS since: bytes go through TLS
        and not transport._tempDataLen
        and transport.offset == len(transport.dataBuffer)
    )


@implementer(IWire, IPushProducer, IHalfCloseableProtocol)
class StreamWire(Protocol, PeerSource):
    """
    Moves bytes between a stream transport and a connection (an
    L{IWireReceiver <wsproto_tw.interfaces.IWireReceiver>}), and relays the
    transport's write-buffer state: it registers as the transport's push
    producer, so the transport tells it when its buffer is full.

    A peer that shuts down only its sending side (a TCP half-close, a FIN
    while it still reads) is told what we still have to say, such as the
    answer to its Close frame (RFC 6455 section 7.1.1), before the
    connection closes.

    @ivar connection: the L{IWireReceiver} it carries; L{None} once the
        connection is lost.
    @ivar factory: the connection's C{factory} (kept there, not here).
    """

    # What every write reads, kept in the object itself (the rest of the
    # attributes, Twisted's among them, are in its dict).
    __slots__ = ("_held", "_direct", "_socket", "_fileno")

    def __init__(self, connection: Any) -> None:
        # Every attribute is set here, even those Twisted sets later: then
        # all instances share one table of attribute names (CPython's
        # key-sharing instance dicts).
        self.connected = 0
        self.transport: Any = None
        self.connection = connection
        # Pieces held back until the transport drains (see writeSequence).
        self._held: list[bytes] | None = None
        # Plain TCP only: the transport's socket, and whether nothing we
        # gave the transport is left in its buffer as far as we know (the
        # last write went straight to the socket, all of it), so that the
        # next one may too without looking into the transport.
        self._socket: Any = None
        # Its file descriptor, for sendEach: used only while _direct, which
        # connectionLost clears as soon as the transport has closed the
        # socket (the number may then be another socket's).
        self._fileno = -1
        self._direct = False
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
        transport = self.transport
        if _plainTCP(transport):
            self._flags |= _PLAIN
            self._socket = sock = transport.socket
            self._fileno = sock.fileno()
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass  # a UNIX socket: no Nagle's algorithm to turn off
        else:
            setNoDelay(transport)
        transport.registerProducer(self, True)
        self.connection.wireConnected(self)

    def dataReceived(self, data: bytes) -> None:
        """
        Hand C{data} to the connection. Over plain TCP, after a large read
        (more is likely waiting), the rest of a large frame's payload is
        then read straight into its message (L{_receiveDirect}).
        """
        self._flags |= _READING
        try:
            self.connection.bytesReceived(data)
            if self._flags & _PLAIN and len(data) >= DIRECT_READ_MIN:
                self._receiveDirect()
        finally:
            self._flags &= ~_READING

    def _receiveDirect(self) -> None:
        """
        While the connection offers room for the payload of the frame under
        way in the message itself (C{receiveBuffer}: an uncompressed binary
        message, reading not paused, nothing else waiting to be parsed),
        receive into it with C{recv_into} on the transport's socket,
        L{DIRECT_READ_CHUNK} bytes at most a call, until the socket has no
        more for now, the frame's end, or L{DIRECT_READ_TURN} bytes in this
        reactor turn, and report each read with C{bytesReceivedInto}.

        Compared with the transport's own reads (64 KiB each, handed on as
        a new C{bytes}), the kernel copies the payload straight into the
        message, with no Python call per 64 KiB and no second copy (the
        connection unmasks it in place). Only when the wire is the
        transport's own protocol: a C{twisted.web} channel taken over, or
        a wrapping protocol, sees every read.

        A socket error ends the connection as the transport's own read
        would: the transport is told its connection was lost.
        """
        transport = self.transport
        connection = self.connection
        receiveBuffer = getattr(connection, "receiveBuffer", None)
        if receiveBuffer is None or transport.protocol is not self or not _reading(transport):
            return  # (a transport that lost its connection has no socket)
        recvInto = transport.socket.recv_into
        total = 0
        while total < DIRECT_READ_TURN and _reading(transport):
            view = receiveBuffer(DIRECT_READ_MIN, DIRECT_READ_CHUNK)
            if view is None:
                return
            wanted = len(view)
            try:
                n = recvInto(view)
            except BlockingIOError:
                return  # nothing more for now
            except OSError:
                # What the reactor does when the transport's read fails.
                transport.stopReading()
                transport.stopWriting()
                transport.connectionLost(Failure(main.CONNECTION_LOST))
                return
            finally:
                view.release()
            if not n:
                return  # the peer closed: the transport's next read says so
            connection.bytesReceivedInto(n)
            if n < wanted:
                return  # the socket had no more for now
            total += n

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._held = None
        self._direct = False
        connection = self.connection
        if connection is None:
            return  # told already
        # Nothing comes through this wire any more: the link back goes, so
        # that the wire, its connection and their transport (which refer to
        # each other) are freed as soon as the last of them is let go, not
        # by the cyclic garbage collector.
        self.connection = None
        connection.wireLost(reason)

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
        connection, or one recipient of a broadcast, costs. Once a write
        went out whole that way, the next one goes to the socket without
        looking into the transport (a broadcast's recipients: fewer
        objects touched), until something is queued there.
        """
        held = self._held
        if held:
            held.append(data)
            return
        if self._direct or (self._flags & _PLAIN and _idle(self.transport)):
            try:
                sent = self._socket.send(data)
            except OSError:
                # Full (EWOULDBLOCK, ENOBUFS), interrupted, or the
                # connection is lost: Twisted's own write path sorts it out.
                sent = 0
            if sent == len(data):
                self._direct = True
                return
            if sent:
                data = data[sent:]
        self._direct = False
        self.transport.write(data)

    def _writeRest(self, data: bytes, sent: int) -> None:
        """
        A direct write (L{writeEach}) sent only the first C{sent} bytes of
        C{data}: the rest is queued on the transport, which sends it once
        the socket can take it.
        """
        self._direct = False
        self.transport.write(data[sent:] if sent else data)

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
        that cannot go in alone is written as usual, copied. The first large
        piece also raises the transport's C{SEND_LIMIT} to L{LARGE_SEND},
        when the wire is the transport's own protocol.

        @param pieces: C{bytes} objects.
        """
        self._direct = False
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
            if transport.SEND_LIMIT < LARGE_SEND and transport.protocol is self:
                # Set on the first large piece only: a transport's
                # attribute of its own costs memory on every connection.
                transport.SEND_LIMIT = LARGE_SEND
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
            # No large piece: joined, they take write's path (straight to
            # the socket when the transport has nothing queued).
            self.write(b"".join(pieces))
        elif start < len(pieces):
            transport.writeSequence(pieces[start:])

    def loseConnection(self) -> None:
        self._direct = False
        if self._held:
            # What is held goes out first: the transport closes once it has
            # drained (an abortConnection drops it all).
            self._flags |= _CLOSING
        else:
            self._loseConnection()

    def _loseConnection(self) -> None:
        self._flags &= ~_CLOSING
        transport = self.transport
        if self._flags & (_PLAIN | _READING) == _PLAIN | _READING and _idle(transport):
            # Nothing is left to send, and the reactor called us (a read
            # being handed on, the application's callbacks done): closed
            # now, as Twisted's TCP
            # transport would once its (empty) buffer had been written, a
            # reactor turn later (a zero-byte send and two epoll_ctl calls
            # per connection, for nothing). The same connectionLost
            # follows, with the same reason, before this returns; it
            # stops the transport's producer (this wire) itself.
            transport.connectionLost(_CONNECTION_DONE)
            return
        # A registered producer would keep the transport from closing once
        # its buffer drains.
        transport.unregisterProducer()
        transport.loseConnection()

    def abortConnection(self) -> None:
        self._held = None
        self._direct = False
        self._flags &= ~_CLOSING
        if self.transport is not None:
            self.transport.abortConnection()

    def pauseReading(self) -> None:
        self.transport.pauseProducing()

    def resumeReading(self) -> None:
        self.transport.resumeProducing()

    def getPeer(self) -> Any:
        return self.transport.getPeer()

    def peerName(self) -> str:
        """
        The peer's address as the log lines show it (L{addressName} of
        L{getPeer}): C{host:port}, C{[host]:port} for IPv6 (RFC 3986
        section 3.2.2), a socket path, or its C{str}. Twisted's own TCP
        server connection keeps the address it makes its L{getPeer} of,
        C{(host, port)} for IPv4 and C{(host, port, flowinfo, scope_id)}
        for IPv6: the name is made from that, without an address object.
        """
        transport = self.transport
        if type(transport) is tcp.Server:
            # The IPv4 tuple unpacks as cheaply as indexing it; only IPv6
            # pays for the exception.
            try:
                host, port = transport.client
            except ValueError:
                host, port = transport.client[:2]
                return f"[{host}]:{port}"
            return f"{host}:{port}"
        return addressName(transport.getPeer())

    def peer_address(self) -> Any:
        """
        The peer's address, for the server core (L{PeerSource}): asked
        the first time someone reads it.
        """
        return self.transport.getPeer()

    def getHost(self) -> Any:
        return self.transport.getHost()


def addressName(address: Any) -> str:
    """
    @return: an address as the log lines name peers: C{host:port},
        C{[host]:port} for an IPv6 address (RFC 3986 section 3.2.2: the
        brackets say where the address ends), a UNIX socket's path
        (C{unix:} for an unnamed one, as a UNIX socket's client most often
        is), or its C{str}.
    """
    if type(address) is IPv4Address:
        # The common case, without the getattr calls.
        return f"{address.host}:{address.port}"
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None:
        if ":" in host:
            return f"[{host}]:{port}"
        return f"{host}:{port}"
    if isinstance(address, UNIXAddress):
        # A UNIX socket's client is most often unnamed (not bound to a path);
        # a name is bytes, as the file system has it.
        name = address.name
        return os.fsdecode(name) if name else "unix:"
    return getattr(address, "name", None) or str(address)


def writeEach(wires: list[Any], data: bytes) -> None:
    """
    Write the same C{data} to each of C{wires} (L{IWire}s of any kind), as
    each one's C{write} would: a broadcast's recipients.

    Each L{StreamWire} whose last write went to its socket whole (see
    L{StreamWire.write}) is sent C{data} on its socket, all of them in one
    call (L{sendEach}), with no method call of its own; what a socket does
    not take is queued on its transport. Every other wire is called.

    @param wires: the wires, each once.
    @param data: the bytes, shared.
    """
    stream = StreamWire
    direct = []
    fds = []
    for wire in wires:
        if type(wire) is stream and wire._direct and not wire._held:
            # A direct wire's socket is open: its transport closes it only
            # in its connectionLost, which tells the wire at once.
            direct.append(wire)
            fds.append(wire._fileno)
        else:
            wire.write(data)
    if fds:
        for i, sent in sendEach(fds, data):
            direct[i]._writeRest(data, sent)


def _sendEachPython(fds: list[int], data: bytes) -> list[tuple[int, int]]:
    """
    Send C{data} on each of the sockets C{fds} (file descriptors of open,
    non-blocking sockets), one system call each. An error (a full socket,
    a lost connection) counts as nothing sent: the caller leaves the rest
    to the transport's own write path, which sorts the error out.

    The pure-Python L{sendEach}; C{wsproto_tw._sockets.sendEach}, its C
    counterpart, makes C{send} calls with the GIL released once for all.

    @param fds: a C{list} of file descriptors (C{int}).
    @param data: the bytes.
    @return: C{(index, sent)} for each socket that did not take all of
        C{data}, in order: C{sent} is how many of its first bytes it took.
    """
    n = len(data)
    rest = []
    write = os.write
    for i, fd in enumerate(fds):
        try:
            sent = write(fd, data)
        except OSError:
            sent = 0
        if sent != n:
            rest.append((i, sent))
    return rest


sendEach = _sendEachPython
if accelerator.wanted:
    try:
        from wsproto_tw._sockets import sendEach  # type: ignore[no-redef]
    except ImportError:
        pass
