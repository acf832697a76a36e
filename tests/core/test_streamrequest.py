"""
Tests for the server core of a WebSocket carried by an HTTP/2 stream (RFC
8441): L{ServerConnection} started from an extended CONNECT request
(C{stream_request}), and L{wsproto_tw.core.handshake.validate_stream_request}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import clientFrame, serverFrame
from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, ServerConnection, State
from wsproto_tw.core.events import HandshakeFailure, RequestReceived, TextMessage
from wsproto_tw.core.handshake import HandshakeRequest

#: What an extended CONNECT carries besides its pseudo-headers (the
#: :authority comes as host).
HEADERS = (("host", "example.com"), ("sec-websocket-version", "13"))


def connectRequest(headers=HEADERS, method: str = "CONNECT", target: str = "/chat") -> HandshakeRequest:
    """
    @return: the L{HandshakeRequest} of an extended CONNECT over HTTP/2.
    """
    return HandshakeRequest(method=method, target=target, http_version=(2, 0), headers=tuple(headers))


def streamServer(request: HandshakeRequest, config: Config | None = None) -> ServerConnection:
    return ServerConnection(config or Config(), now=0.0, stream_request=request)


class StreamRequestTests(SynchronousTestCase):
    """
    A server core started from an HTTP/2 stream's extended CONNECT.
    """

    def test_acceptAnswers200WithoutAccept(self) -> None:
        """
        The first event is C{RequestReceived} with no byte received;
        C{accept()} queues a C{200} head without C{Sec-WebSocket-Accept},
        C{Upgrade} or C{Connection}, and the connection is open.
        """
        server = streamServer(connectRequest())
        [event] = list(server.events())
        self.assertIsInstance(event, RequestReceived)
        self.assertEqual(event.request.path, "/chat")
        server.accept(now=0.0)
        self.assertEqual(server.data_to_send(), b"HTTP/1.1 200 OK\r\n\r\n")
        self.assertIs(server.state, State.OPEN)

    def test_framesOnly(self) -> None:
        """
        What the stream carries is frames from the first byte: a masked text
        frame is a message, and the answer is a frame.
        """
        server = streamServer(connectRequest())
        list(server.events())
        server.accept(now=0.0)
        server.data_to_send()
        server.receive_data(clientFrame(Opcode.TEXT, b"hi"), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("hi")])
        server.send_text("yo")
        self.assertEqual(server.data_to_send(), serverFrame(Opcode.TEXT, b"yo"))

    def test_subprotocolAndCompression(self) -> None:
        """
        The subprotocol and permessage-deflate are negotiated as over
        HTTP/1.1, and named in the C{200} head.
        """
        from wsproto_tw.core.deflate import PerMessageDeflate

        config = Config(subprotocols=("chat",), compression=PerMessageDeflate())
        server = streamServer(
            connectRequest(
                HEADERS
                + (("sec-websocket-protocol", "other, chat"), ("sec-websocket-extensions", "permessage-deflate"))
            ),
            config,
        )
        [event] = list(server.events())
        self.assertEqual(event.subprotocol, "chat")
        server.accept(now=0.0)
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 200 OK\r\nSec-WebSocket-Protocol: chat\r\n"
            b"Sec-WebSocket-Extensions: " + server.extensions.encode("ascii") + b"\r\n\r\n",
        )
        self.assertTrue(server.extensions.startswith("permessage-deflate"))

    def test_wrongVersion(self) -> None:
        """
        Another WebSocket version gets C{426} with C{Sec-WebSocket-Version:
        13}, and no C{Connection} field (HTTP/2 has none).
        """
        server = streamServer(connectRequest((("host", "example.com"), ("sec-websocket-version", "8"))))
        [event] = list(server.events())
        self.assertIsInstance(event, HandshakeFailure)
        body = b"unsupported websocket version 8; this server speaks 13\n"
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        )
        self.assertTrue(server.wants_transport_closed)

    def test_missingVersion(self) -> None:
        """
        A request without C{sec-websocket-version} gets C{400}.
        """
        server = streamServer(connectRequest((("host", "example.com"),)))
        [event] = list(server.events())
        self.assertEqual((event.error.status, event.error.reason), (400, "missing sec-websocket-version header"))

    def test_forbiddenOrigin(self) -> None:
        """
        An origin that C{allowed_origins} does not hold gets C{403}.
        """
        config = Config(allowed_origins=frozenset({"https://good.example"}))
        server = streamServer(connectRequest(HEADERS + (("origin", "https://evil.example"),)), config)
        [event] = list(server.events())
        self.assertEqual(event.error.status, 403)
        self.assertTrue(server.data_to_send().startswith(b"HTTP/1.1 403 Forbidden\r\n"))

    def test_notConnect(self) -> None:
        """
        Another method gets C{405} with C{Allow: CONNECT}.
        """
        server = streamServer(connectRequest(method="GET"))
        [event] = list(server.events())
        self.assertEqual((event.error.status, event.error.headers), (405, (("Allow", "CONNECT"),)))

    def test_rejectWithoutConnectionField(self) -> None:
        """
        C{reject()} queues the error head and body, without the
        C{Connection} field an application's headers may hold.
        """
        server = streamServer(connectRequest())
        list(server.events())
        server.reject(503, "busy", (("Retry-After", "5"), ("Connection", "close")))
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\nbusy\n",
        )

    def test_openTimeout(self) -> None:
        """
        An unanswered request gets C{408} at the opening deadline.
        """
        server = streamServer(connectRequest(), Config(open_timeout=5.0))
        list(server.events())
        self.assertEqual(server.next_deadline(), 5.0)
        server.handle_timer(now=5.0)
        self.assertTrue(server.data_to_send().startswith(b"HTTP/1.1 408 Request Timeout\r\n"))


class StreamClientTests(SynchronousTestCase):
    """
    A client core over an HTTP/2 stream (C{stream=True}): it queues no
    request, gives the extended CONNECT's fields, and opens on a 2xx head.
    """

    def streamClient(self, config: Config | None = None) -> ClientConnection:
        return ClientConnection(
            config or Config(), host="example.com", target="/chat", origin="https://example.com",
            now=0.0, stream=True, mask_source=lambda n: b"\x01" * n,
        )

    def test_fields(self) -> None:
        """
        Nothing is queued; the fields are the version, the origin and the
        offers, in lower case, without upgrade, connection or key.
        """
        client = self.streamClient(Config(subprotocols=("chat", "superchat")))
        self.assertEqual(client.data_to_send(), b"")
        self.assertEqual(
            client.stream_fields,
            [("sec-websocket-version", "13"), ("origin", "https://example.com"),
             ("sec-websocket-protocol", "chat, superchat")],
        )

    def test_opensOn200(self) -> None:
        """
        A C{200} head opens the connection with the chosen subprotocol;
        what follows is frames.
        """
        client = self.streamClient(Config(subprotocols=("chat",)))
        client.receive_data(b"HTTP/1.1 200 OK\r\nsec-websocket-protocol: chat\r\n\r\n" + serverFrame(Opcode.TEXT, b"hi"), now=0.0)
        events = list(client.events())
        self.assertEqual(type(events[0]).__name__, "Opened")
        self.assertEqual(events[1:], [TextMessage("hi")])
        self.assertEqual(client.subprotocol, "chat")
        client.send_text("yo")
        self.assertEqual(client.data_to_send(), b"\x81\x82\x01\x01\x01\x01" + bytes(b ^ 1 for b in b"yo"))

    def test_rejected(self) -> None:
        """
        Another status fails the handshake with that status and its body.
        """
        client = self.streamClient()
        client.receive_data(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 3\r\n\r\nno\n", now=0.0)
        [event] = list(client.events())
        self.assertEqual((event.error.status, event.error.body), (403, b"no\n"))

    def test_subprotocolNotOffered(self) -> None:
        """
        A subprotocol that was not offered fails the handshake.
        """
        client = self.streamClient()
        client.receive_data(b"HTTP/1.1 200 OK\r\nsec-websocket-protocol: evil\r\n\r\n", now=0.0)
        [event] = list(client.events())
        self.assertEqual(str(event.error), "200 server chose subprotocol 'evil', which was not offered")
