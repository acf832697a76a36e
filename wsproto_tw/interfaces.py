# -*- test-case-name: tests.test_protocol -*-
"""
The contracts between wsproto_tw and applications.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IWebSocketTransport(Interface):
    """
    An open WebSocket connection, as an application sees it. Sends never
    block: they queue bytes on the TCP transport.
    """

    request = Attribute("The wsproto_tw.core.HandshakeRequest (server), or None (client).")
    response = Attribute("The wsproto_tw.core.HandshakeResponse (client), or None (server).")
    subprotocol = Attribute("The negotiated subprotocol, or None.")
    extensions = Attribute("The negotiated Sec-WebSocket-Extensions value, or None.")
    roundTripTime = Attribute("The last keepalive round-trip time in seconds, or None.")

    def sendText(text: str) -> None:
        """
        Send a text message. After the closing handshake has started, the
        message is dropped.

        @raise TypeError: C{text} is not a str.
        """

    def sendBinary(data: bytes) -> None:
        """
        Send a binary message.

        @raise TypeError: C{data} is not bytes-like.
        """

    def ping(payload: bytes = b"") -> None:
        """
        Send a ping; the peer's pong reaches C{pongReceived}.
        """

    def close(code: int = 1000, reason: str = "") -> None:
        """
        Start the closing handshake. C{connectionLost} follows once it
        completes, or after the close timeout.

        @raise ValueError: C{code} can't be sent (1005, 1006, 1015, ...).
        """

    def abortConnection() -> None:
        """
        Drop the TCP connection at once, without a closing handshake.
        """

    def getPeer():
        """
        @return: the peer's L{twisted.internet.interfaces.IAddress}.
        """

    def getHost():
        """
        @return: our L{twisted.internet.interfaces.IAddress}.
        """


class IWebSocketApplication(Interface):
    """
    One WebSocket connection's application logic. Subclass
    L{wsproto_tw.server.WebSocketApplication} to get a no-op for every
    method.
    """

    transport = Attribute("The IWebSocketTransport, set before connectionOpened.")

    def requestReceived(request):
        """
        Server only: the client's opening request arrived and is valid. Called
        before the handshake is answered.

        @param request: the L{wsproto_tw.core.HandshakeRequest}; its C{peer}
            is the client's address.
        @return: L{None} to accept with the configured subprotocol, an
            L{wsproto_tw.server.Accept} to choose the subprotocol or add
            response headers, or a Deferred firing with either.
        @raise wsproto_tw.errors.Reject: to refuse with an HTTP status.
        """

    def connectionOpened(transport):
        """
        The opening handshake succeeded.

        @param transport: the L{IWebSocketTransport}.
        """

    def textMessageReceived(text: str):
        """
        A whole text message arrived.

        @return: L{None}, or a Deferred: until it fires, the connection
            counts the message as pending (see flow control in README).
        """

    def binaryMessageReceived(data: bytes):
        """
        A whole binary message arrived.

        @return: L{None}, or a Deferred, as for L{textMessageReceived}.
        """

    def pingReceived(payload: bytes) -> None:
        """
        A ping arrived; the pong has already been sent.
        """

    def pongReceived(payload: bytes) -> None:
        """
        A pong arrived.
        """

    def connectionLost(reason) -> None:
        """
        The connection is closed. Called exactly once, and only after
        C{connectionOpened}.

        @param reason: a L{twisted.python.failure.Failure} whose value is a
            L{wsproto_tw.errors.ConnectionClosed}.
        """
