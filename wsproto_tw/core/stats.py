# -*- test-case-name: tests.core.test_stats -*-
"""
What one connection has carried, counted in plain integers as it goes: the
figures behind per-connection statistics and behind L{wsproto_tw.metrics},
which adds them up only when it is asked (a scrape) or when the connection
is gone.

Counting costs a few integer additions per message and per read or write,
and nothing else: no clock, no lock, no allocation.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import attrgetter
from typing import Any, NamedTuple

__all__ = ["CloseRecord", "ConnectionStatistics", "RTT_BUCKETS", "Statistics"]

#: The upper bounds, in seconds, of the buckets that keepalive round-trip
#: times are counted in (the last bucket, past them, is unbounded).
RTT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CloseRecord(NamedTuple):
    """
    How a connection's closing handshake went, as close codes.

    @ivar sent: the code of the Close frame we sent (C{1005} for one
        without a code), or L{None} if we sent none.
    @ivar received: the code of the peer's Close frame (C{1005} for one
        without a code), or L{None} if none arrived.
    @ivar failed: the code the connection was failed with (RFC 6455
        section 7.1.7: by us, for a peer's violation or a local reason), or
        L{None} if it was not failed.
    """

    sent: int | None
    received: int | None
    failed: int | None


class Statistics:
    """
    The counts of one connection. The core counts messages, their payload
    and the bytes on the wire, and records the opening handshake's HTTP
    status and keepalive round-trip times; the caller (the Twisted layer)
    counts what only it sees: read pauses and slow-consumer drops.

    Payload bytes are counted after decompression on the way in and before
    compression on the way out; text is counted in UTF-8 bytes. Wire bytes
    are everything received and sent, heads and frame headers included.

    @ivar bytes_received: bytes received from the transport.
    @ivar bytes_sent: bytes handed to the transport to send.
    @ivar text_received: text messages received.
    @ivar text_bytes_received: their payload, in bytes.
    @ivar binary_received: binary messages received.
    @ivar binary_bytes_received: their payload, in bytes.
    @ivar text_sent: text messages sent.
    @ivar text_bytes_sent: their payload, in bytes.
    @ivar binary_sent: binary messages sent.
    @ivar binary_bytes_sent: their payload, in bytes.
    @ivar deflate_bytes_in: payload bytes of the messages sent compressed
        (RFC 7692), before compression.
    @ivar deflate_bytes_out: the same messages' payload bytes, compressed.
    @ivar handshake_status: on the server, the HTTP status the opening
        handshake was answered with (C{101}, C{200} over an HTTP/2 stream,
        or an error status), or L{None} while it is unanswered; always
        L{None} on the client.
    @ivar rtt_counts: L{None} until a keepalive round trip is measured;
        then the number of round trips in each bucket of L{RTT_BUCKETS}
        (one more, last, for the longer ones).
    @ivar rtt_sum: the sum of the measured round-trip times, in seconds.
    @ivar read_pauses: L{None}, or how many times reading stopped, by the
        reason's name (C{"WRITES"}: the peer does not read what we write;
        C{"BACKLOG"}: the application is behind; ...), as the caller names
        them.
    @ivar slow_consumer_drops: 0, or 1 once the caller dropped the
        connection because the peer did not read what was written to it.
    """

    __slots__ = (
        "bytes_received", "bytes_sent",
        "text_received", "text_bytes_received", "binary_received", "binary_bytes_received",
        "text_sent", "text_bytes_sent", "binary_sent", "binary_bytes_sent",
        "deflate_bytes_in", "deflate_bytes_out",
        "handshake_status", "rtt_counts", "rtt_sum", "read_pauses", "slow_consumer_drops",
    )

    def __init__(self) -> None:
        self.bytes_received = self.bytes_sent = 0
        self.text_received = self.text_bytes_received = 0
        self.binary_received = self.binary_bytes_received = 0
        self.text_sent = self.text_bytes_sent = 0
        self.binary_sent = self.binary_bytes_sent = 0
        self.deflate_bytes_in = self.deflate_bytes_out = 0
        self.handshake_status: int | None = None
        self.rtt_counts: list[int] | None = None
        self.rtt_sum = 0.0
        self.read_pauses: dict[str, int] | None = None
        self.slow_consumer_drops = 0

    def __repr__(self) -> str:
        return (
            f"<Statistics in={self.text_received}+{self.binary_received} msgs/{self.bytes_received} B"
            f" out={self.text_sent}+{self.binary_sent} msgs/{self.bytes_sent} B>"
        )

    def round_trip(self, seconds: float) -> None:
        """
        Count one keepalive round trip.

        @param seconds: its time, in seconds.
        """
        counts = self.rtt_counts
        if counts is None:
            counts = self.rtt_counts = [0] * (len(RTT_BUCKETS) + 1)
        counts[bisect_left(RTT_BUCKETS, seconds)] += 1
        self.rtt_sum += seconds

    def read_paused(self, reason: str) -> None:
        """
        Count one stop of reading.

        @param reason: why, as a short upper-case name (C{"WRITES"}).
        """
        pauses = self.read_pauses
        if pauses is None:
            pauses = self.read_pauses = {}
        pauses[reason] = pauses.get(reason, 0) + 1


class ConnectionStatistics(Statistics):
    """
    The L{Statistics} of a core connection, read from and written to the
    connection's own slots (each counter C{name} is the connection's
    C{_name}): a connection keeps its counts as plain attributes, with no
    object of their own, and makes one of these, a view, each time its
    C{stats} is read.
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: Any) -> None:
        """
        @param connection: the core connection whose counts these are.
        """
        self._connection = connection


def _forward(name: str) -> property:
    getter = attrgetter(f"_connection._{name}")

    def set(self: ConnectionStatistics, value: Any) -> None:
        setattr(self._connection, f"_{name}", value)

    return property(getter, set)


for _name in Statistics.__slots__:
    setattr(ConnectionStatistics, _name, _forward(_name))
del _name
