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

import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.application import StreamingWebSocketApplication, WebSocketApplication
from wsproto_tw._pump import _Role
from wsproto_tw.connection import WebSocketConnection
from wsproto_tw.wire import StreamWire
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, Connection
from wsproto_tw.errors import ConnectionClosed, HandshakeRejected, HandshakeTimeout

__all__ = [
    "Config",
    "ConnectionClosed",
    "HandshakeRejected",
    "HandshakeTimeout",
    "StreamingWebSocketApplication",
    "WebSocketApplication",
    "WebSocketURL",
    "connect",
    "connectWebSocket",
    "parseURL",
]


class _ClientRole(_Role):
    """
    The client side of a connection: fires the L{connectWebSocket} result
    when the connection opens, or fails it.
    """

    __slots__ = ("_onOpen",)

    def __init__(self, onOpen: Deferred) -> None:
        self._onOpen: Deferred | None = onOpen

    def _fail(self, failure: Failure) -> None:
        onOpen, self._onOpen = self._onOpen, None
        if onOpen is not None:
            onOpen.errback(failure)

    def opened(self, connection: WebSocketConnection) -> None:
        onOpen, self._onOpen = self._onOpen, None
        if onOpen is not None:
            onOpen.callback(connection)

    def handshakeFailed(self, connection: WebSocketConnection, error: Exception) -> None:
        self._fail(Failure(error))

    def wireLost(self, connection: WebSocketConnection, reason: Failure) -> None:
        # A transport failure before the server answered (a TLS error, a
        # reset) is reported as itself rather than as a handshake rejection.
        if connection.response is None and reason is not None and not reason.check(ConnectionDone):
            self._fail(reason)

    def lost(self, connection: WebSocketConnection, reason: Failure) -> None:
        self._fail(reason)


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
        self._connection: WebSocketConnection | None = None
        self._connecting: Deferred | None = None
        self._timer: Any = None
        self._why: type[Exception] | None = None
        self.result: Deferred = Deferred(self._cancel)

    def start(self, endpoint: IStreamClientEndpoint) -> None:
        self._connect(endpoint).addCallbacks(lambda protocol: self._stopTimer(), self._connectFailed)

    def _connect(self, endpoint: IStreamClientEndpoint) -> Deferred:
        """
        Arm the opening timer (C{Config.open_timeout}, if any) and connect
        C{endpoint} with this factory.

        @return: the endpoint's connecting L{Deferred}, also kept to cancel.
        """
        if self._config.open_timeout is not None:
            self._timer = self._reactor.callLater(self._config.open_timeout, self._timedOut)
        self._connecting = endpoint.connect(self)
        return self._connecting

    def buildProtocol(self, addr: Any) -> StreamWire:
        wire = StreamWire(self._buildConnection())
        wire.factory = self
        return wire

    def _buildConnection(self) -> WebSocketConnection:
        """
        Build the one L{WebSocketConnection}: the application, and the
        client role that settles L{result} when it opens or fails.
        """
        opened: Deferred = Deferred()
        opened.addBoth(self._done)
        connection = WebSocketConnection(
            self._applicationFactory(), self._config, self._reactor, self._makeCore, _ClientRole(opened)
        )
        connection.factory = self
        self._connection = connection
        return connection

    def _connectFailed(self, failure: Failure) -> None:
        if self._why is HandshakeTimeout:
            text = "opening handshake timed out while connecting"
            if failure.check(CancelledError) and failure.value.args:
                # Where the endpoint was, if it says (a proxy's tunnel).
                text += f" ({failure.value})"
            failure = Failure(HandshakeTimeout(text))
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
        if self._connection is not None:
            self._connection.abortConnection()
        elif self._connecting is not None:
            self._connecting.cancel()


def connectWebSocket(
    endpoint: IStreamClientEndpoint,
    url: str,
    applicationFactory: Callable[[], Any],
    *,
    config: Config | None = None,
    origin: str | None = None,
    headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
    reactor: IReactorTime | None = None,
) -> Deferred:
    """
    Open a WebSocket connection through C{endpoint}.

    @param endpoint: how to reach the server: TCP, TLS, a UNIX socket, a
        proxy; C{url} does not change it.
    @param url: the C{ws://} or C{wss://} URL, which may hold non-ASCII
        characters (see L{parseURL}); it gives the C{Host} header and the
        request target.
    @param applicationFactory: called with no arguments to build the
        L{IWebSocketApplication} of the connection.
    @param config: limits, timeouts and the offered subprotocols
        (C{Config.subprotocols}) and compression.
    @param origin: the C{Origin} header to send, if any.
    @param headers: extra request headers, as (name, value) pairs or a
        mapping of names to values.
    @param reactor: the L{IReactorTime} for timeouts; the global reactor by
        default.
    @return: a L{Deferred} firing with the open L{WebSocketConnection}; see
        the module documentation for its failures.
    @raise ValueError: at once, before connecting: C{url} is not a WebSocket
        URL, or a header or the origin can't be sent (a name that is not a
        token, a value with a line break or NUL or a character outside
        Latin-1).
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor  # type: ignore[assignment]
    config = config if config is not None else Config()
    core = _clientCore(parseURL(url), config, origin, headers, reactor.seconds())

    def makeCore(now: float) -> Connection:
        return core

    opening = _Opening(applicationFactory, config, reactor, makeCore)
    opening.start(endpoint)
    return opening.result


def _clientCore(
    parsed: WebSocketURL,
    config: Config,
    origin: str | None,
    headers: Iterable[tuple[str, str]] | Mapping[str, str],
    now: float,
    stream: bool = False,
) -> ClientConnection:
    """
    The client core of one opening, its request built now, so that whatever
    can't be sent fails the call at once rather than the connection later.
    The opening deadline counts from C{now}, the call, not from the
    connection: one timeout bounds the whole opening.

    @param parsed: the URL, for the C{Host} header and the request target.
    @param origin: the C{Origin} header to send, if any.
    @param headers: extra request headers, as for L{connectWebSocket}.
    @param now: the reactor's time, in seconds.
    @param stream: L{True} for a WebSocket over an HTTP/2 stream (RFC 8441).
    @raise ValueError: a header or the origin can't be sent.
    """
    extraHeaders = _checkHeaders(headers)
    if origin is not None:
        _checkHeaders([("Origin", origin)])
    return ClientConnection(
        config,
        host=parsed.hostHeader,
        target=parsed.target,
        origin=origin,
        extra_headers=extraHeaders,
        now=now,
        stream=stream,
    )


def connect(
    url: str,
    applicationFactory: Callable[[], Any],
    *,
    config: Config | None = None,
    origin: str | None = None,
    headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
    reactor: Any = None,
    trustRoot: Any = None,
    insecure: bool = False,
    connectTimeout: float = 30,
    proxy: str | bool | None = None,
    environ: Mapping[str, str] | None = None,
    http2: bool = False,
) -> Deferred:
    """
    Open a WebSocket connection to a C{ws://} or C{wss://} URL.

    The host name is resolved and each of its addresses tried
    (L{HostnameEndpoint}), directly or through an HTTP proxy's C{CONNECT}
    tunnel (L{wsproto_tw.proxy.HTTPTunnelEndpoint}); C{wss://} wraps the
    connection in TLS that verifies the server's certificate and host name
    (L{optionsForClientTLS <twisted.internet.ssl.optionsForClientTLS>};
    needs the C{tls} extra: pyOpenSSL and service_identity), end to end
    through a proxy's tunnel.

    The URL may hold non-ASCII characters (an IRI): see L{parseURL}. The
    host's ASCII form (IDNA A-labels) is what is resolved, sent in C{Host}
    and as TLS SNI, and matched against the certificate.

    Everything that can't be sent (the URL, a header, the origin, the proxy
    URL) raises L{ValueError} from this call, before any connection is
    attempted.

    @param url: e.g. C{"wss://example.com/chat?room=1"}.
    @param applicationFactory: called with no arguments to build the
        L{IWebSocketApplication} of the connection.
    @param config: limits, timeouts, the offered subprotocols
        (C{Config.subprotocols}) and compression. C{Config.open_timeout}
        bounds the whole opening: DNS, TCP, the proxy's tunnel, TLS and the
        upgrade.
    @param origin: the C{Origin} header to send, if any.
    @param headers: extra request headers, as (name, value) pairs or a
        mapping of names to values.
    @param reactor: the reactor; the global one by default.
    @param trustRoot: C{wss://} only: the certificate authorities to trust
        instead of the platform's: an L{IOpenSSLTrustRoot
        <twisted.internet.ssl.IOpenSSLTrustRoot>}, a
        L{Certificate <twisted.internet.ssl.Certificate>}, or a path to a
        PEM file of CA certificates.
    @param insecure: C{wss://} only: do not verify the certificate or the
        host name at all. For tests against throwaway servers only.
    @param connectTimeout: seconds for each TCP connection attempt.
    @param proxy: the HTTP proxy: a URL such as
        C{"http://user:password@proxy.example:3128"}; C{False} to connect
        directly whatever the environment says; L{None} (the default) to
        follow the environment: C{https_proxy} for C{wss://},
        C{http_proxy} for C{ws://} (also in upper case), unless the host is
        in C{no_proxy} (see L{wsproto_tw.proxy.proxyFor}).
    @param environ: the environment to read proxies from; C{os.environ} by
        default.
    @param http2: C{wss://} only: open the WebSocket as a stream of an
        HTTP/2 connection (RFC 8441) when the server allows it, else over
        HTTP/1.1 (L{wsproto_tw.http2.connectHTTP2}; no proxy).
    @return: a L{Deferred} as for L{connectWebSocket}; through a proxy it
        may also fail with L{wsproto_tw.proxy.ProxyAuthenticationFailed}
        (a C{407}), L{wsproto_tw.proxy.ProxyRefused} (another refusal, with
        the proxy's C{status}) or L{wsproto_tw.proxy.ProxyError}.
    @raise ValueError: C{url} is not a WebSocket URL, a header or the origin
        can't be sent, the proxy URL is invalid, or C{trustRoot} and
        C{insecure} are both given.
    """
    from wsproto_tw.proxy import HTTPTunnelEndpoint, proxyFor

    if http2:
        from wsproto_tw.http2 import connectHTTP2

        return connectHTTP2(
            url,
            applicationFactory,
            config=config,
            origin=origin,
            headers=headers,
            reactor=reactor,
            trustRoot=trustRoot,
            insecure=insecure,
            connectTimeout=connectTimeout,
        )

    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    parsed = parseURL(url)
    if insecure and trustRoot is not None:
        raise ValueError("trustRoot and insecure exclude each other")
    via = proxyFor(parsed.secure, parsed.host, parsed.port, proxy, environ)
    endpoint: IStreamClientEndpoint
    if via is None:
        endpoint = HostnameEndpoint(reactor, parsed.host, parsed.port, timeout=connectTimeout)
    else:
        endpoint = HTTPTunnelEndpoint(
            HostnameEndpoint(reactor, via.host, via.port, timeout=connectTimeout),
            parsed.host,
            parsed.port,
            via.authorization,
            proxyName=f"[{via.host}]:{via.port}" if ":" in via.host else f"{via.host}:{via.port}",
        )
    if parsed.secure:
        options = tlsOptions(parsed.host, trustRoot=trustRoot, insecure=insecure)
        endpoint = wrapClientTLS(options, endpoint)
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
    return _HostVerifiedTLS(hostname, ssl.optionsForClientTLS(hostname, trustRoot=trustRoot))


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


_log = Logger()


@implementer(IOpenSSLClientConnectionCreator)
class _HostVerifiedTLS:
    """
    Twisted's client TLS settings (C{optionsForClientTLS}: trust root, SNI,
    chain verification), with the check that the server's certificate is
    for the host name (RFC 6125 §6 by C{service_identity}) done here, so
    that every way it can fail fails the connection: a certificate with no
    C{subjectAltName} (C{service_identity.CertificateError}) as well as one
    for other names (C{VerificationError}). Twisted's own check lets the
    first through, with only a logged traceback.
    """

    def __init__(self, hostname: str, options: Any) -> None:
        from service_identity.hazmat import DNS_ID, IPAddress_ID
        from twisted.internet.abstract import isIPAddress, isIPv6Address

        self._options = options
        self._identity = (
            IPAddress_ID(hostname) if isIPAddress(hostname) or isIPv6Address(hostname) else DNS_ID(hostname)
        )

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        from OpenSSL.SSL import VERIFY_FAIL_IF_NO_PEER_CERT, VERIFY_PEER

        connection = self._options.clientConnectionForTLS(tlsProtocol)
        connection.set_verify(VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT, _hostVerifier(tlsProtocol, self._identity))
        return connection


def _hostChecked(creator: Any) -> Any:
    """
    Make Twisted's verifying client TLS settings check the host name as
    L{connect}'s do: a certificate without C{subjectAltName} (or whose
    C{subjectAltName} names no host that can be matched) fails the
    connection instead of only being logged, and a certificate that fails
    verification says why.

    @param creator: an L{IOpenSSLClientConnectionCreator
        <twisted.internet.interfaces.IOpenSSLClientConnectionCreator>}, e.g.
        what an L{IPolicyForHTTPS <twisted.web.iweb.IPolicyForHTTPS>}'s
        C{creatorForNetloc} gives.
    @return: C{creator} checking the host as L{connect} does when it is
        Twisted's verifying one (what
        L{optionsForClientTLS <twisted.internet.ssl.optionsForClientTLS>}
        makes: Twisted would check the host), else C{creator} itself (one
        that does not verify is not made to).
    """
    try:
        from twisted.internet._sslverify import ClientTLSOptions
    except ImportError:  # a Twisted that moved it: leave its checks alone
        return creator
    hostname = getattr(creator, "_hostnameASCII", None)
    if not isinstance(creator, ClientTLSOptions) or not isinstance(hostname, str):
        return creator
    return _HostVerifiedTLS(hostname, creator)


def _hostVerifier(tlsProtocol: Any, identity: Any) -> Any:
    """
    @return: an OpenSSL verify callback: the chain's own verdict, and for
        the server's certificate (depth 0) also whether it is for
        C{identity}; a certificate that is not fails C{tlsProtocol}'s
        handshake with the C{service_identity} error saying why.
    """
    from service_identity import CertificateError, VerificationError
    from service_identity.hazmat import verify_service_identity

    # No reference from the connection back to its protocol (a cycle).
    protocol = weakref.ref(tlsProtocol)

    def verify(connection: Any, certificate: Any, errno: int, depth: int, ok: int) -> bool:
        if not ok:
            # OpenSSL's own failure would say only "certificate verify
            # failed": say which check failed, in the same form.
            failed = protocol()
            if failed is not None:
                failed.failVerification(Failure(_verifyError(errno, depth, certificate)))
            return False
        if depth != 0:
            return True
        try:
            patterns, unmatchable = _hostPatterns(certificate)
            if not patterns and unmatchable:
                raise CertificateError(_unmatchableNames(unmatchable))
            verify_service_identity(patterns, [identity], [])
        except (VerificationError, CertificateError):
            failed = protocol()
            if failed is not None:
                failed.failVerification(Failure())
            return False
        except Exception:
            # An exception must not leave an OpenSSL callback.
            _log.failure("while checking the certificate's host name")
            return False
        return True

    return verify


def _verifyReason(errno: int) -> str:
    """
    @param errno: an OpenSSL certificate verification error code
        (C{X509_V_ERR_*}, e.g. 10 for an expired certificate).
    @return: OpenSSL's text for it (C{X509_verify_cert_error_string}, e.g.
        C{"certificate has expired"}), or C{"error 10"} without it.
    """
    try:
        from OpenSSL._util import ffi, lib

        return str(ffi.string(lib.X509_verify_cert_error_string(errno)).decode("ascii", "replace"))
    except Exception:  # a pyOpenSSL without that binding
        return f"error {errno}"


# What every verification failure's reason starts with: OpenSSL's own.
_VERIFY_FAILED = "certificate verify failed: "

# The characters of a certificate's subject a reason shows.
_SUBJECT_SHOWN = 100


def _verifyError(errno: int, depth: int = 0, certificate: Any = None) -> Exception:
    """
    @param errno: an OpenSSL certificate verification error code
        (C{X509_V_ERR_*}, e.g. 10 for an expired certificate).
    @param depth: where in the chain the certificate that failed is: 0
        for the server's own, 1 for its issuer, and so on.
    @param certificate: that certificate (a pyOpenSSL C{X509}), to name it.
    @return: the C{OpenSSL.SSL.Error} OpenSSL's own failure of the
        handshake would be, its reason C{"certificate verify failed"}
        followed by what failed, e.g. C{"certificate verify failed:
        certificate has expired"}; when the certificate that failed is not
        the server's own, the reason says which it is: C{"certificate
        verify failed: certificate has expired (the chain's certificate at
        depth 1, CN=Example CA; the server's own is at depth 0)"}.
    """
    from OpenSSL.SSL import Error

    why = _VERIFY_FAILED + _verifyReason(errno)
    if depth > 0:
        subject = ""
        try:
            subject = certificate.to_cryptography().subject.rfc4514_string()
        except Exception:  # no certificate, or one cryptography can't read
            pass
        if len(subject) > _SUBJECT_SHOWN:
            subject = subject[:_SUBJECT_SHOWN] + "..."
        named = f", {subject}" if subject else ""
        why += f" (the chain's certificate at depth {depth}{named}; the server's own is at depth 0)"
    return Error([("SSL routines", "", why)])


# What the CertificateError of a certificate whose subjectAltName
# holds no entry that can match a host says.
_UNMATCHABLE_NAMES = "the certificate's subjectAltName names no host this client can match"

# The entries of a subjectAltName such an error shows.
_NAMES_SHOWN = 5


def _unmatchableNames(entries: list[str]) -> str:
    """
    @param entries: a C{subjectAltName}'s entries, none of which can match
        a host, as C{"DNS:*.localhost"}.
    @return: the C{CertificateError} message saying so, naming them.
    """
    shown = ", ".join(entries[:_NAMES_SHOWN]) + (", ..." if len(entries) > _NAMES_SHOWN else "")
    return f"{_UNMATCHABLE_NAMES} (it has only {shown})"


def _hostPatterns(certificate: Any) -> tuple[list[Any], list[str]]:
    """
    The host names and IP addresses a certificate is for: its
    C{subjectAltName}'s DNS names and IP addresses (RFC 6125 §6.4; the
    common name is not used), as C{service_identity} patterns. A DNS entry
    that can match no host name (an IP address written as a DNS name, a
    malformed wildcard) is left out, as browsers do, rather than refusing
    a certificate whose other entries are valid.

    @param certificate: a pyOpenSSL C{X509}.
    @return: the patterns (none for a certificate without
        C{subjectAltName}), and the C{subjectAltName}'s entries left out,
        each as C{"DNS:*.localhost"} (those of other kinds too, such as
        C{"URI:..."}).
    """
    from cryptography import x509
    from service_identity import CertificateError
    from service_identity.hazmat import DNSPattern, IPAddressPattern

    try:
        names = certificate.to_cryptography().extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    patterns: list[Any] = []
    unmatchable: list[str] = []
    for name in names:
        if isinstance(name, x509.DNSName):
            try:
                patterns.append(DNSPattern.from_bytes(name.value.encode("utf-8")))
            except CertificateError:
                unmatchable.append(f"DNS:{name.value}")
        elif isinstance(name, x509.IPAddress):
            patterns.append(IPAddressPattern(name.value))
        elif isinstance(name, x509.UniformResourceIdentifier):
            unmatchable.append(f"URI:{name.value}")
        elif isinstance(name, x509.RFC822Name):
            unmatchable.append(f"email:{name.value}")
        else:
            unmatchable.append(type(name).__name__)
    return patterns, unmatchable


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


@dataclass(frozen=True)
class WebSocketURL:
    """
    A C{ws://} or C{wss://} URL, as it goes on the wire.

    @ivar secure: C{wss://}.
    @ivar host: the host to connect to: a DNS name in its ASCII form (IDNA
        A-labels, e.g. C{xn--bcher-kva.example} for C{bücher.example}), or an
        IP address (an IPv6 address without brackets). It is also the name
        sent as TLS SNI and checked against the server's certificate.
    @ivar port: the port, 80 or 443 if the URL gives none.
    @ivar hostHeader: the C{Host} header value: the host, with the port
        unless it is the scheme's default.
    @ivar target: the request target: the path and query, non-ASCII
        characters percent-encoded as UTF-8 (RFC 3987 §3.1), C{/} if empty.
    """

    secure: bool
    host: str
    port: int
    hostHeader: str
    target: str


# RFC 3986 §3.2.2: an ASCII reg-name is unreserved characters, sub-delims
# and percent-encodings; "_" is common in private names, so it is let through.
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=%]+")


def parseURL(url: str) -> WebSocketURL:
    """
    Split a C{ws://} or C{wss://} URL (RFC 6455 §3), which may be an IRI
    (RFC 3987): a non-ASCII host name becomes its IDNA A-label (UTS #46
    mapping, so C{BÜCHER.example} is C{xn--bcher-kva.example}), a non-ASCII
    or space character in the path or query is percent-encoded as UTF-8, and
    percent-encodings already there are kept.

    @param url: e.g. C{"ws://bücher.example:8080/café?q=ü"}.
    @return: a L{WebSocketURL}.
    @raise ValueError: the URL is not a WebSocket URL: another scheme, a
        fragment, user information, no host, a host that is not a valid
        name (IDNA 2008) or address, or a port out of range.
    """
    import hyperlink
    import idna
    from twisted.internet.abstract import isIPAddress, isIPv6Address

    try:
        parts = hyperlink.URL.from_text(url)
    except (hyperlink.URLParseError, ValueError) as exc:
        raise ValueError(f"invalid websocket url {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a websocket url (scheme must be ws or wss): {url!r}")
    if parts.fragment or "#" in url:
        raise ValueError(f"a websocket url has no fragment: {url!r}")
    if parts.userinfo:
        raise ValueError(f"a websocket url has no user information: {url!r}")
    host = parts.host
    if not host:
        raise ValueError(f"websocket url has no host: {url!r}")
    secure = scheme == "wss"
    default = 443 if secure else 80
    port = parts.port if parts.port is not None else default
    if not 0 < port < 65536:
        raise ValueError(f"websocket url port out of range: {url!r}")
    if isIPv6Address(host):
        shown = f"[{host}]"
    elif isIPAddress(host) or (host.isascii() and _REG_NAME.fullmatch(host)):
        labels = host.removesuffix(".").split(".")
        if len(host) > 253 or not all(0 < len(label) < 64 for label in labels):
            raise ValueError(f"invalid host {host!r} in websocket url: empty or too long label")
        shown = host
    else:
        try:
            host = shown = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"invalid host {parts.host!r} in websocket url: {exc}") from None
    hostHeader = shown if port == default else f"{shown}:{port}"
    # Encoded in a URL of its own, with an ASCII placeholder host (an IPv6
    # host is no IDNA input), then cut after the authority.
    prefix = "ws://h"
    uri = hyperlink.URL(scheme="ws", host="h", path=parts.path, query=parts.query).to_uri().to_text()
    target = uri[len(prefix):] or "/"
    return WebSocketURL(secure, host, port, hostHeader, target)


_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _checkHeaders(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """
    @param headers: (name, value) pairs, or a mapping of names to values.
    @return: C{headers} as a tuple of pairs.
    @raise ValueError: a header name is not a token, or a value would break
        the request head (CR, LF or NUL) or can't be sent (a character
        outside Latin-1; RFC 9110 §5.5).
    @raise TypeError: an item of C{headers} is not a (name, value) pair.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    checked = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise TypeError(
                f"headers must be (name, value) pairs or a mapping of names to values, not {item!r}"
            ) from None
        if not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if any(c in value for c in "\r\n\x00"):
            raise ValueError(f"header {name} has a line break or NUL in its value: {value!r}")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {name} has a character outside latin-1 in its value: {value!r}") from None
        checked.append((name, value))
    return tuple(checked)
