"""
Every C{twistd websocket} mode over a real loopback socket: echo, broadcast
(with its chat page), C{--static} with C{--path}, and C{--app} with the
user's own class or factory.
"""

from __future__ import annotations

import os
import select
import socket
import textwrap
import time
import urllib.error
import urllib.request
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site
from websockets.sync.client import connect as websocketsConnect

from tests.processes import Twistd
from wsproto_tw.apps import BroadcastGroup, EchoApplication
from wsproto_tw.resource import WebSocketSite
from wsproto_tw.server import WebSocketServerFactory
from wsproto_tw.tap import Options, makeService


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def get(url: str) -> tuple[int, bytes]:
    """
    @return: the status and body of a plain HTTP GET of C{url}.
    """
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def webSocket(url: str) -> Any:
    return websocketsConnect(url, open_timeout=10, close_timeout=10)


USER_APP = '''
from wsproto_tw.server import Accept, WebSocketApplication


class Reverser(WebSocketApplication):
    def requestReceived(self, request):
        return Accept(headers=[("X-App", "reverser")])

    def textMessageReceived(self, text):
        self.transport.sendText(text[::-1])


def makeCounter():
    counter = Counter()
    return counter


class Counter(WebSocketApplication):
    count = 0

    def textMessageReceived(self, text):
        Counter.count += 1
        self.transport.sendText(str(Counter.count))
'''


class ModeOptionsTests(SynchronousTestCase):
    """
    C{--mode}, C{--app}, C{--static} and C{--path} are checked when parsed,
    and choose what L{makeService} listens with.
    """

    def listening(self, options: Options) -> list[Any]:
        return [
            service.factory for service in makeService(options) if isinstance(service, StreamServerEndpointService)
        ]

    def test_defaults(self) -> None:
        """
        By default: echo on every path, through the raw WebSocket factory.
        """
        options = parse()
        self.assertEqual((options["mode"], options["app"], options["static"], options["path"]), ("echo", None, None, None))
        self.assertIs(options.applicationFactory(), EchoApplication)
        [factory] = self.listening(options)
        self.assertIsInstance(factory, WebSocketServerFactory)

    def test_broadcast(self) -> None:
        """
        C{--mode broadcast} builds members of one L{BroadcastGroup}, whose
        limit is C{--max-write-buffer}, served in a L{WebSocketSite} with
        the options' L{Config}.
        """
        options = parse("--mode", "broadcast", "--max-write-buffer", "1000", "--open-timeout", "3")
        group = options.applicationFactory()
        self.assertIsInstance(group, BroadcastGroup)
        self.assertEqual(group.maxWriteBuffer, 1000)
        [factory] = self.listening(options)
        self.assertIsInstance(factory, WebSocketSite)
        self.assertEqual(factory.config.open_timeout, 3)

    def test_staticAndPath(self) -> None:
        """
        C{--static} and C{--path} serve a site; C{--path} alone too.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        [factory] = self.listening(parse("--static", directory, "--path", "/a/b"))
        self.assertIsInstance(factory, Site)
        [factory] = self.listening(parse("--path", "/live"))
        self.assertIsInstance(factory, Site)

    def test_invalid(self) -> None:
        """
        A wrong mode, a missing directory, a relative or root path, an
        application that can't be imported or called, and C{--app} with
        C{--mode broadcast} are usage errors naming the problem.
        """
        cases = [
            (["--mode", "chat"], "--mode must be echo, broadcast or stomp"),
            (["--static", "/nonexistent/dir"], "not a directory"),
            (["--path", "ws"], "--path must start with /"),
            (["--path", "/"], "--path must start with /"),
            (["--app", "no.such.module.App"], "can't import it ('no.such.module.App' does not name an object); is its package on PYTHONPATH?"),
            (["--app", "wsproto_tw.tap.__doc__"], "not a class or factory"),
            (["--app", "wsproto_tw.apps.EchoApplication", "--mode", "broadcast"], "exclude each other"),
        ]
        for argv, message in cases:
            error = self.assertRaises(UsageError, parse, *argv)
            self.assertIn(message, str(error), argv)


class TwistdModeTests(SynchronousTestCase):
    """
    A real C{twistd websocket} in each mode, with clients of another
    implementation (C{websockets}) and plain HTTP.
    """

    def start(self, *arguments: str, env: dict[str, str] | None = None) -> str:
        """
        Start C{twistd websocket} on a free loopback port.

        @return: the server's C{host:port}.
        """
        self.twistd = Twistd(self, "--port", "tcp:0:interface=127.0.0.1", *arguments, env=env)
        [port] = self.twistd.listening(1)
        return f"127.0.0.1:{port}"

    def stop(self) -> None:
        log = self.twistd.stop()
        self.assertNotIn("Traceback", log)

    def test_echo(self) -> None:
        """
        C{--mode echo}: every path is a WebSocket that echoes.
        """
        server = self.start("--mode", "echo")
        for path in ("/", "/any/path?x=1"):
            with webSocket(f"ws://{server}{path}") as ws:
                ws.send("ping")
                self.assertEqual(ws.recv(timeout=10), "ping")
                ws.send(b"\x01\x02")
                self.assertEqual(ws.recv(timeout=10), b"\x01\x02")
        self.stop()

    def test_echoAtPath(self) -> None:
        """
        C{--path} without C{--static}: the WebSocket is only there; other
        paths are not found.
        """
        server = self.start("--path", "/live")
        with webSocket(f"ws://{server}/live") as ws:
            ws.send("at path")
            self.assertEqual(ws.recv(timeout=10), "at path")
        self.assertEqual(get(f"http://{server}/live")[0], 426)
        self.assertEqual(get(f"http://{server}/")[0], 404)
        self.stop()

    def test_broadcast(self) -> None:
        """
        C{--mode broadcast}: what one client sends, every client receives,
        text and binary; the chat page is served at C{/} and points at
        C{/ws}.
        """
        server = self.start("--mode", "broadcast")
        status, page = get(f"http://{server}/")
        self.assertEqual(status, 200)
        self.assertIn(b"<title>wsproto_tw chat</title>", page)
        self.assertIn(b'data-ws-path="/ws"', page)
        with webSocket(f"ws://{server}/ws") as ann, webSocket(f"ws://{server}/ws") as bob:
            ann.send("hello from ann")
            self.assertEqual(bob.recv(timeout=10), "hello from ann")
            self.assertEqual(ann.recv(timeout=10), "hello from ann")
            bob.send(b"\x00bob")
            self.assertEqual(ann.recv(timeout=10), b"\x00bob")
            self.assertEqual(bob.recv(timeout=10), b"\x00bob")
        self.assertEqual(get(f"http://{server}/ws")[0], 426)
        self.stop()

    def test_broadcastAtPath(self) -> None:
        """
        With C{--path}, the chat page points at that path.
        """
        server = self.start("--mode", "broadcast", "--path", "/room/1")
        self.assertIn(b'data-ws-path="/room/1"', get(f"http://{server}/")[1])
        with webSocket(f"ws://{server}/room/1") as ann:
            ann.send("alone")
            self.assertEqual(ann.recv(timeout=10), "alone")
        self.stop()

    def test_staticAndPath(self) -> None:
        """
        C{--static DIR --path P}: the directory's files on the same port,
        the WebSocket at C{P}.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(directory, "api"))
        with open(os.path.join(directory, "index.html"), "wb") as f:
            f.write(b"<p>my page</p>")
        with open(os.path.join(directory, "api", "doc.txt"), "wb") as f:
            f.write(b"api docs")
        server = self.start("--static", directory, "--path", "/api/live")
        self.assertEqual(get(f"http://{server}/"), (200, b"<p>my page</p>"))
        self.assertEqual(get(f"http://{server}/api/doc.txt"), (200, b"api docs"))
        self.assertEqual(get(f"http://{server}/missing")[0], 404)
        self.assertEqual(get(f"http://{server}/api/live")[0], 426)
        with webSocket(f"ws://{server}/api/live") as ws:
            ws.send("static and live")
            self.assertEqual(ws.recv(timeout=10), "static and live")
        self.stop()

    def test_staticDefaultPath(self) -> None:
        """
        C{--static} alone puts the WebSocket at C{/ws}.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        server = self.start("--static", directory, "--mode", "broadcast")
        with webSocket(f"ws://{server}/ws") as ws:
            ws.send("default path")
            self.assertEqual(ws.recv(timeout=10), "default path")
        self.stop()

    def test_app(self) -> None:
        """
        C{--app} runs the user's application class, or factory function,
        imported from the user's module.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "userapp.py"), "w") as f:
            f.write(textwrap.dedent(USER_APP))
        env = {"PYTHONPATH": os.pathsep.join([directory, os.environ.get("PYTHONPATH", "")])}
        server = self.start("--app", "userapp.Reverser", env=env)
        with webSocket(f"ws://{server}/") as ws:
            self.assertEqual(ws.response.headers["X-App"], "reverser")
            ws.send("stressed")
            self.assertEqual(ws.recv(timeout=10), "desserts")
        self.stop()
        server = self.start("--app", "userapp.makeCounter", env=env)
        with webSocket(f"ws://{server}/") as one, webSocket(f"ws://{server}/") as two:
            one.send("a")
            self.assertEqual(one.recv(timeout=10), "1")
            two.send("b")
            self.assertEqual(two.recv(timeout=10), "2")
        self.stop()


    def test_openTimeoutOnSite(self) -> None:
        """
        With a site (C{--mode broadcast}), C{--open-timeout} is an absolute
        deadline for the connection's first request: a client that sends
        nothing and one that sends a byte every 0.1 seconds both get C{408}
        and are closed about a second after they connected. (The bounds are
        generous, since this is real time in a child process on a shared
        machine; the dripping client has 100 s of bytes to send, so an idle
        timeout instead of an absolute one fails. C{tests.test_resource}
        tests the deadline itself with a L{Clock}.)
        """
        server = self.start("--mode", "broadcast", "--open-timeout", "1")
        host, port = server.split(":")
        start = time.monotonic()
        idle = socket.create_connection((host, int(port)), timeout=10)
        dripping = socket.create_connection((host, int(port)), timeout=10)
        self.addCleanup(idle.close)
        self.addCleanup(dripping.close)
        drip = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 1000
        received = {idle: b"", dripping: b""}
        closedAt: dict[socket.socket, float] = {}
        while len(closedAt) < 2 and time.monotonic() - start < 30:
            if dripping not in closedAt and drip:
                try:
                    dripping.send(drip[:1])
                except OSError:
                    closedAt[dripping] = time.monotonic() - start
                drip = drip[1:]
            open_ = [sock for sock in received if sock not in closedAt]
            readable, _, _ = select.select(open_, [], [], 0.1)
            for sock in readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                received[sock] += chunk
                if not chunk:
                    closedAt[sock] = time.monotonic() - start
        self.assertEqual(len(closedAt), 2, f"still open after 30 s: {received}")
        for sock in (idle, dripping):
            self.assertTrue(received[sock].startswith(b"HTTP/1.1 408 Request Timeout\r\n"), received[sock])
            self.assertLess(closedAt[sock], 15.0)
            self.assertGreater(closedAt[sock], 0.9)
        self.stop()

    def test_headTooLargeOnSite(self) -> None:
        """
        With a site, a header line over 16 KiB gets C{431} and a one-line
        explanation before the connection closes.
        """
        server = self.start("--mode", "broadcast")
        host, port = server.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer)
        self.assertTrue(answer.endswith(b"\r\n\r\nrequest head over 16384 bytes\n"), answer)
        self.stop()


class BroadcastTests(SynchronousTestCase):
    """
    L{BroadcastGroup} and L{BroadcastApplication}, over in-memory
    connections.
    """

    def setUp(self) -> None:
        from twisted.internet.address import IPv4Address
        from twisted.internet.task import Clock
        from twisted.internet.testing import StringTransport

        from tests.helpers import requestBytes
        from wsproto_tw.core.config import Config

        self.clock = Clock()
        self.group = BroadcastGroup(maxWriteBuffer=250)
        factory = WebSocketServerFactory(self.group, Config(max_write_buffer=1 << 20), reactor=self.clock)
        self.members = []
        for n in range(3):
            protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1000 + n))
            transport = StringTransport()
            protocol.makeConnection(transport)
            protocol.dataReceived(requestBytes())
            transport.clear()
            self.members.append((protocol, transport))

    def received(self, transport: Any) -> list[bytes]:
        from tests.helpers import parseFrames

        frames = [payload for opcode, payload, _, _ in parseFrames(transport.value())]
        transport.clear()
        return frames

    def say(self, sender: int, text: bytes) -> None:
        from tests.helpers import clientFrame

        self.members[sender][0].dataReceived(clientFrame(0x1, text))

    def test_everyoneReceives(self) -> None:
        """
        A message from one member reaches every member, the sender
        included; a member that left gets nothing more.
        """
        self.assertEqual(len(self.group.members), 3)
        self.say(0, b"hi all")
        for _, transport in self.members:
            self.assertEqual(self.received(transport), [b"hi all"])
        self.members[2][0].connectionLost(None)
        self.assertEqual(len(self.group.members), 2)
        self.say(1, b"two left")
        self.assertEqual([self.received(t) for _, t in self.members], [[b"two left"], [b"two left"], []])

    def test_slowMemberDropped(self) -> None:
        """
        A member whose write buffer is full is sent at most C{maxWriteBuffer}
        bytes more; past that it is dropped, and the others still receive.
        """
        slow, slowTransport = self.members[2]
        slow.pauseProducing()  # its transport's write buffer is full
        message = b"x" * 100
        for _ in range(4):
            self.say(0, message)
        self.assertTrue(slowTransport.disconnecting)
        self.assertEqual(self.received(slowTransport), [message, message])
        self.assertEqual(len(self.group.members), 2)
        self.assertEqual(self.received(self.members[1][1]), [message] * 4)

    def test_drainedMemberKept(self) -> None:
        """
        Once a member's buffer drains, what it was sent while full no longer
        counts.
        """
        slow, slowTransport = self.members[2]
        message = b"x" * 100
        for _ in range(3):
            slow.pauseProducing()
            self.say(0, message)
            self.say(0, message)
            slow.resumeProducing()
        self.assertFalse(slowTransport.disconnecting)
        self.assertEqual(len(self.received(slowTransport)), 6)
        self.assertEqual(len(self.group.members), 3)
