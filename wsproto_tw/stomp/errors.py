# -*- test-case-name: tests.stomp.test_frames -*-
"""
Exceptions of the sans-I/O STOMP layer. Each carries what the C{ERROR}
frame that answers it says: the C{message} header, and a longer
description for the body.
"""

from __future__ import annotations


class StompError(Exception):
    """
    Base class of every STOMP error. A session answers any of them with an
    C{ERROR} frame and then closes the connection (STOMP 1.2, "ERROR").

    @ivar message: the C{ERROR} frame's C{message} header: a short, lower
        case description of what was wrong with the input.
    @ivar detail: the C{ERROR} frame's body, or C{""}.
    @ivar headers: extra headers of the C{ERROR} frame, as (name, value)
        pairs (for example C{version} when no version is in common).
    """

    def __init__(self, message: str, detail: str = "", headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.headers = tuple(headers)


class FrameError(StompError):
    """
    The peer sent bytes that are not a STOMP frame of the session's version:
    a bad header line, an undefined escape sequence, a bad C{content-length},
    text that is not UTF-8.
    """


class LimitExceeded(FrameError):
    """
    A frame breaks one of the configured limits: its size, its number of
    headers or the length of one header line.
    """


class ProtocolError(StompError):
    """
    A well-formed frame that the session can't accept in its state: an
    unknown command, a missing required header, a frame before C{CONNECT},
    an unknown transaction or subscription.
    """


class VersionMismatch(ProtocolError):
    """
    The client's C{accept-version} has no version in common with ours.
    """


class AuthenticationFailed(StompError):
    """
    The C{login}/C{passcode} of C{CONNECT} were refused.
    """


class DestinationError(StompError):
    """
    A destination that is not known, not allowed, or full.
    """


class SlowConsumer(StompError):
    """
    A subscriber did not take its messages: more of them piled up for it
    than the broker holds for one subscription.
    """
