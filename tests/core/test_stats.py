"""
Tests for L{wsproto_tw.core.stats}: what a connection counts as it goes.
"""

from __future__ import annotations

import gc
import zlib

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import clientFrame, closePayload, openedServer, parseFrames, requestBytes
from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ServerConnection
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.core.stats import RTT_BUCKETS, CloseRecord, Statistics


class MessageCountTests(SynchronousTestCase):
    """
    Messages and bytes, both ways.
    """

    def test_wholeMessagesReceived(self):
        """
        Each whole message received counts once, by type, with its payload
        in bytes (text in UTF-8 bytes, not characters).
        """
        server = openedServer()
        server.receive_data(
            clientFrame(Opcode.TEXT, "\u00e9t\u00e9".encode()) + clientFrame(Opcode.BINARY, b"abc"), now=1.0
        )
        list(server.events())
        stats = server.stats
        self.assertEqual(
            (stats.text_received, stats.text_bytes_received, stats.binary_received, stats.binary_bytes_received),
            (1, 5, 1, 3),
        )

    def test_fragmentedMessagesReceived(self):
        """
        A message in several frames counts once, when it is complete, with
        all its payload.
        """
        server = openedServer()
        server.receive_data(
            clientFrame(Opcode.TEXT, b"ab", fin=False)
            + clientFrame(Opcode.CONTINUATION, "\u00e9".encode())
            + clientFrame(Opcode.BINARY, b"x" * 10, fin=False)
            + clientFrame(Opcode.CONTINUATION, b"y" * 7, fin=False),
            now=1.0,
        )
        list(server.events())
        stats = server.stats
        self.assertEqual((stats.text_received, stats.text_bytes_received), (1, 4))
        # The binary message is not complete yet.
        self.assertEqual((stats.binary_received, stats.binary_bytes_received), (0, 0))
        server.receive_data(clientFrame(Opcode.CONTINUATION, b"z"), now=1.0)
        list(server.events())
        self.assertEqual((stats.binary_received, stats.binary_bytes_received), (1, 18))

    def test_messagesSent(self):
        """
        Each message sent counts once, by type, with its payload in bytes.
        """
        server = openedServer()
        server.send_text("\u00e9")
        server.send_text("hi")
        server.send_binary(b"\x00" * 300)
        stats = server.stats
        self.assertEqual(
            (stats.text_sent, stats.text_bytes_sent, stats.binary_sent, stats.binary_bytes_sent), (2, 4, 1, 300)
        )

    def test_wireBytes(self):
        """
        Every byte received and every byte taken to send is counted, the
        opening handshake included.
        """
        server = ServerConnection(Config(), now=0.0)
        request = requestBytes()
        server.receive_data(request, now=0.0)
        list(server.events())
        server.accept(now=0.0)
        response = server.data_to_send()
        frame = clientFrame(Opcode.TEXT, b"hello")
        server.receive_data(frame, now=1.0)
        list(server.events())
        server.send_text("hello")
        sent = server.data_to_send()
        self.assertEqual(server.stats.bytes_received, len(request) + len(frame))
        self.assertEqual(server.stats.bytes_sent, len(response) + len(sent))
        self.assertEqual(len(sent), 7)

    def test_compressedReceivedCountsInflated(self):
        """
        A compressed message received counts its payload after inflating;
        the messages sent compressed count their payload before and after
        compressing.
        """
        server = ServerConnection(Config(compression=PerMessageDeflate(min_size=0)), now=0.0)
        server.receive_data(
            requestBytes(headers=[("Sec-WebSocket-Extensions", "permessage-deflate")]), now=0.0
        )
        list(server.events())
        server.accept(now=0.0)
        server.data_to_send()
        compressor = zlib.compressobj(wbits=-15)
        body = compressor.compress(b"a" * 1000) + compressor.flush(zlib.Z_SYNC_FLUSH)
        server.receive_data(clientFrame(Opcode.BINARY, body[:-4], rsv=4), now=1.0)
        list(server.events())
        self.assertEqual((server.stats.binary_received, server.stats.binary_bytes_received), (1, 1000))
        server.send_text("b" * 1000)
        [(opcode, payload, fin, rsv)] = parseFrames(server.data_to_send())
        self.assertEqual(rsv, 4)
        self.assertEqual(
            (server.stats.text_bytes_sent, server.stats.deflate_bytes_in, server.stats.deflate_bytes_out),
            (1000, 1000, len(payload)),
        )
        self.assertLess(len(payload), 100)


class HandshakeAndCloseTests(SynchronousTestCase):
    """
    The opening handshake's status and the close record.
    """

    def test_acceptedStatus(self):
        """
        An accepted opening handshake records C{101}.
        """
        self.assertEqual(openedServer().stats.handshake_status, 101)

    def test_rejectedStatus(self):
        """
        A rejected opening handshake records the error status; one that is
        not answered yet records nothing.
        """
        server = ServerConnection(Config(), now=0.0)
        server.receive_data(requestBytes(), now=0.0)
        list(server.events())
        self.assertIsNone(server.stats.handshake_status)
        server.reject(503, "busy")
        self.assertEqual(server.stats.handshake_status, 503)

    def test_badRequestStatus(self):
        """
        A request the core refuses by itself records its status.
        """
        server = ServerConnection(Config(), now=0.0)
        server.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", now=0.0)
        list(server.events())
        self.assertEqual(server.stats.handshake_status, 405)

    def test_closeRecordPeerCloses(self):
        """
        When the peer closes, the record holds its code and our echo.
        """
        server = openedServer()
        self.assertEqual(server.close_record, CloseRecord(None, None, None))
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(4001, b"bye")), now=1.0)
        list(server.events())
        self.assertEqual(server.close_record, CloseRecord(4001, 4001, None))

    def test_closeRecordFailure(self):
        """
        A connection failed for a violation records the failure's code as
        sent and failed.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"\xff"), now=1.0)
        list(server.events())
        self.assertEqual(server.close_record, CloseRecord(CloseCode.INVALID_PAYLOAD, None, CloseCode.INVALID_PAYLOAD))


class RoundTripTests(SynchronousTestCase):
    """
    Keepalive round-trip times.
    """

    def test_keepalivePong(self):
        """
        The pong answering a keepalive ping counts its round trip in its
        bucket; an unsolicited pong counts nothing.
        """
        server = openedServer(Config(ping_interval=10.0, ping_timeout=5.0))
        server.receive_data(clientFrame(Opcode.PONG, b"nothing asked"), now=1.0)
        list(server.events())
        self.assertIsNone(server.stats.rtt_counts)
        server.handle_timer(now=10.0)
        [(opcode, payload, fin, rsv)] = parseFrames(server.data_to_send())
        self.assertEqual(opcode, Opcode.PING)
        server.receive_data(clientFrame(Opcode.PONG, payload), now=10.03)
        list(server.events())
        counts = server.stats.rtt_counts
        self.assertEqual(len(counts), len(RTT_BUCKETS) + 1)
        self.assertEqual(counts[RTT_BUCKETS.index(0.05)], 1)
        self.assertEqual(sum(counts), 1)
        self.assertAlmostEqual(server.stats.rtt_sum, 0.03)

    def test_bucketBounds(self):
        """
        A time equal to a bucket's bound counts in that bucket; one past the
        last bound counts in the last, unbounded one.
        """
        stats = Statistics()
        stats.round_trip(0.001)
        stats.round_trip(60.0)
        self.assertEqual(stats.rtt_counts[0], 1)
        self.assertEqual(stats.rtt_counts[-1], 1)

    def test_readPaused(self):
        """
        Read pauses are counted by the caller's reason.
        """
        stats = Statistics()
        self.assertIsNone(stats.read_pauses)
        stats.read_paused("WRITES")
        stats.read_paused("WRITES")
        stats.read_paused("BACKLOG")
        self.assertEqual(stats.read_pauses, {"WRITES": 2, "BACKLOG": 1})


class ConnectionStatisticsTests(SynchronousTestCase):
    """
    A connection's C{stats} is a L{ConnectionStatistics}: a view of counts
    kept in the connection's own slots.
    """

    def test_viewOfTheConnectionsCounts(self):
        """
        Each read of C{stats} makes a new L{Statistics} whose counters are
        the connection's: what is counted shows in every view, and what a
        view's methods or assignments change is the connection's count.
        """
        server = openedServer()
        first = server.stats
        self.assertIsInstance(first, Statistics)
        self.assertIsNot(server.stats, first)
        self.assertEqual(first.handshake_status, 101)
        server.receive_data(clientFrame(Opcode.TEXT, b"hi"), now=0.0)
        list(server.events())
        self.assertEqual((first.text_received, first.text_bytes_received), (1, 2))
        first.read_paused("WRITES")
        first.round_trip(0.001)
        first.slow_consumer_drops = 1
        second = server.stats
        self.assertEqual(second.read_pauses, {"WRITES": 1})
        self.assertEqual((second.rtt_counts[0], second.rtt_sum, second.slow_consumer_drops), (1, 0.001, 1))
        self.assertEqual(repr(second), repr(first))

    def test_noObjectOfItsOwn(self):
        """
        An idle connection holds no statistics object: its counts are its
        own slots (C{stats} is not one of them).
        """
        server = openedServer()
        self.assertNotIn("stats", type(server).__slots__)
        for cls in type(server).__mro__:
            self.assertNotIn("stats", getattr(cls, "__slots__", ()))
        self.assertFalse(any(isinstance(r, Statistics) for r in gc.get_referents(server)))
