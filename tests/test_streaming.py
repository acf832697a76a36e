"""
Tests for streaming messages in the Twisted layer: an application that
provides L{IStreamingWebSocketApplication} receives data messages piece by
piece, and any application can send one in pieces
(C{beginMessage}/C{sendMessageData}/C{endMessage}); over a
C{StringTransport}, over SockJS, and over an HTTP/2 stream.
"""

from __future__ import annotations

import gc
import tracemalloc
import zlib
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from tests.helpers import closePayload, parseFrames
from tests.test_http2 import TEXT, HTTP2ServerMixin
from tests.test_protocol import clientFrame, opened, request, serve
from wsproto_tw.application import StreamingWebSocketApplication
from wsproto_tw.core import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.core.frames import build_frame
from wsproto_tw.errors import InvalidState
from wsproto_tw.interfaces import IStreamingWebSocketApplication, IWebSocketTransport
from wsproto_tw.server import WebSocketApplication

MiB = 1 << 20
MASK = b"\x01\x02\x03\x04"


class StreamRecorder(StreamingWebSocketApplication):
    """
    Records every call; C{result} (if set) makes C{messageDataReceived}
    return what it returns.
    """

    def __init__(self) -> None:
        self.calls: list = []
        self.result: Any = None

    def connectionOpened(self, transport):
        self.calls.append(("opened",))

    def textMessageReceived(self, text):
        self.calls.append(("text", text))

    def binaryMessageReceived(self, data):
        self.calls.append(("binary", data))

    def messageStarted(self, binary):
        self.calls.append(("started", binary))

    def messageDataReceived(self, data):
        self.calls.append(("data", data))
        if self.result is not None:
            return self.result()

    def messageEnded(self):
        self.calls.append(("ended",))

    def connectionLost(self, reason):
        self.calls.append(("lost", reason.value.code))


class Counter(StreamingWebSocketApplication):
    """
    Keeps only the number and total size of the pieces it receives.
    """

    pieces = size = ended = 0

    def messageDataReceived(self, data):
        self.pieces += 1
        self.size += len(data)

    def messageEnded(self):
        self.ended += 1


class WholeCounter(WebSocketApplication):
    """
    The same, for an application that takes whole messages.
    """

    pieces = size = ended = 0

    def binaryMessageReceived(self, data):
        self.pieces += 1
        self.size += len(data)
        self.ended += 1


def tenMegabytePeak(app: Any) -> int:
    """
    Stream a 10 MB binary message in 64 KiB frames to a server running
    C{app}, building each frame only when it is sent.

    @return: the peak of memory allocated meanwhile, in bytes.
    """
    _, protocol, transport, _, _ = opened(Config(max_message_size=16 * MiB, ping_interval=None), app=app)
    frameSize = 64 * 1024
    count = 10 * MiB // frameSize
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            opcode = 0x2 if i == 0 else 0x0
            protocol.dataReceived(build_frame(opcode, bytes(frameSize), i == count - 1, mask_key=MASK))
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


class ReceiveTests(SynchronousTestCase):
    def test_interfaces(self):
        """
        The base class provides the streaming interface; the plain base
        class does not.
        """
        self.assertTrue(verifyObject(IStreamingWebSocketApplication, StreamingWebSocketApplication()))
        self.assertFalse(IStreamingWebSocketApplication.providedBy(WebSocketApplication()))

    def test_pieces(self):
        """
        Each frame's data reaches messageDataReceived between
        messageStarted and messageEnded; the whole-message callbacks are not
        called.
        """
        app = StreamRecorder()
        _, protocol, _, _, _ = opened(app=app)
        protocol.dataReceived(
            clientFrame(0x2, b"ab", fin=False) + clientFrame(0x0, b"cd") + clientFrame(0x1, b"hi")
        )
        self.assertEqual(
            app.calls[1:],
            [
                ("started", True), ("data", b"ab"), ("data", b"cd"), ("ended",),
                ("started", False), ("data", "hi"), ("ended",),
            ],
        )

    def test_tenMegabytesInPieces(self):
        """
        A 10 MB message in 64 KiB frames arrives as at least 100 pieces,
        and the server's memory peaks far below the message's size; an
        application that takes whole messages needs the whole message.
        """
        app = Counter()
        peak = tenMegabytePeak(app)
        self.assertGreaterEqual(app.pieces, 100)
        self.assertEqual((app.size, app.ended), (10 * MiB, 1))
        self.assertLess(peak, 1 * MiB)
        whole = WholeCounter()
        wholePeak = tenMegabytePeak(whole)
        self.assertEqual((whole.pieces, whole.size), (1, 10 * MiB))
        self.assertGreater(wholePeak, 10 * MiB)

    def test_textSplitMidCodePoint(self):
        """
        Text read one byte at a time arrives as str pieces, never with a
        code point split.
        """
        app = StreamRecorder()
        _, protocol, _, _, _ = opened(app=app)
        data = clientFrame(0x1, "a€b".encode(), fin=False) + clientFrame(0x0, "é".encode())
        for i in range(len(data)):
            protocol.dataReceived(data[i : i + 1])
        pieces = [c[1] for c in app.calls if c[0] == "data"]
        self.assertEqual(pieces, ["a", "€", "b", "é"])
        self.assertEqual(app.calls[-1], ("ended",))

    def test_invalidTextLater(self):
        """
        Invalid UTF-8 in a later fragment closes with 1007 after the
        earlier pieces were delivered; no messageEnded.
        """
        app = StreamRecorder()
        _, protocol, transport, _, _ = opened(app=app)
        protocol.dataReceived(clientFrame(0x1, b"fine", fin=False))
        self.assertEqual(app.calls[-1], ("data", "fine"))
        protocol.dataReceived(clientFrame(0x0, b"\xc3\x28"))
        frames = parseFrames(transport.value())
        self.assertEqual(frames[-1][:2], (0x8, closePayload(1007, b"invalid utf-8 in text message")))
        self.assertNotIn(("ended",), app.calls)
        protocol.connectionLost(None)
        self.assertEqual(app.calls[-1], ("lost", 1007))

    def test_tooBig(self):
        """
        A message whose pieces add up past max_message_size closes with
        1009.
        """
        app = StreamRecorder()
        _, protocol, transport, _, _ = opened(Config(max_message_size=100), app=app)
        protocol.dataReceived(clientFrame(0x2, b"x" * 60, fin=False))
        protocol.dataReceived(clientFrame(0x0, b"y" * 60))
        self.assertEqual([c[0] for c in app.calls[1:]], ["started", "data"])
        self.assertEqual(parseFrames(transport.value())[-1][1][:2], b"\x03\xf1")

    def test_deferredPausesReading(self):
        """
        An unfired Deferred from messageDataReceived counts as a pending
        message: past max_pending_messages, reading stops and the next
        pieces wait until it fires.
        """
        app = StreamRecorder()
        pending: list[Deferred] = []

        def slow() -> Deferred:
            d: Deferred = Deferred()
            pending.append(d)
            return d

        app.result = slow
        _, protocol, transport, _, _ = opened(Config(max_pending_messages=0), app=app)
        protocol.dataReceived(
            clientFrame(0x2, b"a", fin=False) + clientFrame(0x0, b"b", fin=False) + clientFrame(0x0, b"c")
        )
        self.assertEqual(app.calls[1:], [("started", True), ("data", b"a")])
        self.assertEqual(transport.producerState, "paused")
        pending[0].callback(None)
        self.assertEqual(app.calls[-1], ("data", b"b"))
        self.assertEqual(transport.producerState, "paused")
        pending[1].callback(None)
        pending[2].callback(None)
        self.assertEqual(app.calls[-2:], [("data", b"c"), ("ended",)])
        self.assertEqual(transport.producerState, "producing")

    def test_plainApplicationUnchanged(self):
        """
        An application that does not declare the interface gets whole
        messages, even with the streaming methods defined.
        """

        class Plain(WebSocketApplication):
            calls: list = []

            def binaryMessageReceived(self, data):
                self.calls.append(data)

            def messageDataReceived(self, data):
                raise AssertionError("not streaming")

        app = Plain()
        _, protocol, _, _, _ = opened(app=app)
        protocol.dataReceived(clientFrame(0x2, b"ab", fin=False) + clientFrame(0x0, b"cd"))
        self.assertEqual(app.calls, [b"abcd"])


class SendTests(SynchronousTestCase):
    def test_frames(self):
        """
        beginMessage writes nothing; each sendMessageData is one frame
        (first binary, then continuations), a ping goes between them, and
        endMessage sends the last frame with FIN.
        """
        _, protocol, transport, _, _ = opened()
        connection = protocol.connection
        self.assertTrue(verifyObject(IWebSocketTransport, connection))
        connection.beginMessage(binary=True)
        self.assertEqual(transport.value(), b"")
        connection.sendMessageData(b"ab")
        connection.ping(b"p")
        connection.sendMessageData(b"cd")
        connection.endMessage()
        connection.beginMessage()
        connection.sendMessageData("h")
        connection.endMessage("é")
        self.assertEqual(
            transport.value(),
            b"\x02\x02ab\x89\x01p\x00\x02cd\x80\x00" + b"\x01\x01h\x80\x02\xc3\xa9",
        )

    def test_compressed(self):
        """
        With permessage-deflate negotiated, the message goes out as one
        compressed stream: RSV1 on the first frame only, and the frames'
        payloads together inflate to the message.
        """
        _, protocol, transport, _, _ = serve(Config(compression=PerMessageDeflate()))
        protocol.dataReceived(request(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n"))
        self.assertIn(b"Sec-WebSocket-Extensions: permessage-deflate", transport.value())
        transport.clear()
        connection = protocol.connection
        connection.beginMessage(binary=True)
        for _ in range(3):
            connection.sendMessageData(b"squeeze " * 100)
        connection.endMessage()
        frames = parseFrames(transport.value())
        self.assertEqual([(f[0], f[2], f[3]) for f in frames], [(0x2, False, 4), (0x0, False, 0), (0x0, False, 0), (0x0, True, 0)])
        body = b"".join(f[1] for f in frames)
        self.assertLess(len(body), 300)
        self.assertEqual(zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff"), b"squeeze " * 300)

    def test_misuse(self):
        """
        Data or end without begin, begin twice, and sendText or sendBinary
        while a message is being sent in pieces raise InvalidState; a
        piece of the wrong type raises TypeError; nothing is written.
        """
        _, protocol, transport, _, _ = opened()
        connection = protocol.connection
        self.assertRaises(InvalidState, connection.sendMessageData, b"x")
        self.assertRaises(InvalidState, connection.endMessage)
        connection.beginMessage(binary=False)
        self.assertRaises(InvalidState, connection.beginMessage, binary=False)
        self.assertRaises(InvalidState, connection.sendText, "x")
        self.assertRaises(InvalidState, connection.sendBinary, b"x")
        self.assertRaises(TypeError, connection.sendMessageData, b"x")
        self.assertEqual(transport.value(), b"")

    def test_closeBetweenPieces(self):
        """
        close() may come between pieces; the rest of the message is
        dropped.
        """
        _, protocol, transport, _, _ = opened()
        connection = protocol.connection
        connection.beginMessage(binary=True)
        connection.sendMessageData(b"a")
        connection.close()
        connection.sendMessageData(b"b")
        connection.endMessage()
        self.assertEqual(transport.value(), b"\x02\x01a\x88\x02\x03\xe8")


class SockJSTests(SynchronousTestCase):
    """
    A SockJS session has no frames: a message sent in pieces is buffered
    and sent whole; a streaming application gets each message as one
    piece.
    """

    def session(self, app: Any) -> Any:
        from twisted.internet.address import IPv4Address

        from wsproto_tw.sockjs.frames import xhr_framing
        from wsproto_tw.sockjs.session import SessionConfig
        from wsproto_tw.sockjs.transport import SockJSSession

        written: list = []

        class Sink:
            session = receiver = None

            def write(self, chunks):
                written.append(chunks)

            def finish(self):
                pass

        session = SockJSSession(app, SessionConfig(), Config(), Clock(), peer=IPv4Address("TCP", "127.0.0.1", 1))
        session.attach(Sink(), xhr_framing())
        # The next polling request: it gets what is queued.
        self.poll = lambda: session.attach(Sink(), xhr_framing())
        return session, written

    def test_sendBuffered(self):
        """
        The pieces of a text message go out as one message, at its end;
        misuse raises as on a WebSocket; binary raises TypeError.
        """
        session, written = self.session(WebSocketApplication())
        self.assertTrue(verifyObject(IWebSocketTransport, session))
        self.assertRaises(TypeError, session.beginMessage, binary=True)
        self.assertRaises(InvalidState, session.sendMessageData, "x")
        self.assertRaises(InvalidState, session.endMessage)
        before = list(written)
        session.beginMessage()
        session.sendMessageData("he")
        self.assertRaises(InvalidState, session.beginMessage)
        self.assertRaises(InvalidState, session.sendText, "x")
        self.assertRaises(TypeError, session.sendMessageData, b"x")
        self.assertEqual(written, before)
        session.endMessage("llo")
        self.poll()
        self.assertEqual(b"".join(b"".join(c) for c in written[len(before):]), b'a["hello"]\n')

    def test_piecesBounded(self):
        """
        The pieces held for a message sent in pieces count against
        C{max_queue_size}: past it the session fails with 1008 and drops
        them; once the session is closed, pieces are dropped, not kept.
        """
        session, written = self.session(WebSocketApplication())
        session.beginMessage()
        limit = 1 << 20  # SessionConfig().max_queue_size
        session.sendMessageData("x" * (limit - 10))
        self.assertEqual(session._piecesSize, limit - 10)
        session.sendMessageData("y" * 11)
        self.assertEqual(session._piecesSize, 0)
        self.assertEqual(session._pieces, [])
        self.assertTrue(session.closed)
        session.sendMessageData("z" * 1000)
        self.assertEqual(session._pieces, [])
        session.endMessage()  # nothing to send, no error
        self.poll()
        sent = b"".join(b"".join(c) for c in written)
        self.assertIn(b'c[1008,"message queue over its limit"]', sent)
        self.assertNotIn(b"xxxx", sent)

    def test_receiveOnePiece(self):
        """
        A streaming application receives a SockJS message as started, one
        piece, ended.
        """
        app = StreamRecorder()
        session, _ = self.session(app)
        session.receive('["hi", ""]')
        self.assertEqual(
            app.calls[1:], [("started", False), ("data", "hi"), ("ended",), ("started", False), ("ended",)]
        )


class StreamingEcho(StreamingWebSocketApplication):
    """
    Echoes each message piece by piece, as it arrives.
    """

    def messageStarted(self, binary):
        self.transport.beginMessage(binary)

    def messageDataReceived(self, data):
        self.transport.sendMessageData(data)

    def messageEnded(self):
        self.transport.endMessage()


class HTTP2Tests(HTTP2ServerMixin, TestCase):
    """
    Over an HTTP/2 stream (RFC 8441), the same connection streams.
    """

    config = Config(subprotocols=())
    applicationFactory = StreamingEcho

    def setUp(self) -> Any:
        return self.startServer()

    @inlineCallbacks
    def test_streamingEcho(self) -> Any:
        """
        A message sent in fragments comes back as fragments: a first text
        frame without FIN, continuations, FIN on the last one.
        """
        client = yield self.h2Client()
        stream = client.openWebSocket()
        yield stream.response
        stream.send(clientFrame(TEXT, b"ab", fin=False))
        stream.send(clientFrame(0x0, b"cd", fin=False))
        stream.send(clientFrame(0x0, b"ef"))
        frames = []
        while not frames or not frames[-1][2]:
            frames = yield stream.nextFrames(len(frames) + 1)
        self.assertGreaterEqual(len(frames), 3)
        self.assertEqual([f[0] for f in frames], [TEXT] + [0x0] * (len(frames) - 1))
        self.assertEqual([f[2] for f in frames], [False] * (len(frames) - 1) + [True])
        self.assertEqual(b"".join(f[1] for f in frames), b"abcdef")
