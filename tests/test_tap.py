"""
Tests for L{wsproto_tw.tap}: the options and service of C{twistd websocket},
and a real C{twistd -n websocket} process.
"""

from __future__ import annotations

import re
import socket
import subprocess

from twisted.application.internet import StreamServerEndpointService
from twisted.python.reflect import accumulateClassList
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase
from websockets.sync.client import connect as websocketsConnect

from tests.helpers import clientFrame, parseFrames
from tests.processes import Twistd, twistdCommand
from wsproto_tw.server import WebSocketServerFactory
from wsproto_tw.stomp.options import STOMP_PARAMETERS
from wsproto_tw.tap import Options, makeService


def parameters() -> list[list]:
    """
    @return: the parameter rows of L{Options}, with those it inherits.
    """
    rows: list[list] = []
    accumulateClassList(Options, "optParameters", rows)
    return rows


#: The options that take a value; every one must show in C{--help}.
VALUE_OPTIONS = [name for name, *_ in parameters()] + ["port", "subprotocol", "origin"]


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    L{Options} parses every option of C{twistd websocket}.
    """

    def test_defaults(self) -> None:
        """
        Without options: no explicit port (the service listens on tcp:8080),
        a 1 MiB message limit, no subprotocol and any origin.
        """
        options = parse()
        self.assertEqual(options["port"], [])
        config = options.config()
        self.assertEqual(config.max_message_size, 1 << 20)
        self.assertEqual(config.subprotocols, ())
        self.assertIsNone(config.allowed_origins)

    def test_stompOptionsNeedStompMode(self) -> None:
        """
        C{--auth} and the STOMP options are refused in another mode, where
        they would be ignored (C{--auth} would seem to guard an echo server
        that lets anyone in); so is C{--http2-max-streams} without
        C{--http2}. Given in their mode, or not given, they pass.
        """
        cases = [
            (["--auth", "memory:ann:secret"], "--auth needs --mode stomp: it checks STOMP logins (CONNECT's login and passcode)"),
            (["--mode", "broadcast", "--auth", "anonymous"], "--auth needs --mode stomp: it checks STOMP logins (CONNECT's login and passcode)"),
            (["--heart-beat", "0,0"], "--heart-beat needs --mode stomp"),
            (["--app-prefix", "/x"], "--app-prefix needs --mode stomp"),
            (["--max-subscriptions", "5"], "--max-subscriptions needs --mode stomp"),
            (["--stomp-relay", "tcp:127.0.0.1:61613"], "--stomp-relay needs --mode stomp"),
            (["--http2-max-streams", "7"], "--http2-max-streams needs --http2"),
        ]
        for argv, message in cases:
            exc = self.assertRaises(UsageError, parse, *argv)
            self.assertEqual(str(exc), message)
        parse("--mode", "stomp", "--auth", "memory:ann:secret", "--heart-beat", "0,0", "--max-subscriptions", "5")
        parse("--mode", "broadcast")

    def test_modeOptionsAtTheirDefaultsNeedTheirMode(self) -> None:
        """
        What is refused is an option typed outside its mode, whatever its
        value: each STOMP option given its default value without C{--mode
        stomp}, and C{--http2-max-streams} its default without C{--http2},
        as C{--name value}, C{--name=value} or abbreviated. In their mode
        they pass.
        """
        stomp = [row for row in STOMP_PARAMETERS if row[0] != "redis" and row[2] is not None]
        self.assertEqual(len(stomp), 10)
        cases = [(f"--{name}", str(default), f"--{name} needs --mode stomp") for name, _, default, *_ in stomp]
        cases.append(("--http2-max-streams", str(Options().defaults["http2-max-streams"]), "--http2-max-streams needs --http2"))
        for option, value, message in cases:
            for argv in ([option, value], [f"{option}={value}"], ["--mode", "broadcast", option, value]):
                exc = self.assertRaises(UsageError, parse, *argv)
                self.assertEqual(str(exc), message, argv)
        exc = self.assertRaises(UsageError, parse, "--heart", "10000,10000")
        self.assertEqual(str(exc), "--heart-beat needs --mode stomp")
        parse("--mode", "stomp", *[argument for option, value, _ in cases[:-1] for argument in (option, value)])

    def test_bareNumberPort(self) -> None:
        """
        C{--port 8080} means C{tcp:8080}; other endpoint strings are kept as
        given.
        """
        self.assertEqual(parse("--port", "8080")["port"], ["tcp:8080"])
        self.assertEqual(parse("--port=8080")["port"], ["tcp:8080"])
        self.assertEqual(
            parse("--port", "tcp:8080:interface=127.0.0.1")["port"], ["tcp:8080:interface=127.0.0.1"]
        )
        self.assertEqual(parse("--port", "unix:/run/ws.sock")["port"], ["unix:/run/ws.sock"])

    def test_repeatedPort(self) -> None:
        """
        C{--port} may be repeated; the endpoints are kept in order.
        """
        options = parse("--port", "8080", "--port", "tcp6:8081:interface=\\:\\:1", "--port", "unix:/tmp/ws.sock")
        self.assertEqual(options["port"], ["tcp:8080", "tcp6:8081:interface=\\:\\:1", "unix:/tmp/ws.sock"])

    def test_repeatedSubprotocol(self) -> None:
        """
        C{--subprotocol} may be repeated; the order is the server's
        preference.
        """
        options = parse("--subprotocol", "v11.stomp", "--subprotocol", "v10.stomp")
        self.assertEqual(options["subprotocol"], ["v11.stomp", "v10.stomp"])
        self.assertEqual(options.config().subprotocols, ("v11.stomp", "v10.stomp"))

    def test_repeatedOrigin(self) -> None:
        """
        C{--origin} may be repeated; together they are the allow-list.
        """
        options = parse("--origin", "https://example.com", "--origin", "http://localhost:3000")
        self.assertEqual(options["origin"], ["https://example.com", "http://localhost:3000"])
        self.assertEqual(
            options.config().allowed_origins, frozenset({"https://example.com", "http://localhost:3000"})
        )

    def test_valueOptions(self) -> None:
        """
        Each option that takes a number lands in the L{Config} attribute it
        describes; C{0} turns a timeout off.
        """
        cases = [
            ("max-message-size", "16777216", "max_message_size", 16777216),
            ("max-message-size", "0", "max_message_size", 0),
            ("max-frame-size", "65536", "max_frame_size", 65536),
            ("open-timeout", "2.5", "open_timeout", 2.5),
            ("open-timeout", "0", "open_timeout", None),
            ("close-timeout", "3", "close_timeout", 3.0),
            ("ping-interval", "7.5", "ping_interval", 7.5),
            ("ping-interval", "0", "ping_interval", None),
            ("ping-timeout", "4", "ping_timeout", 4.0),
            ("ping-timeout", "0", "ping_timeout", None),
            ("idle-timeout", "60", "idle_timeout", 60.0),
            ("idle-timeout", "0", "idle_timeout", None),
            ("max-connections", "100", "max_connections", 100),
            ("max-connections", "0", "max_connections", None),
            ("max-write-buffer", "1024", "max_write_buffer", 1024),
            ("write-timeout", "5", "write_buffer_timeout", 5.0),
            ("write-timeout", "0", "write_buffer_timeout", None),
        ]
        for option, value, attribute, expected in cases:
            config = parse(f"--{option}={value}").config()
            self.assertEqual(getattr(config, attribute), expected, (option, value))
        self.assertEqual(parse("--shutdown-grace=2")["shutdown-grace"], 2.0)

    def test_closeTimeoutMustBePositive(self) -> None:
        """
        C{--close-timeout 0} is a usage error, not the default: without a
        close timeout a peer that never answers our Close would be waited
        for forever. C{--help} says so.
        """
        error = self.assertRaises(UsageError, parse, "--close-timeout=0")
        self.assertIn("--close-timeout must be positive", str(error))
        self.assertEqual(parse("--close-timeout=0.5").config().close_timeout, 0.5)
        [description] = [line[3] for line in parameters() if line[0] == "close-timeout"]
        self.assertIn("must be positive", description)

    def test_invalidValues(self) -> None:
        """
        A negative (or out-of-range) or non-numeric value, or an unknown
        option, is a L{UsageError}.
        """
        numeric = [name for name, _, _, _, coerce in parameters() if coerce is not None]
        self.assertIn("max-message-size", numeric)
        for option in numeric:
            # zlib's level -1 means its default level: the one valid negative.
            low = "-2" if option == "compression-level" else "-1"
            for value in (low, "many"):
                self.assertRaises(UsageError, parse, f"--{option}={value}")
        self.assertRaises(UsageError, parse, "--compression-level=10")
        self.assertRaises(UsageError, parse, "--compression-window-bits=7")
        self.assertRaises(UsageError, parse, "--no-such-option")
        self.assertRaises(UsageError, parse, "--port")


class MakeServiceTests(SynchronousTestCase):
    """
    L{makeService} builds one listening service per C{--port}, all with one
    factory.
    """

    def listeners(self, options: Options) -> list[StreamServerEndpointService]:
        service = makeService(options)
        return [s for s in service if isinstance(s, StreamServerEndpointService)]

    def test_onePerPort(self) -> None:
        """
        Each C{--port} gets its own listening service, in order, sharing one
        L{WebSocketServerFactory} configured from the options.
        """
        listeners = self.listeners(
            parse(
                "--port", "8080",
                "--port", "tcp:8081:interface=127.0.0.1",
                "--port", "unix:/tmp/ws.sock",
                "--max-message-size", "4096",
                "--subprotocol", "v10.stomp",
            )
        )
        self.assertEqual(len(listeners), 3)
        endpoints = [s.endpoint for s in listeners]
        self.assertEqual(endpoints[0]._port, 8080)
        self.assertEqual((endpoints[1]._port, endpoints[1]._interface), (8081, "127.0.0.1"))
        self.assertEqual(endpoints[2]._address, "/tmp/ws.sock")
        factories = {id(s.factory) for s in listeners}
        self.assertEqual(len(factories), 1)
        factory = listeners[0].factory
        self.assertIsInstance(factory, WebSocketServerFactory)
        self.assertEqual(factory.config.max_message_size, 4096)
        self.assertEqual(factory.config.subprotocols, ("v10.stomp",))

    def test_defaultPort(self) -> None:
        """
        Without C{--port}, the service listens on tcp:8080.
        """
        listeners = self.listeners(parse())
        self.assertEqual([s.endpoint._port for s in listeners], [8080])

    def test_notRunning(self) -> None:
        """
        Building the service listens on nothing until it starts.
        """
        service = makeService(parse("--port", "tcp:0:interface=127.0.0.1"))
        self.assertFalse(service.running)


def rawConnection(port: int) -> socket.socket:
    """
    @return: a blocking TCP connection to the loopback C{port}, whose
        operations time out after 10 seconds.
    """
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def readUntilClosed(sock: socket.socket) -> bytes:
    """
    @return: everything the server sends until it closes the connection.
    """
    received = b""
    with sock:
        while chunk := sock.recv(65536):
            received += chunk
    return received


class HelpTests(SynchronousTestCase):
    """
    C{twistd websocket --help} finds the plugin and lists every option.
    """

    def test_helpListsEveryOption(self) -> None:
        """
        Every option of L{Options} shows in C{twistd websocket --help}.
        """
        done = subprocess.run(
            [*twistdCommand(), "websocket", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60
        )
        text = done.stdout.decode()
        self.assertEqual(done.returncode, 0, text)
        self.assertIn("websocket", text.splitlines()[0])
        for name in VALUE_OPTIONS:
            self.assertIn(f"--{name}=", text)
        self.assertIn("tcp:8080:interface=127.0.0.1", text)
        # What differs from the client's options: compression is on.
        flat = " ".join(text.split())
        self.assertIn("--compression Accept permessage-deflate offers (RFC 7692); on by default", flat)
        self.assertIn("the same tcp:, tcp6:, ssl: and unix: ports", flat)

    def test_pluginListed(self) -> None:
        """
        C{twistd --help} lists the C{websocket} command.
        """
        done = subprocess.run(
            [*twistdCommand(), "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60
        )
        text = done.stdout.decode()
        self.assertRegex(text, r"\n\s+websocket\s+WebSocket server")


class TwistdTests(SynchronousTestCase):
    """
    A real C{twistd -n websocket} serves echo on a loopback port to another
    implementation's client, and logs one line per connection opened and
    closed, and misbehaving clients without a traceback.
    """

    def test_echoAndLog(self) -> None:
        """
        A C{websockets} client at an arbitrary path gets its text and binary
        messages echoed and the subprotocol it asked for; bad handshakes and
        garbage frames get their RFC answers; the log has one line per
        connection opened and closed, and no traceback.
        """
        twistd = Twistd(
            self, "--port", "tcp:0:interface=127.0.0.1", "--subprotocol", "v10.stomp", "--subprotocol", "v11.stomp"
        )
        port = int(twistd.waitFor(r"starting on (\d+)").group(1))

        # A well-behaved client.
        with websocketsConnect(
            f"ws://127.0.0.1:{port}/any/path/at/all?room=7",
            subprotocols=["v11.stomp"],
            open_timeout=10,
            close_timeout=10,
        ) as ws:
            clientPort = ws.local_address[1]
            self.assertEqual(ws.subprotocol, "v11.stomp")
            ws.send("héllo 🎉")
            self.assertEqual(ws.recv(timeout=10), "héllo 🎉")
            ws.send(b"\x00\xff binary")
            self.assertEqual(ws.recv(timeout=10), b"\x00\xff binary")
            ws.close(1000, "done")
        opened = twistd.waitFor(rf"opened .*127\.0\.0\.1:{clientPort}\b.*").group(0)
        self.assertIn("/any/path/at/all", opened)
        self.assertIn("v11.stomp", opened)
        closed = twistd.waitFor(rf"closed .*127\.0\.0\.1:{clientPort}\b.*").group(0)
        self.assertIn("code=1000 clean=True reason='done' subprotocol=v11.stomp", closed)
        self.assertRegex(closed, r"\d+(\.\d+)?\s?m?s\b")

        # A plain HTTP GET without Upgrade: 426, one log line.
        plain = rawConnection(port)
        plainPort = plain.getsockname()[1]
        plain.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(readUntilClosed(plain).startswith(b"HTTP/1.1 426 "))

        # Garbage instead of a handshake: 400, one log line.
        garbage = rawConnection(port)
        garbagePort = garbage.getsockname()[1]
        garbage.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")
        self.assertTrue(readUntilClosed(garbage).startswith(b"HTTP/1.1 400 "))

        # A valid handshake followed by an unmasked frame: closed with 1002.
        unmasked = rawConnection(port)
        unmaskedPort = unmasked.getsockname()[1]
        unmasked.sendall(
            b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            b"\x81\x05hello"
        )
        answer = readUntilClosed(unmasked)
        self.assertTrue(answer.startswith(b"HTTP/1.1 101 "), answer)
        frames = parseFrames(answer.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(frames[-1][0], 0x8)
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1002)

        # A reserved opcode from a masked client frame: closed with 1002.
        reserved = rawConnection(port)
        reservedPort = reserved.getsockname()[1]
        reserved.sendall(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            + clientFrame(0xB, b"??")
        )
        frames = parseFrames(readUntilClosed(reserved).split(b"\r\n\r\n", 1)[1])
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1002)

        twistd.waitFor(rf"127\.0\.0\.1:{reservedPort}\b.*1002")
        log = twistd.stop()
        self.assertNotIn("Traceback", log)
        self.assertNotIn("Unhandled", log)

        def linesAbout(peerPort: int) -> list[str]:
            return [line for line in log.splitlines() if re.search(rf"127\.0\.0\.1:{peerPort}\b", line)]

        self.assertEqual(len(linesAbout(clientPort)), 2, linesAbout(clientPort))
        self.assertEqual(len(linesAbout(plainPort)), 1, linesAbout(plainPort))
        self.assertEqual(len(linesAbout(garbagePort)), 1, linesAbout(garbagePort))
        for peerPort in (unmaskedPort, reservedPort):
            lines = linesAbout(peerPort)
            self.assertTrue(any("1002" in line for line in lines), lines)
