# -*- test-case-name: tests.core.test_httpbody -*-
"""
The head and body of an HTTP/1.1 response as it arrives: what a client
reads of a server's refusal to upgrade, when it streams that refusal to its
caller instead of keeping its first bytes.

L{split_head} finds where the head ends; L{ResponseBody} then tells where
the body ends (RFC 9112 §6.3) and takes a chunked body out of its chunks
(RFC 9112 §7.1).
"""

from __future__ import annotations

from wsproto_tw.core.errors import HandshakeRejected, HeadTooLarge
from wsproto_tw.core.handshake import HandshakeResponse

__all__ = ["ResponseBody", "split_head"]

# The longest chunk-size line or trailer line accepted.
_MAX_LINE = 4096
# The most trailer fields accepted after the last chunk.
_MAX_TRAILERS = 100


def split_head(data: bytes | bytearray, limit: int) -> tuple[bytes, bytes] | None:
    """
    Split received bytes after the head of an HTTP/1.1 message.

    @param data: the bytes received so far, from the message's first byte.
    @param limit: the most bytes the head may take, its final CRLF CRLF
        included; 0 for no limit.
    @return: the head (without its final CRLF CRLF) and the bytes after it;
        or L{None} if the head has not arrived whole yet.
    @raise HeadTooLarge: the head is over C{limit}.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if limit and len(data) > limit:
            raise HeadTooLarge(f"head over {limit} bytes")
        return None
    if limit and end + 4 > limit:
        raise HeadTooLarge(f"head over {limit} bytes")
    return bytes(data[:end]), bytes(data[end + 4 :])


class ResponseBody:
    """
    The body of one HTTP/1.1 response to a C{GET}, read as it arrives.

    Its length is known from the head (RFC 9112 §6.3): a C{1xx}, C{204} or
    C{304} response has none; a body whose last transfer coding is
    C{chunked} ends with its last chunk; a C{Content-Length} gives its
    length; any other body lasts until the connection closes.

    @ivar done: the body is complete: bytes received after it are not part
        of it, and L{receive_data} takes no more.
    @ivar length: the body's length in bytes if the head gives it (0 for a
        response without a body), else L{None}.
    @ivar error: a L{HandshakeRejected} saying what was wrong if the body
        turned out malformed or cut short, else L{None}; L{receive_data}
        then takes no more.
    """

    def __init__(self, response: HandshakeResponse) -> None:
        """
        @param response: the response's head.
        @raise HandshakeRejected: the head does not say how long the body
            is: a C{Content-Length} that is not a number, or several that
            disagree.
        """
        self.done = False
        self.length: int | None = None
        self.error: HandshakeRejected | None = None
        self._chunked = False
        self._remaining: int | None = None  # None: until the connection closes
        # Chunked bodies: the line being read and what it is.
        self._line = bytearray()
        self._expect = "size"  # "size", "data", "data-end" or "trailer"
        self._trailers = 0
        status = response.status
        if 100 <= status < 200 or status in (204, 304):
            self.done = True
            self.length = 0
            return
        codings = response.tokens("transfer-encoding")
        if codings:
            # RFC 9112 §6.3 items 3 and 7: Transfer-Encoding overrides
            # Content-Length; without chunked last, the body ends at close.
            self._chunked = codings[-1].lower() == "chunked"
            return
        length = response.get("content-length")
        if length is not None:
            # RFC 9110 §8.6: a list of identical values is one value.
            values = {value.strip() for value in length.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise HandshakeRejected(f"malformed response: bad content-length {length!r}")
            self.length = self._remaining = int(next(iter(values)))
            self.done = self._remaining == 0

    def receive_data(self, data: bytes) -> bytes:
        """
        Take the next bytes received after the head (or after the bytes
        given before).

        @return: the body bytes they hold, taken out of their chunks; bytes
            after the body's end are left out, and so are those from a
            malformed chunk on (L{error} then says what was wrong).
        """
        if self.done or self.error is not None or not data:
            return b""
        if self._chunked:
            out = bytearray()
            try:
                self._dechunk(data, out)
            except HandshakeRejected as exc:
                self.error = exc
            return bytes(out)
        if self._remaining is None:
            return data
        taken = data[: self._remaining]
        self._remaining -= len(taken)
        self.done = self._remaining == 0
        return taken

    def receive_eof(self) -> None:
        """
        The connection closed: a body that lasts until then is complete;
        one that does not is cut short (L{error} says so).
        """
        if self.done or self.error is not None:
            return
        if self._chunked or self._remaining is not None:
            self.error = HandshakeRejected("response body cut short")
        else:
            self.done = True

    def _dechunk(self, data: bytes, out: bytearray) -> None:
        """
        Append the data of the chunks in C{data} to C{out}.

        @raise HandshakeRejected: a chunk is malformed.
        """
        view = memoryview(data)
        while view and not self.done:
            if self._expect == "data":
                assert self._remaining is not None
                taken = view[: self._remaining]
                out += taken
                self._remaining -= len(taken)
                view = view[len(taken) :]
                if not self._remaining:
                    self._expect = "data-end"
                continue
            end = bytes(view[: _MAX_LINE + 2]).find(b"\n")
            if end < 0:
                self._line += view
                view = view[len(view) :]
                if len(self._line) > _MAX_LINE:
                    raise HandshakeRejected(f"malformed response: chunk line over {_MAX_LINE} bytes")
                continue
            self._line += view[: end + 1]
            view = view[end + 1 :]
            line = bytes(self._line)
            del self._line[:]
            if len(line) > _MAX_LINE + 2 or not line.endswith(b"\r\n"):
                raise HandshakeRejected("malformed response: bad chunk line")
            self._line_received(line[:-2])

    def _line_received(self, line: bytes) -> None:
        if self._expect == "size":
            # RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF
            size = line.split(b";", 1)[0].strip(b" \t")
            if not size or any(c not in b"0123456789abcdefABCDEF" for c in size):
                raise HandshakeRejected(f"malformed response: bad chunk size {size[:20]!r}")
            self._remaining = int(size, 16)
            self._expect = "data" if self._remaining else "trailer"
        elif self._expect == "data-end":
            if line:
                raise HandshakeRejected("malformed response: chunk data longer than its size")
            self._expect = "size"
        elif not line:
            # RFC 9112 §7.1.2: the trailer section ends with an empty line.
            self.done = True
        else:
            self._trailers += 1
            if self._trailers > _MAX_TRAILERS:
                raise HandshakeRejected(f"malformed response: more than {_MAX_TRAILERS} trailer fields")
