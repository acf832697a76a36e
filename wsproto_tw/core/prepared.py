# -*- test-case-name: tests.core.test_prepared -*-
"""
A message prepared once and sent on many connections (a broadcast): its
frame is built once and the same bytes are queued on every server
connection that can take them.

A server's frames are not masked (RFC 6455 §5.1), so one uncompressed
frame fits every server connection. A compressed frame fits every
connection that compresses each message on its own with the same
settings (C{server_no_context_takeover}, or C{context_size=0}): it is
built once per distinct setting. A connection whose messages refer to its
earlier ones (context takeover) compresses the message itself, and a
client, which masks every frame with a key of its own, builds its frame
itself.
"""

from __future__ import annotations

from typing import Any

from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.frames import build_frame

__all__ = ["PreparedMessage"]


class PreparedMessage:
    """
    One text or binary message, with its frames built on first use and
    kept. Pass it to L{Connection.send_prepared
    <wsproto_tw.core.connection.Connection.send_prepared>} on as many
    connections as it is for.

    @ivar message: the message as given, C{str} (text) or C{bytes}
        (binary).
    @ivar opcode: L{Opcode.TEXT} or L{Opcode.BINARY}.
    @ivar payload: the message's bytes (UTF-8 for text).
    """

    __slots__ = ("message", "opcode", "payload", "_frame", "_deflated")

    def __init__(self, message: str | bytes | bytearray | memoryview) -> None:
        """
        @param message: C{str} for a text message, bytes-like for binary.
        @raise TypeError: C{message} is neither.
        """
        if isinstance(message, str):
            self.opcode = Opcode.TEXT
            self.payload = message.encode("utf-8")
        elif isinstance(message, (bytes, bytearray, memoryview)):
            message = bytes(message)
            self.opcode = Opcode.BINARY
            self.payload = message
        else:
            raise TypeError(f"a message is str or bytes, not {type(message).__name__}")
        self.message = message
        self._frame: bytes | None = None
        self._deflated: dict[Any, tuple[bytes, int]] | None = None

    def __repr__(self) -> str:
        return f"<PreparedMessage {self.opcode.name} {len(self.payload)} bytes>"

    def frame(self) -> bytes:
        """
        @return: the message as one unmasked, uncompressed frame (RFC 6455
            §5.2), built on the first call.
        """
        frame = self._frame
        if frame is None:
            frame = self._frame = build_frame(self.opcode, self.payload)
        return frame

    def deflated_frame(self, codec: Any) -> tuple[bytes, int] | None:
        """
        The message as one unmasked frame compressed by C{codec} (RFC 7692
        §7.2.1), shared with every codec of the same settings: built by the
        first of them.

        @param codec: the connection's L{DeflateCodec
            <wsproto_tw.core.deflate.DeflateCodec>}.
        @return: the frame and the size of its compressed payload (C{-1}
            when the frame went out uncompressed, under the codec's
            C{min_size}), or L{None} when C{codec}'s output depends on what
            it sent before: the connection must compress the message
            itself.
        """
        key = codec._params.shared_key  # not the property: no call per send
        if key is None:
            return None
        deflated = self._deflated
        if deflated is None:
            deflated = self._deflated = {}
        cached = deflated.get(key)
        if cached is None:
            # A codec with a shared key keeps nothing between messages:
            # compressing here leaves it as it was.
            body, rsv1 = codec.compress(self.payload)
            if rsv1:
                cached = (build_frame(self.opcode, body, True, True), len(body))
            else:
                cached = (self.frame(), -1)
            deflated[key] = cached
        return cached
