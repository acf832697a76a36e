"""
Tests for L{wsproto_tw.core.assembly}: joining the pieces of a message,
its limits, and what it costs per fragment.
"""

from __future__ import annotations

import gc
import tracemalloc

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.core import assembly
from wsproto_tw.core.assembly import MessageAssembler
from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.deflate import PerMessageDeflate, client_accept, client_offer, negotiate_server
from wsproto_tw.core.errors import InvalidText, MessageTooBig, PolicyViolation
from wsproto_tw.core.events import BinaryMessage, TextMessage
from wsproto_tw.core.frames import apply_mask

NO_MASK = b"\x00\x00\x00\x00"


def feed(message: MessageAssembler, pieces: list[bytes]) -> list:
    """
    Add C{pieces} to C{message}, one frame each, the last one ending it.

    @return: what each L{MessageAssembler.add} returned.
    """
    return [message.add(piece, True, i == len(pieces) - 1) for i, piece in enumerate(pieces)]


class _BothWays:
    """
    Run every test with the C builder (when the accelerator is in use) and
    with the batched lists of the pure-Python path.
    """

    inPlace = assembly._IN_PLACE

    def setUp(self):
        self.patch(assembly, "_IN_PLACE", self.inPlace)


class AssemblyTests(_BothWays, SynchronousTestCase):
    """
    L{MessageAssembler} joins the pieces of one message into its event.
    """

    def test_binaryPieces(self):
        """
        Binary pieces come out as one L{BinaryMessage} of C{bytes}, on the
        last piece only; empty pieces add nothing.
        """
        message = MessageAssembler(Opcode.BINARY, None, 0, 0, 3)
        results = feed(message, [b"abc", b"", b"de", b"f"])
        self.assertEqual(results, [None, None, None, BinaryMessage(b"abcdef")])
        self.assertIs(type(results[-1].data), bytes)

    def test_emptyMessage(self):
        """
        A message of empty frames is an empty message, of its kind.
        """
        self.assertEqual(feed(MessageAssembler(Opcode.BINARY, None, 0, 0), [b"", b""])[-1], BinaryMessage(b""))
        self.assertEqual(feed(MessageAssembler(Opcode.TEXT, None, 0, 0), [b"", b""])[-1], TextMessage(""))

    def test_textAcrossPieces(self):
        """
        Text pieces are decoded as they come, characters split across
        pieces included, and come out as one L{TextMessage}.
        """
        encoded = "h\u00e9\u20ac\U0001f600!".encode("utf-8")
        message = MessageAssembler(Opcode.TEXT, None, 0, 0)
        results = feed(message, [encoded[i : i + 1] for i in range(len(encoded))])
        self.assertEqual(results[-1], TextMessage("h\u00e9\u20ac\U0001f600!"))
        self.assertEqual(results[:-1], [None] * (len(encoded) - 1))

    def test_pieceNotStartingFrame(self):
        """
        Only pieces that start a frame count as frames.
        """
        message = MessageAssembler(Opcode.BINARY, None, 0, 2)
        self.assertIsNone(message.add(b"a", True, False))
        self.assertIsNone(message.add(b"b", False, False))
        self.assertIsNone(message.add(b"c", False, False))
        self.assertEqual(message.add(b"d", True, True), BinaryMessage(b"abcd"))

    def test_manyPieces(self):
        """
        Messages of more pieces than are batched at once come out whole
        and in order, text and binary.
        """
        count = assembly._BATCH * 3 + 7
        pieces = [bytes([65 + i % 26]) * (i % 4) for i in range(count)]
        binary = feed(MessageAssembler(Opcode.BINARY, None, 0, 0), pieces)[-1]
        self.assertEqual(binary, BinaryMessage(b"".join(pieces)))
        text = feed(MessageAssembler(Opcode.TEXT, None, 0, 0), pieces)[-1]
        self.assertEqual(text, TextMessage(b"".join(pieces).decode("ascii")))

    def test_frameLimit(self):
        """
        The frame after C{max_frames} raises L{PolicyViolation}; C{0} means
        no limit.
        """
        message = MessageAssembler(Opcode.BINARY, None, 0, 3)
        for _ in range(3):
            message.add(b"x", True, False)
        exc = self.assertRaises(PolicyViolation, message.add, b"x", True, False)
        self.assertEqual(str(exc), "message of more than 3 frames")
        unlimited = MessageAssembler(Opcode.BINARY, None, 0, 0)
        self.assertEqual(feed(unlimited, [b"x"] * 1000)[-1], BinaryMessage(b"x" * 1000))

    def test_sizeLimit(self):
        """
        The piece that takes the message past C{max_size} raises
        L{MessageTooBig}; a message of exactly C{max_size} bytes is fine.
        """
        self.assertEqual(feed(MessageAssembler(Opcode.BINARY, None, 4, 0), [b"ab", b"cd"])[-1], BinaryMessage(b"abcd"))
        message = MessageAssembler(Opcode.TEXT, None, 4, 0)
        message.add(b"abc", True, False)
        exc = self.assertRaises(MessageTooBig, message.add, b"de", True, True)
        self.assertEqual(str(exc), "message exceeds the limit of 4 bytes")

    def test_invalidTextFailsAtItsPiece(self):
        """
        Text that can't be UTF-8 raises L{InvalidText} in the piece where it
        appears, before the message ends (RFC 6455 §8.1).
        """
        message = MessageAssembler(Opcode.TEXT, None, 0, 0)
        message.add(b"ok", True, False)
        exc = self.assertRaises(InvalidText, message.add, b"\xed\xa0", True, False)
        self.assertEqual(str(exc), "invalid utf-8 in text message")

    def test_truncatedTextAtEnd(self):
        """
        A text message that ends in the middle of a character raises
        L{InvalidText} on its last piece.
        """
        message = MessageAssembler(Opcode.TEXT, None, 0, 0)
        message.add(b"\xe2\x82", True, False)
        self.assertRaises(InvalidText, message.add, b"", True, True)

    def test_compressed(self):
        """
        With a codec, pieces are inflated as they come (RFC 7692), and the
        size limit applies to the inflated bytes.
        """
        policy = PerMessageDeflate()
        response, serverCodec = negotiate_server(policy, client_offer(policy))
        clientCodec = client_accept(policy, response)
        payload, rsv1 = clientCodec.compress(b"hello " * 100)
        self.assertTrue(rsv1)
        message = MessageAssembler(Opcode.TEXT, serverCodec, 0, 0)
        half = len(payload) // 2
        self.assertEqual(feed(message, [payload[:half], payload[half:]])[-1], TextMessage("hello " * 100))
        payload, _ = clientCodec.compress(b"\x00" * 1000)
        message = MessageAssembler(Opcode.BINARY, serverCodec, 999, 0)
        self.assertRaises(MessageTooBig, message.add, payload, True, True)

    def test_noInstanceDict(self):
        """
        An assembler keeps its state in slots.
        """
        self.assertFalse(hasattr(MessageAssembler(Opcode.TEXT, None, 0, 0), "__dict__"))


class PythonAssemblyTests(AssemblyTests):
    """
    The same, with the batched lists that pure Python uses for binary
    pieces.
    """

    inPlace = False


class MemoryTests(_BothWays, SynchronousTestCase):
    """
    What a message costs per fragment is a few bytes, not an object.
    """

    def peak(self, opcode: Opcode, pieces: list[bytes], count: int) -> tuple[object, int]:
        """
        Add C{count} one-frame pieces, cycling through C{pieces}, each a
        fresh object as the frame reader makes them.

        @return: the message, and the peak of memory allocated meanwhile.
        """
        message = MessageAssembler(opcode, None, 0, 0)
        add = message.add
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            n = len(pieces)
            for i in range(count - 1):
                add(apply_mask(pieces[i % n], NO_MASK), True, False)
            event = add(apply_mask(pieces[(count - 1) % n], NO_MASK), True, True)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        return event, peak

    def test_binaryOneBytePieces(self):
        """
        100,000 one-byte pieces cost less than 3 bytes each beyond the
        message's own 100 kB.
        """
        event, peak = self.peak(Opcode.BINARY, [b"x"], 100_000)
        self.assertEqual(event, BinaryMessage(b"x" * 100_000))
        self.assertLess(peak, 100_000 + 300_000)

    def test_textSplitCharacters(self):
        """
        99,999 one-byte pieces, each a third of C{"€"}, cost less than 3
        bytes each beyond the text's own 66 kB.
        """
        euro = "\u20ac".encode("utf-8")
        event, peak = self.peak(Opcode.TEXT, [euro[0:1], euro[1:2], euro[2:3]], 99_999)
        self.assertEqual(event, TextMessage("\u20ac" * 33_333))
        self.assertLess(peak, 66_666 + 300_000)


class PythonMemoryTests(MemoryTests):
    """
    The same, with the batched lists that pure Python uses for binary
    pieces.
    """

    inPlace = False
