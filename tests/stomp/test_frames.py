"""
Tests for L{wsproto_tw.stomp.frames}: the STOMP frame rules of 1.0, 1.1
and 1.2, byte for byte.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.stomp.errors import FrameError, LimitExceeded
from wsproto_tw.stomp.frames import Command, Frame, FrameReader, Version, escape, serialize, unescape


def readAll(data: bytes, version: Version | None = None, **limits: int) -> list[Frame]:
    """
    Feed C{data} to a new reader in one piece and take out every frame.
    """
    reader = FrameReader(version=version, **limits)
    reader.feed(data)
    frames = []
    while (frame := reader.next_frame()) is not None:
        frames.append(frame)
    return frames


class FrameTests(SynchronousTestCase):
    """
    Tests for L{Frame} and the names of versions and commands.
    """

    def test_firstRepeatedHeaderWins(self):
        """
        Of repeated headers, L{Frame.get} returns the first; all stay in
        C{headers} in wire order.
        """
        frame = Frame("MESSAGE", (("foo", "World"), ("foo", "Hello")))
        self.assertEqual(frame.get("foo"), "World")
        self.assertEqual(frame.get("bar", "none"), "none")
        self.assertEqual(frame.headers, (("foo", "World"), ("foo", "Hello")))

    def test_commandComparesAsName(self):
        """
        A L{Command} member is equal to its name, so frames can be built
        and compared with either.
        """
        self.assertEqual(Frame(Command.SEND), Frame("SEND"))

    def test_versionSubprotocols(self):
        """
        Each version has its WebSocket subprotocol name, and the name maps
        back to the version.
        """
        self.assertEqual([v.subprotocol for v in Version], ["v10.stomp", "v11.stomp", "v12.stomp"])
        self.assertIs(Version.from_subprotocol("v11.stomp"), Version.V1_1)
        self.assertIsNone(Version.from_subprotocol("mqtt"))


class ReaderTests(SynchronousTestCase):
    """
    Tests for L{FrameReader}.
    """

    def test_frameEndedByNul(self):
        """
        A frame is a command line, header lines, a blank line and a body
        ended by NUL.
        """
        self.assertEqual(
            readAll(b"SEND\ndestination:/queue/a\n\nhello\x00"),
            [Frame("SEND", (("destination", "/queue/a"),), b"hello")],
        )

    def test_contentLengthBodyWithNul(self):
        """
        With C{content-length}, the body is that many octets and may
        contain NUL; the frame still ends with a NUL after it.
        """
        self.assertEqual(
            readAll(b"SEND\ncontent-length:3\n\na\x00b\x00"),
            [Frame("SEND", (("content-length", "3"),), b"a\x00b")],
        )

    def test_contentLengthWithoutNul(self):
        """
        An octet other than NUL after C{content-length} octets of body is
        an error.
        """
        error = self.assertRaises(FrameError, readAll, b"SEND\ncontent-length:1\n\nab\x00")
        self.assertEqual(error.message, "frame not ended by a nul octet after content-length octets")

    def test_contentLengthNotANumber(self):
        """
        A C{content-length} that is not a decimal number is an error.
        """
        for value in (b"-1", b"0x10", b"", b" 3", b"\xd9\xa3"):
            error = self.assertRaises(FrameError, readAll, b"SEND\ncontent-length:" + value + b"\n\nabc\x00")
            self.assertEqual(error.message, "content-length is not a number of octets")

    def test_firstContentLengthWins(self):
        """
        Of repeated C{content-length} headers, the first sizes the body.
        """
        self.assertEqual(
            readAll(b"SEND\ncontent-length:1\ncontent-length:5\n\nx\x00"),
            [Frame("SEND", (("content-length", "1"), ("content-length", "5")), b"x")],
        )

    def test_crlfInVersion12(self):
        """
        In STOMP 1.2, and before the version is known, lines may end with
        CR LF; the CR is not part of the line.
        """
        data = b"SEND\r\ndestination:/topic/a\r\n\r\nx\x00"
        expected = [Frame("SEND", (("destination", "/topic/a"),), b"x")]
        self.assertEqual(readAll(data, Version.V1_2), expected)
        self.assertEqual(readAll(data, None), expected)

    def test_crBelongsToLineBefore12(self):
        """
        In STOMP 1.0 and 1.1 only LF ends a line: a CR before it stays in
        the line (here in the header value).
        """
        for version in (Version.V1_0, Version.V1_1):
            self.assertEqual(
                readAll(b"SEND\ndestination:/topic/a\r\n\nx\x00", version),
                [Frame("SEND", (("destination", "/topic/a\r"),), b"x")],
            )

    def test_heartbeatsBetweenFrames(self):
        """
        EOLs before and between frames are heart-beats: skipped and
        counted.
        """
        reader = FrameReader(version=Version.V1_2)
        reader.feed(b"\n\r\n\nSEND\n\nx\x00\n\n")
        self.assertEqual(reader.next_frame(), Frame("SEND", (), b"x"))
        self.assertIsNone(reader.next_frame())
        self.assertEqual(reader.heartbeats, 5)
        self.assertEqual(reader.buffered, 0)

    def test_crlfHeartbeatSplit(self):
        """
        A CR LF heart-beat split between two pieces is one heart-beat.
        """
        reader = FrameReader(version=Version.V1_2)
        reader.feed(b"\r")
        self.assertIsNone(reader.next_frame())
        reader.feed(b"\nSEND\n\n\x00")
        self.assertEqual(reader.next_frame(), Frame("SEND"))
        self.assertEqual(reader.heartbeats, 1)

    def test_splitAnywhere(self):
        """
        A frame fed one octet at a time comes out once, when its NUL (or
        its last body octet and NUL) arrives.
        """
        for data in (b"SEND\na:b\n\nxyz\x00", b"SEND\ncontent-length:2\n\n\x00\x00\x00"):
            reader = FrameReader()
            frames = []
            for octet in data:
                reader.feed(bytes([octet]))
                frame = reader.next_frame()
                if frame is not None:
                    frames.append(frame)
            self.assertEqual(len(frames), 1)
            self.assertIsNone(reader.next_frame())
            self.assertEqual(serialize(frames[0], Version.V1_2), data)

    def test_severalFramesInOnePiece(self):
        """
        Several frames packed into one piece come out one by one.
        """
        self.assertEqual(
            readAll(b"BEGIN\ntransaction:t\n\n\x00SEND\ntransaction:t\n\n1\x00COMMIT\ntransaction:t\n\n\x00"),
            [
                Frame("BEGIN", (("transaction", "t"),)),
                Frame("SEND", (("transaction", "t"),), b"1"),
                Frame("COMMIT", (("transaction", "t"),)),
            ],
        )

    def test_escapes11(self):
        """
        STOMP 1.1 decodes C{\\n}, C{\\c} and C{\\\\} in names and values.
        """
        self.assertEqual(
            readAll(b"SEND\na\\cb:x\\ny\\\\z\n\n\x00", Version.V1_1),
            [Frame("SEND", (("a:b", "x\ny\\z"),))],
        )

    def test_escapeCarriageReturn12Only(self):
        """
        C{\\r} is an escape of STOMP 1.2; in 1.1 it is undefined.
        """
        data = b"SEND\na:x\\ry\n\n\x00"
        self.assertEqual(readAll(data, Version.V1_2), [Frame("SEND", (("a", "x\ry"),))])
        error = self.assertRaises(FrameError, readAll, data, Version.V1_1)
        self.assertEqual(error.message, "undefined escape sequence \\r in header")

    def test_undefinedEscape(self):
        """
        A backslash followed by anything but a defined escape, or by
        nothing, is an error.
        """
        error = self.assertRaises(FrameError, readAll, b"SEND\na:\\t\n\n\x00", Version.V1_2)
        self.assertEqual(error.message, "undefined escape sequence \\t in header")
        error = self.assertRaises(FrameError, readAll, b"SEND\na:b\\\n\n\x00", Version.V1_2)
        self.assertEqual(error.message, "undefined escape sequence \\ in header")

    def test_noEscapesIn10(self):
        """
        STOMP 1.0 has no escaping: a backslash is itself, and the header
        name ends at the first colon.
        """
        self.assertEqual(
            readAll(b"SEND\na:x\\ty:z\n\n\x00", Version.V1_0),
            [Frame("SEND", (("a", "x\\ty:z"),))],
        )

    def test_noEscapesInConnect(self):
        """
        C{CONNECT} and C{STOMP} frames are never unescaped, whatever the
        version: a 1.0 client's passcode may contain a backslash.
        """
        for command in (b"CONNECT", b"STOMP"):
            self.assertEqual(
                readAll(command + b"\npasscode:a\\b\n\n\x00", Version.V1_2),
                [Frame(command.decode(), (("passcode", "a\\b"),))],
            )

    def test_headerWithoutColon(self):
        """
        A header line without a colon is an error.
        """
        error = self.assertRaises(FrameError, readAll, b"SEND\nnocolon\n\n\x00")
        self.assertEqual(error.message, "header line without a colon")

    def test_headerNotUtf8(self):
        """
        A header that is not UTF-8 is an error.
        """
        error = self.assertRaises(FrameError, readAll, b"SEND\na:\xff\n\n\x00")
        self.assertEqual(error.message, "header is not utf-8")

    def test_emptyValueAndColonInValue(self):
        """
        A header may have an empty value; in 1.2 an unescaped colon in
        the value is kept (the name ends at the first colon).
        """
        self.assertEqual(
            readAll(b"SEND\na:\nb:c:d\n\n\x00", Version.V1_2),
            [Frame("SEND", (("a", ""), ("b", "c:d")))],
        )

    def test_frameSizeLimit(self):
        """
        A frame larger than C{max_frame_size}, counted from the command to
        the NUL, is refused: with C{content-length} as soon as the head is
        read, without it as soon as the buffer passes the limit.
        """
        head = b"SEND\ncontent-length:10\n\n"
        self.assertEqual(len(readAll(head + b"0123456789\x00", max_frame_size=len(head) + 11)), 1)
        reader = FrameReader(max_frame_size=len(head) + 10)
        reader.feed(head)
        error = self.assertRaises(LimitExceeded, reader.next_frame)
        self.assertEqual(error.message, "frame too large")
        reader = FrameReader(max_frame_size=20)
        reader.feed(b"SEND\n\n" + b"x" * 13)
        self.assertIsNone(reader.next_frame())
        reader.feed(b"x")
        error = self.assertRaises(LimitExceeded, reader.next_frame)
        self.assertEqual(error.message, "frame too large")

    def test_headerCountLimit(self):
        """
        More than C{max_headers} header lines is an error.
        """
        self.assertEqual(len(readAll(b"SEND\na:1\nb:2\n\n\x00", max_headers=2)), 1)
        error = self.assertRaises(LimitExceeded, readAll, b"SEND\na:1\nb:2\nc:3\n\n\x00", max_headers=2)
        self.assertEqual(error.message, "too many headers")

    def test_headerLineLimit(self):
        """
        A line longer than C{max_header_line} is an error, even before its
        end has arrived.
        """
        self.assertEqual(len(readAll(b"SEND\na:12345678\n\n\x00", max_header_line=10)), 1)
        error = self.assertRaises(LimitExceeded, readAll, b"SEND\na:123456789\n\n\x00", max_header_line=10)
        self.assertEqual(error.message, "header line too long")
        reader = FrameReader(max_header_line=10)
        reader.feed(b"SEND\na:1234567890")
        error = self.assertRaises(LimitExceeded, reader.next_frame)
        self.assertEqual(error.message, "header line too long")


class SerializeTests(SynchronousTestCase):
    """
    Tests for L{serialize} and L{escape}.
    """

    def test_frameBytes(self):
        """
        A frame is written as command, headers, blank line, body and NUL,
        lines ended by LF.
        """
        frame = Frame("MESSAGE", (("destination", "/topic/a"), ("message-id", "7")), b"hi")
        self.assertEqual(serialize(frame, Version.V1_2), b"MESSAGE\ndestination:/topic/a\nmessage-id:7\n\nhi\x00")

    def test_escapesPerVersion(self):
        """
        STOMP 1.1 escapes backslash, LF and colon; 1.2 also CR.
        """
        frame = Frame("MESSAGE", (("a:b", "x\ny\\z:"),))
        self.assertEqual(serialize(frame, Version.V1_1), b"MESSAGE\na\\cb:x\\ny\\\\z\\c\n\n\x00")
        self.assertEqual(escape("a\rb", Version.V1_2, "MESSAGE"), "a\\rb")
        self.assertEqual(escape("a\rb", Version.V1_1, "MESSAGE"), "a\rb")

    def test_noEscapesInConnected(self):
        """
        C{CONNECTED} is never escaped; a colon in its values is written as
        it is.
        """
        frame = Frame("CONNECTED", (("server", "wsproto_tw:1\\0"),))
        self.assertEqual(serialize(frame, Version.V1_2), b"CONNECTED\nserver:wsproto_tw:1\\0\n\n\x00")

    def test_unwritableIn10(self):
        """
        A header with a line break, or a name with a colon, can't be
        written in STOMP 1.0 or in C{CONNECTED}.
        """
        self.assertRaises(ValueError, serialize, Frame("MESSAGE", (("a", "x\ny"),)), Version.V1_0)
        self.assertRaises(ValueError, serialize, Frame("MESSAGE", (("a:b", "x"),)), Version.V1_0)
        self.assertRaises(ValueError, serialize, Frame("CONNECTED", (("a", "x\ry"),)), Version.V1_2)

    def test_roundTrip(self):
        """
        What C{serialize} writes, C{FrameReader} reads back unchanged, in
        each version.
        """
        frame = Frame("MESSAGE", (("k\\:", "v\n:\\"), ("content-length", "2")), b"\x00\x01")
        for version in (Version.V1_1, Version.V1_2):
            self.assertEqual(readAll(serialize(frame, version), version), [frame])

    def test_unescapeInverse(self):
        """
        L{unescape} inverts L{escape} in 1.2.
        """
        text = "a\\b:c\nd\re"
        self.assertEqual(unescape(escape(text, Version.V1_2, "SEND"), Version.V1_2, "SEND"), text)
