# -*- test-case-name: tests.stomp.test_session -*-
"""
What a STOMP session reports to the layer above it.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsproto_tw.stomp.errors import StompError
from wsproto_tw.stomp.frames import Version

__all__ = ["ConnectRequested", "SessionFailed", "SessionEnded"]


@dataclass(frozen=True)
class ConnectRequested:
    """
    A valid C{CONNECT} (or C{STOMP}) frame arrived, with a version in
    common. The session waits for C{accept_connect} or C{reject_connect}.

    @ivar version: the negotiated L{Version}.
    @ivar login: the C{login} header, or L{None}.
    @ivar passcode: the C{passcode} header, or L{None}.
    @ivar host: the C{host} header, or L{None}.
    @ivar headers: every header of the frame.
    """

    version: Version
    login: str | None
    passcode: str | None
    host: str | None
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SessionFailed:
    """
    The session sent C{ERROR} and wants the connection closed.

    @ivar error: the L{StompError} that the C{ERROR} frame describes.
    """

    error: StompError


@dataclass(frozen=True)
class SessionEnded:
    """
    The client sent C{DISCONNECT}; the session wants the connection
    closed once its C{RECEIPT} (if asked for) is sent.
    """
