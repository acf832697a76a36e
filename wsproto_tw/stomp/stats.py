# -*- test-case-name: tests.test_metrics -*-
"""
What the STOMP sessions of a server have carried, added up as each one
ends: the totals behind L{wsproto_tw.metrics}' STOMP families. A live
session counts in its own plain integers
(L{StompSession.frames_received <wsproto_tw.stomp.session.StompSession>},
C{messages_delivered}, C{errors_sent}); a scrape adds the live sessions to
these totals.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SessionTotals"]


class SessionTotals:
    """
    The counts of the sessions that ended.

    @ivar sessions: sessions ended.
    @ivar frames_received: frames the clients sent, by command (its name).
    @ivar messages_delivered: C{MESSAGE} frames queued for the clients.
    @ivar errors_sent: C{ERROR} frames queued for the clients.
    """

    def __init__(self) -> None:
        self.sessions = 0
        self.frames_received: dict[str, int] = {}
        self.messages_delivered = 0
        self.errors_sent = 0

    def add(self, session: Any) -> None:
        """
        Add one session's counts.

        @param session: a L{StompSession <wsproto_tw.stomp.session.StompSession>}.
        """
        self.sessions += 1
        frames = self.frames_received
        for command, n in session.frames_received.items():
            name = getattr(command, "value", command)
            frames[name] = frames.get(name, 0) + n
        self.messages_delivered += session.messages_delivered
        self.errors_sent += session.errors_sent

    def copy(self) -> SessionTotals:
        """
        @return: a new L{SessionTotals} with the same counts.
        """
        other = SessionTotals()
        other.sessions = self.sessions
        other.frames_received = dict(self.frames_received)
        other.messages_delivered = self.messages_delivered
        other.errors_sent = self.errors_sent
        return other
