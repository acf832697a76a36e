"""
Tests for L{wsproto_tw.wrap}: stream protocols (C{LineReceiver}, AMP) over
WebSocket, in memory and over a real loopback connection.
"""

from __future__ import annotations

import io
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols import amp
from twisted.protocols.basic import FileSender, LineReceiver
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from tests.helpers import (
    RecordingProducer,
    clientFrame,
    closePayload,
    parseFrames,
    requestBytes,
    sentCloseCode,
)
from wsproto_tw.client import connect
from wsproto_tw.interfaces import IWebSocketApplication
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory
from wsproto_tw.wrap import ProtocolApplication, streamReason, wrapFactory

PEER = IPv4Address("TCP", "192.0.2.1", 5555)


class Shout(LineReceiver):
    """
    Answers each line in upper case; C{quit} ends the connection.
    """

    delimiter = b"\r\n"

    def connectionMade(self) -> None:
        self.factory.built.append(self)
        self.lostReason: Any = None

    def lineReceived(self, line: bytes) -> None:
        if line == b"quit":
            self.transport.loseConnection()
        else:
            self.sendLine(line.upper())

    def connectionLost(self, reason: Any) -> None:
        self.lostReason = reason


class ShoutFactory(Factory):
    protocol = Shout

    def __init__(self) -> None:
        self.built: list[Shout] = []
        self.addresses: list[Any] = []

    def buildProtocol(self, addr: Any) -> Any:
        self.addresses.append(addr)
        return super().buildProtocol(addr)


class Raw(Protocol):
    """
    Records what it receives; its transport is there for the test to use.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


class InMemory:
    """
    A server connection in memory, opened, running an application from
    L{wrapFactory}.
    """

    def __init__(self, factory: Any, **options: Any) -> None:
        self.clock = Clock()
        self.applications: list[ProtocolApplication] = []
        applicationFactory = wrapFactory(factory, reactor=self.clock, **options)

        def build() -> ProtocolApplication:
            application = applicationFactory()
            self.applications.append(application)
            return application

        self.protocol = WebSocketServerFactory(build, reactor=self.clock).buildProtocol(PEER)
        self.transport = StringTransport(peerAddress=PEER)
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(requestBytes())
        self.opening = self.transport.value()
        assert self.opening.startswith(b"HTTP/1.1 101 ")
        self.transport.clear()

    def send(self, opcode: int, payload: bytes) -> None:
        self.protocol.dataReceived(clientFrame(opcode, payload))

    def frames(self) -> list[tuple[int, bytes]]:
        frames = [(opcode, payload) for opcode, payload, _, _ in parseFrames(self.transport.value())]
        self.transport.clear()
        return frames


class WrapTests(SynchronousTestCase):
    """
    L{wrapFactory} runs a stream protocol over a WebSocket connection.
    """

    def test_interface(self) -> None:
        """
        The applications L{wrapFactory} builds provide
        L{IWebSocketApplication}.
        """
        verifyObject(IWebSocketApplication, wrapFactory(ShoutFactory(), reactor=Clock())())

    def test_linesAsTextMessages(self) -> None:
        """
        With C{text=True, delimiter=b"\\r\\n"}, each text message is a line
        and each line the protocol sends is one text message, without the
        delimiter.
        """
        factory = ShoutFactory()
        connection = InMemory(factory, text=True, delimiter=b"\r\n")
        connection.send(0x1, "héllo".encode())
        connection.send(0x1, b"two")
        # bytes.upper() leaves non-ASCII bytes alone.
        self.assertEqual(connection.frames(), [(0x1, "HéLLO".encode()), (0x1, b"TWO")])
        self.assertEqual(factory.addresses, [PEER])

    def test_binaryPassThrough(self) -> None:
        """
        Without options, each message's payload is fed as is, and each write
        becomes one binary message.
        """
        factory = Factory.forProtocol(Raw)
        connection = InMemory(factory)
        [application] = connection.applications
        connection.send(0x2, b"\x00\x01")
        connection.send(0x1, b"text too")
        self.assertEqual(application.protocol.received, [b"\x00\x01", b"text too"])
        application.protocol.transport.write(b"ab")
        application.protocol.transport.writeSequence([b"c", b"d"])
        self.assertEqual(connection.frames(), [(0x2, b"ab"), (0x2, b"cd")])

    def test_splitUTF8(self) -> None:
        """
        In text mode, a UTF-8 sequence split across writes is sent whole.
        """
        connection = InMemory(Factory.forProtocol(Raw), text=True)
        transport = connection.applications[0].protocol.transport
        encoded = "né".encode()
        transport.write(encoded[:2])
        transport.write(encoded[2:])
        self.assertEqual(connection.frames(), [(0x1, b"n"), (0x1, "é".encode())])

    def test_partialLineWaits(self) -> None:
        """
        With a delimiter, bytes after the last delimiter wait for the rest
        of their line.
        """
        connection = InMemory(Factory.forProtocol(Raw), delimiter=b"\n")
        transport = connection.applications[0].protocol.transport
        transport.write(b"one\ntw")
        self.assertEqual(connection.frames(), [(0x2, b"one")])
        transport.write(b"o\n")
        self.assertEqual(connection.frames(), [(0x2, b"two")])

    def test_loseConnectionClosesCleanly(self) -> None:
        """
        The protocol's C{loseConnection} closes the WebSocket with 1000;
        once the peer answers, the protocol's C{connectionLost} gets a
        L{ConnectionDone}.
        """
        factory = ShoutFactory()
        connection = InMemory(factory, text=True, delimiter=b"\r\n")
        connection.send(0x1, b"quit")
        self.assertEqual(sentCloseCode(connection.transport), 1000)
        connection.send(0x8, closePayload(1000))
        connection.protocol.connectionLost(None)
        [shout] = factory.built
        self.assertTrue(shout.lostReason.check(ConnectionDone))
        self.assertEqual(shout.lostReason.value.code, 1000)

    def test_errorCloseIsConnectionLost(self) -> None:
        """
        A close with an error code reaches the protocol as a
        L{ConnectionLost} carrying the code.
        """
        factory = ShoutFactory()
        connection = InMemory(factory)
        connection.send(0x8, closePayload(1011, b"oops"))
        connection.protocol.connectionLost(None)
        [shout] = factory.built
        self.assertTrue(shout.lostReason.check(ConnectionLost))
        self.assertEqual((shout.lostReason.value.code, shout.lostReason.value.reason), (1011, "oops"))

    def test_factoryRefuses(self) -> None:
        """
        When the factory's C{buildProtocol} returns L{None}, the connection
        closes with 1008.
        """

        class Refusing(Factory):
            def buildProtocol(self, addr: Any) -> None:
                return None

        connection = InMemory(Refusing())
        self.assertEqual(sentCloseCode(connection.opening), 1008)

    def test_pauseReading(self) -> None:
        """
        The protocol pausing its transport stops reading from the socket.
        """
        connection = InMemory(Factory.forProtocol(Raw))
        transport = connection.applications[0].protocol.transport
        transport.pauseProducing()
        self.assertEqual(connection.transport.producerState, "paused")
        transport.resumeProducing()
        self.assertEqual(connection.transport.producerState, "producing")

    def test_pushProducer(self) -> None:
        """
        A push producer registered on the protocol's transport is paused
        while the WebSocket's write buffer is full, resumed after, and
        stopped when the connection is lost.
        """
        events: list[str] = []
        connection = InMemory(Factory.forProtocol(Raw))
        transport = connection.applications[0].protocol.transport
        transport.registerProducer(RecordingProducer(events), True)
        self.assertRaises(RuntimeError, transport.registerProducer, RecordingProducer(events), True)
        connection.protocol.pauseProducing()
        connection.protocol.resumeProducing()
        connection.protocol.connectionLost(None)
        self.assertEqual(events, ["paused", "resumed", "stopped"])

    def test_pullProducer(self) -> None:
        """
        A pull producer (L{FileSender}) is asked for data while the write
        buffer has room, and waits while it is full; every chunk becomes a
        binary message.
        """
        connection = InMemory(Factory.forProtocol(Raw))
        transport = connection.applications[0].protocol.transport
        sender = FileSender()
        sender.CHUNK_SIZE = 4
        done = sender.beginFileTransfer(io.BytesIO(b"0123456789"), transport)
        connection.protocol.pauseProducing()
        connection.clock.advance(0)
        connection.clock.advance(0)
        self.assertEqual(connection.frames(), [])
        connection.protocol.resumeProducing()
        for _ in range(5):
            connection.clock.advance(0)
        self.assertEqual(connection.frames(), [(0x2, b"0123"), (0x2, b"4567"), (0x2, b"89")])
        self.successResultOf(done)
        # Done: nothing asks the producer for more.
        now = connection.clock.seconds()
        self.assertEqual([call for call in connection.clock.getDelayedCalls() if call.getTime() <= now], [])

    def test_streamReasonOther(self) -> None:
        """
        L{streamReason} leaves a failure that is not a WebSocket close as it
        is.
        """
        from twisted.python.failure import Failure

        failure = Failure(ValueError("x"))
        self.assertIs(streamReason(failure), failure)

    def test_badDelimiter(self) -> None:
        """
        An empty delimiter is refused.
        """
        self.assertRaises(ValueError, wrapFactory, ShoutFactory(), delimiter=b"", reactor=Clock())


class ChatLine(LineReceiver):
    """
    A line chat: each line goes to everyone, prefixed with its sender's
    number.
    """

    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.factory.members.append(self)
        self.number = len(self.factory.members)

    def lineReceived(self, line: bytes) -> None:
        for member in self.factory.members:
            member.sendLine(b"%d: %s" % (self.number, line))

    def connectionLost(self, reason: Any) -> None:
        self.factory.members.remove(self)
        self.factory.lost.append(reason)


class ChatFactory(Factory):
    protocol = ChatLine

    def __init__(self) -> None:
        self.members: list[ChatLine] = []
        self.lost: list[Any] = []


class Sum(amp.Command):
    arguments = [(b"a", amp.Integer()), (b"b", amp.Integer())]
    response = [(b"total", amp.Integer())]


class Adder(amp.AMP):
    @Sum.responder
    def sum(self, a: int, b: int) -> dict[str, int]:
        return {"total": a + b}

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self.factory.lost.callback(reason.value)


class AMPClient(amp.AMP):
    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.connected.callback(self)

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self.factory.lost.callback(reason.value)


class Browser(WebSocketApplication):
    """
    A client as a browser page would be: it sends and receives text.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.waiting: Deferred | None = None
        self.want = 0
        self.lost: Deferred = Deferred()

    def until(self, count: int) -> Deferred:
        self.want = count
        self.waiting = waiting = Deferred()
        self._check()
        return waiting

    def textMessageReceived(self, text: str) -> None:
        self.messages.append(text)
        self._check()

    def _check(self) -> None:
        if self.waiting is not None and len(self.messages) >= self.want:
            waiting, self.waiting = self.waiting, None
            waiting.callback(list(self.messages))

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(reason.value)


class LoopbackTests(TestCase):
    """
    Wrapped protocols over a real loopback WebSocket connection.
    """

    timeout = 30

    @inlineCallbacks
    def listen(self, applicationFactory: Any) -> Any:
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            WebSocketServerFactory(applicationFactory)
        )
        self.addCleanup(port.stopListening)
        return f"ws://127.0.0.1:{port.getHost().port}/"

    @inlineCallbacks
    def test_lineChat(self) -> Any:
        """
        Two text clients talk through a C{LineReceiver} chat; a client's
        close reaches the line protocol as a clean L{ConnectionDone}.
        """
        chat = ChatFactory()
        url = yield self.listen(wrapFactory(chat, text=True, delimiter=b"\n"))
        ann, bob = Browser(), Browser()
        annConnection = yield connect(url, lambda: ann)
        bobConnection = yield connect(url, lambda: bob)
        annConnection.sendText("hi bob")
        yield bob.until(1)
        bobConnection.sendText("hi ann")
        self.assertEqual((yield ann.until(2)), ["1: hi bob", "2: hi ann"])
        self.assertEqual((yield bob.until(2)), ["1: hi bob", "2: hi ann"])
        annConnection.close()
        bobConnection.close()
        yield ann.lost
        yield bob.lost
        while len(chat.lost) < 2:
            yield Deferred.fromCoroutine(_turn())
        self.assertTrue(all(reason.check(ConnectionDone) for reason in chat.lost))

    @inlineCallbacks
    def test_amp(self) -> Any:
        """
        An AMP client and server, both wrapped, call each other over
        WebSocket (binary messages); the client's C{loseConnection} ends
        both cleanly.
        """
        serverFactory = Factory.forProtocol(Adder)
        serverFactory.lost = Deferred()
        url = yield self.listen(wrapFactory(serverFactory))
        clientFactory = Factory.forProtocol(AMPClient)
        clientFactory.connected = Deferred()
        clientFactory.lost = Deferred()
        yield connect(url, wrapFactory(clientFactory))
        client = yield clientFactory.connected
        result = yield client.callRemote(Sum, a=2, b=40)
        self.assertEqual(result, {"total": 42})
        results = yield Deferred.fromCoroutine(_gather([client.callRemote(Sum, a=n, b=n) for n in range(20)]))
        self.assertEqual([r["total"] for r in results], [2 * n for n in range(20)])
        client.transport.loseConnection()
        clientReason = yield clientFactory.lost
        serverReason = yield serverFactory.lost
        self.assertIsInstance(clientReason, ConnectionDone)
        self.assertIsInstance(serverReason, ConnectionDone)
        self.assertEqual(serverReason.code, 1000)


async def _turn() -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, 0.01, lambda: None)


async def _gather(deferreds: list[Deferred]) -> list[Any]:
    return [await d for d in deferreds]
