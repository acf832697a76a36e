"""
Tests for L{wsproto_tw.core.frames}: the frame writer and reader, masking,
and the per-frame rules of RFC 6455 §5 as a connection enforces them.
"""

from __future__ import annotations

import struct

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import (
    MASK,
    clientFrame,
    closePayload,
    fixedMask,
    openedClient,
    openedServer,
    serverFrame,
)
from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import State
from wsproto_tw.core.errors import MessageTooBig, PeerViolation
from wsproto_tw.core.events import BinaryMessage, CloseReceived, ConnectionFailed, Ping, Pong, TextMessage
from wsproto_tw.core.frames import (
    Frame,
    FrameReader,
    _mask_python,
    apply_mask,
    build_frame,
    build_frame_pieces,
    is_valid_wire_code,
)

# RFC 6455 §5.7, byte for byte.
UNMASKED_HELLO = bytes.fromhex("810548656c6c6f")
MASKED_HELLO = bytes.fromhex("818537fa213d7f9f4d5158")
FRAGMENT_HEL = bytes.fromhex("010348656c")
FRAGMENT_LO = bytes.fromhex("80026c6f")
UNMASKED_PING = bytes.fromhex("890548656c6c6f")
MASKED_PONG = bytes.fromhex("8a8537fa213d7f9f4d5158")


def _naiveMask(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


class BuildFrameTests(SynchronousTestCase):
    """
    Tests for L{build_frame}.
    """

    def test_unmaskedText(self):
        """
        A single-frame unmasked text message is the RFC 6455 §5.7 example.
        """
        self.assertEqual(build_frame(Opcode.TEXT, b"Hello"), UNMASKED_HELLO)

    def test_maskedText(self):
        """
        A single-frame masked text message is the RFC 6455 §5.7 example.
        """
        self.assertEqual(build_frame(Opcode.TEXT, b"Hello", mask_key=MASK), MASKED_HELLO)

    def test_fragmentedText(self):
        """
        The two fragments of RFC 6455 §5.7: FIN clear then a FIN continuation.
        """
        self.assertEqual(build_frame(Opcode.TEXT, b"Hel", fin=False), FRAGMENT_HEL)
        self.assertEqual(build_frame(Opcode.CONTINUATION, b"lo"), FRAGMENT_LO)

    def test_pingAndMaskedPong(self):
        """
        The unmasked ping and masked pong examples of RFC 6455 §5.7.
        """
        self.assertEqual(build_frame(Opcode.PING, b"Hello"), UNMASKED_PING)
        self.assertEqual(build_frame(Opcode.PONG, b"Hello", mask_key=MASK), MASKED_PONG)

    def test_binary256(self):
        """
        A 256-byte binary frame uses the 16-bit length: C{82 7E 01 00}.
        """
        payload = bytes(range(256))
        self.assertEqual(build_frame(Opcode.BINARY, payload), b"\x82\x7e\x01\x00" + payload)

    def test_binary64KiB(self):
        """
        A 65536-byte binary frame uses the 64-bit length:
        C{82 7F 00 00 00 00 00 01 00 00}.
        """
        payload = b"\xab" * 65536
        self.assertEqual(
            build_frame(Opcode.BINARY, payload),
            b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + payload,
        )

    def test_lengthBoundaries(self):
        """
        125 bytes fit the 7-bit length, 126 to 65535 take the 16-bit length,
        65536 the 64-bit length.
        """
        self.assertEqual(build_frame(Opcode.BINARY, b"x" * 125)[:2], b"\x82\x7d")
        self.assertEqual(build_frame(Opcode.BINARY, b"x" * 126)[:4], b"\x82\x7e\x00\x7e")
        self.assertEqual(build_frame(Opcode.BINARY, b"x" * 65535)[:4], b"\x82\x7e\xff\xff")
        self.assertEqual(
            build_frame(Opcode.BINARY, b"x" * 65536)[:10], b"\x82\x7f" + struct.pack("!Q", 65536)
        )

    def test_rsv1(self):
        """
        C{rsv1=True} sets bit 0x40 of the first byte.
        """
        self.assertEqual(build_frame(Opcode.TEXT, b"", rsv1=True), b"\xc1\x00")

    def test_maskedLengthBoundary(self):
        """
        The mask bit is set on the length byte in the 16-bit form too.
        """
        frame = build_frame(Opcode.BINARY, b"\x00" * 126, mask_key=b"\x01\x02\x03\x04")
        self.assertEqual(frame[:8], b"\x82\xfe\x00\x7e\x01\x02\x03\x04")
        self.assertEqual(frame[8:], b"\x01\x02\x03\x04" * 31 + b"\x01\x02")


class MaskTests(SynchronousTestCase):
    """
    Tests for L{apply_mask}.
    """

    def test_rfcExample(self):
        """
        C{Hello} masked with C{37 FA 21 3D} is C{7F 9F 4D 51 58}.
        """
        self.assertEqual(apply_mask(b"Hello", MASK), bytes.fromhex("7f9f4d5158"))

    def test_involution(self):
        """
        Masking twice with the same key gives the data back.
        """
        data = bytes(range(256)) * 20
        self.assertEqual(apply_mask(apply_mask(data, MASK), MASK), data)

    def test_matchesDefinition(self):
        """
        For short and long inputs (both code paths), the result is the XOR
        with the key repeated, as RFC 6455 §5.3 defines it.
        """
        key = b"\x9a\x01\xff\x55"
        for n in (0, 1, 3, 4, 5, 2047, 2048, 2049, 5003):
            data = bytes((i * 7) & 0xFF for i in range(n))
            expected = _naiveMask(data, key)
            self.assertEqual(_mask_python(data, key), expected, n)
            self.assertEqual(apply_mask(data, key), expected, n)


class FrameReaderTests(SynchronousTestCase):
    """
    Tests for L{FrameReader}.
    """

    def read(self, data: bytes, expect_mask: bool = False, max_frame_size: int = 0):
        reader = FrameReader(expect_mask=expect_mask, max_frame_size=max_frame_size)
        reader.buffer += data
        return reader.read_frame()

    def assertViolation(self, data: bytes, message: str, expect_mask: bool = False, max_frame_size: int = 0, kind=PeerViolation):
        reader = FrameReader(expect_mask=expect_mask, max_frame_size=max_frame_size)
        reader.buffer += data
        exc = self.assertRaises(kind, reader.read_piece)
        self.assertEqual(str(exc), message)
        return exc

    def test_rfcExamples(self):
        """
        Each RFC 6455 §5.7 example reads as the frame it describes.
        """
        self.assertEqual(self.read(UNMASKED_HELLO), Frame(Opcode.TEXT, b"Hello"))
        self.assertEqual(self.read(MASKED_HELLO, expect_mask=True), Frame(Opcode.TEXT, b"Hello"))
        self.assertEqual(self.read(FRAGMENT_HEL), Frame(Opcode.TEXT, b"Hel", fin=False))
        self.assertEqual(self.read(FRAGMENT_LO), Frame(Opcode.CONTINUATION, b"lo"))
        self.assertEqual(self.read(UNMASKED_PING), Frame(Opcode.PING, b"Hello"))
        self.assertEqual(self.read(MASKED_PONG, expect_mask=True), Frame(Opcode.PONG, b"Hello"))

    def test_lengths(self):
        """
        7-bit, 16-bit and 64-bit lengths all read back, including the RFC's
        256-byte and 64 KiB binary examples.
        """
        for n in (0, 125, 126, 256, 65535, 65536):
            payload = bytes(i & 0xFF for i in range(n))
            frame = build_frame(Opcode.BINARY, payload)
            self.assertEqual(self.read(frame), Frame(Opcode.BINARY, payload), n)

    def test_partialFrame(self):
        """
        L{FrameReader.read_frame} returns L{None} until the frame is whole,
        however the bytes are split.
        """
        frame = b"\x82\x7e\x01\x00" + bytes(256)
        reader = FrameReader(expect_mask=False, max_frame_size=0)
        for i in range(len(frame) - 1):
            reader.buffer += frame[i : i + 1]
            self.assertIsNone(reader.read_frame(), i)
        reader.buffer += frame[-1:]
        self.assertEqual(reader.read_frame(), Frame(Opcode.BINARY, bytes(256)))
        self.assertEqual(reader.buffer, b"")

    def test_releasedBufferReadsOn(self):
        """
        L{FrameReader.release} lets an empty buffer go (all released
        readers share one empty C{bytes}); L{FrameReader.feed} then makes a
        new one, and frames, whole or in pieces, read as before. A reader
        with bytes buffered keeps them.
        """
        frame = b"\x82\x7e\x01\x00" + bytes(256)
        reader = FrameReader(expect_mask=False, max_frame_size=0)
        reader.feed(frame[:3])
        reader.release()
        self.assertEqual(reader.buffer, frame[:3])
        reader.feed(frame[3:])
        self.assertEqual(reader.read_frame(), Frame(Opcode.BINARY, bytes(256)))
        reader.release()
        other = FrameReader(expect_mask=False, max_frame_size=0)
        other.release()
        self.assertIs(reader.buffer, other.buffer)
        self.assertEqual(reader.buffer, b"")
        for _ in range(2):
            reader.feed(frame[:10])
            self.assertEqual(reader.read_piece()[3], bytes(6))
            reader.release()
            reader.feed(frame[10:] + frame[:2])
            self.assertEqual(reader.read_piece()[3], bytes(250))
            reader.feed(frame[2:])
            self.assertEqual(reader.read_frame(), Frame(Opcode.BINARY, bytes(256)))
            reader.clear()
        self.assertIs(reader.buffer, other.buffer)

    def test_twoFramesInOneBuffer(self):
        """
        Two frames in one buffer come out one after the other.
        """
        reader = FrameReader(expect_mask=False, max_frame_size=0)
        reader.buffer += FRAGMENT_HEL + FRAGMENT_LO
        self.assertEqual(reader.read_frame(), Frame(Opcode.TEXT, b"Hel", fin=False))
        self.assertEqual(reader.read_frame(), Frame(Opcode.CONTINUATION, b"lo"))
        self.assertIsNone(reader.read_frame())

    def test_dataFramePieces(self):
        """
        A data frame's payload comes out of L{FrameReader.read_piece} in
        pieces as it arrives, unmasked with the key offset kept across
        pieces.
        """
        payload = bytes(range(10))
        frame = clientFrame(Opcode.BINARY, payload, mask=b"\x10\x20\x30\x40")
        reader = FrameReader(expect_mask=True, max_frame_size=0)
        reader.buffer += frame[:6]
        self.assertEqual(reader.read_piece(), (Opcode.BINARY, True, False, b"", True, False))
        reader.buffer += frame[6:9]
        self.assertEqual(reader.read_piece(), (Opcode.BINARY, True, False, payload[:3], False, False))
        self.assertIsNone(reader.read_piece())
        reader.buffer += frame[9:]
        self.assertEqual(reader.read_piece(), (Opcode.BINARY, True, False, payload[3:], False, True))
        self.assertIsNone(reader.read_piece())

    def test_controlFrameWhole(self):
        """
        A control frame only comes out once it is complete.
        """
        reader = FrameReader(expect_mask=False, max_frame_size=0)
        reader.buffer += UNMASKED_PING[:4]
        self.assertIsNone(reader.read_piece())
        reader.buffer += UNMASKED_PING[4:]
        self.assertEqual(reader.read_piece(), (Opcode.PING, True, False, b"Hello", True, True))

    def test_64BitLengthTopBit(self):
        """
        A 64-bit length with its most significant bit set is a violation
        (RFC 6455 §5.2), reported from the header alone.
        """
        self.assertViolation(
            b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00",
            "frame length has its most significant bit set",
        )

    def test_reservedOpcodes(self):
        """
        Opcodes 3-7 and 0xB-0xF are reserved (RFC 6455 §5.2).
        """
        for opcode in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
            self.assertViolation(bytes([0x80 | opcode, 0]), f"reserved opcode {opcode:#x}")

    def test_rsvBits(self):
        """
        Any RSV bit without a negotiated extension is a violation.
        """
        for bit in (0x40, 0x20, 0x10):
            self.assertViolation(
                bytes([0x81 | bit, 0]), "reserved bits set without a negotiated extension"
            )

    def test_rsv1AllowedAfterNegotiation(self):
        """
        After L{FrameReader.allow_rsv1}, RSV1 is accepted but RSV2 and RSV3
        are still violations.
        """
        reader = FrameReader(expect_mask=False, max_frame_size=0)
        reader.allow_rsv1()
        reader.buffer += b"\xc1\x00"
        self.assertEqual(reader.read_frame(), Frame(Opcode.TEXT, b"", rsv1=True))
        reader.buffer += b"\xa1\x00"
        self.assertRaises(PeerViolation, reader.read_piece)

    def test_maskDirection(self):
        """
        A server rejects unmasked frames and a client rejects masked ones
        (RFC 6455 §5.1).
        """
        self.assertViolation(UNMASKED_HELLO, "unmasked frame from client", expect_mask=True)
        self.assertViolation(MASKED_HELLO, "masked frame from server", expect_mask=False)

    def test_controlTooLong(self):
        """
        A control frame with a payload over 125 bytes is a violation, seen
        from its length field.
        """
        self.assertViolation(b"\x89\x7e\x00\x7e", "control frame too long")

    def test_fragmentedControl(self):
        """
        A control frame without FIN is a violation (RFC 6455 §5.5).
        """
        self.assertViolation(b"\x09\x00", "fragmented control frame")

    def test_frameTooBig(self):
        """
        A frame longer than C{max_frame_size} raises L{MessageTooBig} from its
        header, before any payload arrives.
        """
        exc = self.assertViolation(
            b"\x82\x7e\x01\x00", "frame of 256 bytes exceeds the limit of 255",
            max_frame_size=255, kind=MessageTooBig,
        )
        self.assertEqual(exc.close_code, CloseCode.MESSAGE_TOO_BIG)
        self.assertEqual(self.read(b"\x82\x7e\x00\xff" + bytes(255), max_frame_size=255).payload, bytes(255))

    def test_frameRepr(self):
        """
        L{Frame} has a readable repr and compares by value.
        """
        frame = Frame(Opcode.TEXT, b"hi", fin=False)
        self.assertEqual(repr(frame), "Frame(<Opcode.TEXT: 1>, b'hi', fin=False, rsv1=False)")
        self.assertNotEqual(frame, Frame(Opcode.TEXT, b"hi"))
        self.assertNotEqual(frame, object())

    def test_wireCodes(self):
        """
        L{is_valid_wire_code} accepts exactly the codes RFC 6455 §7.4 allows
        in a Close frame.
        """
        valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
        invalid = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]
        self.assertEqual([c for c in valid if not is_valid_wire_code(c)], [])
        self.assertEqual([c for c in invalid if is_valid_wire_code(c)], [])


class ConnectionFrameTests(SynchronousTestCase):
    """
    The frame rules as a connection applies them: exact bytes in, exact
    events and bytes out.
    """

    def assertFails(self, conn, data: bytes, code: int, reason: str, before=()):
        """
        Feed C{data}; the connection reports C{before} then fails with
        C{code} and C{reason} and writes a Close frame carrying them.
        """
        conn.receive_data(data, now=1.0)
        self.assertEqual(list(conn.events()), [*before, ConnectionFailed(code, reason)])
        payload = closePayload(code, reason.encode())
        sent = conn.data_to_send()
        if conn.role.value == "server":
            self.assertEqual(sent, serverFrame(Opcode.CLOSE, payload))
            self.assertTrue(conn.wants_transport_closed)
        else:
            self.assertEqual(sent, clientFrame(Opcode.CLOSE, payload, mask=b"\x01\x02\x03\x04"))
        self.assertIs(conn.state, State.CLOSED)
        self.assertEqual(conn.close_code, code)
        self.assertFalse(conn.was_clean)

    def test_serverReceivesMaskedHello(self):
        """
        A server reads the masked "Hello" example as a text message.
        """
        server = openedServer()
        server.receive_data(MASKED_HELLO, now=1.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello")])
        self.assertEqual(server.data_to_send(), b"")

    def test_clientReceivesUnmaskedHello(self):
        """
        A client reads the unmasked "Hello" example as a text message.
        """
        client = openedClient()
        client.receive_data(UNMASKED_HELLO, now=1.0)
        self.assertEqual(list(client.events()), [TextMessage("Hello")])

    def test_serverSendsHello(self):
        """
        A server sends "Hello" as the unmasked example.
        """
        server = openedServer()
        server.send_text("Hello")
        self.assertEqual(server.data_to_send(), UNMASKED_HELLO)

    def test_clientSendsHello(self):
        """
        A client sends "Hello" masked with the key from its mask source.
        """
        client = openedClient(mask_source=fixedMask(MASK))
        client.send_text("Hello")
        self.assertEqual(client.data_to_send(), MASKED_HELLO)

    def test_clientMasksText(self):
        """
        A client masks each frame with the key from its mask source.
        """
        client = openedClient(mask_source=lambda n: b"\x01\x02\x03\x04")
        client.send_text("hi")
        self.assertEqual(client.data_to_send(), b"\x81\x82\x01\x02\x03\x04\x69\x6b")

    def test_fragmentedHello(self):
        """
        The fragmented "Hel" + "lo" example is one text message.
        """
        client = openedClient()
        client.receive_data(FRAGMENT_HEL, now=1.0)
        self.assertEqual(list(client.events()), [])
        client.receive_data(FRAGMENT_LO, now=1.0)
        self.assertEqual(list(client.events()), [TextMessage("Hello")])

    def test_pingAnsweredWithMaskedPong(self):
        """
        A client answers the unmasked ping example with the masked pong
        example.
        """
        client = openedClient(mask_source=fixedMask(MASK))
        client.receive_data(UNMASKED_PING, now=1.0)
        self.assertEqual(list(client.events()), [Ping(b"Hello")])
        self.assertEqual(client.data_to_send(), MASKED_PONG)

    def test_serverAnswersPing(self):
        """
        A server answers a masked ping with an unmasked pong of the same
        payload.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.PING, b"Hello"), now=1.0)
        self.assertEqual(list(server.events()), [Ping(b"Hello")])
        self.assertEqual(server.data_to_send(), bytes.fromhex("8a0548656c6c6f"))

    def test_unsolicitedPong(self):
        """
        A pong that answers no ping of ours is reported without a round-trip
        time, and nothing is sent.
        """
        server = openedServer()
        server.receive_data(MASKED_PONG, now=1.0)
        self.assertEqual(list(server.events()), [Pong(b"Hello", None)])
        self.assertEqual(server.data_to_send(), b"")

    def test_binaryLengths(self):
        """
        Binary messages with 7-bit, 16-bit (256 bytes) and 64-bit (64 KiB)
        lengths arrive whole.
        """
        client = openedClient()
        for n in (125, 256, 65536):
            payload = bytes(i & 0xFF for i in range(n))
            client.receive_data(serverFrame(Opcode.BINARY, payload), now=1.0)
            events = list(client.events())
            # Compare the bytes, not lists: a list diff of 64 KiB is slow.
            self.assertEqual([type(e) for e in events], [BinaryMessage], n)
            self.assertEqual(events[0].data, payload, n)

    def test_serverSendsLengths(self):
        """
        The 256-byte and 64 KiB examples are what a server writes.
        """
        server = openedServer()
        server.send_binary(b"\x00" * 256)
        self.assertEqual(server.data_to_send(), b"\x82\x7e\x01\x00" + b"\x00" * 256)
        server.send_binary(bytearray(65536))
        self.assertEqual(
            server.data_to_send(), b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + b"\x00" * 65536
        )

    def test_largeFrameDrippedInPieces(self):
        """
        A 64 KiB masked binary frame fed in 1000-byte reads is one message.
        """
        server = openedServer()
        payload = bytes(i & 0xFF for i in range(65536))
        frame = clientFrame(Opcode.BINARY, payload)
        events = []
        for i in range(0, len(frame), 1000):
            server.receive_data(frame[i : i + 1000], now=1.0)
            events.extend(server.events())
        self.assertEqual([type(e) for e in events], [BinaryMessage])
        self.assertEqual(events[0].data, payload)

    def test_64BitLengthTopBit(self):
        """
        A 64-bit length with the top bit set fails the connection with 1002.
        """
        self.assertFails(
            openedServer(),
            b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" + MASK,
            1002,
            "frame length has its most significant bit set",
        )

    def test_reservedOpcode(self):
        """
        A reserved opcode fails the connection with 1002.
        """
        for opcode in (3, 0xB):
            self.assertFails(openedServer(), clientFrame(opcode, b"x"), 1002, f"reserved opcode {opcode:#x}")

    def test_rsvWithoutExtension(self):
        """
        RSV1, RSV2 or RSV3 without a negotiated extension fails the
        connection with 1002.
        """
        for rsv in (4, 2, 1):
            self.assertFails(
                openedServer(), clientFrame(Opcode.TEXT, b"x", rsv=rsv), 1002,
                "reserved bits set without a negotiated extension",
            )

    def test_unmaskedClientFrame(self):
        """
        A server fails the connection with 1002 on an unmasked frame.
        """
        self.assertFails(openedServer(), UNMASKED_HELLO, 1002, "unmasked frame from client")

    def test_maskedServerFrame(self):
        """
        A client fails the connection with 1002 on a masked frame.
        """
        self.assertFails(openedClient(), MASKED_HELLO, 1002, "masked frame from server")

    def test_controlFrameTooLong(self):
        """
        A ping of 126 bytes fails the connection with 1002.
        """
        self.assertFails(openedServer(), clientFrame(Opcode.PING, b"x" * 126), 1002, "control frame too long")

    def test_controlFrame125(self):
        """
        A ping of exactly 125 bytes is answered.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.PING, b"x" * 125), now=1.0)
        self.assertEqual(list(server.events()), [Ping(b"x" * 125)])
        self.assertEqual(server.data_to_send(), b"\x8a\x7d" + b"x" * 125)

    def test_fragmentedControlFrame(self):
        """
        A ping without FIN fails the connection with 1002.
        """
        self.assertFails(
            openedServer(), clientFrame(Opcode.PING, b"x", fin=False), 1002, "fragmented control frame"
        )

    def test_controlFramesInFragmentedMessage(self):
        """
        Control frames between the fragments of a message are handled at
        once, and the message still arrives whole.
        """
        server = openedServer()
        server.receive_data(
            clientFrame(Opcode.TEXT, b"He", fin=False)
            + clientFrame(Opcode.PING, b"p")
            + clientFrame(Opcode.CONTINUATION, b"l", fin=False)
            + clientFrame(Opcode.PONG, b"q")
            + clientFrame(Opcode.CONTINUATION, b"lo"),
            now=1.0,
        )
        self.assertEqual(list(server.events()), [Ping(b"p"), Pong(b"q", None), TextMessage("Hello")])
        self.assertEqual(server.data_to_send(), b"\x8a\x01p")

    def test_closeInFragmentedMessage(self):
        """
        A Close frame in the middle of a fragmented message closes the
        connection; the partial message is dropped.
        """
        server = openedServer()
        server.receive_data(
            clientFrame(Opcode.BINARY, b"ab", fin=False)
            + clientFrame(Opcode.CLOSE, closePayload(1000)),
            now=1.0,
        )
        self.assertEqual(list(server.events()), [CloseReceived(1000, "")])
        self.assertEqual(server.data_to_send(), b"\x88\x02\x03\xe8")

    def test_continuationWithoutStart(self):
        """
        A continuation frame with no message to continue fails the
        connection with 1002.
        """
        self.assertFails(
            openedServer(), clientFrame(Opcode.CONTINUATION, b"x"), 1002,
            "continuation frame without a message to continue",
        )

    def test_newMessageDuringFragmentedMessage(self):
        """
        A new text or binary frame before the fragmented message ends fails
        the connection with 1002.
        """
        for opcode in (Opcode.TEXT, Opcode.BINARY):
            self.assertFails(
                openedServer(),
                clientFrame(Opcode.TEXT, b"a", fin=False) + clientFrame(opcode, b"b"),
                1002,
                "new message started before the previous one finished",
            )

    def test_maxFrameSize(self):
        """
        A frame over C{max_frame_size} fails the connection with 1009 as soon
        as its header arrives.
        """
        server = openedServer(Config(max_frame_size=10))
        self.assertFails(server, clientFrame(Opcode.BINARY, b"x" * 11)[:6], 1009,
                         "frame of 11 bytes exceeds the limit of 10")

    def test_maxFrameSizeFragments(self):
        """
        A message may exceed C{max_frame_size} when each frame is within it.
        """
        server = openedServer(Config(max_frame_size=10))
        server.receive_data(
            clientFrame(Opcode.BINARY, b"x" * 10, fin=False) + clientFrame(Opcode.CONTINUATION, b"y" * 10),
            now=1.0,
        )
        self.assertEqual(list(server.events()), [BinaryMessage(b"x" * 10 + b"y" * 10)])

    def test_maxMessageSizeSingleFrame(self):
        """
        A single frame over C{max_message_size} fails the connection with
        1009, while one at the limit is delivered.
        """
        server = openedServer(Config(max_message_size=10))
        server.receive_data(clientFrame(Opcode.TEXT, b"x" * 10), now=1.0)
        self.assertEqual(list(server.events()), [TextMessage("x" * 10)])
        self.assertFails(server, clientFrame(Opcode.TEXT, b"x" * 11), 1009,
                         "frame of 11 bytes exceeds the limit of 10")

    def test_maxMessageSizeLargerFrameLimit(self):
        """
        With C{max_frame_size} above C{max_message_size}, a single frame over
        the message limit still fails with 1009.
        """
        server = openedServer(Config(max_message_size=10, max_frame_size=100))
        self.assertFails(server, clientFrame(Opcode.BINARY, b"x" * 11), 1009,
                         "message of 11 bytes exceeds the limit of 10")

    def test_maxMessageSizeFragments(self):
        """
        Fragments adding up to more than C{max_message_size} fail the
        connection with 1009 at the fragment that crosses the limit.
        """
        server = openedServer(Config(max_message_size=10))
        self.assertFails(
            server,
            clientFrame(Opcode.BINARY, b"x" * 6, fin=False) + clientFrame(Opcode.CONTINUATION, b"y" * 5, fin=False),
            1009,
            "message exceeds the limit of 10 bytes",
        )

    def test_maxFragments(self):
        """
        A message of more than C{max_fragments} frames fails the connection
        with 1008; one of exactly C{max_fragments} is delivered.
        """
        server = openedServer(Config(max_fragments=3))
        parts = [clientFrame(Opcode.TEXT, b"a", fin=False), clientFrame(Opcode.CONTINUATION, b"b", fin=False)]
        server.receive_data(b"".join(parts) + clientFrame(Opcode.CONTINUATION, b"c"), now=1.0)
        self.assertEqual(list(server.events()), [TextMessage("abc")])
        self.assertFails(
            server,
            b"".join(parts) + clientFrame(Opcode.CONTINUATION, b"c", fin=False)
            + clientFrame(Opcode.CONTINUATION, b"d", fin=False),
            1008,
            "message of more than 3 frames",
        )

    def test_violationStopsParsing(self):
        """
        Frames after a violation are neither parsed nor reported, and later
        bytes are ignored.
        """
        server = openedServer()
        self.assertFails(server, clientFrame(3) + MASKED_HELLO, 1002, "reserved opcode 0x3")
        server.receive_data(MASKED_HELLO, now=2.0)
        self.assertEqual(list(server.events()), [])
        self.assertEqual(server.data_to_send(), b"")


class LargeMessageTests(SynchronousTestCase):
    """
    Large messages: received in pieces split anywhere, their payload read
    straight from the chunks received (L{FrameReader.feed}), and queued for
    sending without a copy behind their header.
    """

    def message(self, size: int = 70_000) -> bytes:
        return bytes((i * 7 + (i >> 8)) & 0xFF for i in range(size))

    def stream(self, payload: bytes, masked: bool) -> bytes:
        """
        The payload as two frames (the first one's length in 16 bits, the
        second's in 64), then a ping: boundaries of every kind.
        """
        key = b"\x9a\x02\xc3\x44" if masked else None
        first = payload[:40_000]
        return (
            build_frame(Opcode.BINARY, first, fin=False, mask_key=key)
            + build_frame(Opcode.CONTINUATION, payload[40_000:], mask_key=key)
            + build_frame(Opcode.PING, b"after", mask_key=key)
        )

    def receive(self, conn, chunks) -> list:
        events = []
        for chunk in chunks:
            conn.receive_data(chunk, now=1.0)
            events.extend(conn.events())
        return events

    def assertDelivered(self, events, payload: bytes) -> None:
        self.assertEqual(len(events), 2, [type(e).__name__ for e in events])
        self.assertIsInstance(events[0], BinaryMessage)
        self.assertEqual(events[0].data, payload)
        self.assertEqual(events[1], Ping(b"after"))

    def test_splitAtEveryBoundary(self) -> None:
        """
        A server receives the message intact whatever two places the
        stream is cut at, around each frame's header and end: cuts inside
        a header, right after it, inside a masking key, one byte before or
        after a frame ends.
        """
        payload = self.message()
        data = self.stream(payload, masked=True)
        second = data.index(bytes([0x80]), 40_000)  # the continuation's first byte
        third = len(data) - len(build_frame(Opcode.PING, b"after", mask_key=b"abcd"))
        spots = sorted({p for edge in (0, second, third) for p in range(edge - 3, edge + 18) if 0 < p < len(data)})
        for a in spots:
            for b in (a + 1, a + 5, a + 40_000):
                if b >= len(data):
                    continue
                events = self.receive(openedServer(), [data[:a], data[a:b], data[b:]])
                self.assertDelivered(events, payload)

    def test_randomChunks(self) -> None:
        """
        A server and a client receive the message intact in random chunks,
        single bytes and long runs alike.
        """
        import random

        rng = random.Random(6455)
        payload = self.message(200_000)
        for masked, opened in ((True, openedServer), (False, openedClient)):
            data = self.stream(payload, masked)
            for _ in range(20):
                chunks, pos = [], 0
                while pos < len(data):
                    n = rng.choice([1, 2, 3, rng.randrange(1, 300), rng.randrange(1, 70_000)])
                    chunks.append(data[pos : pos + n])
                    pos += n
                self.assertDelivered(self.receive(opened(), chunks), payload)

    def test_unmaskedChunkIsTheData(self) -> None:
        """
        A client reading a payload under way gets a chunk that is only
        payload as the very C{bytes} object received, not a copy.
        """
        reader = FrameReader(expect_mask=False, max_frame_size=0)
        reader.feed(build_frame(Opcode.BINARY, b"x" * 1000)[:100])
        self.assertEqual(reader.read_piece()[3], b"x" * 96)
        chunk = b"x" * 800
        reader.feed(chunk)
        self.assertIs(reader.read_piece()[3], chunk)
        reader.feed(b"x" * 104 + UNMASKED_HELLO)
        self.assertEqual(reader.read_piece()[3:], (b"x" * 104, False, True))
        self.assertEqual(reader.read_frame(), Frame(Opcode.TEXT, b"Hello"))

    def test_feedAfterHeldChunk(self) -> None:
        """
        Bytes fed while a chunk is kept unread go after it.
        """
        reader = FrameReader(expect_mask=True, max_frame_size=0)
        payload = self.message(3000)
        data = build_frame(Opcode.BINARY, payload, mask_key=b"\x01\x02\x03\x04")
        reader.feed(data[:1000])
        first = reader.read_piece()[3]
        reader.feed(data[1000:2000])
        reader.feed(data[2000:])
        second = reader.read_piece()[3]
        self.assertEqual(first + second, payload)
        self.assertEqual(reader.remaining, 0)

    def test_clearDropsHeldChunk(self) -> None:
        """
        L{FrameReader.clear} drops a chunk kept as well as the buffer.
        """
        reader = FrameReader(expect_mask=False, max_frame_size=0)
        reader.feed(build_frame(Opcode.BINARY, b"y" * 500)[:10])
        reader.read_piece()
        reader.feed(b"y" * 100)
        reader.clear()
        self.assertIsNone(reader.read_piece())

    def test_piecesNotCopied(self) -> None:
        """
        A server queues a payload of 64 KiB or more as the very object sent,
        behind its header; joined, the pieces are the frame, and they count
        as bytes sent.
        """
        server = openedServer()
        before = server.stats.bytes_sent
        payload = self.message(65536)
        server.send_binary(payload)
        server.send_binary(b"small")
        pieces = server.data_to_send_pieces()
        self.assertEqual(len(pieces), 3)
        self.assertIs(pieces[1], payload)
        self.assertEqual(b"".join(pieces), build_frame(Opcode.BINARY, payload) + build_frame(Opcode.BINARY, b"small"))
        self.assertEqual(server.stats.bytes_sent - before, sum(map(len, pieces)))
        self.assertEqual(server.data_to_send_pieces(), [])

    def test_maskedPieces(self) -> None:
        """
        A client's large frame is its header with the key, then the masked
        payload: the same bytes as L{build_frame}'s.
        """
        payload = self.message(70_000)
        key = b"\x10\x20\x30\x40"
        head, body = build_frame_pieces(Opcode.BINARY, payload, mask_key=key)
        self.assertEqual(head + body, build_frame(Opcode.BINARY, payload, mask_key=key))
        client = openedClient()
        client.send_binary(payload)
        self.assertEqual(b"".join(client.data_to_send_pieces())[:4], bytes([0x82, 0xFF, 0, 0]))

    def test_limitInTheMiddle(self) -> None:
        """
        A message over C{max_message_size}, its second frame received in
        chunks, fails with 1009 in the chunk that passes the limit, without
        a message.
        """
        payload = self.message(80_000)
        key = b"\x01\x02\x03\x04"
        data = build_frame(Opcode.BINARY, payload[:40_000], fin=False, mask_key=key) + build_frame(
            Opcode.CONTINUATION, payload[40_000:], mask_key=key)
        server = openedServer(Config(max_message_size=50_000))
        chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
        # Two headers of 8 bytes: the payload passes 50,000 bytes at byte
        # 50,016 of the stream, in chunk 12.
        for i, chunk in enumerate(chunks[:13]):
            events = self.receive(server, [chunk])
            self.assertEqual([type(e) for e in events], [ConnectionFailed] if i == 12 else [], i)
        self.assertEqual(events[0].code, 1009)

    def test_middleChunksAbsorbed(self) -> None:
        """
        Chunks that are all payload of a binary frame under way, not its
        end, go straight into the message: nothing is buffered, and the
        message holds them.
        """
        payload = self.message(30_000)
        data = build_frame(Opcode.BINARY, payload, mask_key=b"\x05\x06\x07\x08")
        server = openedServer()
        self.assertEqual(self.receive(server, [data[:1000]]), [])
        server.receive_data(data[1000:20_000], now=1.0)
        from wsproto_tw.core.assembly import _IN_PLACE

        # Without the C builder (WSPROTO_TW_NO_SPEEDUPS), pieces go the
        # usual way, read as events are.
        self.assertEqual(server._message.size, 20_000 - 8 if _IN_PLACE else 1000 - 8)
        self.assertEqual(len(server._reader.buffer), 0)
        self.assertEqual(self.receive(server, [data[20_000:]]), [BinaryMessage(payload)])

    def test_textNotAbsorbed(self) -> None:
        """
        Text goes the usual way (validated as it comes), and arrives whole.
        """
        payload = "\u00e9t\u00e9 ".encode() * 5000
        data = build_frame(Opcode.TEXT, payload, mask_key=b"\x05\x06\x07\x08")
        server = openedServer()
        events = self.receive(server, [data[i : i + 777] for i in range(0, len(data), 777)])
        self.assertEqual(events, [TextMessage(payload.decode())])
