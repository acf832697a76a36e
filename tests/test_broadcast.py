"""
Tests for L{wsproto_tw.broadcast}: one message to many connections,
encoded once, over in-memory connections.
"""

from __future__ import annotations

import socket
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.helpers import clientFrame, parseFrames, requestBytes
from wsproto_tw import wire as wireModule
from wsproto_tw.apps import BroadcastGroup
from wsproto_tw.application import WebSocketApplication
from wsproto_tw.broadcast import PreparedMessage, broadcast, sendPrepared
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.server import WebSocketServerFactory

HELLO = bytes.fromhex("f2 48 cd c9 c9 07 00")


class RecordingTransport(StringTransport):
    """
    A L{StringTransport} that also keeps each object written.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.wire: Any = None

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)


def openConnections(
    count: int, application: Any = WebSocketApplication, config: Config | None = None, headers=()
) -> tuple[WebSocketServerFactory, list[RecordingTransport]]:
    """
    A server factory with C{count} open connections over recording
    transports, their handshakes' bytes cleared.
    """
    factory = WebSocketServerFactory(application, config or Config(ping_interval=None), reactor=Clock())
    transports = []
    for n in range(count):
        wire = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1000 + n))
        transport = RecordingTransport()
        wire.makeConnection(transport)
        transport.wire = wire
        wire.dataReceived(requestBytes(headers=headers))
        transport.clear()
        transport.writes.clear()
        transports.append(transport)
    return factory, transports


class BroadcastTests(SynchronousTestCase):
    """
    L{broadcast} writes one frame, built once, to every open connection.
    """

    def test_sameBytesToEveryone(self):
        """
        Every open connection is written the very same frame object.
        """
        factory, transports = openConnections(3)
        self.assertEqual(broadcast(factory.connections, "Hello"), 3)
        writes = [t.writes for t in transports]
        self.assertEqual(writes[0], [b"\x81\x05Hello"])
        self.assertIs(writes[1][0], writes[0][0])
        self.assertIs(writes[2][0], writes[0][0])

    def test_binary(self):
        """
        Bytes go out as one binary frame.
        """
        factory, transports = openConnections(2)
        broadcast(factory.connections, b"\x00\xff")
        self.assertEqual([t.value() for t in transports], [b"\x82\x02\x00\xff"] * 2)

    def test_preparedMessage(self):
        """
        A L{PreparedMessage} may be given, and used again.
        """
        factory, transports = openConnections(2)
        message = PreparedMessage("again")
        broadcast(factory.connections, message)
        broadcast(factory.connections, message)
        self.assertEqual([t.value() for t in transports], [b"\x81\x05again" * 2] * 2)

    def test_openingSkipped(self):
        """
        A connection still in its opening handshake is skipped.
        """
        factory, transports = openConnections(1)
        wire = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 2000))
        opening = RecordingTransport()
        wire.makeConnection(opening)
        self.assertEqual(broadcast(factory.connections, "hi"), 1)
        self.assertEqual(opening.value(), b"")
        self.assertEqual(transports[0].value(), b"\x81\x02hi")

    def test_sendingInPiecesSkipped(self):
        """
        A connection in the middle of a message sent in pieces is skipped
        (its message's frames can't be interleaved with another); the
        others still get the message, and the count leaves it out.
        """
        factory, transports = openConnections(3)
        connections = [t.wire.connection for t in transports]
        connections[0].beginMessage(binary=True)
        connections[0].sendMessageData(b"part")
        before = transports[0].value()
        self.assertEqual(broadcast(connections, "hi"), 2)
        self.assertEqual(transports[0].value(), before)
        self.assertEqual([t.value() for t in transports[1:]], [b"\x81\x02hi"] * 2)

    def test_compressedShared(self):
        """
        Connections that compress each message on its own share one
        compressed frame (RFC 7692 §7.2.3.1); one that keeps its context
        compresses its own.
        """
        config = Config(ping_interval=None, compression=PerMessageDeflate())
        factory, shared = openConnections(
            2, config=config, headers=[("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")]
        )
        wire = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 3000))
        own = RecordingTransport()
        wire.makeConnection(own)
        wire.dataReceived(requestBytes(headers=[("Sec-WebSocket-Extensions", "permessage-deflate")]))
        own.clear()
        own.writes.clear()
        message = PreparedMessage("Hello")
        broadcast(factory.connections, message)
        self.assertEqual(shared[0].writes, [b"\xc1\x07" + HELLO])
        self.assertIs(shared[1].writes[0], shared[0].writes[0])
        self.assertEqual(own.writes, [b"\xc1\x07" + HELLO])
        self.assertIsNot(own.writes[0], shared[0].writes[0])

    def test_otherTransports(self):
        """
        A transport without C{sendPrepared} is sent the message with
        C{sendText} or C{sendBinary}.
        """

        class Session:
            def __init__(self) -> None:
                self.sent: list[tuple[str, Any]] = []

            def sendText(self, text: str) -> None:
                self.sent.append(("text", text))

            def sendBinary(self, data: bytes) -> None:
                self.sent.append(("binary", data))

        session = Session()
        sendPrepared(session, PreparedMessage("t\u00e9"))
        broadcast([session], b"b")
        self.assertEqual(session.sent, [("text", "t\u00e9"), ("binary", b"b")])

    def test_counted(self):
        """
        Each connection counts the message it was sent.
        """
        factory, _ = openConnections(2)
        broadcast(factory.connections, "four")
        self.assertEqual(
            [(c.statistics.text_sent, c.statistics.text_bytes_sent) for c in factory.connections], [(1, 4)] * 2
        )


class BroadcastGroupTests(SynchronousTestCase):
    """
    L{BroadcastGroup}, the C{twistd websocket --mode broadcast} room,
    encodes each message once.
    """

    def test_oneFrameForAll(self):
        """
        A message one member sends reaches every member as the same frame
        object.
        """
        group = BroadcastGroup()
        factory, transports = openConnections(3, application=group)
        wire = transports[0].wire
        wire.dataReceived(clientFrame(0x1, b"hi all"))
        frames = [t.writes[0] for t in transports]
        self.assertEqual([parseFrames(f) for f in frames], [[(0x1, b"hi all", True, 0)]] * 3)
        self.assertIs(frames[1], frames[0])
        self.assertIs(frames[2], frames[0])

    def test_slowMemberDropped(self):
        """
        A member whose write buffer is full is still sent each message,
        counted; past the group's C{maxWriteBuffer} bytes it is dropped and
        its connection aborted, while the others keep receiving. A member
        whose buffer drains in time starts from zero again.
        """
        group = BroadcastGroup(maxWriteBuffer=100)
        factory, transports = openConnections(3, application=group)
        sender, slow, healthy = (t.wire for t in transports)
        slow.pauseProducing()  # its transport's buffer is full
        for n in range(2):
            sender.dataReceived(clientFrame(0x1, b"%d" % n + b"x" * 39))
        self.assertEqual(len(group.members), 3)
        self.assertFalse(transports[1].disconnecting)
        slow.resumeProducing()  # drained: the backlog starts again
        slow.pauseProducing()
        for n in range(2):
            sender.dataReceived(clientFrame(0x1, b"%d" % n + b"y" * 39))
        self.assertEqual(len(group.members), 3)
        sender.dataReceived(clientFrame(0x1, b"z" * 40))  # 120 bytes behind
        self.assertEqual(len(group.members), 2)
        # Dropped as the connection's own limits drop a slow consumer: 1008,
        # counted, the TCP connection aborted.
        dropped = slow.connection
        self.assertTrue(transports[1].disconnecting)
        self.assertEqual(dropped.statistics.slow_consumer_drops, 1)
        self.assertEqual(
            (dropped.closeRecord.failed, dropped._conn.close_reason),
            (1008, "peer is not reading (120 bytes of broadcast behind)"),
        )
        sender.dataReceived(clientFrame(0x1, b"after"))
        self.assertEqual(len(transports[1].writes), 4)
        self.assertEqual(len(transports[2].writes), 6)
        self.assertEqual(parseFrames(transports[2].writes[-1]), [(0x1, b"after", True, 0)])


class BroadcastOverTCPTests(TestCase):
    """
    L{BroadcastGroup} over real loopback TCP connections, where each
    member's frame goes straight to its socket (L{wsproto_tw.wire.writeEach}).
    """

    @defer.inlineCallbacks
    def openMembers(self, group: BroadcastGroup, count: int):
        """
        Open C{count} WebSocket clients (plain non-blocking sockets) on a
        server of C{group}.

        @return: the client sockets and the server's connections, in order.
        """
        factory = WebSocketServerFactory(group, Config(ping_interval=None), reactor=reactor)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        clients = []
        connections = []
        for n in range(count):
            client = socket.create_connection(("127.0.0.1", port.getHost().port))
            self.addCleanup(client.close)
            client.setblocking(False)
            client.sendall(requestBytes())
            yield self.receive(client, b"\r\n\r\n")
            clients.append(client)
            (connection,) = [c for c in factory.connections if c not in connections]
            connections.append(connection)
            self.addCleanup(connection.abortConnection)
        return clients, connections

    @defer.inlineCallbacks
    def receive(self, client: socket.socket, until: bytes, turns: int = 200):
        """
        Read from C{client} until what arrived ends with C{until}.
        """
        received = b""
        for _ in range(turns):
            try:
                chunk = client.recv(65536)
            except BlockingIOError:
                chunk = None
            except ConnectionResetError:
                break  # aborted: what arrived before is all
            if chunk == b"":
                break
            if chunk:
                received += chunk
                if received.endswith(until):
                    return received
            yield deferLater(reactor, 0.005, lambda: None)
        return received

    def tearDown(self):
        # Let the connections closed by the clients go.
        return deferLater(reactor, 0.05, lambda: None)

    @defer.inlineCallbacks
    def test_directCountedAndAborted(self):
        """
        Every member receives the message, written straight to its socket
        by one call for all of them, and counts it as C{sendText} would; a
        member whose connection was aborted is sent nothing more; a member
        whose writes are paused is sent the message through its own path
        and counted against the group's limit.
        """
        group = BroadcastGroup()
        clients, connections = yield self.openMembers(group, 3)
        self.assertTrue(all(c.wire._direct for c in connections))
        calls = []
        original = wireModule.sendEach
        self.patch(
            wireModule, "sendEach", lambda sockets, data: (calls.append(len(sockets)), original(sockets, data))[1]
        )
        before = [c.statistics.bytes_sent for c in connections]
        group.sendText("one")
        self.assertEqual(calls, [3])
        for client in clients:
            received = yield self.receive(client, b"one")
            self.assertEqual(received, b"\x81\x03one")
        self.assertEqual(
            [
                (c.statistics.text_sent, c.statistics.text_bytes_sent, c.statistics.bytes_sent - b)
                for c, b in zip(connections, before)
            ],
            [(1, 3, 5)] * 3,
        )
        connections[0].abortConnection()
        connections[1].wire.pauseProducing()  # its transport's buffer is full
        group.sendText("two")
        self.assertEqual(calls, [3, 1])
        received = yield self.receive(clients[2], b"two")
        self.assertEqual(received, b"\x81\x03two")
        received = yield self.receive(clients[1], b"two")
        self.assertEqual(received, b"\x81\x03two")
        (paused,) = [m for m in group.members if m.transport is connections[1]]
        self.assertEqual(paused._backlog, 3)
        received = yield self.receive(clients[0], b"two", turns=20)
        self.assertNotIn(b"two", received)
        self.assertEqual(connections[2].statistics.text_sent, 2)
