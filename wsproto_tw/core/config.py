# -*- test-case-name: tests.core.test_config -*-
"""
One frozen configuration, validated once and shared by every connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsproto_tw.core.deflate import PerMessageDeflate

MiB = 1 << 20


@dataclass(frozen=True)
class Config:
    """
    Limits, timeouts and negotiation policy of a connection. Every limit is on
    by default; C{0} or L{None} turns one off, and only by explicit choice.

    @ivar max_message_size: largest message in bytes, after decompression.
    @ivar max_frame_size: largest frame payload in bytes; L{None} means
        C{max_message_size}.
    @ivar max_fragments: most frames in one message.
    @ivar max_head_size: largest opening-handshake head in bytes.
    @ivar max_headers: most header lines in the opening-handshake head.
    @ivar open_timeout: seconds for the whole opening handshake.
    @ivar close_timeout: seconds to wait for the peer's Close after ours, and
        (client) for the server to close TCP after the closing handshake.
    @ivar ping_interval: seconds between keepalive pings; L{None} disables.
    @ivar ping_timeout: seconds to wait for the keepalive pong; L{None} waits
        forever.
    @ivar idle_timeout: close after this many seconds without receiving any
        byte; L{None} disables.
    @ivar subprotocols: server: the subprotocols spoken, in order of
        preference; client: the subprotocols offered.
    @ivar require_subprotocol: server: answer C{400} when the client offers
        none of C{subprotocols}.
    @ivar allowed_origins: server: the C{Origin} values allowed (compared
        case-insensitively), or L{None} for any.
    @ivar compression: the permessage-deflate policy, or L{None} for none.
    @ivar max_write_buffer: bytes that may be queued for a peer that does not
        read, beyond the transport's own buffer; past it the connection is
        failed with 1008 and dropped.
    @ivar write_buffer_timeout: seconds the transport's write buffer may stay
        full before the connection is failed with 1008 and dropped; L{None}
        waits forever.
    @ivar max_pending_messages: messages whose handler's Deferred has not
        fired yet before the connection stops reading (resumes at half).
    @ivar max_pending_bytes: the same limit in message bytes.
    @ivar max_connections: server: connections at once; past it, handshakes
        are answered C{503}. L{None} for no limit.
    """

    max_message_size: int = MiB
    max_frame_size: int | None = None
    max_fragments: int = 100_000
    max_head_size: int = 16 * 1024
    max_headers: int = 100
    open_timeout: float | None = 10.0
    close_timeout: float = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    idle_timeout: float | None = None
    subprotocols: tuple[str, ...] = ()
    require_subprotocol: bool = False
    allowed_origins: frozenset[str] | None = None
    compression: PerMessageDeflate | None = None
    max_write_buffer: int = 4 * MiB
    write_buffer_timeout: float | None = 30.0
    max_pending_messages: int = 64
    max_pending_bytes: int = 4 * MiB
    max_connections: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_message_size", "max_fragments", "max_head_size", "max_headers",
            "max_write_buffer", "max_pending_messages", "max_pending_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        if self.max_frame_size is not None and self.max_frame_size < 0:
            raise ValueError(f"max_frame_size must be non-negative, not {self.max_frame_size!r}")
        for name in ("open_timeout", "ping_interval", "ping_timeout", "idle_timeout", "write_buffer_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, not {value!r}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"max_connections must be positive or None, not {self.max_connections!r}")
        if self.close_timeout <= 0:
            raise ValueError(f"close_timeout must be positive, not {self.close_timeout!r}")
        if isinstance(self.subprotocols, str):
            raise TypeError("subprotocols must be a sequence of names, not a str")
        object.__setattr__(self, "subprotocols", tuple(self.subprotocols))
        if self.allowed_origins is not None:
            if isinstance(self.allowed_origins, str):
                raise TypeError("allowed_origins must be a collection of origins, not a str")
            object.__setattr__(
                self, "allowed_origins", frozenset(o.strip().lower() for o in self.allowed_origins)
            )
        if self.require_subprotocol and not self.subprotocols:
            raise ValueError("require_subprotocol needs at least one subprotocol")

    @cached_property
    def frame_limit(self) -> int:
        """
        The effective frame size limit (C{0} for none): worked out on the
        first read, kept in the instance's dict from then on (every
        connection reads it; the fields it comes from never change).
        """
        return self.max_message_size if self.max_frame_size is None else self.max_frame_size
