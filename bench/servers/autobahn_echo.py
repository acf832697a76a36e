"""
Benchmark peer: autobahn's Twisted WebSocket echo server, as its
documentation writes one (NVX acceleration is used when the wheel has it).

Usage: python autobahn_echo.py PORT [--compression]
"""

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from twisted.internet import reactor


class EchoProtocol(WebSocketServerProtocol):
    def onMessage(self, payload, isBinary):
        self.sendMessage(payload, isBinary)


def acceptDeflate(offers):
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


def main():
    port = int(sys.argv[1])
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
