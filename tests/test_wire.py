"""
Tests for L{wsproto_tw.wire.StreamWire}'s writes of large pieces: over
Twisted's plain TCP transport, a large C{bytes} piece goes into the
transport alone, into an empty buffer, so that the transport sends it
without joining (copying) it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from wsproto_tw import wire as wireModule
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
        Once the wire is closed (at once: nothing was left to send), a
        write is left to the transport, which drops it; it is never sent
        directly.
        """
        wire, receiver, collector, writes = yield self.connect()
        wire.write(b"before")
        wire.loseConnection()
        self.assertTrue(receiver.lost.called)
        wire.write(b"after")
        self.assertEqual([data for data, idle in writes], [b"after"])
        collector.transport.resumeProducing()
        received = yield collector.done
        self.assertEqual(received, b"before")

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


class ClosingOverTCPTests(TestCase):
    """
    L{StreamWire.loseConnection} over a real loopback TCP connection.
    """

    connect = LargeWritesOverTCPTests.connect

    @defer.inlineCallbacks
    def test_closedAtOnceWhenIdle(self):
        """
        With nothing left to send, the connection closes in the call: the
        receiver hears C{wireLost} before C{loseConnection} returns, and
        the transport never waits for a writable socket to do it.
        """
        wire, receiver, collector, writes = yield self.connect()
        transport = wire.transport
        self.patch(transport, "startWriting", lambda: self.fail("startWriting"))
        wire.write(b"bye")
        wire.loseConnection()
        self.assertTrue(receiver.lost.called)
        self.assertTrue(transport.disconnected)
        self.assertIsNone(wire.connection)
        collector.transport.resumeProducing()
        received = yield collector.done
        self.assertEqual(received, b"bye")
        self.assertEqual(writes, [])

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
