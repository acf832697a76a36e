"""
A test bridge from WebSocket over HTTP/1.1 to WebSocket over HTTP/2 (RFC
8441), so that a peer that only speaks HTTP/1.1 (the Autobahn fuzzing
client) can test a server's WebSocket-over-HTTP/2 side.

Each TCP connection's upgrade request becomes an extended CONNECT on a new
TLS connection to the target (ALPN C{h2}): its path, origin, subprotocol
and extension offers are passed on, and a C{200} answer becomes a C{101}
with the C{Sec-WebSocket-Accept} the client expects, any other status is
passed back as it is. From then on the bridge moves bytes: the client's
to the stream's DATA (within the stream's flow-control window), the
stream's to the client. The stream's end closes the TCP connection and the
TCP connection's end ends the stream. The bridge parses nothing but the
request head (with wsproto_tw's core) and does not look at frames.

    python -m tests.h2bridge https://127.0.0.1:8443   # prints its port
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.internet.endpoints import SSL4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol

from wsproto_tw.core.handshake import STATUS_PHRASES, compute_accept, parse_request

#: Request fields passed on to the extended CONNECT.
_PASSED_ON = ("origin", "sec-websocket-protocol", "sec-websocket-extensions", "sec-websocket-version")
#: Response fields passed back in the 101.
_PASSED_BACK = ("sec-websocket-protocol", "sec-websocket-extensions")


class _Upstream(Protocol):
    """
    The HTTP/2 side of one bridged WebSocket: one TLS connection, one
    extended CONNECT stream.
    """

    def __init__(self, downstream: BridgedClient, path: str, authority: str, fields: list, key: str) -> None:
        self.downstream = downstream
        self.path = path
        self.authority = authority
        self.fields = fields
        self.key = key
        self.pending = bytearray()
        self.ending = False
        self.streamID: int | None = None
        self.opened = False

    def connectionMade(self) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(1 << 30)
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        import h2.events

        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged) and self.streamID is None:
                self.streamID = self.h2.get_next_available_stream_id()
                self.h2.send_headers(
                    self.streamID,
                    [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                     (":path", self.path), (":authority", self.authority), *self.fields],
                )
            elif isinstance(event, h2.events.ResponseReceived):
                self.responseReceived(dict(event.headers))
            elif isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                self.downstream.transport.write(event.data)
            elif isinstance(event, h2.events.StreamEnded):
                self.downstream.transport.loseConnection()
            elif isinstance(event, h2.events.StreamReset):
                self.downstream.transport.abortConnection()
            elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                self.send()
        self.flush()

    def responseReceived(self, headers: dict) -> None:
        status = int(headers[b":status"])
        if status != 200:
            phrase = STATUS_PHRASES.get(status, "Error")
            self.downstream.transport.write(f"HTTP/1.1 {status} {phrase}\r\nConnection: close\r\n\r\n".encode())
            return
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {compute_accept(self.key)}",
        ]
        for name in _PASSED_BACK:
            value = headers.get(name.encode())
            if value is not None:
                lines.append(f"{name}: {value.decode('latin-1')}")
        self.downstream.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.opened = True
        self.send()

    def write(self, data: bytes) -> None:
        self.pending += data
        self.send()
        self.flush()

    def end(self) -> None:
        self.ending = True
        self.send()
        self.flush()

    def send(self) -> None:
        if not self.opened:
            return
        h2 = self.h2
        while self.pending:
            window = h2.local_flow_control_window(self.streamID)
            if window <= 0:
                return
            size = min(window, h2.max_outbound_frame_size, len(self.pending))
            h2.send_data(self.streamID, bytes(self.pending[:size]))
            del self.pending[:size]
        if self.ending:
            self.ending = False
            try:
                h2.end_stream(self.streamID)
            except Exception:
                pass  # the server ended or reset it first
            self.flush()
            self.transport.loseConnection()

    def connectionLost(self, reason: Any) -> None:
        self.downstream.transport.loseConnection()


class BridgedClient(Protocol):
    """
    The HTTP/1.1 side: reads the upgrade request, then moves bytes.
    """

    def __init__(self, reactor: Any, host: str, port: int, tls: Any) -> None:
        self.reactor = reactor
        self.host = host
        self.port = port
        self.tls = tls
        self.head = b""
        self.upstream: _Upstream | None = None
        self.early = b""

    def dataReceived(self, data: bytes) -> None:
        if self.upstream is not None:
            self.upstream.write(data)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return
        request = parse_request(self.head[:end])
        rest = self.head[end + 4 :]
        fields = [(name.lower(), value) for name, value in request.headers if name.lower() in _PASSED_ON]
        upstream = _Upstream(self, request.target, f"{self.host}:{self.port}", fields, request.get("sec-websocket-key"))
        self.upstream = upstream
        upstream.pending += rest
        endpoint = SSL4ClientEndpoint(self.reactor, self.host, self.port, self.tls)
        endpoint.connect(Factory.forProtocol(lambda: upstream)).addErrback(lambda _: self.transport.abortConnection())

    def connectionLost(self, reason: Any) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            if self.upstream.streamID is not None and self.upstream.opened:
                self.upstream.end()
            else:
                self.upstream.transport.loseConnection()


class BridgeFactory(Factory):
    """
    Builds a L{BridgedClient} per TCP connection, bridging to the HTTP/2
    server at C{host}:C{port} over TLS (C{tls}: client options offering
    C{h2} by ALPN).
    """

    noisy = False

    def __init__(self, reactor: Any, host: str, port: int, tls: Any) -> None:
        self.reactor = reactor
        self.host = host
        self.port = port
        self.tls = tls

    def buildProtocol(self, addr: Any) -> BridgedClient:
        return BridgedClient(self.reactor, self.host, self.port, self.tls)


def main(argv: list[str]) -> None:
    from urllib.parse import urlsplit

    from twisted.internet import reactor, ssl

    from wsproto_tw.client import _UnverifiedTLS

    target = urlsplit(argv[0])
    tls = _UnverifiedTLS(target.hostname)
    tls._options = ssl.CertificateOptions(acceptableProtocols=[b"h2"])
    port = reactor.listenTCP(0, BridgeFactory(reactor, target.hostname, target.port, tls), interface="127.0.0.1")
    print(f"bridge listening on {port.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
