# -*- test-case-name: tests.test_wrap -*-
"""
Any Twisted protocol over WebSocket: L{wrapFactory} turns a protocol factory
(a C{LineReceiver} chat, an AMP service, ...) into a WebSocket application
factory. Each message the peer sends is fed to the protocol's
C{dataReceived}, and what the protocol writes goes out as messages.

    from wsproto_tw.resource import WebSocketResource
    root.putChild(b"chat", WebSocketResource(
        wrapFactory(ChatFactory(), text=True, delimiter=b"\\r\\n")))

A browser's C{new WebSocket(url)} then talks to the line protocol: each line
is one text message, without its delimiter.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any

from twisted.internet import error
from twisted.internet.interfaces import IConsumer, IPushProducer, IReactorTime, ITransport
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.errors import ConnectionClosed
from wsproto_tw.interfaces import IWebSocketApplication

__all__ = ["ProtocolApplication", "streamReason", "wrapFactory"]


# Close codes of an ordinary end (RFC 6455 §7.4.1): normal closure, going
# away, and a Close frame without a code.
_ORDINARY_CODES = frozenset({1000, 1001, 1005})


class _CleanClose(ConnectionClosed, error.ConnectionDone):
    """
    A WebSocket connection that ended by a clean closing handshake with an
    ordinary code.
    """


class _UncleanClose(ConnectionClosed, error.ConnectionLost):
    """
    A WebSocket connection that closed any other way.
    """


def streamReason(reason: Failure) -> Failure:
    """
    Translate the reason wsproto_tw gives an application's
    C{connectionLost} into one a stream protocol expects.

    @param reason: a failure whose value is a
        L{wsproto_tw.errors.ConnectionClosed}.
    @return: a failure whose value is also a
        L{twisted.internet.error.ConnectionDone} when the closing handshake
        completed with code 1000, 1001 or none, a
        L{twisted.internet.error.ConnectionLost} otherwise; C{reason} itself
        if its value is something else.
    """
    closed = reason.value
    if not isinstance(closed, ConnectionClosed):
        return reason
    ordinary = closed.wasClean and closed.code in _ORDINARY_CODES
    kind = _CleanClose if ordinary else _UncleanClose
    return Failure(kind(closed.code, closed.reason, closed.wasClean))


def wrapFactory(
    factory: Any,
    *,
    text: bool = False,
    delimiter: bytes | None = None,
    reactor: IReactorTime | None = None,
) -> Callable[[], ProtocolApplication]:
    """
    Run the protocols C{factory} builds over WebSocket connections.

    @param factory: a L{twisted.internet.protocol.Factory}; its
        C{buildProtocol(address)} is called with the peer's address each time
        a connection opens (C{doStart}/C{doStop} are not called). When it
        returns L{None}, the connection is closed with 1008.
    @param text: send what the protocol writes as text messages (it must
        write UTF-8) instead of binary ones.
    @param delimiter: if given, framing by delimiter: each incoming message
        is followed by C{delimiter}, and what the protocol writes is split
        after each C{delimiter} into messages that leave it out. With
        C{delimiter=b"\\r\\n"}, a C{LineReceiver} exchanges one message per
        line.
    @param reactor: the L{IReactorTime} that drives pull producers; the
        global reactor by default.
    @return: an application factory for
        L{WebSocketServerFactory <wsproto_tw.server.WebSocketServerFactory>},
        L{WebSocketResource <wsproto_tw.resource.WebSocketResource>} or
        L{connect <wsproto_tw.client.connect>}.
    """
    if delimiter is not None and (not isinstance(delimiter, bytes) or not delimiter):
        raise ValueError("delimiter must be non-empty bytes or None")
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor  # type: ignore[assignment]

    def applicationFactory() -> ProtocolApplication:
        return ProtocolApplication(factory, text=text, delimiter=delimiter, reactor=reactor)

    return applicationFactory


@implementer(IWebSocketApplication)
class ProtocolApplication:
    """
    The WebSocket application that runs one stream protocol.

    @ivar protocol: the protocol, once the connection has opened and the
        factory has built it.
    @ivar transport: the L{IWebSocketTransport
        <wsproto_tw.interfaces.IWebSocketTransport>}, once open.
    """

    def __init__(
        self, factory: Any, *, text: bool = False, delimiter: bytes | None = None, reactor: Any
    ) -> None:
        self._factory = factory
        self._text = text
        self._delimiter = delimiter
        self._reactor = reactor
        self.protocol: Any = None
        self.transport: Any = None
        self._stream: _StreamTransport | None = None

    def requestReceived(self, request: Any) -> None:
        return None

    def connectionOpened(self, transport: Any) -> None:
        self.transport = transport
        protocol = self._factory.buildProtocol(transport.getPeer())
        if protocol is None:
            transport.close(1008, "refused")
            return
        self.protocol = protocol
        self._stream = _StreamTransport(transport, self._text, self._delimiter, self._reactor)
        protocol.makeConnection(self._stream)

    def textMessageReceived(self, text: str) -> None:
        self._received(text.encode("utf-8"))

    def binaryMessageReceived(self, data: bytes) -> None:
        self._received(data)

    def _received(self, data: bytes) -> None:
        if self.protocol is None or self._stream is None or self._stream.disconnecting:
            return
        if self._delimiter is not None:
            data += self._delimiter
        self.protocol.dataReceived(data)

    def pingReceived(self, payload: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        stream, protocol = self._stream, self.protocol
        if stream is None or protocol is None:
            return
        stream.connected = False
        stream.disconnecting = True
        # The WebSocket connection has told the producer to stop already.
        protocol.connectionLost(streamReason(reason))


@implementer(ITransport, IConsumer, IPushProducer)
class _StreamTransport:
    """
    The byte-stream transport a wrapped protocol writes to: each write (or,
    with a delimiter, each delimited piece) becomes one message.
    """

    disconnecting = False
    connected = True

    def __init__(self, webSocket: Any, text: bool, delimiter: bytes | None, reactor: Any) -> None:
        self._ws = webSocket
        self._text = text
        self._delimiter = delimiter
        self._reactor = reactor
        self._pending = b""
        self._producer: Any = None
        # A write may end inside a UTF-8 sequence; the rest comes next.
        self._decoder = codecs.getincrementaldecoder("utf-8")() if text else None

    # -- ITransport --------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.disconnecting:
            return
        if self._delimiter is None:
            self._send(data)
            return
        self._pending += data
        pieces = self._pending.split(self._delimiter)
        self._pending = pieces.pop()
        for piece in pieces:
            self._send(piece)

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def _send(self, data: bytes) -> None:
        if self._decoder is not None:
            text = self._decoder.decode(data)
            if text or self._delimiter is not None:
                self._ws.sendText(text)
        elif data or self._delimiter is not None:
            self._ws.sendBinary(data)

    def loseConnection(self) -> None:
        """
        Close the WebSocket connection with 1000 (normal closure), once what
        was written is sent.
        """
        if self.disconnecting:
            return
        self.disconnecting = True
        if self._pending:
            pending, self._pending = self._pending, b""
            self._send(pending)
        self._ws.close(1000)

    def abortConnection(self) -> None:
        self.disconnecting = True
        self._ws.abortConnection()

    def getPeer(self) -> Any:
        return self._ws.getPeer()

    def getHost(self) -> Any:
        return self._ws.getHost()

    # -- IPushProducer: the wrapped protocol pausing its input --------------

    def pauseProducing(self) -> None:
        self._ws.pauseReading()

    def resumeProducing(self) -> None:
        self._ws.resumeReading()

    def stopProducing(self) -> None:
        self.loseConnection()

    # -- IConsumer: producers writing through the wrapped protocol ----------

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        """
        Register a producer with the WebSocket connection: a push producer
        is paused while the connection's write buffer is full; a pull
        producer is asked for data once per reactor turn while it is not
        (L{PullToPush <wsproto_tw.flow.PullToPush>}); either is told to stop
        when the connection is lost.

        @raise RuntimeError: a producer is already registered.
        """
        self._ws.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._ws.unregisterProducer()
