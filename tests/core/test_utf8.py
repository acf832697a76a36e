"""
Tests for L{wsproto_tw.core.utf8} and for the UTF-8 rules of RFC 6455 §8.1
as a connection applies them: invalid text fails with 1007, in the fragment
where it appears.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import clientFrame, closePayload, openedClient, openedServer, serverFrame
from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.connection import State
from wsproto_tw.core.errors import InvalidText
from wsproto_tw.core.events import ConnectionFailed, TextMessage
from wsproto_tw.core.utf8 import Utf8Decoder, decode_text

TEXT_FAILURE = ConnectionFailed(1007, "invalid utf-8 in text message")
TEXT_CLOSE = serverFrame(Opcode.CLOSE, closePayload(1007, b"invalid utf-8 in text message"))

# One character of each UTF-8 length.
SAMPLES = ["a", "\u00e9", "\u20ac", "\U0001f600"]


class Utf8DecoderTests(SynchronousTestCase):
    """
    Tests for L{Utf8Decoder} and L{decode_text}.
    """

    def assertInvalid(self, chunks: list[bytes], final_last: bool = False) -> None:
        """
        Decoding C{chunks} one by one fails at the last chunk, not before.
        """
        decoder = Utf8Decoder()
        for chunk in chunks[:-1]:
            decoder.decode(chunk, False)
        exc = self.assertRaises(InvalidText, decoder.decode, chunks[-1], final_last)
        self.assertEqual(str(exc), "invalid utf-8 in text message")
        self.assertEqual(exc.close_code, CloseCode.INVALID_PAYLOAD)

    def test_everySplit(self):
        """
        Valid text split at every byte position decodes to the same string.
        """
        text = "".join(SAMPLES) * 2
        data = text.encode("utf-8")
        for i in range(len(data) + 1):
            decoder = Utf8Decoder()
            result = decoder.decode(data[:i], False) + decoder.decode(data[i:], True)
            self.assertEqual(result, text, i)

    def test_byteByByte(self):
        """
        Valid text fed one byte at a time decodes whole, and each byte yields
        the characters it completes.
        """
        decoder = Utf8Decoder()
        out = [decoder.decode(bytes([b]), False) for b in "\u20acx".encode()]
        self.assertEqual(out, ["", "", "\u20ac", "x"])
        self.assertEqual(decoder.decode(b"", True), "")

    def test_invalidStartBytes(self):
        """
        Bytes that can never appear in UTF-8 fail on their own.
        """
        for byte in (0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xFF):
            self.assertInvalid([bytes([byte])])

    def test_overlongAndOutOfRange(self):
        """
        Overlong forms and code points over U+10FFFF fail at their second
        byte.
        """
        for prefix in (b"\xe0\x80", b"\xf0\x80", b"\xf4\x90"):
            self.assertInvalid([prefix[:1], prefix[1:]])
            self.assertInvalid([prefix])

    def test_surrogatePrefix(self):
        """
        C{ED A0}, the start of a UTF-16 surrogate, fails at once, before its
        third byte arrives.
        """
        self.assertInvalid([b"\xed\xa0"])
        self.assertInvalid([b"ok\xed", b"\xa0"])
        self.assertInvalid([b"\xed\xbf"])

    def test_highestNonSurrogate(self):
        """
        C{ED 9F BF} (U+D7FF) is valid, so C{ED 9F} must wait.
        """
        decoder = Utf8Decoder()
        self.assertEqual(decoder.decode(b"\xed\x9f", False), "")
        self.assertEqual(decoder.decode(b"\xbf", True), "\ud7ff")

    def test_truncatedAtEnd(self):
        """
        A message ending in the middle of a character fails at its final
        fragment.
        """
        self.assertInvalid([b"\xe2\x82", b""], final_last=True)
        self.assertInvalid([b"\xe2\x82"], final_last=True)

    def test_invalidAfterValid(self):
        """
        An invalid byte after valid text fails in the fragment holding it.
        """
        self.assertInvalid([b"caf\xc3\xa9", b" \xc3("])

    def test_decodeText(self):
        """
        L{decode_text} decodes a whole payload, or raises L{InvalidText}.
        """
        self.assertEqual(decode_text("\u00e9\U0001f600".encode()), "\u00e9\U0001f600")
        self.assertRaises(InvalidText, decode_text, b"\xed\xa0\x80")
        self.assertRaises(InvalidText, decode_text, b"\xce")


class ConnectionUtf8Tests(SynchronousTestCase):
    """
    UTF-8 validation on a connection.
    """

    def assertTextFailure(self, server, before=()):
        self.assertEqual(list(server.events()), [*before, TEXT_FAILURE])
        self.assertEqual(server.data_to_send(), TEXT_CLOSE)
        self.assertIs(server.state, State.CLOSED)
        self.assertEqual(server.close_code, 1007)

    def test_invalidSingleFrame(self):
        """
        A single text frame with invalid UTF-8 fails the connection with 1007.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), now=1.0)
        self.assertTextFailure(server)

    def test_failFastInFirstFragment(self):
        """
        Invalid UTF-8 in the first fragment fails the connection before the
        message ends.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"ok\xff", fin=False), now=1.0)
        self.assertTextFailure(server)

    def test_failFastInLaterFragment(self):
        """
        Invalid UTF-8 in a middle fragment fails the connection at that
        fragment.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"ok", fin=False), now=1.0)
        self.assertEqual(list(server.events()), [])
        server.receive_data(clientFrame(Opcode.CONTINUATION, b"\xc0", fin=False), now=1.0)
        self.assertTextFailure(server)

    def test_surrogatePrefixInFragment(self):
        """
        A fragment ending in C{ED A0} fails at once, though a third byte
        might follow in the next fragment.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"a\xed\xa0", fin=False), now=1.0)
        self.assertTextFailure(server)

    def test_surrogatePrefixSplitAcrossFragments(self):
        """
        C{ED} ending one fragment and C{A0} starting the next fails at the
        second fragment.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"a\xed", fin=False), now=1.0)
        self.assertEqual(list(server.events()), [])
        server.receive_data(clientFrame(Opcode.CONTINUATION, b"\xa0\x80"), now=1.0)
        self.assertTextFailure(server)

    def test_failFastInPartialFrame(self):
        """
        Invalid UTF-8 in the part of a frame received so far fails the
        connection before the rest of the frame arrives.
        """
        server = openedServer()
        frame = clientFrame(Opcode.TEXT, b"abc\xff" + b"x" * 1000)
        server.receive_data(frame[:8 + 4], now=1.0)
        self.assertTextFailure(server)

    def test_surrogatePrefixInPartialFrame(self):
        """
        C{ED A0} at the end of a partial frame fails the connection at once.
        """
        server = openedServer()
        frame = clientFrame(Opcode.TEXT, b"abc\xed\xa0\x80" + b"x" * 200)
        server.receive_data(frame[:8 + 5], now=1.0)
        self.assertTextFailure(server)

    def test_partialFrameValidSoFar(self):
        """
        A partial text frame that is valid so far, ending mid-character,
        waits for the rest.
        """
        client = openedClient()
        frame = serverFrame(Opcode.TEXT, "\u20ac".encode() * 100)
        client.receive_data(frame[:5], now=1.0)
        self.assertEqual(list(client.events()), [])
        client.receive_data(frame[5:], now=1.0)
        self.assertEqual(list(client.events()), [TextMessage("\u20ac" * 100)])

    def test_multiByteSplitAcrossFragments(self):
        """
        A 4-byte character split across three fragments is one valid
        message.
        """
        client = openedClient()
        data = "x\U0001f600y".encode()
        client.receive_data(
            serverFrame(Opcode.TEXT, data[:2], fin=False)
            + serverFrame(Opcode.CONTINUATION, data[2:4], fin=False)
            + serverFrame(Opcode.CONTINUATION, data[4:]),
            now=1.0,
        )
        self.assertEqual(list(client.events()), [TextMessage("x\U0001f600y")])

    def test_truncatedAtMessageEnd(self):
        """
        A fragmented message ending mid-character fails with 1007 at its last
        fragment.
        """
        server = openedServer()
        server.receive_data(
            clientFrame(Opcode.TEXT, b"\xe2", fin=False) + clientFrame(Opcode.CONTINUATION, b"\x82"), now=1.0
        )
        self.assertTextFailure(server)

    def test_binaryNotValidated(self):
        """
        Binary messages are not UTF-8 checked.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.BINARY, b"\xff\xed\xa0", fin=False)
                            + clientFrame(Opcode.CONTINUATION, b"\xc0"), now=1.0)
        self.assertEqual([e.data for e in server.events()], [b"\xff\xed\xa0\xc0"])

    def test_closeReasonInvalid(self):
        """
        A Close frame whose reason is not valid UTF-8 fails the connection
        with 1007.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(1000, b"bye\xff")), now=1.0)
        self.assertEqual(list(server.events()), [ConnectionFailed(1007, "invalid utf-8 in close reason")])
        self.assertEqual(
            server.data_to_send(), serverFrame(Opcode.CLOSE, closePayload(1007, b"invalid utf-8 in close reason"))
        )
        self.assertFalse(server.was_clean)

    def test_closeReasonValid(self):
        """
        A multi-byte close reason is decoded.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(1000, "\u00e0 bient\u00f4t".encode())), now=1.0)
        self.assertEqual([(e.code, e.reason) for e in server.events()], [(1000, "\u00e0 bient\u00f4t")])
