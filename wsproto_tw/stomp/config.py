# -*- test-case-name: tests.stomp.test_session -*-
"""
The STOMP session's configuration, and the WebSocket subprotocol rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import wsproto_tw
from wsproto_tw.stomp.frames import Version

__all__ = ["StompConfig", "choose_subprotocol"]

FIRST = "first"
HIGHEST = "highest"


@dataclass(frozen=True)
class StompConfig:
    """
    Limits and policy of every STOMP session of a server. Every limit is on
    by default.

    @ivar versions: the versions spoken.
    @ivar heart_beat: (cx, cy) in milliseconds as C{CONNECTED} announces
        them (STOMP 1.2, "Heart-beating"): the smallest interval at which
        we send heart-beats, and the interval at which we want to receive
        them; C{0} for none.
    @ivar heart_beat_grace: the client is given this many times the
        negotiated interval before its silence fails the session.
    @ivar connect_timeout: seconds from the start of a session for its
        C{CONNECT} to arrive and be accepted; L{None} for no limit.
    @ivar frame_timeout: seconds a received frame may take from its first
        octet to its last (so that a client can't hold a session open with
        a frame that never ends, heart-beats or not); L{None} for no limit.
    @ivar max_frame_size: largest frame received, in octets.
    @ivar max_headers: most header lines in a received frame.
    @ivar max_header_line: longest received header line, in octets.
    @ivar max_subscriptions: most subscriptions of one session.
    @ivar max_transactions: most open transactions of one session.
    @ivar max_transaction_frames: most frames buffered in one transaction.
    @ivar max_transaction_bytes: most octets (bodies and headers) buffered
        in all open transactions of one session, 16 MiB by default.
    @ivar app_prefix: destinations starting with this go to the
        application's handlers instead of the broker; L{None} for none.
    @ivar subprotocol_rule: C{"first"}: answer the first STOMP subprotocol
        the client offered that we speak; C{"highest"}: the highest.
    @ivar server: the C{server} header of C{CONNECTED}.
    """

    versions: tuple[Version, ...] = (Version.V1_0, Version.V1_1, Version.V1_2)
    heart_beat: tuple[int, int] = (10000, 10000)
    heart_beat_grace: float = 2.0
    connect_timeout: float | None = 30.0
    frame_timeout: float | None = 30.0
    max_frame_size: int = 1 << 20
    max_headers: int = 100
    max_header_line: int = 8192
    max_subscriptions: int = 100
    max_transactions: int = 10
    max_transaction_frames: int = 1000
    max_transaction_bytes: int = 16 * 1024 * 1024
    app_prefix: str | None = "/app"
    subprotocol_rule: str = FIRST
    server: str = "wsproto_tw/" + wsproto_tw.__version__

    def __post_init__(self) -> None:
        versions = tuple(Version(v) for v in self.versions)
        if not versions:
            raise ValueError("versions must name at least one version")
        object.__setattr__(self, "versions", tuple(sorted(set(versions), key=lambda v: v.value)))
        if len(self.heart_beat) != 2 or any(not isinstance(v, int) or v < 0 for v in self.heart_beat):
            raise ValueError("heart_beat must be two non-negative integers of milliseconds")
        object.__setattr__(self, "heart_beat", tuple(self.heart_beat))
        if self.connect_timeout is not None and not self.connect_timeout > 0:
            raise ValueError("connect_timeout must be positive, or None")
        if self.frame_timeout is not None and not self.frame_timeout > 0:
            raise ValueError("frame_timeout must be positive, or None")
        if self.heart_beat_grace < 1:
            raise ValueError("heart_beat_grace must be at least 1")
        for name in ("max_frame_size", "max_headers", "max_header_line", "max_subscriptions",
                     "max_transactions", "max_transaction_frames", "max_transaction_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.subprotocol_rule not in (FIRST, HIGHEST):
            raise ValueError("subprotocol_rule must be 'first' or 'highest'")
        if self.app_prefix is not None and not self.app_prefix.startswith("/"):
            raise ValueError("app_prefix must start with /")


def choose_subprotocol(offered: Sequence[str], config: StompConfig) -> str | None:
    """
    The WebSocket subprotocol to answer: of the C{vNN.stomp} names the
    client offered that we speak, the first it offered or (by
    C{config.subprotocol_rule}) the highest.

    @param offered: the client's C{Sec-WebSocket-Protocol} names in order.
    @return: the subprotocol name, or L{None} when none is in common.
    """
    spoken = [name for name in offered if Version.from_subprotocol(name) in config.versions]
    if not spoken:
        return None
    if config.subprotocol_rule == HIGHEST:
        return max(spoken)
    return spoken[0]
