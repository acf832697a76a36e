# -*- test-case-name: tests.core.test_keepalive -*-
"""
Keepalive: the pings a connection sends on its own, the deadline for their
pong, and the idle timeout. Every time here is a deadline in seconds on the
caller's clock, as passed to the connection's C{now} arguments; nothing here
reads a clock or sends a frame. The connection asks what fell due and acts.
"""

from __future__ import annotations

import struct

from wsproto_tw.core.config import Config

__all__ = ["Keepalive"]

_pack_count = struct.Struct("!H").pack


class Keepalive:
    """
    The keepalive deadlines of one connection (RFC 6455 §5.5.2, §5.5.3:
    a ping, answered by a pong, measures the round trip and shows the peer
    is alive).

    The connections are keepalives themselves (a base class: its state is
    in the connection's own slots, not in an object of its own, and its
    names say keepalive, not to clash with the connection's). It also
    stands alone.

    The deadlines are public for the connection's hot path to read and to
    push back without a call; everything else goes through the methods.

    @ivar ping_at: when the next keepalive ping is due, or L{None}.
    @ivar pong_by: when the pong for the ping sent is due, or L{None}.
    @ivar idle_by: when the connection has been idle too long, or L{None};
        moved on by every byte received.
    @ivar keepalive_paused: whether the caller stopped reading (see
        L{pause_keepalive}): no deadline is enforced meanwhile.
    """

    __slots__ = ("ping_at", "pong_by", "idle_by", "keepalive_paused", "_config", "_ping_sent", "_ping_count")

    def __init__(self, config: Config) -> None:
        self._config = config
        self.ping_at: float | None = None
        self.pong_by: float | None = None
        self.idle_by: float | None = None
        self.keepalive_paused = False
        # The keepalive ping awaiting its pong: (payload, when it was sent).
        self._ping_sent: tuple[bytes, float] | None = None
        self._ping_count = 0

    def start_keepalive(self, now: float) -> None:
        """
        The connection opened: arm the first ping and the idle timeout.

        @param now: the current time in seconds, on the caller's clock.
        """
        config = self._config
        if config.ping_interval is not None:
            self.ping_at = now + config.ping_interval
        if config.idle_timeout is not None:
            self.idle_by = now + config.idle_timeout

    def stop_keepalive(self) -> None:
        """
        The closing handshake started, or the connection closed: no more
        pings, and no pong or idle deadline; a pong still to come measures
        nothing.
        """
        self.ping_at = self.pong_by = self.idle_by = None
        self._ping_sent = None

    def keepalive_deadline(self) -> float | None:
        """
        @return: the earliest keepalive deadline, or L{None} if there is none
            or keepalive is paused.
        """
        if self.keepalive_paused:
            return None
        deadline = self.ping_at
        pong_by = self.pong_by
        if pong_by is not None and (deadline is None or pong_by < deadline):
            deadline = pong_by
        idle_by = self.idle_by
        if idle_by is not None and (deadline is None or idle_by < deadline):
            deadline = idle_by
        return deadline

    def pong_overdue(self, now: float) -> bool:
        """
        @param now: the current time in seconds, on the caller's clock.
        @return: whether the pong for our ping is late (the connection is to
            be failed).
        """
        return not self.keepalive_paused and self.pong_by is not None and now >= self.pong_by

    def idle_expired(self, now: float) -> bool:
        """
        @param now: the current time in seconds, on the caller's clock.
        @return: whether nothing was received for C{idle_timeout} seconds
            (the connection is to be closed). The idle timeout is then off.
        """
        if self.keepalive_paused or self.idle_by is None or now < self.idle_by:
            return False
        self.idle_by = None
        return True

    def ping_due(self, now: float) -> bytes | None:
        """
        Take the keepalive ping that is due, if one is, and arm what follows
        it: the pong deadline, or (without C{ping_timeout}) the next ping.

        @param now: the current time in seconds, on the caller's clock.
        @return: the payload of the ping to send, or L{None}.
        """
        if self.keepalive_paused or self.ping_at is None or now < self.ping_at:
            return None
        self._ping_count += 1
        payload = _pack_count(self._ping_count & 0xFFFF)
        self._ping_sent = (payload, now)
        config = self._config
        if config.ping_timeout is not None:
            # The next ping follows the pong.
            self.ping_at = None
            self.pong_by = now + config.ping_timeout
        else:
            # No pong deadline: keep pinging, answered or not.
            self.ping_at = now + config.ping_interval
        return payload

    def pong_received(self, payload: bytes, now: float) -> float | None:
        """
        A pong arrived. If it answers our keepalive ping, clear the pong
        deadline and arm the next ping.

        @param now: the current time in seconds, on the caller's clock.
        @return: the round-trip time in seconds if the pong answers our
            ping, else L{None} (an unsolicited pong, or one for a ping the
            application sent).
        """
        sent = self._ping_sent
        if sent is None or payload != sent[0]:
            return None
        self._ping_sent = None
        self.pong_by = None
        interval = self._config.ping_interval
        if interval is not None:
            self.ping_at = now + interval
        return now - sent[1]

    def pause_keepalive(self) -> None:
        """
        The caller stopped reading: a pong may be waiting unread, and so may
        any other byte. Enforce no deadline until L{resume_keepalive}.
        """
        self.keepalive_paused = True

    def resume_keepalive(self, *, now: float) -> bool:
        """
        The caller reads again. An unanswered ping gets a full
        C{ping_timeout} from C{now}, and the idle timeout starts over; a
        ping that fell due meanwhile is due at once.

        @param now: the current time in seconds, on the caller's clock.
        @return: whether keepalive was paused.
        """
        if not self.keepalive_paused:
            return False
        self.keepalive_paused = False
        config = self._config
        if self.pong_by is not None and config.ping_timeout is not None:
            self.pong_by = now + config.ping_timeout
        if self.idle_by is not None and config.idle_timeout is not None:
            self.idle_by = now + config.idle_timeout
        return True
