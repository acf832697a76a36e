"""
An echo server: each message comes back as it was sent, text as text and
binary as binary, on every path.

    python examples/echo_server.py              # ws://localhost:8080/
    python examples/echo_server.py tcp:9000     # any Twisted endpoint

Try it with examples/client.py, or from a browser's console:
new WebSocket("ws://localhost:8080/").
"""

import sys

from twisted.internet import endpoints, reactor

from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


class Echo(WebSocketApplication):
    def textMessageReceived(self, text):
        self.transport.sendText(text)

    def binaryMessageReceived(self, data):
        self.transport.sendBinary(data)


def main(description="tcp:8080"):
    endpoint = endpoints.serverFromString(reactor, description)
    listening = endpoint.listen(WebSocketServerFactory(Echo))

    def ready(port):
        address = port.getHost()
        print(f"echo server listening on ws://{address.host}:{address.port}/", flush=True)

    listening.addCallbacks(ready, lambda failure: (print(failure.value), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main(*sys.argv[1:])
