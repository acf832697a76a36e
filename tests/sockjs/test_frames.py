"""
Tests for L{wsproto_tw.sockjs.frames}: exact frames, JSON escaping,
transport framings and what clients send.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.sockjs.frames import (
    ANOTHER_CONNECTION,
    BrokenJSON,
    PayloadExpected,
    close_frame,
    decode_messages,
    encode_json,
    eventsource_framing,
    htmlfile_framing,
    jsonp_framing,
    messages_frame,
    valid_callback,
    valid_session_part,
    websocket_framing,
    xhr_framing,
    xhr_streaming_framing,
)

# What the server must escape, as the protocol lists it (U+00FF and up;
# below that, only the C0 controls).
_SERVER_ESCAPES = (
    list(range(0x00, 0x20))
    + list(range(0x200C, 0x2010))
    + list(range(0x2028, 0x2030))
    + list(range(0x2060, 0x2070))
    + list(range(0xFFF0, 0x10000))
)


class FrameTests(SynchronousTestCase):
    """
    Tests for the frames.
    """

    def test_messagesFrame(self):
        """
        C{messages_frame} writes an C{a} frame: a compact JSON array.
        """
        self.assertEqual(messages_frame(["a", 'b"c']), 'a["a","b\\"c"]')

    def test_closeFrame(self):
        """
        C{close_frame} writes a C{c} frame: code and reason.
        """
        self.assertEqual(close_frame(3000, "Go away!"), 'c[3000,"Go away!"]')
        self.assertEqual(ANOTHER_CONNECTION, 'c[2010,"Another connection still open"]')

    def test_escapesWhatBrowsersMangle(self):
        """
        C{encode_json} escapes, as C{\\uXXXX}, every character the protocol
        says the server must escape, and writes others as they are.
        """
        text = "".join(chr(code) for code in _SERVER_ESCAPES)
        encoded = encode_json(text)
        self.assertTrue(encoded.isascii())
        self.assertEqual(json.loads(encoded), text)
        self.assertEqual(encode_json("\u2028"), '"\\u2028"')
        self.assertEqual(encode_json("\ufeff\uffff"), '"\ufeff\\uffff"')
        self.assertEqual(encode_json("caf\u00e9 \u4e16"), '"caf\u00e9 \u4e16"')

    def test_escapesSurrogates(self):
        """
        A lone surrogate, which UTF-8 can't carry, is escaped.
        """
        self.assertEqual(encode_json("\ud800x"), '"\\ud800x"')


class FramingTests(SynchronousTestCase):
    """
    Tests for how each transport wraps a frame.
    """

    def test_xhr(self):
        """
        C{xhr} writes one frame and a newline; it does not stream.
        """
        framing = xhr_framing()
        self.assertEqual((framing.prelude, framing.encode('a["x"]'), framing.streaming), (b"", b'a["x"]\n', False))

    def test_xhrStreaming(self):
        """
        C{xhr_streaming} starts with 2048 C{h} and a newline.
        """
        framing = xhr_streaming_framing()
        self.assertEqual(framing.prelude, b"h" * 2048 + b"\n")
        self.assertEqual(framing.encode("o"), b"o\n")
        self.assertTrue(framing.streaming)

    def test_eventsource(self):
        """
        C{eventsource} starts with a blank line and writes C{data:} events.
        """
        framing = eventsource_framing()
        self.assertEqual(framing.prelude, b"\r\n")
        self.assertEqual(framing.encode('a["  \\u0000\\n\\r "]'), b'data: a["  \\u0000\\n\\r "]\r\n\r\n')

    def test_htmlfile(self):
        """
        C{htmlfile} starts with a page padded past 1 KiB that calls the
        callback of its parent, and writes each frame as a script.
        """
        framing = htmlfile_framing("callback")
        self.assertGreater(len(framing.prelude), 1024)
        self.assertTrue(framing.prelude.startswith(b"<!doctype html>\n<html><head>"))
        self.assertIn(b"var c = parent.callback;\n", framing.prelude)
        self.assertEqual(framing.encode('a["x"]'), b'<script>\np("a[\\"x\\"]");\n</script>\r\n')

    def test_jsonp(self):
        """
        C{jsonp} calls the callback with the frame as a JSON string.
        """
        framing = jsonp_framing("x")
        self.assertEqual(framing.encode("o"), b'x("o");\r\n')
        self.assertEqual(framing.encode('c[3000,"Go away!"]'), b'x("c[3000,\\"Go away!\\"]");\r\n')
        self.assertFalse(framing.streaming)

    def test_websocketUnbounded(self):
        """
        Over WebSocket a frame is its own text, and no response limit
        applies.
        """
        framing = websocket_framing()
        self.assertEqual(framing.encode("o"), b"o")
        self.assertFalse(framing.bounded)
        self.assertTrue(xhr_streaming_framing().bounded)


class DecodeTests(SynchronousTestCase):
    """
    Tests for L{decode_messages}.
    """

    def test_array(self):
        """
        A JSON array of strings is the messages, in order.
        """
        self.assertEqual(decode_messages(b'["a","\\u2028",""]'), ["a", "\u2028", ""])

    def test_string(self):
        """
        One JSON string is one message.
        """
        self.assertEqual(decode_messages('"a"'), ["a"])

    def test_empty(self):
        """
        An empty payload raises L{PayloadExpected}, unless allowed.
        """
        error = self.assertRaises(PayloadExpected, decode_messages, b"")
        self.assertEqual(str(error), "Payload expected.")
        self.assertEqual(error.status, 500)
        self.assertEqual(decode_messages("", allow_empty=True), [])

    def test_broken(self):
        """
        What is not JSON, or not strings, raises L{BrokenJSON}.
        """
        for payload in (b'["x', b"[1]", b"{}", b"\xff", b"3"):
            error = self.assertRaises(BrokenJSON, decode_messages, payload)
            self.assertEqual(str(error), "Broken JSON encoding.")

    def test_deeplyNested(self):
        """
        JSON nested too deeply for the decoder raises L{BrokenJSON}, not
        L{RecursionError}.
        """
        for payload in (b"[" * 100000, "[" * 100000 + "]" * 100000):
            error = self.assertRaises(BrokenJSON, decode_messages, payload)
            self.assertEqual(str(error), "Broken JSON encoding.")


class ValidationTests(SynchronousTestCase):
    """
    Tests for the names a client chooses.
    """

    def test_callback(self):
        """
        A callback name has letters, digits, C{_}, C{-} and C{.} only.
        """
        for name in ("callback", "a.b_c-1", "_sockjs_1.x"):
            self.assertTrue(valid_callback(name), name)
        for name in ("", "a(b)", "a;alert(1)", "a b", "a<", "\u00e9"):
            self.assertFalse(valid_callback(name), name)

    def test_sessionPart(self):
        """
        A server or session id is not empty and has no dot.
        """
        for segment in ("a", "000", "abcdefgh_i-j ", "_"):
            self.assertTrue(valid_session_part(segment), segment)
        for segment in ("", "a.", ".", "a.b"):
            self.assertFalse(valid_session_part(segment), segment)
