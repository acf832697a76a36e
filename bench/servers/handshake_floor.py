"""
Benchmark floor for handshakes: a plain Twisted TCP server that does the
least a WebSocket handshake cycle can (accept; one read and one write for
the opening handshake, its answer a fixed template around the computed
Sec-WebSocket-Accept; one read and one write for the closing handshake;
close), with no parsing, no validation and no log. What a handshake costs
wsproto_tw above this is ours; this much is CPython's and Twisted's.

Usage: python handshake_floor.py PORT
"""

import sys
from base64 import b64encode
from hashlib import sha1

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
_CLOSE = b"\x88\x02\x03\xe8"


class Floor(Protocol):
    opened = False

    def dataReceived(self, data):
        if not self.opened:
            if not data.endswith(b"\r\n\r\n"):
                self.transport.loseConnection()  # not a whole request in one read: not for this floor
                return
            self.opened = True
            start = data.index(b"Sec-WebSocket-Key: ") + 19
            key = data[start : data.index(b"\r\n", start)]
            self.transport.write(_HEAD + b64encode(sha1(key + _GUID).digest()) + b"\r\n\r\n")
        else:
            self.transport.write(_CLOSE)
            self.transport.loseConnection()


def main():
    port = int(sys.argv[1])
    factory = Factory.forProtocol(Floor)
    factory.noisy = False
    listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
    print(f"listening on {listening.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
