# -*- test-case-name: tests.test_proxy -*-
"""
WebSocket connections through HTTP proxies.

L{HTTPTunnelEndpoint} is an L{IStreamClientEndpoint} that reaches a host and
port through an HTTP proxy: it connects to the proxy, asks it for a tunnel
with C{CONNECT} (RFC 9110 §9.3.6; RFC 6455 §4.1 asks clients behind a proxy
to do this for both C{ws://} and C{wss://}), and hands the tunnel to the
factory's protocol. For C{wss://}, TLS runs over the tunnel, end to end with
the origin server, whose certificate and host name are checked as without a
proxy (L{wsproto_tw.client.connect} wraps this endpoint with
L{wrapClientTLS <twisted.internet.endpoints.wrapClientTLS>}).

L{wsproto_tw.client.connect} picks the proxy with L{proxyFor}: its
C{proxy=} argument, else the environment (C{https_proxy} for C{wss://},
C{http_proxy} for C{ws://}, C{no_proxy}).

The endpoint's C{connect} fails with L{ProxyAuthenticationFailed} when the
proxy answers C{407} (or C{401}), with L{ProxyRefused} (carrying the proxy's C{status})
for any other non-2xx answer, with L{ProxyError} when the proxy closes
the connection or answers with something other than HTTP, and with
L{ProxyUnreachable} (naming the proxy, carrying the endpoint's error) when
the proxy itself can't be reached.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from urllib.request import proxy_bypass_environment

from twisted.internet.address import HostnameAddress
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

from wsproto_tw.core.tunnel import (
    ProxyAuthenticationFailed,
    ProxyError,
    ProxyRefused,
    TunnelOpening,
    basic_credentials,
    build_connect,
)

__all__ = [
    "HTTPTunnelEndpoint",
    "ProxyAuthenticationFailed",
    "ProxyError",
    "ProxyRefused",
    "ProxyURL",
    "ProxyUnreachable",
    "parseProxyURL",
    "proxyFor",
]


class ProxyUnreachable(ProxyError):
    """
    The connection to the HTTP proxy itself failed (refused, timed out,
    name not resolved): the origin server was never asked for.

    @ivar proxy: the proxy, as C{host:port}.
    @ivar reason: the proxy endpoint's exception, e.g. a
        L{ConnectionRefusedError <twisted.internet.error.ConnectionRefusedError>}.
    """

    def __init__(self, proxy: str, reason: BaseException) -> None:
        super().__init__(f"can't reach the proxy {proxy}: {reason}")
        self.proxy = proxy
        self.reason = reason


@dataclass(frozen=True)
class ProxyURL:
    """
    An HTTP proxy.

    @ivar host: its host name (IDNA A-labels) or IP address.
    @ivar port: its port.
    @ivar authorization: the C{Proxy-Authorization} value (Basic) when the
        URL carried a user name, else L{None}.
    """

    host: str
    port: int
    authorization: str | None = None

    def __repr__(self) -> str:
        # Never show the credentials.
        shown = "<credentials>" if self.authorization else None
        return f"ProxyURL(host={self.host!r}, port={self.port!r}, authorization={shown})"


def parseProxyURL(url: str) -> ProxyURL:
    """
    Read an HTTP proxy URL: C{http://[user[:password]@]host[:port]}. The
    scheme may be left out (C{proxy.example:3128}), as is common in
    C{http_proxy}; the port is 80 if absent. The user name and password are
    percent-decoded, then sent with Basic authentication.

    @raise ValueError: the URL is not an C{http://} proxy URL, or its port
        is not 1 to 65535.
    """
    import hyperlink

    from wsproto_tw.client import parseURL

    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = hyperlink.URL.from_text(text)
    except (hyperlink.URLParseError, ValueError) as exc:
        raise ValueError(f"invalid proxy url: {exc}") from None
    if parts.scheme.lower() != "http":
        raise ValueError(f"only http:// proxies are supported, not {parts.scheme}://")
    if parts.path not in ((), ("",)) or parts.query or parts.fragment:
        raise ValueError("a proxy url has no path, query or fragment")
    # The host and port follow the same rules as a ws:// URL's.
    if not parts.host:
        raise ValueError("a proxy url needs a host")
    where = parseURL(f"ws://[{parts.host}]/" if ":" in parts.host else f"ws://{parts.host}/")
    port = parts.port if parts.port is not None else 80
    if not 0 < port < 65536:
        raise ValueError(f"proxy url port out of range: {port}")
    authorization = None
    if parts.userinfo:
        user, _, password = parts.userinfo.partition(":")
        authorization = basic_credentials(unquote(user), unquote(password))
    return ProxyURL(where.host, port, authorization)


def proxyFor(
    secure: bool,
    host: str,
    port: int,
    proxy: str | bool | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProxyURL | None:
    """
    Choose the proxy for a connection.

    @param secure: C{wss://}.
    @param host: the origin's host (ASCII form) and C{port}.
    @param proxy: a proxy URL to use (for any host); C{False} for none;
        L{None} (or C{True}) to follow the environment: C{https_proxy} (C{wss://}) or C{http_proxy}
        (C{ws://}), each also in upper case, the lower-case name first;
        C{HTTP_PROXY} is ignored when C{REQUEST_METHOD} is set (a CGI
        script, where a request's C{Proxy} header lands there); an empty
        value means none. C{no_proxy} (or C{NO_PROXY}) lists host names,
        domain suffixes (C{.example.com} or C{example.com}), C{host:port}
        pairs, or C{*} for every host, that are reached directly; so are
        loopback hosts (C{localhost}, C{127.0.0.0/8}, C{::1}), as a proxy
        can't reach our own machine's loopback.
    @param environ: the environment; C{os.environ} by default.
    @return: the proxy, or L{None} for a direct connection.
    @raise ValueError: the proxy URL is invalid.
    """
    if proxy is False:
        return None
    if proxy is True:
        proxy = None
    if proxy is not None:
        return parseProxyURL(proxy)
    environ = os.environ if environ is None else environ
    name = "https_proxy" if secure else "http_proxy"
    value = environ.get(name)
    if value is None and not (name == "http_proxy" and "REQUEST_METHOD" in environ):
        value = environ.get(name.upper())
    if not value or _isLoopback(host):
        return None
    noProxy = environ.get("no_proxy", environ.get("NO_PROXY", ""))
    if noProxy:
        shown = f"[{host}]" if ":" in host else host
        if proxy_bypass_environment(f"{shown}:{port}", {"no": noProxy}):
            return None
    return parseProxyURL(value)


def _isLoopback(host: str) -> bool:
    """
    @return: whether C{host} names this machine's loopback interface.
    """
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@implementer(IStreamClientEndpoint)
class HTTPTunnelEndpoint:
    """
    Reaches C{host:port} through an HTTP proxy's C{CONNECT} tunnel.

    @ivar proxyEndpoint: how to reach the proxy (e.g. a L{HostnameEndpoint
        <twisted.internet.endpoints.HostnameEndpoint>}).
    @ivar host: the origin's host, in ASCII (IDNA A-labels), or an IP
        address.
    @ivar port: the origin's port.
    @ivar authorization: the C{Proxy-Authorization} value to send, if any.
    @ivar proxyName: how errors name the proxy (C{host:port}); by default
        the proxy endpoint's C{repr}.
    """

    def __init__(
        self,
        proxyEndpoint: IStreamClientEndpoint,
        host: str,
        port: int,
        authorization: str | None = None,
        proxyName: str | None = None,
    ) -> None:
        self.proxyEndpoint = proxyEndpoint
        self.proxyName = proxyName if proxyName is not None else repr(proxyEndpoint)
        self.host = host
        self.port = port
        self.authorization = authorization
        # What can't be sent fails here, not at connect time.
        self._request = build_connect(host, port, authorization)

    def connect(self, protocolFactory: Any) -> Deferred:
        """
        Connect to the proxy, open the tunnel, and connect a protocol from
        C{protocolFactory} to it.

        @return: a L{Deferred} firing with that protocol once the tunnel is
            open, or failing with the proxy endpoint's error or a
            L{ProxyError}; cancelling it drops the connection to the proxy.
        """
        tunnel = _Tunnel(self, protocolFactory)
        tunnel.start()
        return tunnel.result


class _Tunnel(Factory):
    """
    One tunnel's opening: the factory of the protocol that talks to the
    proxy, and the source of L{HTTPTunnelEndpoint.connect}'s result.
    """

    noisy = False

    def __init__(self, endpoint: HTTPTunnelEndpoint, protocolFactory: Any) -> None:
        self._endpoint = endpoint
        self._protocolFactory = protocolFactory
        self._connecting: Deferred | None = None
        self._protocol: _TunnelProtocol | None = None
        self.result: Deferred = Deferred(self._cancel)

    def start(self) -> None:
        self._connecting = self._endpoint.proxyEndpoint.connect(self)
        self._connecting.addErrback(self._unreachable)

    def _unreachable(self, failure: Failure) -> None:
        if failure.check(CancelledError):
            self._failed(failure)
        else:
            self._failed(Failure(ProxyUnreachable(self._endpoint.proxyName, failure.value)))

    def buildProtocol(self, addr: Any) -> _TunnelProtocol:
        endpoint = self._endpoint
        self._protocol = _TunnelProtocol(
            self,
            endpoint._request,
            TunnelOpening(endpoint.host, endpoint.port, endpoint.authorization is not None),
        )
        return self._protocol

    def opened(self, transport: Any) -> Protocol | None:
        """
        The tunnel is open: build the caller's protocol.

        @return: it, or L{None} if the factory built none.
        """
        address = HostnameAddress(self._endpoint.host.encode("ascii"), self._endpoint.port)
        try:
            protocol = self._protocolFactory.buildProtocol(address)
        except BaseException:
            self._failed(Failure())
            return None
        if protocol is None:
            self._failed(Failure(CancelledError("the factory built no protocol")))
        return protocol

    def connected(self, protocol: Protocol) -> None:
        if not self.result.called:
            self.result.callback(protocol)

    def _failed(self, failure: Failure) -> None:
        if not self.result.called:
            self.result.errback(failure)

    def _cancel(self, result: Deferred) -> None:
        # A CancelledError that says where the tunnel's opening was (an open
        # timeout's message names the proxy from it).
        name = self._endpoint.proxyName
        if self._protocol is not None and self._protocol.transport is not None:
            self._failed(Failure(CancelledError(f"the proxy {name} had not opened the tunnel")))
            self._protocol.transport.abortConnection()
        elif self._connecting is not None:
            self._failed(Failure(CancelledError(f"still connecting to the proxy {name}")))
            self._connecting.cancel()


class _TunnelProtocol(Protocol):
    """
    Talks to the proxy: sends C{CONNECT}, reads the answer; once the tunnel
    is open, passes everything on to the caller's protocol, which writes to
    the transport itself.
    """

    def __init__(self, tunnel: _Tunnel, request: bytes, opening: TunnelOpening) -> None:
        self._tunnel = tunnel
        self._request = request
        self._opening = opening
        self._wrapped: Protocol | None = None
        self._failed = False

    def connectionMade(self) -> None:
        self.transport.write(self._request)

    def dataReceived(self, data: bytes) -> None:
        if self._wrapped is not None:
            self._wrapped.dataReceived(data)
            return
        if self._failed:
            return
        try:
            opened = self._opening.receive_data(data)
        except ProxyError:
            self._fail(Failure())
            return
        if opened:
            self._open()

    def _open(self) -> None:
        wrapped = self._tunnel.opened(self.transport)
        if wrapped is None:
            self._failed = True
            self.transport.abortConnection()
            return
        self._wrapped = wrapped
        if IHalfCloseableProtocol.providedBy(wrapped):
            alsoProvides(self, IHalfCloseableProtocol)
        wrapped.makeConnection(self.transport)
        self._tunnel.connected(wrapped)
        trailing, self._opening.trailing = self._opening.trailing, b""
        if trailing:
            wrapped.dataReceived(trailing)

    def _fail(self, failure: Failure) -> None:
        self._failed = True
        self._tunnel._failed(failure)
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._wrapped is not None:
            self._wrapped.connectionLost(reason)
            return
        if not self._failed:
            try:
                self._opening.receive_eof()
            except ProxyError:
                self._failed = True
                self._tunnel._failed(Failure())

    # IHalfCloseableProtocol, declared once the tunnel's protocol has it.

    def readConnectionLost(self) -> None:
        IHalfCloseableProtocol(self._wrapped).readConnectionLost()

    def writeConnectionLost(self) -> None:
        IHalfCloseableProtocol(self._wrapped).writeConnectionLost()
