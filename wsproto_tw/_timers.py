# -*- test-case-name: tests.test_protocol.SharedTimerTests -*-
"""
One reactor timer shared by every WebSocket connection on a clock.
"""

from __future__ import annotations

import heapq
import weakref
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["SharedTimer", "sharedTimer"]

_log = Logger(namespace="wsproto_tw")


class _Entry:
    """
    A deadline waiting in a L{SharedTimer}'s heap, ordered by deadline
    alone: one small object per waiting connection (no sequence number).

    @ivar deadline: seconds, on the clock's own time scale.
    @ivar owner: what to call, or L{None} once cancelled or fired.
    """

    __slots__ = ("deadline", "owner")

    def __init__(self, deadline: float, owner: Any) -> None:
        self.deadline = deadline
        self.owner = owner

    def __lt__(self, other: _Entry) -> bool:
        return self.deadline < other.deadline


class SharedTimer:
    """
    One reactor timer for every connection on a clock. Each connection's
    next deadline waits in a heap and the clock holds one L{IDelayedCall},
    for the earliest: a connection that waits for its next keepalive ping
    costs a heap entry, not a delayed call of its own.

    An entry is an L{_Entry} (a deadline and an owner); cancelling it
    forgets the owner, and the entry leaves the heap when its time comes
    (or when cancelled entries pile up). Entries with the same deadline
    fire in no particular order. An owner is anything with a
    C{_timerFired()} method (a L{WebSocketConnection
    <wsproto_tw.connection.WebSocketConnection>}).
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._heap: list[_Entry] = []
        self._live = 0
        self._call: IDelayedCall | None = None
        self._callAt: float | None = None

    def schedule(self, deadline: float, owner: Any) -> _Entry:
        """
        Call C{owner._timerFired()} at C{deadline}.

        @param deadline: seconds, on the clock's own time scale.

        @return: the entry, for L{cancel}.
        """
        entry = _Entry(deadline, owner)
        heapq.heappush(self._heap, entry)
        self._live += 1
        if self._callAt is None or deadline < self._callAt:
            self._arm(deadline)
        return entry

    def cancel(self, entry: _Entry) -> None:
        """
        Forget an entry that has not fired.
        """
        if entry.owner is None:
            return
        entry.owner = None
        self._live -= 1
        if self._live == 0:
            # Nothing left to wait for: leave the clock empty.
            self._heap.clear()
            self._disarm()
        elif len(self._heap) > 64 and len(self._heap) > 2 * self._live:
            self._heap = [e for e in self._heap if e.owner is not None]
            heapq.heapify(self._heap)

    def _arm(self, deadline: float) -> None:
        self._disarm()
        self._callAt = deadline
        self._call = self._clock.callLater(max(0.0, deadline - self._clock.seconds()), self._fire)

    def _disarm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = self._callAt = None

    def _fire(self) -> None:
        self._call = self._callAt = None
        now = self._clock.seconds()
        heap = self._heap
        due = []
        while heap and heap[0].deadline <= now:
            due.append(heapq.heappop(heap))
        # What the owners schedule meanwhile waits for a later turn.
        for entry in due:
            owner = entry.owner
            if owner is not None:  # not cancelled by an earlier one
                entry.owner = None
                self._live -= 1
                try:
                    owner._timerFired()
                except Exception:
                    # As the reactor would for a delayed call of its own:
                    # log it, and go on with the others.
                    _log.failure("timer of {owner!r} failed", owner=owner)
        while heap and heap[0].owner is None:
            heapq.heappop(heap)
        if heap and (self._callAt is None or heap[0].deadline < self._callAt):
            self._arm(heap[0].deadline)


_sharedTimers: weakref.WeakKeyDictionary[Any, SharedTimer] = weakref.WeakKeyDictionary()


# The clock last asked for and its timer, both weak references (the timer
# holds its clock): every connection of a server asks for the same one.
_last: tuple[Any, Any] = (lambda: None, lambda: None)


def sharedTimer(clock: IReactorTime) -> SharedTimer:
    """
    @return: the L{SharedTimer} of C{clock}.
    """
    global _last
    lastClock, lastTimer = _last
    if lastClock() is clock:
        timer = lastTimer()
        if timer is not None:
            return timer  # type: ignore[no-any-return]
    timer = _sharedTimers.get(clock)
    if timer is None:
        timer = _sharedTimers[clock] = SharedTimer(clock)
    _last = (weakref.ref(clock), weakref.ref(timer))
    return timer
