"""
Tests for L{wsproto_tw._startup}: how C{twistd websocket} starts and
stops. Start-up failures are one line naming the option and the fix, with
a non-zero exit status, in the foreground and in daemon mode; the URL each
port serves is logged; a second interrupt during the shutdown grace ends it
at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from twisted.internet.defer import fail, succeed
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactor
from twisted.logger import globalLogPublisher
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.processes import Twistd, twistdCommand
from tests.test_client import makeCertificate
from wsproto_tw._startup import (
    InterruptibleShutdown,
    ListeningService,
    answering500,
    checkApplication,
    checkOrigin,
    checkPort,
    servedURL,
)
from wsproto_tw.tap import Options

EXAMPLES = (
    "e.g. --port 8080, tcp:8080:interface=127.0.0.1, ssl:8443:privateKey=key.pem:certKey=cert.pem, "
    "unix:/run/ws.sock"
)


def listeningSocket() -> socket.socket:
    """
    @return: a socket listening on a free loopback port, as another program.
    """
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken


class CheckPortTests(SynchronousTestCase):
    """
    L{checkPort} refuses a C{--port} that can't be served, in one line
    naming it and the fix.
    """

    def assertRefused(self, description: str, message: str, listen: bool = False) -> None:
        from twisted.internet import reactor

        error = self.assertRaises(UsageError, checkPort, reactor, description, listen)
        self.assertEqual(str(error), message)

    def test_valid(self) -> None:
        """
        Valid endpoints pass, listening or not; nothing is left listening.
        """
        from twisted.internet import reactor

        taken = listeningSocket()
        port = taken.getsockname()[1]
        taken.close()
        for description in (f"tcp:{port}:interface=127.0.0.1", "tcp:0", "unix:/tmp/ws.sock"):
            checkPort(reactor, description)
            checkPort(reactor, description, listen=True)
        with socket.create_server(("127.0.0.1", port)):
            pass  # still free

    def test_syntax(self) -> None:
        """
        A port that is not a number, and an unescaped IPv6 interface, are
        not valid endpoints; the message shows valid ones.
        """
        self.assertRefused(
            "tcp:abc",
            f"--port tcp:abc: not a valid endpoint (invalid literal for int() with base 10: 'abc'); {EXAMPLES}",
        )
        from twisted.internet import reactor

        error = self.assertRaises(UsageError, checkPort, reactor, "tcp6:8080:interface=::1")
        self.assertTrue(str(error).endswith("; a colon in a value is escaped, e.g. interface=\\:\\:1"), str(error))

    def test_tlsOnIPv6(self) -> None:
        """
        An C{ssl:} port on an IPv6 interface is tried as IPv6 (as Twisted
        listens there), not refused as an address this machine lacks.
        """
        import os

        from twisted.internet import reactor

        from tests.test_tls import hasIPv6Loopback, selfSignedCertificate

        if not hasIPv6Loopback():
            raise self.skipTest("this machine has no IPv6 loopback (::1)")
        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        checkPort(reactor, f"ssl:0:interface=\\:\\:1:privateKey={keyPath}:certKey={certPath}", listen=True)

    def test_linkLocalScope(self) -> None:
        """
        An IPv6 address with a scope (C{fe80::1%lo}) is bound with its
        scope id, as Twisted's port binds it: a C{tcp6:} port on a
        link-local address this machine has is not refused.
        """
        from twisted.internet import reactor

        from wsproto_tw._startup import socketAddress

        self.assertEqual(
            socketAddress(socket.AF_INET6, "fe80::1%lo", 8080), ("fe80::1", 8080, 0, socket.if_nametoindex("lo"))
        )
        self.assertEqual(socketAddress(socket.AF_INET, "127.0.0.1", 8080), ("127.0.0.1", 8080))
        self.assertEqual(socketAddress(socket.AF_INET6, "::1", 80)[:2], ("::1", 80))
        # A link-local address of this machine's, from the kernel's list.
        with open("/proc/net/if_inet6") as f:
            found = [line.split() for line in f if line.split()[3] == "20"]  # scope: link
        for address, index, length, scope, flags, name in found[:1]:
            host = ":".join(address[i : i + 4] for i in range(0, 32, 4))
            escaped = f"{host}%{name}".replace(":", "\\:")
            checkPort(reactor, f"tcp6:0:interface={escaped}", listen=True)

    def test_outOfRange(self) -> None:
        """
        A port number past 65535 is out of range.
        """
        self.assertRefused(
            "tcp:99999", "--port tcp:99999: port 99999 is out of range; use 1 to 65535 (0: any free port)"
        )
        self.assertRefused(
            "ssl:port=70000:privateKey=k.pem",
            "--port ssl:port=70000:privateKey=k.pem: port 70000 is out of range; use 1 to 65535 (0: any free port)",
        )

    def test_unknownType(self) -> None:
        """
        An unknown endpoint type lists the usual ones.
        """
        self.assertRefused(
            "foo:1", f"--port foo:1: unknown endpoint type 'foo'; use tcp:, tcp6:, ssl: or unix: ({EXAMPLES})"
        )

    def test_missingCertificate(self) -> None:
        """
        A key or certificate file that does not exist is named.
        """
        missing = os.path.abspath(self.mktemp())
        self.assertRefused(
            f"ssl:8443:privateKey={missing}:certKey={missing}",
            f"--port ssl:8443:privateKey={missing}:certKey={missing}: can't read {missing}: No such file or "
            "directory; give the paths of existing PEM files (privateKey=KEY.pem:certKey=CERT.pem)",
        )

    def test_badCertificate(self) -> None:
        """
        A file that is not a PEM key, or a key that is not the
        certificate's, is refused.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        certificate, key = makeCertificate(directory)
        other = os.path.join(directory, "other")
        os.makedirs(other)
        _, otherKey = makeCertificate(other)
        for keyPath in (certificate + "x", otherKey):
            if keyPath.endswith("x"):
                with open(keyPath, "w") as f:
                    f.write("not a key\n")
            from twisted.internet import reactor

            description = f"ssl:8443:privateKey={keyPath}:certKey={certificate}"
            error = self.assertRaises(UsageError, checkPort, reactor, description)
            self.assertTrue(str(error).startswith(f"--port {description}: can't load the key and certificate ("))
            self.assertTrue(
                str(error).endswith("); privateKey= and certKey= must name a matching PEM key and certificate")
            )

    def test_inUse(self) -> None:
        """
        Listening, an address another program listens on is in use; without
        listening, it is not tried.
        """
        from twisted.internet import reactor

        with listeningSocket() as taken:
            description = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
            checkPort(reactor, description)
            self.assertRefused(
                description,
                f"--port {description}: address already in use (another program listens there); "
                "stop it or choose another --port",
                listen=True,
            )
            error = self.assertRaises(UsageError, checkPort, reactor, description, True, True)
            self.assertTrue(str(error).startswith(f"--port {description} (the default): address already in use"))

    def test_missingDirectory(self) -> None:
        """
        A UNIX socket in a directory that does not exist is refused when
        listening.
        """
        directory = os.path.abspath(self.mktemp())
        self.assertRefused(
            f"unix:{directory}/ws.sock",
            f"--port unix:{directory}/ws.sock: no such directory: {directory}; "
            "use a path in an existing, writable directory",
            listen=True,
        )

    def test_foreignInterface(self) -> None:
        """
        An interface this machine does not have (TEST-NET-1, RFC 5737) is
        refused when listening.
        """
        self.assertRefused(
            "tcp:0:interface=192.0.2.1",
            "--port tcp:0:interface=192.0.2.1: the interface is not an address of this machine; "
            "use one it has (e.g. 127.0.0.1)",
            listen=True,
        )


class CheckOptionsTests(SynchronousTestCase):
    """
    L{checkOrigin} and L{checkApplication}, and L{Options} using them.
    """

    def test_origin(self) -> None:
        """
        An origin is C{scheme://host[:port]} or C{null}; anything else is
        refused with the form to use.
        """
        for origin in ("https://example.com", "http://localhost:3000", "http://[::1]:8080", "null"):
            checkOrigin(origin)
        for origin, host in (("example.com", "example.com"), ("https://example.com/", "example.com"), ("https://x.example/app", "x.example")):
            error = self.assertRaises(UsageError, checkOrigin, origin)
            self.assertEqual(
                str(error),
                f"--origin {origin}: an origin is scheme://host[:port] with no path, as browsers send it; "
                f"e.g. --origin https://{host}",
            )
        error = self.assertRaises(UsageError, Options().parseOptions, ["--origin", "example.com"])
        self.assertIn("e.g. --origin https://example.com", str(error))

    def test_application(self) -> None:
        """
        An application factory that raises when called is refused, naming
        the exception.
        """
        checkApplication("apps.Fine", lambda: object())

        def broken() -> Any:
            raise KeyError("settings")

        error = self.assertRaises(UsageError, checkApplication, "apps.broken", broken)
        self.assertEqual(
            str(error),
            "--app apps.broken: calling it failed (KeyError: 'settings'); "
            "it must build an application when called with no arguments",
        )
        error = self.assertRaises(UsageError, Options().parseOptions, ["--app", "tests.test_startup.brokenApplication"])
        self.assertIn("calling it failed (RuntimeError: no database)", str(error))

    def test_portsOptions(self) -> None:
        """
        L{Options} checks each C{--port}, and the default one when none is
        given, without listening when not run by twistd.
        """
        error = self.assertRaises(UsageError, Options().parseOptions, ["--port", "tcp:abc"])
        self.assertTrue(str(error).startswith("--port tcp:abc: not a valid endpoint"))
        with listeningSocket() as taken:
            Options().parseOptions(["--port", f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"])


def brokenApplication() -> Any:
    """
    An application factory that always fails.
    """
    raise RuntimeError("no database")


_built = [0]


def laterBrokenApplication() -> Any:
    """
    An application factory that works once (the check at start), then
    fails.
    """
    _built[0] += 1
    if _built[0] > 1:
        raise RuntimeError("database gone")
    from wsproto_tw.apps import EchoApplication

    return EchoApplication()


class Answering500Tests(SynchronousTestCase):
    """
    L{answering500} turns an application factory that raises into an
    application that refuses with C{500}, and logs the failure.
    """

    def test_refuses(self) -> None:
        """
        A factory that works gives its application; one that raises gives
        an application whose C{requestReceived} raises C{Reject(500)}, and
        the exception is logged.
        """
        from wsproto_tw.apps import EchoApplication
        from wsproto_tw.errors import Reject

        self.assertIsInstance(answering500("apps.Echo", EchoApplication)(), EchoApplication)
        application = answering500("apps.broken", brokenApplication)()
        error = self.assertRaises(Reject, application.requestReceived, None)
        self.assertEqual((error.status, error.reason), (500, "the application failed to start; see the server's log"))
        [logged] = self.flushLoggedErrors(RuntimeError)
        self.assertEqual(str(logged.value), "no database")


class ServedURLTests(SynchronousTestCase):
    """
    L{servedURL} says what a port serves.
    """

    def test_urls(self) -> None:
        """
        A loopback port, TLS, IPv6, every interface, pages beside, and a
        UNIX socket.
        """
        self.assertEqual(servedURL(IPv4Address("TCP", "127.0.0.1", 8080), False, "/", False), "ws://127.0.0.1:8080/")
        self.assertEqual(
            servedURL(IPv4Address("TCP", "127.0.0.1", 8443), True, "/ws", True),
            "wss://127.0.0.1:8443/ws and pages at https://127.0.0.1:8443/",
        )
        self.assertEqual(servedURL(IPv6Address("TCP", "::1", 8080), False, "/", False), "ws://[::1]:8080/")
        self.assertEqual(
            servedURL(IPv4Address("TCP", "0.0.0.0", 8080), False, "/", False),
            "ws://localhost:8080/ (every interface)",
        )
        self.assertEqual(servedURL(UNIXAddress("/run/ws.sock"), False, "/", False), "ws:// on unix:/run/ws.sock")


class FakeEndpoint:
    """
    An endpoint whose C{listen} has the given outcome.
    """

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def listen(self, factory: Any) -> Any:
        if isinstance(self.outcome, Exception):
            return fail(self.outcome)
        return succeed(self.outcome)


class FakePort:
    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 8080)


class ListeningServiceTests(SynchronousTestCase):
    """
    L{ListeningService} logs the URL served, or one line on failure after
    which the reactor stops and the exit status is 1.
    """

    def setUp(self) -> None:
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def messages(self) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(e) for e in self.events if e.get("log_namespace") == "wsproto_tw._startup"]

    def test_serving(self) -> None:
        """
        Once listening, the URL served is logged.
        """
        reactor = MemoryReactor()
        service = ListeningService(FakeEndpoint(FakePort()), None, "tcp:8080", reactor, "/chat")
        service.startService()
        self.assertEqual(self.messages(), ["serving ws://127.0.0.1:8080/chat"])
        self.assertFalse(reactor.hasStopped)

    def test_failure(self) -> None:
        """
        Listening fails: one line naming the option and the fix, no
        traceback; the reactor is stopped once running, and after shutdown
        the exit status is 1.
        """
        reactor = MemoryReactor()
        exits: list[int] = []
        error = CannotListenError("127.0.0.1", 8080, OSError(98, "Address already in use"))
        error.socketError.errno = 98
        service = ListeningService(FakeEndpoint(error), None, "tcp:8080", reactor, exit=exits.append)
        service.startService()
        self.assertEqual(
            self.messages(),
            ["--port tcp:8080: address already in use (another program listens there); stop it or choose another --port"],
        )
        self.assertFalse([e for e in self.events if e.get("log_failure") is not None])
        [(hook, args, kwargs)] = reactor.whenRunningHooks
        self.assertEqual(hook, reactor.stop)
        self.assertEqual(exits, [])
        [(call, args, kwargs)] = reactor.triggers["after"]["shutdown"]
        call(*args, **kwargs)
        self.assertEqual(exits, [1])
        # Stopping the service afterwards is quiet.
        service.stopService()


class InterruptibleShutdownTests(SynchronousTestCase):
    """
    L{InterruptibleShutdown.dropAll} drops every remaining connection.
    """

    def test_dropAll(self) -> None:
        """
        Each connection still open is aborted.
        """

        class Connection:
            aborted = False

            def abortConnection(self) -> None:
                self.aborted = True

        class Factory:
            connections = {Connection(), Connection()}

        InterruptibleShutdown(Factory()).dropAll("SIGINT")
        self.assertTrue(all(c.aborted for c in Factory.connections))


def twistd(*arguments: str, daemon: bool = False, cwd: str | None = None, python: str | None = None) -> tuple[int, str]:
    """
    Run C{twistd websocket ARGUMENTS} to its end.

    @param daemon: run it in daemon mode (with a log file and a PID file in
        C{cwd}) instead of C{-n}.
    @param python: code to run before twistd in the child, e.g. to hide a
        module.
    @return: its exit status and its output (standard output and error).
    """
    mode = ["--logfile=twistd.log", "--pidfile=twistd.pid"] if daemon else ["-n", "--pidfile="]
    command = [*twistdCommand(), *mode, "websocket", *arguments]
    if python is not None:
        command = [
            sys.executable,
            "-c",
            f"{python}\nimport sys\nfrom twisted.scripts.twistd import run\nsys.argv = {command[1:]!r}\nrun()",
        ]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, cwd=cwd)
    return done.returncode, done.stdout.decode()


class TwistdStartupTests(SynchronousTestCase):
    """
    The real C{twistd websocket}: each start-up failure is one line and
    exit status 1, in the foreground and in daemon mode.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)

    def assertOneLine(self, arguments: tuple[str, ...], message: str, **kwargs: Any) -> None:
        for daemon in (False, True):
            code, output = twistd(*arguments, daemon=daemon, cwd=self.directory, **kwargs)
            self.assertEqual((code, output), (1, f"twistd websocket: error: {message}\n"), (daemon, arguments))

    def test_portInUse(self) -> None:
        """
        A port another program listens on.
        """
        with listeningSocket() as taken:
            description = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
            self.assertOneLine(
                ("--port", description),
                f"--port {description}: address already in use (another program listens there); "
                "stop it or choose another --port",
            )

    def test_badPorts(self) -> None:
        """
        C{--port 99999}, C{--port tcp:abc}, an unknown endpoint type and a
        missing certificate file.
        """
        self.assertOneLine(
            ("--port", "99999"), "--port tcp:99999: port 99999 is out of range; use 1 to 65535 (0: any free port)"
        )
        self.assertOneLine(
            ("--port", "tcp:abc"),
            f"--port tcp:abc: not a valid endpoint (invalid literal for int() with base 10: 'abc'); {EXAMPLES}",
        )
        self.assertOneLine(
            ("--port", "foo:1"), f"--port foo:1: unknown endpoint type 'foo'; use tcp:, tcp6:, ssl: or unix: ({EXAMPLES})"
        )
        description = "ssl:0:privateKey=key.pem:certKey=cert.pem"
        self.assertOneLine(
            ("--port", description),
            f"--port {description}: can't read {self.directory}/cert.pem: No such file or directory; "
            "give the paths of existing PEM files (privateKey=KEY.pem:certKey=CERT.pem)",
        )

    def test_otherPorts(self) -> None:
        """
        The endpoints of C{--metrics} and C{--stomp-port} are checked as
        C{--port} is, and named.
        """
        with listeningSocket() as taken:
            description = f"tcp:{taken.getsockname()[1]}:interface=127.0.0.1"
            self.assertOneLine(
                ("--port", "tcp:0", "--metrics", description),
                f"--metrics {description}: address already in use (another program listens there); "
                "stop it or choose another --metrics",
            )
        self.assertOneLine(
            ("--port", "tcp:0", "--mode", "stomp", "--stomp-port", "tcp:abc"),
            "--stomp-port tcp:abc: not a valid endpoint (invalid literal for int() with base 10: 'abc'); "
            + EXAMPLES.replace("--port", "--stomp-port"),
        )

    def test_withoutOpenSSL(self) -> None:
        """
        An C{ssl:} port without pyOpenSSL says what to install.
        """
        makeCertificate(self.directory)
        description = "ssl:0:privateKey=key.pem:certKey=cert.pem"
        self.assertOneLine(
            ("--port", description),
            f"--port {description}: TLS needs pyOpenSSL, which is not installed: pip install 'wsproto_tw[tls]' (from a checkout: pip install '.[tls]')",
            python="import sys; sys.modules['OpenSSL'] = None",
        )

    def test_otherOptions(self) -> None:
        """
        Other wrong options are one line too: an origin without a scheme,
        an C{--app} factory that raises, a wrong C{--mode}.
        """
        self.assertOneLine(
            ("--port", "tcp:0", "--origin", "example.com"),
            "--origin example.com: an origin is scheme://host[:port] with no path, as browsers send it; "
            "e.g. --origin https://example.com",
        )
        self.assertOneLine(
            ("--port", "tcp:0", "--app", "tests.test_startup.brokenApplication"),
            "--app tests.test_startup.brokenApplication: calling it failed (RuntimeError: no database); "
            "it must build an application when called with no arguments",
        )
        code, output = twistd("--port", "tcp:0", "--mode", "bad", cwd=self.directory)
        self.assertEqual(code, 1)
        self.assertEqual(len(output.splitlines()), 1, output)
        self.assertTrue(output.startswith("twistd websocket: error: --mode must be "), output)


class TwistdRunTests(SynchronousTestCase):
    """
    A running C{twistd websocket}: the URL it serves, and a second
    interrupt during the shutdown grace.
    """

    def test_servingURL(self) -> None:
        """
        Once listening, each port's URL is logged.
        """
        server = Twistd(self, "--port", "tcp:0:interface=127.0.0.1", "--path", "/chat")
        [port] = server.listening(1)
        server.waitFor(rf"serving ws://127\.0\.0\.1:{port}/chat$")
        self.assertNotIn("Traceback", server.stop())

    def test_applicationFailsLater(self) -> None:
        """
        An C{--app} factory that worked at start and fails for a later
        connection: that connection gets C{500}, and the server goes on.
        """
        server = Twistd(self, "--port", "tcp:0:interface=127.0.0.1", "--app", "tests.test_startup.laterBrokenApplication")
        [port] = server.listening(1)
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as client:
            client.sendall(
                b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            answer = b""
            while chunk := client.recv(4096):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), answer)
        self.assertTrue(answer.endswith(b"\r\n\r\nthe application failed to start; see the server's log\n"), answer)
        server.waitFor(r"--app tests.test_startup.laterBrokenApplication: building the application failed")
        server.stop()

    def test_secondInterrupt(self) -> None:
        """
        With a connection that never answers the 1001 Going Away, a first
        SIGINT starts the 60-second grace; a second one drops the
        connection and ends the server at once, without a traceback.
        """
        server = Twistd(self, "--port", "tcp:0:interface=127.0.0.1", "--shutdown-grace", "60")
        [port] = server.listening(1)
        client = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        self.addCleanup(client.close)
        client.sendall(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.assertTrue(client.recv(100).startswith(b"HTTP/1.1 101 "))
        server.waitFor(r"opened ")
        server.process.send_signal(signal.SIGINT)
        server.waitFor(r"SIGINT")
        started = time.monotonic()
        server.process.send_signal(signal.SIGINT)
        server.waitFor(r"SIGINT again: dropping 1 connection\(s\) now")
        server.process.wait(30)
        self.assertLess(time.monotonic() - started, 10)
        log = server.stop()
        self.assertNotIn("Traceback", log)
        self.assertNotIn("ReactorNotRunning", log)
