"""
TLS listening ports that answer a plain-text HTTP request with a clear
C{400} instead of closing without a word.

Twisted's C{ssl:} ports run TLS over TCP in memory (C{TLSMemoryBIOFactory});
a client that sends a plain request to one (C{ws://} where C{wss://} was
meant) sees its connection closed with no answer. L{TLSPortEndpoint} runs
the same TLS over the same TCP port and looks at the first byte of each
connection once: a TLS record goes on to TLS with nothing in between (the
TCP transport's protocol becomes the TLS protocol itself), while a
plain-text request (L{check_tls_start}) is answered in plain text and the
connection closes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import endpoints
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from wsproto_tw.core.errors import HandshakeFailed
from wsproto_tw.core.handshake import build_error_response, check_tls_start
from wsproto_tw.logs import FastLogger
from wsproto_tw.wire import addressName

_log = FastLogger(namespace="wsproto_tw")


class _FirstByte(Protocol):
    """
    The protocol of a TLS port's connection until its first bytes arrive:
    the TLS protocol is made and connected at once (its deadlines run from
    the connection's start, as on a Twisted C{ssl:} port) and takes the
    transport over at the first TLS bytes.
    """

    def __init__(self, inner: Any, answerPlainText: bool, served: Any) -> None:
        self._inner = inner
        self._answerPlainText = answerPlainText
        self._served = served
        self._answered = False

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport
        self.connected = 1
        self._inner.makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        if self._answered:
            return
        if self._answerPlainText:
            try:
                check_tls_start(data)
            except HandshakeFailed as error:
                self._answered = True
                # As any failed opening handshake is logged.
                _log.info("handshake failed from {peer}: {error}", peer=addressName(self.transport.getPeer()), error=error)
                # And counted as any answered handshake, when metrics are on.
                metrics = getattr(self._served, "metrics", None)
                if metrics is not None:
                    metrics.refused(error.status)
                self.transport.write(build_error_response(error))
                self.transport.loseConnection()
                return
        self.transport.protocol = self._inner
        self._inner.dataReceived(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.connected = 0
        self._inner.connectionLost(reason)


class _FirstByteFactory(Factory):
    """
    Builds a L{_FirstByte} around each protocol of a C{TLSMemoryBIOFactory}.
    """

    def __init__(self, tlsFactory: Any, answerPlainText: bool) -> None:
        self._tlsFactory = tlsFactory
        self._answerPlainText = answerPlainText
        # The factory TLS serves (whose metrics count refusals).
        self._served = tlsFactory.wrappedFactory

    def doStart(self) -> None:
        self._tlsFactory.doStart()

    def doStop(self) -> None:
        self._tlsFactory.doStop()

    def logPrefix(self) -> str:
        return self._tlsFactory.logPrefix()

    def buildProtocol(self, addr: Any) -> Protocol | None:
        inner = self._tlsFactory.buildProtocol(addr)
        if inner is None:
            return None
        return _FirstByte(inner, self._answerPlainText, self._served)


@implementer(IStreamServerEndpoint)
class TLSPortEndpoint:
    """
    An L{IStreamServerEndpoint} serving TLS on a TCP endpoint's port, as a
    Twisted C{ssl:} port does, with a plain-text request answered by C{400
    Bad Request} and a one-line reason (RFC 6455 §4.2.2 lets a server answer
    a handshake it will not take with an HTTP error).

    @ivar tcpEndpoint: the endpoint listening on TCP (or an inherited
        listening socket).
    @ivar contextFactory: the TLS server context (certificate, key, ALPN as
        for C{listenSSL}: taken from the wrapped factory).
    @ivar answerPlainText: whether a plain-text request gets the C{400};
        false for ports of protocols other than HTTP, whose plain requests
        TLS rejects as before.
    """

    def __init__(self, tcpEndpoint: Any, contextFactory: Any, answerPlainText: bool = True) -> None:
        self.tcpEndpoint = tcpEndpoint
        self.contextFactory = contextFactory
        self.answerPlainText = answerPlainText

    def listen(self, factory: Any) -> Deferred:
        """
        Listen with TLS over the TCP endpoint.

        @param factory: the factory of the protocols TLS carries.
        @return: a L{Deferred} firing with the listening port.
        """
        # Imported here: TLS (pyOpenSSL) is an optional extra.
        from twisted.protocols.tls import TLSMemoryBIOFactory

        tlsFactory = TLSMemoryBIOFactory(self.contextFactory, False, factory)
        listening = self.tcpEndpoint.listen(_FirstByteFactory(tlsFactory, self.answerPlainText))
        return listening.addCallback(_namedTLS)


def _namedTLS(port: Any) -> Any:
    # As listenSSL names its port in Twisted's log lines ("TLS Port 8443
    # Closed").
    if hasattr(port, "_type"):
        port._type = "TLS"
    return port


def tlsPortEndpoint(reactor: Any, description: str, tcpEndpoint: Any = None, answerPlainText: bool = True) -> TLSPortEndpoint:
    """
    The L{TLSPortEndpoint} of an C{ssl:} endpoint description.

    @param description: a Twisted C{ssl:} server endpoint description
        (C{ssl:8443:privateKey=key.pem:certKey=cert.pem}).
    @param tcpEndpoint: where to listen instead of the description's port
        and interface (an inherited listening socket); by default a TCP
        endpoint on the description's port, backlog and interface.
    @raise ValueError: C{description} is not an C{ssl:} description, or it
        is invalid (the errors of L{endpoints.serverFromString}).
    """
    parsed = endpoints.serverFromString(reactor, description)
    if not isinstance(parsed, endpoints.SSL4ServerEndpoint):
        raise ValueError(f"not an ssl: endpoint description: {description}")
    if tcpEndpoint is None:
        tcpEndpoint = endpoints.TCP4ServerEndpoint(reactor, parsed._port, parsed._backlog, parsed._interface)
    return TLSPortEndpoint(tcpEndpoint, parsed._sslContextFactory, answerPlainText)
