# -*- test-case-name: tests.test_protocol -*-
"""
The contracts of wsproto_tw: between applications and connections
(L{IWebSocketApplication}, L{IWebSocketTransport}), and between a
connection and the wire that carries its bytes (L{IWire},
L{IWireReceiver}). See C{docs/architecture.rst}.
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
    openedAt = Attribute(
        "When the connection opened, in seconds on the reactor's clock (IReactorTime.seconds), or None until then."
    )
    lastActivity = Attribute(
        "When something last arrived from the peer (bytes on a WebSocket, a message on SockJS), in seconds on"
        " the reactor's clock, or None before anything arrived. Updated once per read, not per message."
    )

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

    def beginMessage(binary: bool = False) -> None:
        """
        Start a message sent in pieces, without building it whole in
        memory (RFC 6455 §5.4): each L{sendMessageData} sends one frame
        (the first with the text or binary opcode, the next ones
        continuation frames), and L{endMessage} sends the last one, with
        FIN. Until L{endMessage}, L{sendText} and L{sendBinary} raise;
        L{ping} and L{close} may be called between the pieces.

        With permessage-deflate, the message is compressed as one stream
        over its frames (RFC 7692 §7.2.1, RSV1 on the first frame only),
        each piece flushed as it is sent. Once the closing handshake has
        started, its frames are dropped, as messages are.

        Over SockJS, which has no frames, a text message's pieces are
        buffered and sent as one message by L{endMessage}; a binary
        message raises L{TypeError}.

        @param binary: C{True} for a binary message (pieces are C{bytes}),
            C{False} for text (pieces are C{str}).
        @raise wsproto_tw.errors.InvalidState: a message is already being
            sent in pieces.
        """

    def sendMessageData(data) -> None:
        """
        Send the next piece of the message begun by L{beginMessage}, as one
        frame. An empty piece sends nothing.

        @param data: C{str} for a text message, C{bytes} for a binary one.
        @raise wsproto_tw.errors.InvalidState: no message was begun.
        @raise TypeError: C{data} is not of the message's type.
        """

    def endMessage(data=None) -> None:
        """
        Finish the message begun by L{beginMessage}: send C{data} (or
        nothing) as its last frame, with FIN.

        @param data: the last piece, as for L{sendMessageData}, or L{None}.
        @raise wsproto_tw.errors.InvalidState: no message was begun.
        @raise TypeError: C{data} is not of the message's type.
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
        Drop the connection at once, without a closing handshake.
        """

    def goAway(code: int = 1001, reason: str = "going away") -> None:
        """
        Close for a shutdown: an open connection starts the closing
        handshake with C{code} (1001 Going Away by default); one that is
        still opening is dropped.
        """

    def getPeer():
        """
        @return: the peer's L{twisted.internet.interfaces.IAddress}.
        """

    def getHost():
        """
        @return: our L{twisted.internet.interfaces.IAddress}.
        """

    def pauseReading() -> None:
        """
        Stop delivering messages, and stop reading from the peer, until
        L{resumeReading}. While paused, keepalive sends no ping and neither
        the pong deadline nor the idle timeout counts.
        """

    def resumeReading() -> None:
        """
        Undo L{pauseReading}: deliver what arrived meanwhile, read again.
        """

    def whenDrained():
        """
        @return: a L{twisted.internet.defer.Deferred} that fires with
            L{None} once the outgoing buffer is not full (at once if it
            isn't), or fails with L{wsproto_tw.errors.ConnectionClosed} if
            the connection is lost first.
        """

    def registerProducer(producer, streaming: bool) -> None:
        """
        C{IConsumer}: stream a producer into the connection; each C{write}
        is one binary message. A push producer (C{streaming=True}) is
        paused while the outgoing buffer is full; a pull producer is asked
        for data once per reactor turn while it is not. Told
        C{stopProducing} when the connection is lost.

        @raise RuntimeError: a producer is already registered.
        """

    def unregisterProducer() -> None:
        """
        C{IConsumer}: forget the registered producer.
        """

    def write(data: bytes) -> None:
        """
        C{IConsumer}: send C{data} as one binary message.
        """

    def writeSequence(data) -> None:
        """
        C{IConsumer}: send the joined C{data} as one binary message.
        """


class IWire(Interface):
    """
    What carries one WebSocket connection's bytes, below the seam: a TCP or
    TLS connection after an HTTP/1.1 upgrade, a C{twisted.web} channel
    taken over, an HTTP/2 stream (RFC 8441). A wire moves bytes; it parses
    nothing. It reports to its L{IWireReceiver}.

    A wire may also have C{readsWhileWritesWait = True}: its receiver then
    keeps reading while its writes are paused, instead of pausing reading
    until the peer reads (an HTTP/2 client's stream, L{H2StreamWire
    <wsproto_tw.http2.H2StreamWire>}, whose reads open the window the
    server's writes, and so its reads, wait for).
    """

    transport = Attribute(
        "The Twisted transport under the wire (for TLS details such as"
        " negotiatedProtocol or getPeerCertificate), or None if it has none."
    )

    def write(data: bytes) -> None:
        """
        Queue C{data} for the peer. Never blocks.
        """

    def loseConnection() -> None:
        """
        Close once what was written has been sent. When nothing is left to
        send, the receiver's C{wireLost} may come before this returns.
        """

    def abortConnection() -> None:
        """
        Close at once, dropping what was not sent.
        """

    def pauseReading() -> None:
        """
        Stop delivering received bytes (the peer feels backpressure).
        """

    def resumeReading() -> None:
        """
        Deliver received bytes again.
        """

    def getPeer():
        """
        @return: the peer's L{twisted.internet.interfaces.IAddress}.
        """

    def getHost():
        """
        @return: our L{twisted.internet.interfaces.IAddress}.
        """


class IWireReceiver(Interface):
    """
    What a wire reports to, above the seam: a L{WebSocketConnection
    <wsproto_tw.connection.WebSocketConnection>}. A wire calls
    L{wireConnected} once, then any of the others (L{readLost} at most
    once), and L{wireLost} once.

    A receiver may also offer C{receiveBuffer(minimum, maximum)} and
    C{bytesReceivedInto(n)} (L{WebSocketConnection
    <wsproto_tw.connection.WebSocketConnection>} does): a wire that can
    receive into memory (C{recv_into}) then writes a large payload
    straight where it belongs, in place of L{bytesReceived} calls.
    """

    def wireConnected(wire) -> None:
        """
        The wire is ready: C{wire} provides L{IWire}.
        """

    def bytesReceived(data: bytes) -> None:
        """
        Bytes arrived from the peer.
        """

    def writesPaused() -> None:
        """
        The wire's write buffer is full: the peer does not read.
        """

    def writesResumed() -> None:
        """
        The wire's write buffer has drained.
        """

    def readLost() -> None:
        """
        The peer will send nothing more, but may still read (a TCP
        half-close): what is queued still goes out, then the wire closes.
        """

    def wireLost(reason) -> None:
        """
        The wire is gone.

        @param reason: a L{twisted.python.failure.Failure}.
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


class IStreamingWebSocketApplication(IWebSocketApplication):
    """
    An application that takes data messages piece by piece, as they
    arrive, instead of whole: declare it with
    C{@implementer(IStreamingWebSocketApplication)} (or subclass
    L{wsproto_tw.application.StreamingWebSocketApplication}). Each message
    is then L{messageStarted}, zero or more L{messageDataReceived}, and
    L{messageEnded}; C{textMessageReceived} and C{binaryMessageReceived}
    are never called. Applications that don't declare it get whole
    messages, as before.

    The limits still apply to the whole message: past
    C{Config.max_message_size} (counted over every piece so far) the
    connection fails with 1009, and text that stops being valid UTF-8
    fails it with 1007, after the valid pieces before it were delivered.
    A message cut short that way gets no L{messageEnded}:
    C{connectionLost} follows.

    Over SockJS, each (text) message arrives as L{messageStarted}, one
    L{messageDataReceived} with the whole text (if not empty), and
    L{messageEnded}.
    """

    def messageStarted(binary: bool) -> None:
        """
        A data message begins.

        @param binary: C{True} for a binary message, C{False} for text.
        """

    def messageDataReceived(data):
        """
        The next piece of the message under way arrived: a frame, or as
        much of one as a read brought. Never empty.

        @param data: C{bytes} for a binary message (inflated if it was
            compressed); C{str} for text, decoded as it arrives: a code
            point split between frames or reads comes whole in the later
            piece.
        @return: L{None}, or a Deferred: until it fires, the piece counts
            as a pending message of its length against
            C{Config.max_pending_messages} and C{max_pending_bytes}, as a
            whole message's Deferred does; past either, reading (and
            delivery) pauses until half of them have fired. With
            C{max_pending_messages=0}, each unfired Deferred holds the next
            piece back until it fires.
        """

    def messageEnded():
        """
        The message under way is complete.

        @return: L{None}, or a Deferred, counted as a pending message of
            length 0.
        """
