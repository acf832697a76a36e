# -*- test-case-name: tests.core.test_connection -*-
"""
Exceptions of the sans-I/O core. Each carries its meaning on the wire: a
close code for peer violations, an HTTP status for handshake failures.
"""

from __future__ import annotations

from wsproto_tw.core.codes import CloseCode


class WebSocketError(Exception):
    """
    Base class of every wsproto_tw exception.
    """


class PeerViolation(WebSocketError):
    """
    The peer broke RFC 6455 (or RFC 7692); never escapes C{receive_data()}.

    @cvar close_code: the close code that fails the connection.
    """

    close_code: CloseCode = CloseCode.PROTOCOL_ERROR


class InvalidText(PeerViolation):
    """
    A text message or close reason is not valid UTF-8 (RFC 6455 §8.1).
    """

    close_code = CloseCode.INVALID_PAYLOAD


class MessageTooBig(PeerViolation):
    """
    A frame or message exceeds the configured limit.
    """

    close_code = CloseCode.MESSAGE_TOO_BIG


class PolicyViolation(PeerViolation):
    """
    The peer broke a local policy (for example a fragment flood).
    """

    close_code = CloseCode.POLICY_VIOLATION


class InvalidCompressedData(PeerViolation):
    """
    A permessage-deflate payload could not be inflated (RFC 7692 §6.2).
    """

    close_code = CloseCode.INVALID_PAYLOAD


class HandshakeFailed(WebSocketError):
    """
    The opening handshake can't succeed.

    @ivar reason: one line saying what was wrong, in lower case.
    @ivar status: the HTTP status the server answers with.
    @ivar headers: extra response headers, as (name, value) pairs of str.
    """

    status: int = 400

    def __init__(
        self, reason: str, status: int | None = None, headers: tuple = ()
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        self.headers = tuple(headers)


class MethodNotAllowed(HandshakeFailed):
    """
    The request's method is not GET.
    """

    status = 405

    def __init__(self, reason: str) -> None:
        super().__init__(reason, headers=(("Allow", "GET"),))


class UpgradeRequired(HandshakeFailed):
    """
    The request is not a WebSocket upgrade, or asks for another version.
    """

    status = 426

    def __init__(self, reason: str) -> None:
        super().__init__(
            reason,
            headers=(("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")),
        )


class ForbiddenOrigin(HandshakeFailed):
    """
    The request's C{Origin} is not on the configured allow-list.
    """

    status = 403


class HeadTooLarge(HandshakeFailed):
    """
    The request head is over the configured size or header count.
    """

    status = 431


class TLSOnPlainTextPort(HandshakeFailed):
    """
    A TLS handshake arrived where a plain-text HTTP request was expected:
    the client meant C{wss://}, or a port with TLS. It is answered at once,
    in plain text, and the connection closes.
    """

    status = 400


class PlainTextOnTLSPort(HandshakeFailed):
    """
    A plain-text HTTP request arrived where a TLS handshake was expected:
    the client meant C{ws://}, or a port without TLS. It is answered at
    once, in plain text, and the connection closes.
    """

    status = 400


class HandshakeRejected(WebSocketError):
    """
    The server answered the client's opening handshake with something other
    than a valid C{101}.

    @ivar status: the HTTP status code, or C{0} if the answer was not HTTP.
    @ivar headers: the response headers, a list of (name, value) str pairs.
    @ivar body: the first bytes of the response body (bounded).
    @ivar reason: what was wrong, in lower case.
    """

    def __init__(
        self, reason: str, status: int = 0, headers: list | tuple = (), body: bytes = b""
    ) -> None:
        super().__init__(f"{status} {reason}" if status else reason)
        self.reason = reason
        self.status = status
        self.headers = list(headers)
        self.body = body


class NotWebSocketServer(HandshakeRejected):
    """
    The server's answer can never begin an HTTP response: the port speaks
    another protocol (TLS to a C{ws://} URL, SSH, ...). Raised from its first
    bytes, without waiting for a head that will never end.
    """


class InvalidState(WebSocketError):
    """
    A command was given in a state that does not allow it (caller misuse).
    """


class HandshakeTimeout(WebSocketError):
    """
    The opening handshake did not complete before its deadline.
    """
