"""
Tests for L{wsproto_tw.core.httpbody}: where an HTTP/1.1 response's head
and body end, and a chunked body taken out of its chunks.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.core.errors import HandshakeRejected, HeadTooLarge
from wsproto_tw.core.handshake import HandshakeResponse
from wsproto_tw.core.httpbody import ResponseBody, split_head


def body(status: int = 200, **headers: str) -> ResponseBody:
    """
    @return: the L{ResponseBody} of a response with C{status} and
        C{headers} (underscores in names become dashes).
    """
    fields = tuple((name.replace("_", "-"), value) for name, value in headers.items())
    return ResponseBody(HandshakeResponse(status, "", fields))


def feedBytewise(reader: ResponseBody, data: bytes) -> bytes:
    """
    @return: what C{reader} gives for C{data} received one byte at a time.
    """
    return b"".join(reader.receive_data(data[i : i + 1]) for i in range(len(data)))


class SplitHeadTests(SynchronousTestCase):
    """
    L{split_head} finds the blank line that ends a head.
    """

    def test_incomplete(self) -> None:
        """
        Before the blank line, there is no head yet.
        """
        self.assertIsNone(split_head(b"HTTP/1.1 404 Not Found\r\nA: b\r\n", 0))

    def test_split(self) -> None:
        """
        The head comes without its final CRLF CRLF, followed by the bytes
        after it.
        """
        self.assertEqual(
            split_head(bytearray(b"HTTP/1.1 404 Not Found\r\nA: b\r\n\r\nbody"), 0),
            (b"HTTP/1.1 404 Not Found\r\nA: b", b"body"),
        )

    def test_limit(self) -> None:
        """
        A head over the limit, whole or not, raises L{HeadTooLarge}; one
        that fits exactly does not.
        """
        head = b"HTTP/1.1 404 Not Found\r\n\r\n"
        self.assertEqual(split_head(head, len(head)), (head[:-4], b""))
        with self.assertRaises(HeadTooLarge) as raised:
            split_head(head, len(head) - 1)
        self.assertEqual(raised.exception.reason, f"head over {len(head) - 1} bytes")
        with self.assertRaises(HeadTooLarge):
            split_head(b"x" * 11, 10)


class ResponseBodyTests(SynchronousTestCase):
    """
    L{ResponseBody} knows where the body ends (RFC 9112 §6.3) and takes a
    chunked body out of its chunks (RFC 9112 §7.1).
    """

    def test_noBody(self) -> None:
        """
        A 1xx, 204 or 304 response has no body: it is done at once.
        """
        for status in (102, 204, 304):
            reader = body(status, content_length="5")
            self.assertTrue(reader.done, status)
            self.assertEqual(reader.length, 0)
            self.assertEqual(reader.receive_data(b"hello"), b"")

    def test_contentLength(self) -> None:
        """
        A body with a C{Content-Length} is done after that many bytes; bytes
        after it are left out.
        """
        reader = body(content_length="5")
        self.assertEqual(reader.length, 5)
        self.assertEqual(reader.receive_data(b"hel"), b"hel")
        self.assertFalse(reader.done)
        self.assertEqual(reader.receive_data(b"loEXTRA"), b"lo")
        self.assertTrue(reader.done)
        self.assertEqual(reader.receive_data(b"more"), b"")

    def test_contentLengthZero(self) -> None:
        """
        C{Content-Length: 0} means an empty body, done at once.
        """
        self.assertTrue(body(content_length="0").done)

    def test_contentLengthList(self) -> None:
        """
        A list of identical lengths is one length (RFC 9110 §8.6).
        """
        reader = body(content_length="3, 3")
        self.assertEqual(reader.receive_data(b"abcd"), b"abc")
        self.assertTrue(reader.done)

    def test_badContentLength(self) -> None:
        """
        A length that is not a number, or lengths that differ, make the body
        unreadable.
        """
        for value in ("five", "-1", "3, 4", ""):
            with self.assertRaises(HandshakeRejected, msg=value) as raised:
                body(content_length=value)
            self.assertEqual(raised.exception.reason, f"malformed response: bad content-length {value!r}")

    def test_untilClose(self) -> None:
        """
        Without a length or chunks, the body is every byte until the
        connection closes.
        """
        reader = body()
        self.assertIsNone(reader.length)
        self.assertEqual(reader.receive_data(b"some"), b"some")
        self.assertEqual(reader.receive_data(b" more"), b" more")
        self.assertFalse(reader.done)
        reader.receive_eof()
        self.assertTrue(reader.done)

    def test_otherTransferCoding(self) -> None:
        """
        A transfer coding other than chunked last means the body lasts until
        close, whatever C{Content-Length} says.
        """
        reader = body(transfer_encoding="gzip", content_length="2")
        self.assertEqual(reader.receive_data(b"\x1f\x8b\x08"), b"\x1f\x8b\x08")
        reader.receive_eof()
        self.assertTrue(reader.done)

    def test_chunked(self) -> None:
        """
        A chunked body gives its chunks' data and is done after the last
        chunk and the trailer section; extensions and trailers are skipped;
        bytes after the end are left out.
        """
        reader = body(transfer_encoding="chunked", content_length="999")
        self.assertIsNone(reader.length)
        data = b"5\r\nhello\r\nA;name=value\r\n, world!!!\r\n0\r\nTrailer: x\r\n\r\nAFTER"
        self.assertEqual(reader.receive_data(data), b"hello, world!!!")
        self.assertTrue(reader.done)
        self.assertEqual(reader.receive_data(b"more"), b"")

    def test_chunkedBytewise(self) -> None:
        """
        Chunks split anywhere across reads give the same body.
        """
        reader = body(transfer_encoding="gzip, chunked")
        data = b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
        self.assertEqual(feedBytewise(reader, data), b"helloworld")
        self.assertTrue(reader.done)

    def test_chunkedNotDoneBeforeTrailerEnd(self) -> None:
        """
        After the last chunk the body is not done until the empty line that
        ends the trailer section.
        """
        reader = body(transfer_encoding="chunked")
        reader.receive_data(b"0\r\n")
        self.assertFalse(reader.done)
        reader.receive_data(b"\r\n")
        self.assertTrue(reader.done)

    def assertMalformed(self, reader: ResponseBody, data: bytes, reason: str, before: bytes = b"") -> None:
        """
        Giving C{data} to C{reader} gives C{before} (what came before the
        malformed part) and sets its L{ResponseBody.error} to C{reason};
        it takes nothing more.
        """
        self.assertEqual(reader.receive_data(data), before)
        self.assertIsInstance(reader.error, HandshakeRejected)
        self.assertEqual(reader.error.reason, reason)
        self.assertFalse(reader.done)
        self.assertEqual(reader.receive_data(b"0\r\n\r\n"), b"")
        reader.receive_eof()
        self.assertEqual(reader.error.reason, reason)

    def test_badChunkSize(self) -> None:
        """
        A chunk size that is not hexadecimal is an error; the chunks before
        it are delivered.
        """
        self.assertMalformed(
            body(transfer_encoding="chunked"),
            b"2\r\nok\r\nzz\r\n",
            "malformed response: bad chunk size b'zz'",
            before=b"ok",
        )

    def test_chunkLongerThanSize(self) -> None:
        """
        Chunk data not followed by CRLF is an error.
        """
        self.assertMalformed(
            body(transfer_encoding="chunked"),
            b"2\r\nabc\r\n",
            "malformed response: chunk data longer than its size",
            before=b"ab",
        )

    def test_bareLineFeed(self) -> None:
        """
        Chunk lines end with CRLF.
        """
        self.assertMalformed(body(transfer_encoding="chunked"), b"2\nab", "malformed response: bad chunk line")

    def test_longChunkLine(self) -> None:
        """
        A chunk line over 4 KiB is an error, whole or not.
        """
        reason = "malformed response: chunk line over 4096 bytes"
        self.assertMalformed(body(transfer_encoding="chunked"), b"1;" + b"x" * 5000, reason)
        reader = body(transfer_encoding="chunked")
        self.assertEqual(reader.receive_data(b"1;" + b"x" * 4000), b"")
        self.assertIsNone(reader.error)
        self.assertMalformed(reader, b"x" * 200 + b"\r\n", "malformed response: bad chunk line")

    def test_tooManyTrailers(self) -> None:
        """
        More than 100 trailer fields is an error.
        """
        self.assertMalformed(
            body(transfer_encoding="chunked"),
            b"0\r\n" + b"T: x\r\n" * 101,
            "malformed response: more than 100 trailer fields",
        )

    def test_cutShort(self) -> None:
        """
        The connection closing before a chunked or sized body is complete
        sets L{ResponseBody.error}.
        """
        for reader in (body(content_length="5"), body(transfer_encoding="chunked")):
            reader.receive_data(b"5\r\n")
            self.assertIsNone(reader.error)
            reader.receive_eof()
            self.assertEqual(reader.error.reason, "response body cut short")
            self.assertFalse(reader.done)
        done = body(content_length="1")
        done.receive_data(b"x")
        done.receive_eof()
        self.assertTrue(done.done)
        self.assertIsNone(done.error)
