"""
Helpers for the SockJS tests: a C{twisted.web} site with a
L{SockJSResource} at C{/echo}, driven over C{StringTransport}s with a
L{Clock}, and a reader of raw HTTP responses.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import Site

from wsproto_tw.apps import EchoApplication
from wsproto_tw.application import WebSocketApplication
from wsproto_tw.sockjs.config import SockJSConfig
from wsproto_tw.sockjs.resource import SockJSResource

PRELUDE = b"h" * 2048 + b"\n"


class CloseApplication(WebSocketApplication):
    """
    Closes every session as soon as it opens, with C{3000 "Go away!"}.
    """

    def connectionOpened(self, transport: Any) -> None:
        transport.close(3000, "Go away!")


class RecordingApplication(EchoApplication):
    """
    An echo application that records what happens to it.
    """

    instances: list[RecordingApplication] = []

    def __init__(self) -> None:
        self.events: list[Any] = []
        RecordingApplication.instances.append(self)

    def connectionOpened(self, transport: Any) -> None:
        self.events.append("opened")

    def textMessageReceived(self, text: str) -> Any:
        self.events.append(text)
        return super().textMessageReceived(text)

    def connectionLost(self, reason: Any) -> None:
        value = reason.value
        self.events.append(("lost", value.code, value.reason, value.wasClean))


class Response:
    """
    What a raw HTTP/1.1 response says so far.

    @ivar status: the status code.
    @ivar headers: lower-case name to the list of values.
    @ivar body: the body received so far, dechunked.
    @ivar complete: whether the whole body arrived.
    """

    def __init__(self, data: bytes) -> None:
        self.status: int | None = None
        self.headers: dict[str, list[str]] = {}
        self.body, self.complete = b"", False
        if not data:
            return  # nothing was answered yet
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ")[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.headers.setdefault(name.decode().strip().lower(), []).append(value.decode().strip())
        if self.header("transfer-encoding") == "chunked":
            self.body, self.complete = _dechunk(rest)
        elif self.header("content-length") is not None:
            length = int(self.header("content-length"))
            self.body, self.complete = rest[:length], len(rest) >= length
        else:
            self.body, self.complete = rest, False

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    body = b""
    while data:
        size, sep, rest = data.partition(b"\r\n")
        if not sep:
            break
        length = int(size, 16)
        if length == 0:
            return body, True
        body += rest[:length]
        data = rest[length + 2:]
    return body, False


class Exchange:
    """
    One HTTP connection to the site, with one request sent.
    """

    def __init__(self, site: Site, request: bytes) -> None:
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 50000))
        self.channel = site.buildProtocol(None)
        self.channel.makeConnection(self.transport)
        self.channel.dataReceived(request)

    def response(self) -> Response:
        return Response(self.transport.value())

    def drop(self) -> None:
        """
        The client goes away.
        """
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        self.channel.connectionLost(Failure(ConnectionLost()))


class SockJSSite:
    """
    A site with SockJS at C{/echo}.
    """

    def __init__(self, applicationFactory: Any = EchoApplication, config: SockJSConfig | None = None) -> None:
        self.clock = Clock()
        self.resource = SockJSResource(applicationFactory, config, reactor=self.clock)
        root = Resource()
        root.putChild(b"echo", self.resource)
        self.site = Site(root, reactor=self.clock)

    def send(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             version: str = "HTTP/1.1") -> Exchange:
        lines = [f"{method} /echo{path} {version}", "Host: example.com"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        return Exchange(self.site, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def fetch(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
              version: str = "HTTP/1.1") -> Response:
        return self.send(method, path, body, headers, version).response()
