# -*- test-case-name: tests.test_protocol -*-
"""
The stream wire: a WebSocket connection carried by a byte stream, a TCP or
TLS connection after an HTTP/1.1 upgrade or a C{twisted.web} channel taken
over. It is the Twisted L{Protocol} of that stream, and the L{IWire} of one
L{WebSocketConnection <wsproto_tw.connection.WebSocketConnection>}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.interfaces import IWire

__all__ = ["StreamWire"]


@implementer(IWire, IPushProducer, IHalfCloseableProtocol)
class StreamWire(Protocol):
    """
    Moves bytes between a stream transport and a connection (an
    L{IWireReceiver <wsproto_tw.interfaces.IWireReceiver>}), and relays the
    transport's write-buffer state: it registers as the transport's push
    producer, so the transport tells it when its buffer is full.

    A peer that shuts down only its sending side (a TCP half-close, a FIN
    while it still reads) is told what we still have to say, such as the
    answer to its Close frame (RFC 6455 section 7.1.1), before the
    connection closes.

    @ivar connection: the L{IWireReceiver} it carries.
    """

    def __init__(self, connection: Any) -> None:
        # Every attribute is set here, even those Twisted sets later: then
        # all instances share one table of attribute names (CPython's
        # key-sharing instance dicts).
        self.factory: Any = None
        self.connected = 0
        self.transport: Any = None
        self.connection = connection

    # -- Protocol ----------------------------------------------------------

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)
        self.connection.wireConnected(self)

    def dataReceived(self, data: bytes) -> None:
        self.connection.bytesReceived(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connection.wireLost(reason)

    # -- IHalfCloseableProtocol ----------------------------------------------

    def readConnectionLost(self) -> None:
        self.connection.readLost()

    def writeConnectionLost(self) -> None:
        pass  # we never close only our sending side

    # -- IPushProducer: the transport's write buffer -------------------------

    def pauseProducing(self) -> None:
        self.connection.writesPaused()

    def resumeProducing(self) -> None:
        self.connection.writesResumed()

    def stopProducing(self) -> None:
        pass  # connectionLost follows

    # -- IWire ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def loseConnection(self) -> None:
        # A registered producer would keep the transport from closing once
        # its buffer drains.
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def abortConnection(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()

    def pauseReading(self) -> None:
        self.transport.pauseProducing()

    def resumeReading(self) -> None:
        self.transport.resumeProducing()

    def getPeer(self) -> Any:
        return self.transport.getPeer()

    def getHost(self) -> Any:
        return self.transport.getHost()
