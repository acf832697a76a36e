"""
Tests for L{wsproto_tw.core.prepared} and C{Connection.send_prepared}: a
message whose frame is built once and queued on many connections.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.core.test_deflate import HELLO, HELLO_AGAIN, deflatedClient, deflatedServer
from tests.helpers import openedClient, openedServer
from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ServerConnection
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.core.errors import InvalidState
from wsproto_tw.core.prepared import PreparedMessage
from wsproto_tw.core.stats import Statistics

NO_CONTEXT = "permessage-deflate; server_no_context_takeover"


def counters(connection) -> dict:
    """
    Every counter of C{connection}'s statistics, by name.
    """
    stats = connection.stats
    return {name: getattr(stats, name) for name in Statistics.__slots__}


class PreparedMessageTests(SynchronousTestCase):
    """
    L{PreparedMessage} holds a message and builds its frames once.
    """

    def test_text(self):
        """
        A C{str} is a text message, its payload UTF-8, its frame unmasked.
        """
        message = PreparedMessage("h\u00e9")
        self.assertEqual((message.opcode, message.payload, message.message), (Opcode.TEXT, b"h\xc3\xa9", "h\u00e9"))
        self.assertEqual(message.frame(), b"\x81\x03h\xc3\xa9")

    def test_binary(self):
        """
        Bytes-like objects are binary messages, kept as C{bytes}.
        """
        message = PreparedMessage(bytearray(b"\x00\x01"))
        self.assertEqual((message.opcode, message.payload, message.message), (Opcode.BINARY, b"\x00\x01", b"\x00\x01"))
        self.assertEqual(message.frame(), b"\x82\x02\x00\x01")

    def test_notAMessage(self):
        """
        Anything else is a L{TypeError}.
        """
        error = self.assertRaises(TypeError, PreparedMessage, 3)
        self.assertEqual(str(error), "a message is str or bytes, not int")

    def test_frameBuiltOnce(self):
        """
        The frame is built on the first call and the same object returned
        after.
        """
        message = PreparedMessage("x" * 200)
        self.assertIs(message.frame(), message.frame())
        self.assertEqual(message.frame(), b"\x81\x7e\x00\xc8" + b"x" * 200)


class SendPreparedTests(SynchronousTestCase):
    """
    C{Connection.send_prepared} queues the shared frame where it can, and
    otherwise sends the message as C{send_text} or C{send_binary} would.
    """

    def test_uncompressedShared(self):
        """
        Server connections without compression queue the very same frame
        object, and count the message as sent.
        """
        message = PreparedMessage("Hello")
        servers = [openedServer(Config(ping_interval=None)) for _ in range(3)]
        for server in servers:
            server.send_prepared(message)
        frames = [server._out[0] for server in servers]
        self.assertEqual(frames[0], b"\x81\x05Hello")
        self.assertIs(frames[1], frames[0])
        self.assertIs(frames[2], frames[0])
        reference = openedServer(Config(ping_interval=None))
        reference.send_text("Hello")
        reference.data_to_send()
        for server in servers:
            self.assertEqual(server.data_to_send(), b"\x81\x05Hello")
            self.assertEqual(counters(server), counters(reference))
            self.assertEqual((server.stats.text_sent, server.stats.text_bytes_sent), (1, 5))

    def test_binaryCounted(self):
        """
        A binary message is counted as binary.
        """
        server = openedServer(Config(ping_interval=None))
        server.send_prepared(PreparedMessage(b"\x01\x02"))
        self.assertEqual(server.data_to_send(), b"\x82\x02\x01\x02")
        self.assertEqual((server.stats.binary_sent, server.stats.binary_bytes_sent, server.stats.text_sent), (1, 2, 0))

    def test_compressedSharedWithoutContext(self):
        """
        Server connections that compress each message on its own queue one
        compressed frame, built once (RFC 7692 §7.2.3.1), and count what
        compression did.
        """
        message = PreparedMessage("Hello")
        first, second = deflatedServer(offer=NO_CONTEXT), deflatedServer(offer=NO_CONTEXT)
        for server in (first, second):
            server.send_prepared(message)
            server.send_prepared(message)
        self.assertIs(second._out[0], first._out[0])
        reference = deflatedServer(offer=NO_CONTEXT)
        reference.send_text("Hello")
        reference.send_text("Hello")
        reference.data_to_send()
        for server in (first, second):
            self.assertEqual(server.data_to_send(), (b"\xc1\x07" + HELLO) * 2)
            self.assertEqual(counters(server), counters(reference))
            self.assertEqual((server.stats.deflate_bytes_in, server.stats.deflate_bytes_out), (10, 14))

    def test_compressedByContextSize(self):
        """
        A policy with C{context_size=0} shares compressed frames even where
        the client let the server keep its context.
        """
        message = PreparedMessage("Hello")
        servers = [deflatedServer(PerMessageDeflate(context_size=0)) for _ in range(2)]
        for server in servers:
            server.send_prepared(message)
        self.assertIs(servers[1]._out[0], servers[0]._out[0])
        self.assertEqual(servers[0].data_to_send(), b"\xc1\x07" + HELLO)

    def test_oneFramePerSetting(self):
        """
        Connections with different compression settings get different
        frames, each built once: here a 9-bit window and the full one.
        """
        data = bytes((i * 151 + 7) % 251 for i in range(200)) + bytes(300) + bytes((i * 151 + 7) % 251 for i in range(200))
        message = PreparedMessage(data)
        narrow = [deflatedServer(offer=NO_CONTEXT + "; server_max_window_bits=9") for _ in range(2)]
        wide = [deflatedServer(offer=NO_CONTEXT) for _ in range(2)]
        for server in narrow + wide:
            server.send_prepared(message)
        self.assertIs(narrow[1]._out[0], narrow[0]._out[0])
        self.assertIs(wide[1]._out[0], wide[0]._out[0])
        self.assertNotEqual(narrow[0]._out[0], wide[0]._out[0])
        alone = deflatedServer(offer=NO_CONTEXT + "; server_max_window_bits=9")
        alone.send_binary(data)
        self.assertEqual(narrow[0].data_to_send(), alone.data_to_send())

    def test_minSizeShared(self):
        """
        A message under the policy's C{min_size} goes out as the shared
        uncompressed frame, and is not counted as compressed.
        """
        message = PreparedMessage("Hi")
        server = deflatedServer(PerMessageDeflate(min_size=5), offer=NO_CONTEXT)
        server.send_prepared(message)
        self.assertIs(server._out[0], message.frame())
        self.assertEqual(server.data_to_send(), b"\x81\x02Hi")
        self.assertEqual((server.stats.deflate_bytes_in, server.stats.deflate_bytes_out), (0, 0))

    def test_contextCompressedPerConnection(self):
        """
        A server that keeps its compression context compresses the message
        itself, against what it sent before: the RFC's second "Hello"
        (§7.2.3.2).
        """
        message = PreparedMessage("Hello")
        server = deflatedServer()
        server.send_text("Hello")
        server.send_prepared(message)
        self.assertEqual(server.data_to_send(), b"\xc1\x07" + HELLO + b"\xc1\x05" + HELLO_AGAIN)
        fresh = deflatedServer()
        fresh.send_prepared(message)
        self.assertEqual(fresh.data_to_send(), b"\xc1\x07" + HELLO)

    def test_clientMasksItsOwn(self):
        """
        A client masks the frame with its own key, as C{send_text} does.
        """
        client = openedClient(Config(ping_interval=None))
        client.send_prepared(PreparedMessage("hi"))
        self.assertEqual(client.data_to_send(), b"\x81\x82\x01\x02\x03\x04\x69\x6b")
        client = deflatedClient()
        client.send_prepared(PreparedMessage("Hello"))
        masked = bytes(b ^ (1, 2, 3, 4)[i % 4] for i, b in enumerate(HELLO))
        self.assertEqual(client.data_to_send(), b"\xc1\x87\x01\x02\x03\x04" + masked)

    def test_closingDrops(self):
        """
        Once the closing handshake has started, the message is dropped.
        """
        server = openedServer(Config(ping_interval=None))
        server.send_close(1000, "", now=0.0)
        server.data_to_send()
        server.send_prepared(PreparedMessage("late"))
        self.assertEqual(server.data_to_send(), b"")
        self.assertEqual(server.stats.text_sent, 0)

    def test_beforeOpen(self):
        """
        Before the connection opens, L{InvalidState} is raised.
        """
        from wsproto_tw.core.connection import ServerConnection

        server = ServerConnection(Config(), now=0.0)
        self.assertRaises(InvalidState, server.send_prepared, PreparedMessage("early"))


class TakePreparedTests(SynchronousTestCase):
    """
    C{Connection.take_prepared} hands back the shared frame for the caller
    to write when nothing is queued, counted as sent once; otherwise it
    queues as C{send_prepared} does.
    """

    def test_handedBack(self):
        """
        With nothing queued, the shared frame itself comes back, nothing is
        queued, and the statistics match a C{send_text} written out.
        """
        message = PreparedMessage("Hello")
        server = openedServer(Config(ping_interval=None))
        self.assertIs(server.take_prepared(message), message.frame())
        self.assertEqual(server.data_to_send(), b"")
        reference = openedServer(Config(ping_interval=None))
        reference.send_text("Hello")
        self.assertEqual(reference.data_to_send(), b"\x81\x05Hello")
        self.assertEqual(counters(server), counters(reference))

    def test_behindQueued(self):
        """
        Bytes already queued (a pong) go first: the frame is queued after
        them, not handed back, and counted as sent once.
        """
        server = openedServer(Config(ping_interval=None))
        before = server.stats.bytes_sent
        server.receive_data(b"\x89\x82\x00\x00\x00\x00hi", now=0.0)
        list(server.events())
        self.assertIsNone(server.take_prepared(PreparedMessage("Hello")))
        self.assertEqual(server.data_to_send(), b"\x8a\x02hi\x81\x05Hello")
        self.assertEqual(server.stats.bytes_sent - before, 11)

    def test_compressedHandedBack(self):
        """
        A compressed frame shared by connections without a context comes
        back too, its compression counted.
        """
        message = PreparedMessage("Hello")
        server = deflatedServer(offer=NO_CONTEXT)
        before = server.stats.bytes_sent
        frame = server.take_prepared(message)
        self.assertEqual(frame, b"\xc1\x07" + HELLO)
        self.assertEqual((server.stats.deflate_bytes_in, server.stats.deflate_bytes_out), (5, 7))
        self.assertEqual(server.stats.bytes_sent - before, 9)
        self.assertEqual(server.data_to_send(), b"")

    def test_ownFramesQueued(self):
        """
        A client (masking) and a server keeping its compression context
        queue frames of their own: nothing comes back.
        """
        client = openedClient(Config(ping_interval=None))
        self.assertIsNone(client.take_prepared(PreparedMessage("hi")))
        self.assertEqual(client.data_to_send(), b"\x81\x82\x01\x02\x03\x04\x69\x6b")
        server = deflatedServer()
        self.assertIsNone(server.take_prepared(PreparedMessage("Hello")))
        self.assertEqual(server.data_to_send(), b"\xc1\x07" + HELLO)

    def test_closingAndMisuse(self):
        """
        Once closing, nothing comes back and nothing is queued or counted;
        before the opening handshake, and while a message is sent in
        pieces, L{InvalidState}.
        """
        server = openedServer(Config(ping_interval=None))
        server.send_close(1000, "", now=0.0)
        server.data_to_send()
        self.assertIsNone(server.take_prepared(PreparedMessage("late")))
        self.assertEqual((server.data_to_send(), server.stats.text_sent), (b"", 0))
        server = openedServer(Config(ping_interval=None))
        server.begin_message(False)
        self.assertRaises(InvalidState, server.take_prepared, PreparedMessage("x"))
        opening = ServerConnection(Config(ping_interval=None), now=0.0)
        self.assertRaises(InvalidState, opening.take_prepared, PreparedMessage("x"))


class TakePreparedEachTests(SynchronousTestCase):
    """
    C{Connection.take_prepared_each} is C{take_prepared}'s common case for
    many connections in one call: those that can take the shared frame at
    once count it; the others are left untouched.
    """

    def test_counted(self):
        """
        Each open server connection with nothing queued takes the frame,
        with the same statistics as a C{send_text} (or C{send_binary})
        written out; nothing is queued.
        """
        for content, send in (("Hello", "send_text"), (b"\x00\x01", "send_binary")):
            message = PreparedMessage(content)
            servers = [openedServer(Config(ping_interval=None)) for _ in range(3)]
            self.assertEqual(ServerConnection.take_prepared_each(servers, message), [])
            reference = openedServer(Config(ping_interval=None))
            getattr(reference, send)(content)
            reference.data_to_send()
            for server in servers:
                self.assertEqual(server.data_to_send(), b"")
                self.assertEqual(counters(server), counters(reference))

    def test_othersUntouched(self):
        """
        A connection with bytes queued, one with compression, a client, one
        closing, one still opening and one in the middle of a message sent
        in pieces do not take the frame; nothing of theirs changes, and the
        open one between them takes it.
        """
        queued = openedServer(Config(ping_interval=None))
        queued.receive_data(b"\x89\x82\x00\x00\x00\x00hi", now=0.0)
        list(queued.events())
        closing = openedServer(Config(ping_interval=None))
        closing.send_close(1000, "", now=0.0)
        closing.data_to_send()
        pieces = openedServer(Config(ping_interval=None))
        pieces.begin_message(False)
        others = [
            queued,
            deflatedServer(offer=NO_CONTEXT),
            openedClient(Config(ping_interval=None)),
            closing,
            ServerConnection(Config(ping_interval=None), now=0.0),
            pieces,
        ]
        plain = openedServer(Config(ping_interval=None))
        before = [counters(c) for c in others]
        taken = ServerConnection.take_prepared_each(others[:3] + [plain] + others[3:], PreparedMessage("x"))
        self.assertEqual(taken, [0, 1, 2, 4, 5, 6])
        self.assertEqual([counters(c) for c in others], before)
        self.assertEqual(queued.data_to_send(), b"\x8a\x02hi")
        self.assertEqual(plain.stats.text_sent, 1)
