"""
Tests for L{wsproto_tw.client} and L{wsproto_tw.testee}.

The handshake, timeout and closing tests drive the client through a fake
endpoint, a L{StringTransport} and a L{Clock}. The loopback tests use the
real reactor against our server, the C{websockets} package's server, TLS
servers with certificates made at test time, and kosoku's fuzzing server.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import subprocess
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError, DNSLookupError
from twisted.internet.interfaces import IHostnameResolver, IReactorPluggableNameResolver, IStreamClientEndpoint
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from wsproto_tw.apps import EchoApplication
from wsproto_tw.client import connect, connectWebSocket, loadTrustRoot
from wsproto_tw.core.config import Config
from wsproto_tw.core.handshake import compute_accept
from wsproto_tw.errors import ConnectionClosed, HandshakeRejected, HandshakeTimeout
from wsproto_tw.interfaces import IWebSocketTransport
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


# -- helpers ----------------------------------------------------------------


class Recorder(WebSocketApplication):
    """
    A client application that records everything that happens to it.
    """

    def __init__(self) -> None:
        self.opened: list[Any] = []
        self.messages: list[Any] = []
        self.lost: list[ConnectionClosed] = []
        self.closed: Deferred = Deferred()
        self.arrived: Deferred | None = None

    def connectionOpened(self, transport: Any) -> None:
        self.opened.append(transport)

    def textMessageReceived(self, text: str) -> None:
        self._arrived(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self._arrived(data)

    def _arrived(self, message: Any) -> None:
        self.messages.append(message)
        if self.arrived is not None:
            arrived, self.arrived = self.arrived, None
            arrived.callback(message)

    def nextMessage(self) -> Deferred:
        self.arrived = Deferred()
        return self.arrived

    def connectionLost(self, reason: Failure) -> None:
        self.lost.append(reason.value)
        self.closed.callback(reason.value)


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """
    An endpoint that connects at once to a L{StringTransport}, or, with
    C{pending=True}, only when L{finish} is called.
    """

    def __init__(self, pending: bool = False) -> None:
        self.pending = pending
        self.transport = StringTransport()
        self.protocol: Any = None
        self.cancelled = False
        self._factory: Any = None
        self._connecting: Deferred | None = None

    def connect(self, factory: Any) -> Deferred:
        self._factory = factory
        if not self.pending:
            return succeed(self._build())

        def cancel(d: Deferred) -> None:
            self.cancelled = True

        self._connecting = Deferred(cancel)
        return self._connecting

    def finish(self) -> None:
        assert self._connecting is not None
        self._connecting.callback(self._build())

    def _build(self) -> Any:
        self.protocol = self._factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
        self.protocol.makeConnection(self.transport)
        return self.protocol


def requestHead(transport: StringTransport) -> dict[str, str]:
    """
    @return: the header fields of the request the client wrote, by lower-case
        name, plus C{":line"} for the request line.
    """
    head = transport.value().split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    fields = {":line": lines[0]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.lower()] = value.strip()
    return fields


def acceptFor(transport: StringTransport, *extra: str) -> bytes:
    """
    @return: a valid C{101} answer to the request the client wrote.
    """
    key = requestHead(transport)["sec-websocket-key"]
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {compute_accept(key)}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def startFake(config: Config | None = None, **kwargs: Any) -> tuple[Any, FakeEndpoint, Recorder, Clock, Deferred]:
    """
    Start L{connectWebSocket} over a L{FakeEndpoint} and a L{Clock}.
    """
    clock = Clock()
    endpoint = FakeEndpoint(pending=kwargs.pop("pending", False))
    app = Recorder()
    d = connectWebSocket(
        endpoint,
        kwargs.pop("url", "ws://example.com/chat?room=1"),
        lambda: app,
        config=config,
        reactor=clock,
        **kwargs,
    )
    return None, endpoint, app, clock, d


def makeCertificate(
    tmpdir: str,
    names: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = ("127.0.0.1",),
    san: bool = True,
    valid: tuple[float, float] = (-300, 86400),
) -> tuple[str, str]:
    """
    Write a fresh self-signed certificate and its key as PEM files.

    @param names: DNS names; the first is also the common name.
    @param san: whether the names and C{ips} go in a C{subjectAltName}
        (without one, the certificate names only its common name).
    @param valid: when it becomes valid and when it expires, in seconds
        from now.
    @return: the paths of the certificate and of the key.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    alternatives = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(seconds=valid[0]))
        .not_valid_after(now + datetime.timedelta(seconds=valid[1]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    certPath = os.path.join(tmpdir, "cert.pem")
    keyPath = os.path.join(tmpdir, "key.pem")
    with open(certPath, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(keyPath, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return certPath, keyPath


def makeChain(
    tmpdir: str,
    intermediateValid: tuple[float, float] = (-300, 86400),
    names: tuple[Any, ...] | None = None,
) -> dict[str, str]:
    """
    Write a root CA, an intermediate CA it signs and a server certificate
    for C{localhost} and C{127.0.0.1} the intermediate signs, as PEM files.

    @param intermediateValid: when the intermediate becomes valid and when
        it expires, in seconds from now.
    @param names: the server certificate's C{subjectAltName} entries
        (C{cryptography.x509.GeneralName}s), if not C{localhost} and
        C{127.0.0.1}.
    @return: the paths: C{"root"} and C{"intermediate"} (each CA's
        certificate), C{"cert"} (the server's certificate followed by the
        intermediate's, as a server presents them) and C{"key"} (the
        server's key).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def issue(
        commonName: str, issuer: Any, issuerKey: Any, ca: bool, valid: tuple[float, float], extensions: list[Any]
    ) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, commonName)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer is not None else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(seconds=valid[0]))
            .not_valid_after(now + datetime.timedelta(seconds=valid[1]))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(issuerKey if issuerKey is not None else key, hashes.SHA256()), key

    root, rootKey = issue("Test Root CA", None, None, True, (-300, 86400), [])
    intermediate, intermediateKey = issue("Test Intermediate CA", root, rootKey, True, intermediateValid, [])
    if names is None:
        names = (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    server, serverKey = issue(
        "localhost", intermediate, intermediateKey, False, (-300, 86400), [x509.SubjectAlternativeName(names)]
    )
    paths = {name: os.path.join(tmpdir, f"{name}.pem") for name in ("root", "intermediate", "cert", "key")}
    for name, certificates in (("root", [root]), ("intermediate", [intermediate]), ("cert", [server, intermediate])):
        with open(paths[name], "wb") as f:
            f.write(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    with open(paths["key"], "wb") as f:
        f.write(
            serverKey.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return paths


def listenTLS(testCase: TestCase, factory: Any, certPath: str, keyPath: str) -> int:
    """
    Serve C{factory} over TLS on a loopback port until the test ends,
    presenting the certificates of C{certPath}: the server's own, then the
    rest of its chain (if any).

    @return: the port.
    """
    from twisted.internet import ssl

    with open(certPath, "rb") as c, open(keyPath, "rb") as k:
        certificates, key = c.read(), k.read()
    # The server's certificate first, then the rest of its chain.
    marker = b"-----END CERTIFICATE-----"
    chain = [ssl.Certificate.loadPEM(block + marker) for block in certificates.split(marker) if block.strip()]
    own = ssl.PrivateCertificate.loadPEM(chain[0].dumpPEM() + key)
    options = ssl.CertificateOptions(
        privateKey=own.privateKey.original,
        certificate=own.original,
        extraCertChain=[c.original for c in chain[1:]],
    )
    port = reactor.listenSSL(0, factory, options, interface="127.0.0.1")
    testCase.addCleanup(port.stopListening)
    return port.getHost().port


def listenTCP(testCase: TestCase, factory: Any) -> int:
    """
    Serve C{factory} on a loopback port until the test ends.

    @return: the port.
    """
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    testCase.addCleanup(port.stopListening)
    return port.getHost().port


def closeAll(factory: WebSocketServerFactory) -> None:
    for protocol in list(factory.connections):
        protocol.abortConnection()


# -- the opening handshake ----------------------------------------------------


class OpeningHandshakeTests(SynchronousTestCase):
    """
    L{connectWebSocket} sends the opening request and checks the answer.
    """

    def test_request(self) -> None:
        """
        The request carries the URL's target and host, the origin, the
        offered subprotocols, the extra headers and a fresh 16-byte key.
        """
        _, endpoint, app, clock, d = startFake(
            Config(subprotocols=("chat", "superchat")),
            url="ws://example.com:8080/chat?room=1",
            origin="https://example.com",
            headers=[("Authorization", "Bearer x")],
        )
        fields = requestHead(endpoint.transport)
        self.assertEqual(fields[":line"], "GET /chat?room=1 HTTP/1.1")
        self.assertEqual(fields["host"], "example.com:8080")
        self.assertEqual(fields["origin"], "https://example.com")
        self.assertEqual(fields["sec-websocket-protocol"], "chat, superchat")
        self.assertEqual(fields["authorization"], "Bearer x")
        self.assertEqual(fields["upgrade"], "websocket")
        self.assertEqual(fields["sec-websocket-version"], "13")
        self.assertEqual(len(base64.b64decode(fields["sec-websocket-key"])), 16)
        self.assertNoResult(d)

    def test_keysDiffer(self) -> None:
        """
        Each connection sends a different key.
        """
        keys = {requestHead(startFake()[1].transport)["sec-websocket-key"] for _ in range(3)}
        self.assertEqual(len(keys), 3)

    def test_badHeaderRefused(self) -> None:
        """
        A header that would break the request head raises L{ValueError}.
        """
        self.assertRaises(ValueError, startFake, headers=[("X-A", "b\r\nEvil: 1")])
        self.assertRaises(ValueError, startFake, headers=[("X A", "b")])

    def test_badURLRefused(self) -> None:
        """
        A URL that is not ws:// or wss:// raises L{ValueError}.
        """
        self.assertRaises(ValueError, startFake, url="http://example.com/")

    def test_opens(self) -> None:
        """
        On a valid C{101} the Deferred fires with the connection, after the
        application's C{connectionOpened}; it provides
        L{IWebSocketTransport} and knows the chosen subprotocol.
        """
        _, endpoint, app, clock, d = startFake(Config(subprotocols=("chat",)))
        order = []
        app.connectionOpened = lambda t: order.append("opened")  # type: ignore[method-assign]
        d.addCallback(lambda t: order.append("fired") or t)
        endpoint.protocol.dataReceived(acceptFor(endpoint.transport, "Sec-WebSocket-Protocol: chat"))
        transport = self.successResultOf(d)
        self.assertEqual(order, ["opened", "fired"])
        self.assertTrue(verifyObject(IWebSocketTransport, transport))
        self.assertEqual(transport.subprotocol, "chat")
        self.assertEqual(transport.response.status, 101)
        self.assertIs(app.transport, transport)

    def test_framesAfterResponse(self) -> None:
        """
        A frame that arrives in the same segment as the C{101} is delivered.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.dataReceived(acceptFor(endpoint.transport) + b"\x81\x02hi")
        self.successResultOf(d)
        self.assertEqual(app.messages, ["hi"])

    def test_writePauseBeforeOpen(self) -> None:
        """
        A transport that pauses its producer before the connection opens (a
        TLS transport holding the request until its own handshake is done)
        does not stop the client from reading, or the TLS handshake could
        never complete.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.pauseProducing()
        self.assertEqual(endpoint.transport.producerState, "producing")
        endpoint.protocol.resumeProducing()
        endpoint.protocol.dataReceived(acceptFor(endpoint.transport))
        self.successResultOf(d)

    def test_wrongAccept(self) -> None:
        """
        A C{101} with the wrong C{Sec-WebSocket-Accept} fails with
        L{HandshakeRejected} and the transport is closed.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.dataReceived(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        )
        error = self.failureResultOf(d, HandshakeRejected).value
        self.assertEqual(error.reason, "wrong sec-websocket-accept")
        self.assertEqual(error.status, 101)
        self.assertTrue(endpoint.transport.disconnecting)
        self.assertEqual(app.opened, [])

    def test_unexpectedSubprotocol(self) -> None:
        """
        A subprotocol the client did not offer fails the handshake.
        """
        _, endpoint, app, clock, d = startFake(Config(subprotocols=("chat",)))
        endpoint.protocol.dataReceived(acceptFor(endpoint.transport, "Sec-WebSocket-Protocol: mqtt"))
        error = self.failureResultOf(d, HandshakeRejected).value
        self.assertEqual(error.reason, "server chose subprotocol 'mqtt', which was not offered")
        self.assertTrue(endpoint.transport.disconnecting)

    def test_unexpectedExtension(self) -> None:
        """
        An extension the client did not offer fails the handshake.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.dataReceived(
            acceptFor(endpoint.transport, "Sec-WebSocket-Extensions: permessage-deflate")
        )
        error = self.failureResultOf(d, HandshakeRejected).value
        self.assertEqual(error.reason, "server answered with an extension that was not offered")

    def test_forbidden(self) -> None:
        """
        A C{403} fails with L{HandshakeRejected} carrying the status, the
        headers and the body, and reads as C{403 Forbidden}.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.dataReceived(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\ngo away\n"
        )
        error = self.failureResultOf(d, HandshakeRejected).value
        self.assertEqual(str(error), "403 Forbidden")
        self.assertEqual(error.status, 403)
        self.assertIn(("Content-Type", "text/plain"), error.headers)
        self.assertEqual(error.body, b"go away\n")
        self.assertTrue(endpoint.transport.disconnecting)

    def test_okInsteadOfSwitching(self) -> None:
        """
        A C{200} (a plain web server) fails with L{HandshakeRejected} whose
        body is bounded.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
        endpoint.protocol.dataReceived(b"<html>" + b"x" * 10000)
        error = self.failureResultOf(d, HandshakeRejected).value
        self.assertEqual(error.status, 200)
        self.assertEqual(str(error), "200 OK")
        self.assertTrue(error.body.startswith(b"<html>"))
        self.assertLessEqual(len(error.body), 4096)

    def test_bodyUntilClose(self) -> None:
        """
        Without C{Content-Length}, the body of a rejection is read until the
        server closes.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.dataReceived(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
        self.assertNoResult(d)
        endpoint.protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(d, HandshakeRejected).value
        self.assertEqual((error.status, error.body), (503, b""))

    def test_garbage(self) -> None:
        """
        An answer that is not HTTP fails with L{HandshakeRejected} and
        status 0, saying what it looks like.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.dataReceived(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        error = self.failureResultOf(d, HandshakeRejected).value
        self.assertEqual(error.status, 0)
        self.assertEqual(str(error), 'not a websocket server but an ssh server ("SSH-2.0-OpenSSH_9.2")')

    def test_closedBeforeAnswer(self) -> None:
        """
        A server that closes without answering fails the handshake.
        """
        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(d, HandshakeRejected).value
        self.assertEqual(str(error), "connection closed before the handshake response")

    def test_transportErrorBeforeAnswer(self) -> None:
        """
        A transport failure before the answer (a TLS error, a reset) fails
        the Deferred with that failure itself.
        """

        class TLSTrouble(Exception):
            pass

        _, endpoint, app, clock, d = startFake()
        endpoint.protocol.connectionLost(Failure(TLSTrouble("certificate verify failed")))
        self.failureResultOf(d, TLSTrouble)
        self.assertEqual(app.lost, [])


# -- timeouts and cancellation -----------------------------------------------


class TimeoutTests(SynchronousTestCase):
    """
    C{Config.open_timeout} bounds the whole opening, from the call.
    """

    def test_neverAnswers(self) -> None:
        """
        A server that accepts the connection and never answers fails it with
        L{HandshakeTimeout} after C{open_timeout}, and the transport is
        closed.
        """
        _, endpoint, app, clock, d = startFake(Config(open_timeout=5))
        clock.advance(4.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        self.failureResultOf(d, HandshakeTimeout)
        self.assertTrue(endpoint.transport.disconnecting)

    def test_neverConnects(self) -> None:
        """
        An endpoint that does not connect within C{open_timeout} is
        cancelled and the Deferred fails with L{HandshakeTimeout}.
        """
        _, endpoint, app, clock, d = startFake(Config(open_timeout=5), pending=True)
        clock.advance(5)
        error = self.failureResultOf(d, HandshakeTimeout).value
        self.assertEqual(str(error), "opening handshake timed out while connecting")
        self.assertTrue(endpoint.cancelled)

    def test_deadlineFromCall(self) -> None:
        """
        The time spent connecting counts against C{open_timeout}.
        """
        _, endpoint, app, clock, d = startFake(Config(open_timeout=5), pending=True)
        clock.advance(3)
        endpoint.finish()
        self.assertEqual(clock.getDelayedCalls()[0].getTime(), 5)
        clock.advance(2)
        self.failureResultOf(d, HandshakeTimeout)
        self.assertTrue(endpoint.transport.disconnecting)

    def test_noTimeout(self) -> None:
        """
        With C{open_timeout=None} nothing is scheduled.
        """
        _, endpoint, app, clock, d = startFake(Config(open_timeout=None), pending=True)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertNoResult(d)

    def test_cancelWhileConnecting(self) -> None:
        """
        Cancelling while connecting cancels the endpoint and fails with
        L{CancelledError}.
        """
        _, endpoint, app, clock, d = startFake(pending=True)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(endpoint.cancelled)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_cancelDuringHandshake(self) -> None:
        """
        Cancelling during the upgrade aborts the connection and fails with
        L{CancelledError}; the later loss of the connection is not reported.
        """
        _, endpoint, app, clock, d = startFake()
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(endpoint.transport.disconnecting)
        endpoint.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(app.lost, [])


class ClosingTests(SynchronousTestCase):
    """
    After the closing handshake the client waits for the server to close
    TCP (RFC 6455 §7.1.1), up to C{close_timeout}.
    """

    def openedFake(self, **config: Any) -> tuple[FakeEndpoint, Recorder, Clock, Any]:
        _, endpoint, app, clock, d = startFake(Config(ping_interval=None, **config))
        endpoint.protocol.dataReceived(acceptFor(endpoint.transport))
        transport = self.successResultOf(d)
        endpoint.transport.clear()
        return endpoint, app, clock, transport

    def test_serverCloses(self) -> None:
        """
        The client echoes the server's Close, masked, and leaves closing TCP
        to the server; it drops TCP itself after C{close_timeout}.
        """
        endpoint, app, clock, transport = self.openedFake(close_timeout=3)
        endpoint.protocol.dataReceived(b"\x88\x02\x03\xe8")
        sent = endpoint.transport.value()
        self.assertEqual(sent[:2], b"\x88\x82")
        key = sent[2:6]
        self.assertEqual(bytes(b ^ key[i] for i, b in enumerate(sent[6:8])), b"\x03\xe8")
        clock.advance(2.9)
        self.assertFalse(endpoint.transport.disconnecting)
        clock.advance(0.1)
        self.assertTrue(endpoint.transport.disconnecting)
        endpoint.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([(c.code, c.wasClean) for c in app.lost], [(1000, True)])

    def test_clientCloses(self) -> None:
        """
        After the client's Close and the server's answer, the server's
        closing of TCP ends the connection cleanly at once.
        """
        endpoint, app, clock, transport = self.openedFake(close_timeout=3)
        transport.close(1000, "bye")
        self.assertEqual(endpoint.transport.value()[:2], b"\x88\x85")
        endpoint.protocol.dataReceived(b"\x88\x02\x03\xe8")
        self.assertFalse(endpoint.transport.disconnecting)
        endpoint.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([(c.code, c.wasClean) for c in app.lost], [(1000, True)])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_serverSilentAfterClose(self) -> None:
        """
        A server that never answers the client's Close has the connection
        dropped after C{close_timeout}, not cleanly.
        """
        endpoint, app, clock, transport = self.openedFake(close_timeout=3)
        transport.close()
        clock.advance(3)
        self.assertTrue(endpoint.transport.disconnecting)
        endpoint.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([c.wasClean for c in app.lost], [False])

    def test_masksEveryFrame(self) -> None:
        """
        Every frame the client sends is masked.
        """
        endpoint, app, clock, transport = self.openedFake()
        transport.sendText("hi")
        transport.sendBinary(b"\x00\x01")
        transport.ping(b"p")
        data = endpoint.transport.value()
        self.assertEqual(data[0:2], b"\x81\x82")
        self.assertEqual(data[8:10], b"\x82\x82")
        self.assertEqual(data[16:18], b"\x89\x81")

    def test_maskedServerFrameFails(self) -> None:
        """
        A masked frame from the server fails the connection with 1002.
        """
        endpoint, app, clock, transport = self.openedFake()
        endpoint.protocol.dataReceived(b"\x81\x82\x00\x00\x00\x00hi")
        self.assertEqual(app.messages, [])
        sent = endpoint.transport.value()
        key = sent[2:6]
        self.assertEqual(bytes(b ^ key[i] for i, b in enumerate(sent[6:8])), b"\x03\xea")


# -- connect(): resolution and TLS wiring ------------------------------------


@implementer(IHostnameResolver)
class FixedResolver:
    """
    Resolves every name to the given addresses, at once.
    """

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts
        self.asked: list[tuple[str, int]] = []

    def resolveHostName(self, receiver: Any, hostName: str, portNumber: int = 0, addressTypes: Any = None, transportSemantics: str = "TCP") -> Any:
        self.asked.append((hostName, portNumber))
        receiver.resolutionBegan(None)
        for host in self.hosts:
            receiver.addressResolved(IPv4Address("TCP", host, portNumber))
        receiver.resolutionComplete()
        return None


class ConnectWiringTests(SynchronousTestCase):
    """
    L{connect} resolves the URL's host, connects to its port and wraps
    C{wss://} in TLS.
    """

    def test_dnsFailure(self) -> None:
        """
        A host name that does not resolve fails with L{DNSLookupError}.
        """
        memory = MemoryReactorClock()
        memory.installNameResolver(FixedResolver())
        d = connect("ws://nowhere.invalid/", Recorder, reactor=memory)
        self.failureResultOf(d, DNSLookupError)

    def test_defaultPorts(self) -> None:
        """
        ws:// connects to port 80 of the resolved address, wss:// to 443
        through TLS.
        """
        memory = MemoryReactorClock()
        resolver = FixedResolver("192.0.2.1")
        memory.installNameResolver(resolver)
        connect("ws://example.com/", Recorder, reactor=memory)
        connect("wss://example.com/", Recorder, reactor=memory)
        self.assertEqual(resolver.asked, [("example.com", 80), ("example.com", 443)])
        plain, secure = memory.tcpClients
        self.assertEqual(plain[:2], ("192.0.2.1", 80))
        self.assertEqual(secure[:2], ("192.0.2.1", 443))
        self.assertIsInstance(secure[2]._wrappedFactory, TLSMemoryBIOFactory)
        self.assertNotIsInstance(plain[2]._wrappedFactory, TLSMemoryBIOFactory)

    def test_trustRootAndInsecureExclusive(self) -> None:
        """
        Asking both for a trust root and for no verification is an error.
        """
        self.assertRaises(
            ValueError, connect, "wss://example.com/", Recorder, reactor=MemoryReactorClock(), trustRoot=object(), insecure=True
        )

    def test_connectTimeout(self) -> None:
        """
        The TCP connection attempt gets C{connectTimeout}.
        """
        memory = MemoryReactorClock()
        memory.installNameResolver(FixedResolver("192.0.2.1"))
        connect("ws://example.com:81/", Recorder, reactor=memory, connectTimeout=7)
        self.assertEqual(memory.tcpClients[0][3], 7)

    def test_openTimeoutWhileConnecting(self) -> None:
        """
        A TCP connection attempt still pending at C{open_timeout} is stopped
        and the Deferred fails with L{HandshakeTimeout}.
        """
        memory = MemoryReactorClock()
        memory.installNameResolver(FixedResolver("192.0.2.1"))
        d = connect("ws://example.com/", Recorder, reactor=memory, config=Config(open_timeout=2))
        memory.advance(2)
        self.failureResultOf(d, HandshakeTimeout)
        self.assertTrue(memory.connectors[0].stoppedConnecting)

    def test_loadTrustRoot(self) -> None:
        """
        L{loadTrustRoot} reads a PEM file of certificates and refuses a file
        without one.
        """
        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp)
        self.assertIsNotNone(loadTrustRoot(certPath))
        self.assertRaises(ValueError, loadTrustRoot, keyPath)
        self.assertRaises(OSError, loadTrustRoot, os.path.join(tmp, "missing.pem"))


# -- over loopback ----------------------------------------------------------------


class ChatServer(WebSocketApplication):
    """
    Echoes, and records the request it accepted.
    """

    requests: list[Any] = []

    def requestReceived(self, request: Any) -> None:
        ChatServer.requests.append(request)

    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.transport.sendBinary(data)


class LoopbackTests(TestCase):
    """
    The client against servers on loopback sockets.
    """

    timeout = 30

    @inlineCallbacks
    def exchange(self, url: str, config: Config | None = None, **kwargs: Any) -> Any:
        """
        Open, echo one text and one binary message, close; return the app.
        """
        app = Recorder()
        transport = yield connect(url, lambda: app, config=config, **kwargs)
        got = app.nextMessage()
        transport.sendText("h\u00e9llo")
        self.assertEqual((yield got), "h\u00e9llo")
        got = app.nextMessage()
        transport.sendBinary(b"\x00\xff" * 1000)
        self.assertEqual((yield got), b"\x00\xff" * 1000)
        transport.close(1000, "done")
        closed = yield app.closed
        self.assertEqual((closed.code, closed.wasClean), (1000, True))
        return app, transport

    @inlineCallbacks
    def test_ourServer(self) -> None:
        """
        The client talks to our server: subprotocol, origin and extra
        headers arrive, messages echo, and the close is clean.
        """
        ChatServer.requests = []
        factory = WebSocketServerFactory(ChatServer, Config(subprotocols=("chat",)))
        self.addCleanup(closeAll, factory)
        port = listenTCP(self, factory)
        app, transport = yield self.exchange(
            f"ws://127.0.0.1:{port}/room?id=1",
            Config(subprotocols=("superchat", "chat")),
            origin="https://example.com",
            headers=[("X-Token", "abc")],
        )
        self.assertEqual(transport.subprotocol, "chat")
        [request] = ChatServer.requests
        self.assertEqual(request.target, "/room?id=1")
        self.assertEqual(request.origin, "https://example.com")
        self.assertEqual(request.get("x-token"), "abc")
        self.assertEqual(request.host, f"127.0.0.1:{port}")

    @inlineCallbacks
    def test_rejectedByOurServer(self) -> None:
        """
        Our server's 403 for a forbidden origin reaches the client as
        L{HandshakeRejected} with its status and body.
        """
        factory = WebSocketServerFactory(EchoApplication, Config(allowed_origins=frozenset({"https://good.example"})))
        port = listenTCP(self, factory)
        d = connect(f"ws://127.0.0.1:{port}/", Recorder, origin="https://evil.example")
        error = yield self.assertFailure(d, HandshakeRejected)
        self.assertEqual(error.status, 403)
        self.assertEqual(error.body, b"origin https://evil.example is not allowed\n")

    @inlineCallbacks
    def test_connectionRefused(self) -> None:
        """
        A closed port fails with L{ConnectionRefusedError}.
        """
        port = reactor.listenTCP(0, WebSocketServerFactory(EchoApplication), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        yield self.assertFailure(connect(f"ws://127.0.0.1:{number}/", Recorder), ConnectionRefusedError)

    @inlineCallbacks
    def test_websocketsServer(self) -> None:
        """
        The client talks to the C{websockets} package's server (another
        implementation): subprotocol, echo, clean close.
        """
        port = yield startWebsocketsServer(self)
        app, transport = yield self.exchange(
            f"ws://127.0.0.1:{port}/", Config(subprotocols=("chat",))
        )
        self.assertEqual(transport.subprotocol, "chat")
        self.assertEqual(transport.response.get("upgrade").lower(), "websocket")

    @inlineCallbacks
    def test_websocketsServerClosesFirst(self) -> None:
        """
        When the C{websockets} server closes with a code and reason, the
        client reports them and the close is clean.
        """
        port = yield startWebsocketsServer(self)
        app = Recorder()
        transport = yield connect(f"ws://127.0.0.1:{port}/", lambda: app, config=Config(subprotocols=("chat",)))
        transport.sendText("close please")
        closed = yield app.closed
        self.assertEqual((closed.code, closed.reason, closed.wasClean), (4000, "as asked", True))


_WEBSOCKETS_SERVER = r"""
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        if message == "close please":
            await ws.close(4000, "as asked")
            return
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, subprotocols=["chat"], ping_interval=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


class _PortReader(ProcessProtocol):
    """
    Fires C{port} with the first line the child prints, C{ended} when it
    exits.
    """

    def __init__(self) -> None:
        self.port: Deferred = Deferred()
        self.ended: Deferred = Deferred()
        self.output = b""
        self.errors = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if b"\n" in self.output and not self.port.called:
            self.port.callback(int(self.output.split(b"\n")[0]))

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def processEnded(self, reason: Failure) -> None:
        if not self.port.called:
            self.port.errback(Exception(f"server exited: {self.errors.decode(errors='replace')}"))
        self.ended.callback(None)


def startWebsocketsServer(testCase: TestCase) -> Deferred:
    """
    Run a C{websockets} echo server in a child process until the test ends.

    @return: a L{Deferred} firing with its port.
    """
    child = _PortReader()
    process = reactor.spawnProcess(child, sys.executable, [sys.executable, "-c", _WEBSOCKETS_SERVER], env=os.environ)

    def stop() -> Deferred:
        if process.pid is not None:
            process.closeStdin()
        return child.ended

    testCase.addCleanup(stop)
    return child.port


class TLSTests(TestCase):
    """
    wss:// against a server with a self-signed certificate made at test
    time.
    """

    timeout = 30

    def setUp(self) -> None:
        tmp = self.mktemp()
        os.makedirs(tmp)
        self.certPath, self.keyPath = makeCertificate(tmp)
        self.factory = WebSocketServerFactory(EchoApplication)
        self.addCleanup(closeAll, self.factory)
        self.port = listenTLS(self, self.factory, self.certPath, self.keyPath)

    @inlineCallbacks
    def echoOnce(self, url: str, **kwargs: Any) -> Any:
        app = Recorder()
        transport = yield connect(url, lambda: app, **kwargs)
        got = app.nextMessage()
        transport.sendText("secret")
        self.assertEqual((yield got), "secret")
        transport.close()
        closed = yield app.closed
        self.assertTrue(closed.wasClean)

    def test_trusted(self) -> None:
        """
        With the certificate as the trust root the connection works, by
        host name and by IP address.
        """
        from twisted.internet import ssl

        with open(self.certPath, "rb") as f:
            root = ssl.Certificate.loadPEM(f.read())
        return self.echoOnce(f"wss://127.0.0.1:{self.port}/", trustRoot=root)

    def test_trustedFromFile(self) -> None:
        """
        A trust root may be given as a PEM file path.
        """
        return self.echoOnce(f"wss://localhost:{self.port}/", trustRoot=self.certPath)

    @inlineCallbacks
    def test_untrusted(self) -> None:
        """
        Without a trust root the self-signed certificate fails verification:
        the Deferred fails with OpenSSL's error, not a handshake rejection.
        """
        from OpenSSL.SSL import Error

        error = yield self.assertFailure(connect(f"wss://127.0.0.1:{self.port}/", Recorder), Error)
        self.assertEqual(error.args, ([("SSL routines", "", "certificate verify failed: self-signed certificate")],))

    @inlineCallbacks
    def test_expiredOrNotYetValid(self) -> None:
        """
        A trusted certificate for the host that has expired, or is not yet
        valid, fails with OpenSSL's error saying which.
        """
        from OpenSSL.SSL import Error

        for valid, why in (((-7200, -3600), "certificate has expired"), ((3600, 7200), "certificate is not yet valid")):
            tmp = self.mktemp()
            os.makedirs(tmp)
            certPath, keyPath = makeCertificate(tmp, valid=valid)
            port = listenTLS(self, self.factory, certPath, keyPath)
            error = yield self.assertFailure(connect(f"wss://localhost:{port}/", Recorder, trustRoot=certPath), Error)
            [(library, function, reason)] = error.args[0]
            self.assertTrue(reason.startswith(f"certificate verify failed: {why}"), reason)

    @inlineCallbacks
    def test_wrongHostName(self) -> None:
        """
        A trusted certificate for another host name fails verification.
        """
        from service_identity import VerificationError

        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp, names=("other.example",), ips=())
        port = listenTLS(self, self.factory, certPath, keyPath)
        d = connect(f"wss://127.0.0.1:{port}/", Recorder, trustRoot=certPath)
        yield self.assertFailure(d, VerificationError)

    @inlineCallbacks
    def test_noSubjectAltName(self) -> None:
        """
        A trusted certificate without a C{subjectAltName} is for no host
        (RFC 6125 §6.4.4: the common name is not used), even one whose
        common name is the host's: the connection fails, by name or by
        address, and nothing is opened.
        """
        from service_identity import CertificateError

        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp, names=("localhost",), ips=(), san=False)
        opened = []

        class Opened(EchoApplication):
            def connectionOpened(self, transport: Any) -> None:
                opened.append(transport)

        self.factory = WebSocketServerFactory(Opened)
        self.addCleanup(closeAll, self.factory)
        port = listenTLS(self, self.factory, certPath, keyPath)
        for host in ("localhost", "127.0.0.1"):
            d = connect(f"wss://{host}:{port}/", Recorder, trustRoot=certPath)
            error = yield self.assertFailure(d, CertificateError)
            self.assertEqual(str(error), "Certificate does not contain any `subjectAltName`s.")
        self.assertEqual(opened, [])

    @inlineCallbacks
    def test_invalidAltNameSkipped(self) -> None:
        """
        A C{subjectAltName} DNS entry that can match no host (an IP address
        written as a DNS name) is left out: the certificate is still for
        its other names, and for its IP entries.
        """
        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp, names=("localhost", "127.0.0.1"), ips=("127.0.0.1",))
        port = listenTLS(self, self.factory, certPath, keyPath)
        for host in ("localhost", "127.0.0.1"):
            yield self.echoOnce(f"wss://{host}:{port}/", trustRoot=certPath)

    @inlineCallbacks
    def test_unmatchableAltNames(self) -> None:
        """
        A trusted certificate whose C{subjectAltName} holds only entries
        that can match no host (a wildcard over a single label, a URI)
        fails with a L{service_identity.CertificateError} that says so and
        names them, not that there is no C{subjectAltName}.
        """
        from cryptography import x509
        from service_identity import CertificateError

        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp, names=("*.localhost",), ips=())
        port = listenTLS(self, self.factory, certPath, keyPath)
        d = connect(f"wss://localhost:{port}/", Recorder, trustRoot=certPath)
        error = yield self.assertFailure(d, CertificateError)
        self.assertEqual(
            str(error),
            "the certificate's subjectAltName names no host this client can match (it has only DNS:*.localhost)",
        )
        tmp = self.mktemp()
        os.makedirs(tmp)
        paths = makeChain(
            tmp, names=(x509.DNSName("*.localhost"), x509.UniformResourceIdentifier("https://localhost/"))
        )
        port = listenTLS(self, self.factory, paths["cert"], paths["key"])
        error = yield self.assertFailure(
            connect(f"wss://localhost:{port}/", Recorder, trustRoot=paths["root"]), CertificateError
        )
        self.assertEqual(
            str(error),
            "the certificate's subjectAltName names no host this client can match"
            " (it has only DNS:*.localhost, URI:https://localhost/)",
        )

    def listenChain(self, **kwargs: Any) -> tuple[dict[str, str], int]:
        """
        Serve the echo factory with a chain from L{makeChain}.

        @return: the chain's paths and the port.
        """
        tmp = self.mktemp()
        os.makedirs(tmp)
        paths = makeChain(tmp, **kwargs)
        return paths, listenTLS(self, self.factory, paths["cert"], paths["key"])

    def test_chainTrusted(self) -> None:
        """
        A server certificate signed by an intermediate CA the server sends,
        signed by the trusted root CA, is trusted.
        """
        paths, port = self.listenChain()
        return self.echoOnce(f"wss://localhost:{port}/", trustRoot=paths["root"])

    @inlineCallbacks
    def test_chainCertificateFails(self) -> None:
        """
        When the certificate that fails verification is not the server's
        own but one of its chain (an expired intermediate CA above a valid
        certificate), the reason says which: its depth and subject.
        """
        from OpenSSL.SSL import Error

        paths, port = self.listenChain(intermediateValid=(-7200, -3600))
        error = yield self.assertFailure(connect(f"wss://localhost:{port}/", Recorder, trustRoot=paths["root"]), Error)
        self.assertEqual(
            error.args,
            (
                [
                    (
                        "SSL routines",
                        "",
                        "certificate verify failed: certificate has expired (the chain's certificate at depth 1,"
                        " CN=Test Intermediate CA; the server's own is at depth 0)",
                    )
                ],
            ),
        )

    @inlineCallbacks
    def test_intermediateAsTrustRoot(self) -> None:
        """
        An intermediate CA as the trust root is not enough: OpenSSL wants
        the chain to end at a self-signed root it trusts ("unable to get
        issuer certificate", of the intermediate).
        """
        from OpenSSL.SSL import Error

        paths, port = self.listenChain()
        error = yield self.assertFailure(
            connect(f"wss://localhost:{port}/", Recorder, trustRoot=paths["intermediate"]), Error
        )
        [(library, function, reason)] = error.args[0]
        self.assertEqual(
            reason,
            "certificate verify failed: unable to get issuer certificate (the chain's certificate at depth 1,"
            " CN=Test Intermediate CA; the server's own is at depth 0)",
        )

    def test_insecure(self) -> None:
        """
        C{insecure=True} connects without verifying anything.
        """
        return self.echoOnce(f"wss://localhost:{self.port}/", insecure=True)


# -- the Autobahn testee -------------------------------------------------------


class TesteeTests(TestCase):
    """
    L{wsproto_tw.testee.runTestee} against kosoku's fuzzing server.
    """

    timeout = 60

    @inlineCallbacks
    def test_casesPass(self) -> None:
        """
        A handful of cases from several groups (framing, pings, fragments,
        UTF-8, closing) all come out OK, and the run reports its case count.
        """
        from wsproto_tw.testee import runTestee

        cases = ["1.1.1", "1.2.8", "2.3", "3.2", "5.15", "6.4.1", "7.5.1", "7.9.1", "9.1.1", "10.1.1"]
        results, port = _startFuzzingServer(cases)
        url = f"ws://127.0.0.1:{(yield port)}"
        count = yield runTestee(url, "wsproto_tw test", reactor)
        self.assertEqual(count, len(cases))
        outcome = yield results
        self.assertEqual(outcome, [(case, "OK", "OK") for case in cases])

    def test_compressionFlag(self) -> None:
        """
        C{--compression} selects a default L{PerMessageDeflate} policy in
        the testee's configuration.
        """
        from wsproto_tw.core.deflate import PerMessageDeflate
        from wsproto_tw.testee import _compression, defaultConfig

        config = defaultConfig(_compression())
        self.assertEqual(config.compression, PerMessageDeflate())
        self.assertIsNone(defaultConfig().compression)

    def test_unreachable(self) -> None:
        """
        A fuzzing server that can't be reached fails the run.
        """
        from wsproto_tw.testee import runTestee

        port = reactor.listenTCP(0, WebSocketServerFactory(EchoApplication), interface="127.0.0.1")
        number = port.getHost().port
        d = port.stopListening()
        d.addCallback(lambda _: runTestee(f"ws://127.0.0.1:{number}", "x", reactor))
        return self.assertFailure(d, ConnectionRefusedError)

    def test_compressionFlagWithoutDeflate(self) -> None:
        """
        Without L{wsproto_tw.core.deflate}, C{--compression} exits with a
        clear message.
        """
        from wsproto_tw import testee

        name = "wsproto_tw.core.deflate"
        saved = sys.modules.get(name, ...)
        sys.modules[name] = None  # type: ignore[assignment]
        self.addCleanup(lambda: sys.modules.pop(name) if saved is ... else sys.modules.__setitem__(name, saved))
        error = self.assertRaises(SystemExit, testee.main, ["ws://127.0.0.1:9", "--compression"])
        self.assertIn("--compression needs permessage-deflate support", str(error))


def _startFuzzingServer(cases: list[str]) -> tuple[Deferred, Deferred]:
    """
    Run kosoku's fuzzing server for C{cases} in a child process (kosoku
    puts its own stand-in for C{autobahn} on the import path, which can't
    share a process with the real one).

    @return: a L{Deferred} firing with C{[(case, behavior, behaviorClose)]}
        once a client has run every case, and one firing with its port.
    """
    from twisted.internet.threads import deferToThread

    script = """
import asyncio, json, sys
from kosoku import FailureError, run_fuzzingserver

async def serve():
    async with run_fuzzingserver(sys.argv[1:], host="127.0.0.1", port=0) as server:
        print("port", server.port, flush=True)
        try:
            results = await asyncio.wait_for(server.get_result(), 50)
        except FailureError as failure:
            results = failure.results
    rows = [[r.case_id, r.behavior.value, r.behavior_close.value] for r in results]
    print("results", json.dumps(rows), flush=True)

asyncio.run(serve())
"""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *cases],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def readLine(prefix: str) -> str:
        """
        @return: the rest of the next output line starting with C{prefix}.
        """
        seen = []
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace")
            if line.startswith(prefix + " "):
                return line[len(prefix) + 1 :].strip()
            seen.append(line)
        raise AssertionError(f"the fuzzing server ended without {prefix!r}:\n{''.join(seen)}")

    def reap(result: Any) -> Any:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        assert process.stdout is not None
        process.stdout.close()
        return result

    outcome: Deferred = Deferred()

    def started(text: str) -> int:
        rows = deferToThread(readLine, "results")
        rows.addCallback(lambda text: [tuple(row) for row in json.loads(text)])
        rows.addBoth(reap).chainDeferred(outcome)
        return int(text)

    port = deferToThread(readLine, "port")
    port.addCallbacks(started, reap)
    return outcome, port


# -- non-ASCII URLs (issue 12) ----------------------------------------------------


def exactHead(transport: StringTransport, *lines: str) -> bytes:
    """
    @return: the request head C{lines} would make, with the key the client
        actually sent after the fixed fields, as the client writes it.
    """
    key = requestHead(transport)["sec-websocket-key"]
    fixed = ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    return ("\r\n".join([*lines[:2], *fixed, *lines[2:]]) + "\r\n\r\n").encode("latin-1")


class InternationalURLTests(SynchronousTestCase):
    """
    L{connectWebSocket} and L{connect} take IRIs: the host goes out as its
    IDNA A-label, the path and query percent-encoded as UTF-8, and what
    can't be sent raises L{ValueError} from the call.
    """

    def test_nonASCIIHostAndTarget(self) -> None:
        """
        C{ws://bücher.example:8080/café?q=ü} sends C{Host:
        xn--bcher-kva.example:8080} and the target C{/caf%C3%A9?q=%C3%BC}.
        """
        _, endpoint, app, clock, d = startFake(url="ws://b\u00fccher.example:8080/caf\u00e9?q=\u00fc")
        self.assertEqual(
            endpoint.transport.value(),
            exactHead(
                endpoint.transport,
                "GET /caf%C3%A9?q=%C3%BC HTTP/1.1",
                "Host: xn--bcher-kva.example:8080",
            ),
        )

    def test_cyrillic(self) -> None:
        """
        A host and a path wholly outside Latin-1 (C{ws://пример.рф:9/привет})
        are sent as an A-label and UTF-8 percent-encodings.
        """
        _, endpoint, app, clock, d = startFake(
            url="ws://\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444:9/\u043f\u0440\u0438\u0432\u0435\u0442"
        )
        self.assertEqual(
            endpoint.transport.value(),
            exactHead(
                endpoint.transport,
                "GET /%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82 HTTP/1.1",
                "Host: xn--e1afmkfd.xn--p1ai:9",
            ),
        )

    def test_upperCaseNonASCIIHost(self) -> None:
        """
        A non-ASCII host is mapped (UTS #46) before encoding: C{BÜCHER.example}
        is C{xn--bcher-kva.example}; the default port is left out of C{Host}.
        """
        _, endpoint, app, clock, d = startFake(url="wss://B\u00dcCHER.example/")
        self.assertEqual(requestHead(endpoint.transport)["host"], "xn--bcher-kva.example")

    def test_asciiKeptAsWritten(self) -> None:
        """
        Percent-encodings already in the URL, reserved characters in the path
        and query, an IPv6 host and an ASCII host with an underscore go out
        unchanged; a space is percent-encoded.
        """
        _, endpoint, app, clock, d = startFake(url="ws://my_host:81/a%2Fb/c:d@e?x=%26&y=a b")
        fields = requestHead(endpoint.transport)
        self.assertEqual(fields[":line"], "GET /a%2Fb/c:d@e?x=%26&y=a%20b HTTP/1.1")
        self.assertEqual(fields["host"], "my_host:81")
        _, endpoint, app, clock, d = startFake(url="ws://[::1]:9000")
        fields = requestHead(endpoint.transport)
        self.assertEqual((fields[":line"], fields["host"]), ("GET / HTTP/1.1", "[::1]:9000"))

    def assertRefused(self, message: str, **kwargs: Any) -> None:
        """
        Starting a connection with C{kwargs} raises L{ValueError} with
        C{message} from the call, and nothing is connected.
        """
        endpoint = FakeEndpoint()
        error = self.assertRaises(
            ValueError,
            connectWebSocket,
            endpoint,
            kwargs.pop("url", "ws://example.com/"),
            Recorder,
            reactor=Clock(),
            **kwargs,
        )
        self.assertEqual(str(error), message)
        self.assertIsNone(endpoint.protocol)

    def test_unencodableHeaderRefused(self) -> None:
        """
        A header value with a line break or NUL, or a character outside
        Latin-1, and a header name that is not a token raise L{ValueError}
        at once.
        """
        self.assertRefused(
            "header X-Name has a character outside latin-1 in its value: '\u0416'",
            headers=[("X-Name", "\u0416")],
        )
        self.assertRefused(
            "header X-A has a line break or NUL in its value: 'b\\r\\nEvil: 1'",
            headers=[("X-A", "b\r\nEvil: 1")],
        )
        self.assertRefused("header X-A has a line break or NUL in its value: 'b\\x00'", headers=[("X-A", "b\x00")])
        self.assertRefused("invalid header name 'X-\u00e4'", headers=[("X-\u00e4", "b")])
        self.assertRefused(
            "header Origin has a line break or NUL in its value: 'https://a\\n'", origin="https://a\n"
        )
        self.assertRefused(
            "header Origin has a character outside latin-1 in its value: 'https://\u043f'", origin="https://\u043f"
        )

    def test_latin1HeaderSent(self) -> None:
        """
        A header value in Latin-1 is sent as Latin-1 (RFC 9110 §5.5).
        """
        _, endpoint, app, clock, d = startFake(headers=[("X-Name", "Jos\u00e9")])
        self.assertIn(b"\r\nX-Name: Jos\xe9\r\n", endpoint.transport.value())

    def test_invalidHostRefused(self) -> None:
        """
        A host that is no valid name or address raises L{ValueError} at once.
        """
        self.assertRefused("invalid host 'a..b' in websocket url: empty or too long label", url="ws://a..b/")
        self.assertRefused(
            "invalid host 'exa mple' in websocket url: Codepoint U+0020 at position 4 of 'exa mple' not allowed",
            url="ws://exa mple/",
        )
        self.assertRefused(
            "invalid host '-b\u00fccher-.example' in websocket url: Label must not start or end with a hyphen",
            url="ws://-b\u00fccher-.example/",
        )
        self.assertRefused("a websocket url has no user information: 'ws://u:p@example.com/'", url="ws://u:p@example.com/")
        self.assertRefused("websocket url port out of range: 'ws://example.com:70000/'", url="ws://example.com:70000/")
        self.assertRefused("websocket url has no host: 'ws:///x'", url="ws:///x")

    def test_connectResolvesALabel(self) -> None:
        """
        L{connect} resolves the A-label, and raises L{ValueError} for an
        invalid host before resolving anything.
        """
        memory = MemoryReactorClock()
        resolver = FixedResolver("192.0.2.1")
        memory.installNameResolver(resolver)
        connect("ws://b\u00fccher.example/", Recorder, reactor=memory, proxy=False)
        self.assertRaises(ValueError, connect, "ws://a..b/", Recorder, reactor=memory, proxy=False)
        self.assertEqual(resolver.asked, [("xn--bcher-kva.example", 80)])


@implementer(IReactorPluggableNameResolver)
class ResolvingReactor:
    """
    The global reactor, with a name resolver of the test's own.
    """

    def __init__(self, resolver: Any) -> None:
        self.nameResolver = resolver

    def installNameResolver(self, resolver: Any) -> Any:
        old, self.nameResolver = self.nameResolver, resolver
        return old

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)


class _RecordingTLS:
    """
    Server TLS settings that record the SNI name of each client.
    """

    def __init__(self, certPath: str, keyPath: str) -> None:
        from twisted.internet import ssl

        with open(certPath, "rb") as c, open(keyPath, "rb") as k:
            pem = c.read() + k.read()
        self.names: list[bytes | None] = []
        self._context = ssl.PrivateCertificate.loadPEM(pem).options().getContext()
        self._context.set_tlsext_servername_callback(lambda connection: self.names.append(connection.get_servername()))

    def getContext(self) -> Any:
        return self._context


class InternationalTLSTests(TestCase):
    """
    C{wss://} to a non-ASCII host name over loopback TLS.
    """

    timeout = 30

    @inlineCallbacks
    def test_aLabelForSNIAndCertificate(self) -> None:
        """
        The A-label is the TLS SNI name and is matched against the
        certificate (which names only C{xn--bcher-kva.example}), and the
        server sees it in C{Host}.
        """
        tmp = self.mktemp()
        os.makedirs(tmp)
        certPath, keyPath = makeCertificate(tmp, names=("xn--bcher-kva.example",), ips=())
        ChatServer.requests = []
        factory = WebSocketServerFactory(ChatServer)
        self.addCleanup(closeAll, factory)
        tls = _RecordingTLS(certPath, keyPath)
        port = reactor.listenSSL(0, factory, tls, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        number = port.getHost().port
        resolver = FixedResolver("127.0.0.1")
        app = Recorder()
        transport = yield connect(
            f"wss://b\u00fccher.example:{number}/caf\u00e9",
            lambda: app,
            reactor=ResolvingReactor(resolver),
            trustRoot=certPath,
            proxy=False,
        )
        got = app.nextMessage()
        transport.sendText("hall\u00f6")
        self.assertEqual((yield got), "hall\u00f6")
        transport.close()
        yield app.closed
        self.assertEqual(resolver.asked, [("xn--bcher-kva.example", number)])
        self.assertEqual(tls.names, [b"xn--bcher-kva.example"])
        [request] = ChatServer.requests
        self.assertEqual((request.host, request.target), (f"xn--bcher-kva.example:{number}", "/caf%C3%A9"))
