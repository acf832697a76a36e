# -*- test-case-name: tests.core.test_tunnel -*-
"""
Opening a tunnel through an HTTP proxy with C{CONNECT} (RFC 9110 §9.3.6),
sans I/O: the request's bytes, and the proxy's answer read from bytes.
"""

from __future__ import annotations

import base64
from http import HTTPStatus

from wsproto_tw.core.errors import HandshakeRejected, WebSocketError
from wsproto_tw.core.handshake import parse_response

#: The largest answer head accepted from a proxy, in bytes.
MAX_HEAD = 16 * 1024


class ProxyError(WebSocketError):
    """
    The HTTP proxy did not open the tunnel: it closed the connection or
    answered with something that is not HTTP.
    """


class ProxyRefused(ProxyError):
    """
    The HTTP proxy answered C{CONNECT} with a status other than 2xx.

    @ivar status: the proxy's HTTP status, e.g. 403 or 502.
    @ivar reason: its reason phrase.
    @ivar headers: its header fields, as (name, value) pairs.
    @ivar authority: the C{host:port} the tunnel was asked for.
    """

    def __init__(self, authority: str, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(authority, status, reason)
        self.authority = authority
        self.status = status
        self.reason = reason
        self.headers = headers

    def __str__(self) -> str:
        return f"proxy refused connect to {self.authority}: {self.status} {self.reason}".rstrip()


class ProxyAuthenticationFailed(ProxyRefused):
    """
    The HTTP proxy answered C{407 Proxy Authentication Required}: it wants
    credentials, or refused the ones sent (RFC 9110 §15.5.8). Some proxies
    (tinyproxy) answer C{CONNECT} with C{401} instead; as the tunnel is not
    open, that too can only be the proxy's, and means the same.

    @ivar sentCredentials: whether a C{Proxy-Authorization} was sent.
    """

    def __init__(
        self,
        authority: str,
        status: int,
        reason: str,
        headers: tuple[tuple[str, str], ...] = (),
        sentCredentials: bool = False,
    ) -> None:
        super().__init__(authority, status, reason, headers)
        self.sentCredentials = sentCredentials

    def __str__(self) -> str:
        why = "credentials refused" if self.sentCredentials else "proxy needs credentials"
        return f"proxy authentication failed ({why}): {self.status} {self.reason}".rstrip()


def authority(host: str, port: int) -> str:
    """
    @param host: a host name in ASCII, or an IP address (IPv6 without
        brackets).
    @return: the authority-form target C{host:port} (RFC 9112 §3.2.3).
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def basic_credentials(user: str, password: str) -> str:
    """
    @return: the C{Proxy-Authorization} value for HTTP Basic authentication
        (RFC 7617 §2), user and password encoded as UTF-8 (§2.1).
    @raise ValueError: the user name holds a colon.
    """
    if ":" in user:
        raise ValueError("a basic authentication user name has no colon")
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {token}"


def build_connect(host: str, port: int, authorization: str | None = None) -> bytes:
    """
    The C{CONNECT} request for a tunnel to C{host:port} (RFC 9110 §9.3.6:
    the target is in authority form, and so is C{Host}).

    @param authorization: the C{Proxy-Authorization} value, if any.
    @raise ValueError: the host or the credentials would break the request.
    """
    target = authority(host, port)
    for part in (target, authorization or ""):
        if any(c in part for c in "\r\n\x00") or not part.isascii():
            raise ValueError(f"invalid proxy tunnel target or credentials {part!r}")
    if " " in target:
        raise ValueError(f"invalid proxy tunnel target {target!r}")
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if authorization is not None:
        lines.append(f"Proxy-Authorization: {authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class TunnelOpening:
    """
    Reads the proxy's answer to C{CONNECT}.

    @ivar trailing: once open, the bytes that came after the answer's head:
        the first bytes from the far end of the tunnel.
    """

    def __init__(self, host: str, port: int, sentCredentials: bool = False) -> None:
        self._authority = authority(host, port)
        self._sentCredentials = sentCredentials
        self._buffer = b""
        self.trailing = b""

    def receive_data(self, data: bytes) -> bool:
        """
        @return: whether the tunnel is open (a 2xx answer arrived).
        @raise ProxyAuthenticationFailed: the answer is 407.
        @raise ProxyRefused: the answer is another non-2xx status.
        @raise ProxyError: the answer is not HTTP, or its head is longer than
            L{MAX_HEAD}.
        """
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ProxyError(f"proxy answer head longer than {MAX_HEAD} bytes")
            return False
        head, self.trailing = self._buffer[:end], self._buffer[end + 4 :]
        self._buffer = b""
        try:
            response = parse_response(head)
        except HandshakeRejected as exc:
            raise ProxyError(f"proxy answered connect with something other than http ({exc.reason})") from None
        status = response.status
        reason = response.reason or _phrase(status)
        # RFC 9110 §9.3.6: any 2xx means the tunnel is open.
        if 200 <= status < 300:
            return True
        # RFC 9110 §15.5.8; the tunnel is not open, so a 401 can only be
        # the proxy's own, which some proxies (tinyproxy) send instead.
        if status in (401, 407):
            raise ProxyAuthenticationFailed(
                self._authority, status, reason, response.headers, self._sentCredentials
            )
        raise ProxyRefused(self._authority, status, reason, response.headers)

    def receive_eof(self) -> None:
        """
        The proxy closed the connection before answering.

        @raise ProxyError: always.
        """
        raise ProxyError(f"proxy closed the connection before answering connect to {self._authority}")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
