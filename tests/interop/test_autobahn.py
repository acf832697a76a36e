"""
Interoperability with C{autobahn}'s Twisted implementation (in this
process, on the same reactor), both directions, with and without
permessage-deflate.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
    PerMessageDeflateResponse,
    PerMessageDeflateResponseAccept,
)
from autobahn.websocket.types import ConnectionDeny
from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.interop.exchange import InteropTestCase, PlanClient, config, within
from tests.interop.plan import OFFERED, OUR_PING, SUBPROTOCOL, messages
from wsproto_tw.client import connect
from wsproto_tw.errors import ConnectionClosed

#: The payload the autobahn peer pings with.
AUTOBAHN_PING = b"ping from autobahn"


def _acceptOffer(offers: list[Any]) -> Any:
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


def _acceptResponse(response: Any) -> Any:
    if isinstance(response, PerMessageDeflateResponse):
        return PerMessageDeflateResponseAccept(response)
    return None


class TesterProtocol(WebSocketClientProtocol):
    """
    autobahn's client, run as the tester by L{InteropTestCase.exchange}:
    it passes what arrives to the factory's L{PlanClient}.
    """

    def onConnect(self, response: Any) -> None:
        self.factory.response = response

    def onOpen(self) -> None:
        self.factory.opened.callback(_Sender(self))

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.app.inbox.put(payload if isBinary else payload.decode("utf-8"))

    def onPing(self, payload: bytes) -> None:
        self.factory.app.pings.append(payload)
        super().onPing(payload)

    def onPong(self, payload: bytes) -> None:
        self.factory.app.pongs.put(payload)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        lost = self.factory.app.lost
        if not lost.called:
            lost.callback(ConnectionClosed(code, reason or "", wasClean))
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionClosed(code, reason or "", wasClean))


class _Sender:
    """
    The four sending methods of an L{IWebSocketTransport}, over autobahn.
    """

    def __init__(self, protocol: TesterProtocol) -> None:
        self._protocol = protocol

    def sendText(self, text: str) -> None:
        self._protocol.sendMessage(text.encode("utf-8"), isBinary=False)

    def sendBinary(self, data: bytes) -> None:
        self._protocol.sendMessage(data, isBinary=True)

    def ping(self, payload: bytes) -> None:
        self._protocol.sendPing(payload)

    def close(self, code: int, reason: str) -> None:
        self._protocol.sendClose(code, reason)


class EchoProtocol(WebSocketServerProtocol):
    """
    autobahn's server: chooses the subprotocol, pings once open, echoes
    every message and records what it sees in its factory's C{seen}.
    """

    def onConnect(self, request: Any) -> str:
        seen = self.factory.seen
        seen["offeredExtensions"] = request.headers.get("sec-websocket-extensions")
        if SUBPROTOCOL not in request.protocols:
            raise ConnectionDeny(400, f"{SUBPROTOCOL} not offered")
        return SUBPROTOCOL

    def onOpen(self) -> None:
        self.factory.seen["extensions"] = [e.EXTENSION_NAME for e in self.websocket_extensions_in_use]
        self.sendPing(AUTOBAHN_PING)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.seen["echoed"] += 1
        self.sendMessage(payload, isBinary)

    def onPong(self, payload: bytes) -> None:
        self.factory.seen["pongs"].append(payload)

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
        if not self.factory.closed.called:
            self.factory.closed.callback((code, wasClean))


class AutobahnTests(InteropTestCase):
    """
    Our server with autobahn's client, and our client with autobahn's
    server.
    """

    async def ourServer(self, compression: bool) -> None:
        port, apps = self.listen(compression)
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/echo", protocols=list(OFFERED))
        factory.protocol = TesterProtocol
        factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
        if compression:
            factory.setProtocolOptions(
                perMessageCompressionOffers=[PerMessageDeflateOffer()],
                perMessageCompressionAccept=_acceptResponse,
            )
        factory.opened = Deferred()
        factory.app = app = PlanClient()
        connector = reactor.connectTCP("127.0.0.1", port, factory, timeout=10)
        self.addCleanup(connector.disconnect)
        sender = await within(factory.opened, "autobahn's opening handshake")
        response = factory.response
        self.assertEqual(response.protocol, SUBPROTOCOL)
        self.assertExtension(response.headers.get("sec-websocket-extensions"), compression)
        await self.exchange(sender, app, OUR_PING, ping=AUTOBAHN_PING)
        await self.serverSaw(apps, compression, AUTOBAHN_PING)

    async def ourClient(self, compression: bool) -> None:
        factory = WebSocketServerFactory()
        factory.protocol = EchoProtocol
        factory.setProtocolOptions(maxMessagePayloadSize=0, maxFramePayloadSize=0)
        if compression:
            factory.setProtocolOptions(perMessageCompressionAccept=_acceptOffer)
        factory.seen = {"echoed": 0, "pongs": []}
        factory.closed = Deferred()
        listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port
        app = PlanClient()
        connecting = connect(
            f"ws://127.0.0.1:{port}/echo",
            lambda: app,
            config=config(compression, subprotocols=OFFERED),
        )
        await self.runPlan(connecting, app, compression, AUTOBAHN_PING)
        code, wasClean = await within(factory.closed, "autobahn's onClose")
        self.assertEqual((code, wasClean), (1000, True))
        seen = factory.seen
        self.assertEqual(seen["echoed"], len(messages()))
        self.assertEqual(seen["pongs"], [AUTOBAHN_PING])
        self.assertExtension(seen["offeredExtensions"], compression)
        self.assertEqual(seen["extensions"], ["permessage-deflate"] if compression else [])

    async def test_ourServerWithAutobahnClient(self) -> None:
        """
        autobahn's client runs the plan against our echo server, without
        compression.
        """
        await self.ourServer(False)

    async def test_ourServerWithAutobahnClientDeflate(self) -> None:
        """
        autobahn's client runs the plan against our echo server, with
        permessage-deflate negotiated.
        """
        await self.ourServer(True)

    async def test_ourClientWithAutobahnServer(self) -> None:
        """
        Our client runs the plan against autobahn's echo server, without
        compression.
        """
        await self.ourClient(False)

    async def test_ourClientWithAutobahnServerDeflate(self) -> None:
        """
        Our client runs the plan against autobahn's echo server, with
        permessage-deflate negotiated.
        """
        await self.ourClient(True)
