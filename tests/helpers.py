"""
Shared test helpers: open core connections in one call, build frames by hand
and read the frames a connection wrote.

The frame builder and reader here are written independently of
L{wsproto_tw.core.frames}, so tests do not check the core against itself.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, ServerConnection
from wsproto_tw.core.handshake import compute_accept

__all__ = [
    "CLIENT_KEY",
    "MASK",
    "RecordingProducer",
    "clientFrame",
    "closePayload",
    "fixedMask",
    "openedClient",
    "openedServer",
    "parseFrames",
    "requestBytes",
    "responseBytes",
    "sentCloseCode",
    "serverFrame",
]

# The sample nonce of RFC 6455 §1.3.
CLIENT_KEY = "dGhlIHNhbXBsZSBub25jZQ=="

# The masking key of the examples in RFC 6455 §5.7.
MASK = b"\x37\xfa\x21\x3d"


def fixedMask(key: bytes = b"\x01\x02\x03\x04") -> Callable[[int], bytes]:
    """
    A deterministic C{mask_source}: C{key} repeated to the length asked for.

    @param key: the bytes to repeat; a client connection uses the first 16
        bytes as its nonce and the first 4 as each frame's masking key.
    """

    def source(n: int) -> bytes:
        return (key * (n // len(key) + 1))[:n]

    return source


def _frame(opcode: int, payload: bytes, fin: bool, rsv: int, mask: bytes | None) -> bytes:
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    maskBit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head = bytes([first, maskBit | n])
    elif n < 0x10000:
        head = bytes([first, maskBit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([first, maskBit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def clientFrame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, mask: bytes = MASK) -> bytes:
    """
    Build a masked frame, as a client sends it (RFC 6455 §5.2, §5.3).

    @param opcode: the opcode, an int from 0 to 15 (reserved ones too).
    @param rsv: the three RSV bits as an int from 0 to 7 (4 is RSV1).
    @param mask: the 4-byte masking key.
    """
    return _frame(opcode, payload, fin, rsv, mask)


def serverFrame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    """
    Build an unmasked frame, as a server sends it.
    """
    return _frame(opcode, payload, fin, rsv, None)


def closePayload(code: int, reason: bytes = b"") -> bytes:
    """
    The payload of a Close frame: the code in network byte order, then the
    reason (RFC 6455 §5.5.1).
    """
    return struct.pack("!H", code) + reason


def parseFrames(data: bytes) -> list[tuple[int, bytes, bool, int]]:
    """
    Read every complete frame in C{data}, skipping a leading HTTP head.

    @return: C{(opcode, unmasked payload, fin, rsv)} per frame.
    @raise ValueError: C{data} ends in the middle of a frame.
    """
    if data.startswith(b"HTTP/"):
        data = data.partition(b"\r\n\r\n")[2]
    frames = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 2:
            raise ValueError("truncated frame head")
        first, second = data[pos], data[pos + 1]
        n = second & 0x7F
        pos += 2
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        mask = None
        if second & 0x80:
            mask = data[pos : pos + 4]
            pos += 4
        payload = data[pos : pos + n]
        if len(payload) != n:
            raise ValueError("truncated frame payload")
        pos += n
        if mask is not None:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frames.append((first & 0x0F, payload, bool(first & 0x80), (first >> 4) & 0x7))
    return frames


def sentCloseCode(data: bytes | object) -> int | None:
    """
    The code of the first Close frame in what a connection wrote.

    @param data: bytes, or anything with a C{value()} method returning bytes
        (a C{StringTransport}).
    @return: the close code, C{1005} for a Close frame without one, or
        L{None} when no Close frame was written.
    """
    if not isinstance(data, (bytes, bytearray)):
        data = data.value()  # type: ignore[attr-defined]
    for opcode, payload, _, _ in parseFrames(bytes(data)):
        if opcode == 0x8:
            if len(payload) < 2:
                return 1005
            return struct.unpack("!H", payload[:2])[0]
    return None


def requestBytes(
    key: str = CLIENT_KEY,
    target: str = "/chat",
    host: str = "server.example.com",
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """
    A valid opening request (RFC 6455 §4.1) with extra C{headers} appended.
    """
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def responseBytes(key: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """
    A valid C{101} answer (RFC 6455 §4.2.2) to a request with C{key}.
    """
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {compute_accept(key)}",
    ]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def openedServer(
    config: Config | None = None,
    mask_source: Callable[[int], bytes] | None = None,
    now: float = 0.0,
    headers: Iterable[tuple[str, str]] = (),
) -> ServerConnection:
    """
    A server connection that has received a valid request and accepted it,
    with its events and its C{101} response already taken.

    @param headers: extra request headers.
    """
    kwargs = {} if mask_source is None else {"mask_source": mask_source}
    server = ServerConnection(config or Config(), now=now, **kwargs)
    server.receive_data(requestBytes(headers=headers), now=now)
    events = list(server.events())
    if len(events) != 1 or type(events[0]).__name__ != "RequestReceived":
        raise AssertionError(f"request not received: {events!r}")
    server.accept(now=now)
    response = server.data_to_send()
    if not response.startswith(b"HTTP/1.1 101 "):
        raise AssertionError(f"request not accepted: {response!r}")
    return server


def openedClient(
    config: Config | None = None,
    mask_source: Callable[[int], bytes] | None = None,
    now: float = 0.0,
    headers: Iterable[tuple[str, str]] = (),
) -> ClientConnection:
    """
    A client connection whose request was answered with a valid C{101}, with
    its events and its request already taken.

    @param mask_source: the nonce and masking-key source (default: the
        key C{01 02 03 04} repeated, see L{fixedMask}).
    @param headers: extra response headers.
    """
    client = ClientConnection(
        config or Config(),
        host="server.example.com",
        target="/chat",
        now=now,
        mask_source=mask_source or fixedMask(),
    )
    request = client.data_to_send()
    if not request.startswith(b"GET /chat HTTP/1.1\r\n"):
        raise AssertionError(f"unexpected request: {request!r}")
    client.receive_data(responseBytes(client.key, headers), now=now)
    events = list(client.events())
    if len(events) != 1 or type(events[0]).__name__ != "Opened":
        raise AssertionError(f"client not opened: {events!r}")
    return client


@implementer(IPushProducer)
class RecordingProducer:
    """
    A push producer that records what its consumer asks of it.

    @ivar events: C{"paused"}, C{"resumed"} and C{"stopped"}, in order;
        several producers may share one list.
    """

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def pauseProducing(self) -> None:
        self.events.append("paused")

    def resumeProducing(self) -> None:
        self.events.append("resumed")

    def stopProducing(self) -> None:
        self.events.append("stopped")
