"""
An echo server: each message comes back as it was sent, text as text and
binary as binary, on every path.

    python examples/echo_server.py              # ws://localhost:8080/
    python examples/echo_server.py tcp:9000     # any Twisted endpoint

Try it with examples/client.py, or from a browser's console:
new WebSocket("ws://localhost:8080/").
"""

import sys

from twisted.internet import defer, endpoints, task

from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


class Echo(WebSocketApplication):
    def textMessageReceived(self, text):
        self.transport.sendText(text)

    def binaryMessageReceived(self, data):
        self.transport.sendBinary(data)


async def main(reactor, description="tcp:8080"):
    try:
        port = await endpoints.serverFromString(reactor, description).listen(WebSocketServerFactory(Echo))
    except Exception as exc:  # a bad endpoint string, a port in use, ...
        raise SystemExit(f"echo server: can't listen on {description}: {exc}")
    address = port.getHost()
    print(f"echo server listening on ws://{address.host}:{address.port}/", flush=True)
    await defer.Deferred()  # serve until interrupted


if __name__ == "__main__":
    task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
