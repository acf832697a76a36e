"""
Nagle's algorithm is off on every TCP connection wsproto_tw makes or
accepts (L{wsproto_tw.wire.setNoDelay}): a small frame written while an
earlier one is unacknowledged goes out at once.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    UNIXClientEndpoint,
    UNIXServerEndpoint,
)
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.ssl import PrivateCertificate
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from tests.helpers import requestBytes
from tests.test_tls import Collector, echoRoundTrip, selfSignedCertificate
from wsproto_tw.apps import EchoApplication
from wsproto_tw.client import connect, connectWebSocket
from wsproto_tw.server import WebSocketServerFactory
from wsproto_tw.stomp.server import StompServer
from wsproto_tw.wire import setNoDelay


def noDelay(transport: Any) -> int:
    """
    @return: the C{TCP_NODELAY} option of the TCP socket under
        C{transport} (through TLS's and wrappers' C{transport}s).
    """
    while not hasattr(transport, "socket"):
        transport = transport.transport
    return transport.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


class Opened(EchoApplication):
    """
    An echo application that fires C{opened} with its connection.
    """

    opened: Deferred

    def connectionOpened(self, transport: Any) -> None:
        super().connectionOpened(transport)
        if not self.opened.called:
            self.opened.callback(transport)


class WebSocketTests(TestCase):
    """
    Both ends of a WebSocket connection, over TCP and over TLS.
    """

    timeout = 30

    @inlineCallbacks
    def listen(self, endpoint: Any) -> Any:
        """
        @return: (the port number C{endpoint} listens on for a server whose
            first connection fires the returned Deferred with itself,
            that Deferred).
        """
        opened: Deferred = Deferred()

        def build() -> Opened:
            application = Opened()
            application.opened = opened
            return application

        port = yield endpoint.listen(WebSocketServerFactory(build))
        self.addCleanup(port.stopListening)
        return port.getHost().port, opened

    @inlineCallbacks
    def test_tcpServerAndClient(self) -> Any:
        """
        The server's and the client's sockets have C{TCP_NODELAY} set.
        """
        number, opened = yield self.listen(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"))
        application = Collector()
        seen = []
        opening = connect(f"ws://127.0.0.1:{number}/", lambda: application)
        server = []
        opened.addCallback(server.append)
        yield echoRoundTrip(
            self, opening, application, lambda p: seen.append((noDelay(p.transport), noDelay(server[0].transport)))
        )
        self.assertEqual(seen, [(1, 1)])

    @inlineCallbacks
    def test_rawClientServed(self) -> Any:
        """
        A plain socket client's connection: the server's end has it set
        from the moment the connection is made, before the handshake.
        """
        number, opened = yield self.listen(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"))
        client = socket.create_connection(("127.0.0.1", number))
        self.addCleanup(client.close)
        client.sendall(requestBytes())
        server = yield opened
        self.assertEqual(noDelay(server.transport), 1)
        server.transport.abortConnection()

    @inlineCallbacks
    def test_tlsServerAndClient(self) -> Any:
        """
        Under TLS, the TCP sockets below have it set, both ends.
        """
        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        with open(keyPath, "rb") as key, open(certPath, "rb") as cert:
            options = PrivateCertificate.loadPEM(key.read() + cert.read()).options()
        number, opened = yield self.listen(SSL4ServerEndpoint(reactor, 0, options, interface="127.0.0.1"))
        application = Collector()
        seen = []
        server = []
        opened.addCallback(server.append)
        opening = connect(f"wss://localhost:{number}/", lambda: application, trustRoot=certPath)
        yield echoRoundTrip(
            self, opening, application, lambda p: seen.append((noDelay(p.transport), noDelay(server[0].transport)))
        )
        self.assertEqual(seen, [(1, 1)])

    @inlineCallbacks
    def test_unixSocket(self) -> Any:
        """
        Over a UNIX socket, which has no such option, connections open and
        echo as before.
        """
        directory = tempfile.mkdtemp(prefix="wstw")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "ws.sock")
        port = yield UNIXServerEndpoint(reactor, path).listen(WebSocketServerFactory(EchoApplication))
        self.addCleanup(port.stopListening)
        application = Collector()
        opening = connectWebSocket(UNIXClientEndpoint(reactor, path), "ws://localhost/", lambda: application)
        yield echoRoundTrip(self, opening, application)


class StompStreamTests(TestCase):
    """
    STOMP over a TCP connection (L{StompServer.streamFactory}).
    """

    timeout = 30

    @inlineCallbacks
    def test_tcp(self) -> Any:
        """
        The server's end of a STOMP stream connection has it set.
        """
        made: Deferred = Deferred()
        streams = StompServer().streamFactory()

        class Tracking(Factory):
            def buildProtocol(self, addr: Any) -> Any:
                protocol = streams.buildProtocol(addr)
                made.callback(protocol)
                return protocol

        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Tracking())
        self.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(client.close)
        protocol = yield made
        yield deferLater(reactor, 0, lambda: None)  # made fires before makeConnection
        self.assertEqual(noDelay(protocol.transport), 1)
        protocol.transport.abortConnection()


@implementer(ITCPTransport)
class RecordingTCP(StringTransport):
    """
    A transport that says it is TCP and records C{setTcpNoDelay}.
    """

    def __init__(self, error: OSError | None = None) -> None:
        super().__init__()
        self.noDelay: list[bool] = []
        self.error = error

    def setTcpNoDelay(self, enabled: bool) -> None:
        if self.error is not None:
            raise self.error
        self.noDelay.append(enabled)


class SetNoDelayTests(SynchronousTestCase):
    """
    L{setNoDelay} on transports of every kind.
    """

    def test_tcpTransport(self) -> None:
        """
        A TCP transport is told to turn Nagle's algorithm off.
        """
        transport = RecordingTCP()
        setNoDelay(transport)
        self.assertEqual(transport.noDelay, [True])

    def test_notTCP(self) -> None:
        """
        Any other transport is left alone.
        """
        setNoDelay(StringTransport())  # no setTcpNoDelay: would raise

    def test_unixSocketError(self) -> None:
        """
        A transport that says it is TCP but whose socket refuses the option
        (a UNIX socket's, which inherits the interface) is left as it is.
        """
        setNoDelay(RecordingTCP(OSError(95, "Operation not supported")))

    def test_tlsOverOtherTransport(self) -> None:
        """
        TLS declares the TCP interface whatever it runs on: over a transport
        without C{setTcpNoDelay}, nothing is done.
        """
        from twisted.internet.ssl import CertificateOptions
        from twisted.protocols.tls import TLSMemoryBIOFactory

        tls = TLSMemoryBIOFactory(CertificateOptions(), True, Factory.forProtocol(Protocol)).buildProtocol(None)
        tls.makeConnection(StringTransport())
        self.assertTrue(ITCPTransport.providedBy(tls))
        setNoDelay(tls)
