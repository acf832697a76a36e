"""
Benchmark peer: Twisted's own twisted.web.websocket echo server (built on
wsproto; it negotiates no extensions).

Usage: python twisted_web_echo.py PORT
"""

import sys

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.websocket import WebSocketResource


class EchoProtocol:
    transport = None

    def negotiationStarted(self, transport):
        self.transport = transport

    def negotiationFinished(self):
        pass

    def pongReceived(self, payload):
        pass

    def textMessageReceived(self, message):
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data):
        self.transport.sendBytesMessage(data)

    def connectionLost(self, reason):
        pass


class EchoFactory:
    def buildProtocol(self, request):
        return EchoProtocol()


def main():
    port = int(sys.argv[1])
    root = Resource()
    root.putChild(b"", WebSocketResource(EchoFactory()))
    site = Site(root)
    site.noisy = False
    listening = reactor.listenTCP(port, site, interface="127.0.0.1")
    print(f"listening on {listening.getHost().port}", flush=True)
    reactor.run()


main()
