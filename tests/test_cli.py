"""
Tests for C{python -m wsproto_tw}, the command-line client: its helpers
directly, and the command itself in a child process, fed through a pipe,
against servers on loopback.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TimeoutError
from twisted.internet.protocol import ProcessProtocol, Protocol, ServerFactory
from twisted.python.failure import Failure
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.test_client import closeAll, listenTCP, listenTLS, makeCertificate, makeChain
from tests.tools import spawnCommand
from wsproto_tw.__main__ import _Printer, _Session, describeError, escapeControl, formatBinary
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.core.errors import NotWebSocketServer
from wsproto_tw.errors import ConnectionClosed, HandshakeRejected, HandshakeTimeout
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


class FormatTests(SynchronousTestCase):
    """
    The one-line renderings of binary messages and of errors.
    """

    def test_binaryShort(self) -> None:
        """
        A short binary message is shown whole in hex with its length.
        """
        self.assertEqual(formatBinary(b"\x00\x01\xff"), "<binary 3 bytes: 0001ff>")

    def test_binaryLong(self) -> None:
        """
        A long binary message shows its first 32 bytes and an ellipsis.
        """
        self.assertEqual(
            formatBinary(bytes(range(40))),
            "<binary 40 bytes: " + bytes(range(32)).hex() + "...>",
        )

    def test_binaryEmpty(self) -> None:
        """
        An empty binary message says so.
        """
        self.assertEqual(formatBinary(b""), "<binary 0 bytes>")

    def test_rejected(self) -> None:
        """
        A rejection reads as its status line; an invalid C{101} says what
        was wrong with it.
        """
        self.assertEqual(describeError(HandshakeRejected("Forbidden", 403)), "403 Forbidden")
        self.assertEqual(
            describeError(HandshakeRejected("wrong sec-websocket-accept", 101)),
            "invalid handshake response: wrong sec-websocket-accept",
        )
        self.assertEqual(
            describeError(HandshakeRejected("malformed response: not an http status line")),
            "invalid handshake response: malformed response: not an http status line",
        )

    def test_network(self) -> None:
        """
        Refused connections, DNS failures and timeouts name the server.
        """
        self.assertEqual(
            describeError(ConnectionRefusedError(), "example.com", 81), "connection refused by example.com:81"
        )
        self.assertEqual(describeError(DNSLookupError("x"), "nowhere.invalid", 80), "can't resolve nowhere.invalid")
        self.assertEqual(describeError(TimeoutError(), "example.com", 80), "connecting to example.com:80 timed out")
        self.assertEqual(
            describeError(HandshakeTimeout("opening handshake timed out")), "opening handshake timed out"
        )

    def test_tls(self) -> None:
        """
        OpenSSL's error queue becomes its reasons.
        """
        from OpenSSL.SSL import Error

        error = Error([("SSL routines", "", "certificate verify failed")])
        self.assertEqual(
            describeError(error),
            "TLS failure: certificate verify failed (not signed by a CA this client trusts (--cafile names one),"
            " expired or not yet valid)",
        )
        untrusted = " (not signed by a CA this client trusts: --cafile names one)"
        for why, hint in (
            ("unable to get local issuer certificate", untrusted),
            ("self-signed certificate in certificate chain", untrusted),
            ("certificate has expired", ""),
        ):
            error = Error([("SSL routines", "", f"certificate verify failed: {why}")])
            self.assertEqual(describeError(error), f"TLS failure: certificate verify failed: {why}{hint}")

    def test_verifyFailureHints(self) -> None:
        """
        The hint that goes with a certificate that fails verification is
        chosen by OpenSSL's exact reason (its code's text), whichever
        certificate of the chain failed: trust failures (codes 18, 19, 20,
        21, 27) say to name a CA; an issuer not found above a trusted
        certificate that is not self-signed (2) says to name the root CA;
        other failures that merely mention an issuer (24, 33, 70) get no
        hint.
        """
        from OpenSSL.SSL import Error

        from wsproto_tw.client import _verifyReason

        untrusted = " (not signed by a CA this client trusts: --cafile names one)"
        notRoot = (
            " (the chain reaches a certificate this client trusts that is not a root CA: --cafile must name the"
            " root CA (self-signed) the chain ends at, not an intermediate CA)"
        )
        hints = {2: notRoot, 18: untrusted, 19: untrusted, 20: untrusted, 21: untrusted, 27: untrusted}
        for errno in (2, 10, 18, 19, 20, 21, 24, 27, 33, 70):
            for where in ("", " (the chain's certificate at depth 1, CN=CA; the server's own is at depth 0)"):
                why = f"certificate verify failed: {_verifyReason(errno)}{where}"
                self.assertEqual(
                    describeError(Error([("SSL routines", "", why)])),
                    f"TLS failure: {why}{hints.get(errno, '')}",
                    errno,
                )

    def test_unmatchableAltNames(self) -> None:
        """
        A certificate whose C{subjectAltName} names no host that can be
        matched says so, naming its entries (not that it has no
        C{subjectAltName}).
        """
        from service_identity import CertificateError

        error = CertificateError(
            "the certificate's subjectAltName names no host this client can match (it has only DNS:*.localhost)"
        )
        self.assertEqual(
            describeError(error, "localhost", 8443, True),
            "TLS failure: the certificate is not for localhost: its subjectAltName names no host this client can"
            " match (it has only DNS:*.localhost)",
        )

    def test_oneLine(self) -> None:
        """
        Whatever the error, the description is one line.
        """
        self.assertEqual(describeError(ValueError("a\nb\r\nc")), "a b c")

    def test_rejectionReason(self) -> None:
        """
        A 4xx or 5xx answer shows the first line of its body, the reason the
        server sent, unless it only repeats the status; an HTML page shows
        its title.
        """
        text = [("Content-Type", "text/plain; charset=utf-8")]
        self.assertEqual(
            describeError(HandshakeRejected("Not Found", 404, text, b"no such socket\nmore\n")),
            "404 Not Found: no such socket",
        )
        self.assertEqual(
            describeError(HandshakeRejected("Service Unavailable", 503, text, b"\n  too many  connections\n")),
            "503 Service Unavailable: too many connections",
        )
        self.assertEqual(describeError(HandshakeRejected("Forbidden", 403, text, b"forbidden\n")), "403 Forbidden")
        self.assertEqual(describeError(HandshakeRejected("Forbidden", 403)), "403 Forbidden")
        page = b"<!DOCTYPE html>\n<html><head><title>502 Bad &amp; Gateway</title></head><body>...</body></html>"
        self.assertEqual(
            describeError(HandshakeRejected("Bad Gateway", 502, [("Content-Type", "text/html")], page)),
            "502 Bad Gateway: 502 Bad & Gateway",
        )
        self.assertEqual(
            describeError(HandshakeRejected("Teapot", 418, text, b"x" * 300)), "418 Teapot: " + "x" * 200 + "..."
        )

    def test_escapeControl(self) -> None:
        """
        L{escapeControl} writes C0 controls, DEL and C1 controls as
        C{\\xNN} escapes and leaves every other character alone.
        """
        self.assertEqual(
            escapeControl("a\x1b]0;PWNED\x07b\x00\t\n\x7f\x85\x9b\xa0\u00e9\u20ac"),
            "a\\x1b]0;PWNED\\x07b\\x00\\x09\\x0a\\x7f\\x85\\x9b\xa0\u00e9\u20ac",
        )

    def test_rejectionEscaped(self) -> None:
        """
        A refused handshake's reason phrase and body line reach the
        terminal with their control characters escaped.
        """
        text = [("Content-Type", "text/plain")]
        self.assertEqual(
            describeError(HandshakeRejected("Forbidden \x1b]0;PWNED\x07", 403, text, b"go \x1b[2J\xc2\x9b away\n")),
            "403 Forbidden \\x1b]0;PWNED\\x07: go \\x1b[2J\\x9b away",
        )
        location = [("Location", "http://x/\x1b[2J")]
        self.assertEqual(
            describeError(HandshakeRejected("Found", 302, location)),
            "302 Found: redirected to http://x/\\x1b[2J (not followed)",
        )

    def test_notWebSocketServer(self) -> None:
        """
        A 2xx answer says plainly that the server is not a WebSocket
        server; a redirect says where to; the core's reason for an answer
        that is not HTTP is shown as it is.
        """
        self.assertEqual(
            describeError(HandshakeRejected("OK", 200, [("Content-Type", "text/html")], b"<html>hi</html>")),
            "200 OK: not a websocket server (it answered as to a plain web request, not with 101)",
        )
        self.assertEqual(
            describeError(HandshakeRejected("Found", 302, [("Location", "wss://example.com/")])),
            "302 Found: redirected to wss://example.com/ (not followed)",
        )
        self.assertEqual(
            describeError(NotWebSocketServer('not a websocket server but an ssh server ("SSH-2.0-x")')),
            'not a websocket server but an ssh server ("SSH-2.0-x")',
        )

    def test_wrongScheme(self) -> None:
        """
        Signs that the URL's scheme does not match the port get a hint:
        OpenSSL's complaint about a plain-text answer, a timeout with
        C{wss://}, a close before any answer with C{ws://}.
        """
        from OpenSSL.SSL import Error

        error = Error([("SSL routines", "", "wrong version number")])
        self.assertEqual(
            describeError(error, "localhost", 8080, secure=True),
            "TLS failure: wrong version number (the server does not speak TLS on port 8080: try ws://)",
        )
        self.assertEqual(
            describeError(HandshakeTimeout("opening handshake timed out"), "localhost", 8080, secure=True),
            "opening handshake timed out (if the port does not speak TLS, the TLS handshake never ends: try ws://)",
        )
        timeout = HandshakeTimeout("opening handshake timed out: the TLS handshake did not finish")
        self.assertEqual(
            describeError(timeout, "localhost", 8080, secure=True),
            f"{timeout} (if the port does not speak TLS, the TLS handshake never ends: try ws://)",
        )
        # TLS finished (HTTP/2 waited for the server's settings): no hint.
        timeout = HandshakeTimeout("opening handshake timed out waiting for the server's settings")
        self.assertEqual(describeError(timeout, "localhost", 8080, secure=True), str(timeout))
        # Timed out before TLS began (connecting, or a proxy's tunnel): no hint.
        timeout = HandshakeTimeout("opening handshake timed out while connecting (the proxy p:1 had not opened the tunnel)")
        self.assertEqual(describeError(timeout, "localhost", 8080, secure=True), str(timeout))
        self.assertEqual(
            describeError(HandshakeRejected("connection closed before the handshake response"), "localhost", 8443),
            "invalid handshake response: connection closed before the handshake response "
            "(if the port speaks TLS, use wss://)",
        )

    def test_certificateNames(self) -> None:
        """
        A certificate for another name says which names it is for.
        """
        from service_identity import VerificationError
        from service_identity.exceptions import DNSMismatch
        from service_identity.hazmat import DNS_ID

        error = VerificationError(errors=[DNSMismatch(mismatched_id=DNS_ID("localhost"))])
        self.assertEqual(
            describeError(error, "localhost", 8443, True, ["other.example", "10.0.0.1"]),
            "TLS failure: the certificate is not for localhost but for other.example, 10.0.0.1",
        )
        self.assertEqual(
            describeError(error, "localhost", 8443, True), "TLS failure: the certificate is not for localhost"
        )

    def test_tlsMissing(self) -> None:
        """
        Without the C{tls} extra, the error says what to install.
        """
        error = ModuleNotFoundError("No module named 'OpenSSL'", name="OpenSSL")
        self.assertEqual(describeError(error), "wss:// needs TLS support, which is not installed: pip install 'wsproto_tw[tls]' (from a checkout: pip install '.[tls]')")


class CommandOutput(ProcessProtocol):
    """
    Feeds a child its input, then collects its output and exit status.
    """

    def __init__(self, input: bytes) -> None:
        self.input = input
        self.out = b""
        self.err = b""
        self.ended: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.input)
        self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        self.ended.callback((self.out.decode(), self.err.decode(), code))


def runCommand(testCase: TestCase, args: list[str], input: bytes = b"") -> Deferred:
    """
    Run C{python -m wsproto_tw ARGS} with C{input} on its standard input.

    @return: a L{Deferred} firing with (stdout, stderr, exit status).
    """
    child = CommandOutput(input)
    spawnCommand(testCase, child, args)
    return child.ended


class Server(WebSocketApplication):
    """
    Echoes text, answers C{bin} with 40 binary bytes, C{quit} with a close
    (4000, "bye"), and C{slow:TEXT} with TEXT after 0.3 seconds.
    """

    requests: list[Any] = []

    def requestReceived(self, request: Any) -> None:
        Server.requests.append(request)

    def textMessageReceived(self, text: str) -> None:
        if text == "bin":
            self.transport.sendBinary(bytes(range(40)))
        elif text == "quit":
            self.transport.close(4000, "bye")
        elif text.startswith("slow:"):
            reactor.callLater(0.3, self.transport.sendText, text[5:])
        else:
            self.transport.sendText(text)


class CommandTests(TestCase):
    """
    The command in a pipe.
    """

    timeout = 60

    def setUp(self) -> None:
        Server.requests = []
        self.factory = WebSocketServerFactory(Server, Config(subprotocols=("chat",)))
        self.addCleanup(closeAll, self.factory)
        self.port = listenTCP(self, self.factory)
        self.url = f"ws://127.0.0.1:{self.port}/cli"

    @inlineCallbacks
    def test_pipe(self) -> None:
        """
        Lines from a pipe are sent, the replies printed, and at the end of
        input the client closes cleanly and exits with 0.
        """
        out, err, code = yield runCommand(self, [self.url], "hi\nh\u00e9 there\r\n\n".encode())
        self.assertEqual(out, "hi\nh\u00e9 there\n\n")
        self.assertEqual(err, "closed: 1000\n")
        self.assertEqual(code, 0)

    @inlineCallbacks
    def test_binary(self) -> None:
        """
        A binary message is printed as a one-line hex summary.
        """
        out, err, code = yield runCommand(self, [self.url], b"bin\n")
        self.assertEqual(out, "<binary 40 bytes: " + bytes(range(32)).hex() + "...>\n")
        self.assertEqual(code, 0)

    @inlineCallbacks
    def test_waitsForLateReplies(self) -> None:
        """
        At the end of input the client waits for replies that come after a
        delay, up to C{--wait} seconds of quiet.
        """
        out, err, code = yield runCommand(self, [self.url, "--wait", "2"], b"slow:late\nnow\n")
        self.assertEqual(out, "now\nlate\n")
        self.assertEqual(code, 0)

    @inlineCallbacks
    def test_serverCloses(self) -> None:
        """
        The server's close code and reason are shown; a code other than
        1000 or 1001 makes the exit status 1.
        """
        out, err, code = yield runCommand(self, [self.url], b"quit\n")
        self.assertEqual(err, "closed: 4000 bye\n")
        self.assertEqual(code, 1)

    @inlineCallbacks
    def test_options(self) -> None:
        """
        C{--subprotocol}, C{--header} and C{--origin} reach the server.
        """
        out, err, code = yield runCommand(
            self,
            [self.url + "?x=1", "-s", "superchat", "--subprotocol", "chat", "-H", "X-Token: a b", "--header", "X-Other:2", "--origin", "https://example.com"],
            b"hi\n",
        )
        self.assertEqual((out, code), ("hi\n", 0))
        [request] = Server.requests
        self.assertEqual(request.target, "/cli?x=1")
        self.assertEqual(request.subprotocols, ["superchat", "chat"])
        self.assertEqual(request.get("x-token"), "a b")
        self.assertEqual(request.get("x-other"), "2")
        self.assertEqual(request.origin, "https://example.com")

    @inlineCallbacks
    def test_compression(self) -> None:
        """
        With C{--compression} the client offers permessage-deflate, a server
        that accepts it gets compressed messages, and the replies are
        inflated and printed.
        """
        opened: list[Any] = []

        class Recorder(Server):
            def connectionOpened(self, transport: Any) -> None:
                opened.append(transport.extensions)

        factory = WebSocketServerFactory(Recorder, Config(compression=PerMessageDeflate()))
        self.addCleanup(closeAll, factory)
        url = f"ws://127.0.0.1:{listenTCP(self, factory)}/cli"
        text = "compress me " * 100
        out, err, code = yield runCommand(self, [url, "--compression"], (text + "\n").encode())
        self.assertEqual((out, code), (text + "\n", 0))
        [request] = Server.requests
        self.assertIn("permessage-deflate", request.get("sec-websocket-extensions"))
        self.assertEqual(len(opened), 1)
        self.assertTrue(opened[0].startswith("permessage-deflate"), opened)

    @inlineCallbacks
    def test_maxMessageSize(self) -> None:
        """
        A message past C{--max-message-size} fails the connection with 1009.
        """
        out, err, code = yield runCommand(self, [self.url, "--max-message-size", "10"], b"x" * 20 + b"\n")
        self.assertIn("1009", err)
        self.assertEqual(code, 1)

    @inlineCallbacks
    def test_forbidden(self) -> None:
        """
        A rejected handshake exits with 1 and one line naming the status and
        the server's reason.
        """
        factory = WebSocketServerFactory(Server, Config(allowed_origins=frozenset({"https://good.example"})))
        port = listenTCP(self, factory)
        out, err, code = yield runCommand(self, [f"ws://127.0.0.1:{port}/", "--origin", "https://evil.example"], b"hi\n")
        self.assertEqual((out, err, code), ("", "error: 403 Forbidden: origin https://evil.example is not allowed\n", 1))

    @inlineCallbacks
    def test_refused(self) -> None:
        """
        A refused connection exits with 1 and one line.
        """
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        out, err, code = yield runCommand(self, [f"ws://127.0.0.1:{number}/"], b"hi\n")
        self.assertEqual((out, err, code), ("", f"error: connection refused by 127.0.0.1:{number}\n", 1))

    @inlineCallbacks
    def test_badArguments(self) -> None:
        """
        A URL that is not a WebSocket URL or a malformed header exits with 2.
        """
        out, err, code = yield runCommand(self, ["http://example.com/"])
        self.assertEqual(code, 2)
        self.assertIn("not a websocket url", err)
        out, err, code = yield runCommand(self, [self.url, "-H", "no colon"])
        self.assertEqual(code, 2)
        self.assertIn("expected 'Name: value'", err)


class HelpTests(TestCase):
    """
    C{--help} and C{--version}.
    """

    timeout = 60

    @inlineCallbacks
    def test_version(self) -> None:
        """
        C{--version} prints the version of wsproto_tw and exits with 0.
        """
        from wsproto_tw import __version__

        out, err, code = yield runCommand(self, ["--version"])
        self.assertEqual((out, code), (f"wsproto_tw {__version__}\n", 0))

    @inlineCallbacks
    def test_helpListsCommands(self) -> None:
        """
        C{--help} lists the options and the interactive commands, and
        exits with 0.
        """
        out, err, code = yield runCommand(self, ["--help"])
        self.assertEqual(code, 0)
        for text in ("--max-message-size=", "--commands", "--version", "/binary HEX", "/ping [TEXT]", "/close [CODE [REASON]]"):
            self.assertIn(text, out)


class SecureCommandTests(TestCase):
    """
    The command against a wss:// server with a self-signed certificate.
    """

    timeout = 60

    def setUp(self) -> None:
        tmp = self.mktemp()
        os.makedirs(tmp)
        self.certPath, keyPath = makeCertificate(tmp)
        factory = WebSocketServerFactory(Server)
        self.addCleanup(closeAll, factory)
        self.url = f"wss://localhost:{listenTLS(self, factory, self.certPath, keyPath)}/"

    @inlineCallbacks
    def test_cafile(self) -> None:
        """
        With C{--cafile} the certificate is trusted.
        """
        out, err, code = yield runCommand(self, [self.url, "--cafile", self.certPath], b"hi\n")
        self.assertEqual((out, err, code), ("hi\n", "closed: 1000\n", 0))

    @inlineCallbacks
    def test_cafileMissing(self) -> None:
        """
        A C{--cafile} that can't be read: one line naming the option and
        the file, exit status 2.
        """
        out, err, code = yield runCommand(self, [self.url, "--cafile", "/nonexistent/ca.pem"], b"hi\n")
        self.assertEqual((out, err, code), ("", "error: --cafile /nonexistent/ca.pem: No such file or directory\n", 2))

    @inlineCallbacks
    def test_insecure(self) -> None:
        """
        With C{--insecure} nothing is verified.
        """
        out, err, code = yield runCommand(self, [self.url, "--insecure"], b"hi\n")
        self.assertEqual((out, code), ("hi\n", 0))

    @inlineCallbacks
    def test_untrusted(self) -> None:
        """
        By default the self-signed certificate fails verification: exit 1
        with a one-line TLS error.
        """
        out, err, code = yield runCommand(self, [self.url], b"hi\n")
        self.assertEqual(
            (out, err, code),
            (
                "",
                "error: TLS failure: certificate verify failed: self-signed certificate (not signed by a CA this"
                " client trusts: --cafile names one)\n",
                1,
            ),
        )


class Refuser(WebSocketApplication):
    """
    Refuses every handshake as the request's path says: C{/404} with
    C{Reject(404, "no such socket")}, C{/503} with a busy server's reason.
    """

    def requestReceived(self, request: Any) -> None:
        from wsproto_tw.errors import Reject

        if request.path == "/404":
            raise Reject(404, "no such socket")
        raise Reject(503, "too many connections; try again later")


class Banner(Protocol):
    """
    Another protocol's server: writes C{greeting} when a client connects (or
    C{answer} to its first bytes) and keeps the connection open.
    """

    greeting = b""
    answer = b""

    def connectionMade(self) -> None:
        if self.greeting:
            self.transport.write(self.greeting)

    def dataReceived(self, data: bytes) -> None:
        if self.answer:
            self.transport.write(self.answer)
            self.answer = b""


def bannerFactory(testCase: TestCase, greeting: bytes = b"", answer: bytes = b"") -> int:
    """
    Serve a L{Banner} on a loopback port until the test ends; its
    connections are dropped then.

    @return: the port.
    """
    connections: list[Banner] = []

    class Server(Banner):
        def connectionMade(self) -> None:
            connections.append(self)
            super().connectionMade()

    Server.greeting, Server.answer = greeting, answer
    factory = ServerFactory.forProtocol(Server)
    testCase.addCleanup(lambda: [c.transport.abortConnection() for c in connections])
    return listenTCP(testCase, factory)


class PeerTests(TestCase):
    """
    A failed handshake shows what the server said, and says plainly when
    the peer is not a WebSocket server, at once rather than at the opening
    deadline (C{--open-timeout 30} here: each test ends well before it).
    """

    timeout = 60

    @inlineCallbacks
    def command(self, url: str, *args: str) -> Any:
        started = time.monotonic()
        out, err, code = yield runCommand(self, [url, "--open-timeout", "30", *args], b"hi\n")
        self.assertLess(time.monotonic() - started, 15, err)
        self.assertEqual((out, code), ("", 1), err)
        return err

    @inlineCallbacks
    def test_rejectionReason(self) -> None:
        """
        A server that refuses with C{Reject(404, "no such socket")}, or
        with 503 and a reason, is quoted after the status line.
        """
        port = listenTCP(self, WebSocketServerFactory(Refuser))
        err = yield self.command(f"ws://127.0.0.1:{port}/404")
        self.assertEqual(err, "error: 404 Not Found: no such socket\n")
        err = yield self.command(f"ws://127.0.0.1:{port}/busy")
        self.assertEqual(err, "error: 503 Service Unavailable: too many connections; try again later\n")

    @inlineCallbacks
    def test_webPage(self) -> None:
        """
        An ordinary web server's C{200} page is not a WebSocket server.
        """
        from twisted.web.server import Site
        from twisted.web.static import Data

        page = Data(b"<html><title>Home</title></html>", "text/html")
        page.isLeaf = True
        port = listenTCP(self, Site(page))
        err = yield self.command(f"ws://127.0.0.1:{port}/")
        self.assertEqual(
            err, "error: 200 OK: not a websocket server (it answered as to a plain web request, not with 101)\n"
        )

    @inlineCallbacks
    def test_sshServer(self) -> None:
        """
        An SSH server, which greets first and waits, is named at once.
        """
        port = bannerFactory(self, greeting=b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        err = yield self.command(f"ws://127.0.0.1:{port}/")
        self.assertEqual(err, 'error: not a websocket server but an ssh server ("SSH-2.0-OpenSSH_9.2p1 Debian-2")\n')

    @inlineCallbacks
    def test_tlsPortWithWs(self) -> None:
        """
        A TLS server that answers the plain-text request with an alert and
        keeps the connection open: the client says to use C{wss://} at once.
        """
        port = bannerFactory(self, answer=b"\x15\x03\x01\x00\x02\x02\x46")
        err = yield self.command(f"ws://127.0.0.1:{port}/")
        self.assertEqual(
            err, "error: the server answered in tls, not http: this port speaks tls; connect with wss://\n"
        )

    @inlineCallbacks
    def test_tlsPortClosingWithWs(self) -> None:
        """
        A TLS server that closes on the plain-text request without a word
        (Twisted's does): the error says to use C{wss://} if the port
        speaks TLS.
        """
        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp)
        factory = WebSocketServerFactory(Server)
        self.addCleanup(closeAll, factory)
        port = listenTLS(self, factory, certPath, keyPath)
        err = yield self.command(f"ws://127.0.0.1:{port}/")
        self.assertEqual(
            err,
            "error: invalid handshake response: connection closed before the handshake response "
            "(if the port speaks TLS, use wss://)\n",
        )

    @inlineCallbacks
    def test_plainPortWithWss(self) -> None:
        """
        C{wss://} to a plain WebSocket port fails at once, saying to try
        C{ws://}.
        """
        port = listenTCP(self, WebSocketServerFactory(Server))
        err = yield self.command(f"wss://127.0.0.1:{port}/", "--insecure")
        self.assertTrue(err.startswith("error: TLS failure: "), err)
        self.assertTrue(err.endswith(f"(the server does not speak TLS on port {port}: try ws://)\n"), err)


class CertificateNameTests(TestCase):
    """
    A certificate for another name says which names it is for.
    """

    timeout = 60

    def againstCertificate(self, **certificate: Any) -> Deferred:
        """
        @param certificate: L{makeCertificate}'s arguments.
        @return: a Deferred firing with the command's output, error and
            exit status, run against a TLS server with that certificate
            (trusted with C{--cafile}) as C{wss://localhost}.
        """
        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp, **certificate)
        factory = WebSocketServerFactory(Server)
        self.addCleanup(closeAll, factory)
        port = listenTLS(self, factory, certPath, keyPath)
        return runCommand(self, [f"wss://localhost:{port}/", "--cafile", certPath], b"hi\n")

    @inlineCallbacks
    def test_otherName(self) -> None:
        """
        A trusted certificate for C{other.example} and C{www.other.example}
        reached as C{localhost}: the error names both.
        """
        out, err, code = yield self.againstCertificate(names=("other.example", "www.other.example"), ips=())
        self.assertEqual(
            (out, err, code),
            ("", "error: TLS failure: the certificate is not for localhost but for other.example, www.other.example\n", 1),
        )

    @inlineCallbacks
    def test_noSubjectAltName(self) -> None:
        """
        A trusted certificate without a C{subjectAltName}, its common name
        the host's: refused, in one line saying why, with no traceback.
        """
        out, err, code = yield self.againstCertificate(names=("localhost",), ips=(), san=False)
        self.assertEqual(
            (out, err, code),
            (
                "",
                "error: TLS failure: the certificate is not for localhost: it names no host"
                " (no subjectAltName; a certificate's common name is not used)\n",
                1,
            ),
        )


    @inlineCallbacks
    def test_unmatchableAltNames(self) -> None:
        """
        A trusted certificate whose C{subjectAltName} holds only a
        malformed wildcard: refused, saying its C{subjectAltName} names no
        host this client can match, and naming the entry.
        """
        out, err, code = yield self.againstCertificate(names=("*.localhost",), ips=())
        self.assertEqual(
            (out, err, code),
            (
                "",
                "error: TLS failure: the certificate is not for localhost: its subjectAltName names no host this"
                " client can match (it has only DNS:*.localhost)\n",
                1,
            ),
        )


class CertificateChainTests(TestCase):
    """
    A server presenting its certificate and an intermediate CA's, signed by
    a root CA.
    """

    timeout = 60

    def setUp(self) -> None:
        tmp = self.mktemp()
        os.makedirs(tmp)
        self.paths = makeChain(tmp)
        factory = WebSocketServerFactory(Server)
        self.addCleanup(closeAll, factory)
        self.url = f"wss://localhost:{listenTLS(self, factory, self.paths['cert'], self.paths['key'])}/"

    @inlineCallbacks
    def test_rootCA(self) -> None:
        """
        With C{--cafile} naming the root CA, the chain is trusted.
        """
        out, err, code = yield runCommand(self, [self.url, "--cafile", self.paths["root"]], b"hi\n")
        self.assertEqual((out, err, code), ("hi\n", "closed: 1000\n", 0))

    @inlineCallbacks
    def test_intermediateCA(self) -> None:
        """
        With C{--cafile} naming the intermediate CA: refused, saying that
        C{--cafile} must name the root CA.
        """
        out, err, code = yield runCommand(self, [self.url, "--cafile", self.paths["intermediate"]], b"hi\n")
        self.assertEqual(
            (out, err, code),
            (
                "",
                "error: TLS failure: certificate verify failed: unable to get issuer certificate (the chain's"
                " certificate at depth 1, CN=Test Intermediate CA; the server's own is at depth 0) (the chain"
                " reaches a certificate this client trusts that is not a root CA: --cafile must name the root CA"
                " (self-signed) the chain ends at, not an intermediate CA)\n",
                1,
            ),
        )


# Runs the command with pyOpenSSL hidden, as in a virtualenv without the
# tls extra.
WITHOUT_OPENSSL = """
import sys
sys.modules["OpenSSL"] = None
from wsproto_tw.__main__ import main
sys.exit(main())
"""


class WithoutTLSTests(TestCase):
    """
    Without the C{tls} extra, C{wss://} says what to install.
    """

    timeout = 60

    @inlineCallbacks
    def test_wssWithoutOpenSSL(self) -> None:
        """
        C{wss://} without pyOpenSSL: one line naming
        C{pip install 'wsproto_tw[tls]'}, exit status 1, with or without
        C{--cafile}.
        """
        for extra in ([], ["--cafile", "/nonexistent.pem"]):
            child = CommandOutput(b"")
            reactor.spawnProcess(
                child,
                sys.executable,
                [sys.executable, "-c", WITHOUT_OPENSSL, "wss://127.0.0.1:1/", *extra],
                env=os.environ,
            )
            out, err, code = yield child.ended
            self.assertEqual(
                (out, err, code),
                ("", "error: wss:// needs TLS support, which is not installed: pip install 'wsproto_tw[tls]' (from a checkout: pip install '.[tls]')\n", 1),
            )


class _Lines:
    """
    An output that records its lines.
    """

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def out(self, line: str) -> None:
        self.lines.append(("out", line))

    def err(self, line: str) -> None:
        self.lines.append(("err", line))


class SessionOutputTests(SynchronousTestCase):
    """
    What a session prints of what the server sends.
    """

    def session(self, escapeText: bool = False) -> tuple[_Session, _Lines]:
        output = _Lines()
        session = _Session(
            MemoryReactorClock(), output, wait=1, interactive=False, commands=False, standardIO=lambda p: None
        )
        session.escapeText = escapeText
        return session, output

    def test_closeReasonEscaped(self) -> None:
        """
        A close reason's control characters are escaped.
        """
        session, output = self.session()
        _Printer(session).connectionLost(Failure(ConnectionClosed(1000, "bye\x1b]0;PWNED\x07", True)))
        self.assertEqual(output.lines, [("err", "closed: 1000 bye\\x1b]0;PWNED\\x07")])

    def test_textOnTerminalEscaped(self) -> None:
        """
        When standard output is a terminal, a text message's control
        characters are escaped.
        """
        session, output = self.session(escapeText=True)
        _Printer(session).textMessageReceived("hi\x1b[2J\x9b")
        self.assertEqual(output.lines, [("out", "hi\\x1b[2J\\x9b")])

    def test_textPipedExact(self) -> None:
        """
        When standard output is not a terminal, a text message is printed
        as it came, for scripts.
        """
        session, output = self.session(escapeText=False)
        _Printer(session).textMessageReceived("hi\x1b[2J\x9b")
        self.assertEqual(output.lines, [("out", "hi\x1b[2J\x9b")])

    def test_pongEscaped(self) -> None:
        """
        A pong payload's control characters are escaped.
        """
        session, output = self.session()
        _Printer(session).pongReceived(b"p\x1b]0;PWNED\x07")
        self.assertEqual(output.lines, [("err", "pong: p\\x1b]0;PWNED\\x07")])
