"""
Tests for L{wsproto_tw.connection}, L{wsproto_tw.wire} and L{wsproto_tw.server}: the Twisted layer,
driven through C{StringTransport} and C{Clock}.
"""

from __future__ import annotations

import gc
import struct
import weakref
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from wsproto_tw._timers import sharedTimer
from wsproto_tw.connection import WebSocketConnection
from wsproto_tw.core import CloseCode, Config
from wsproto_tw.core.connection import ServerConnection
from wsproto_tw.core.frames import FrameReader, build_frame
from wsproto_tw.errors import ConnectionClosed, Reject
from wsproto_tw.interfaces import IWebSocketApplication, IWebSocketTransport, IWire, IWireReceiver
from wsproto_tw.server import Accept, WebSocketApplication, WebSocketServerFactory, _ServerRole
from wsproto_tw.wire import StreamWire

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = b"\x01\x02\x03\x04"


def request(path: str = "/chat", extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode("latin-1")


def clientFrame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return build_frame(opcode, payload, fin, mask_key=MASK)


def serverFrames(data: bytes) -> list:
    """
    Parse the frames a server wrote (after its handshake response).
    """
    reader = FrameReader(expect_mask=False, max_frame_size=0)
    reader.buffer += data
    frames = []
    while (frame := reader.read_frame()) is not None:
        frames.append(frame)
    return frames


def afterHead(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[1]


def closeCodeOf(frame) -> int:
    return struct.unpack("!H", frame.payload[:2])[0]


def captureLogs(testCase: SynchronousTestCase) -> list[dict]:
    """
    @return: a list that receives the log events of C{wsproto_tw}'s
        Twisted layer for the rest of the test.
    """
    events: list[dict] = []

    def observer(event: dict) -> None:
        if event.get("log_namespace") == "wsproto_tw":
            events.append(event)

    globalLogPublisher.addObserver(observer)
    testCase.addCleanup(globalLogPublisher.removeObserver, observer)
    return events


def slowHandlers(app: Any) -> list[Deferred]:
    """
    Make C{app}'s message handlers return unfired Deferreds.

    @return: the list the Deferreds are appended to, one per message.
    """
    pending: list[Deferred] = []

    def slow() -> Deferred:
        d: Deferred = Deferred()
        pending.append(d)
        return d

    app.messageResult = slow
    return pending

class RecordingApplication(WebSocketApplication):
    """
    Records every callback; answers per the attributes the test sets.
    """

    def __init__(self) -> None:
        self.calls: list = []
        self.negotiation = None
        self.messageResult = None

    def requestReceived(self, request):
        self.calls.append(("request", request))
        if isinstance(self.negotiation, Exception):
            raise self.negotiation
        return self.negotiation

    def connectionOpened(self, transport):
        self.calls.append(("opened", transport))

    def textMessageReceived(self, text):
        self.calls.append(("text", text))
        return self.messageResult() if self.messageResult else None

    def binaryMessageReceived(self, data):
        self.calls.append(("binary", data))
        return self.messageResult() if self.messageResult else None

    def pingReceived(self, payload):
        self.calls.append(("ping", payload))

    def pongReceived(self, payload):
        self.calls.append(("pong", payload))

    def connectionLost(self, reason):
        self.calls.append(("lost", reason))

    def kinds(self) -> list:
        return [c[0] for c in self.calls]


def serve(config: Config | None = None, app: RecordingApplication | None = None, clock: Clock | None = None):
    """
    Build a server protocol on a StringTransport.

    @return: (factory, protocol, transport, application, clock).
    """
    clock = clock or Clock()
    app = app or RecordingApplication()
    factory = WebSocketServerFactory(lambda: app, config or Config(), reactor=clock)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return factory, protocol, transport, app, clock


def opened(config: Config | None = None, app: RecordingApplication | None = None, clock: Clock | None = None):
    factory, protocol, transport, app, clock = serve(config, app, clock)
    protocol.dataReceived(request())
    assert transport.value().startswith(b"HTTP/1.1 101 "), transport.value()
    transport.clear()
    return factory, protocol, transport, app, clock


class HandshakeTests(SynchronousTestCase):
    def test_interfaces(self):
        """
        The connection provides IWebSocketTransport (for the application)
        and IWireReceiver (for its wire); the stream wire provides IWire;
        the base application provides IWebSocketApplication.
        """
        _, protocol, _, _, _ = opened()
        self.assertTrue(verifyObject(IWebSocketTransport, protocol.connection))
        self.assertTrue(verifyObject(IWireReceiver, protocol.connection))
        self.assertTrue(verifyObject(IWire, protocol))
        self.assertTrue(verifyObject(IWebSocketApplication, WebSocketApplication()))

    def test_acceptByDefault(self):
        """
        A valid request is answered 101 with the right accept value; the
        application sees the request (with the peer address) and then
        connectionOpened with the transport.
        """
        _, protocol, transport, app, _ = serve()
        protocol.dataReceived(request("/room?id=7"))
        response = transport.value().decode("latin-1")
        self.assertTrue(response.startswith("HTTP/1.1 101 Switching Protocols\r\n"))
        self.assertIn(f"Sec-WebSocket-Accept: {ACCEPT}\r\n", response)
        self.assertEqual(app.kinds(), ["request", "opened"])
        seen = app.calls[0][1]
        self.assertEqual((seen.path, seen.query), ("/room", "id=7"))
        self.assertEqual(seen.peer.host, "192.168.1.1")
        self.assertIs(app.calls[1][1], protocol.connection)
        self.assertIs(app.transport, protocol.connection)

    def test_framesInSameReadAsHead(self):
        """
        Frames that arrive in the same read as the request head are delivered
        once the connection opens.
        """
        _, protocol, transport, app, _ = serve()
        protocol.dataReceived(request() + clientFrame(0x1, b"early"))
        self.assertEqual(app.calls[-1], ("text", "early"))

    def test_acceptChoosesSubprotocolAndHeaders(self):
        """
        An Accept from requestReceived picks the subprotocol and adds headers.
        """
        app = RecordingApplication()
        app.negotiation = Accept("b", headers=[("X-Room", "7")])
        _, protocol, transport, _, _ = serve(app=app)
        protocol.dataReceived(request(extra="Sec-WebSocket-Protocol: a, b\r\n"))
        response = transport.value().decode("latin-1")
        self.assertIn("Sec-WebSocket-Protocol: b\r\n", response)
        self.assertIn("X-Room: 7\r\n", response)
        self.assertEqual(protocol.connection.subprotocol, "b")

    def test_configuredSubprotocol(self):
        """
        Without a choice from the application, the server's preferred
        subprotocol among the client's is answered.
        """
        _, protocol, transport, _, _ = serve(Config(subprotocols=("v10.stomp",)))
        protocol.dataReceived(request(extra="Sec-WebSocket-Protocol: v10.stomp, v11.stomp\r\n"))
        self.assertIn(b"Sec-WebSocket-Protocol: v10.stomp\r\n", transport.value())

    def test_reject(self):
        """
        Reject from requestReceived answers its status and one-line reason,
        closes the transport, and never opens the application.
        """
        app = RecordingApplication()
        app.negotiation = Reject(401, "who are you")
        _, protocol, transport, _, _ = serve(app=app)
        protocol.dataReceived(request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 401 "))
        self.assertTrue(transport.value().endswith(b"\r\n\r\nwho are you\n"))
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(app.kinds(), ["request"])

    def test_applicationErrorIs500(self):
        """
        An unexpected exception in requestReceived is logged and answered 500.
        """
        app = RecordingApplication()
        app.negotiation = RuntimeError("boom")
        _, protocol, transport, _, _ = serve(app=app)
        protocol.dataReceived(request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 500 "))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def assertAnswered500(self, answer, error: type[Exception], deferred: bool = False) -> None:
        """
        When requestReceived answers C{answer} (in a Deferred that fires
        later if C{deferred}), the client gets 500 at once, the transport is
        closed, and the C{error} it caused is logged once, with its
        traceback.
        """
        logs = captureLogs(self)
        app = RecordingApplication()
        pending = Deferred()
        app.negotiation = pending if deferred else answer
        _, protocol, transport, _, clock = serve(app=app)
        protocol.dataReceived(request())
        if deferred:
            self.assertEqual(transport.producerState, "paused")
            pending.callback(answer)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 500 "), transport.value())
        self.assertTrue(transport.value().endswith(b"\r\n\r\ninternal server error\n"))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(clock.seconds(), 0)
        self.assertEqual(len(self.flushLoggedErrors(error)), 1)
        failures = [e for e in logs if "log_failure" in e]
        self.assertEqual(len(failures), 1, failures)
        self.assertIsInstance(failures[0]["log_failure"].value, error)
        self.assertIsNotNone(failures[0]["log_failure"].getTracebackObject())
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(app.kinds(), ["request"])

    def test_unofferedSubprotocolIs500(self):
        """
        An Accept of a subprotocol the client did not offer is answered 500
        at once, not left for the open timeout.
        """
        self.assertAnswered500(Accept("b"), ValueError)
        self.assertAnswered500(Accept("b"), ValueError, deferred=True)

    def test_notAnAcceptIs500(self):
        """
        A requestReceived result that is neither None nor an Accept is
        answered 500 at once.
        """
        self.assertAnswered500("yes", TypeError)
        self.assertAnswered500("yes", TypeError, deferred=True)

    def test_acceptHeaderInjectionIs500(self):
        """
        An Accept whose headers hold a line break is answered 500 at once,
        and the header is not sent.
        """
        self.assertAnswered500(Accept(headers=[("X-A", "1\r\nSet-Cookie: x")]), ValueError)
        self.assertAnswered500(Accept(headers=[("X-A", "1\r\nSet-Cookie: x")]), ValueError, deferred=True)

    def test_rejectWithBadStatusIs500(self):
        """
        A Reject with a status that is not an error status is answered 500
        at once.
        """
        app = RecordingApplication()
        app.negotiation = Reject(200, "fine")
        _, protocol, transport, _, _ = serve(app=app)
        protocol.dataReceived(request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 500 "), transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        pending = Deferred()
        app = RecordingApplication()
        app.negotiation = pending
        _, protocol, transport, _, _ = serve(app=app)
        protocol.dataReceived(request())
        pending.errback(Reject(302, "elsewhere"))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 500 "), transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_connectionOpenedErrorFailsConnection(self):
        """
        An exception from connectionOpened is logged and fails the new
        connection with 1011, after the 101, whether requestReceived
        answered at once or later; connectionLost follows once.
        """
        for deferred in (False, True):

            class Broken(RecordingApplication):
                def connectionOpened(self, transport):
                    super().connectionOpened(transport)
                    raise RuntimeError("broken")

            app = Broken()
            pending = Deferred()
            app.negotiation = pending if deferred else None
            _, protocol, transport, _, _ = serve(app=app)
            protocol.dataReceived(request())
            if deferred:
                pending.callback(None)
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))
            frames = serverFrames(afterHead(transport.value()))
            self.assertEqual([(f.opcode, f.payload) for f in frames], [(0x8, b"\x03\xf3internal error")])
            self.assertTrue(transport.disconnecting)
            self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
            protocol.connectionLost(Failure(ConnectionDone()))
            self.assertEqual(app.kinds(), ["request", "opened", "lost"])
            self.assertEqual(app.calls[-1][1].value.code, 1011)

    def test_deferredNegotiationPausesReading(self):
        """
        While requestReceived's Deferred is pending, the transport is paused;
        when it fires the handshake is answered and reading resumes.
        """
        app = RecordingApplication()
        pending = Deferred()
        app.negotiation = pending
        _, protocol, transport, _, _ = serve(app=app)
        protocol.dataReceived(request() + clientFrame(0x1, b"queued"))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(transport.producerState, "paused")
        pending.callback(None)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(app.calls[-1], ("text", "queued"))

    def test_badHandshakeLoggedInOneLine(self):
        """
        A bad handshake gets its status, and is logged as one line, without a
        traceback.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        _, protocol, transport, app, _ = serve()
        protocol.dataReceived(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 405 "))
        self.assertTrue(transport.disconnecting)
        ours = [e for e in events if e.get("log_namespace") == "wsproto_tw"]
        self.assertEqual(len(ours), 1)
        self.assertNotIn("log_failure", ours[0])
        self.assertEqual(app.calls, [])

    def test_openTimeout(self):
        """
        A client that doesn't finish its request within open_timeout gets 408
        and the transport is closed, however it drips bytes.
        """
        _, protocol, transport, _, clock = serve(Config(open_timeout=10))
        for byte in request()[:30]:
            clock.advance(1)
            protocol.dataReceived(bytes([byte]))
            if transport.disconnecting:
                break
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(clock.seconds(), 10)

    def test_applicationFactoryFails(self):
        """
        When the application factory raises, the request is answered 500,
        the failure is logged, and the factory keeps serving.
        """

        def broken():
            raise ZeroDivisionError("no application")

        factory = WebSocketServerFactory(broken, Config(), reactor=Clock())
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 500 "), transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        factory.applicationFactory = RecordingApplication
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))

    def test_buildProtocolFactory(self):
        """
        The wire L{WebSocketServerFactory.buildProtocol} returns, and the
        connection it carries, have the factory as their C{factory}.
        """
        factory = WebSocketServerFactory(RecordingApplication, Config(), reactor=Clock())
        wire = factory.buildProtocol(None)
        self.assertIs(wire.factory, factory)
        self.assertIs(wire.connection.factory, factory)
        self.assertIn(wire.connection, factory.connections)

    def test_connectionLimit(self):
        """
        Past max_connections, a new handshake is answered 503.
        """
        factory, first, _, _, clock = opened(Config(max_connections=1))
        second = factory.buildProtocol(None)
        transport = StringTransport()
        second.makeConnection(transport)
        second.dataReceived(request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 503 "))
        first.connectionLost(Failure(ConnectionDone()))
        second.connectionLost(Failure(ConnectionDone()))
        third = factory.buildProtocol(None)
        transport = StringTransport()
        third.makeConnection(transport)
        third.dataReceived(request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))


class MessageTests(SynchronousTestCase):
    def test_textAndBinary(self):
        """
        Text and binary messages reach their callbacks; sends go out as
        unmasked frames.
        """
        _, protocol, transport, app, _ = opened()
        protocol.dataReceived(clientFrame(0x1, "héllo".encode()) + clientFrame(0x2, b"\x00\xff"))
        self.assertEqual(app.calls[-2:], [("text", "héllo"), ("binary", b"\x00\xff")])
        protocol.connection.sendText("hé")
        protocol.connection.sendBinary(b"\x01")
        self.assertEqual(transport.value(), b"\x81\x03h\xc3\xa9\x82\x01\x01")

    def test_loneAnswerBeforeParsingOn(self):
        """
        What the application sends in answer to a message that came alone
        (nothing else received after it) is written as soon as its callback
        returns, and the core is not asked for another event (it has
        nothing unread to parse).
        """
        _, protocol, transport, app, _ = opened()
        app.messageResult = lambda: protocol.connection.sendText("echo")
        nextEvent = ServerConnection.next_event
        seen = []

        def recordingNextEvent(core):
            seen.append(transport.value())
            return nextEvent(core)

        self.patch(ServerConnection, "next_event", recordingNextEvent)
        protocol.dataReceived(clientFrame(0x1, b"hi"))
        self.assertEqual(app.calls[-1], ("text", "hi"))
        self.assertEqual(seen, [b""])
        self.assertEqual(transport.value(), b"\x81\x04echo")

    def test_loneBinaryAnswerBeforeParsingOn(self):
        """
        As for text: the answer to a lone binary message is written once its
        callback returns, and the core is asked for one event only.
        """
        _, protocol, transport, app, _ = opened()
        app.messageResult = lambda: protocol.connection.sendBinary(b"ok")
        nextEvent = ServerConnection.next_event
        seen = []

        def recordingNextEvent(core):
            seen.append(transport.value())
            return nextEvent(core)

        self.patch(ServerConnection, "next_event", recordingNextEvent)
        protocol.dataReceived(clientFrame(0x2, b"hi"))
        self.assertEqual(app.calls[-1], ("binary", b"hi"))
        self.assertEqual(seen, [b""])
        self.assertEqual(transport.value(), b"\x82\x02ok")

    def test_partialFrameAfterLoneMessage(self):
        """
        A message followed, in the same read, by the start of the next
        frame: the answer waits for the core to parse on, and the rest of
        the frame, once it arrives, is delivered.
        """
        _, protocol, transport, app, _ = opened()
        app.messageResult = lambda: protocol.connection.sendText("echo")
        second = clientFrame(0x1, b"there")
        protocol.dataReceived(clientFrame(0x1, b"hi") + second[:3])
        self.assertEqual(app.calls[-1], ("text", "hi"))
        self.assertEqual(transport.value(), b"\x81\x04echo")
        protocol.dataReceived(second[3:])
        self.assertEqual(app.calls[-1], ("text", "there"))
        self.assertEqual(transport.value(), b"\x81\x04echo" * 2)

    def test_answersToOneReadInOneWrite(self):
        """
        The answers to messages received in one read are written together,
        once the last of them is delivered: one write to the transport.
        """
        _, protocol, transport, app, _ = opened()
        app.messageResult = lambda: protocol.connection.sendText("echo")
        writes = []
        write, writeSequence = transport.write, transport.writeSequence

        def countingWrite(data):
            writes.append(data)
            write(data)

        def countingWriteSequence(pieces):
            writes.append(b"".join(pieces))
            writeSequence(pieces)

        transport.write, transport.writeSequence = countingWrite, countingWriteSequence
        protocol.dataReceived(clientFrame(0x1, b"a") + clientFrame(0x2, b"b") + clientFrame(0x1, b"c"))
        self.assertEqual(app.kinds()[-3:], ["text", "binary", "text"])
        self.assertEqual(writes, [b"\x81\x04echo" * 3])

    def test_pingPong(self):
        """
        A ping is answered with a pong automatically and shown to the
        application; a pong reaches pongReceived.
        """
        _, protocol, transport, app, _ = opened()
        protocol.dataReceived(clientFrame(0x9, b"p1") + clientFrame(0xA, b"p2"))
        self.assertEqual(transport.value(), b"\x8a\x02p1")
        self.assertEqual(app.calls[-2:], [("ping", b"p1"), ("pong", b"p2")])

    def test_sendTypeErrors(self):
        """
        sendText takes str and sendBinary bytes: anything else is a TypeError.
        """
        _, protocol, _, _, _ = opened()
        self.assertRaises(TypeError, protocol.connection.sendText, b"bytes")
        self.assertRaises(TypeError, protocol.connection.sendBinary, "text")

    def test_echoBeforeViolation(self):
        """
        What the application sends in answer to a message goes out before the
        close frame caused by a later bad frame in the same read.
        """

        class Echo(RecordingApplication):
            def textMessageReceived(self, text):
                self.transport.sendText(text)

        _, protocol, transport, _, _ = opened(app=Echo())
        protocol.dataReceived(clientFrame(0x1, b"hi") + b"\xc1\x80" + MASK)
        frames = serverFrames(transport.value())
        self.assertEqual([f.opcode for f in frames], [0x1, 0x8])
        self.assertEqual(closeCodeOf(frames[1]), CloseCode.PROTOCOL_ERROR)
        self.assertTrue(transport.disconnecting)


    def test_applicationErrorFailsConnection(self):
        """
        An exception from a message callback is logged, and fails the
        connection with 1011: what the application sent before it in the
        same read is written first, no later message is delivered, and
        connectionLost comes once.
        """

        class Echo(RecordingApplication):
            def textMessageReceived(self, text):
                super().textMessageReceived(text)
                if text == "b":
                    raise RuntimeError("cannot handle b")
                self.transport.sendText(text)

        logs = captureLogs(self)
        _, protocol, transport, app, _ = opened(app=Echo())
        protocol.dataReceived(clientFrame(0x1, b"a") + clientFrame(0x1, b"b") + clientFrame(0x1, b"c"))
        frames = serverFrames(transport.value())
        self.assertEqual(
            [(f.opcode, f.payload) for f in frames], [(0x1, b"a"), (0x8, b"\x03\xf3internal error")]
        )
        self.assertTrue(transport.disconnecting)
        self.assertEqual([c[1] for c in app.calls if c[0] == "text"], ["a", "b"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len([e for e in logs if "log_failure" in e]), 1)
        protocol.connectionLost(Failure(ConnectionDone()))
        protocol.connectionLost(Failure(ConnectionDone()))
        lost = [c[1].value for c in app.calls if c[0] == "lost"]
        self.assertEqual([(c.code, c.reason, c.wasClean) for c in lost], [(1011, "internal error", False)])

    def test_applicationErrorInOtherCallbacks(self):
        """
        binaryMessageReceived, pingReceived and pongReceived raising fail
        the connection with 1011 too; the automatic pong to the ping still
        goes out first.
        """
        for name, frame, sent in [
            ("binaryMessageReceived", clientFrame(0x2, b"x"), []),
            ("pingReceived", clientFrame(0x9, b"p"), [(0xA, b"p")]),
            ("pongReceived", clientFrame(0xA, b"q"), []),
        ]:

            def fail(*args, name=name):
                raise RuntimeError(name)

            app = RecordingApplication()
            setattr(app, name, fail)
            _, protocol, transport, _, _ = opened(app=app)
            protocol.dataReceived(frame)
            frames = serverFrames(transport.value())
            self.assertEqual([(f.opcode, f.payload) for f in frames], sent + [(0x8, b"\x03\xf3internal error")])
            self.assertTrue(transport.disconnecting)
            self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_coreBugLogged(self):
        """
        An unexpected exception inside the core fails the connection with
        1011, and the Twisted layer logs it through twisted.logger with its
        traceback.
        """

        class BrokenCore(ServerConnection):
            __slots__ = ()

            def _receive_piece(self, *args):
                raise ZeroDivisionError("bug")

        logs = captureLogs(self)
        config = Config()
        connection = WebSocketConnection(
            RecordingApplication(), config, Clock(), lambda now: BrokenCore(config, now=now), _ServerRole(None)
        )
        protocol = StreamWire(connection)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(request() + clientFrame(0x9, b"x"))  # a ping: _receive_piece's
        frames = serverFrames(afterHead(transport.value()))
        self.assertEqual([(f.opcode, f.payload) for f in frames], [(0x8, b"\x03\xf3internal error")])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        failures = [e for e in logs if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertIsInstance(failures[0]["log_failure"].value, ZeroDivisionError)
        self.assertIn("_receive_piece", failures[0]["log_failure"].getTraceback())
        self.assertIn("1011 internal error", formatEvent(failures[0]))


class CloseTests(SynchronousTestCase):
    def test_peerClose(self):
        """
        The peer's close is echoed, the server closes TCP, and the application
        gets exactly one connectionLost with a clean ConnectionClosed.
        """
        _, protocol, transport, app, _ = opened()
        protocol.dataReceived(clientFrame(0x8, struct.pack("!H", 1001) + b"bye"))
        self.assertEqual(transport.value(), b"\x88\x02\x03\xe9")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        protocol.connectionLost(Failure(ConnectionDone()))
        lost = [c for c in app.calls if c[0] == "lost"]
        self.assertEqual(len(lost), 1)
        closed = lost[0][1].value
        self.assertIsInstance(closed, ConnectionClosed)
        self.assertEqual((closed.code, closed.reason, closed.wasClean), (1001, "bye", True))

    def test_freedWithoutCollector(self):
        """
        Once lost, a connection, its wire and its application refer to one
        another no more: they are freed as soon as they are let go, without
        the cyclic garbage collector.
        """
        opened: list[Any] = []
        lost: list[Any] = []

        class Application(WebSocketApplication):
            def connectionOpened(self, transport: Any) -> None:
                opened.append(weakref.ref(self))

            def connectionLost(self, reason: Any) -> None:
                lost.append(reason.value.code)

        factory = WebSocketServerFactory(Application, Config(ping_interval=None), reactor=Clock())
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(request())
        protocol.dataReceived(clientFrame(0x8, struct.pack("!H", 1000)))
        refs = [weakref.ref(protocol), weakref.ref(protocol.connection), opened[0]]
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(lost, [1000])
        self.assertEqual(factory.connections, set())
        enabled = gc.isenabled()
        gc.disable()
        try:
            del protocol
            self.assertEqual([ref() for ref in refs], [None] * len(refs))
        finally:
            if enabled:
                gc.enable()

    def test_drop(self):
        """
        A TCP drop without a closing handshake is reported as 1006, not clean.
        """
        _, protocol, _, app, _ = opened()
        protocol.connectionLost(Failure(ConnectionDone()))
        closed = app.calls[-1][1].value
        self.assertEqual((closed.code, closed.wasClean), (1006, False))

    def test_closeAndTimeout(self):
        """
        close() sends a Close frame; without the peer's answer the transport
        is closed after close_timeout, and aborted after another if the peer
        does not let it close.
        """
        _, protocol, transport, app, clock = opened(Config(close_timeout=5, ping_interval=None))
        protocol.connection.close(4000, "done")
        self.assertEqual(transport.value(), b"\x88\x06\x0f\xa0done")
        self.assertFalse(transport.disconnecting)
        clock.advance(5)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        clock.advance(5)
        self.assertTrue(transport.disconnected)

    def test_closeValidatesCode(self):
        """
        close() with a code that can't be sent raises ValueError.
        """
        _, protocol, _, _, _ = opened()
        for code in (1005, 1006, 1015, 999, 5000):
            self.assertRaises(ValueError, protocol.connection.close, code)

    def test_missingPongFailsConnection(self):
        """
        Without a pong within ping_timeout, the server closes with 1011 and
        drops TCP.
        """
        _, protocol, transport, app, clock = opened(Config(ping_interval=20, ping_timeout=10))
        clock.advance(20)
        self.assertEqual(transport.value()[:1], b"\x89")
        transport.clear()
        clock.advance(10)
        frames = serverFrames(transport.value())
        self.assertEqual(closeCodeOf(frames[-1]), CloseCode.INTERNAL_ERROR)
        self.assertTrue(transport.disconnecting)

    def test_pongKeepsAliveAndMeasures(self):
        """
        A pong to the keepalive ping sets roundTripTime and the next ping
        comes ping_interval later.
        """
        _, protocol, transport, app, clock = opened(Config(ping_interval=20, ping_timeout=10))
        clock.advance(20)
        ping = serverFrames(transport.value())[0]
        transport.clear()
        clock.advance(0.25)
        protocol.dataReceived(clientFrame(0xA, ping.payload))
        self.assertEqual(protocol.connection.roundTripTime, 0.25)
        clock.advance(19.75)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.25)
        self.assertEqual(transport.value()[:1], b"\x89")

    def test_pausedReadingKeepsHealthyPeer(self):
        """
        While the application has paused reading, the peer's pong waits
        unread: the ping timeout does not count, even 100 s later. Once
        reading resumes the pong is read, and keepalive goes on.
        """
        _, protocol, transport, app, clock = opened(Config(ping_interval=20, ping_timeout=10))
        clock.advance(20)
        ping = serverFrames(transport.value())[0]
        transport.clear()
        clock.advance(1)
        protocol.connection.pauseReading()
        protocol.dataReceived(clientFrame(0xA, ping.payload))
        clock.advance(100)
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)
        protocol.connection.resumeReading()
        self.assertEqual(app.calls[-1], ("pong", ping.payload))
        self.assertIsNotNone(protocol.connection.roundTripTime)
        clock.advance(19.9)
        self.assertEqual(transport.value(), b"")
        clock.advance(0.1)
        self.assertEqual(transport.value()[:1], b"\x89")
        self.assertFalse(transport.disconnecting)

    def test_backlogKeepsHealthyPeer(self):
        """
        While reading is paused for a backlog of unfinished messages, the
        ping timeout does not count either.
        """
        app = RecordingApplication()
        pending = slowHandlers(app)
        _, protocol, transport, _, clock = opened(
            Config(ping_interval=20, ping_timeout=10, max_pending_messages=1), app=app
        )
        clock.advance(20)
        ping = serverFrames(transport.value())[0]
        transport.clear()
        protocol.dataReceived(clientFrame(0x1, b"1") + clientFrame(0x1, b"2") + clientFrame(0xA, ping.payload))
        self.assertEqual(transport.producerState, "paused")
        clock.advance(100)
        self.assertFalse(transport.disconnecting)
        for d in pending:
            d.callback(None)
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(app.calls[-1], ("pong", ping.payload))
        clock.advance(15)
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)

    def test_peerNotReadingStillTimesOut(self):
        """
        When reading stops because the peer does not read what we write,
        the ping timeout still counts.
        """
        _, protocol, transport, _, clock = opened(
            Config(ping_interval=20, ping_timeout=10, write_buffer_timeout=None)
        )
        protocol.pauseProducing()
        clock.advance(20)
        self.assertEqual(transport.value()[:1], b"\x89")
        clock.advance(10)
        frames = serverFrames(transport.value())
        self.assertEqual(closeCodeOf(frames[-1]), CloseCode.INTERNAL_ERROR)
        self.assertTrue(transport.disconnecting)

    def test_keepaliveWithoutPingTimeout(self):
        """
        With ping_timeout=None, a ping goes out every ping_interval even when
        none is answered.
        """
        _, _, transport, _, clock = opened(Config(ping_interval=20, ping_timeout=None))
        for n in range(1, 4):
            clock.advance(20)
            self.assertEqual(transport.value(), b"\x89\x02" + struct.pack("!H", n))
            transport.clear()
        self.assertFalse(transport.disconnecting)

    def test_closedLogLine(self):
        """
        The line logged on close gives the peer, the path, the code, whether
        it was clean, the reason, the subprotocol and the duration.
        """
        logs = captureLogs(self)
        _, protocol, _, _, _ = serve(Config(subprotocols=("chat",)))
        protocol.dataReceived(request(extra="Sec-WebSocket-Protocol: chat\r\n"))
        protocol.dataReceived(clientFrame(0x8, struct.pack("!H", 1001) + b"bye"))
        protocol.connectionLost(Failure(ConnectionDone()))
        lines = [formatEvent(e) for e in logs if formatEvent(e).startswith("closed ")]
        self.assertEqual(len(lines), 1)
        self.assertRegex(
            lines[0],
            r"^closed 192\.168\.1\.1:54321 /chat code=1001 clean=True reason='bye' subprotocol=chat"
            r" after \d+\.\ds$",
        )

    def test_idleTimeout(self):
        """
        With idle_timeout, a connection that receives nothing for that long
        is closed with 1001.
        """
        _, protocol, transport, _, clock = opened(Config(idle_timeout=30, ping_interval=None))
        clock.advance(29)
        protocol.dataReceived(clientFrame(0x9, b""))
        transport.clear()
        clock.advance(29)
        self.assertEqual(transport.value(), b"")
        clock.advance(1)
        self.assertEqual(closeCodeOf(serverFrames(transport.value())[0]), CloseCode.GOING_AWAY)


class FlowControlTests(SynchronousTestCase):
    def test_backlogPausesReading(self):
        """
        When handlers return unfired Deferreds past max_pending_messages, the
        transport stops reading and messages wait in the core; it resumes
        once half of them have fired.
        """
        app = RecordingApplication()
        pending = slowHandlers(app)
        _, protocol, transport, _, _ = opened(Config(max_pending_messages=4), app=app)
        protocol.dataReceived(b"".join(clientFrame(0x1, b"m%d" % i) for i in range(10)))
        self.assertEqual(len(pending), 5)
        self.assertEqual(transport.producerState, "paused")
        for d in pending[:2]:
            d.callback(None)
        self.assertEqual(transport.producerState, "paused")
        pending[2].callback(None)
        # Reading resumed: the waiting messages were delivered, up to the
        # high-water mark again.
        self.assertEqual(len(pending), 8)
        self.assertEqual(transport.producerState, "paused")
        while transport.producerState == "paused":
            next(d for d in pending if not d.called).callback(None)
        self.assertEqual([c[1] for c in app.calls if c[0] == "text"][-1], "m9")

    def test_applicationPause(self):
        """
        pauseReading stops delivery and reading; resumeReading delivers what
        was waiting.
        """
        _, protocol, transport, app, _ = opened()
        protocol.connection.pauseReading()
        self.assertEqual(transport.producerState, "paused")
        protocol.dataReceived(clientFrame(0x1, b"a") + clientFrame(0x1, b"b"))
        self.assertNotIn("text", app.kinds())
        protocol.connection.resumeReading()
        self.assertEqual([c[1] for c in app.calls if c[0] == "text"], ["a", "b"])
        self.assertEqual(transport.producerState, "producing")

    def test_fullWriteBufferPausesReading(self):
        """
        When the transport's write buffer is full, the protocol stops reading
        from the peer, and resumes when it drains; whenDrained fires then.
        """
        _, protocol, transport, app, _ = opened()
        protocol.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        drained = protocol.connection.whenDrained()
        self.assertNoResult(drained)
        protocol.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        self.assertIsNone(self.successResultOf(drained))
        self.assertIsNone(self.successResultOf(protocol.connection.whenDrained()))

    def test_slowConsumerDroppedPastLimit(self):
        """
        Writing more than max_write_buffer to a peer whose buffer is full
        fails the connection with 1008 and aborts it.
        """
        _, protocol, transport, app, _ = opened(Config(max_write_buffer=1000))
        protocol.pauseProducing()
        protocol.connection.sendBinary(b"x" * 600)
        self.assertFalse(transport.disconnecting)
        protocol.connection.sendBinary(b"x" * 600)
        self.assertTrue(transport.disconnected)
        protocol.connectionLost(Failure(ConnectionDone()))
        closed = app.calls[-1][1].value
        self.assertEqual((closed.code, closed.wasClean), (1008, False))

    def test_slowConsumerDroppedAfterTimeout(self):
        """
        A peer that keeps the write buffer full for write_buffer_timeout is
        dropped with 1008.
        """
        _, protocol, transport, app, clock = opened(Config(write_buffer_timeout=30, ping_interval=None))
        protocol.pauseProducing()
        clock.advance(29)
        self.assertFalse(transport.disconnected)
        clock.advance(1)
        self.assertTrue(transport.disconnected)

    def test_streamingProducer(self):
        """
        A registered streaming producer is paused and resumed with the
        transport's write buffer; its writes are binary messages.
        """
        _, protocol, transport, _, _ = opened()
        states = []

        class Producer:
            def pauseProducing(self):
                states.append("pause")

            def resumeProducing(self):
                states.append("resume")

            def stopProducing(self):
                states.append("stop")

        protocol.connection.registerProducer(Producer(), True)
        self.assertRaises(RuntimeError, protocol.connection.registerProducer, Producer(), True)
        protocol.connection.write(b"chunk")
        self.assertEqual(transport.value(), b"\x82\x05chunk")
        protocol.pauseProducing()
        protocol.resumeProducing()
        self.assertEqual(states, ["pause", "resume"])
        protocol.connection.unregisterProducer()


class ShutdownTests(SynchronousTestCase):
    def test_shutdownSendsGoingAway(self):
        """
        factory.shutdown() sends 1001 to open connections, drops opening ones
        and fires once all are gone.
        """
        factory, protocol, transport, app, clock = opened()
        other = factory.buildProtocol(None)
        otherTransport = StringTransport()
        other.makeConnection(otherTransport)
        done = factory.shutdown(grace=5)
        self.assertEqual(closeCodeOf(serverFrames(transport.value())[0]), CloseCode.GOING_AWAY)
        self.assertTrue(otherTransport.disconnected)
        other.connectionLost(Failure(ConnectionDone()))
        self.assertNoResult(done)
        protocol.dataReceived(clientFrame(0x8, struct.pack("!H", 1001)))
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(factory.connections, set())

    def test_shutdownAbortsAfterGrace(self):
        """
        Connections still there after the grace period are aborted.
        """
        factory, protocol, transport, app, clock = opened(Config(ping_interval=None))
        done = factory.shutdown(grace=5)
        clock.advance(5)
        self.assertTrue(transport.disconnected)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.successResultOf(done)


class SharedTimerTests(SynchronousTestCase):
    """
    The connections on one clock share one delayed call for their
    deadlines.
    """

    def test_oneDelayedCall(self):
        """
        However many connections are open, the clock holds one delayed
        call for their keepalive deadlines.
        """
        clock = Clock()
        for _ in range(20):
            opened(Config(ping_interval=20.0), clock=clock)
        self.assertEqual(len(clock.getDelayedCalls()), 1)

    def test_deadlinesFireInTurn(self):
        """
        Each connection's keepalive ping goes out at its own deadline.
        """
        clock = Clock()
        _, _, early, _, _ = opened(Config(ping_interval=5.0), clock=clock)
        _, _, late, _, _ = opened(Config(ping_interval=7.0), clock=clock)
        clock.advance(5)
        self.assertEqual(early.value()[:1], b"\x89")
        self.assertEqual(late.value(), b"")
        clock.advance(2)
        self.assertEqual(late.value()[:1], b"\x89")

    def test_sameDeadline(self):
        """
        Owners waiting for the same deadline all fire (entries are ordered
        by deadline alone, never by owner), and an entry is one small
        object with no C{__dict__}.
        """
        clock = Clock()
        timer = sharedTimer(clock)
        fired = []

        class Owner:
            def _timerFired(self):
                fired.append(self)

        owners = [Owner() for _ in range(5)]
        entries = [timer.schedule(3.0, owner) for owner in owners]
        timer.schedule(1.0, owners[0])
        self.assertFalse(hasattr(entries[0], "__dict__"))
        clock.advance(1)
        self.assertEqual(fired, [owners[0]])
        clock.advance(2)
        self.assertEqual(sorted(map(id, fired[1:])), sorted(map(id, owners)))

    def test_closedConnectionsLeaveNothing(self):
        """
        Once every connection is gone, the clock holds no delayed call and
        nothing refers to the protocols any more.
        """
        clock = Clock()
        protocols = []
        for _ in range(3):
            _, protocol, _, _, _ = opened(Config(ping_interval=20.0), clock=clock)
            protocols.append(weakref.ref(protocol))
            protocol.connectionLost(Failure(ConnectionDone()))
            del protocol
        gc.collect()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual([ref() for ref in protocols], [None, None, None])

    def test_closedConnectionSkipped(self):
        """
        A connection lost before its deadline is not woken at that
        deadline; the others still are.
        """
        clock = Clock()
        _, gone, goneTransport, _, _ = opened(Config(ping_interval=5.0), clock=clock)
        _, _, transport, _, _ = opened(Config(ping_interval=5.0), clock=clock)
        gone.connectionLost(Failure(ConnectionDone()))
        clock.advance(5)
        self.assertEqual(goneTransport.value(), b"")
        self.assertEqual(transport.value()[:1], b"\x89")

    def test_attributesSetAtConstruction(self):
        """
        Every attribute a connection sets over its life is set in its
        constructor already, so that all connections share one table of
        attribute names (an idle connection then costs a few hundred bytes
        less).
        """
        clock = Clock()
        app = RecordingApplication()
        factory = WebSocketServerFactory(lambda: app, Config(ping_interval=5.0), reactor=clock)
        protocol = factory.buildProtocol(None)
        names = set(vars(protocol))
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(request())
        protocol.dataReceived(clientFrame(0x1, b"hello"))
        protocol.connection.sendText("hi")
        protocol.connection.pauseReading()
        protocol.connection.resumeReading()
        protocol.pauseProducing()
        protocol.connection.whenDrained()
        protocol.resumeProducing()
        clock.advance(5)
        protocol.connection.close(1000, "bye")
        protocol.dataReceived(clientFrame(0x8, struct.pack("!H", 1000)))
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(set(vars(protocol)) - names, set())

    def test_failingTimerIsolated(self):
        """
        A connection whose timer fails is logged; the other connections'
        timers still fire, and later ones are still scheduled.
        """
        clock = Clock()
        _, _, transport, _, _ = opened(Config(ping_interval=5.0), clock=clock)
        _, _, later, _, _ = opened(Config(ping_interval=9.0), clock=clock)

        class Broken:
            def _timerFired(self):
                raise RuntimeError("boom")

        sharedTimer(clock).schedule(5.0, Broken())
        clock.advance(5)
        self.assertEqual(transport.value()[:1], b"\x89")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        clock.advance(4)
        self.assertEqual(later.value()[:1], b"\x89")


class IdleStateTests(SynchronousTestCase):
    """
    What an open connection that has done nothing yet holds (see
    L{tests.test_idlememory} for the bytes).
    """

    def test_noFlowObjects(self):
        """
        The flow objects are made at their first use: an open connection
        that never paused has none; pausing makes the inbound one.
        """
        _, protocol, _, _, _ = opened()
        connection = protocol.connection
        self.assertIsNone(connection._inflow)
        self.assertIsNone(connection._outflow)
        connection.pauseReading()
        self.assertTrue(connection._inflow.paused)
        self.assertTrue(connection.whenDrained().called)
        self.assertIsNone(connection._outflow)

    def test_applicationSlots(self):
        """
        L{WebSocketApplication} keeps C{transport} in a slot, L{None} until
        set; L{EchoApplication <wsproto_tw.apps.EchoApplication>} has no
        instance dict; a subclass without C{__slots__} has one, as before.
        """
        from wsproto_tw.apps import EchoApplication

        class Mine(WebSocketApplication):
            pass

        app = Mine()
        self.assertIsNone(app.transport)
        app.other = 1
        app.transport = "t"
        self.assertEqual((app.transport, app.other), ("t", 1))
        self.assertRaises(AttributeError, getattr, app, "missing")
        echo = EchoApplication()
        self.assertIsNone(echo.transport)
        self.assertFalse(hasattr(echo, "__dict__"))
        self.assertIsNotNone(weakref.ref(echo)())

    def test_applicationAttributesPlain(self):
        """
        L{WebSocketApplication} has no C{__getattr__} (every attribute read
        on an application would take the slow way): C{transport} is
        L{None} from construction, whatever a subclass's C{__init__} takes
        or leaves out, and alongside a base class whose C{__new__} takes
        the constructor's arguments.
        """

        class Mine(WebSocketApplication):
            __slots__ = ("n",)

            def __init__(self, n):
                self.n = n

        class Base:
            def __new__(cls, n):
                self = super().__new__(cls)
                self.given = n
                return self

        class Mixed(WebSocketApplication, Base):
            pass

        self.assertNotIn("__getattr__", vars(WebSocketApplication))
        self.assertEqual((Mine(1).transport, Mine(1).n), (None, 1))
        mixed = Mixed(7)
        self.assertEqual((mixed.transport, mixed.given), (None, 7))
        self.assertRaises(AttributeError, getattr, Mine(1), "missing")
