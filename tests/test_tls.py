"""
TLS and endpoints over real loopback sockets: C{twistd websocket} serving
C{wss://}, UNIX sockets and IPv6 (several C{--port} at once), and a
C{twisted.web} site offering HTTP/2 by ALPN next to a WebSocket resource.

The certificates are generated when the tests run.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    SSL4ServerEndpoint,
    UNIXClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.policies import WrappingFactory
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from tests.processes import Twistd
from tests.tools import hasIPv6Loopback, protocolsGone, serverTLS, trustingTLS
from wsproto_tw.apps import EchoApplication
from wsproto_tw.client import connect, connectWebSocket
from wsproto_tw.resource import WebSocketResource
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


def selfSignedCertificate(directory: str) -> tuple[str, str]:
    """
    Write a fresh self-signed certificate for C{localhost} and C{127.0.0.1}
    (and C{::1}) and its key into C{directory}.

    @return: the paths of the key and of the certificate, both PEM.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    os.makedirs(directory, exist_ok=True)
    keyPath = os.path.join(directory, "key.pem")
    certPath = os.path.join(directory, "cert.pem")
    with open(keyPath, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    with open(certPath, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    return keyPath, certPath


class Collector(WebSocketApplication):
    """
    A client application that collects messages and reports its close.
    """

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.waiting: Deferred | None = None
        self.lost: Deferred = Deferred()

    def next(self) -> Deferred:
        """
        @return: a Deferred firing with the next message received.
        """
        if self.messages:
            return succeed(self.messages.pop(0))
        self.waiting = Deferred()
        return self.waiting

    def textMessageReceived(self, text: str) -> None:
        self._got(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self._got(data)

    def _got(self, message: Any) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            waiting.callback(message)
        else:
            self.messages.append(message)

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(reason.value)


@inlineCallbacks
def echoRoundTrip(testCase: TestCase, opening: Deferred, application: Collector, whileOpen: Any = None) -> Any:
    """
    Over an opening connection: one text and one binary echo, then a clean
    close.

    @param whileOpen: called with the protocol before it closes.
    """
    protocol = yield opening
    if whileOpen is not None:
        whileOpen(protocol)
    protocol.sendText("héllo")
    testCase.assertEqual((yield application.next()), "héllo")
    protocol.sendBinary(b"\x00\xff")
    testCase.assertEqual((yield application.next()), b"\x00\xff")
    protocol.close(1000, "done")
    closed = yield application.lost
    testCase.assertEqual((closed.code, closed.wasClean), (1000, True))
    return protocol


class TwistdEndpointsTests(TestCase):
    """
    C{twistd websocket} listens on every C{--port} given at once: TLS
    (C{wss://}), UNIX sockets, IPv4 and IPv6.
    """

    timeout = 60

    @inlineCallbacks
    def test_tlsUnixAndTcpAtOnce(self) -> Any:
        """
        With C{--port ssl:...}, C{--port unix:...} and C{--port tcp:...},
        wsproto_tw's client gets echo over C{wss://} (trusting the
        test's self-signed certificate), over the UNIX socket and over TCP.
        """
        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        # A short path: AF_UNIX paths are limited to 107 bytes, which a
        # test's temporary directory may exceed.
        directory = tempfile.mkdtemp(prefix="wstw")
        self.addCleanup(shutil.rmtree, directory, True)
        sock = os.path.join(directory, "ws.sock")
        twistd = Twistd(
            self,
            "--port", f"ssl:0:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}",
            "--port", f"unix:{sock}",
            "--port", "tcp:0:interface=127.0.0.1",
        )
        tlsPort, unixPath, tcpPort = twistd.listening(3)
        self.assertEqual(unixPath, sock)

        application = Collector()
        opening = connect(f"wss://localhost:{tlsPort}/secure", lambda: application, trustRoot=certPath)
        certificates = []
        yield echoRoundTrip(
            self, opening, application, lambda p: certificates.append(p.transport.getPeerCertificate())
        )
        self.assertEqual(certificates[0].get_subject().CN, "localhost")

        application = Collector()
        opening = connectWebSocket(UNIXClientEndpoint(reactor, sock), "ws://localhost/unix", lambda: application)
        yield echoRoundTrip(self, opening, application)

        application = Collector()
        opening = connect(f"ws://127.0.0.1:{tcpPort}/plain", lambda: application)
        yield echoRoundTrip(self, opening, application)

        log = twistd.stop()
        self.assertEqual(log.count("opened "), 3, log)
        self.assertNotIn("Traceback", log)

    @inlineCallbacks
    def test_untrustedCertificate(self) -> Any:
        """
        A client that does not trust the server's certificate fails to
        connect: C{wss://} does verify.
        """
        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        twistd = Twistd(self, "--port", f"ssl:0:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}")
        [tlsPort] = twistd.listening(1)
        _, otherCert = selfSignedCertificate(os.path.abspath(self.mktemp()))
        opening = connect(f"wss://localhost:{tlsPort}/", Collector, trustRoot=otherCert)
        from OpenSSL.SSL import Error as TLSError

        yield self.assertFailure(opening, TLSError)
        twistd.stop()

    @inlineCallbacks
    def test_plainTextRequest(self) -> Any:
        """
        A C{ws://} client reaching an C{ssl:} port gets C{400} with a reason
        saying to use C{wss://}, at once, and the port still serves
        C{wss://} afterwards.
        """
        from wsproto_tw.core.errors import HandshakeRejected

        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        twistd = Twistd(self, "--port", f"ssl:0:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}")
        [tlsPort] = twistd.listening(1)
        error = yield self.assertFailure(connect(f"ws://127.0.0.1:{tlsPort}/", Collector), HandshakeRejected)
        self.assertEqual((error.status, error.reason), (400, "Bad Request"))
        self.assertEqual(
            error.body,
            b"plain-text http received on a tls port; connect with wss:// here, or with ws:// to a plain-text port\n",
        )
        application = Collector()
        opening = connect(f"wss://localhost:{tlsPort}/", lambda: application, trustRoot=certPath)
        yield echoRoundTrip(self, opening, application)
        log = twistd.stop()
        self.assertEqual(log.count("opened "), 1, log)
        self.assertEqual(log.count("handshake failed from 127.0.0.1:"), 1, log)
        self.assertIn("plain-text http received on a tls port", log)
        self.assertNotIn("Traceback", log)

    @inlineCallbacks
    def test_tcp6(self) -> Any:
        """
        With C{--port tcp6:0:interface=\\:\\:1}, the client gets echo at
        C{ws://[::1]:PORT/}, and the log names it C{[::1]:PORT} (RFC 3986
        section 3.2.2), not the ambiguous C{::1:PORT}.
        """
        if not hasIPv6Loopback():
            raise self.skipTest("this machine has no IPv6 loopback (::1)")
        twistd = Twistd(self, "--port", "tcp6:0:interface=\\:\\:1")
        [port] = twistd.listening(1)
        application = Collector()
        opening = connect(f"ws://[::1]:{port}/v6", lambda: application)
        hosts = []
        yield echoRoundTrip(self, opening, application, lambda p: hosts.append(p.getHost()))
        self.assertEqual([host.host for host in hosts], ["::1"])
        twistd.waitFor(rf"opened \[::1\]:{hosts[0].port} /v6 ")
        twistd.waitFor(rf"closed \[::1\]:{hosts[0].port} /v6 code=1000 ")
        twistd.stop()


class TLSPortTests(TestCase):
    """
    L{TLSPortEndpoint} over an in-memory TCP transport.
    """

    def listened(self, answerPlainText: bool = True) -> tuple[Any, Any]:
        """
        @return: a watched L{WebSocketServerFactory}'s L{Metrics} and the
            factory a L{TLSPortEndpoint} gives its TCP endpoint.
        """
        from wsproto_tw.metrics import Metrics
        from wsproto_tw.tlsport import TLSPortEndpoint

        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        metrics = Metrics(registry=None)
        factory = WebSocketServerFactory(EchoApplication, metrics=metrics)
        given = []

        class TCP:
            def listen(self, factory: Any) -> Deferred:
                given.append(factory)
                return succeed(None)

        TLSPortEndpoint(TCP(), serverTLS(keyPath, certPath), answerPlainText).listen(factory)
        return metrics, given[0]

    def test_plainTextCounted(self) -> None:
        """
        A plain-text request is answered with C{400}, the connection closes,
        and the watched factory's metrics count a handshake answered with
        C{400}; what follows it is not read.
        """
        from twisted.internet.error import ConnectionDone
        from twisted.internet.testing import StringTransport
        from twisted.python.failure import Failure

        metrics, factory = self.listened()
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET / HTTP/1.1\r\n")
        protocol.dataReceived(b"Host: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 Bad Request\r\n"), transport.value())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(metrics._closed.handshakes, {400: 1})
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(metrics._closed.handshakes, {400: 1})

    def test_tlsHandedOver(self) -> None:
        """
        A TLS record goes to the TLS protocol, which becomes the transport's
        protocol; nothing is counted. Without C{answerPlainText}, a plain
        request goes to TLS too.
        """
        from twisted.internet.error import ConnectionDone
        from twisted.internet.testing import StringTransport
        from twisted.protocols.tls import TLSMemoryBIOProtocol
        from twisted.python.failure import Failure

        for answer, first in ((True, b"\x16\x03\x01\x00\x05"), (False, b"GET / HTTP/1.1\r\n")):
            metrics, factory = self.listened(answer)
            protocol = factory.buildProtocol(None)
            transport = StringTransport()
            transport.protocol = protocol
            protocol.makeConnection(transport)
            protocol.dataReceived(first)
            self.assertIsInstance(transport.protocol, TLSMemoryBIOProtocol)
            self.assertNotIn(b"HTTP/1.1", transport.value())
            self.assertEqual(metrics._closed.handshakes, {})
            transport.protocol.connectionLost(Failure(ConnectionDone()))


class H2Client(Protocol):
    """
    Sends one HTTP/2 GET and collects the response.
    """

    def __init__(self, path: str, headers: list[tuple[str, str]]) -> None:
        self.path = path
        self.headers = headers
        self.response: Deferred = Deferred()
        self.lost: Deferred = Deferred()

    def connectionMade(self) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.h2 = H2Connection(H2Configuration(client_side=True))
        self.h2.initiate_connection()
        self.h2.send_headers(
            1,
            [(":method", "GET"), (":scheme", "https"), (":authority", "localhost"), (":path", self.path), *self.headers],
            end_stream=True,
        )
        self.transport.write(self.h2.data_to_send())
        self.status: bytes | None = None
        self.body = b""

    def dataReceived(self, data: bytes) -> None:
        from h2.events import DataReceived, ResponseReceived, StreamEnded

        for event in self.h2.receive_data(data):
            if isinstance(event, ResponseReceived):
                self.status = dict(event.headers)[b":status"]
            elif isinstance(event, DataReceived):
                self.body += event.data
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded) and not self.response.called:
                self.response.callback((self.transport.negotiatedProtocol, self.status, self.body))
                self.transport.loseConnection()
        self.transport.write(self.h2.data_to_send())

    def connectionLost(self, reason: Any) -> None:
        if not self.response.called:
            self.response.errback(reason)
        self.lost.callback(None)


class ALPNTests(TestCase):
    """
    A C{twisted.web} site over TLS that offers HTTP/2 and HTTP/1.1 by ALPN,
    with the WebSocket resource at C{/ws}: WebSocket clients (which ask for
    HTTP/1.1) upgrade; a WebSocket request over HTTP/2 gets C{505}.
    """

    timeout = 60

    @inlineCallbacks
    def setUp(self) -> Any:
        from twisted.web.http import H2_ENABLED

        if not H2_ENABLED:
            raise self.skipTest("twisted.web has no HTTP/2 here (install h2 and priority)")
        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        self.certPath = certPath
        options = serverTLS(keyPath, certPath, [b"h2", b"http/1.1"])
        root = Resource()
        root.putChild(b"", Data(b"home", "text/plain"))
        root.putChild(b"ws", WebSocketResource(EchoApplication))
        self.tracked = WrappingFactory(Site(root))
        self.port = yield SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1").listen(self.tracked)
        self.addCleanup(self.port.stopListening)
        self.addCleanup(protocolsGone, self, self.tracked)
        self.portNumber = self.port.getHost().port

    def clientTLS(self, protocols: list[bytes]) -> Any:
        return trustingTLS(self.certPath, protocols)

    @inlineCallbacks
    def test_webSocketOverHTTP11(self) -> Any:
        """
        A client offering only C{http/1.1} by ALPN, as browsers do for
        WebSocket, upgrades and gets echo.
        """
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", self.portNumber, self.clientTLS([b"http/1.1"]))
        application = Collector()
        opening = connectWebSocket(endpoint, f"wss://localhost:{self.portNumber}/ws", lambda: application)
        negotiated = []
        yield echoRoundTrip(self, opening, application, lambda p: negotiated.append(p.transport.negotiatedProtocol))
        self.assertEqual(negotiated, [b"http/1.1"])

    @inlineCallbacks
    def test_webSocketWithoutALPN(self) -> Any:
        """
        A client that offers no ALPN protocol (wsproto_tw's own
        L{connect}) upgrades too.
        """
        application = Collector()
        opening = connect(f"wss://localhost:{self.portNumber}/ws", lambda: application, trustRoot=self.certPath)
        yield echoRoundTrip(self, opening, application)

    @inlineCallbacks
    def test_webSocketOverHTTP2(self) -> Any:
        """
        A request for the WebSocket resource over HTTP/2 gets C{505} and a
        one-line explanation, while the site's pages work over HTTP/2.
        """
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", self.portNumber, self.clientTLS([b"h2"]))
        for path, expected in [
            ("/ws", (b"505", b"websocket over http/2 is not supported here; connect over http/1.1\n")),
            ("/", (b"200", b"home")),
        ]:
            client = H2Client(
                path, [("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("sec-websocket-version", "13")]
            )
            yield endpoint.connect(Factory.forProtocol(lambda: client))
            negotiated, status, body = yield client.response
            self.assertEqual(negotiated, b"h2")
            self.assertEqual((status, body), expected)
            yield client.lost


class StandaloneALPNTests(TestCase):
    """
    L{WebSocketServerFactory} listening over TLS on its own (no
    C{twisted.web}), with TLS options that name no ALPN protocol, as
    C{twistd websocket --port ssl:...} builds them: clients that offer ALPN,
    as browsers do, complete the TLS handshake with C{http/1.1}; clients
    that offer none complete it with none.
    """

    timeout = 60

    @inlineCallbacks
    def setUp(self) -> Any:
        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        self.certPath = certPath
        options = serverTLS(keyPath, certPath)
        self.factory = WebSocketServerFactory(EchoApplication)
        self.port = yield SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1").listen(self.factory)
        self.addCleanup(self.port.stopListening)
        self.portNumber = self.port.getHost().port

    def test_factoryDeclaresHTTP11(self) -> None:
        """
        L{WebSocketServerFactory} provides L{IProtocolNegotiationFactory}
        and declares C{http/1.1}, the protocol of the opening handshake.
        """
        from twisted.internet.interfaces import IProtocolNegotiationFactory
        from zope.interface.verify import verifyObject

        self.assertTrue(verifyObject(IProtocolNegotiationFactory, self.factory))
        self.assertEqual(self.factory.acceptableProtocols(), [b"http/1.1"])

    @inlineCallbacks
    def negotiate(self, offered: list[bytes] | None) -> Any:
        tls = trustingTLS(self.certPath, offered)
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", self.portNumber, tls)
        application = Collector()
        opening = connectWebSocket(endpoint, f"wss://localhost:{self.portNumber}/", lambda: application)
        negotiated = []
        yield echoRoundTrip(self, opening, application, lambda p: negotiated.append(p.transport.negotiatedProtocol))
        return negotiated[0]

    @inlineCallbacks
    def test_browserOffer(self) -> Any:
        """
        A client offering C{h2} and C{http/1.1}, as every browser does, gets
        C{http/1.1} and echo.
        """
        self.assertEqual((yield self.negotiate([b"h2", b"http/1.1"])), b"http/1.1")

    @inlineCallbacks
    def test_http11Offer(self) -> Any:
        """
        A client offering only C{http/1.1} (C{openssl s_client -alpn
        http/1.1}) gets it and echo.
        """
        self.assertEqual((yield self.negotiate([b"http/1.1"])), b"http/1.1")

    @inlineCallbacks
    def test_noOffer(self) -> Any:
        """
        A client that offers no ALPN gets no protocol and echo.
        """
        self.assertIsNone((yield self.negotiate(None)))

    @inlineCallbacks
    def test_twistdWithBrowserOffer(self) -> Any:
        """
        C{twistd websocket --port ssl:...}, with and without C{--path},
        completes the TLS handshake with a client that offers ALPN and
        chooses C{http/1.1}, and echo works: offered C{h2} and C{http/1.1}
        on the WebSocket-only server, C{http/1.1} alone (as browsers offer
        for a WebSocket) on the site that C{--path} builds.
        """
        keyPath, certPath = self.certPath.replace("cert.pem", "key.pem"), self.certPath
        for extra, offered in (([], [b"h2", b"http/1.1"]), (["--path", "/ws"], [b"http/1.1"])):
            twistd = Twistd(
                self, "--port", f"ssl:0:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}", *extra
            )
            [tlsPort] = twistd.listening(1)
            tls = trustingTLS(certPath, offered)
            endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", int(tlsPort), tls)
            application = Collector()
            opening = connectWebSocket(endpoint, f"wss://localhost:{tlsPort}/ws", lambda: application)
            negotiated = []
            yield echoRoundTrip(
                self, opening, application, lambda p: negotiated.append(p.transport.negotiatedProtocol)
            )
            self.assertEqual(negotiated, [b"http/1.1"])
            twistd.stop()


class SiteTLSCloseTests(TestCase):
    """
    A WebSocket taken over from a C{twisted.web} site over TLS closes as
    one on a port of its own does.
    """

    timeout = 60

    @inlineCallbacks
    def test_peerClosesWithoutCloseNotify(self) -> Any:
        """
        After the closing handshake, the server closes (TLS close_notify);
        a client that then closes TCP without its own close_notify (Python's
        C{ssl} sockets do) has its connection lost at once, not after
        C{close_timeout}: TCP's end goes to TLS, which loses the
        connection, not to the WebSocket as a half-close.
        """
        import base64
        import socket
        import ssl
        import struct
        import time

        from twisted.internet.threads import deferToThread

        from wsproto_tw.core import Config

        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        lost: Deferred = Deferred()

        class Recorder(EchoApplication):
            def connectionLost(self, reason: Any) -> None:
                lost.callback((time.monotonic(), reason.value))

        root = Resource()
        root.putChild(b"ws", WebSocketResource(Recorder, Config(close_timeout=30)))
        port = yield SSL4ServerEndpoint(reactor, 0, serverTLS(keyPath, certPath), interface="127.0.0.1").listen(
            Site(root)
        )
        self.addCleanup(port.stopListening)

        def client() -> float:
            context = ssl.create_default_context(cafile=certPath)
            with socket.create_connection(("127.0.0.1", port.getHost().port), timeout=20) as raw:
                tls = context.wrap_socket(raw, server_hostname="localhost")
                key = base64.b64encode(os.urandom(16)).decode()
                tls.sendall(
                    f"GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
                )
                head = b""
                while b"\r\n\r\n" not in head:
                    head += tls.recv(4096)
                assert head.startswith(b"HTTP/1.1 101"), head
                mask = os.urandom(4)
                code = struct.pack("!H", 1000)
                tls.sendall(bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(code)))
                received = head.split(b"\r\n\r\n", 1)[1]
                while True:
                    data = tls.recv(4096)  # b"" at the server's close_notify
                    if not data:
                        break
                    received += data
                assert received == b"\x88\x02\x03\xe8", received
                closed = time.monotonic()
            return closed  # the TCP connection closed, without close_notify

        closed = yield deferToThread(client)
        at, reason = yield lost
        self.assertEqual((reason.code, reason.wasClean), (1000, True))
        self.assertLess(at - closed, 5)
