# -*- test-case-name: tests.test_client -*-
"""
WebSocket clients: open a connection to a C{ws://} or C{wss://} URL with
L{connect}, or through any L{IStreamClientEndpoint} with
L{connectWebSocket}.

Both return a L{Deferred} that fires with the open connection (the
L{IWebSocketTransport}) once the opening handshake has succeeded and the
application's C{connectionOpened} has run, or fails with one of:

  - L{twisted.internet.error.ConnectionRefusedError},
    L{twisted.internet.error.DNSLookupError} and the other errors of the
    endpoint's C{connect};
  - L{OpenSSL.SSL.Error} when the TLS handshake fails (an untrusted
    certificate, a host name mismatch, no common protocol version);
  - L{wsproto_tw.errors.HandshakeRejected} when the server answers with
    anything but a valid C{101} (its C{status}, C{headers} and the first
    bytes of its C{body});
  - L{wsproto_tw.errors.HandshakeTimeout} when the connection is not open
    within C{Config.open_timeout} seconds of the call; this one deadline
    covers the TCP connection, the TLS handshake and the HTTP upgrade;
  - L{twisted.internet.defer.CancelledError} when the caller cancels it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw._protocol import WebSocketApplication, WebSocketProtocol
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, Connection
from wsproto_tw.core.handshake import split_url
from wsproto_tw.errors import ConnectionClosed, HandshakeRejected, HandshakeTimeout

__all__ = [
    "Config",
    "ConnectionClosed",
    "HandshakeRejected",
    "HandshakeTimeout",
    "WebSocketApplication",
    "connect",
    "connectWebSocket",
]


class _ClientProtocol(WebSocketProtocol):
    """
    A client connection that reports a transport failure before the server
    answered (a TLS error, a reset) as itself rather than as a handshake
    rejection.
    """

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        conn = self._conn
        if (
            self._onOpen is not None
            and conn is not None
            and getattr(conn, "response", None) is None
            and reason is not None
            and not reason.check(ConnectionDone)
        ):
            onOpen, self._onOpen = self._onOpen, None
            onOpen.errback(reason)
        super().connectionLost(reason)


class _Opening(Factory):
    """
    One L{connectWebSocket} call: the factory of its one connection, and
    the source of its result.

    @ivar result: the L{Deferred} the caller gets.
    """

    noisy = False

    def __init__(
        self,
        applicationFactory: Callable[[], Any],
        config: Config,
        reactor: IReactorTime,
        makeCore: Callable[[float], Connection],
    ) -> None:
        self._applicationFactory = applicationFactory
        self._config = config
        self._reactor = reactor
        self._makeCore = makeCore
        self._protocol: WebSocketProtocol | None = None
        self._connecting: Deferred | None = None
        self._timer: Any = None
        self._why: type[Exception] | None = None
        self.result: Deferred = Deferred(self._cancel)

    def start(self, endpoint: IStreamClientEndpoint) -> None:
        if self._config.open_timeout is not None:
            self._timer = self._reactor.callLater(self._config.open_timeout, self._timedOut)
        self._connecting = endpoint.connect(self)
        self._connecting.addCallbacks(lambda protocol: self._stopTimer(), self._connectFailed)

    def buildProtocol(self, addr: Any) -> WebSocketProtocol:
        opened: Deferred = Deferred()
        opened.addBoth(self._done)
        protocol = _ClientProtocol(
            self._applicationFactory(), self._config, self._reactor, self._makeCore, onOpen=opened
        )
        protocol.factory = self
        self._protocol = protocol
        return protocol

    def _connectFailed(self, failure: Failure) -> None:
        if self._why is HandshakeTimeout:
            failure = Failure(HandshakeTimeout("opening handshake timed out while connecting"))
        elif self._why is CancelledError:
            failure = Failure(CancelledError())
        self._done(failure)

    def _done(self, outcome: Any) -> None:
        self._stopTimer()
        if not self.result.called:
            if isinstance(outcome, Failure):
                self.result.errback(outcome)
            else:
                self.result.callback(outcome)

    def _timedOut(self) -> None:
        # Only ever while connecting: once connected, the core's deadline
        # (the same instant) takes over.
        self._timer = None
        self._why = HandshakeTimeout
        assert self._connecting is not None
        self._connecting.cancel()

    def _stopTimer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _cancel(self, result: Deferred) -> None:
        # Deferred.cancel fails the result with CancelledError afterwards.
        self._why = CancelledError
        if self._protocol is not None:
            self._protocol.abortConnection()
        elif self._connecting is not None:
            self._connecting.cancel()


def connectWebSocket(
    endpoint: IStreamClientEndpoint,
    url: str,
    applicationFactory: Callable[[], Any],
    *,
    config: Config | None = None,
    origin: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    reactor: IReactorTime | None = None,
) -> Deferred:
    """
    Open a WebSocket connection through C{endpoint}.

    @param endpoint: how to reach the server: TCP, TLS, a UNIX socket, a
        proxy; C{url} does not change it.
    @param url: the C{ws://} or C{wss://} URL; it gives the C{Host} header
        and the request target.
    @param applicationFactory: called with no arguments to build the
        L{IWebSocketApplication} of the connection.
    @param config: limits, timeouts and the offered subprotocols
        (C{Config.subprotocols}) and compression.
    @param origin: the C{Origin} header to send, if any.
    @param headers: extra request headers, as (name, value) pairs.
    @param reactor: the L{IReactorTime} for timeouts; the global reactor by
        default.
    @return: a L{Deferred} firing with the open L{WebSocketProtocol}; see
        the module documentation for its failures.
    @raise ValueError: C{url} is not a WebSocket URL.
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor  # type: ignore[assignment]
    config = config if config is not None else Config()
    _secure, _host, _port, hostHeader, target = split_url(url)
    extraHeaders = _checkHeaders(headers)
    startedAt = reactor.seconds()

    def makeCore(now: float) -> Connection:
        # The opening deadline counts from the call, not from the TCP
        # connection: one timeout bounds the whole opening.
        return ClientConnection(
            config,
            host=hostHeader,
            target=target,
            origin=origin,
            extra_headers=extraHeaders,
            now=startedAt,
        )

    opening = _Opening(applicationFactory, config, reactor, makeCore)
    opening.start(endpoint)
    return opening.result


def connect(
    url: str,
    applicationFactory: Callable[[], Any],
    *,
    config: Config | None = None,
    origin: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    reactor: Any = None,
    trustRoot: Any = None,
    insecure: bool = False,
    connectTimeout: float = 30,
) -> Deferred:
    """
    Open a WebSocket connection to a C{ws://} or C{wss://} URL.

    The host name is resolved and each of its addresses tried
    (L{HostnameEndpoint}); C{wss://} wraps the connection in TLS that
    verifies the server's certificate and host name
    (L{optionsForClientTLS <twisted.internet.ssl.optionsForClientTLS>};
    needs the C{tls} extra: pyOpenSSL and service_identity).

    @param url: e.g. C{"wss://example.com/chat?room=1"}.
    @param applicationFactory: called with no arguments to build the
        L{IWebSocketApplication} of the connection.
    @param config: limits, timeouts, the offered subprotocols
        (C{Config.subprotocols}) and compression. C{Config.open_timeout}
        bounds the whole opening: DNS, TCP, TLS and the upgrade.
    @param origin: the C{Origin} header to send, if any.
    @param headers: extra request headers, as (name, value) pairs.
    @param reactor: the reactor; the global one by default.
    @param trustRoot: C{wss://} only: the certificate authorities to trust
        instead of the platform's: an L{IOpenSSLTrustRoot
        <twisted.internet.ssl.IOpenSSLTrustRoot>}, a
        L{Certificate <twisted.internet.ssl.Certificate>}, or a path to a
        PEM file of CA certificates.
    @param insecure: C{wss://} only: do not verify the certificate or the
        host name at all. For tests against throwaway servers only.
    @param connectTimeout: seconds for each TCP connection attempt.
    @return: a L{Deferred} as for L{connectWebSocket}.
    @raise ValueError: C{url} is not a WebSocket URL, or C{trustRoot} and
        C{insecure} are both given.
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    secure, host, port, _hostHeader, _target = split_url(url)
    if insecure and trustRoot is not None:
        raise ValueError("trustRoot and insecure exclude each other")
    endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port, timeout=connectTimeout)
    if secure:
        endpoint = wrapClientTLS(tlsOptions(host, trustRoot=trustRoot, insecure=insecure), endpoint)
    return connectWebSocket(
        endpoint,
        url,
        applicationFactory,
        config=config,
        origin=origin,
        headers=headers,
        reactor=reactor,
    )


def tlsOptions(hostname: str, *, trustRoot: Any = None, insecure: bool = False) -> Any:
    """
    The TLS client settings L{connect} uses for C{wss://}.

    @param hostname: the server's host name (or IP address) to verify and to
        send as SNI.
    @param trustRoot: as for L{connect}.
    @param insecure: as for L{connect}.
    @return: an L{IOpenSSLClientConnectionCreator
        <twisted.internet.interfaces.IOpenSSLClientConnectionCreator>}.
    """
    from twisted.internet import ssl

    if insecure:
        return _UnverifiedTLS(hostname)
    if isinstance(trustRoot, str):
        trustRoot = loadTrustRoot(trustRoot)
    return ssl.optionsForClientTLS(hostname, trustRoot=trustRoot)


def loadTrustRoot(path: str) -> Any:
    """
    Read the CA certificates to trust from a PEM file.

    @param path: a file of one or more PEM certificates.
    @return: an L{IOpenSSLTrustRoot <twisted.internet.ssl.IOpenSSLTrustRoot>}.
    @raise OSError: the file can't be read.
    @raise ValueError: it holds no PEM certificate.
    """
    from twisted.internet import ssl

    with open(path, "rb") as f:
        data = f.read()
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in data.split(marker) if b"-----BEGIN CERTIFICATE-----" in block]
    if not blocks:
        raise ValueError(f"no PEM certificate in {path}")
    try:
        certificates = [ssl.Certificate.loadPEM(block) for block in blocks]
    except Exception as exc:
        raise ValueError(f"bad PEM certificate in {path}: {exc}") from None
    return ssl.trustRootFromCertificates(certificates)


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedTLS:
    """
    TLS without certificate verification, still sending the host name as
    SNI so that name-based virtual hosts answer.
    """

    def __init__(self, hostname: str) -> None:
        from twisted.internet import ssl
        from twisted.internet.abstract import isIPAddress, isIPv6Address

        self._options = ssl.CertificateOptions()
        self._serverName: bytes | None = None
        if not (isIPAddress(hostname) or isIPv6Address(hostname)):
            self._serverName = hostname.encode("idna")

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        connection = self._options.clientConnectionForTLS(tlsProtocol)
        if self._serverName is not None:
            connection.set_tlsext_host_name(self._serverName)
        return connection


def _checkHeaders(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """
    @raise ValueError: a header name or value would break the request head.
    """
    checked = []
    for name, value in headers:
        if not name or any(c in name for c in ":\r\n \t") or any(c in value for c in "\r\n"):
            raise ValueError(f"invalid header {name!r}: {value!r}")
        checked.append((name, value))
    return tuple(checked)
