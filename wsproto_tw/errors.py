# -*- test-case-name: tests.test_protocol -*-
"""
Every exception a user of wsproto_tw may catch, in one place.
"""

from __future__ import annotations

from wsproto_tw.core.errors import (
    ForbiddenOrigin,
    HandshakeFailed,
    HandshakeRejected,
    HandshakeTimeout,
    InvalidState,
    MessageTooBig,
    PeerViolation,
    WebSocketError,
)
from wsproto_tw.core.tunnel import ProxyAuthenticationFailed, ProxyError, ProxyRefused

__all__ = [
    "ConnectionClosed",
    "ForbiddenOrigin",
    "HandshakeFailed",
    "HandshakeRejected",
    "HandshakeTimeout",
    "InvalidState",
    "MessageTooBig",
    "PeerViolation",
    "ProxyAuthenticationFailed",
    "ProxyError",
    "ProxyRefused",
    "Reject",
    "WebSocketError",
]


class ConnectionClosed(WebSocketError):
    """
    The value of the L{twisted.python.failure.Failure} an application's
    C{connectionLost} receives.

    @ivar code: the close code: the peer's if it sent a Close frame, else
        ours, else 1006 (the connection dropped without a closing handshake).
    @ivar reason: the close reason that came with C{code}.
    @ivar wasClean: whether both Close frames were exchanged.
    """

    def __init__(self, code: int, reason: str = "", wasClean: bool = False) -> None:
        super().__init__(code, reason, wasClean)
        self.code = code
        self.reason = reason
        self.wasClean = wasClean

    def __str__(self) -> str:
        state = "clean" if self.wasClean else "not clean"
        return f"connection closed with code {self.code} ({state}){': ' + self.reason if self.reason else ''}"


class Reject(Exception):
    """
    Raised (or returned through a Deferred failure) by an application's
    C{requestReceived} to refuse the opening handshake.

    @ivar status: the HTTP status to answer with (4xx or 5xx).
    @ivar reason: a one-line reason, sent as the plain-text body.
    @ivar headers: extra response headers as (name, value) pairs.
    """

    def __init__(self, status: int = 403, reason: str = "forbidden", headers: tuple = ()) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = tuple(headers)
