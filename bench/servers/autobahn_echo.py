"""
Benchmark peer: autobahn's Twisted WebSocket echo server, as its
documentation writes one (NVX acceleration is used when the wheel has it).
With --broadcast, its broadcast example instead: every message from one
client goes to every open client, the sender included, encoded once with
the factory's prepareMessage and sent with sendPreparedMessage
(examples/twisted/websocket/broadcast, BroadcastPreparedServerFactory).

Usage: python autobahn_echo.py PORT [--compression] [--broadcast]
"""

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from twisted.internet import reactor


class EchoProtocol(WebSocketServerProtocol):
    def onMessage(self, payload, isBinary):
        self.sendMessage(payload, isBinary)


class BroadcastProtocol(WebSocketServerProtocol):
    def onOpen(self):
        self.factory.register(self)

    def onMessage(self, payload, isBinary):
        self.factory.broadcast(payload, isBinary)

    def connectionLost(self, reason):
        WebSocketServerProtocol.connectionLost(self, reason)
        self.factory.unregister(self)


class BroadcastPreparedServerFactory(WebSocketServerFactory):
    def __init__(self, url):
        WebSocketServerFactory.__init__(self, url)
        self.clients = []

    def register(self, client):
        if client not in self.clients:
            self.clients.append(client)

    def unregister(self, client):
        if client in self.clients:
            self.clients.remove(client)

    def broadcast(self, payload, isBinary):
        prepared = self.prepareMessage(payload, isBinary)
        for client in self.clients:
            client.sendPreparedMessage(prepared)


def acceptDeflate(offers):
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


def main():
    port = int(sys.argv[1])
    if "--broadcast" in sys.argv:
        factory = BroadcastPreparedServerFactory(f"ws://127.0.0.1:{port}")
        factory.protocol = BroadcastProtocol
    else:
        factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}")
        factory.protocol = EchoProtocol
    # No size limits: the benchmark sends messages of up to 16 MiB.
    factory.setProtocolOptions(maxFramePayloadSize=0, maxMessagePayloadSize=0)
    if "--compression" in sys.argv:
        factory.setProtocolOptions(perMessageCompressionAccept=acceptDeflate)
    listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
    print(f"listening on {listening.getHost().port}", flush=True)
    reactor.run()


main()
