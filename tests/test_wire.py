"""
Tests for L{wsproto_tw.wire.StreamWire} over Twisted's plain TCP
transport: a large C{bytes} piece goes into the transport alone, into an
empty buffer, so that the transport sends it without joining (copying)
it; and the rest of a large frame's payload is read straight into its
message.
"""

from __future__ import annotations

import collections
import errno
import os
import random
import socket
import sys
import zlib
from typing import Any

from twisted.internet import defer, reactor, tcp
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, TCP6ClientEndpoint, TCP6ServerEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.helpers import requestBytes, sentCloseCode
from tests.tools import hasIPv6Loopback
from wsproto_tw import wire as wireModule
from wsproto_tw.core import frames
from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.core.frames import _frame_head, apply_mask
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory
from wsproto_tw.wire import LARGE_PIECE, StreamWire


class RecordingReceiver:
    """
    An L{IWireReceiver} that records what the wire tells it.
    """

    def __init__(self) -> None:
        self.wire: Any = None
        self.calls: list[str] = []
        self.lost = defer.Deferred()

    def wireConnected(self, wire: Any) -> None:
        self.wire = wire

    def bytesReceived(self, data: bytes) -> None:
        pass

    def writesPaused(self) -> None:
        self.calls.append("paused")

    def writesResumed(self) -> None:
        self.calls.append("resumed")

    def readLost(self) -> None:
        pass

    def wireLost(self, reason: Any) -> None:
        self.lost.callback(None)


class Collector(Protocol):
    """
    Reads nothing at first (so that the peer's buffer fills), then, once
    told, everything until the peer closes.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.done = defer.Deferred()

    def connectionMade(self) -> None:
        self.transport.pauseProducing()
        self.factory.connected.callback(self)

    def dataReceived(self, data: bytes) -> None:
        self.chunks.append(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.done.callback(b"".join(self.chunks))


class LargeWritesOverTCPTests(TestCase):
    """
    L{StreamWire.writeSequence} over a real loopback TCP connection.
    """

    @defer.inlineCallbacks
    def connect(self):
        factory = Factory.forProtocol(Collector)
        factory.connected = defer.Deferred()
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        receiver = RecordingReceiver()
        wire = yield TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(
            Factory.forProtocol(lambda: StreamWire(receiver))
        )
        collector = yield factory.connected
        # Every object the transport is handed, and whether its buffer was
        # empty then.
        writes: list[tuple[Any, bool]] = []
        transport = wire.transport
        original = transport.write

        def write(data: Any) -> None:
            writes.append((data, wireModule._idle(transport)))
            original(data)

        transport.write = write
        return wire, receiver, collector, writes

    def pieces(self, tag: int) -> tuple[bytes, bytes]:
        return bytes([tag]) * 10, bytes([tag]) * (LARGE_PIECE + 12345)

    @defer.inlineCallbacks
    def test_largePiecesGoInAlone(self):
        """
        Large pieces written while the transport's buffer is full are held
        until it drains, then handed to it alone into an empty buffer, the
        very objects written; the peer receives everything in order; the
        receiver is told the writes paused and, only once nothing is held,
        resumed.
        """
        wire, receiver, collector, writes = yield self.connect()
        head1, big1 = self.pieces(1)
        head2, big2 = self.pieces(2)
        head3, big3 = self.pieces(3)
        wire.writeSequence([head1, big1])
        wire.writeSequence([head2, big2, b"tail"])
        wire.write(b"plain")
        wire.writeSequence([head3, big3])
        self.assertEqual(receiver.calls, ["paused"])
        self.assertTrue(wire._held)
        collector.transport.resumeProducing()
        wire.loseConnection()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"".join([head1, big1, head2, big2, b"tail", b"plain", head3, big3]))
        handed = [(data, idle) for data, idle in writes if len(data) >= LARGE_PIECE]
        self.assertEqual(len(handed), 3)
        for (data, idle), big in zip(handed, (big1, big2, big3)):
            self.assertIs(data, big)
            self.assertTrue(idle)
        self.assertEqual(receiver.calls, ["paused"])

    @defer.inlineCallbacks
    def test_resumedOnceDrained(self):
        """
        Once everything held has gone out and the buffer has drained, the
        receiver hears the writes resumed, after as many pauses.
        """
        wire, receiver, collector, writes = yield self.connect()
        for tag in (1, 2):
            wire.writeSequence(list(self.pieces(tag)))
        collector.transport.resumeProducing()
        while wire._held or receiver.calls[-1:] != ["resumed"]:
            d = defer.Deferred()
            reactor.callLater(0.01, d.callback, None)
            yield d
        self.assertEqual(receiver.calls, ["paused", "resumed"])
        self.assertEqual(wireModule._idle(wire.transport), True)
        wire.loseConnection()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"".join([*self.pieces(1), *self.pieces(2)]))

    @defer.inlineCallbacks
    def test_abortDropsHeld(self):
        """
        L{StreamWire.abortConnection} drops what is held.
        """
        wire, receiver, collector, writes = yield self.connect()
        for tag in (1, 2):
            wire.writeSequence(list(self.pieces(tag)))
        self.assertTrue(wire._held)
        wire.abortConnection()
        self.assertIsNone(wire._held)
        collector.transport.resumeProducing()
        yield collector.done
        yield receiver.lost


class DirectWritesOverTCPTests(TestCase):
    """
    L{StreamWire.write} over a real loopback TCP connection whose buffer is
    empty sends at once, without queueing in the transport or asking the
    reactor to watch the socket.
    """

    connect = LargeWritesOverTCPTests.connect

    @defer.inlineCallbacks
    def test_sentAtOnce(self):
        """
        Writes into an empty transport go to the kernel in the call:
        nothing is queued in the transport and it does not start writing.
        """
        wire, receiver, collector, writes = yield self.connect()
        transport = wire.transport
        started = []
        self.patch(transport, "startWriting", lambda: started.append(True))
        for n in range(100):
            wire.write(b"%d;" % n)
        self.assertEqual(writes, [])  # the transport's write was never called
        self.assertEqual(started, [])
        self.assertTrue(wireModule._idle(transport))
        self.patch(transport, "startWriting", type(transport).startWriting.__get__(transport))
        collector.transport.resumeProducing()
        wire.loseConnection()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"".join(b"%d;" % n for n in range(100)))

    @defer.inlineCallbacks
    def test_smallPiecesSentAtOnce(self):
        """
        Small pieces given together (frames queued in one turn) are joined
        and sent at once too, not queued in the transport.
        """
        wire, receiver, collector, writes = yield self.connect()
        sequences = []
        original = wire.transport.writeSequence
        self.patch(wire.transport, "writeSequence", lambda pieces: (sequences.append(pieces), original(pieces)))
        wire.writeSequence([b"one;", b"two;", b"three;"])
        wire.write(b"four;")
        self.assertEqual((writes, sequences), ([], []))
        self.assertTrue(wireModule._idle(wire.transport))
        collector.transport.resumeProducing()
        wire.loseConnection()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"one;two;three;four;")

    @defer.inlineCallbacks
    def test_restQueuedWhenKernelFull(self):
        """
        When the kernel takes only part of a write (the peer does not read),
        the rest is queued in the transport, later writes queue behind it
        in order, and the receiver hears the writes paused once the
        transport's buffer is over its size; everything arrives in order.
        """
        wire, receiver, collector, writes = yield self.connect()
        chunk = b"x" * 65536
        sent = []
        for n in range(200):
            data = bytes([n]) + chunk
            sent.append(data)
            wire.write(data)
        self.assertTrue(writes)  # some of it had to be queued
        self.assertFalse(wireModule._idle(wire.transport))
        self.assertEqual(receiver.calls, ["paused"])
        collector.transport.resumeProducing()
        wire.loseConnection()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"".join(sent))

    @defer.inlineCallbacks
    def test_notAfterLoseConnection(self):
        """
        Once the wire is closing (outside a read: the transport closes it in
        a later turn), writes are left to the transport (which still sends
        them before it closes, as Twisted's transports do), never sent
        directly.
        """
        wire, receiver, collector, writes = yield self.connect()
        wire.write(b"before")
        wire.loseConnection()
        wire.write(b"after")
        self.assertEqual([data for data, idle in writes], [b"after"])
        collector.transport.resumeProducing()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"beforeafter")

    @defer.inlineCallbacks
    def test_transportClosedFromOutside(self):
        """
        Writes after someone else closed the transport arrive, in order,
        before the connection closes, as Twisted's own write would send
        them; once the socket is closed, a write is dropped as Twisted
        drops it.
        """
        wire, receiver, collector, writes = yield self.connect()
        wire.write(b"before")
        wire.transport.loseConnection()
        wire.write(b"after")
        collector.transport.resumeProducing()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"beforeafter")
        wire.write(b"late")  # the socket is closed: dropped, nothing raised
        self.assertFalse(wire._direct)

    @defer.inlineCallbacks
    def test_notAfterAbort(self):
        """
        Once the wire aborted the connection, writes are dropped, as
        Twisted's transport drops them, never sent directly: the peer
        receives nothing written after the abort (the transport stays
        connected until the next reactor turn).
        """
        for abort in ("wire",):
            wire, receiver, collector, writes = yield self.connect()
            collector.transport.resumeProducing()
            wire.write(b"before;")
            if abort == "wire":
                wire.abortConnection()
            else:
                wire.transport.abortConnection()
            wire.write(b"after;")
            wire.writeSequence([b"after", b"-sequence;"])
            received = yield collector.done
            yield receiver.lost
            self.assertNotIn(b"after", received, abort)

    @defer.inlineCallbacks
    def test_directAfterQueued(self):
        """
        After a write that had to be queued, the next write does not go
        straight to the socket until the transport's buffer has drained:
        the bytes stay in order.
        """
        wire, receiver, collector, writes = yield self.connect()
        collector.transport.pauseProducing()
        sent = []
        n = 0
        while not writes:
            data = bytes([n % 256]) * 65536
            n += 1
            sent.append(data)
            wire.write(data)
        self.assertFalse(wire._direct)
        wire.write(b"tail")
        sent.append(b"tail")
        self.assertEqual(writes[-1][0], b"tail")  # queued behind, not sent
        collector.transport.resumeProducing()
        wire.loseConnection()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"".join(sent))


class WriteEachOverTCPTests(TestCase):
    """
    L{wireModule.writeEach}, a broadcast's writes: the same bytes to many
    wires, as each one's C{write} would send them.
    """

    connect = LargeWritesOverTCPTests.connect

    @defer.inlineCallbacks
    def test_sentAtOnceAndOthersCalled(self):
        """
        Wires whose last write went to the socket whole are sent the bytes
        at once, without a call to their transport; a wire not yet direct
        and a wire of another kind are written to with their own C{write}.
        Everything arrives, in order.
        """
        first, firstReceiver, firstCollector, firstWrites = yield self.connect()
        second, secondReceiver, secondCollector, secondWrites = yield self.connect()
        first.write(b"a;")  # direct from now on
        self.assertTrue(first._direct)
        self.assertFalse(second._direct)

        class OtherWire:
            def __init__(self):
                self.written = []

            def write(self, data):
                self.written.append(data)

        other = OtherWire()
        calls = []
        original = StreamWire.write
        self.patch(StreamWire, "write", lambda wire, data: (calls.append(wire), original(wire, data)))
        wireModule.writeEach([first, other, second], b"b;")
        self.assertEqual(calls, [second])
        wireModule.writeEach([first, other, second], b"c;")
        self.assertEqual(calls, [second])  # direct since
        self.assertEqual(other.written, [b"b;", b"c;"])
        self.assertEqual((firstWrites, secondWrites), ([], []))
        pairs = ((first, firstReceiver, firstCollector), (second, secondReceiver, secondCollector))
        for wire, receiver, collector in pairs:
            collector.transport.resumeProducing()
            wire.loseConnection()
            received = yield collector.done
            yield receiver.lost
            self.assertEqual(received, b"a;b;c;" if wire is first else b"b;c;")

    @defer.inlineCallbacks
    def test_restQueuedWhenKernelFull(self):
        """
        When the kernel takes only part of the bytes, the rest is queued in
        the transport, the wire stops writing directly, and later writes
        queue behind it: everything arrives in order.
        """
        wire, receiver, collector, writes = yield self.connect()
        wire.write(b"start")
        sent = [b"start"]
        n = 0
        while not writes:
            data = bytes([n % 256]) * 65536
            n += 1
            sent.append(data)
            wireModule.writeEach([wire], data)
        self.assertFalse(wire._direct)
        wireModule.writeEach([wire], b"tail")
        sent.append(b"tail")
        self.assertEqual(writes[-1][0], b"tail")  # queued behind, not sent
        collector.transport.resumeProducing()
        wire.loseConnection()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"".join(sent))

    @defer.inlineCallbacks
    def test_notAfterAbort(self):
        """
        Once the wire aborted the connection, what L{wireModule.writeEach}
        writes is dropped, never sent directly.
        """
        wire, receiver, collector, writes = yield self.connect()
        collector.transport.resumeProducing()
        wire.write(b"before;")
        wire.abortConnection()
        wireModule.writeEach([wire], b"after;")
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"before;")


class ClosingOverTCPTests(TestCase):
    """
    L{StreamWire.loseConnection} over a real loopback TCP connection.
    """

    connect = LargeWritesOverTCPTests.connect

    @defer.inlineCallbacks
    def test_closedAtOnceWhenIdle(self):
        """
        With nothing left to send, a close asked for while a read is handed
        on (the reactor called the wire) happens in the call: the receiver
        hears C{wireLost} before C{loseConnection} returns, and the
        transport never waits for a writable socket to do it.
        """
        wire, receiver, collector, writes = yield self.connect()
        transport = wire.transport
        self.patch(transport, "startWriting", lambda: self.fail("startWriting"))
        done = []

        def bytesReceived(data: bytes) -> None:
            wire.write(b"bye")
            wire.loseConnection()
            done.append(receiver.lost.called)

        receiver.bytesReceived = bytesReceived  # type: ignore[method-assign]
        wire.dataReceived(b"close, please")
        self.assertEqual(done, [True])
        self.assertTrue(transport.disconnected)
        self.assertIsNone(wire.connection)
        collector.transport.resumeProducing()
        received = yield collector.done
        self.assertEqual(received, b"bye")
        self.assertEqual(writes, [])

    @defer.inlineCallbacks
    def test_closedLaterOutsideARead(self):
        """
        A close asked for outside a read (by the application, a timer)
        leaves the connection to the transport: it is lost in a later
        reactor turn, never inside the caller's call, so that code looping
        over a set of connections does not see it change under it.
        """
        wire, receiver, collector, writes = yield self.connect()
        wire.write(b"bye")
        wire.loseConnection()
        self.assertFalse(receiver.lost.called)
        self.assertIsNotNone(wire.connection)
        collector.transport.resumeProducing()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"bye")

    @defer.inlineCallbacks
    def test_closedOnceSentWhenQueued(self):
        """
        With bytes queued in the transport, the connection closes only once
        they are sent, and they all arrive.
        """
        wire, receiver, collector, writes = yield self.connect()
        sent = [bytes([n]) * 65536 for n in range(100)]
        for data in sent:
            wire.write(data)
        self.assertFalse(wireModule._idle(wire.transport))
        wire.loseConnection()
        self.assertFalse(receiver.lost.called)
        collector.transport.resumeProducing()
        received = yield collector.done
        yield receiver.lost
        self.assertEqual(received, b"".join(sent))

    def test_lostOnce(self):
        """
        The receiver hears C{wireLost} once, however often the wire is told.
        """
        lost = []
        receiver = RecordingReceiver()
        receiver.wireLost = lost.append  # type: ignore[method-assign]
        wire = StreamWire(receiver)
        wire.makeConnection(StringTransport())
        wire.connectionLost(None)
        wire.connectionLost(None)
        self.assertEqual(lost, [None])
        self.assertIsNone(wire.connection)


class OtherTransportTests(SynchronousTestCase):
    """
    Over a transport other than Twisted's plain TCP, L{StreamWire} writes
    pieces as they come.
    """

    def test_writeSequencePassesThrough(self):
        """
        The pieces go to the transport's C{writeSequence}, nothing held.
        """
        receiver = RecordingReceiver()
        wire = StreamWire(receiver)
        transport = StringTransport()
        wire.makeConnection(transport)
        big = b"x" * (LARGE_PIECE + 1)
        wire.writeSequence([b"head", big])
        wire.pauseProducing()
        wire.writeSequence([b"head", big])
        self.assertIsNone(wire._held)
        self.assertEqual(transport.value(), (b"head" + big) * 2)


class SpySocket:
    """
    A socket that records the reads made on it and passes everything else
    through.

    @ivar reads: C{("recv", n)} or C{("recv_into", n)} per read, C{n} the
        bytes it returned.
    @ivar intoLimit: the most bytes one C{recv_into} may return, or
        L{None}.
    @ivar onRecvInto: called with the number of C{recv_into} calls so far
        before each, or L{None}; it may raise.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.reads: list[tuple[str, int]] = []
        self.intoLimit: int | None = None
        self.onRecvInto: Any = None

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        self.reads.append(("recv", len(data)))
        return data

    def recv_into(self, view: memoryview) -> int:
        if self.onRecvInto is not None:
            self.onRecvInto(sum(1 for kind, _ in self.reads if kind == "recv_into"))
        if self.intoLimit is None:
            n = self._sock.recv_into(view)
        else:
            with view[: self.intoLimit] as part:
                n = self._sock.recv_into(part)
        self.reads.append(("recv_into", n))
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def intoBytes(self) -> int:
        """
        @return: the bytes read with C{recv_into}.
        """
        return sum(n for kind, n in self.reads if kind == "recv_into")


class Forwarder(Protocol):
    """
    A protocol that wraps another, as endpoints and C{twisted.web} do.
    """

    def __init__(self, wrapped: Protocol) -> None:
        self.wrapped = wrapped

    def connectionMade(self) -> None:
        self.wrapped.makeConnection(self.transport)

    def dataReceived(self, data: bytes) -> None:
        self.wrapped.dataReceived(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.wrapped.connectionLost(reason)


class Recorder(WebSocketApplication):
    """
    Records the messages and the close it gets.
    """

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.closed: Any = None

    def binaryMessageReceived(self, data: bytes) -> None:
        self.messages.append(data)

    def textMessageReceived(self, text: str) -> None:
        self.messages.append(text)

    def connectionLost(self, reason: Any) -> None:
        self.closed = reason


def maskedFrame(opcode: int, payload: bytes, fin: bool = True, key: bytes = b"\x01\x02\x03\x04") -> bytes:
    """
    A client's frame (RFC 6455 §5.2), masked with C{key}.
    """
    return _frame_head(opcode, len(payload), fin, False, True) + key + apply_mask(payload, key)


class DirectReadsOverTCPTests(SynchronousTestCase):
    """
    L{StreamWire} over a real loopback TCP connection (a Twisted transport
    on its server end, driven by hand on a L{MemoryReactorClock}) reads the
    rest of a large binary frame's payload straight into the message.
    """

    def connect(self, config: Config | None = None, wrapped: bool = False, headers: Any = (), around: Any = None):
        """
        Open a WebSocket connection from a plain blocking socket to a
        L{StreamWire} on a Twisted TCP transport.

        @param wrapped: put a wrapping protocol between the transport and
            the wire, as endpoints and C{twisted.web} do.
        @param headers: extra request headers, as (name, value) pairs.
        @param around: called with a function of no argument that reads the
            request (the transport's reads), to call it.
        @return: the client socket, the transport's L{SpySocket}, the
            L{Recorder} and the transport.
        """
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        server, address = listener.accept()
        listener.close()
        self.addCleanup(client.close)
        self.clock = MemoryReactorClock()
        app = Recorder()
        config = config or Config(max_message_size=16 << 20, ping_interval=None)
        factory = WebSocketServerFactory(lambda: app, config, reactor=self.clock)
        wire = factory.buildProtocol(IPv4Address("TCP", *address))
        protocol = Forwarder(wire) if wrapped else wire
        transport = tcp.Server(server, protocol, address, None, 1, self.clock)
        self.addCleanup(lambda: transport.connected and transport.connectionLost(Failure(ConnectionDone())))
        spy = self.spy = transport.socket = SpySocket(transport.socket)
        protocol.makeConnection(transport)
        client.sendall(requestBytes(headers=headers))
        if around is None:
            self.read(transport)
        else:
            around(lambda: self.read(transport))
        response = client.recv(4096)
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "), response)
        client.setblocking(False)
        del spy.reads[:]
        return client, spy, app, transport

    def read(self, transport: Any) -> None:
        """
        What the reactor does while the transport's socket is readable and
        the transport reads: call C{doRead} until it has read everything.
        """
        for _ in range(10_000):
            if transport not in self.clock.getReaders():
                return
            reads = self.spy.reads
            before = len(reads)
            result = transport.doRead()
            if result is not None:
                transport.stopReading()
                transport.connectionLost(Failure(result))
                return
            if reads[before:] == [] or reads[-1][1] == 0:
                return
        raise AssertionError("still reading")

    def write(self, transport: Any) -> None:
        """
        What the reactor does while the transport's socket is writable and
        the transport has something to write: call C{doWrite} until it is
        done.
        """
        for _ in range(10_000):
            if transport not in self.clock.getWriters():
                return
            result = transport.doWrite()
            if result is not None:
                transport.stopReading()
                transport.stopWriting()
                transport.connectionLost(Failure(result))
                return
        raise AssertionError("still writing")

    def receiveAll(self, client: socket.socket, transport: Any) -> bytes:
        """
        Receive on the client what the server sends until it closes (the
        server reading and writing meanwhile).
        """
        received = b""
        for _ in range(10_000):
            self.write(transport)
            self.read(transport)
            try:
                chunk = client.recv(65536)
            except BlockingIOError:
                continue
            if not chunk:
                return received
            received += chunk
        raise AssertionError("the server did not close")

    def send(self, client: socket.socket, transport: Any, data: bytes) -> None:
        """
        Send C{data} from the client, letting the transport read as the
        kernel's buffers fill.
        """
        view = memoryview(data)
        for _ in range(100_000):
            if not view:
                break
            try:
                sent = client.send(view)
            except BlockingIOError:
                sent = 0
            view = view[sent:]
            self.read(transport)
        else:
            raise AssertionError(f"{len(view)} bytes not sent")
        self.read(transport)

    def test_largeMessageReadIntoPlace(self):
        """
        A 3 MiB binary message arrives exactly as sent; after the
        transport's first read, its payload is read with C{recv_into}
        (straight into the message), not in the transport's 64 KiB reads.
        """
        client, spy, app, transport = self.connect()
        payload = random.Random(1).randbytes(3 << 20)
        self.send(client, transport, maskedFrame(Opcode.BINARY, payload))
        self.assertEqual(len(app.messages), 1)
        self.assertTrue(app.messages[0] == payload)
        self.assertGreater(spy.intoBytes(), len(payload) - 20 * 65536)
        self.assertLess(sum(1 for kind, _ in spy.reads if kind == "recv"), 20)

    def test_manySmallReadsAndKeyOffsets(self):
        """
        When each C{recv_into} returns only 1,001 bytes (the masking key's
        offset turns at every read) and the transport's own reads come in
        between, the message is still exactly what was sent, followed by
        the next one.
        """
        self.patch(wireModule, "DIRECT_READ_MIN", 1_000)
        client, spy, app, transport = self.connect()
        spy.intoLimit = 1001
        payload = random.Random(2).randbytes(1 << 20)
        self.send(client, transport, maskedFrame(Opcode.BINARY, payload) + maskedFrame(Opcode.TEXT, b"next"))
        self.assertEqual(len(app.messages), 2)
        self.assertTrue(app.messages[0] == payload)
        self.assertEqual(app.messages[1], "next")
        self.assertGreater(sum(1 for kind, n in spy.reads if kind == "recv_into" and n == 1001), 5)

    def test_fragmentedLargeMessage(self):
        """
        A binary message of three large frames, each with its own key, is
        read into place frame after frame and arrives whole.
        """
        client, spy, app, transport = self.connect()
        rng = random.Random(3)
        parts = [rng.randbytes(700_000 + i) for i in range(3)]
        data = b"".join(
            maskedFrame(Opcode.BINARY if i == 0 else Opcode.CONTINUATION, part, fin=i == 2, key=rng.randbytes(4))
            for i, part in enumerate(parts)
        )
        self.send(client, transport, data)
        self.assertEqual(len(app.messages), 1)
        self.assertTrue(app.messages[0] == b"".join(parts))
        self.assertGreater(spy.intoBytes(), 1 << 20)

    def test_pausedMidPayload(self):
        """
        Once the application pauses reading in the middle of a payload, no
        more is read from the socket, straight or otherwise, though the
        socket has more; once it resumes, the rest is read and the message
        is whole.
        """
        # Small reads into place, so that the socket has more after each.
        self.patch(wireModule, "DIRECT_READ_CHUNK", 10_000)
        self.patch(wireModule, "DIRECT_READ_MIN", 1_000)
        client, spy, app, transport = self.connect()
        connection = transport.protocol.connection

        def pauseAtSecond(calls: int) -> None:
            if calls == 1:
                connection.pauseReading()

        spy.onRecvInto = pauseAtSecond
        payload = random.Random(4).randbytes(2 << 20)
        frame = maskedFrame(Opcode.BINARY, payload)
        self.assertEqual(client.send(frame[:100_000]), 100_000)
        self.read(transport)
        self.assertNotIn(transport, self.clock.getReaders())
        reads = list(spy.reads)
        self.assertEqual(reads, [("recv", 65536), ("recv_into", 10_000), ("recv_into", 10_000)])
        self.read(transport)
        self.assertEqual(spy.reads, reads)
        self.assertEqual(app.messages, [])
        spy.onRecvInto = None
        connection.resumeReading()
        self.send(client, transport, frame[100_000:])
        self.assertEqual(len(app.messages), 1)
        self.assertTrue(app.messages[0] == payload)

    def test_limitHitMidPayload(self):
        """
        A message that goes over C{max_message_size} in the middle of its
        second frame's payload is read into place only up to the limit,
        and fails the connection with 1009 (RFC 6455 §7.4.1).
        """
        limit = 1 << 20
        client, spy, app, transport = self.connect(Config(max_message_size=limit, ping_interval=None))
        first = maskedFrame(Opcode.BINARY, b"a" * 600_000, fin=False)
        second = maskedFrame(Opcode.CONTINUATION, b"b" * 600_000)
        self.send(client, transport, first + second)
        self.assertGreater(spy.intoBytes(), 0)
        self.assertLessEqual(spy.intoBytes(), limit)
        self.assertEqual(app.messages, [])
        self.assertEqual(sentCloseCode(self.receiveAll(client, transport)), CloseCode.MESSAGE_TOO_BIG)
        self.assertEqual(app.closed.value.code, CloseCode.MESSAGE_TOO_BIG)

    def test_peerClosesMidPayload(self):
        """
        A peer that closes TCP in the middle of a payload read into place
        loses the connection abnormally (1006); no message is delivered.
        """
        client, spy, app, transport = self.connect()
        self.send(client, transport, maskedFrame(Opcode.BINARY, b"x" * (2 << 20))[: 1 << 20])
        self.assertGreater(spy.intoBytes(), 0)
        client.close()
        self.read(transport)
        self.assertEqual(app.messages, [])
        self.assertEqual((app.closed.value.code, app.closed.value.wasClean), (CloseCode.ABNORMAL_CLOSURE, False))
        self.assertFalse(transport.connected)

    def test_socketErrorMidPayload(self):
        """
        A socket error on a read into place loses the connection as an
        error on the transport's own read does (C{ConnectionLost}); the
        application hears of it once, with 1006.
        """
        client, spy, app, transport = self.connect()
        lost = []
        wire = transport.protocol
        original = wire.connectionLost
        wire.connectionLost = lambda reason: (lost.append(reason), original(reason))

        def reset(calls: int) -> None:
            if calls == 2:
                raise ConnectionResetError(errno.ECONNRESET, "reset")

        spy.onRecvInto = reset
        spy.intoLimit = 100_000
        self.send(client, transport, maskedFrame(Opcode.BINARY, b"x" * (2 << 20))[: 1 << 20])
        self.assertEqual(len(lost), 1)
        self.assertIsInstance(lost[0].value, ConnectionLost)
        self.assertFalse(transport.connected)
        self.assertEqual(app.messages, [])
        self.assertEqual(app.closed.value.code, CloseCode.ABNORMAL_CLOSURE)

    def test_closeDuringPayload(self):
        """
        The application may close the connection while a payload is read
        into place; the rest of the message still arrives (RFC 6455
        §7.1.2: data may arrive until the peer's Close), and the closing
        handshake completes after it.
        """
        client, spy, app, transport = self.connect()
        connection = transport.protocol.connection

        def closeAtFirst(calls: int) -> None:
            if calls == 0:
                connection.close(CloseCode.GOING_AWAY)

        spy.onRecvInto = closeAtFirst
        payload = random.Random(5).randbytes(1 << 20)
        self.send(client, transport, maskedFrame(Opcode.BINARY, payload) + maskedFrame(Opcode.CLOSE, b"\x03\xe9"))
        self.assertEqual(len(app.messages), 1)
        self.assertTrue(app.messages[0] == payload)
        self.assertEqual(sentCloseCode(self.receiveAll(client, transport)), CloseCode.GOING_AWAY)
        self.assertEqual((app.closed.value.code, app.closed.value.wasClean), (CloseCode.GOING_AWAY, True))

    def test_notForText(self):
        """
        A large text message (validated as it arrives) comes through the
        transport's own reads only.
        """
        client, spy, app, transport = self.connect()
        text = "é" * (1 << 19)
        self.send(client, transport, maskedFrame(Opcode.TEXT, text.encode("utf-8")))
        self.assertEqual(app.messages, [text])
        self.assertEqual(spy.intoBytes(), 0)

    def test_controlFramesRightAfterPayload(self):
        """
        A Ping, the next message and a Close sent right behind a payload
        read into place (in the same segments) are each handled in order:
        the message, the Pong, the next message, then the closing
        handshake (RFC 6455 §5.5: control frames between messages).
        """
        client, spy, app, transport = self.connect()
        rng = random.Random(6)
        first, second = rng.randbytes(1 << 20), rng.randbytes(300_000)
        self.send(
            client,
            transport,
            maskedFrame(Opcode.BINARY, first, key=b"\xff\x00\x80\x7f")
            + maskedFrame(Opcode.PING, b"right after")
            + maskedFrame(Opcode.BINARY, second, key=b"\x00\x00\x00\x00")
            + maskedFrame(Opcode.CLOSE, b"\x03\xe8"),
        )
        self.assertEqual(len(app.messages), 2)
        self.assertTrue(app.messages[0] == first)
        self.assertTrue(app.messages[1] == second)
        self.assertGreater(spy.intoBytes(), 1 << 19)
        received = self.receiveAll(client, transport)
        pong = bytes([0x80 | Opcode.PONG, len(b"right after")]) + b"right after"
        self.assertEqual(received[: len(pong)], pong)
        self.assertEqual(sentCloseCode(received[len(pong) :]), CloseCode.NORMAL_CLOSURE)
        self.assertEqual((app.closed.value.code, app.closed.value.wasClean), (CloseCode.NORMAL_CLOSURE, True))

    def test_notForCompressed(self):
        """
        A large compressed binary message (permessage-deflate, RFC 7692)
        comes through the transport's own reads only (it is inflated as it
        arrives), and arrives whole.
        """
        config = Config(max_message_size=16 << 20, ping_interval=None, compression=PerMessageDeflate())
        client, spy, app, transport = self.connect(config, headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
        payload = random.Random(7).randbytes(1 << 20)
        compressor = zlib.compressobj(0, zlib.DEFLATED, -15)
        compressed = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        head = _frame_head(Opcode.BINARY, len(compressed), True, True, True)
        key = b"\x01\x02\x03\x04"
        self.send(client, transport, head + key + apply_mask(compressed, key))
        self.assertEqual(len(app.messages), 1)
        self.assertTrue(app.messages[0] == payload)
        self.assertEqual(spy.intoBytes(), 0)

    def test_notUnderAWrapper(self):
        """
        When the wire is not the transport's own protocol (a wrapper, which
        may look at every read, is), it never reads from the socket itself.
        """
        client, spy, app, transport = self.connect(wrapped=True)
        payload = random.Random(6).randbytes(2 << 20)
        self.send(client, transport, maskedFrame(Opcode.BINARY, payload))
        self.assertEqual(len(app.messages), 1)
        self.assertTrue(app.messages[0] == payload)
        self.assertEqual(spy.intoBytes(), 0)

    def test_largeSendLimit(self):
        """
        Once the wire hands its transport a large piece, the transport
        sends up to L{wireModule.LARGE_SEND} bytes a call (its
        C{SEND_LIMIT}, 128 KiB before); the peer receives the message
        exactly. Under a wrapping protocol, the transport is left as it is.
        """
        for wrapped, limit in ((False, wireModule.LARGE_SEND), (True, 128 * 1024)):
            client, spy, app, transport = self.connect(wrapped=wrapped)
            self.assertEqual(transport.SEND_LIMIT, 128 * 1024)
            app.transport.sendBinary(b"small")
            self.assertEqual(transport.SEND_LIMIT, 128 * 1024)
            payload = random.Random(7).randbytes(3 << 20)
            app.transport.sendBinary(payload)
            self.assertEqual(transport.SEND_LIMIT, limit)
            app.transport.close()
            self.send(client, transport, maskedFrame(Opcode.CLOSE, b"\x03\xe8"))
            received = self.receiveAll(client, transport)
            expected = _frame_head(Opcode.BINARY, 5, True, False, False) + b"small"
            expected += _frame_head(Opcode.BINARY, len(payload), True, False, False) + payload
            self.assertTrue(received.startswith(expected))
            self.assertEqual(sentCloseCode(received[len(expected) :]), CloseCode.NORMAL_CLOSURE)

    def test_notAfterAbort(self):
        """
        When the application aborts the connection while handling what a
        large read brought (the transport stops reading, and its socket
        goes once the reactor reports the loss), nothing more is read.
        """
        client, spy, app, transport = self.connect()
        connection = transport.protocol.connection
        payload = random.Random(8).randbytes(1 << 20)
        app.binaryMessageReceived = lambda data: connection.abortConnection()
        self.send(client, transport, maskedFrame(Opcode.BINARY, b"m" * 70_000) + maskedFrame(Opcode.BINARY, payload))
        self.assertEqual(spy.intoBytes(), 0)
        self.assertNotIn(transport, self.clock.getReaders())


class ClosingHandshakeOverTCPTests(SynchronousTestCase):
    """
    The closing handshake a client starts, over a real loopback TCP
    connection (a Twisted transport on its server end, driven by hand on a
    L{MemoryReactorClock}): what the server does for it, and no more.
    """

    connect = DirectReadsOverTCPTests.connect
    read = DirectReadsOverTCPTests.read

    def _calls(self, run: Any) -> collections.Counter:
        """
        @return: the calls of wsproto_tw's Python functions made while
            C{run()} ran, by C{"module.qualified name"} (the module's file
            name).
        """
        calls: collections.Counter = collections.Counter()

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event == "call":
                code = frame.f_code
                if "wsproto_tw" in code.co_filename:
                    calls[f"{os.path.basename(code.co_filename)[:-3]}.{code.co_qualname}"] += 1

        sys.setprofile(profile)
        try:
            run()
        finally:
            sys.setprofile(None)
        return calls

    def test_closeAnsweredInOneRead(self):
        """
        The client's Close is answered with the same code and the connection
        is lost in the read that brought it; the application hears a clean
        close. The core's events are asked for twice (the Close, then
        nothing), not once more after the wire is lost; no deadline is
        asked for once it is; with the C accelerator, the Close frame is
        read in C, never checked in Python.
        """
        client, spy, app, transport = self.connect(Config(ping_interval=20.0))
        client.sendall(maskedFrame(Opcode.CLOSE, b"\x03\xe8"))
        calls = self._calls(lambda: self.read(transport))
        self.assertFalse(transport.connected)
        self.assertEqual(client.recv(4096), b"\x88\x02\x03\xe8")
        closed = app.closed.value
        self.assertEqual((closed.code, closed.reason, closed.wasClean), (1000, "", True))
        self.assertEqual(calls["connection.Connection.next_event"], 2)
        self.assertEqual(calls["_pump.Pump._deliver"], 1)
        self.assertEqual(calls["connection.Connection.next_deadline"], 0)
        self.assertEqual(calls["_pump.Pump.wireLost"], 1)
        if frames._read_frame is not None:
            self.assertEqual(calls["frames.FrameReader._check"], 0)

    def test_requestAnsweredInOneRead(self):
        """
        The opening request is answered with C{101} in the read that brought
        it; the core's events are asked for once (the request), its frames
        not read at all (nothing follows the request).
        """
        seen = []
        self.connect(Config(ping_interval=20.0), around=lambda read: seen.append(self._calls(read)))
        [calls] = seen
        self.assertEqual(calls["connection.Connection.next_event"], 1)
        self.assertEqual(calls["connection.Connection.has_unread"], 1)
        self.assertEqual(calls["frames.FrameReader.read_piece"], 0)
        self.assertEqual(calls["_pump.Pump._open"], 1)


class ResumeAllTests(TestCase):
    """
    An application that resumes reading on every connection of its factory,
    some of them with the peer's Close waiting behind what they read, does
    not see the factory's set of connections change during its loop: their
    closes complete after it.
    """

    @defer.inlineCallbacks
    def test_resumeAllWithClosesWaiting(self):
        errors: list[Exception] = []
        resumed: list[int] = []

        class App(WebSocketApplication):
            def textMessageReceived(self, text: str) -> None:
                if text == "pause":
                    self.transport.pauseReading()
                elif text == "resume all":
                    try:
                        for connection in factory.connections:
                            connection.resumeReading()
                            resumed.append(1)
                    except RuntimeError as e:
                        errors.append(e)

        factory = WebSocketServerFactory(App, Config(ping_interval=None))
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        address = port.getHost()

        def masked(opcode: int, payload: bytes) -> bytes:
            key = b"\x01\x02\x03\x04"
            return _frame_head(opcode, len(payload), True, False, True) + key + apply_mask(payload, key)

        sockets = []

        def client(first: bytes) -> socket.socket:
            # The request and the frames behind it in one go: the server
            # keeps what follows the head for after it answers.
            s = socket.create_connection((address.host, address.port))
            self.addCleanup(s.close)
            s.sendall(requestBytes() + first)
            s.setblocking(False)
            return s

        async def wait(condition: Any) -> None:
            for _ in range(250):
                if condition():
                    return
                await deferLater(reactor, 0.02, lambda: None)

        paused = [client(masked(0x1, b"pause") + masked(0x8, b"\x03\xe8")) for _ in range(3)]
        yield defer.Deferred.fromCoroutine(wait(lambda: len(factory.connections) == 3))
        self.assertEqual(len(factory.connections), 3)
        yield deferLater(reactor, 0.1, lambda: None)  # each paused after "pause"
        client(masked(0x1, b"resume all"))
        yield defer.Deferred.fromCoroutine(wait(lambda: len(factory.connections) == 1))
        self.assertEqual(errors, [])
        self.assertEqual(len(resumed), 4)
        self.assertEqual(len(factory.connections), 1)
        for s in paused:
            received = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                received += chunk
            # The 101, then our answer to the peer's Close.
            self.assertTrue(received.startswith(b"HTTP/1.1 101"), received)
            self.assertTrue(received.endswith(b"\x88\x02\x03\xe8"), received)


class PeerNameTests(TestCase):
    """
    L{StreamWire.peerName}: the peer's address as the log lines show it.
    """

    @defer.inlineCallbacks
    def serverWire(self, host="127.0.0.1"):
        """
        @param host: the loopback address, C{127.0.0.1} or C{::1}.
        @return: (a L{StreamWire} on the server side of a loopback TCP
            connection, the client's protocol, the wire's receiver).
        """
        wires: list[StreamWire] = []
        receiver = RecordingReceiver()

        def build() -> StreamWire:
            wire = StreamWire(receiver)
            wires.append(wire)
            return wire

        server, client = (TCP6ServerEndpoint, TCP6ClientEndpoint) if ":" in host else (TCP4ServerEndpoint, TCP4ClientEndpoint)
        port = yield server(reactor, 0, interface=host).listen(Factory.forProtocol(build))
        self.addCleanup(port.stopListening)
        client = yield client(reactor, host, port.getHost().port).connect(Factory.forProtocol(Protocol))
        yield deferLater(reactor, 0, lambda: None)
        [wire] = wires
        return wire, client, receiver

    @defer.inlineCallbacks
    def test_tcpServer(self):
        """
        Over Twisted's TCP server connection, the name is made from the
        address the transport keeps, without an address object: the
        C{host:port} of its L{getPeer}.
        """
        wire, client, receiver = yield self.serverWire()
        self.assertIs(type(wire.transport), tcp.Server)
        self.patch(wire.transport, "getPeer", lambda: self.fail("an address object was made"))
        self.assertEqual(wire.peerName(), f"127.0.0.1:{client.transport.getHost().port}")
        wire.loseConnection()
        yield receiver.lost

    @defer.inlineCallbacks
    def test_tcpServerIPv6(self):
        """
        An IPv6 peer of Twisted's TCP server connection is named
        C{[host]:port} (RFC 3986 section 3.2.2): C{::1:54321} would not say
        where the address ends. No address object is made for it either.
        """
        if not hasIPv6Loopback():
            raise self.skipTest("this machine has no IPv6 loopback (::1)")
        wire, client, receiver = yield self.serverWire("::1")
        self.assertIs(type(wire.transport), tcp.Server)
        self.patch(wire.transport, "getPeer", lambda: self.fail("an address object was made"))
        self.assertEqual(wire.peerName(), f"[::1]:{client.transport.getHost().port}")
        wire.loseConnection()
        yield receiver.lost

    def test_otherTransports(self):
        """
        Over any other transport, the name is made from its C{getPeer}:
        C{host:port}, C{[host]:port} for IPv6, or a UNIX socket's path
        (L{wireModule.addressName}).
        """
        wire = StreamWire(RecordingReceiver())
        wire.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 4321)))
        self.assertEqual(wire.peerName(), "10.0.0.1:4321")
        wire = StreamWire(RecordingReceiver())
        wire.makeConnection(StringTransport(peerAddress=IPv6Address("TCP", "2001:db8::1", 4321)))
        self.assertEqual(wire.peerName(), "[2001:db8::1]:4321")
        self.assertEqual(wireModule.addressName(IPv6Address("TCP", "::ffff:10.0.0.1", 80)), "[::ffff:10.0.0.1]:80")
        wire = StreamWire(RecordingReceiver())
        transport = StringTransport(peerAddress=UNIXAddress("/run/ws.sock"))
        wire.makeConnection(transport)
        self.assertEqual(wire.peerName(), wireModule.addressName(transport.getPeer()))
        self.assertEqual(wire.peerName(), "/run/ws.sock")
        # A UNIX socket's client is most often unnamed.
        self.assertEqual(wireModule.addressName(UNIXAddress(None)), "unix:")
        # A named one is its path, as text (Twisted keeps it as bytes).
        self.assertEqual(wireModule.addressName(UNIXAddress(b"/tmp/client.sock")), "/tmp/client.sock")
        self.assertEqual(wireModule.addressName(UNIXAddress(b"/tmp/cl\xc3\xafent.sock")), "/tmp/clïent.sock")


class PlainTCPTests(TestCase):
    """
    L{wireModule._plainTCP}: which transports L{StreamWire} looks into.
    """

    serverWire = PeerNameTests.serverWire

    @defer.inlineCallbacks
    def test_tcpServer(self):
        """
        Twisted's TCP server connection is plain TCP until it starts TLS;
        what its type has is found out once.
        """
        wire, client, receiver = yield self.serverWire()
        transport = wire.transport
        self.assertTrue(wireModule._plainTCP(transport))
        self.assertIs(wireModule._TCP_TYPES[tcp.Server], True)
        self.assertTrue(wire._flags & wireModule._PLAIN)
        transport.TLS = True
        try:
            self.assertFalse(wireModule._plainTCP(transport))
        finally:
            del transport.TLS
        wire.loseConnection()
        yield receiver.lost

    def test_otherTransports(self):
        """
        Other transports are not, nor is a TCP connection's subclass
        without the attributes looked into.
        """
        self.assertFalse(wireModule._plainTCP(StringTransport()))

        class Odd(tcp.Server):
            def __init__(self) -> None:
                pass  # no _tempDataLen

        self.assertFalse(wireModule._plainTCP(Odd()))
        self.assertIs(wireModule._TCP_TYPES[Odd], False)


try:
    from wsproto_tw import _sockets
except ImportError:  # built without a C compiler
    _sockets = None  # type: ignore[assignment]


class SendEachMixin:
    """
    L{wireModule.sendEach}'s behaviour, for its pure-Python and C versions
    (C{sendEach} is the function tested).
    """

    sendEach: Any

    def pair(self) -> tuple[socket.socket, socket.socket]:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        return ours, theirs

    def test_everyoneSent(self):
        """
        Every socket is sent the bytes, and nothing is reported.
        """
        pairs = [self.pair() for _ in range(3)]
        self.assertEqual(self.sendEach([ours.fileno() for ours, _ in pairs], b"hello"), [])
        self.assertEqual([theirs.recv(100) for _, theirs in pairs], [b"hello"] * 3)
        self.assertEqual(self.sendEach([], b"x"), [])

    def test_fullAndClosedReported(self):
        """
        A socket that takes only part of the bytes, one that takes none
        (full) and a closed one are reported with how much they took, in
        order; the others are sent everything.
        """
        full, _ = self.pair()
        full.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        chunk = b"x" * 65536
        while True:
            try:
                full.send(chunk)
            except BlockingIOError:
                break
        partial, partialPeer = self.pair()
        partial.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        closed, _ = self.pair()
        closed.close()
        fine, finePeer = self.pair()
        data = b"y" * 65536
        fds = [fine.fileno(), full.fileno(), partial.fileno(), closed.fileno()]
        self.assertEqual(fds[3], -1)
        rest = self.sendEach(fds, data)
        self.assertEqual([i for i, sent in rest], [1, 2, 3])
        byIndex = dict(rest)
        self.assertEqual((byIndex[1], byIndex[3]), (0, 0))
        self.assertTrue(0 < byIndex[2] < len(data))
        self.assertEqual(finePeer.recv(1 << 20), data)
        received = b""
        while len(received) < byIndex[2]:
            received += partialPeer.recv(1 << 20)
        self.assertEqual(self.sendEach([partial.fileno()], b"z"), [])
        received += partialPeer.recv(1 << 20)
        self.assertEqual(received, data[: byIndex[2]] + b"z")

    def test_peerGone(self):
        """
        A socket whose peer has closed (a send fails: broken pipe, no
        signal) counts as nothing sent.
        """
        ours, theirs = self.pair()
        theirs.close()
        rest = self.sendEach([ours.fileno()], b"x" * 100)
        rest += self.sendEach([ours.fileno()], b"x" * 100)
        self.assertIn((0, 0), rest)


class PythonSendEachTests(SendEachMixin, SynchronousTestCase):
    """
    The pure-Python L{wireModule._sendEachPython}.
    """

    sendEach = staticmethod(wireModule._sendEachPython)


class CSendEachTests(SendEachMixin, SynchronousTestCase):
    """
    C{wsproto_tw._sockets.sendEach}, the C version.
    """

    def setUp(self) -> None:
        if _sockets is None:
            self.fail(
                "wsproto_tw._sockets was not built (it needs a C compiler and Python's headers; "
                "WSPROTO_TW_NO_SPEEDUPS=1 opts out of building and testing it)"
            )

    @property
    def sendEach(self):
        return _sockets.sendEach

    def test_badArguments(self):
        """
        Anything but a list of file descriptors (C{int}) and C{bytes} is a
        L{TypeError}; a descriptor out of C{int}'s range, an
        L{OverflowError}.
        """
        ours, _ = self.pair()
        fd = ours.fileno()
        self.assertRaises(TypeError, _sockets.sendEach, (fd,), b"x")
        self.assertRaises(TypeError, _sockets.sendEach, [fd], "x")
        self.assertRaises(TypeError, _sockets.sendEach, [fd])
        self.assertRaises(TypeError, _sockets.sendEach, [ours], b"x")
        self.assertRaises(OverflowError, _sockets.sendEach, [1 << 40], b"x")

    def test_selected(self):
        """
        L{wireModule.sendEach} is the C version unless
        C{WSPROTO_TW_NO_SPEEDUPS} is set, then the pure-Python one.
        """
        if os.environ.get("WSPROTO_TW_NO_SPEEDUPS"):
            self.assertIs(wireModule.sendEach, wireModule._sendEachPython)
        else:
            self.assertIs(wireModule.sendEach, _sockets.sendEach)


if os.environ.get("WSPROTO_TW_NO_SPEEDUPS"):
    # Neither built nor used: nothing of the C version to test.
    class CSendEachTests(SynchronousTestCase):  # type: ignore[no-redef]
        """
        With C{WSPROTO_TW_NO_SPEEDUPS} set, L{wireModule.sendEach} is the
        pure-Python one.
        """

        def test_selected(self):
            """
            L{wireModule.sendEach} is L{wireModule._sendEachPython}.
            """
            self.assertIs(wireModule.sendEach, wireModule._sendEachPython)
