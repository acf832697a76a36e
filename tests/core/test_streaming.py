"""
Tests for streaming messages in the core: L{Connection.stream_messages
<wsproto_tw.core.connection.Connection.stream_messages>} (receiving a data
message piece by piece, L{wsproto_tw.core.assembly.MessageStream}) and
L{Connection.begin_message <wsproto_tw.core.connection.Connection.begin_message>}
(sending one in pieces), byte for byte.
"""

from __future__ import annotations

import zlib

from twisted.trial.unittest import SynchronousTestCase

from tests.core.test_deflate import TAIL, compressed, deflatedServer
from tests.helpers import clientFrame, closePayload, fixedMask, openedClient, openedServer, parseFrames
from wsproto_tw.core import CloseCode, Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.core.errors import InvalidState
from wsproto_tw.core.events import (
    BinaryMessage,
    ConnectionFailed,
    MessageData,
    MessageEnded,
    MessageStarted,
    Ping,
    TextMessage,
)

NO_TIMERS = {"ping_interval": None}


def streamingServer(**config) -> object:
    server = openedServer(Config(**{**NO_TIMERS, **config}))
    server.stream_messages = True
    return server


def feed(connection, data: bytes) -> list:
    connection.receive_data(data, now=0.0)
    return list(connection.events())


class ReceiveTests(SynchronousTestCase):
    def test_localFailureDropsParsed(self):
        """
        Once the connection is failed locally (the application raised on
        L{MessageStarted}, say), what was already parsed from the same
        read is not reported: only L{ConnectionFailed} follows.
        """
        for streaming in (True, False):
            server = streamingServer() if streaming else openedServer(Config(**NO_TIMERS))
            server.receive_data(clientFrame(0x1, b"one") + clientFrame(0x1, b"two"), now=0.0)
            first = server.next_event()
            self.assertIsInstance(first, MessageStarted if streaming else TextMessage)
            server.fail(1011, "internal error", now=0.0)
            rest = list(server.events())
            self.assertEqual([type(event) for event in rest], [ConnectionFailed], rest)

    def test_offByDefault(self):
        """
        Without streaming mode, a fragmented message is one whole event.
        """
        server = openedServer(Config(**NO_TIMERS))
        events = feed(server, clientFrame(0x2, b"ab", fin=False) + clientFrame(0x0, b"cd"))
        self.assertEqual(events, [BinaryMessage(b"abcd")])

    def test_singleFrame(self):
        """
        A whole message in one frame is started, handed on and ended.
        """
        server = streamingServer()
        self.assertEqual(
            feed(server, clientFrame(0x1, b"hi") + clientFrame(0x2, b"\x00\xff")),
            [
                MessageStarted(False), MessageData("hi"), MessageEnded(),
                MessageStarted(True), MessageData(b"\x00\xff"), MessageEnded(),
            ],
        )
        self.assertEqual((server.stats.text_received, server.stats.binary_received), (1, 1))
        self.assertEqual(server.stats.binary_bytes_received, 2)

    def test_fragmentsAndInterleavedPing(self):
        """
        Each frame's data is an event as it arrives; a ping between
        fragments is reported (and answered) in its place.
        """
        server = streamingServer()
        events = feed(
            server,
            clientFrame(0x2, b"ab", fin=False) + clientFrame(0x9, b"p") + clientFrame(0x0, b"", fin=False)
            + clientFrame(0x0, b"cd"),
        )
        self.assertEqual(
            events, [MessageStarted(True), MessageData(b"ab"), Ping(b"p"), MessageData(b"cd"), MessageEnded()]
        )
        self.assertEqual(server.data_to_send(), b"\x8a\x01p")

    def test_partialFrames(self):
        """
        A frame that arrives over several reads comes out piece by piece,
        without waiting for its end.
        """
        server = streamingServer()
        frame = clientFrame(0x2, b"abcdef")
        self.assertEqual(feed(server, frame[:9]), [MessageStarted(True), MessageData(b"abc")])
        self.assertEqual(feed(server, frame[9:]), [MessageData(b"def"), MessageEnded()])

    def test_textSplitCodePoint(self):
        """
        A code point split between frames comes out whole with the later
        piece; nothing empty is handed on.
        """
        server = streamingServer()
        euro = "€".encode()  # e2 82 ac
        events = feed(
            server,
            clientFrame(0x1, b"a" + euro[:1], fin=False) + clientFrame(0x0, euro[1:2], fin=False)
            + clientFrame(0x0, euro[2:] + b"b"),
        )
        self.assertEqual(events, [MessageStarted(False), MessageData("a"), MessageData("€b"), MessageEnded()])

    def test_invalidTextLater(self):
        """
        Invalid UTF-8 in a later fragment fails the connection with 1007
        after the valid pieces before it were handed on.
        """
        server = streamingServer()
        events = feed(server, clientFrame(0x1, b"ok", fin=False) + clientFrame(0x0, b"\xff"))
        self.assertEqual(events[:2], [MessageStarted(False), MessageData("ok")])
        self.assertEqual(type(events[2]), ConnectionFailed)
        self.assertEqual(events[2].code, CloseCode.INVALID_PAYLOAD)
        self.assertEqual(parseFrames(server.data_to_send()), [(0x8, closePayload(1007, b"invalid utf-8 in text message"), True, 0)])

    def test_surrogatePrefixFailsAtOnce(self):
        """
        The start of a UTF-16 surrogate (ED A0) fails in the fragment where
        it appears, not once the code point is complete.
        """
        server = streamingServer()
        events = feed(server, clientFrame(0x1, b"\xed\xa0", fin=False))
        self.assertEqual([type(e) for e in events], [MessageStarted, ConnectionFailed])
        self.assertEqual(events[1].code, 1007)

    def test_tooBig(self):
        """
        The size limit is on the whole message so far: the piece that
        passes it fails the connection with 1009.
        """
        server = streamingServer(max_message_size=10)
        events = feed(server, clientFrame(0x2, b"x" * 6, fin=False) + clientFrame(0x0, b"y" * 5))
        self.assertEqual(events[:2], [MessageStarted(True), MessageData(b"x" * 6)])
        self.assertEqual((type(events[2]), events[2].code), (ConnectionFailed, CloseCode.MESSAGE_TOO_BIG))
        self.assertEqual(parseFrames(server.data_to_send())[0][1][:2], b"\x03\xf1")

    def test_tooManyFrames(self):
        """
        C{max_fragments} still applies: 1008.
        """
        server = streamingServer(max_fragments=2)
        events = feed(server, b"".join(clientFrame(0x2 if i == 0 else 0, b"a", fin=False) for i in range(3)))
        self.assertEqual(events[-1].code, CloseCode.POLICY_VIOLATION)

    def test_orderRules(self):
        """
        The frame order rules are the same: a new message before the last
        one ended is a protocol error (1002).
        """
        server = streamingServer()
        events = feed(server, clientFrame(0x2, b"a", fin=False) + clientFrame(0x2, b"b"))
        self.assertEqual(events[-1].code, CloseCode.PROTOCOL_ERROR)

    def test_compressed(self):
        """
        A compressed message is inflated piece by piece; the limit is on
        the inflated size.
        """
        server = deflatedServer()
        server.stream_messages = True
        body = compressed(b"hello hello hello")
        events = feed(server, clientFrame(0x1, body[:5], fin=False, rsv=4) + clientFrame(0x0, body[5:]))
        self.assertEqual(events[0], MessageStarted(False))
        self.assertEqual(events[-1], MessageEnded())
        self.assertEqual("".join(e.data for e in events[1:-1]), "hello hello hello")
        limited = deflatedServer(max_message_size=1000)
        limited.stream_messages = True
        events = feed(limited, clientFrame(0x2, compressed(b"\0" * 2000), rsv=4))
        self.assertEqual(events[-1].code, CloseCode.MESSAGE_TOO_BIG)

    def test_compressedBomb(self):
        """
        A small compressed piece that inflates to megabytes is handed on
        L{MAX_INFLATED_PIECE} bytes at a time, each part inflated only when
        the events are read: the piece never sits inflated in memory
        whole. Text split across parts mid code point comes out whole, and
        the next message, compressed with the same context, still inflates.
        """
        from wsproto_tw.core.assembly import MAX_INFLATED_PIECE

        server = deflatedServer(max_message_size=8 << 20)
        server.stream_messages = True
        peer = zlib.compressobj(6, zlib.DEFLATED, -15)

        def body(payload: bytes) -> bytes:
            data = peer.compress(payload) + peer.flush(zlib.Z_SYNC_FLUSH)
            return data[:-4]

        text = "\u20ac" * (2 << 20)  # 6 MiB of UTF-8 from a few KiB on the wire
        wire = body(text.encode("utf-8"))
        self.assertLess(len(wire), 64 * 1024)
        server.receive_data(clientFrame(0x1, wire, rsv=4), now=0.0)
        self.assertEqual(server.next_event(), MessageStarted(False))
        pieces = []
        while (event := server.next_event()) != MessageEnded():
            self.assertIsInstance(event, MessageData)
            self.assertLessEqual(len(event.data.encode("utf-8")), MAX_INFLATED_PIECE + 3)
            pieces.append(event.data)
        self.assertGreater(len(pieces), 20)
        self.assertEqual("".join(pieces), text)
        self.assertEqual(server.stats.text_bytes_received, len(text) * 3)
        events = feed(server, clientFrame(0x2, body(b"again"), rsv=4))
        self.assertEqual(events, [MessageStarted(True), MessageData(b"again"), MessageEnded()])

    def test_compressedBombOverLimit(self):
        """
        Inflated part by part, a compressed message past
        C{max_message_size} still fails with 1009, before more than the
        limit was handed on.
        """
        server = deflatedServer(max_message_size=1 << 20)
        server.stream_messages = True
        events = feed(server, clientFrame(0x2, compressed(bytes(4 << 20)), rsv=4))
        self.assertEqual(events[-1].code, CloseCode.MESSAGE_TOO_BIG)
        self.assertLessEqual(sum(len(e.data) for e in events if type(e) is MessageData), 1 << 20)

    def test_client(self):
        """
        A client streams what the server sends (unmasked) the same way.
        """
        from tests.helpers import serverFrame

        client = openedClient(Config(**NO_TIMERS))
        client.stream_messages = True
        events = feed(client, serverFrame(0x1, b"ab", fin=False) + serverFrame(0x0, b"c"))
        self.assertEqual(events, [MessageStarted(False), MessageData("ab"), MessageData("c"), MessageEnded()])

    def test_switchBetweenMessages(self):
        """
        The mode applies from the next message on.
        """
        server = streamingServer()
        self.assertEqual(feed(server, clientFrame(0x1, b"a")), [MessageStarted(False), MessageData("a"), MessageEnded()])
        server.stream_messages = False
        self.assertEqual(feed(server, clientFrame(0x1, b"b")), [TextMessage("b")])


class SendTests(SynchronousTestCase):
    def test_frames(self):
        """
        Each piece is one frame: the first with the message's opcode, the
        next ones continuations, FIN only on the last; a ping may go
        between them.
        """
        server = openedServer(Config(**NO_TIMERS))
        server.begin_message(binary=True)
        self.assertEqual(server.data_to_send(), b"")
        server.send_message_data(b"ab")
        server.send_ping(b"p")
        server.send_message_data(b"")
        server.send_message_data(bytearray(b"cd"))
        server.end_message(b"e")
        self.assertEqual(server.data_to_send(), b"\x02\x02ab" + b"\x89\x01p" + b"\x00\x02cd" + b"\x80\x01e")
        self.assertEqual((server.stats.binary_sent, server.stats.binary_bytes_sent), (1, 5))
        server.send_text("x")
        self.assertEqual(server.data_to_send(), b"\x81\x01x")

    def test_textAndEmptyEnd(self):
        """
        Text pieces are str, encoded; C{end_message()} without data sends an
        empty final continuation; a message without pieces is one frame.
        """
        server = openedServer(Config(**NO_TIMERS))
        server.begin_message(binary=False)
        server.send_message_data("h€")
        server.end_message()
        server.begin_message(binary=False)
        server.end_message()
        self.assertEqual(server.data_to_send(), b"\x01\x04h\xe2\x82\xac" + b"\x80\x00" + b"\x81\x00")
        self.assertEqual((server.stats.text_sent, server.stats.text_bytes_sent), (2, 4))

    def test_clientMasks(self):
        """
        A client masks each frame of the message with its own key.
        """
        client = openedClient(Config(**NO_TIMERS), mask_source=fixedMask(b"\x01\x02\x03\x04"))
        client.begin_message(binary=True)
        client.send_message_data(b"\x00\x00")
        client.end_message(b"\x00")
        self.assertEqual(
            client.data_to_send(),
            b"\x02\x82\x01\x02\x03\x04\x01\x02" + b"\x80\x81\x01\x02\x03\x04\x01",
        )

    def test_compressedFrames(self):
        """
        With permessage-deflate, the message is one deflate stream over its
        frames: each piece compressed and sync-flushed, RSV1 on the first
        frame only, the 00 00 ff ff tail removed from the last (RFC 7692
        §7.2.1), byte for byte as zlib makes it.
        """
        server = deflatedServer()
        server.begin_message(binary=False)
        server.send_message_data("Hello")
        server.end_message("Hello")
        reference = zlib.compressobj(6, zlib.DEFLATED, -15, 8)
        first = reference.compress(b"Hello") + reference.flush(zlib.Z_SYNC_FLUSH)
        last = (reference.compress(b"Hello") + reference.flush(zlib.Z_SYNC_FLUSH))[:-4]
        self.assertEqual(parseFrames(server.data_to_send()), [(0x1, first, False, 4), (0x0, last, True, 0)])
        self.assertEqual((server.stats.deflate_bytes_in, server.stats.text_bytes_sent), (10, 10))

    def test_compressedContext(self):
        """
        A peer that keeps one inflater across messages (context takeover)
        reads the message sent in pieces, and whole messages after it,
        whichever way the codec keeps its context; without context
        takeover, each message inflates on its own.
        """
        text = "the streamed message " * 50

        def exchange(server, inflate):
            server.send_text("before " * 10)
            server.begin_message(binary=True)
            for i in range(0, len(text), 100):
                server.send_message_data(text[i : i + 100].encode())
            server.send_ping(b"p")
            server.end_message()
            server.send_text("before after " + text[-40:])
            messages, body = [], b""
            for opcode, payload, fin, rsv in parseFrames(server.data_to_send()):
                if opcode == 0x9:
                    continue
                body += payload
                if fin:
                    messages.append(inflate(body + TAIL))
                    body = b""
            self.assertEqual(
                messages, [b"before " * 10, text.encode(), ("before after " + text[-40:]).encode()]
            )

        for policy in (PerMessageDeflate(), PerMessageDeflate(context_size=None)):
            peer = zlib.decompressobj(-15)
            exchange(deflatedServer(policy), peer.decompress)
        exchange(
            deflatedServer(offer="permessage-deflate; server_no_context_takeover"),
            lambda body: zlib.decompressobj(-15).decompress(body),
        )

    def test_compressedRoundTrip(self):
        """
        A client's core inflates a message a server sent in pieces
        (compressed), as a streamed message too.
        """
        from tests.core.test_deflate import deflatedClient

        server = deflatedServer()
        client = deflatedClient()
        client.stream_messages = True
        server.begin_message(binary=False)
        server.send_message_data("é" * 1000)
        server.end_message("!")
        events = feed(client, server.data_to_send())
        self.assertEqual(events[0], MessageStarted(False))
        self.assertEqual("".join(e.data for e in events[1:-1]), "é" * 1000 + "!")

    def test_misuse(self):
        """
        Data or end without a begun message, a second begin, and a whole
        message while one is being sent in pieces raise InvalidState;
        pieces of the wrong type raise TypeError.
        """
        server = openedServer(Config(**NO_TIMERS))
        self.assertRaises(InvalidState, server.send_message_data, b"a")
        self.assertRaises(InvalidState, server.end_message)
        self.assertRaises(InvalidState, server.end_message, b"a")
        server.begin_message(binary=False)
        self.assertRaises(InvalidState, server.begin_message, binary=True)
        self.assertRaises(InvalidState, server.send_text, "x")
        self.assertRaises(InvalidState, server.send_binary, b"x")
        self.assertRaises(TypeError, server.send_message_data, b"bytes")
        server.end_message()
        server.begin_message(binary=True)
        self.assertRaises(TypeError, server.send_message_data, "text")
        self.assertRaises(TypeError, server.end_message, "text")
        server.end_message()
        self.assertEqual(server.data_to_send(), b"\x81\x00\x82\x00")

    def test_beforeOpen(self):
        """
        Nothing can be begun before the connection opens.
        """
        from wsproto_tw.core.connection import ServerConnection

        server = ServerConnection(Config(), now=0.0)
        self.assertRaises(InvalidState, server.begin_message, binary=True)

    def test_closeBetweenPieces(self):
        """
        Close may be sent between pieces; what follows is dropped, and the
        message can still be ended.
        """
        server = openedServer(Config(**NO_TIMERS))
        server.begin_message(binary=True)
        server.send_message_data(b"a")
        server.send_close(1000, now=0.0)
        server.send_message_data(b"b")
        server.end_message(b"c")
        self.assertEqual(server.data_to_send(), b"\x02\x01a\x88\x02\x03\xe8")
        self.assertEqual(server.stats.binary_sent, 0)
