# -*- test-case-name: tests.stomp.test_frames -*-
"""
STOMP 1.0, 1.1 and 1.2 frames: the versions and commands, the L{Frame}
value, header escaping, L{serialize}, and L{FrameReader}, an incremental
parser with limits.

A frame is a command line, header lines, a blank line and a body ended by a
NUL octet (STOMP 1.2, "STOMP Frames"). Sans-I/O: nothing here imports
Twisted, reads a clock or does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wsproto_tw.stomp.errors import FrameError, LimitExceeded

__all__ = [
    "Command",
    "Frame",
    "FrameReader",
    "Version",
    "escape",
    "serialize",
    "unescape",
]

_LF = 0x0A
_CR = 0x0D


class Version(str, enum.Enum):
    """
    A STOMP protocol version, as the C{accept-version} and C{version}
    headers spell it.
    """

    V1_0 = "1.0"
    V1_1 = "1.1"
    V1_2 = "1.2"

    @property
    def subprotocol(self) -> str:
        """
        The WebSocket subprotocol name of this version: C{"v10.stomp"},
        C{"v11.stomp"} or C{"v12.stomp"}.
        """
        return "v1" + self.value[2] + ".stomp"

    @classmethod
    def from_subprotocol(cls, name: str) -> Version | None:
        """
        @return: the version whose subprotocol is C{name}, or L{None} when
            C{name} is not a STOMP subprotocol.
        """
        for version in cls:
            if version.subprotocol == name:
                return version
        return None


class Command(str, enum.Enum):
    """
    The frame commands of STOMP 1.2 (C{STOMP} and C{NACK} are 1.1 and
    later); members compare equal to their names.
    """

    CONNECT = "CONNECT"
    STOMP = "STOMP"
    CONNECTED = "CONNECTED"
    SEND = "SEND"
    SUBSCRIBE = "SUBSCRIBE"
    UNSUBSCRIBE = "UNSUBSCRIBE"
    ACK = "ACK"
    NACK = "NACK"
    BEGIN = "BEGIN"
    COMMIT = "COMMIT"
    ABORT = "ABORT"
    DISCONNECT = "DISCONNECT"
    MESSAGE = "MESSAGE"
    RECEIPT = "RECEIPT"
    ERROR = "ERROR"


# STOMP 1.2, "Value Encoding": CONNECT and CONNECTED frames never escape, so
# that a 1.0 peer can read them.
_UNESCAPED_COMMANDS = frozenset({"CONNECT", "STOMP", "CONNECTED"})

_DECODE = {
    Version.V1_1: {"n": "\n", "c": ":", "\\": "\\"},
    Version.V1_2: {"n": "\n", "c": ":", "\\": "\\", "r": "\r"},
}
_ENCODE = {
    Version.V1_1: str.maketrans({"\\": "\\\\", "\n": "\\n", ":": "\\c"}),
    Version.V1_2: str.maketrans({"\\": "\\\\", "\n": "\\n", ":": "\\c", "\r": "\\r"}),
}


@dataclass(frozen=True)
class Frame:
    """
    One STOMP frame.

    @ivar command: the command, e.g. C{"SEND"} (a L{Command} compares equal).
    @ivar headers: (name, value) pairs in wire order, unescaped; a name may
        repeat, and then the first occurrence is the header's value.
    @ivar body: the body octets, without the terminating NUL.
    """

    command: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def get(self, name: str, default: str | None = None) -> str | None:
        """
        @return: the value of the first header called C{name} (STOMP 1.2,
            "Repeated Header Entries"), or C{default}.
        """
        for key, value in self.headers:
            if key == name:
                return value
        return default


def escape(value: str, version: Version | None, command: str) -> str:
    """
    Escape a header name or value for a frame of C{command} in C{version}.

    @param version: the session's version; L{None} before negotiation,
        which escapes as 1.0 does (not at all).
    @return: the escaped text (STOMP 1.1 and 1.2: C{\\\\}, C{\\n}, C{\\c},
        and in 1.2 also C{\\r}).
    @raise ValueError: the text has a line break that the frame can't
        carry: in STOMP 1.0, in C{CONNECT} and C{CONNECTED}.
    """
    if version is None or version is Version.V1_0 or command in _UNESCAPED_COMMANDS:
        if "\n" in value or "\r" in value:
            raise ValueError(f"a header with a line break can't be sent in a {command} frame of this version")
        return value
    return value.translate(_ENCODE[version])


def unescape(text: str, version: Version | None, command: str) -> str:
    """
    Undo the header escaping of C{version} (STOMP 1.2, "Value Encoding").

    @param version: the session's version; L{None} before negotiation
        unescapes as 1.2 does.
    @raise FrameError: an undefined escape sequence (a backslash followed
        by anything else, or by nothing).
    """
    if version is Version.V1_0 or command in _UNESCAPED_COMMANDS or "\\" not in text:
        return text
    table = _DECODE[version or Version.V1_2]
    out = []
    start = 0
    while True:
        at = text.find("\\", start)
        if at < 0:
            out.append(text[start:])
            return "".join(out)
        out.append(text[start:at])
        code = text[at + 1 : at + 2]
        replacement = table.get(code) if code else None
        if replacement is None:
            raise FrameError(f"undefined escape sequence \\{code} in header")
        out.append(replacement)
        start = at + 2


def serialize(frame: Frame, version: Version | None) -> bytes:
    """
    The octets of C{frame} as C{version} writes it: command, escaped
    headers, blank line, body and NUL, each line ended by a line feed. The
    caller adds C{content-length} when the body needs one.

    @raise ValueError: a header can't be written in C{version} (see
        L{escape}), or a header name is empty.
    """
    command = str(frame.command.value if isinstance(frame.command, Command) else frame.command)
    lines = [command]
    for name, value in frame.headers:
        if not name:
            raise ValueError("a header name can't be empty")
        name = escape(name, version, command)
        if ":" in name and (version in (None, Version.V1_0) or command in _UNESCAPED_COMMANDS):
            raise ValueError(f"a header name with a colon can't be sent in a {command} frame of this version")
        lines.append(name + ":" + escape(value, version, command))
    lines.append("")
    lines.append("")
    return "\n".join(lines).encode("utf-8") + frame.body + b"\x00"


class FrameReader:
    """
    An incremental STOMP frame parser: C{feed} it octets in any pieces, take
    frames out of C{next_frame} one at a time.

    End-of-line octets between frames are heart-beats (STOMP 1.2,
    "Heart-beating"): they are skipped and counted in C{heartbeats}. Lines
    end with a line feed; in STOMP 1.2 (and before a version is set) a
    carriage return before it belongs to the line end.

    @ivar version: the L{Version} whose rules apply to the next frame, or
        L{None} before negotiation. The session sets it after C{CONNECT}.
    @ivar heartbeats: how many heart-beat EOLs were skipped so far.
    """

    def __init__(
        self,
        *,
        max_frame_size: int = 1 << 20,
        max_headers: int = 100,
        max_header_line: int = 8192,
        version: Version | None = None,
    ) -> None:
        """
        @param max_frame_size: largest frame in octets, command line to NUL.
        @param max_headers: most header lines in one frame.
        @param max_header_line: longest command or header line in octets,
            without its end of line.
        """
        self.version = version
        self.heartbeats = 0
        self._max_frame_size = max_frame_size
        self._max_headers = max_headers
        self._max_header_line = max_header_line
        self._buffer = bytearray()
        self._reset()

    def _reset(self) -> None:
        # Where the next line (or, once the head is read, the NUL) is looked for.
        self._scan = 0
        self._lines: list[bytes] = []
        self._head: tuple[str, tuple[tuple[str, str], ...], int, int | None] | None = None

    @property
    def buffered(self) -> int:
        """
        Octets received and not yet returned as frames or skipped.
        """
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """
        Append C{data} to the buffer; nothing is parsed until L{next_frame}.
        """
        self._buffer += data

    def _crlf(self) -> bool:
        return self.version is None or self.version is Version.V1_2

    def _skip_heartbeats(self) -> None:
        buf = self._buffer
        at = 0
        size = len(buf)
        crlf = self._crlf()
        while at < size:
            octet = buf[at]
            if octet == _LF:
                at += 1
            elif octet == _CR and crlf and at + 1 < size and buf[at + 1] == _LF:
                at += 2
            else:
                break
            self.heartbeats += 1
        if at:
            del buf[:at]

    def next_frame(self) -> Frame | None:
        """
        Parse the next frame from the buffer.

        @return: the next L{Frame}, or L{None} if it has not fully arrived.
        @raise LimitExceeded: the frame is too large, has too many headers,
            or a line too long.
        @raise FrameError: the octets are not a frame: a header line without
            a colon, an undefined escape, a bad C{content-length}, a body
            longer than its C{content-length}, text that is not UTF-8.
        """
        if self._head is None:
            if not self._lines and self._scan == 0:
                self._skip_heartbeats()
            if not self._read_head():
                return None
        assert self._head is not None
        command, headers, start, length = self._head
        buf = self._buffer
        if length is not None:
            end = start + length
            if end + 1 > self._max_frame_size:
                raise LimitExceeded("frame too large")
            if len(buf) <= end:
                return None
            if buf[end] != 0:
                raise FrameError("frame not ended by a nul octet after content-length octets")
        else:
            end = buf.find(b"\x00", self._scan)
            if end < 0:
                self._scan = len(buf)
                if len(buf) >= self._max_frame_size:
                    raise LimitExceeded("frame too large")
                return None
            if end + 1 > self._max_frame_size:
                raise LimitExceeded("frame too large")
        body = bytes(buf[start:end])
        del buf[: end + 1]
        self._reset()
        return Frame(command, headers, body)

    def _read_head(self) -> bool:
        buf = self._buffer
        crlf = self._crlf()
        while True:
            end = buf.find(b"\n", self._scan)
            if end < 0:
                if len(buf) - self._scan > self._max_header_line + 1:
                    raise LimitExceeded("header line too long")
                if len(buf) >= self._max_frame_size:
                    raise LimitExceeded("frame too large")
                return False
            line = bytes(buf[self._scan : end])
            self._scan = end + 1
            if crlf and line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self._max_header_line:
                raise LimitExceeded("header line too long")
            if not line:
                break
            self._lines.append(line)
            if len(self._lines) > self._max_headers + 1:
                raise LimitExceeded("too many headers")
        if self._scan > self._max_frame_size:
            raise LimitExceeded("frame too large")
        command = self._text(self._lines[0])
        headers = []
        for raw in self._lines[1:]:
            line = self._text(raw)
            name, colon, value = line.partition(":")
            if not colon:
                raise FrameError("header line without a colon")
            headers.append((unescape(name, self.version, command), unescape(value, self.version, command)))
        length = None
        for name, value in headers:
            if name == "content-length":  # the first one wins
                if not value.isascii() or not value.isdigit():
                    raise FrameError("content-length is not a number of octets")
                length = int(value)
                break
        self._head = (command, tuple(headers), self._scan, length)
        return True

    @staticmethod
    def _text(line: bytes) -> str:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("header is not utf-8") from None
