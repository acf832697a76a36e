"""
A browser chat: the page (public/index.html) at /, its WebSocket at /ws,
on one port.

    python examples/chat/server.py              # open http://localhost:8080/
    python examples/chat/server.py tcp:0

Each browser tab is one member of the room: what one sends, everyone sees,
with join and leave notices.
"""

import itertools
import os
import sys

from twisted.internet import defer, endpoints, task
from twisted.web.server import Site
from twisted.web.static import File

from wsproto_tw.core import Config
from wsproto_tw.resource import WebSocketResource
from wsproto_tw.server import WebSocketApplication


class Room:
    def __init__(self):
        self.members = set()
        self.numbers = itertools.count(1)

    def say(self, text):
        for member in self.members:
            member.transport.sendText(text)


class Member(WebSocketApplication):
    def __init__(self, room):
        self.room = room
        self.name = f"guest{next(room.numbers)}"

    def connectionOpened(self, transport):
        self.room.members.add(self)
        self.room.say(f"* {self.name} joined")

    def textMessageReceived(self, text):
        self.room.say(f"{self.name}: {text}")

    def connectionLost(self, reason):
        self.room.members.discard(self)
        self.room.say(f"* {self.name} left")


async def main(reactor, description="tcp:8080"):
    room = Room()
    root = File(os.path.join(os.path.dirname(os.path.abspath(__file__)), "public"))
    # Small messages only; a keepalive ping every 30 seconds.
    config = Config(max_message_size=4096, ping_interval=30)
    root.putChild(b"ws", WebSocketResource(lambda: Member(room), config))
    try:
        port = await endpoints.serverFromString(reactor, description).listen(Site(root))
    except Exception as exc:  # a bad endpoint string, a port in use, ...
        raise SystemExit(f"chat: can't listen on {description}: {exc}")
    address = port.getHost()
    print(f"chat listening on http://{address.host}:{address.port}/", flush=True)
    await defer.Deferred()  # serve until interrupted


if __name__ == "__main__":
    task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
