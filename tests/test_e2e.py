"""
End to end: a L{wsproto_tw.server.WebSocketServerFactory} on a real loopback
socket, talking to another implementation's client (the C{autobahn}
package's Twisted client) in the same reactor.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue, inlineCallbacks
from twisted.trial.unittest import TestCase

from wsproto_tw.core.config import Config
from wsproto_tw.errors import ConnectionClosed
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory

#: Text with characters of every UTF-8 length, four bytes included.
TEXT = "ascii, é, € and 𝄞🎉"


class RecordingEcho(WebSocketApplication):
    """
    Echoes messages and records what the server side sees.
    """

    def __init__(self) -> None:
        self.opened: Deferred = Deferred()
        self.pings: DeferredQueue = DeferredQueue()
        self.pongs: DeferredQueue = DeferredQueue()
        self.messages: list[Any] = []
        self.lost: Deferred = Deferred()

    def connectionOpened(self, transport: Any) -> None:
        self.opened.callback(transport)

    def textMessageReceived(self, text: str) -> None:
        self.messages.append(text)
        self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.messages.append(data)
        self.transport.sendBinary(data)

    def pingReceived(self, payload: bytes) -> None:
        self.pings.put(payload)

    def pongReceived(self, payload: bytes) -> None:
        self.pongs.put(payload)

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(reason.value)


class RecordingClient(WebSocketClientProtocol):
    """
    An autobahn client protocol that reports every event to its factory's
    Deferreds and queues.
    """

    def onConnect(self, response: Any) -> None:
        self.factory.subprotocol = response.protocol

    def onOpen(self) -> None:
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.messages.put((payload, isBinary))

    def onPing(self, payload: bytes) -> None:
        self.factory.pings.put(payload)
        super().onPing(payload)

    def onPong(self, payload: bytes) -> None:
        self.factory.pongs.put(payload)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        if not self.factory.closed.called:
            self.factory.closed.callback((wasClean, code, reason))


class AutobahnClientTests(TestCase):
    """
    The autobahn Twisted client and wsproto_tw's server agree on the
    handshake, messages, pings and the closing handshake.
    """

    timeout = 30

    @inlineCallbacks
    def connect(self, **clientOptions: Any) -> Any:
        """
        Listen on a loopback port with an echo server speaking C{v10.stomp},
        and connect an autobahn client offering C{v10.stomp, v11.stomp}.

        @param clientOptions: autobahn protocol options for the client.

        @return: a Deferred firing with C{(client protocol, client factory,
            server application, server transport)} once both ends are open.
        """
        servers: list[RecordingEcho] = []

        def application() -> RecordingEcho:
            servers.append(RecordingEcho())
            return servers[-1]

        serverFactory = WebSocketServerFactory(
            application, Config(subprotocols=("v10.stomp",), ping_interval=None), reactor=reactor
        )
        port = reactor.listenTCP(0, serverFactory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        portNumber = port.getHost().port

        url = f"ws://127.0.0.1:{portNumber}/chat/room?id=3"
        clientFactory = WebSocketClientFactory(url, protocols=["v10.stomp", "v11.stomp"])
        clientFactory.protocol = RecordingClient
        # autobahn drops the connection 1 s after its Close if the answer
        # has not come (its closeHandshakeTimeout): on a loaded machine the
        # reactor (client and server share it here) can stall that long,
        # and the timer, run before the reads of the same turn, then ends
        # the connection before either Close is read.
        clientFactory.setProtocolOptions(**{"closeHandshakeTimeout": 20, "openHandshakeTimeout": 20, **clientOptions})
        clientFactory.opened = Deferred()
        clientFactory.closed = Deferred()
        clientFactory.messages = DeferredQueue()
        clientFactory.pings = DeferredQueue()
        clientFactory.pongs = DeferredQueue()
        connector = reactor.connectTCP("127.0.0.1", portNumber, clientFactory, timeout=10)
        self.addCleanup(connector.disconnect)

        client = yield clientFactory.opened
        serverTransport = yield servers[0].opened
        return client, clientFactory, servers[0], serverTransport

    @inlineCallbacks
    def test_conversation(self) -> Any:
        """
        Over a loopback TCP connection: the server picks C{v10.stomp} from
        C{v10.stomp, v11.stomp}; text with 4-byte UTF-8 and binary are
        echoed; each side's ping is answered with a pong both applications
        see; and the client's close with code 4001 and a reason reaches the
        server, both ends seeing a clean close with that code.
        """
        client, clientFactory, server, serverTransport = yield self.connect()
        self.assertEqual(clientFactory.subprotocol, "v10.stomp")
        self.assertEqual(serverTransport.subprotocol, "v10.stomp")
        self.assertEqual(serverTransport.request.path, "/chat/room")

        client.sendMessage(TEXT.encode("utf-8"), isBinary=False)
        payload, isBinary = yield clientFactory.messages.get()
        self.assertEqual((payload.decode("utf-8"), isBinary), (TEXT, False))

        blob = bytes(range(256)) * 300
        client.sendMessage(blob, isBinary=True)
        self.assertEqual((yield clientFactory.messages.get()), (blob, True))
        self.assertEqual(server.messages, [TEXT, blob])

        client.sendPing(b"from client")
        self.assertEqual((yield server.pings.get()), b"from client")
        self.assertEqual((yield clientFactory.pongs.get()), b"from client")

        serverTransport.ping(b"from server")
        self.assertEqual((yield clientFactory.pings.get()), b"from server")
        self.assertEqual((yield server.pongs.get()), b"from server")

        client.sendClose(4001, "bye bye")
        closed = yield server.lost
        self.assertIsInstance(closed, ConnectionClosed)
        self.assertEqual((closed.code, closed.reason, closed.wasClean), (4001, "bye bye", True))
        wasClean, code, reason = yield clientFactory.closed
        self.assertEqual((wasClean, code), (True, 4001))

    @inlineCallbacks
    def test_serverCloses(self) -> Any:
        """
        The server's close with code 4002 and a reason reaches the client;
        a client that echoes the code and reason in its reply has the server
        see them too, both ends seeing a clean close.
        """
        client, clientFactory, server, serverTransport = yield self.connect(echoCloseCodeReason=True)
        serverTransport.close(4002, "server says bye, 𝄞")
        wasClean, code, reason = yield clientFactory.closed
        self.assertEqual((wasClean, code, reason), (True, 4002, "server says bye, 𝄞"))
        closed = yield server.lost
        self.assertEqual((closed.code, closed.reason, closed.wasClean), (4002, "server says bye, 𝄞", True))
