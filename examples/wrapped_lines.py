"""
One line-based chat, two ways in: an ordinary Twisted LineReceiver served
over plain TCP (telnet, nc) and, unchanged, over WebSocket (a browser, each
line one text message), both in the same room.

    python examples/wrapped_lines.py            # telnet localhost 8023, ws://localhost:8080/
    python examples/wrapped_lines.py tcp:0 tcp:0

Send a line from a browser's console:
    ws = new WebSocket("ws://localhost:8080/"); ws.onmessage = e => console.log(e.data)
    ws.send("hello from the browser")
"""

import sys

from twisted.internet import defer, endpoints, task
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

from wsproto_tw.server import WebSocketServerFactory
from wsproto_tw.wrap import wrapFactory


class ChatLine(LineReceiver):
    delimiter = b"\n"

    def connectionMade(self):
        self.name = f"guest{next(self.factory.numbers)}"
        self.factory.members.add(self)
        self.sendLine(f"welcome, {self.name}".encode())

    def lineReceived(self, line):
        line = line.rstrip(b"\r")
        for member in self.factory.members:
            member.sendLine(self.name.encode() + b": " + line)

    def connectionLost(self, reason):
        self.factory.members.discard(self)


class ChatFactory(Factory):
    protocol = ChatLine

    def __init__(self):
        import itertools

        self.members = set()
        self.numbers = itertools.count(1)


async def main(reactor, tcpDescription="tcp:8023", webSocketDescription="tcp:8080"):
    chat = ChatFactory()
    # The same factory twice: as is over TCP, wrapped over WebSocket, where
    # each line is one text message without its delimiter.
    webSocket = WebSocketServerFactory(wrapFactory(chat, text=True, delimiter=b"\n"))
    for kind, scheme, description, factory in [
        ("lines", "tcp", tcpDescription, chat),
        ("websocket", "ws", webSocketDescription, webSocket),
    ]:
        try:
            port = await endpoints.serverFromString(reactor, description).listen(factory)
        except Exception as exc:  # a bad endpoint string, a port in use, ...
            raise SystemExit(f"{kind}: can't listen on {description}: {exc}")
        address = port.getHost()
        print(f"{kind} listening on {scheme}://{address.host}:{address.port}/", flush=True)
    await defer.Deferred()  # serve until interrupted


if __name__ == "__main__":
    task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
