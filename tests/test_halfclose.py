"""
The closing handshake when the peer half-closes TCP (RFC 6455 sections
5.5.1 and 7.1.1): a peer that sends its Close frame and at once shuts down
its sending side (a FIN, while it still reads) gets our Close back, in
both roles and on the C{twisted.web} path, over real loopback sockets.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import ClientCreator, Factory, Protocol
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from tests.helpers import clientFrame, closePayload, parseFrames, requestBytes, serverFrame
from wsproto_tw.apps import EchoApplication
from wsproto_tw.client import connect
from wsproto_tw.core.handshake import compute_accept
from wsproto_tw.resource import WebSocketResource
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


def within(d: Deferred, seconds: float, what: str) -> Deferred:
    """
    Fail C{d} with a message naming C{what} if it has not fired in time.
    """
    call = reactor.callLater(seconds, lambda: d.called or d.errback(AssertionError(f"timed out: {what}")))
    d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])
    return d


@implementer(IHalfCloseableProtocol)
class HalfClosingPeer(Protocol):
    """
    A raw peer that, once it has the other side's opening handshake
    message, sends a Close frame and shuts down its sending side at once,
    then records everything it still receives.

    @ivar received: the bytes received after our half-close.
    @ivar done: fires with C{received} when the connection is gone.
    """

    def __init__(self, role: str, code: int) -> None:
        self.role = role
        self.code = code
        self.buffer = b""
        self.received = b""
        self.closedOurSide = False
        self.done: Deferred = Deferred()

    def connectionMade(self) -> None:
        if self.role == "client":
            self.transport.write(requestBytes(host="127.0.0.1"))

    def dataReceived(self, data: bytes) -> None:
        if self.closedOurSide:
            self.received += data
            return
        self.buffer += data
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return
        if self.role == "server":
            key = [
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            ][0]
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + compute_accept(key.decode()).encode() + b"\r\n\r\n"
            )
            frame = serverFrame(0x8, closePayload(self.code, b"bye"))
        else:
            if not head.startswith(b"HTTP/1.1 101 "):
                self.done.errback(AssertionError(f"not upgraded: {head!r}"))
                return
            frame = clientFrame(0x8, closePayload(self.code, b"bye"))
        # The Close frame and the FIN leave together.
        self.transport.write(frame)
        self.transport.loseWriteConnection()
        self.closedOurSide = True
        self.received += rest

    def readConnectionLost(self) -> None:
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Any) -> None:
        if not self.done.called:
            self.done.callback(self.received)


class Recorder(WebSocketApplication):
    """
    A client application that reports its close.
    """

    def __init__(self) -> None:
        self.lost: Deferred = Deferred()

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(reason.value)


class HalfCloseTests(TestCase):
    """
    A peer's Close followed at once by its FIN is answered with our Close.
    """

    timeout = 30

    def assertAnsweredClose(self, received: bytes, code: int) -> None:
        frames = parseFrames(received)
        self.assertEqual([opcode for opcode, _, _, _ in frames], [0x8], received)
        self.assertEqual(struct.unpack("!H", frames[0][1][:2])[0], code)

    @inlineCallbacks
    def test_clientAnswersServerThatHalfCloses(self) -> Any:
        """
        A server that sends Close 1001 and shuts down its sending side gets
        the client's Close 1001 back; the client's application sees a
        clean close with 1001.
        """
        peer = HalfClosingPeer("server", 1001)
        port = reactor.listenTCP(0, Factory.forProtocol(lambda: peer), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        application = Recorder()
        yield within(connect(f"ws://127.0.0.1:{port.getHost().port}/", lambda: application), 10, "open")
        received = yield within(peer.done, 10, "the client's close")
        self.assertAnsweredClose(received, 1001)
        closed = yield within(application.lost, 10, "connectionLost")
        self.assertEqual((closed.code, closed.wasClean), (1001, True))

    @inlineCallbacks
    def halfCloseServer(self, factory: Any) -> Any:
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        peer = HalfClosingPeer("client", 1000)
        yield ClientCreator(reactor, lambda: peer).connectTCP("127.0.0.1", port.getHost().port)
        received = yield within(peer.done, 10, "the server's close")
        self.assertAnsweredClose(received, 1000)

    def test_serverAnswersClientThatHalfCloses(self) -> Any:
        """
        A client that sends Close 1000 and shuts down its sending side gets
        the server's Close 1000 back from L{WebSocketServerFactory}.
        """
        return self.halfCloseServer(WebSocketServerFactory(EchoApplication))

    def test_resourceAnswersClientThatHalfCloses(self) -> Any:
        """
        The same through a L{WebSocketResource} in a C{twisted.web} site.
        """
        root = Resource()
        root.putChild(b"chat", WebSocketResource(EchoApplication))
        site = Site(root)
        site.noisy = False
        return self.halfCloseServer(site)
