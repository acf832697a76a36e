"""
A client: connect to a WebSocket server, send each message given on the
command line, print what comes back, and close.

    python examples/client.py ws://localhost:8080/ hello "how are you?"
    python examples/client.py --ca cert.pem wss://localhost:8443/ hello

It exits with status 0 once every reply has arrived and the connection has
closed cleanly.
"""

import argparse
import sys

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import react

from wsproto_tw.client import WebSocketApplication, connect


class Replies(WebSocketApplication):
    def __init__(self, expected):
        self.expected = expected
        self.allReceived = Deferred()
        self.closed = Deferred()

    def textMessageReceived(self, text):
        print(f"received: {text}", flush=True)
        self.expected -= 1
        if self.expected == 0:
            self.allReceived.callback(None)

    def connectionLost(self, reason):
        self.closed.callback(reason.value)


async def main(reactor, arguments):
    application = Replies(len(arguments.messages))
    connection = await connect(arguments.url, lambda: application, reactor=reactor, trustRoot=arguments.ca)
    print(f"connected to {arguments.url}", flush=True)
    for message in arguments.messages:
        connection.sendText(message)
    if arguments.messages:
        await application.allReceived
    connection.close(1000, "done")
    closed = await application.closed
    print(f"closed: {closed.code}, clean: {closed.wasClean}", flush=True)


def run(reactor):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("url", help="ws:// or wss:// URL")
    parser.add_argument("messages", nargs="*", help="text messages to send")
    parser.add_argument("--ca", help="PEM file of the certificate authorities to trust for wss://")
    return ensureDeferred(main(reactor, parser.parse_args())).addErrback(failed)


def failed(failure):
    print(f"error: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
    raise SystemExit(1)


if __name__ == "__main__":
    react(run)
