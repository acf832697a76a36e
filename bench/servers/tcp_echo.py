"""
Benchmark ceiling: a plain Twisted TCP echo server, no WebSocket at all.

Usage: python tcp_echo.py PORT
"""

import sys

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


def main():
    port = int(sys.argv[1])
    factory = Factory.forProtocol(Echo)
    factory.noisy = False
    listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
    print(f"listening on {listening.getHost().port}", flush=True)
    reactor.run()


main()
