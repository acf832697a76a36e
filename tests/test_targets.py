"""
Request targets and early garbage on every server path: a C{twistd
websocket} over real loopback sockets, with and without C{--path}
(L{WebSocketServerFactory
<wsproto_tw.server.WebSocketServerFactory>} alone, or L{WebSocketSite
<wsproto_tw.resource.WebSocketSite>} with a L{WebSocketResource
<wsproto_tw.resource.WebSocketResource>} at C{--path}), and the
C{twisted.web} path over in-memory connections.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import textwrap
import time
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.core.test_targets import TLS_REASON, tlsClientHello
from tests.helpers import CLIENT_KEY, clientFrame, parseFrames
from tests.processes import Twistd
from wsproto_tw.core.config import Config
from wsproto_tw.resource import WebSocketResource, WebSocketSite, mountAt
from wsproto_tw.server import WebSocketApplication

PEER = IPv4Address("TCP", "192.0.2.7", 40000)

# The README's application, refusing every path but /chat, that answers a
# message with what it knows of its request.
USER_APP = '''
import json

from wsproto_tw.errors import Reject
from wsproto_tw.server import WebSocketApplication


class ChatOnly(WebSocketApplication):
    def requestReceived(self, request):
        if request.path != "/chat":
            raise Reject(404, "no such socket")

    def textMessageReceived(self, text):
        request = self.transport.request
        self.transport.sendText(json.dumps([request.target, request.path, request.query, request.host]))
'''


def opening(target: str, host: str = "localhost") -> bytes:
    """
    An opening request for C{target}.
    """
    return (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode("latin-1")


def refusal(reason: str) -> bytes:
    """
    The body that ends a C{400} answer giving C{reason}.
    """
    return b"\r\n\r\n" + reason.encode() + b"\n"


class TwistdTargetTests(SynchronousTestCase):
    """
    A real C{twistd websocket} accepts a target in absolute-form, and its
    application sees the same C{request.path} as for origin-form; it answers
    early garbage with C{400} at once.
    """

    def start(self, *arguments: str) -> int:
        """
        Start C{twistd websocket --app ChatOnly} on a free loopback port.

        @return: the port.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "userapp.py"), "w") as f:
            f.write(textwrap.dedent(USER_APP))
        env = {"PYTHONPATH": os.pathsep.join([directory, os.environ.get("PYTHONPATH", "")])}
        self.twistd = Twistd(
            self, "--port", "tcp:0:interface=127.0.0.1", "--app", "userapp.ChatOnly", *arguments, env=env
        )
        [port] = self.twistd.listening(1)
        return int(port)

    def stop(self) -> None:
        log = self.twistd.stop()
        self.assertNotIn("Traceback", log)

    def connect(self, port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(sock.close)
        return sock

    def receive(self, sock: socket.socket, until: Any) -> bytes:
        """
        @return: what C{sock} received once C{until(received)} is true or
            the peer closed.
        """
        received = b""
        while not until(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received

    def seen(self, port: int, target: str) -> list[str]:
        """
        Open a WebSocket with C{target} and ask the application what it saw.

        @return: the request's target, path, query and host.
        """
        sock = self.connect(port)
        sock.sendall(opening(target))
        response = self.receive(sock, lambda data: b"\r\n\r\n" in data)
        self.assertTrue(response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), (target, response))
        sock.sendall(clientFrame(0x1, b"?"))

        def answered(data: bytes) -> bool:
            try:
                return bool(parseFrames(response + data))
            except ValueError:
                return False

        [(opcode, payload, _, _)] = parseFrames(response + self.receive(sock, answered))
        sock.close()
        self.assertEqual(opcode, 0x1)
        return json.loads(payload)

    def assertTargets(self, port: int) -> None:
        """
        Absolute-form with and without a port and a query, and origin-form,
        reach the application with the path C{/chat}; another path gets
        C{404} from it (or from the site).
        """
        for target, query, host in [
            (f"http://127.0.0.1:{port}/chat", "", f"127.0.0.1:{port}"),
            ("http://127.0.0.1/chat?room=1", "room=1", "127.0.0.1"),
            (f"ws://localhost:{port}/chat", "", f"localhost:{port}"),
            ("/chat?room=2", "room=2", "localhost"),
        ]:
            self.assertEqual(self.seen(port, target), [target, "/chat", query, host])
        sock = self.connect(port)
        sock.sendall(opening(f"http://127.0.0.1:{port}/other"))
        answer = self.receive(sock, lambda data: b"\r\n\r\n" in data)
        sock.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 404 "), answer)

    def assertRefusedAtOnce(self, port: int, data: bytes, reason: str) -> None:
        """
        C{data} is answered with C{400} and C{reason}, and the connection
        closed, at once: within 5 s (a generous bound for real time on a
        shared machine), long before the 10 s opening timeout would close
        it.
        """
        sock = self.connect(port)
        started = time.monotonic()
        sock.sendall(data)
        answer = self.receive(sock, lambda received: False)
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer)
        self.assertTrue(answer.endswith(refusal(reason)), answer)

    def assertGarbageRefused(self, port: int) -> None:
        """
        A TLS ClientHello and a request with bare LFs are answered at once;
        a real TLS client fails its handshake at once (within 5 s, long
        before the 10 s opening timeout).
        """
        self.assertRefusedAtOnce(port, tlsClientHello(), TLS_REASON)
        self.assertRefusedAtOnce(
            port, opening("/chat").replace(b"\r\n", b"\n")[:-1], "bare lf in request head; lines must end with crlf"
        )
        sock = self.connect(port)
        started = time.monotonic()
        with self.assertRaises(ssl.SSLError):
            ssl.create_default_context().wrap_socket(sock, server_hostname="localhost")
        self.assertLess(time.monotonic() - started, 5.0)

    def test_standalone(self) -> None:
        """
        Without C{--path}: the WebSocket factory serves every connection.
        """
        port = self.start()
        self.assertTargets(port)
        self.assertGarbageRefused(port)
        self.stop()

    def test_atPath(self) -> None:
        """
        With C{--path /chat}: a site finds the WebSocket resource by the
        target's path, whichever its form.
        """
        port = self.start("--path", "/chat")
        self.assertTargets(port)
        self.assertGarbageRefused(port)
        self.stop()


class Recorder(WebSocketApplication):
    """
    Records the requests it accepts.
    """

    requests: list[Any] = []

    def requestReceived(self, request: Any) -> None:
        self.requests.append(request)


class WebTargetTests(SynchronousTestCase):
    """
    The C{twisted.web} path over in-memory connections: L{WebSocketSite}
    routes an absolute-form target by its path, and refuses early garbage
    at once; a L{WebSocketResource} gives its application the same
    C{request.path} for both forms.
    """

    def setUp(self) -> None:
        self.requests: list[Any] = []
        self.patch(Recorder, "requests", self.requests)
        self.clock = Clock()
        self.resource = WebSocketResource(Recorder, Config(), reactor=self.clock)

    def connect(self, site: Site, data: bytes) -> StringTransport:
        protocol = site.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        protocol.dataReceived(data)
        return transport

    def test_absoluteFormRouted(self) -> None:
        """
        L{WebSocketSite} serves an absolute-form target from the resource
        at its path (with L{mountAt}, or in a tree of children).
        """
        tree = Resource()
        tree.putChild(b"chat", self.resource)
        for root in (mountAt("/chat", self.resource, Resource()), tree):
            site = WebSocketSite(root, Config(), reactor=self.clock)
            for target in ("http://127.0.0.1:8080/chat", "http://127.0.0.1/chat?x=1", "/chat"):
                transport = self.connect(site, opening(target))
                self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), target)
                self.assertEqual((self.requests[-1].target, self.requests[-1].path), (target, "/chat"))
            transport = self.connect(site, opening("http://127.0.0.1/other"))
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 404 "), transport.value())
        self.assertEqual(len(self.requests), 6)

    def test_leafAtRootOfSite(self) -> None:
        """
        A L{WebSocketResource} at the root of a plain L{Site} gives its
        application the path of an absolute-form target.
        """
        transport = self.connect(Site(self.resource, reactor=self.clock), opening("http://h:1/chat?x"))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 Switching Protocols\r\n"))
        self.assertEqual((self.requests[0].path, self.requests[0].query, self.requests[0].host), ("/chat", "x", "h:1"))

    def test_otherFormsRefused(self) -> None:
        """
        A target in a form a C{GET} can't have reaches the resource only to
        be refused by the core with C{400}.
        """
        site = WebSocketSite(self.resource, Config(), reactor=self.clock)
        transport = self.connect(site, opening("localhost:80"))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 Bad Request\r\n"), transport.value())
        self.assertEqual(self.requests, [])

    def test_earlyGarbage(self) -> None:
        """
        On the first request of a L{WebSocketSite} connection, a TLS
        ClientHello, a bare LF or a malformed request line start gets
        C{400} at once and the connection closes; nothing reaches the
        resource.
        """
        site = WebSocketSite(mountAt("/chat", self.resource, Resource()), Config(), reactor=self.clock)
        for data, reason in [
            (tlsClientHello(), TLS_REASON),
            (b"GET /chat HTTP/1.1\nHost: a\n", "bare lf in request head; lines must end with crlf"),
            (b"GET /chat HTTP/1.1\r\nHost: a\nX: b", "bare lf in request head; lines must end with crlf"),
            (b"\x00\x01", "malformed request line"),
            (b"GET /chat#top", "request target has a fragment"),
        ]:
            transport = self.connect(site, data)
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 Bad Request\r\n"), data)
            self.assertTrue(transport.value().endswith(refusal(reason)), transport.value())
            self.assertTrue(transport.disconnecting)
        self.assertEqual(self.requests, [])

    def test_validRequestDripped(self) -> None:
        """
        A valid first request sent one byte at a time, after one empty line,
        is not refused, and neither is what follows its head.
        """
        site = WebSocketSite(mountAt("/chat", self.resource, Resource()), Config(), reactor=self.clock)
        protocol = site.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        data = b"\r\n" + opening("http://h/chat") + clientFrame(0x1, b"\n\x00")
        for i in range(len(data)):
            protocol.dataReceived(data[i : i + 1])
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), transport.value())
        self.assertEqual(self.requests[0].path, "/chat")
        self.assertFalse(transport.disconnecting)
