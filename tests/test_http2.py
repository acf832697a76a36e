"""
WebSocket over HTTP/2 (RFC 8441), server side, over real loopback TLS
sockets: L{wsproto_tw.http2} behind a L{WebSocketSite} built with
C{http2=True}, driven by an C{h2}-based client that opens WebSockets with
extended CONNECT. The certificates are generated when the tests run.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import SSL4ClientEndpoint, SSL4ServerEndpoint
from twisted.internet.interfaces import IProtocolNegotiationFactory
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.protocols.policies import WrappingFactory
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.static import Data, File
from zope.interface import implementer

from tests.helpers import clientFrame, closePayload, parseFrames
from tests.interop.exchange import EchoRecorder, InteropTestCase
from tests.interop.exchange import config as interopConfig
from tests.interop.plan import SUBPROTOCOL, messages
from tests.interop.tools import CHROMIUM_FLAGS, HERE
from tests.test_tls import Collector, echoRoundTrip, selfSignedCertificate
from tests.tools import protocolsGone, serverTLS, trustingTLS
from wsproto_tw.apps import EchoApplication
from wsproto_tw.client import connectWebSocket
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.http2 import H2StreamWire
from wsproto_tw.resource import WebSocketResource, WebSocketSite
from wsproto_tw.server import Accept, WebSocketApplication

TEXT, BINARY, CLOSE, PING = 0x1, 0x2, 0x8, 0x9


@implementer(IProtocolNegotiationFactory)
class TrackingFactory(WrappingFactory):
    """
    Tracks the server's connections, and declares the ALPN protocols of
    the factory it wraps (which a plain L{WrappingFactory} hides).
    """

    def acceptableProtocols(self) -> list[bytes]:
        return self.wrappedFactory.acceptableProtocols()


class H2WebSocketClient(Protocol):
    """
    An HTTP/2 client over C{h2} that opens WebSockets with extended CONNECT
    (RFC 8441) and sends and reads raw WebSocket frames on their streams.

    @ivar settings: a Deferred firing once the server's SETTINGS arrived.
    @ivar streams: stream id to a L{ClientStream}.
    @ivar terminated: a Deferred firing with the server's GOAWAY event.
    """

    def __init__(self, acknowledge: bool = True) -> None:
        self.settings: Deferred = Deferred()
        self.terminated: Deferred = Deferred()
        self.lost: Deferred = Deferred()
        self.streams: dict[int, ClientStream] = {}
        self.acknowledge = acknowledge

    def connectionMade(self) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.h2.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)

    def request(self, headers: list[tuple[str, str]], endStream: bool = False) -> ClientStream:
        """
        Send a request's HEADERS on a new stream.
        """
        streamID = self.h2.get_next_available_stream_id()
        stream = self.streams[streamID] = ClientStream(self, streamID)
        self.h2.send_headers(streamID, headers, end_stream=endStream)
        self.flush()
        return stream

    def openWebSocket(self, path: str = "/ws", headers: list[tuple[str, str]] = ()) -> ClientStream:
        """
        Send an extended CONNECT for a WebSocket at C{path}.
        """
        return self.request(
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "https"),
                (":path", path),
                (":authority", "localhost"),
                ("sec-websocket-version", "13"),
                *headers,
            ]
        )

    def dataReceived(self, data: bytes) -> None:
        import h2.events

        for event in self.h2.receive_data(data):
            stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, h2.events.RemoteSettingsChanged) and not self.settings.called:
                self.remoteSettings = dict(self.h2.remote_settings.items())
                self.settings.callback(self.remoteSettings)
            elif isinstance(event, h2.events.ResponseReceived) and stream is not None:
                stream.response.callback(event.headers)
            elif isinstance(event, h2.events.DataReceived) and stream is not None:
                stream.dataReceived(event.data, event.flow_controlled_length)
            elif isinstance(event, h2.events.StreamEnded) and stream is not None:
                stream.ended.callback("ended")
            elif isinstance(event, h2.events.StreamReset) and stream is not None:
                if not stream.ended.called:
                    stream.ended.callback(("reset", event.error_code))
            elif isinstance(event, h2.events.ConnectionTerminated):
                if not self.terminated.called:
                    self.terminated.callback(event)
        self.flush()

    def connectionLost(self, reason: Any) -> None:
        if not self.terminated.called:
            self.terminated.callback(None)
        self.lost.callback(None)


class ClientStream:
    """
    One stream of an L{H2WebSocketClient}: its response, its data, its end.
    """

    def __init__(self, client: H2WebSocketClient, streamID: int) -> None:
        self.client = client
        self.streamID = streamID
        self.response: Deferred = Deferred()
        self.ended: Deferred = Deferred()
        self.data = b""
        self.unacknowledged = 0
        self._frames: list[tuple[int, bytes, bool, int]] = []
        self._waiting: list[tuple[int, Deferred]] = []

    def dataReceived(self, data: bytes, length: int) -> None:
        self.data += data
        if self.client.acknowledge:
            self.client.h2.acknowledge_received_data(length, self.streamID)
        else:
            self.unacknowledged += length
        self._check()

    def acknowledge(self) -> None:
        """
        Open the window by what arrived unacknowledged.
        """
        self.client.h2.acknowledge_received_data(self.unacknowledged, self.streamID)
        self.unacknowledged = 0
        self.client.flush()

    def frames(self) -> list[tuple[int, bytes, bool, int]]:
        """
        @return: the complete frames received so far.
        """
        frames = []
        data = self.data
        while data:
            try:
                [frame] = parseFrames(data[: _frameLength(data)])
            except (ValueError, struct.error):
                break
            frames.append(frame)
            data = data[_frameLength(data) :]
        return frames

    def nextFrames(self, count: int) -> Deferred:
        """
        @return: a Deferred firing with the first C{count} frames received.
        """
        d: Deferred = Deferred()
        self._waiting.append((count, d))
        self._check()
        return d

    def _check(self) -> None:
        frames = self.frames()
        for entry in list(self._waiting):
            count, d = entry
            if len(frames) >= count:
                self._waiting.remove(entry)
                d.callback(frames[:count])

    def send(self, data: bytes, endStream: bool = False) -> None:
        self.client.h2.send_data(self.streamID, data, end_stream=endStream)
        self.client.flush()

    def end(self) -> None:
        self.client.h2.end_stream(self.streamID)
        self.client.flush()


def _frameLength(data: bytes) -> int:
    """
    @return: the length of the server frame that C{data} starts with.
    """
    n = data[1] & 0x7F
    head = 2
    if n == 126:
        n, head = struct.unpack_from("!H", data, 2)[0], 4
    elif n == 127:
        n, head = struct.unpack_from("!Q", data, 2)[0], 10
    return head + n


def deflateFrame(text: bytes) -> bytes:
    """
    A masked, compressed text frame (RFC 7692 §7.2.1), RSV1 set.
    """
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert payload.endswith(b"\x00\x00\xff\xff")
    return clientFrame(TEXT, payload[:-4], rsv=4)


def inflate(payload: bytes) -> bytes:
    return zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")


class Recorder(WebSocketApplication):
    """
    Records every call the connection makes on its application, with what
    an application sees of the transport: a way to compare HTTP/1.1 and
    HTTP/2.
    """

    instances: list[Recorder] = []

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.lost: Deferred = Deferred()
        Recorder.instances.append(self)

    def requestReceived(self, request: Any) -> Any:
        self.request = request
        self.calls.append(("requestReceived", request.path, request.query, request.subprotocols, request.origin))
        return Accept(subprotocol="chat" if "chat" in request.subprotocols else None)

    def connectionOpened(self, transport: Any) -> None:
        self.calls.append(("connectionOpened", transport.subprotocol, transport.extensions))

    def textMessageReceived(self, text: str) -> None:
        self.calls.append(("text", text))
        self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.calls.append(("binary", data))
        self.transport.sendBinary(data)

    def pingReceived(self, payload: bytes) -> None:
        self.calls.append(("ping", payload))

    def connectionLost(self, reason: Any) -> None:
        closed = reason.value
        self.calls.append(("connectionLost", type(closed).__name__, closed.code, closed.reason, closed.wasClean))
        self.lost.callback(closed)


class HTTP2ServerMixin:
    """
    A L{WebSocketSite} with C{http2=True} over TLS on loopback: a page at
    C{/}, a WebSocket resource at C{/ws}.
    """

    timeout = 60
    config = Config(compression=PerMessageDeflate(), subprotocols=())
    maxStreams = 100
    applicationFactory: Any = EchoApplication

    @inlineCallbacks
    def startServer(self) -> Any:
        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        self.certPath = certPath
        # No acceptableProtocols: the site declares them, as under twistd.
        options = serverTLS(keyPath, certPath)
        root = Resource()
        root.putChild(b"", Data(b"home", "text/plain"))
        self.resource = WebSocketResource(self.applicationFactory, self.config, reactor)
        root.putChild(b"ws", self.resource)
        self.site = WebSocketSite(root, self.config, reactor, http2=True, http2MaxStreams=self.maxStreams)
        self.tracked = TrackingFactory(self.site)
        self.port = yield SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1").listen(self.tracked)
        self.addCleanup(self.port.stopListening)
        self.addCleanup(protocolsGone, self, self.tracked)
        self.portNumber = self.port.getHost().port

    def clientTLS(self, protocols: list[bytes] | None) -> Any:
        return trustingTLS(self.certPath, protocols)

    @inlineCallbacks
    def h2Client(self, acknowledge: bool = True) -> Any:
        """
        @return: a Deferred firing with a connected L{H2WebSocketClient}
            once the server's SETTINGS arrived.
        """
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", self.portNumber, self.clientTLS([b"h2", b"http/1.1"]))
        client = H2WebSocketClient(acknowledge)
        yield endpoint.connect(Factory.forProtocol(lambda: client))
        self.addCleanup(self.closeClient, client)
        yield client.settings
        return client

    @inlineCallbacks
    def closeClient(self, client: H2WebSocketClient) -> Any:
        if not client.lost.called:
            client.transport.loseConnection()
            lost: Deferred = Deferred()
            client.lost.addCallback(lost.callback)
            yield lost


class ExtendedConnectTests(HTTP2ServerMixin, TestCase):
    """
    WebSockets over HTTP/2 streams: the handshake, messages both ways,
    compression, the close, many streams on one connection, and pages on
    the same connection.
    """

    def setUp(self) -> Any:
        return self.startServer()

    @inlineCallbacks
    def test_settingsAndALPN(self) -> Any:
        """
        The site negotiates C{h2} by ALPN and its first SETTINGS allow
        extended CONNECT (RFC 8441 §3) and bound the streams.
        """
        from h2.settings import SettingCodes

        client = yield self.h2Client()
        self.assertEqual(client.transport.negotiatedProtocol, b"h2")
        settings = client.remoteSettings
        self.assertEqual(settings[SettingCodes.ENABLE_CONNECT_PROTOCOL], 1)
        self.assertEqual(settings[SettingCodes.MAX_CONCURRENT_STREAMS], 100)

    @inlineCallbacks
    def test_textAndBinaryEcho(self) -> Any:
        """
        An extended CONNECT gets C{200} without C{sec-websocket-accept},
        and its stream stays open: a text and a binary message come back.
        """
        client = yield self.h2Client()
        stream = client.openWebSocket()
        headers = dict((yield stream.response))
        self.assertEqual(headers[b":status"], b"200")
        self.assertNotIn(b"sec-websocket-accept", headers)
        stream.send(clientFrame(TEXT, "héllo".encode()) + clientFrame(BINARY, b"\x00\xff"))
        frames = yield stream.nextFrames(2)
        self.assertEqual([(op, payload) for op, payload, _, _ in frames], [(TEXT, "héllo".encode()), (BINARY, b"\x00\xff")])
        self.assertFalse(stream.ended.called)

    @inlineCallbacks
    def test_fragmented(self) -> Any:
        """
        A message in three fragments arrives whole and comes back.
        """
        client = yield self.h2Client()
        stream = client.openWebSocket()
        yield stream.response
        stream.send(clientFrame(TEXT, b"ab", fin=False))
        stream.send(clientFrame(0x0, b"cd", fin=False) + clientFrame(0x0, b"ef"))
        [frame] = yield stream.nextFrames(1)
        self.assertEqual(frame[:2], (TEXT, b"abcdef"))

    @inlineCallbacks
    def test_compressed(self) -> Any:
        """
        permessage-deflate is negotiated as over HTTP/1.1: the answer names
        it, a compressed message is inflated, and the echo comes back
        compressed (RSV1).
        """
        client = yield self.h2Client()
        stream = client.openWebSocket(headers=[("sec-websocket-extensions", "permessage-deflate")])
        headers = dict((yield stream.response))
        self.assertTrue(headers[b"sec-websocket-extensions"].startswith(b"permessage-deflate"))
        stream.send(deflateFrame(b"squeeze me " * 20))
        [(opcode, payload, fin, rsv)] = yield stream.nextFrames(1)
        self.assertEqual((opcode, fin, rsv), (TEXT, True, 4))
        self.assertEqual(inflate(payload), b"squeeze me " * 20)

    @inlineCallbacks
    def test_clientCloses(self) -> Any:
        """
        The client's Close is answered with a Close, then the server ends
        the stream (END_STREAM), and the connection stays up for more.
        """
        client = yield self.h2Client()
        stream = client.openWebSocket()
        yield stream.response
        stream.send(clientFrame(CLOSE, closePayload(1000, b"bye")))
        [(opcode, payload, _, _)] = yield stream.nextFrames(1)
        self.assertEqual((opcode, payload), (CLOSE, struct.pack("!H", 1000)))
        self.assertEqual((yield stream.ended), "ended")
        # The connection carries on.
        other = client.openWebSocket()
        yield other.response
        other.send(clientFrame(TEXT, b"again"))
        [frame] = yield other.nextFrames(1)
        self.assertEqual(frame[:2], (TEXT, b"again"))

    @inlineCallbacks
    def test_hundredWebSockets(self) -> Any:
        """
        100 WebSockets share one HTTP/2 connection, each echoing its own
        messages.
        """
        client = yield self.h2Client()
        streams = [client.openWebSocket(f"/ws/{i}") for i in range(100)]
        for stream in streams:
            self.assertEqual(dict((yield stream.response))[b":status"], b"200")
        for i, stream in enumerate(streams):
            stream.send(clientFrame(TEXT, f"message {i}".encode()))
        for i, stream in enumerate(streams):
            [frame] = yield stream.nextFrames(1)
            self.assertEqual(frame[:2], (TEXT, f"message {i}".encode()))
        self.assertEqual(len(self.resource.webSocketFactory.connections), 100)

    @inlineCallbacks
    def test_pagesOnTheSameConnection(self) -> Any:
        """
        An ordinary GET is served by C{twisted.web} over the same HTTP/2
        connection as a WebSocket, and a missing page gets C{404}.
        """
        client = yield self.h2Client()
        ws = client.openWebSocket()
        yield ws.response
        for path, status, body in (("/", b"200", b"home"), ("/missing", b"404", None)):
            page = client.request(
                [(":method", "GET"), (":scheme", "https"), (":path", path), (":authority", "localhost")],
                endStream=True,
            )
            headers = dict((yield page.response))
            yield page.ended
            self.assertEqual(headers[b":status"], status)
            if body is not None:
                self.assertEqual(page.data, body)
        ws.send(clientFrame(TEXT, b"still here"))
        [frame] = yield ws.nextFrames(1)
        self.assertEqual(frame[:2], (TEXT, b"still here"))

    @inlineCallbacks
    def test_getToTheWebSocketResource(self) -> Any:
        """
        A GET for the WebSocket resource over HTTP/2 gets C{405} with
        C{allow: CONNECT}.
        """
        client = yield self.h2Client()
        page = client.request(
            [(":method", "GET"), (":scheme", "https"), (":path", "/ws"), (":authority", "localhost")], endStream=True
        )
        headers = dict((yield page.response))
        yield page.ended
        self.assertEqual((headers[b":status"], headers[b"allow"]), (b"405", b"CONNECT"))

    @inlineCallbacks
    def test_http11OnTheSamePort(self) -> Any:
        """
        HTTP/1.1 upgrades still work on the port: from a client offering
        only C{http/1.1} by ALPN, and from one offering none.
        """
        for offered in ([b"http/1.1"], None):
            endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", self.portNumber, self.clientTLS(offered))
            application = Collector()
            opening = connectWebSocket(endpoint, f"wss://localhost:{self.portNumber}/ws", lambda: application)
            negotiated = []
            yield echoRoundTrip(self, opening, application, lambda p: negotiated.append(p.transport.negotiatedProtocol))
            self.assertEqual(negotiated, [offered[0] if offered else None])


class RefusalTests(HTTP2ServerMixin, TestCase):
    """
    What is not a WebSocket over HTTP/2 gets the right status or error.
    """

    config = Config(allowed_origins=frozenset({"https://good.example"}), open_timeout=0.5)
    maxStreams = 3

    def setUp(self) -> Any:
        return self.startServer()

    @inlineCallbacks
    def refused(self, headers: list[tuple[str, str]]) -> Any:
        client = yield self.h2Client()
        stream = client.request(headers)
        response = dict((yield stream.response))
        yield stream.ended
        return response[b":status"], stream.data

    @inlineCallbacks
    def test_connectWithoutProtocol(self) -> Any:
        """
        A CONNECT without C{:protocol} asks for a tunnel (RFC 9113 §8.5):
        C{501}.
        """
        status, body = yield self.refused([(":method", "CONNECT"), (":authority", "example.com:443")])
        self.assertEqual(status, b"501")
        self.assertEqual(body, b"connect without :protocol opens a tunnel; this server is not a proxy\n")

    @inlineCallbacks
    def test_otherProtocol(self) -> Any:
        """
        An extended CONNECT for another protocol than C{websocket} gets
        C{501}.
        """
        status, body = yield self.refused(
            [(":method", "CONNECT"), (":protocol", "webtransport"), (":scheme", "https"), (":path", "/ws"),
             (":authority", "localhost")]
        )
        self.assertEqual((status, body), (b"501", b"protocol webtransport is not supported here; websocket is\n"))

    @inlineCallbacks
    def test_forbiddenOrigin(self) -> Any:
        """
        The Origin rule of HTTP/1.1 applies: C{403}, and the stream ends.
        """
        client = yield self.h2Client()
        stream = client.openWebSocket(headers=[("origin", "https://evil.example")])
        response = dict((yield stream.response))
        self.assertEqual(response[b":status"], b"403")
        self.assertEqual((yield stream.ended), "ended")
        self.assertEqual(stream.data, b"origin https://evil.example is not allowed\n")

    @inlineCallbacks
    def test_wrongVersion(self) -> Any:
        """
        Another WebSocket version gets C{426} and C{sec-websocket-version:
        13}.
        """
        client = yield self.h2Client()
        stream = client.request(
            [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/ws"),
             (":authority", "localhost"), ("sec-websocket-version", "8")]
        )
        response = dict((yield stream.response))
        self.assertEqual((response[b":status"], response[b"sec-websocket-version"]), (b"426", b"13"))

    @inlineCallbacks
    def test_tooManyStreams(self) -> Any:
        """
        A peer that opens more streams than C{SETTINGS_MAX_CONCURRENT_STREAMS}
        allows gets a connection error (GOAWAY, C{PROTOCOL_ERROR}).
        """
        from h2.errors import ErrorCodes

        client = yield self.h2Client()
        streams = [client.openWebSocket() for _ in range(3)]
        for stream in streams:
            yield stream.response
        # Past the limit the client's h2 would refuse: raise it there.
        client.h2.remote_settings.max_concurrent_streams = 10
        client.h2.remote_settings.acknowledge()
        client.openWebSocket()
        event = yield client.terminated
        self.assertEqual(event.error_code, ErrorCodes.PROTOCOL_ERROR)
        yield client.lost

    @inlineCallbacks
    def test_flowControlIgnored(self) -> Any:
        """
        A peer sending more than the stream's window gets a connection
        error (GOAWAY, C{FLOW_CONTROL_ERROR}).
        """
        from h2.errors import ErrorCodes
        from hyperframe.frame import DataFrame

        # Reading waits while the application decides: nothing is
        # acknowledged. Send past the window, behind h2's back.
        self.resource.applicationFactory = Undecided
        client = yield self.h2Client()
        stream = client.openWebSocket()
        for _ in range(5):
            frame = DataFrame(stream.streamID)
            frame.data = b"\x00" * 16384
            client.transport.write(frame.serialize())
        event = yield client.terminated
        self.assertEqual(event.error_code, ErrorCodes.FLOW_CONTROL_ERROR)
        yield client.lost

    @inlineCallbacks
    def test_tooManyHeaderFields(self) -> Any:
        """
        A request with more header fields than C{Config.max_headers} gets
        C{431}.
        """
        fields = [(f"x-field-{i}", "1") for i in range(self.config.max_headers + 1)]
        status, body = yield self.refused(
            [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "localhost"), *fields]
        )
        self.assertEqual((status, body), (b"431", b"more than 100 header fields\n"))

    @inlineCallbacks
    def test_headerListTooLarge(self) -> Any:
        """
        A header block larger than C{Config.max_head_size} (advertised as
        C{SETTINGS_MAX_HEADER_LIST_SIZE}) is a connection error.
        """
        from h2.settings import SettingCodes

        client = yield self.h2Client()
        self.assertEqual(client.remoteSettings[SettingCodes.MAX_HEADER_LIST_SIZE], self.config.max_head_size)
        client.openWebSocket(headers=[("x-big", "x" * self.config.max_head_size)])
        event = yield client.terminated
        self.assertIsNotNone(event)
        yield client.lost

    @inlineCallbacks
    def test_rapidReset(self) -> Any:
        """
        A peer that resets streams faster than the channel allows gets
        GOAWAY C{ENHANCE_YOUR_CALM} (the Rapid Reset flood).
        """
        from h2.errors import ErrorCodes

        from wsproto_tw.http2 import HTTP2Channel

        self.patch(HTTP2Channel, "resetBurst", 3)
        self.patch(HTTP2Channel, "resetRate", 0.0)
        client = yield self.h2Client()
        for _ in range(4):
            stream = client.openWebSocket()
            client.h2.reset_stream(stream.streamID)
            client.flush()
        event = yield client.terminated
        self.assertEqual(event.error_code, ErrorCodes.ENHANCE_YOUR_CALM)
        yield client.lost

    @inlineCallbacks
    def test_openDeadline(self) -> Any:
        """
        A request the application does not answer within C{open_timeout}
        gets C{408} on its stream.
        """
        self.resource.applicationFactory = Undecided
        client = yield self.h2Client()
        stream = client.openWebSocket()
        response = dict((yield stream.response))
        self.assertEqual(response[b":status"], b"408")
        self.assertEqual((yield stream.ended), "ended")


class IdleTests(HTTP2ServerMixin, TestCase):
    """
    An HTTP/2 connection without an open stream is closed after the site's
    C{timeout}; an open WebSocket stream keeps it.
    """

    @inlineCallbacks
    def setUp(self) -> Any:
        yield self.startServer()
        self.site.timeOut = 0.3

    @inlineCallbacks
    def test_idleConnectionClosed(self) -> Any:
        """
        With no stream, the server sends GOAWAY C{NO_ERROR} and closes.
        """
        from h2.errors import ErrorCodes

        client = yield self.h2Client()
        event = yield client.terminated
        self.assertEqual(event.error_code, ErrorCodes.NO_ERROR)
        yield client.lost

    @inlineCallbacks
    def test_webSocketKeepsConnection(self) -> Any:
        """
        While a WebSocket stream is open the connection stays; once it
        ends, the idle timeout runs again.
        """
        client = yield self.h2Client()
        stream = client.openWebSocket()
        yield stream.response
        yield deferLater(reactor, 0.6, lambda: None)
        self.assertFalse(client.terminated.called)
        stream.send(clientFrame(TEXT, b"alive"))
        [frame] = yield stream.nextFrames(1)
        self.assertEqual(frame[:2], (TEXT, b"alive"))
        stream.send(clientFrame(CLOSE, closePayload(1000)))
        yield stream.ended
        yield client.terminated
        yield client.lost


class Undecided(WebSocketApplication):
    """
    Never answers the opening request.
    """

    def requestReceived(self, request: Any) -> Deferred:
        return Deferred()


class FlowControlTests(HTTP2ServerMixin, TestCase):
    """
    HTTP/2 flow control and the connection's own, both ways.
    """

    def setUp(self) -> Any:
        return self.startServer()

    @inlineCallbacks
    def test_blockedWindowPausesProducer(self) -> Any:
        """
        A client that does not open its window blocks the stream: the
        application's push producer is paused, and resumed once the client
        acknowledges what it got.
        """
        events: list[str] = []
        producerApps: list[Any] = []

        class Producer:
            def pauseProducing(self) -> None:
                events.append("pause")

            def resumeProducing(self) -> None:
                events.append("resume")

            def stopProducing(self) -> None:
                events.append("stop")

        class Big(WebSocketApplication):
            def connectionOpened(self, transport: Any) -> None:
                producerApps.append(self)
                transport.registerProducer(Producer(), True)
                transport.sendBinary(b"x" * 200000)

        self.resource.applicationFactory = Big
        client = yield self.h2Client(acknowledge=False)
        stream = client.openWebSocket()
        yield stream.response
        for _ in range(200):
            if events and len(stream.data) >= 65535:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(events, ["pause"])
        self.assertEqual(len(stream.data), 65535)
        client.acknowledge = True
        stream.acknowledge()
        [(opcode, payload, _, _)] = yield stream.nextFrames(1)
        self.assertEqual((opcode, len(payload)), (BINARY, 200000))
        self.assertEqual(events, ["pause", "resume"])

    @inlineCallbacks
    def test_pausedReadingWithholdsWindow(self) -> Any:
        """
        While the application has paused reading, what the client sends is
        not acknowledged: the client's window runs out. Once it resumes,
        the window opens and every message arrives.
        """
        received: list[bytes] = []
        apps: list[Any] = []

        class Slow(WebSocketApplication):
            def connectionOpened(self, transport: Any) -> None:
                apps.append(transport)
                transport.pauseReading()

            def binaryMessageReceived(self, data: bytes) -> None:
                received.append(data)

        self.resource.applicationFactory = Slow
        client = yield self.h2Client()
        stream = client.openWebSocket()
        yield stream.response
        message = clientFrame(BINARY, b"y" * 10000)
        for _ in range(6):
            stream.send(message)
        # The seventh does not fit the window the server withholds.
        self.assertLess(client.h2.local_flow_control_window(stream.streamID), len(message))
        yield deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(received, [])
        self.assertLess(client.h2.local_flow_control_window(stream.streamID), len(message))
        apps[0].resumeReading()
        for _ in range(100):
            if len(received) == 6 and client.h2.local_flow_control_window(stream.streamID) >= len(message):
                break
            yield deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(len(received), 6)
        stream.send(message)
        for _ in range(100):
            if len(received) == 7:
                break
            yield deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(len(received), 7)

    @inlineCallbacks
    def test_abortResetsStream(self) -> Any:
        """
        The application's C{abortConnection} resets the stream (RST_STREAM)
        and it hears C{connectionLost}; the connection carries on.
        """
        from h2.errors import ErrorCodes

        transports: list[Any] = []
        applications: list[Any] = []

        class Aborting(WebSocketApplication):
            def connectionOpened(self, transport: Any) -> None:
                transports.append(transport)
                applications.append(self)
                self.lost = Deferred()

            def connectionLost(self, reason: Any) -> None:
                self.lost.callback(reason.value)

        self.resource.applicationFactory = Aborting
        client = yield self.h2Client()
        stream = client.openWebSocket()
        yield stream.response
        self.assertIsInstance(transports[0].wire, H2StreamWire)
        transports[0].abortConnection()
        self.assertEqual((yield stream.ended), ("reset", ErrorCodes.CANCEL))
        closed = yield applications[0].lost
        self.assertEqual((closed.code, closed.wasClean), (1006, False))


class ContractTests(HTTP2ServerMixin, TestCase):
    """
    An application can't tell an HTTP/2 stream from an HTTP/1.1
    connection: the same calls, with the same values, in the same order.
    """

    applicationFactory = Recorder
    config = Config(compression=PerMessageDeflate(), subprotocols=())

    def setUp(self) -> Any:
        Recorder.instances = []
        return self.startServer()

    @inlineCallbacks
    def test_sameCalls(self) -> Any:
        """
        The same exchange (subprotocol and compression offered, a text, a
        binary, a ping, the client's close) over HTTP/1.1 and over HTTP/2
        makes the same calls on the application.
        """
        # HTTP/1.1, through wsproto_tw's client with the same offer.
        from wsproto_tw.core.deflate import PerMessageDeflate as Deflate

        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", self.portNumber, self.clientTLS([b"http/1.1"]))
        application = Collector()
        clientConfig = Config(compression=Deflate(), subprotocols=("other", "chat"))
        protocol = yield connectWebSocket(
            endpoint,
            f"wss://localhost:{self.portNumber}/ws/room?x=1",
            lambda: application,
            config=clientConfig,
            origin="https://good.example",
        )
        protocol.sendText("héllo")
        yield application.next()
        protocol.sendBinary(b"\x00\xff")
        yield application.next()
        protocol.ping(b"p")
        protocol.close(1000, "done")
        yield application.lost
        yield Recorder.instances[0].lost
        # HTTP/2, through the h2 client.
        client = yield self.h2Client()
        stream = client.openWebSocket(
            "/ws/room?x=1",
            headers=[
                ("sec-websocket-protocol", "other, chat"),
                ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"),
                ("origin", "https://good.example"),
            ],
        )
        yield stream.response
        stream.send(deflateFrame("héllo".encode()))
        stream.send(clientFrame(BINARY, b"\x00\xff"))
        stream.send(clientFrame(PING, b"p"))
        stream.send(clientFrame(CLOSE, closePayload(1000, b"done")))
        yield Recorder.instances[1].lost
        http11, http2 = Recorder.instances
        self.assertEqual(http2.calls, http11.calls)
        self.assertEqual(http2.request.method, "CONNECT")
        self.assertEqual(http11.request.method, "GET")
        self.assertEqual(http2.request.peer.host, "127.0.0.1")
        self.assertEqual(http2.calls[0], ("requestReceived", "/ws/room", "x=1", ["other", "chat"], "https://good.example"))


class TapTests(TestCase):
    """
    C{twistd websocket --http2}: the option, and a real C{twistd} serving
    WebSocket over HTTP/2 and HTTP/1.1 on one TLS port.
    """

    timeout = 60

    def test_options(self) -> None:
        """
        C{--http2} builds a L{WebSocketSite} with C{http2=True}, with or
        without C{--path}; C{--http2-max-streams} bounds its streams and
        must be at least 1.
        """
        from twisted.python.usage import UsageError

        from wsproto_tw.tap import Options, _listening

        for extra in ([], ["--path", "/ws"]):
            options = Options()
            options.parseOptions(["--http2", "--http2-max-streams", "7", *extra])
            _, site = _listening(options, options.config(), reactor)
            self.assertIsInstance(site, WebSocketSite)
            self.assertEqual((site.http2, site.http2MaxStreams), (True, 7))
            self.assertEqual(site.acceptableProtocols(), [b"h2", b"http/1.1"])
        options = Options()
        options.parseOptions([])
        factory, listening = _listening(options, options.config(), reactor)
        self.assertIs(factory, listening)
        with self.assertRaises(UsageError) as caught:
            Options().parseOptions(["--http2", "--http2-max-streams", "0"])
        self.assertEqual(str(caught.exception), "--http2-max-streams must be at least 1, not 0")

    def test_withoutH2(self) -> None:
        """
        Without the C{h2} package, C{WebSocketSite(..., http2=True)}
        raises L{ImportError} naming the extra to install, and
        C{--http2} is a usage error.
        """
        import sys
        from unittest import mock

        from twisted.python.usage import UsageError

        from wsproto_tw.tap import Options

        message = "websocket over http/2 needs the h2 package: pip install 'wsproto_tw[http2]'"
        with mock.patch.dict(sys.modules, {"h2": None}):
            with self.assertRaises(ImportError) as caught:
                WebSocketSite(Resource(), http2=True)
            self.assertEqual(str(caught.exception), message)
            with self.assertRaises(UsageError) as usage:
                Options().parseOptions(["--http2"])
            self.assertEqual(str(usage.exception), f"--http2: {message}")
        # Twisted's HTTP/2, which serves the pages, needs priority too.
        with mock.patch.dict(sys.modules, {"priority": None}):
            with self.assertRaises(ImportError) as caught:
                WebSocketSite(Resource(), http2=True)
            self.assertEqual(str(caught.exception), message.replace("the h2 package", "the priority package"))
        WebSocketSite(Resource(), http2=False)

    @inlineCallbacks
    def test_twistd(self) -> Any:
        """
        C{twistd websocket --port ssl:... --http2} negotiates C{h2} with an
        HTTP/2 client and echoes over an extended CONNECT stream, and still
        upgrades an HTTP/1.1 client on the same port.
        """
        from tests.processes import Twistd

        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        twistd = Twistd(self, "--port", f"ssl:0:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}", "--http2")
        [port] = twistd.listening(1)
        tls = trustingTLS(certPath, [b"h2", b"http/1.1"])
        client = H2WebSocketClient()
        yield SSL4ClientEndpoint(reactor, "127.0.0.1", int(port), tls).connect(Factory.forProtocol(lambda: client))
        yield client.settings
        self.assertEqual(client.transport.negotiatedProtocol, b"h2")
        stream = client.openWebSocket("/anywhere")
        self.assertEqual(dict((yield stream.response))[b":status"], b"200")
        stream.send(clientFrame(TEXT, b"over h2"))
        [frame] = yield stream.nextFrames(1)
        self.assertEqual(frame[:2], (TEXT, b"over h2"))
        stream.send(clientFrame(CLOSE, closePayload(1000)))
        yield stream.ended
        client.transport.loseConnection()
        yield client.lost

        tls = trustingTLS(certPath, [b"http/1.1"])
        application = Collector()
        opening = connectWebSocket(
            SSL4ClientEndpoint(reactor, "127.0.0.1", int(port), tls), f"wss://localhost:{port}/ws", lambda: application
        )
        yield echoRoundTrip(self, opening, application)
        log = twistd.stop()
        self.assertEqual(log.count("opened "), 2, log)
        self.assertNotIn("Traceback", log)


class ChromiumTests(InteropTestCase):
    """
    Headless Chromium loads a page over HTTP/2 from a L{WebSocketSite}
    with C{http2=True} and opens C{wss://} to the same origin: the
    WebSocket arrives as an extended CONNECT stream of that connection.
    Node, playwright-core and Chromium are installed if missing.
    """

    timeout = 180

    async def test_chromiumOverHTTP2(self) -> None:
        """
        Chromium runs the interoperability plan with permessage-deflate
        over a stream of the page's HTTP/2 connection, and closes with
        1000; the server saw C{CONNECT} on an L{H2StreamWire} of a
        connection that negotiated C{h2}.
        """
        apps: list[Any] = []
        wires: list[Any] = []

        class Recording(EchoRecorder):
            def connectionOpened(self, transport: Any) -> None:
                wires.append((transport.request.method, type(transport.wire), transport.transport.negotiatedProtocol))
                super().connectionOpened(transport)

        def build() -> Recording:
            app = Recording()
            apps.append(app)
            return app

        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        # No ALPN of their own: the site declares h2 and http/1.1.
        options = serverTLS(keyPath, certPath)
        root = Resource()
        for name in ("page.html", "plan.js"):
            root.putChild(name.encode(), File(str(HERE / name)))
        listening = reactor.listenSSL(0, WebSocketSite(root, http2=True), options, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port
        origin = f"https://127.0.0.1:{port}"
        ours = interopConfig(True, subprotocols=(SUBPROTOCOL,), allowed_origins={origin})
        root.putChild(b"ws", WebSocketResource(build, ours))
        url = f"{origin}/page.html?ws=wss://127.0.0.1:{port}/ws&protocol={SUBPROTOCOL}"
        # The certificate is made for this test: no authority vouches for it.
        browser = self.spawnNode("browser.js", self.tools.chromium, url, *CHROMIUM_FLAGS, "--ignore-certificate-errors")
        verdict = await browser.nextLine("the page's verdict", 90)
        self.assertVerdict(verdict)
        self.assertEqual(verdict["echoed"], len(messages()))
        self.assertEqual(verdict["protocol"], SUBPROTOCOL)
        self.assertExtension(verdict["extensions"], True)
        self.assertEqual((verdict["closeCode"], verdict["wasClean"]), (1000, True))
        self.assertEqual(wires, [("CONNECT", H2StreamWire, b"h2")])
        await self.serverSaw(apps, True, None)
        await browser.stop()


class NodeTests(HTTP2ServerMixin, InteropTestCase):
    """
    Node's built-in C{http2} client as a second peer: WebSockets over
    extended CONNECT streams of one connection.
    """

    timeout = 120

    def setUp(self) -> Any:
        InteropTestCase.setUp(self)  # installs Node if missing
        return self.startServer()

    async def test_nodeHTTP2(self) -> None:
        """
        Node negotiates C{h2}, sees C{enableConnectProtocol}, and on each of
        10 streams gets C{200}, its text, binary and 70000-byte messages
        echoed (past the 64 KiB stream window) and a Close with 1000
        before the stream ends.
        """
        peer = self.spawnNode("http2_peer.js", f"https://127.0.0.1:{self.portNumber}", "/ws", "10")
        verdict = await peer.nextLine("node's verdict", 60)
        self.assertVerdict(verdict)
        self.assertEqual((verdict["alpn"], verdict["enableConnectProtocol"]), ("h2", True))
        self.assertEqual(verdict["results"], [{"status": 200, "echoed": True, "closeCode": 1000}] * 10)
        await peer.stop()


class ClientTests(HTTP2ServerMixin, TestCase):
    """
    L{wsproto_tw.http2.connectHTTP2}: our client over an extended CONNECT
    stream, and its fall back to HTTP/1.1.
    """

    config = Config(
        compression=PerMessageDeflate(), subprotocols=("chat",), allowed_origins=frozenset({"https://good.example"})
    )

    def setUp(self) -> Any:
        return self.startServer()

    @inlineCallbacks
    def test_echoOverHTTP2(self) -> Any:
        """
        Against a site serving WebSocket over HTTP/2, C{connect(...,
        http2=True)} opens a stream (C{h2}, an L{H2StreamWire}) with the subprotocol and
        compression negotiated, echoes a text and a binary message and
        closes cleanly.
        """
        from wsproto_tw.client import connect

        application = Collector()
        opening = connect(
            f"wss://localhost:{self.portNumber}/ws",
            lambda: application,
            config=Config(compression=PerMessageDeflate(), subprotocols=("chat",)),
            origin="https://good.example",
            trustRoot=self.certPath,
            http2=True,
        )
        seen = []
        yield echoRoundTrip(
            self,
            opening,
            application,
            lambda p: seen.append(
                (type(p.wire), p.transport.negotiatedProtocol, p.subprotocol, p.extensions.split(";")[0])
            ),
        )
        self.assertEqual(seen, [(H2StreamWire, b"h2", "chat", "permessage-deflate")])

    @inlineCallbacks
    def test_noDelay(self) -> Any:
        """
        The HTTP/2 client's TCP socket, under TLS, has C{TCP_NODELAY} set,
        as the server's has.
        """
        from tests.test_nodelay import noDelay

        application = Collector()
        seen = []
        yield echoRoundTrip(
            self,
            self.connectH2(application),
            application,
            lambda p: seen.append((noDelay(p.transport), [noDelay(s.transport) for s in self.tracked.protocols])),
        )
        self.assertEqual(seen, [(1, [1])])

    def test_hostChecked(self) -> None:
        """
        The client's HTTP/2 TLS settings check the certificate's host name
        as its HTTP/1.1 ones do (a certificate without C{subjectAltName}
        fails too); with C{insecure}, nothing is checked.
        """
        from wsproto_tw.client import _HostVerifiedTLS, _UnverifiedTLS
        from wsproto_tw.http2 import _alpnTLS

        self.assertIsInstance(_alpnTLS("localhost", self.certPath, False), _HostVerifiedTLS)
        self.assertIsInstance(_alpnTLS("localhost", None, True), _UnverifiedTLS)

    def connectH2(self, application: Any) -> Deferred:
        """
        @return: C{connect(..., http2=True)} to the test's site for
            C{application}, from an allowed origin.
        """
        from wsproto_tw.client import connect

        return connect(
            f"wss://localhost:{self.portNumber}/ws",
            lambda: application,
            origin="https://good.example",
            trustRoot=self.certPath,
            http2=True,
        )

    @inlineCallbacks
    def test_sendsBeforeReading(self) -> Any:
        """
        Over HTTP/2, the client sends three 100 KB binary messages before
        reading any echo: more than a stream's window each way. It keeps
        acknowledging what the server sends while its own writes wait, so
        the echoes come back in order (the server stops reading while its
        writes wait, and would wait for ever on a client that did the
        same), and the connection closes cleanly.
        """
        application = Collector()
        protocol = yield self.connectH2(application)
        self.assertIsInstance(protocol.wire, H2StreamWire)
        payloads = [bytes([i]) * 100_000 for i in range(3)]
        for payload in payloads:
            protocol.sendBinary(payload)
        for payload in payloads:
            # Well under the server's 30 s write timeout, which would drop
            # the stream with 1008 if the client stopped reading.
            received = yield application.next().addTimeout(20, reactor)
            self.assertEqual(received, payload)
        protocol.close(1000, "done")
        closed = yield application.lost
        self.assertEqual((closed.code, closed.wasClean), (1000, True))

    @inlineCallbacks
    def test_abort(self) -> Any:
        """
        The client's C{abortConnection} resets its stream (RST_STREAM
        C{CANCEL}) without raising, although its HTTP/2 connection closes
        with its only stream; both applications hear C{connectionLost}
        (1006).
        """
        serverSide: list[Any] = []

        class Recording(EchoApplication):
            def connectionOpened(self, transport: Any) -> None:
                super().connectionOpened(transport)
                self.lost = Deferred()
                serverSide.append(self)

            def connectionLost(self, reason: Any) -> None:
                super().connectionLost(reason)
                self.lost.callback(reason.value)

        self.resource.applicationFactory = Recording
        application = Collector()
        protocol = yield self.connectH2(application)
        protocol.sendText("before")
        self.assertEqual((yield application.next()), "before")
        protocol.abortConnection()
        closed = yield application.lost
        self.assertEqual((closed.code, closed.wasClean), (1006, False))
        closed = yield serverSide[0].lost
        self.assertEqual((closed.code, closed.wasClean), (1006, False))

    @inlineCallbacks
    def test_rejected(self) -> Any:
        """
        A refusal over HTTP/2 fails the Deferred with
        L{HandshakeRejected}, its status and body.
        """
        from wsproto_tw.errors import HandshakeRejected
        from wsproto_tw.http2 import connectHTTP2

        opening = connectHTTP2(
            f"wss://localhost:{self.portNumber}/ws", Collector, origin="https://evil.example", trustRoot=self.certPath
        )
        error = yield self.assertFailure(opening, HandshakeRejected)
        self.assertEqual((error.status, error.body), (403, b"origin https://evil.example is not allowed\n"))

    def test_plainURL(self) -> None:
        """
        A C{ws://} URL raises L{ValueError} at once.
        """
        from wsproto_tw.http2 import connectHTTP2

        with self.assertRaises(ValueError):
            connectHTTP2("ws://localhost/ws", Collector)

    @inlineCallbacks
    def test_fallBack(self) -> Any:
        """
        Against a site whose HTTP/2 (Twisted's own) does not allow extended
        CONNECT, and against a server that does not speak HTTP/2 at all,
        the client opens the WebSocket over HTTP/1.1 instead.
        """
        from wsproto_tw.http2 import connectHTTP2
        from wsproto_tw.server import WebSocketServerFactory
        from wsproto_tw.wire import StreamWire

        keyPath = self.certPath.replace("cert.pem", "key.pem")
        options = serverTLS(keyPath, self.certPath)
        from twisted.logger import globalLogPublisher

        reasons: list[str] = []

        def observe(event: dict) -> None:
            if "why" in event:
                reasons.append(event["why"])

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        root = Resource()
        root.putChild(b"ws", WebSocketResource(EchoApplication))
        for factory, why in (
            (WebSocketSite(root), "the server does not allow extended connect (rfc 8441)"),
            (WebSocketServerFactory(EchoApplication), "the server does not speak http/2 (alpn)"),
        ):
            port = yield SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1").listen(factory)
            self.addCleanup(port.stopListening)
            application = Collector()
            opening = connectHTTP2(
                f"wss://localhost:{port.getHost().port}/ws", lambda: application, trustRoot=self.certPath
            )
            seen = []
            yield echoRoundTrip(self, opening, application, lambda p: seen.append(type(p.wire)))
            self.assertEqual(seen, [StreamWire])
            self.assertEqual(reasons.pop(), why)


class SilentServerTests(TestCase):
    """
    L{wsproto_tw.http2.connectHTTP2} against a server that accepts the
    connection and then says nothing: the opening times out, saying how
    far it got.
    """

    timeout = 30

    @inlineCallbacks
    def silentServer(self, tls: Any = None) -> Any:
        """
        Listen on loopback with a server that never writes (over TLS
        with the server settings C{tls}, if given).

        @return: a Deferred firing with the port number.
        """
        from twisted.internet.endpoints import TCP4ServerEndpoint

        tracked = WrappingFactory(Factory.forProtocol(Protocol))
        if tls is None:
            endpoint: Any = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        else:
            endpoint = SSL4ServerEndpoint(reactor, 0, tls, interface="127.0.0.1")
        port = yield endpoint.listen(tracked)
        self.addCleanup(port.stopListening)
        self.addCleanup(protocolsGone, self, tracked)
        return port.getHost().port

    @inlineCallbacks
    def test_tlsNeverFinishes(self) -> Any:
        """
        A port that accepts TCP but never answers the TLS handshake: the
        L{HandshakeTimeout <wsproto_tw.errors.HandshakeTimeout>} says the
        TLS handshake did not finish.
        """
        from wsproto_tw.errors import HandshakeTimeout
        from wsproto_tw.http2 import connectHTTP2

        port = yield self.silentServer()
        opening = connectHTTP2(f"wss://localhost:{port}/ws", Collector, config=Config(open_timeout=0.2))
        error = yield self.assertFailure(opening, HandshakeTimeout)
        self.assertEqual(str(error), "opening handshake timed out: the TLS handshake did not finish")

    @inlineCallbacks
    def test_settingsNeverCome(self) -> Any:
        """
        A server that completes TLS, choosing C{h2}, but never sends its
        SETTINGS: the timeout says it waited for them.
        """
        from wsproto_tw.errors import HandshakeTimeout
        from wsproto_tw.http2 import connectHTTP2

        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        port = yield self.silentServer(serverTLS(keyPath, certPath, [b"h2"]))
        opening = connectHTTP2(
            f"wss://localhost:{port}/ws", Collector, config=Config(open_timeout=0.5), trustRoot=certPath
        )
        error = yield self.assertFailure(opening, HandshakeTimeout)
        self.assertEqual(str(error), "opening handshake timed out waiting for the server's settings")


class FrameRulesTests(HTTP2ServerMixin, TestCase):
    """
    A representative subset of the frame-level rules (Autobahn's cases 2,
    5, 6 and 7) over an HTTP/2 stream: the core enforces them as over
    HTTP/1.1, and the stream ends after the server's Close.
    """

    def setUp(self) -> Any:
        return self.startServer()

    @inlineCallbacks
    def closeCodeFor(self, frames: bytes) -> Any:
        client = yield self.h2Client()
        stream = client.openWebSocket()
        yield stream.response
        stream.send(frames)
        yield stream.ended
        closes = [payload for opcode, payload, _, _ in stream.frames() if opcode == CLOSE]
        return struct.unpack("!H", closes[0][:2])[0]

    @inlineCallbacks
    def test_violations(self) -> Any:
        """
        A reserved opcode, an unmasked frame, a fragmented or oversized
        control frame and a continuation without a message get 1002;
        invalid UTF-8 gets 1007; a Close with a reserved code 1002.
        """
        cases = [
            (clientFrame(0x3, b""), 1002),
            (bytes([0x81, 0x02]) + b"hi", 1002),
            (clientFrame(PING, b"x", fin=False), 1002),
            (clientFrame(PING, b"x" * 126), 1002),
            (clientFrame(0x0, b"orphan"), 1002),
            (clientFrame(TEXT, b"\xce\xba\xf0\x80"), 1007),
            (clientFrame(CLOSE, closePayload(1004)), 1002),
        ]
        for frames, code in cases:
            self.assertEqual((yield self.closeCodeFor(frames)), code, frames)

    @inlineCallbacks
    def test_pingsAndFragments(self) -> Any:
        """
        A ping between the fragments of a message is answered at once, and
        the message comes back whole.
        """
        client = yield self.h2Client()
        stream = client.openWebSocket()
        yield stream.response
        stream.send(clientFrame(TEXT, b"frag", fin=False) + clientFrame(PING, b"p") + clientFrame(0x0, b"ment"))
        frames = yield stream.nextFrames(2)
        self.assertEqual([frame[:2] for frame in frames], [(0xA, b"p"), (TEXT, b"fragment")])


class AutobahnBridgeTests(TestCase):
    """
    The Autobahn TestSuite's fuzzing client (kosoku, through
    C{wsproto_tw.conformance --url}) against C{twistd websocket --http2},
    every WebSocket an extended CONNECT stream: the fuzzer speaks HTTP/1.1
    to L{tests.h2bridge}, which carries each connection as a stream.
    """

    timeout = 900

    @inlineCallbacks
    def test_casesOverHTTP2(self) -> Any:
        """
        Every case of 1.* to 10.* is OK over HTTP/2, or INFORMATIONAL
        where the suite says so.
        """
        import json
        import sys

        from twisted.internet import ssl
        from twisted.internet.utils import getProcessOutputAndValue

        from tests.h2bridge import BridgeFactory
        from tests.processes import Twistd
        from wsproto_tw.client import _UnverifiedTLS

        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        twistd = Twistd(
            self,
            "--port", f"ssl:0:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}",
            "--http2", "--max-message-size", "16777216", "--http2-max-streams", "200",
        )
        [serverPort] = twistd.listening(1)
        tls = _UnverifiedTLS("localhost")
        tls._options = ssl.CertificateOptions(acceptableProtocols=[b"h2"])
        bridge = BridgeFactory(reactor, "127.0.0.1", int(serverPort), tls)
        port = reactor.listenTCP(0, bridge, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        outdir = os.path.abspath(self.mktemp())
        arguments = ["-m", "wsproto_tw.conformance", "server", "--url", f"ws://127.0.0.1:{port.getHost().port}",
                     "--outdir", outdir, "--timeout", "800"]
        out, err, code = yield getProcessOutputAndValue(sys.executable, arguments, env=dict(os.environ), path=os.getcwd())
        summary = out.decode(errors="replace") + err.decode(errors="replace")
        with open(os.path.join(outdir, "index.json")) as f:
            results = {
                case: (entry["behavior"], entry["behaviorClose"])
                for cases in json.load(f).values()
                for case, entry in cases.items()
            }
        notOK = sorted(case for case, verdict in results.items() if not set(verdict) <= {"OK", "INFORMATIONAL"})
        self.assertEqual(notOK, [], summary[-4000:])
        self.assertEqual(code, 0, summary[-4000:])
        # Every case of the RFC 6455 groups (as tests.test_conformance counts
        # them), none of the compression groups.
        self.assertEqual(len(results), 301)
        self.assertEqual({case.split(".")[0] for case in results}, {"1", "2", "3", "4", "5", "6", "7", "9", "10"})
        log = twistd.stop()
        self.assertNotIn("Traceback", log)
        self.assertGreater(log.count("opened "), 250)


_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SETTINGS, _PING, _GOAWAY = 0x4, 0x6, 0x7


def h2Frame(kind: int, flags: int, streamID: int, payload: bytes) -> bytes:
    """
    @return: one HTTP/2 frame (RFC 9113 §4.1).
    """
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", streamID) + payload


def h2Frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """
    @return: the complete HTTP/2 frames in C{data}, as C{(type, flags,
        stream id, payload)}.
    """
    frames = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        if len(data) < 9 + length:
            break
        streamID = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        frames.append((data[3], data[4], streamID, data[9 : 9 + length]))
        data = data[9 + length :]
    return frames


def _abortableTransport() -> Any:
    """
    @return: a C{StringTransport} whose C{aborted} says whether
        C{abortConnection} was called.
    """
    from twisted.internet.testing import StringTransport

    class Abortable(StringTransport):
        aborted = False

        def abortConnection(self) -> None:
            self.aborted = True
            super().abortConnection()

    return Abortable()


def inMemoryServer(config: Config, timeOut: float | None = None) -> tuple[Any, Any, Any]:
    """
    An L{HTTP2Channel} on a C{StringTransport}, after the client's preface
    and SETTINGS.

    @return: its clock, its transport (cleared) and the channel.
    """
    from twisted.internet.task import Clock

    from wsproto_tw.http2 import HTTP2Channel

    clock, transport = Clock(), _abortableTransport()
    channel = HTTP2Channel(None, config, clock, timeOut=timeOut)
    channel.makeConnection(transport)
    channel.dataReceived(_PREFACE + h2Frame(_SETTINGS, 0, 0, b""))
    transport.clear()
    return clock, transport, channel


def inMemoryClient(config: Config) -> tuple[Any, Any, Any, Any, Collector]:
    """
    Our HTTP/2 client on a C{StringTransport}, its WebSocket open on
    stream 1 of an C{h2} server.

    @return: its clock, its transport (cleared), the channel, the server's
        C{H2Connection} and the application.
    """
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    from twisted.internet.task import Clock

    from wsproto_tw.client import _clientCore, parseURL
    from wsproto_tw.http2 import _HTTP2Opening

    clock, transport, application = Clock(), _abortableTransport(), Collector()
    core = _clientCore(parseURL("wss://localhost/ws"), config, None, (), clock.seconds(), stream=True)
    opening = _HTTP2Opening(lambda: application, config, clock, core, "localhost", "/ws", Deferred)
    channel = opening.buildProtocol(None)
    channel.makeConnection(transport)
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    server.local_settings = h2.settings.Settings(
        client=False, initial_values={h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1}
    )
    server.initiate_connection()
    server.receive_data(transport.value())
    transport.clear()
    channel.dataReceived(server.data_to_send())
    events = server.receive_data(transport.value())
    transport.clear()
    [request] = [event for event in events if isinstance(event, h2.events.RequestReceived)]
    server.send_headers(request.stream_id, [(b":status", b"200")])
    channel.dataReceived(server.data_to_send())
    server.receive_data(transport.value())
    transport.clear()
    opening.result.addCallback(lambda protocol: setattr(application, "protocol", protocol))
    return clock, transport, channel, server, application


class NotReadingTests(SynchronousTestCase):
    """
    A peer that keeps an L{HTTP2Channel} answering (PING and SETTINGS
    ACKs) and does not read what it answers gets C{GOAWAY}
    C{ENHANCE_YOUR_CALM} and the connection is aborted once more than
    C{max_write_buffer} bytes were written while the transport's buffer
    was full (CVE-2019-9512, CVE-2019-9515), on the server and on the
    client; a peer that reads is answered for ever.
    """

    config = Config(max_write_buffer=4096)

    def assertCalmedDown(self, transport: Any, before: int) -> None:
        """
        C{transport} got at most C{max_write_buffer} bytes after
        C{before}, then C{GOAWAY} C{ENHANCE_YOUR_CALM}, and was aborted.
        """
        written = transport.value()[before:]
        self.assertTrue(transport.aborted)
        last = h2Frames(written)[-1]
        self.assertEqual(last[0], _GOAWAY)
        self.assertEqual(int.from_bytes(last[3][4:8], "big"), 0xB)
        self.assertLessEqual(len(written), self.config.max_write_buffer + 9 + len(last[3]))

    def test_pingFloodServer(self) -> None:
        """
        The server answers PINGs while its transport's buffer is full up
        to C{max_write_buffer} bytes, then ends the connection with
        C{GOAWAY} C{ENHANCE_YOUR_CALM}, aborts it, and parses nothing more.
        """
        clock, transport, channel = inMemoryServer(self.config)
        channel.pauseProducing()
        pings = h2Frame(_PING, 0, 0, b"12345678") * 100
        for _ in range(20):
            channel.dataReceived(pings)
        self.assertCalmedDown(transport, 0)
        written = len(transport.value())
        channel.dataReceived(pings)
        self.assertEqual(len(transport.value()), written)

    def test_settingsFloodServer(self) -> None:
        """
        SETTINGS frames, each acknowledged, are bounded as PINGs are.
        """
        clock, transport, channel = inMemoryServer(self.config)
        channel.pauseProducing()
        for _ in range(20):
            channel.dataReceived(h2Frame(_SETTINGS, 0, 0, b"") * 100)
        self.assertCalmedDown(transport, 0)

    def test_readingPeer(self) -> None:
        """
        A peer that reads gets every PING answered: the count starts again
        whenever the transport's buffer drains (C{resumeProducing}).
        """
        clock, transport, channel = inMemoryServer(self.config)
        pings = h2Frame(_PING, 0, 0, b"12345678") * 200
        for _ in range(10):
            channel.pauseProducing()
            channel.dataReceived(pings)
            channel.resumeProducing()
        for _ in range(10):
            channel.dataReceived(pings)
        frames = h2Frames(transport.value())
        self.assertEqual(frames, [(_PING, 1, 0, b"12345678")] * 4000)
        self.assertFalse(transport.aborted)
        self.assertFalse(transport.disconnecting)

    def test_pingFloodClient(self) -> None:
        """
        Our client bounds the PING ACKs written to a server that does not
        read as the server does, and its WebSocket hears C{connectionLost}
        (1006).
        """
        clock, transport, channel, server, application = inMemoryClient(self.config)
        self.assertIsInstance(application.protocol.wire, H2StreamWire)
        channel.pauseProducing()
        for _ in range(20):
            server.ping(b"12345678")
            channel.dataReceived(server.data_to_send() * 100)
        self.assertCalmedDown(transport, 0)
        clock.advance(0)
        closed = self.successResultOf(application.lost)
        self.assertEqual((closed.code, closed.wasClean), (1006, False))


class ClosingTests(SynchronousTestCase):
    """
    An L{HTTP2Channel} that closes its connection (C{GOAWAY} sent) drops
    what arrives unparsed and aborts the transport after C{close_timeout}
    seconds if it has not closed (TLS waits for the peer's
    C{close_notify}); the abort is cancelled when it closes.
    """

    config = Config(close_timeout=7)

    def assertAbortedAfter(self, clock: Any, transport: Any, delay: float) -> None:
        self.assertTrue(transport.disconnecting)
        clock.advance(delay - 0.5)
        self.assertFalse(transport.aborted)
        clock.advance(0.5)
        self.assertTrue(transport.aborted)

    def test_serverAborts(self) -> None:
        """
        The server closes an idle connection with C{GOAWAY}; what arrives
        then is not parsed (no PING is answered), and the transport is
        aborted C{close_timeout} seconds later.
        """
        clock, transport, channel = inMemoryServer(self.config, timeOut=5)
        clock.advance(5)
        [(kind, _, _, payload)] = h2Frames(transport.value())
        self.assertEqual((kind, payload[4:8]), (_GOAWAY, b"\0\0\0\0"))
        transport.clear()
        parsed = []
        receive = channel._h2.receive_data
        channel._h2.receive_data = lambda data: parsed.append(data) or receive(data)
        channel.dataReceived(h2Frame(_PING, 0, 0, b"12345678") * 100)
        self.assertEqual((transport.value(), parsed), (b"", []))
        self.assertAbortedAfter(clock, transport, 7)

    def test_serverClosed(self) -> None:
        """
        A connection that closes in time cancels the abort.
        """
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        clock, transport, channel = inMemoryServer(self.config, timeOut=5)
        clock.advance(5)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(7)
        self.assertFalse(transport.aborted)

    def test_clientAborts(self) -> None:
        """
        The client's connection closes with its stream (here reset by the
        server): C{GOAWAY}, then nothing parsed, and the transport is
        aborted C{close_timeout} seconds later.
        """
        from h2.errors import ErrorCodes

        clock, transport, channel, server, application = inMemoryClient(self.config)
        server.reset_stream(1, ErrorCodes.CANCEL)
        channel.dataReceived(server.data_to_send())
        self.assertEqual([frame[0] for frame in h2Frames(transport.value())], [_GOAWAY])
        transport.clear()
        server.ping(b"12345678")
        channel.dataReceived(server.data_to_send())
        self.assertEqual(transport.value(), b"")
        self.assertAbortedAfter(clock, transport, 7)

    def test_clientClosed(self) -> None:
        """
        The client's abort is cancelled too when its connection closes in
        time.
        """
        from h2.errors import ErrorCodes
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        clock, transport, channel, server, application = inMemoryClient(self.config)
        server.reset_stream(1, ErrorCodes.CANCEL)
        channel.dataReceived(server.data_to_send())
        self.assertIsNotNone(channel._abortCall)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(channel._abortCall)
        clock.advance(7)
        self.assertFalse(transport.aborted)


class PeerNameTests(SynchronousTestCase):
    """
    L{HTTP2Channel}'s log lines name the peer as every log line does.
    """

    def test_ipv6Peer(self) -> None:
        """
        An IPv6 peer is named C{[host]:port} (RFC 3986 section 3.2.2).
        """
        from twisted.internet.address import IPv6Address
        from twisted.logger import capturedLogs, formatEvent

        _, transport, channel = inMemoryServer(Config())
        transport.peerAddr = IPv6Address("TCP", "2001:db8::7", 40000)
        with capturedLogs() as events:
            channel.dataReceived(h2Frame(_PING, 0, 1, b"12345678"))
        [line] = [formatEvent(event) for event in events]
        self.assertTrue(line.startswith("http/2 connection error from [2001:db8::7]:40000: "), line)
