"""
Tests for L{wsproto_tw.proxy} and for L{wsproto_tw.client.connect} through
HTTP proxies.

The endpoint is driven through a fake proxy endpoint and a
L{StringTransport}; proxy selection reads a dictionary standing in for the
environment; the loopback tests run our server behind a real C{tinyproxy}
(installed with apt-get when missing, started on a loopback port with a
generated configuration) and behind a small proxy of the test's own that
answers C{407} and C{403}.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import Any

from twisted.internet.address import HostnameAddress, IPv4Address
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IHalfCloseableProtocol, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from tests.processes import ChildProcess
from tests.test_client import ChatServer, FixedResolver, Recorder, closeAll, listenTCP, listenTLS, makeCertificate
from tests.tools import spawnCommand
from wsproto_tw.client import connect
from wsproto_tw.proxy import (
    HTTPTunnelEndpoint,
    ProxyAuthenticationFailed,
    ProxyError,
    ProxyRefused,
    ProxyUnreachable,
    ProxyURL,
    parseProxyURL,
    proxyFor,
)
from wsproto_tw.server import WebSocketServerFactory

# -- the endpoint -------------------------------------------------------------


@implementer(IStreamClientEndpoint)
class FakeProxyEndpoint:
    """
    Connects at once to a L{StringTransport}, or never with C{pending}.
    """

    def __init__(self, pending: bool = False) -> None:
        self.pending = pending
        self.transport = StringTransport()
        self.protocol: Any = None
        self.cancelled = False

    def connect(self, factory: Any) -> Deferred:
        if self.pending:
            return Deferred(lambda d: setattr(self, "cancelled", True))
        self.protocol = factory.buildProtocol(IPv4Address("TCP", "192.0.2.8", 3128))
        self.protocol.makeConnection(self.transport)
        return succeed(self.protocol)


class Echo(Protocol):
    """
    Records what arrives and how the connection ended.
    """

    def __init__(self) -> None:
        self.received = b""
        self.lost: list[Failure] = []

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.lost.append(reason)


@implementer(IHalfCloseableProtocol)
class HalfCloseable(Echo):
    """
    An L{Echo} that wants to hear of half-closes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.halves: list[str] = []

    def readConnectionLost(self) -> None:
        self.halves.append("read")

    def writeConnectionLost(self) -> None:
        self.halves.append("write")


class RecordingFactory(Factory):
    def __init__(self, protocol: type = Echo) -> None:
        self.protocol = protocol
        self.addresses: list[Any] = []

    def buildProtocol(self, addr: Any) -> Any:
        self.addresses.append(addr)
        return super().buildProtocol(addr)


class EndpointTests(SynchronousTestCase):
    """
    L{HTTPTunnelEndpoint} opens a C{CONNECT} tunnel and hands it over.
    """

    def start(self, authorization: str | None = None, pending: bool = False, protocol: type = Echo) -> tuple[Any, Any, Deferred]:
        proxy = FakeProxyEndpoint(pending)
        factory = RecordingFactory(protocol)
        d = HTTPTunnelEndpoint(proxy, "xn--bcher-kva.example", 443, authorization).connect(factory)
        return proxy, factory, d

    def test_request(self) -> None:
        """
        The endpoint sends exactly the C{CONNECT} request, with the
        credentials, and waits for the answer.
        """
        proxy, factory, d = self.start("Basic dTpw")
        self.assertEqual(
            proxy.transport.value(),
            b"CONNECT xn--bcher-kva.example:443 HTTP/1.1\r\nHost: xn--bcher-kva.example:443\r\n"
            b"Proxy-Authorization: Basic dTpw\r\n\r\n",
        )
        self.assertNoResult(d)
        self.assertEqual(factory.addresses, [])

    def test_established(self) -> None:
        """
        On a 2xx answer the factory's protocol is built for the origin's
        address and connected to the transport; it gets the bytes after the
        answer and all later ones, writes straight to the transport, and
        hears of the connection's end.
        """
        proxy, factory, d = self.start()
        proxy.protocol.dataReceived(b"HTTP/1.1 200 Connection established\r\n\r\nearly")
        protocol = self.successResultOf(d)
        self.assertIsInstance(protocol, Echo)
        self.assertEqual(factory.addresses, [HostnameAddress(b"xn--bcher-kva.example", 443)])
        self.assertIs(protocol.transport, proxy.transport)
        proxy.protocol.dataReceived(b" late")
        self.assertEqual(protocol.received, b"early late")
        proxy.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(protocol.lost), 1)

    def test_halfClose(self) -> None:
        """
        A protocol that handles half-closes hears of them through the
        tunnel; the tunnel claims the interface only for such a protocol.
        """
        proxy, factory, d = self.start(protocol=HalfCloseable)
        self.assertFalse(IHalfCloseableProtocol.providedBy(proxy.protocol))
        proxy.protocol.dataReceived(b"HTTP/1.1 200 OK\r\n\r\n")
        protocol = self.successResultOf(d)
        self.assertTrue(IHalfCloseableProtocol.providedBy(proxy.protocol))
        IHalfCloseableProtocol(proxy.protocol).readConnectionLost()
        self.assertEqual(protocol.halves, ["read"])
        proxy, factory, d = self.start()
        proxy.protocol.dataReceived(b"HTTP/1.1 200 OK\r\n\r\n")
        self.assertFalse(IHalfCloseableProtocol.providedBy(proxy.protocol))

    def test_authenticationRequired(self) -> None:
        """
        A 407 fails with L{ProxyAuthenticationFailed} and drops the
        connection; nothing is built.
        """
        proxy, factory, d = self.start("Basic dTpw")
        proxy.protocol.dataReceived(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
        error = self.failureResultOf(d, ProxyAuthenticationFailed).value
        self.assertEqual((error.status, error.sentCredentials), (407, True))
        self.assertTrue(proxy.transport.disconnecting)
        proxy.protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(factory.addresses, [])

    def test_refused(self) -> None:
        """
        Another non-2xx answer fails with L{ProxyRefused} carrying the
        status.
        """
        proxy, factory, d = self.start()
        proxy.protocol.dataReceived(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        error = self.failureResultOf(d, ProxyRefused).value
        self.assertEqual(error.status, 403)
        self.assertEqual(str(error), "proxy refused connect to xn--bcher-kva.example:443: 403 Forbidden")

    def test_closedBeforeAnswer(self) -> None:
        """
        A proxy that closes before answering fails with L{ProxyError}.
        """
        proxy, factory, d = self.start()
        proxy.protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(d, ProxyError).value
        self.assertEqual(str(error), "proxy closed the connection before answering connect to xn--bcher-kva.example:443")

    def test_proxyUnreachable(self) -> None:
        """
        When the proxy itself can't be reached, the error is
        L{ProxyUnreachable}: it names the proxy (not the origin) and
        carries the endpoint's error.
        """
        from twisted.internet.defer import fail
        from twisted.internet.error import ConnectionRefusedError

        proxy = FakeProxyEndpoint()
        proxy.connect = lambda factory: fail(ConnectionRefusedError("nobody listens"))  # type: ignore[method-assign]
        d = HTTPTunnelEndpoint(proxy, "origin.example", 443, proxyName="proxy.example:3128").connect(Factory())
        error = self.failureResultOf(d, ProxyUnreachable).value
        self.assertEqual(error.proxy, "proxy.example:3128")
        self.assertIsInstance(error.reason, ConnectionRefusedError)
        self.assertTrue(str(error).startswith("can't reach the proxy proxy.example:3128: "), str(error))
        self.assertNotIn("origin.example", str(error))
        from wsproto_tw.__main__ import describeError

        self.assertEqual(describeError(ProxyUnreachable("[::1]:3128", error.reason)), "proxy: connection refused by [::1]:3128")

    def test_cancel(self) -> None:
        """
        Cancelling while connecting to the proxy cancels that; cancelling
        while waiting for the answer drops the connection.
        """
        proxy, factory, d = self.start(pending=True)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(proxy.cancelled)
        proxy, factory, d = self.start()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(proxy.transport.disconnecting)
        proxy.protocol.connectionLost(Failure(ConnectionLost()))


# -- choosing the proxy ----------------------------------------------------------


class ProxySelectionTests(SynchronousTestCase):
    """
    L{parseProxyURL} reads proxy URLs and L{proxyFor} picks one from the
    argument or the environment.
    """

    def test_parse(self) -> None:
        """
        A proxy URL gives host, port (80 by default) and Basic credentials
        (percent-decoded); the scheme may be left out; the credentials are
        never shown.
        """
        self.assertEqual(parseProxyURL("http://proxy.example:3128"), ProxyURL("proxy.example", 3128))
        self.assertEqual(parseProxyURL("proxy.example"), ProxyURL("proxy.example", 80))
        self.assertEqual(parseProxyURL("http://[::1]:8/"), ProxyURL("::1", 8))
        self.assertEqual(parseProxyURL("http://b\u00fccher.example:1"), ProxyURL("xn--bcher-kva.example", 1))
        withUser = parseProxyURL("http://us%40er:p%3Ass@proxy.example:3128")
        self.assertEqual(withUser.authorization, "Basic dXNAZXI6cDpzcw==")
        self.assertNotIn("dXNAZXI6cDpzcw", repr(withUser))

    def test_parseRefused(self) -> None:
        """
        Another scheme, a path, or a bad host raise L{ValueError}.
        """
        error = self.assertRaises(ValueError, parseProxyURL, "https://proxy.example")
        self.assertEqual(str(error), "only http:// proxies are supported, not https://")
        error = self.assertRaises(ValueError, parseProxyURL, "socks5://proxy.example")
        self.assertEqual(str(error), "only http:// proxies are supported, not socks5://")
        error = self.assertRaises(ValueError, parseProxyURL, "http://proxy.example/path")
        self.assertEqual(str(error), "a proxy url has no path, query or fragment")
        self.assertRaises(ValueError, parseProxyURL, "http://a..b:3128")

    def test_portOutOfRange(self) -> None:
        """
        A port outside 1 to 65535 raises L{ValueError}, as in a C{ws://}
        URL (it was taken, and the connection to it reported as refused).
        """
        for url in ("http://proxy.example:99999", "http://proxy.example:0", "proxy.example:65536"):
            error = self.assertRaises(ValueError, parseProxyURL, url)
            self.assertIn("proxy url port out of range", str(error))
        self.assertEqual(parseProxyURL("http://proxy.example:65535"), ProxyURL("proxy.example", 65535))

    def test_argument(self) -> None:
        """
        A C{proxy} argument wins over the environment; C{False} means none.
        """
        environ = {"https_proxy": "http://env.example:1"}
        self.assertEqual(proxyFor(True, "h", 443, "http://arg.example:2", environ), ProxyURL("arg.example", 2))
        self.assertIsNone(proxyFor(True, "h", 443, False, environ))
        self.assertEqual(proxyFor(True, "h", 443, None, environ), ProxyURL("env.example", 1))

    def test_environmentByScheme(self) -> None:
        """
        C{wss://} follows C{https_proxy}, C{ws://} follows C{http_proxy};
        the lower-case name wins over the upper-case one; an empty value is
        none.
        """
        environ = {"https_proxy": "s.example:1", "HTTPS_PROXY": "S.example:2", "HTTP_PROXY": "H.example:3"}
        self.assertEqual(proxyFor(True, "h", 443, environ=environ).host, "s.example")
        self.assertEqual(proxyFor(False, "h", 80, environ=environ).host, "H.example")
        self.assertEqual(proxyFor(True, "h", 443, environ={"HTTPS_PROXY": "S.example:2"}).host, "S.example")
        self.assertIsNone(proxyFor(True, "h", 443, environ={"https_proxy": "", "HTTPS_PROXY": "S.example:2"}))
        self.assertIsNone(proxyFor(False, "h", 80, environ={"https_proxy": "s.example:1"}))
        self.assertIsNone(proxyFor(True, "h", 443, environ={}))

    def test_cgiIgnoresUpperCaseHTTPProxy(self) -> None:
        """
        Under CGI (C{REQUEST_METHOD} set), C{HTTP_PROXY} may come from a
        request's C{Proxy} header and is ignored.
        """
        environ = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "evil.example:1"}
        self.assertIsNone(proxyFor(False, "h", 80, environ=environ))
        environ["http_proxy"] = "good.example:1"
        self.assertEqual(proxyFor(False, "h", 80, environ=environ).host, "good.example")

    def test_noProxy(self) -> None:
        """
        Hosts, domain suffixes, host:port pairs and C{*} in C{no_proxy} (or
        C{NO_PROXY}) are reached directly.
        """
        environ = {"https_proxy": "p.example:1", "no_proxy": "internal.example, .corp.example,gateway.example:8443"}
        self.assertIsNone(proxyFor(True, "internal.example", 443, environ=environ))
        self.assertIsNone(proxyFor(True, "a.internal.example", 443, environ=environ))
        self.assertIsNone(proxyFor(True, "x.corp.example", 443, environ=environ))
        self.assertIsNone(proxyFor(True, "gateway.example", 8443, environ=environ))
        self.assertIsNotNone(proxyFor(True, "gateway.example", 443, environ=environ))
        self.assertIsNotNone(proxyFor(True, "notinternal.example", 443, environ=environ))
        self.assertIsNone(proxyFor(True, "anything", 443, environ={"https_proxy": "p:1", "NO_PROXY": "*"}))

    def test_loopbackDirect(self) -> None:
        """
        Loopback hosts are reached directly whatever the environment says;
        a C{proxy} argument still applies to them.
        """
        environ = {"https_proxy": "p.example:1", "http_proxy": "p.example:1"}
        for host in ("localhost", "LOCALHOST.", "a.localhost", "127.0.0.1", "127.1.2.3", "::1"):
            self.assertIsNone(proxyFor(True, host, 443, environ=environ), host)
            self.assertIsNone(proxyFor(False, host, 80, environ=environ), host)
        self.assertIsNotNone(proxyFor(True, "192.0.2.1", 443, environ=environ))
        self.assertIsNotNone(proxyFor(True, "localhost.example", 443, environ=environ))
        self.assertEqual(proxyFor(True, "127.0.0.1", 443, "p.example:2", environ), ProxyURL("p.example", 2))


class ConnectWiringTests(SynchronousTestCase):
    """
    L{connect} connects to the proxy and tunnels to the URL's host.
    """

    def test_proxyArgument(self) -> None:
        """
        With C{proxy=}, the proxy's name is resolved and connected to, and
        the C{CONNECT} names the URL's host (as an A-label) and port.
        """
        memory = MemoryReactorClock()
        resolver = FixedResolver("192.0.2.9")
        memory.installNameResolver(resolver)
        connect("wss://b\u00fccher.example/", Recorder, reactor=memory, proxy="http://u:p@proxy.example:3128", environ={})
        self.assertEqual(resolver.asked, [("proxy.example", 3128)])
        [(host, port, factory, timeout, bind)] = memory.tcpClients
        self.assertEqual((host, port), ("192.0.2.9", 3128))
        transport = StringTransport()
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(transport)
        self.assertEqual(
            transport.value(),
            b"CONNECT xn--bcher-kva.example:443 HTTP/1.1\r\nHost: xn--bcher-kva.example:443\r\n"
            b"Proxy-Authorization: Basic dTpw\r\n\r\n",
        )
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\n\r\n")
        # TLS to the origin starts through the tunnel: a ClientHello.
        self.assertEqual(transport.value().split(b"\r\n\r\n", 1)[1][:1], b"\x16")

    def test_environment(self) -> None:
        """
        Without C{proxy=}, the environment decides; C{proxy=False} ignores
        it; C{no_proxy} hosts are reached directly.
        """
        memory = MemoryReactorClock()
        resolver = FixedResolver("192.0.2.9")
        memory.installNameResolver(resolver)
        environ = {"http_proxy": "http://proxy.example:8080", "no_proxy": "direct.example"}
        connect("ws://origin.example/", Recorder, reactor=memory, environ=environ)
        connect("ws://origin.example/", Recorder, reactor=memory, environ=environ, proxy=False)
        connect("ws://direct.example/", Recorder, reactor=memory, environ=environ)
        self.assertEqual(
            resolver.asked, [("proxy.example", 8080), ("origin.example", 80), ("direct.example", 80)]
        )

    def test_openTimeoutWhileTunnelling(self) -> None:
        """
        A proxy that never answers C{CONNECT} is dropped at
        C{open_timeout}, and the Deferred fails with L{HandshakeTimeout}.
        """
        from wsproto_tw.core.config import Config
        from wsproto_tw.errors import HandshakeTimeout

        memory = MemoryReactorClock()
        memory.installNameResolver(FixedResolver("192.0.2.9"))
        d = connect("ws://origin.example/", Recorder, reactor=memory, proxy="p.example:1", config=Config(open_timeout=5))
        transport = StringTransport()
        memory.tcpClients[0][2].buildProtocol(None).makeConnection(transport)
        memory.advance(4.9)
        self.assertNoResult(d)
        memory.advance(0.1)
        failure = self.failureResultOf(d, HandshakeTimeout)
        self.assertEqual(
            str(failure.value),
            "opening handshake timed out while connecting (the proxy p.example:1 had not opened the tunnel)",
        )
        self.assertTrue(transport.disconnecting)

    def test_openTimeoutConnectingToProxy(self) -> None:
        """
        A proxy whose TCP connection is not made by C{open_timeout} is named
        in the L{HandshakeTimeout}, for C{wss://} too (the TLS endpoint
        wraps the tunnel's).
        """
        from wsproto_tw.core.config import Config
        from wsproto_tw.errors import HandshakeTimeout

        for url in ("ws://origin.example/", "wss://origin.example/"):
            memory = MemoryReactorClock()
            memory.installNameResolver(FixedResolver("192.0.2.9"))
            d = connect(url, Recorder, reactor=memory, proxy="p.example:1", config=Config(open_timeout=5))
            memory.advance(5)
            failure = self.failureResultOf(d, HandshakeTimeout)
            self.assertEqual(
                str(failure.value),
                "opening handshake timed out while connecting (still connecting to the proxy p.example:1)",
            )

    def test_badProxyRefusedAtOnce(self) -> None:
        """
        An invalid proxy URL raises L{ValueError} from L{connect}.
        """
        error = self.assertRaises(
            ValueError, connect, "ws://h/", Recorder, reactor=MemoryReactorClock(), proxy="ftp://p.example"
        )
        self.assertEqual(str(error), "only http:// proxies are supported, not ftp://")


# -- over loopback -------------------------------------------------------------------


class RefusingProxy(Protocol):
    """
    A proxy that reads one request head, records it, answers with the
    factory's status line and closes.
    """

    def connectionMade(self) -> None:
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer:
            self.factory.heads.append(self.buffer.split(b"\r\n\r\n")[0])
            self.transport.write(self.factory.answer)
            self.transport.loseConnection()


class RefusingProxyFactory(Factory):
    protocol = RefusingProxy

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.heads: list[bytes] = []


class RefusingProxyTests(TestCase):
    """
    L{connect} against a loopback proxy of the test's own that refuses.
    """

    timeout = 30

    @inlineCallbacks
    def test_407(self) -> None:
        """
        A C{407} fails with L{ProxyAuthenticationFailed}, which says so; the
        credentials were sent.
        """
        factory = RefusingProxyFactory(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n"
        )
        port = listenTCP(self, factory)
        d = connect("ws://origin.example:9/", Recorder, proxy=f"http://user:wrong@127.0.0.1:{port}", environ={})
        error = yield self.assertFailure(d, ProxyAuthenticationFailed)
        self.assertEqual(str(error), "proxy authentication failed (credentials refused): 407 Proxy Authentication Required")
        self.assertEqual(
            factory.heads,
            [b"CONNECT origin.example:9 HTTP/1.1\r\nHost: origin.example:9\r\nProxy-Authorization: Basic dXNlcjp3cm9uZw=="],
        )

    @inlineCallbacks
    def test_403(self) -> None:
        """
        A C{403} fails with L{ProxyRefused} carrying the status, through the
        environment's proxy.
        """
        factory = RefusingProxyFactory(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        port = listenTCP(self, factory)
        d = connect("wss://origin.example/", Recorder, environ={"https_proxy": f"127.0.0.1:{port}"})
        error = yield self.assertFailure(d, ProxyRefused)
        self.assertEqual(error.status, 403)
        self.assertEqual(str(error), "proxy refused connect to origin.example:443: 403 Forbidden")


def freePort() -> int:
    """
    @return: a TCP port on loopback that was free a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensureTinyproxy() -> str:
    """
    @return: the C{tinyproxy} program, installed with apt-get (bounded in
        time, under the interoperability tests' lock) if missing.
    @raise tests.interop.tools.ToolError: it could not be installed.
    """
    from tests.interop.tools import ToolError, _aptInstall, _lock

    found = shutil.which("tinyproxy") or shutil.which("tinyproxy", path="/usr/bin:/usr/sbin")
    if found is None:
        with _lock():
            found = shutil.which("tinyproxy", path="/usr/bin:/usr/sbin")
            if found is None:
                _aptInstall("tinyproxy")
                found = shutil.which("tinyproxy", path="/usr/bin:/usr/sbin")
    if found is None:
        raise ToolError("tinyproxy is still missing after apt-get install tinyproxy")
    return found


def startTinyproxy(testCase: TestCase, *extra: str) -> tuple[int, ChildProcess]:
    """
    Run C{tinyproxy} in the foreground on a loopback port until the test
    ends. It allows C{CONNECT} to every port (no C{ConnectPort} line).

    @param extra: more configuration lines, e.g. C{BasicAuth user pass}.
    @return: its port, and the running program (whose log shows each
        request).
    """
    program = ensureTinyproxy()
    port = freePort()
    directory = os.path.abspath(testCase.mktemp())
    os.makedirs(directory)
    path = os.path.join(directory, "tinyproxy.conf")
    with open(path, "w") as f:
        f.write(
            "\n".join([
                f"Port {port}",
                "Listen 127.0.0.1",
                "Timeout 30",
                "MaxClients 20",
                "LogLevel Info",
                "Allow 127.0.0.1",
                *extra,
            ]) + "\n"
        )
    child = ChildProcess(testCase, [program, "-d", "-c", path])
    # Stopped (and its output read to the end) before the helper's kill.
    testCase.addCleanup(child.stop)
    child.waitFor(r"Accepting connections", timeout=20)
    return port, child


class TinyproxyTests(TestCase):
    """
    L{connect} through a real C{tinyproxy}, to our server on loopback.
    """

    timeout = 60

    @inlineCallbacks
    def echo(self, url: str, **kwargs: Any) -> Any:
        """
        Open, echo one message, close cleanly.
        """
        app = Recorder()
        transport = yield connect(url, lambda: app, environ={}, **kwargs)
        got = app.nextMessage()
        transport.sendText("through the tunnel \u2713")
        self.assertEqual((yield got), "through the tunnel \u2713")
        transport.close()
        closed = yield app.closed
        self.assertTrue(closed.wasClean)
        return transport

    def serve(self) -> int:
        ChatServer.requests = []
        factory = WebSocketServerFactory(ChatServer)
        self.addCleanup(closeAll, factory)
        return listenTCP(self, factory)

    @inlineCallbacks
    def test_plain(self) -> None:
        """
        C{ws://} through tinyproxy: the upgrade goes through the tunnel with
        the origin's C{Host}.
        """
        proxyPort, proxy = startTinyproxy(self)
        port = self.serve()
        yield self.echo(f"ws://127.0.0.1:{port}/chat", proxy=f"http://127.0.0.1:{proxyPort}")
        proxy.waitFor(rf"CONNECT 127\.0\.0\.1:{port} HTTP/1\.1", timeout=10)
        [request] = ChatServer.requests
        self.assertEqual((request.host, request.target), (f"127.0.0.1:{port}", "/chat"))

    @inlineCallbacks
    def test_basicAuth(self) -> None:
        """
        Through tinyproxy with C{BasicAuth}: the right credentials get
        through; wrong ones and none fail with L{ProxyAuthenticationFailed}.
        """
        proxyPort, _ = startTinyproxy(self, "BasicAuth tester s3cret")
        port = self.serve()
        url = f"ws://127.0.0.1:{port}/"
        yield self.echo(url, proxy=f"http://tester:s3%63ret@127.0.0.1:{proxyPort}")
        error = yield self.assertFailure(
            connect(url, Recorder, proxy=f"http://tester:nope@127.0.0.1:{proxyPort}"), ProxyAuthenticationFailed
        )
        # tinyproxy answers CONNECT with 401 rather than 407.
        self.assertIn(error.status, (401, 407))
        self.assertIn("credentials refused", str(error))
        error = yield self.assertFailure(
            # The proxy refuses before it looks the origin up.
            connect("ws://origin.example:9/", Recorder, environ={"http_proxy": f"127.0.0.1:{proxyPort}"}),
            ProxyAuthenticationFailed,
        )
        self.assertIn("proxy needs credentials", str(error))

    @inlineCallbacks
    def test_tls(self) -> None:
        """
        C{wss://} through tinyproxy: TLS runs end to end with the origin,
        whose certificate and host name are verified; a certificate for
        another name fails verification through the tunnel too.
        """
        from service_identity import VerificationError

        proxyPort, child = startTinyproxy(self)
        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp, names=("localhost",), ips=())
        factory = WebSocketServerFactory(ChatServer)
        self.addCleanup(closeAll, factory)
        port = listenTLS(self, factory, certPath, keyPath)
        proxy = f"http://127.0.0.1:{proxyPort}"
        yield self.echo(f"wss://localhost:{port}/", proxy=proxy, trustRoot=certPath)
        child.waitFor(rf"CONNECT localhost:{port} HTTP/1\.1", timeout=10)
        d = connect(f"wss://127.0.0.1:{port}/", Recorder, proxy=proxy, trustRoot=certPath, environ={})
        yield self.assertFailure(d, VerificationError)


# -- the command-line client -------------------------------------------------------


def runCommandWith(testCase: TestCase, args: list[str], env: dict[str, str], input: bytes = b"") -> Deferred:
    """
    Run C{python -m wsproto_tw ARGS} with C{env} added to the environment
    (and the proxy variables of the test's own environment removed).

    @return: a L{Deferred} firing with (stdout, stderr, exit status).
    """
    from tests.test_cli import CommandOutput

    names = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
    environment = {k: v for k, v in os.environ.items() if k not in names}
    environment.update(env)
    child = CommandOutput(input)
    spawnCommand(testCase, child, args, env=environment)
    return child.ended


class CommandTests(TestCase):
    """
    C{python -m wsproto_tw} with C{--proxy}, C{--no-proxy} and the proxy
    environment variables.
    """

    timeout = 60

    @inlineCallbacks
    def test_proxyOption(self) -> None:
        """
        C{--proxy} sends the C{CONNECT} to that proxy; its refusal is the
        error line, and the exit status is 1.
        """
        factory = RefusingProxyFactory(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        port = listenTCP(self, factory)
        out, err, code = yield runCommandWith(
            self, ["ws://origin.example:9/", "--proxy", f"http://u:p@127.0.0.1:{port}"], {}
        )
        self.assertEqual((out, err, code), ("", "error: proxy refused connect to origin.example:9: 403 Forbidden\n", 1))
        self.assertEqual(
            factory.heads, [b"CONNECT origin.example:9 HTTP/1.1\r\nHost: origin.example:9\r\nProxy-Authorization: Basic dTpw"]
        )

    @inlineCallbacks
    def test_proxyNotListening(self) -> None:
        """
        A proxy that refuses the TCP connection is named in the error line,
        not the origin.
        """
        import socket

        with socket.socket() as unused:  # a loopback port nobody listens on
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        out, err, code = yield runCommandWith(self, ["ws://origin.example:9/", "--proxy", f"http://127.0.0.1:{port}"], {})
        self.assertEqual((out, err, code), ("", f"error: proxy: connection refused by 127.0.0.1:{port}\n", 1))

    @inlineCallbacks
    def test_environmentAndNoProxy(self) -> None:
        """
        By default the command follows C{http_proxy}; C{--no-proxy} connects
        directly (here: fails to resolve C{.invalid}) without asking it.
        """
        factory = RefusingProxyFactory(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        port = listenTCP(self, factory)
        env = {"http_proxy": f"127.0.0.1:{port}"}
        out, err, code = yield runCommandWith(self, ["ws://origin.invalid:9/"], env)
        self.assertEqual(
            (err, code), ("error: proxy authentication failed (proxy needs credentials): 407 Proxy Authentication Required\n", 1)
        )
        out, err, code = yield runCommandWith(self, ["ws://origin.invalid:9/", "--no-proxy", "--open-timeout", "20"], env)
        self.assertEqual(code, 1)
        self.assertNotIn("proxy", err)
        self.assertEqual(len(factory.heads), 1)

    @inlineCallbacks
    def test_throughTinyproxy(self) -> None:
        """
        Lines go through tinyproxy's tunnel to the server and back.
        """
        proxyPort, proxy = startTinyproxy(self)
        factory = WebSocketServerFactory(ChatServer)
        self.addCleanup(closeAll, factory)
        port = listenTCP(self, factory)
        out, err, code = yield runCommandWith(
            self, [f"ws://127.0.0.1:{port}/", "--proxy", f"127.0.0.1:{proxyPort}"], {}, b"hi\nthere\n"
        )
        self.assertEqual((out, err, code), ("hi\nthere\n", "closed: 1000\n", 0))
        proxy.waitFor(rf"CONNECT 127\.0\.0\.1:{port} HTTP/1\.1", timeout=10)

    @inlineCallbacks
    def test_badProxyOptions(self) -> None:
        """
        An invalid C{--proxy}, or C{--proxy} with C{--no-proxy}, is a usage
        error (status 2).
        """
        out, err, code = yield runCommandWith(self, ["ws://h/", "--proxy", "ftp://p"], {})
        self.assertEqual(code, 2)
        self.assertIn("wsproto-tw: error: --proxy: only http:// proxies are supported, not ftp://\n", err)
        out, err, code = yield runCommandWith(self, ["ws://h/", "--proxy", "p:1", "--no-proxy"], {})
        self.assertEqual(code, 2)
        self.assertIn("wsproto-tw: error: --proxy and --no-proxy exclude each other\n", err)
