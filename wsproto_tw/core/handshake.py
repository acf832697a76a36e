# -*- test-case-name: tests.core.test_handshake,tests.core.test_targets -*-
"""
The opening handshake (RFC 6455 §4): HTTP/1.1 heads parsed from raw bytes,
validated, and answered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from wsproto_tw.core.accelerator import speedups
from wsproto_tw.core.errors import (
    ForbiddenOrigin,
    HandshakeFailed,
    HandshakeRejected,
    HeadTooLarge,
    MethodNotAllowed,
    NotWebSocketServer,
    PlainTextOnTLSPort,
    TLSOnPlainTextPort,
    UpgradeRequired,
)

# RFC 6455 §1.3
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 9110 §5.6.2: header names are tokens.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_TOKEN = re.compile(rb"[^!#$%&'*+\-.^_`|~0-9A-Za-z]")
# RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT; and what can still
# become one.
_HTTP_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_HTTP_VERSION_START = re.compile(rb"(?:H(?:T(?:T(?:P(?:/(?:[0-9](?:\.[0-9]?)?)?)?)?)?)?)?")
# What no request-target form has (RFC 9112 §3.2): a control character (or
# a space, which ends it), or a fragment (RFC 3986 §3.5).
_NOT_IN_TARGET = re.compile(rb"[\x00-\x1f\x7f#]")
# A well-formed request line, all of it: what _split_request_line checks
# part by part, in one match.
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f#]+) HTTP/([0-9])\.([0-9])")
# RFC 8446 §5.1: a TLS record starts with its type, 22 for a handshake, and
# a legacy version whose first byte is 3.
_TLS_HANDSHAKE = 0x16
_TLS_MAJOR = 0x03
# RFC 9112 §3.2.2: absolute-form, for the schemes a WebSocket server can be
# asked for (RFC 9110 §4.2, RFC 6455 §3): scheme "://" authority, then
# path-abempty and an optional query.
_ABSOLUTE_FORM = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?]*)([^?]*)(?:\?(.*))?", re.ASCII | re.DOTALL)
_TARGET_SCHEMES = frozenset(("http", "https", "ws", "wss"))
# RFC 3986 §3.2.2, §3.2.3: an IP literal or a reg-name (or IPv4 address),
# then an optional port.
_AUTHORITY = re.compile(
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::([0-9]*))?", re.ASCII
)
# RFC 9112 §3.2.3: authority-form, host ":" port, only for CONNECT.
_AUTHORITY_FORM = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+):[0-9]+", re.ASCII)
_STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?")
# RFC 8446 §5.1: the record types a TLS server answers with first: an alert
# (21) to a request that is not TLS, or a handshake (22).
_TLS_ANSWERS = (0x15, 0x16)
# RFC 4253 §4.2: an SSH server starts with its identification string.
_SSH_BANNER = b"SSH-"
# Characters of a foreign answer's first line quoted in an error.
_QUOTED = 60
# Header lines separated by CRLF, each a token, a colon, a value without CR,
# LF or NUL (RFC 9110 §5.5). This also rejects obsolete line folding (RFC
# 9112 §5.2).
_HEADER_LINES = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\x00]*\r\n)*[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\x00]*")
# Fields whose values are the same on many connections (every client of a
# kind sends the same ones): parsed heads share one string per value.
# Interned here, as are the other names every opening handshake looks up
# (_index interns them): a running server interns no new ones.
_SHARED_VALUES = frozenset(map(sys.intern, (
    "host", "upgrade", "connection", "origin", "user-agent", "sec-websocket-version",
    "sec-websocket-extensions", "sec-websocket-protocol", "pragma", "cache-control",
    "accept-encoding", "accept-language",
)))
_INTERNED_NAMES = frozenset(map(sys.intern, (
    "sec-websocket-key", "sec-websocket-accept", "cookie", "authorization", "x-forwarded-for",
    "x-forwarded-proto", "x-real-ip", "forwarded", "content-length", "content-type", "location",
    "server", "date", "set-cookie", "www-authenticate", "retry-after",
)))
# The (name, value) pairs of those fields, by their header line: heads
# share one pair per line too, and a line seen before is not parsed again.
# Bounded: lines up to _MAX_SHARED_LINE bytes, and past _MAX_SHARED_PAIRS
# lines new ones are parsed each time (at most 256 KiB of lines kept).
_SHARED_PAIRS: dict[bytes, tuple[tuple[str, str], str]] = {}  # line -> ((name, value), lower-case name)
_MAX_SHARED_PAIRS = 1024
_MAX_SHARED_LINE = 256
# The HTTP version nearly every request has, one tuple for all of them.
_HTTP_11 = (1, 1)
_FORBIDDEN_IN_VALUE_STR = re.compile(r"[\r\n\x00]")

STATUS_PHRASES = {
    101: "Switching Protocols",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    426: "Upgrade Required",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def compute_accept(key: str | bytes) -> str:
    """
    @return: the C{Sec-WebSocket-Accept} value for a C{Sec-WebSocket-Key}
        (RFC 6455 §4.2.2 item 5.4).
    """
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")


def split_tokens(value: str | None) -> list[str]:
    """
    Split a comma-separated header value (RFC 9110 §5.6.1), dropping empty
    elements and surrounding whitespace.
    """
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _lookup(headers: tuple[tuple[str, str], ...], key: str) -> str | None:
    # What _index(headers).get(key) would be, without the dict.
    found = None
    for name, value in headers:
        if name.lower() == key:
            found = value if found is None else f"{found}, {value}"
    return found


def _index(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    # RFC 9110 §5.3: repeated fields combine with ", ".
    index: dict[str, str] = {}
    for name, value in headers:
        key = sys.intern(name.lower())
        index[key] = f"{index[key]}, {value}" if key in index else value
    return index


class PeerSource:
    """
    What can tell a peer's address when asked: the transport layer gives
    one as the C{peer} of a L{ServerConnection
    <wsproto_tw.core.connection.ServerConnection>} (or of a
    L{HandshakeRequest}) in place of the address. The address is asked for
    (L{peer_address}, once) only when C{peer} is first read, and then takes
    the source's place: an idle connection whose address nobody reads keeps
    no address object of its own.
    """

    __slots__ = ()

    def peer_address(self) -> object:
        """
        @return: the peer's address, as the transport layer knows it.
        """
        raise NotImplementedError


def _resolving_peer(slot: Any) -> property:
    """
    A C{peer} attribute over the slot descriptor C{slot}: reading it turns
    a L{PeerSource} held there into the address, kept from then on.
    """

    def get(self: Any) -> object:
        peer = slot.__get__(self)
        if isinstance(peer, PeerSource):
            peer = peer.peer_address()
            slot.__set__(self, peer)
        return peer

    return property(get, slot.__set__, doc="the peer's address, or L{None}")


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """
    An opening handshake request, as the application sees it before it
    accepts or rejects.

    @ivar method: the request method, e.g. C{"GET"}.
    @ivar target: the request target as sent, e.g. C{"/chat?room=1"}, or
        C{"http://example.com/chat?room=1"} in absolute-form.
    @ivar path: the target's path, whichever its form: C{"/chat"} for both
        of those (see L{parse_target}).
    @ivar query: the target's query string, without C{?}.
    @ivar http_version: e.g. C{(1, 1)}.
    @ivar headers: (name, value) pairs in the order received.
    @ivar peer: the peer's address, when the transport layer knows it
        (given as a L{PeerSource}, it is asked for when first read).
    """

    # The index of the headers by lower-case name, for the handshake's many
    # lookups; None once the connection opened (L{_compact}): an open
    # connection looks through its few headers instead of keeping a dict.
    method: str
    target: str
    http_version: tuple[int, int]
    headers: tuple[tuple[str, str], ...]
    peer: object = None
    _index: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self._index:
            object.__setattr__(self, "_index", _index(self.headers))

    @property
    def path(self) -> str:
        target = self.target
        if target[:1] == "/":
            # Origin-form (RFC 9112 §3.2.1), what _target_parts makes of
            # it (with a fragment or without), at once: each log line
            # about the connection reads it.
            return target.partition("?")[0]
        return _target_parts(target)[0]

    @property
    def query(self) -> str:
        return _target_parts(self.target)[1]

    def get(self, name: str, default: str | None = None) -> str | None:
        """
        @return: the value of header C{name} (case-insensitive), repeated
            fields combined with C{", "}, or C{default}.
        """
        index = self._index
        if index is None:
            found = _lookup(self.headers, name.lower())
            return default if found is None else found
        return index.get(name.lower(), default)

    def tokens(self, name: str) -> list[str]:
        """
        @return: the comma-separated elements of header C{name}.
        """
        return split_tokens(self.get(name))

    def _compact(self) -> None:
        """
        Drop the header index once the handshake is over: an idle
        connection keeps its request (the API promises it) but not a dict
        of its headers. L{get} then looks through L{headers}.
        """
        object.__setattr__(self, "_index", None)

    @property
    def subprotocols(self) -> list[str]:
        """
        @return: the subprotocols the client offered, in its order.
        """
        return self.tokens("sec-websocket-protocol")

    @property
    def origin(self) -> str | None:
        return self.get("origin")

    @property
    def host(self) -> str | None:
        """
        The host (and port) the request is for: the authority of an
        absolute-form target, which takes the place of the C{Host} header
        (RFC 9112 §3.2.2), else the C{Host} header.
        """
        authority = _target_parts(self.target)[2]
        return authority if authority is not None else self.get("host")


# The slots' own descriptors, for _made_request.
_SET_FIELDS = tuple(
    HandshakeRequest.__dict__[name].__set__ for name in ("method", "target", "http_version", "headers", "peer", "_index")
)
# Read through a L{PeerSource} (the frozen dataclass's own __init__ and
# replace() go through the same property).
HandshakeRequest.peer = _resolving_peer(HandshakeRequest.peer)  # type: ignore[method-assign,assignment]


def _made_request(
    method: str, target: str, headers: tuple[tuple[str, str], ...], peer: object, index: dict[str, str]
) -> HandshakeRequest:
    """
    C{HandshakeRequest(method, target, (1, 1), headers, peer, index)},
    made without the frozen dataclass's C{__init__} (a call per field, and
    C{__post_init__}): each slot set once through its own descriptor.
    """
    request = object.__new__(HandshakeRequest)
    set_method, set_target, set_version, set_headers, set_peer, set_index = _SET_FIELDS
    set_method(request, method)
    set_target(request, target)
    set_version(request, _HTTP_11)
    set_headers(request, headers)
    set_peer(request, peer)
    set_index(request, index)
    return request


# Header names as received, decoded and interned, and their lower-case
# keys: every request sends the same few. Bounded, so that names a peer
# makes up are not kept past the first few hundred.
_NAMES: dict[bytes, tuple[str, str]] = {}
_MAX_NAMES = 256


def parse_head(data: bytes, max_headers: int) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """
    Split an HTTP/1.1 head (without its final CRLF CRLF) into its first line
    and its header fields.

    @raise HandshakeFailed: the head is malformed or has too many fields.
    """
    first, headers, _ = _parse_head(data, max_headers)
    return first, headers


def _parse_head(data: bytes, max_headers: int) -> tuple[bytes, tuple[tuple[str, str], ...], dict[str, str]]:
    """
    L{parse_head}, and the fields by lower-case name as L{_index} has them.
    """
    # Lines key _SHARED_PAIRS: they must be bytes, hashable.
    data = bytes(data)
    lines = data.split(b"\r\n")
    if len(lines) - 1 > max_headers:
        raise HeadTooLarge(f"more than {max_headers} header lines")
    # Every header line at once (one regular expression over the block,
    # not one per line); each then splits at its first colon, which ends
    # the name (a token has none).
    if len(lines) > 1 and _HEADER_LINES.fullmatch(data, len(lines[0]) + 2) is None:
        raise HandshakeFailed("malformed header line")
    intern = sys.intern
    headers = []
    index: dict[str, str] = {}
    names = _NAMES
    shared = _SHARED_PAIRS
    for line in lines[1:]:
        known_pair = shared.get(line)
        if known_pair is not None:
            pair, key = known_pair
        else:
            raw, _, rawValue = line.partition(b":")
            # Names are shared between requests, and so are the values that
            # are the same on every connection: idle connections hold less.
            known = names.get(raw)
            if known is None:
                name = intern(raw.decode("ascii"))
                key = intern(name.lower())
                if len(names) < _MAX_NAMES:
                    names[raw] = (name, key)
            else:
                name, key = known
            value = rawValue.strip(b" \t").decode("latin-1")
            if key in _SHARED_VALUES:
                pair = (name, intern(value))
                if len(line) <= _MAX_SHARED_LINE and len(shared) < _MAX_SHARED_PAIRS:
                    shared[line] = (pair, key)
            else:
                pair = (name, value)
        headers.append(pair)
        value = pair[1]
        # RFC 9110 §5.3: repeated fields combine with ", ".
        index[key] = f"{index[key]}, {value}" if key in index else value
    return lines[0], tuple(headers), index


def check_request_start(data: bytes | bytearray) -> None:
    """
    Fail at once on the first bytes of a connection that can never become a
    valid HTTP/1.1 request head, without waiting for the end of the head
    (or for a deadline, when that end never comes).

    These are: a TLS handshake (L{TLSOnPlainTextPort}); a line end that is
    not CRLF (RFC 9112 §2.2), anywhere in the head; and a request line that
    is going wrong (RFC 9112 §3): a method that is not a token, a control
    character or a fragment in the target, anything but C{HTTP/x.y} after
    it. One empty line before the request line is allowed (RFC 9112 §2.2).
    What comes after the end of the head, if it is there, is not looked at.

    This checks syntax only, whatever the method: the form of the target
    is checked by L{validate_request}.

    @param data: the bytes received so far, from the start of the request.
    @raise HandshakeFailed: with status 400 and what is wrong.
    """
    _check_request_start(data)


def check_tls_start(data: bytes | bytearray) -> None:
    """
    Fail at once on the first bytes of a connection to a TLS port that are
    a plain-text HTTP request (a client that meant C{ws://}) rather than a
    TLS record (RFC 8446 §5.1: a handshake record starts with content type
    22), so that it gets an answer it can show instead of a connection
    closed without a word.

    Only the first byte is looked at: an ASCII letter (an HTTP method, RFC
    9112 §3) or a CR or LF (an empty line before the request line, RFC 9112
    §2.2) is a plain request; anything else is left to TLS, which rejects
    what is not TLS its own way.

    @param data: the first bytes received on the connection, at least one.
    @raise PlainTextOnTLSPort: with status 400 and what to do instead.
    """
    first = data[:1]
    if first.isalpha() or first in (b"\r", b"\n"):
        raise PlainTextOnTLSPort(
            "plain-text http received on a tls port; connect with wss:// here, or with ws:// to a plain-text port"
        )


def _check_request_start(data: bytes | bytearray) -> tuple[bytes, bytes, int, int] | None:
    """
    L{check_request_start}.

    @return: the request line split by L{_split_request_line} once it is
        all there, else L{None}.
    """
    if len(data) < 2:
        # A TLS record's first byte, or an empty line's CR: the next byte
        # tells.
        if data in (b"\x16", b"\r"):
            return
    elif data[0] == _TLS_HANDSHAKE and data[1] == _TLS_MAJOR:
        raise TLSOnPlainTextPort(
            "tls handshake received on a plain-text port; connect with ws:// here, or with wss:// to a tls port"
        )
    start = 2 if data[:2] == b"\r\n" else 0
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        end = len(data)
    # RFC 9112 §2.2: every line ends with CRLF. A CR at the very end may
    # still be followed by its LF.
    crlf = data.count(b"\r\n", start, end)
    if data.count(b"\n", start, end) != crlf:
        raise HandshakeFailed("bare lf in request head; lines must end with crlf")
    if data.count(b"\r", start, end) - (end == len(data) and data[end - 1 : end] == b"\r") != crlf:
        raise HandshakeFailed("bare cr in request head")
    line_end = data.find(b"\r", start, end)
    if line_end >= 0:
        return _split_request_line(bytes(data[start:line_end]))
    # The request line so far: can it still become one?
    first_space = data.find(b" ", start, end)
    method_end = end if first_space < 0 else first_space
    if first_space == start or _NOT_TOKEN.search(data, start, method_end):
        raise HandshakeFailed("malformed request line")
    if first_space < 0:
        return
    second_space = data.find(b" ", first_space + 1, end)
    _check_target_characters(data, first_space + 1, end if second_space < 0 else second_space)
    if second_space < 0:
        return
    if second_space == first_space + 1 or not _HTTP_VERSION_START.fullmatch(data, second_space + 1, end):
        raise HandshakeFailed("malformed request line")


def _check_target_characters(data: bytes | bytearray, start: int, end: int) -> None:
    """
    @raise HandshakeFailed: C{data[start:end]}, a request target or its
        beginning, has a character that no request target has.
    """
    bad = _NOT_IN_TARGET.search(data, start, end)
    if bad is not None:
        if bad.group() == b"#":
            raise HandshakeFailed("request target has a fragment")
        raise HandshakeFailed("control character in request target")


def _split_request_line(line: bytes) -> tuple[bytes, bytes, int, int]:
    """
    Split a request line (RFC 9112 §3): C{method SP request-target SP
    HTTP-version}, one space each.

    @return: the method, the target, and the version's major and minor
        numbers.
    @raise HandshakeFailed: the line is malformed.
    """
    match = _REQUEST_LINE.fullmatch(line)
    if match is not None:
        method, target, major, minor = match.groups()
        return method, target, int(major), int(minor)
    parts = line.split(b" ")
    if len(parts) != 3:
        if (
            len(parts) > 3
            and all(parts)
            and _TOKEN.fullmatch(parts[0])
            and _HTTP_VERSION.fullmatch(parts[-1])
        ):
            raise HandshakeFailed("space in request target")
        raise HandshakeFailed("malformed request line")
    method, target, version = parts
    match = _HTTP_VERSION.fullmatch(version)
    if not target or match is None or not _TOKEN.fullmatch(method):
        raise HandshakeFailed("malformed request line")
    _check_target_characters(target, 0, len(target))
    return method, target, int(match.group(1)), int(match.group(2))


def parse_target(target: str) -> tuple[str, str, str | None]:
    """
    Split a request target in origin-form (C{/chat?room=1}) or absolute-form
    (C{http://example.com:8080/chat?room=1}), the two forms a C{GET} may
    have (RFC 9112 §3.2). The absolute-form's scheme may be C{http} or
    C{https} (RFC 9110 §4.2), or C{ws} or C{wss} (RFC 6455 §3), in any
    case; an empty path there is C{/}.

    @return: the path, the query (without C{?}; empty if none), and the
        authority of an absolute-form target (L{None} in origin-form).
    @raise HandshakeFailed: the target is in another form (C{*},
        C{host:port}), has a fragment, or its scheme or authority is not
        one a server can be asked for.
    """
    if "#" in target:
        raise HandshakeFailed("request target has a fragment")
    if target.startswith("/"):
        path, _, query = target.partition("?")
        return path, query, None
    if target == "*":
        raise HandshakeFailed("request target * is for options requests; a websocket handshake names a path")
    match = _ABSOLUTE_FORM.fullmatch(target)
    if match is None:
        if _AUTHORITY_FORM.fullmatch(target):
            raise HandshakeFailed("request target host:port is for connect requests; a websocket handshake names a path")
        raise HandshakeFailed("malformed request target; it must be a path or an absolute url")
    scheme, authority, path, query = match.groups()
    if scheme.lower() not in _TARGET_SCHEMES:
        raise HandshakeFailed(f"request target scheme {scheme} is not http, https, ws or wss")
    # RFC 9110 §4.2.4: user info in an http(s) URI is an error.
    if "@" in authority:
        raise HandshakeFailed("request target has user info")
    host = _AUTHORITY.fullmatch(authority)
    if host is None:
        raise HandshakeFailed("request target has a malformed host or port")
    if not host.group(1):
        raise HandshakeFailed("request target has no host")
    return path or "/", query or "", authority


def _target_parts(target: str) -> tuple[str, str, str | None]:
    """
    L{parse_target}, or for a target it refuses (which L{validate_request}
    refuses too), the part before C{?} and the part after it.
    """
    try:
        return parse_target(target)
    except HandshakeFailed:
        path, _, query = target.partition("?")
        return path, query, None


def parse_request(head: bytes, max_headers: int = 100, peer: object = None) -> HandshakeRequest:
    """
    Parse a request head (everything before the blank line). Its syntax is
    checked by L{check_request_start}, then field by field.

    @param peer: the peer's address, for L{HandshakeRequest.peer}.
    @raise HandshakeFailed: it is not a well-formed HTTP/1.1 request.
    """
    split = _check_request_start(head)
    if head.startswith(b"\r\n"):
        head = head[2:]  # RFC 9112 §2.2
    first, headers, index = _parse_head(head, max_headers)
    method, target, major, minor = split if split is not None else _split_request_line(first)
    version = (major, minor)
    return HandshakeRequest(
        method=sys.intern(method.decode("ascii")),
        target=target.decode("latin-1"),
        http_version=_HTTP_11 if version == _HTTP_11 else version,
        headers=headers,
        peer=peer,
        _index=index,
    )


# The usual opening request, parsed and checked in C (see read_request).
_parse_upgrade_request = None if speedups is None else speedups.parse_upgrade_request


def read_request(
    head: bytes, max_headers: int, peer: object, allowed_origins: frozenset[str] | None
) -> tuple[HandshakeRequest, str]:
    """
    L{parse_request} and then L{validate_request}: parse a request head
    (everything before the blank line) and check it against RFC 6455
    §4.2.1. The usual request is parsed and checked at once by the C
    accelerator when it is there; it leaves every other head, valid or
    not, to those two, which say what is wrong.

    @param peer: the peer's address, for L{HandshakeRequest.peer}.
    @param allowed_origins: the origins allowed, or L{None} for any.
    @return: the request and its C{Sec-WebSocket-Key}.
    @raise HandshakeFailed: with the status to answer.
    """
    if _parse_upgrade_request is not None:
        parsed = _parse_upgrade_request(head, max_headers, _SHARED_VALUES, _SHARED_PAIRS)
        if parsed is not None:
            method, target, headers, index, key = parsed
            if allowed_origins is not None:
                _check_origin(index.get("origin"), allowed_origins)
            return _made_request(method, target, headers, peer, index), key
    request = parse_request(head, max_headers, peer)
    return request, validate_request(request, allowed_origins)


def _check_origin(origin: str | None, allowed_origins: frozenset[str]) -> None:
    """
    @param origin: the request's C{Origin}, or L{None}.
    @raise ForbiddenOrigin: it is not one of C{allowed_origins}.
    """
    # Browsers always send Origin (RFC 6455 §4.1 item 8); a request
    # without one comes from a non-browser client, which the check can't
    # protect against anyway.
    if origin is not None and origin.strip().lower() not in allowed_origins:
        raise ForbiddenOrigin(f"origin {origin.strip()} is not allowed")


def validate_request(request: HandshakeRequest, allowed_origins: frozenset[str] | None) -> str:
    """
    Check a request against RFC 6455 §4.2.1.

    @param allowed_origins: the origins allowed, or L{None} for any.
    @return: the C{Sec-WebSocket-Key}.
    @raise HandshakeFailed: with the status to answer.
    """
    if request.method != "GET":
        raise MethodNotAllowed(f"method {request.method} is not allowed; a websocket handshake uses GET")
    if request.http_version < (1, 1):
        raise HandshakeFailed("a websocket handshake needs http/1.1 or later")
    if request.http_version[0] != 1:
        # RFC 6455 §4.1: HTTP/1.1 or higher *in HTTP/1.1 syntax*; a later
        # major version has its own framing (RFC 8441 for HTTP/2).
        major, minor = request.http_version
        raise HandshakeFailed(
            f"http/{major}.{minor} is not spoken in http/1.1 syntax; a websocket handshake needs http/1.1",
            status=HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
        )
    index = request._index
    if "transfer-encoding" in index or "content-length" in index:
        _check_no_body(request)
    parse_target(request.target)
    # The usual values (a single token) are checked whole; lists, token
    # by token.
    upgrade = index.get("upgrade")
    if (upgrade is None or upgrade.lower() != "websocket") and "websocket" not in [
        t.lower() for t in request.tokens("upgrade")
    ]:
        raise UpgradeRequired("this is a websocket endpoint; send an upgrade: websocket request")
    # RFC 9112 §3.2: exactly one Host; RFC 6455 §11.3.1, §11.3.5: at most
    # one key and one version line in a request.
    # _single(request, name), its usual case inline: a value without a
    # comma comes from one line.
    host = index.get("host")
    if host is not None and "," in host:
        host = _single(request, "host")
    if not host:
        raise HandshakeFailed("missing host header")
    connection = index.get("connection")
    if (connection is None or connection.lower() != "upgrade") and "upgrade" not in [
        t.lower() for t in request.tokens("connection")
    ]:
        raise HandshakeFailed("connection header must contain upgrade")
    key = index.get("sec-websocket-key")
    if key is not None and "," in key:
        key = _single(request, "sec-websocket-key")
    if key is None:
        raise HandshakeFailed("missing sec-websocket-key header")
    try:
        raw = base64.b64decode(key.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeFailed("sec-websocket-key must be 16 bytes in base64")
    version = index.get("sec-websocket-version")
    if version is not None and "," in version:
        version = _single(request, "sec-websocket-version")
    if version is None:
        raise HandshakeFailed("missing sec-websocket-version header")
    if version.strip() != "13":
        raise UpgradeRequired(f"unsupported websocket version {version.strip()}; this server speaks 13")
    if allowed_origins is not None:
        _check_origin(index.get("origin"), allowed_origins)
    return key.strip()


_CONTENT_LENGTH = re.compile(r"[0-9]+", re.ASCII)


def _check_no_body(request: HandshakeRequest) -> None:
    """
    Refuse an opening handshake that has a body (RFC 9112 §6.3): what
    follows the head is read as WebSocket frames, so a body would be taken
    for them.

    @raise HandshakeFailed: with 400, for a C{Transfer-Encoding}, a
        positive C{Content-Length}, or a malformed one.
    """
    if request.get("transfer-encoding") is not None:
        raise HandshakeFailed("request body not allowed on the opening handshake")
    length = request.get("content-length")
    if length is None:
        return
    # RFC 9110 §8.6: Content-Length = 1*DIGIT (repeated lines are
    # combined with ", ", and so refused too).
    if not _CONTENT_LENGTH.fullmatch(length.strip()):
        raise HandshakeFailed("malformed content-length header")
    if int(length.strip()) > 0:
        raise HandshakeFailed("request body not allowed on the opening handshake")


def validate_stream_request(request: HandshakeRequest, allowed_origins: frozenset[str] | None) -> None:
    """
    Check an extended CONNECT request that opens a WebSocket over an HTTP/2
    stream (RFC 8441 §4, §5): the same rules as L{validate_request} where
    they apply, without C{Upgrade}, C{Connection} and C{Sec-WebSocket-Key}
    (the stream itself is the upgrade). The caller has checked that
    C{:protocol} is C{websocket}; the C{:authority} pseudo-header comes as
    C{host}.

    @param allowed_origins: the origins allowed, or L{None} for any.
    @raise HandshakeFailed: with the status to answer.
    """
    if request.method != "CONNECT":
        raise HandshakeFailed(
            f"method {request.method} is not allowed; a websocket over http/2 opens with connect",
            405,
            (("Allow", "CONNECT"),),
        )
    parse_target(request.target)
    if not _single(request, "host"):
        raise HandshakeFailed("missing :authority")
    version = _single(request, "sec-websocket-version")
    if version is None:
        raise HandshakeFailed("missing sec-websocket-version header")
    if version.strip() != "13":
        # RFC 8441 §5: no Upgrade over HTTP/2; the version is what matters.
        raise HandshakeFailed(
            f"unsupported websocket version {version.strip()}; this server speaks 13",
            426,
            (("Sec-WebSocket-Version", "13"),),
        )
    if allowed_origins is not None:
        origin = request.get("origin")
        if origin is not None and origin.strip().lower() not in allowed_origins:
            raise ForbiddenOrigin(f"origin {origin.strip()} is not allowed")


def build_stream_request_fields(
    origin: str | None,
    subprotocols: tuple[str, ...] | list[str],
    extensions: str | None,
    extra_headers: list[tuple[str, str]] | tuple = (),
) -> list[tuple[str, str]]:
    """
    The fields of a client's extended CONNECT (RFC 8441 §4, §5) besides its
    pseudo-headers: C{sec-websocket-version} and what L{build_request}
    would send, names in lower case (RFC 9113 §8.2.1), without C{Upgrade},
    C{Connection} or C{Sec-WebSocket-Key}.

    @raise ValueError: a header would inject lines.
    """
    fields = [("sec-websocket-version", "13")]
    if origin is not None:
        fields.append(("origin", origin))
    if subprotocols:
        fields.append(("sec-websocket-protocol", ", ".join(subprotocols)))
    if extensions:
        fields.append(("sec-websocket-extensions", extensions))
    _header_lines(extra_headers)
    fields.extend((name.lower(), str(value)) for name, value in extra_headers)
    _header_lines(fields)
    return fields


def validate_stream_response(response: HandshakeResponse, subprotocols: tuple[str, ...] | list[str]) -> None:
    """
    Check the server's 2xx answer to an extended CONNECT (RFC 8441 §5): the
    subprotocol it chose must be one offered.

    @raise HandshakeRejected: it chose another.
    """
    chosen = response.subprotocol
    if chosen is not None and chosen not in subprotocols:
        raise HandshakeRejected(
            f"server chose subprotocol {chosen!r}, which was not offered", response.status, response.headers
        )


def build_stream_error_response(error: HandshakeFailed) -> bytes:
    """
    The answer to a refused WebSocket over an HTTP/2 stream (RFC 8441): as
    L{build_error_response}, without a C{Connection} field (RFC 9113
    §8.2.2: HTTP/2 has none; the stream ends after the body instead).
    """
    body = (" ".join(error.reason.splitlines()) + "\n").encode("utf-8")
    headers = [(name, value) for name, value in error.headers if name.lower() != "connection"]
    headers.append(("Content-Type", "text/plain; charset=utf-8"))
    headers.append(("Content-Length", str(len(body))))
    return build_response(error.status, headers, body)


def _single(request: HandshakeRequest, name: str) -> str | None:
    """
    @param name: a header name in lower case.
    @return: the value of header C{name}, or L{None}.
    @raise HandshakeFailed: the header appears on more than one line.
    """
    value = request.get(name)
    # Repeated lines are combined with ", ": only a value with a comma can
    # come from more than one.
    if (
        value is not None
        and "," in value
        and sum(1 for field_name, _ in request.headers if field_name.lower() == name) > 1
    ):
        raise HandshakeFailed(f"more than one {name} header")
    return value


def _status_phrase(status: int) -> str:
    """
    @return: the reason phrase for C{status} (RFC 9110 §15), or C{Unknown}.
    """
    phrase = STATUS_PHRASES.get(status)
    if phrase is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
    return phrase


def _header_lines(headers: list[tuple[str, str]] | tuple) -> list[str]:
    """
    @return: one C{"name: value"} line per header.
    @raise ValueError: a name is not a token or a value holds CR, LF or NUL,
        which would inject header lines.
    """
    lines = []
    for name, value in headers:
        # RFC 9110 §5.1: a field name is a token; §5.5: values hold no CR, LF
        # or NUL.
        if not _TOKEN.fullmatch(name.encode("latin-1", "replace")):
            raise ValueError(f"invalid header name {name!r}")
        value = str(value)
        if _FORBIDDEN_IN_VALUE_STR.search(value):
            raise ValueError(f"header {name} has a line break or NUL in its value")
        lines.append(f"{name}: {value}")
    return lines


def build_response(status: int, headers: list[tuple[str, str]] | tuple = (), body: bytes = b"") -> bytes:
    """
    Serialize an HTTP/1.1 response head and body.

    @raise ValueError: a header would inject lines.
    """
    lines = [f"HTTP/1.1 {status} {_status_phrase(status)}"]
    lines.extend(_header_lines(headers))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def build_error_response(error: HandshakeFailed) -> bytes:
    """
    The response for a failed handshake: its status, its headers, and its
    reason as a one-line plain-text body. The connection closes after it: a
    C{Connection} header of the error's (426's C{Upgrade}) gets C{close}
    added, else C{Connection: close} is added (one such field, RFC 9110
    §7.6.1).
    """
    body = (" ".join(error.reason.splitlines()) + "\n").encode("utf-8")
    headers = []
    closing = False
    for name, value in error.headers:
        if not closing and name.lower() == "connection":
            closing = True
            value = str(value)
            if "close" not in [t.lower() for t in split_tokens(value)]:
                value = f"{value}, close" if value.strip() else "close"
        headers.append((name, value))
    headers.append(("Content-Type", "text/plain; charset=utf-8"))
    headers.append(("Content-Length", str(len(body))))
    if not closing:
        headers.append(("Connection", "close"))
    return build_response(error.status, headers, body)


_ACCEPT_HEAD = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "


def build_accept_response(
    key: str,
    subprotocol: str | None,
    extensions: str | None,
    extra_headers: list[tuple[str, str]] | tuple = (),
) -> bytes:
    """
    The C{101 Switching Protocols} response (RFC 6455 §4.2.2 item 5).

    @raise ValueError: a header would inject lines.
    """
    if subprotocol is None and not extensions and not extra_headers:
        # The usual answer, built as bytes at once.
        accept = base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest())
        return _ACCEPT_HEAD + accept + b"\r\n\r\n"
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {compute_accept(key)}",
    ]
    optional = []
    if subprotocol is not None:
        optional.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions:
        optional.append(("Sec-WebSocket-Extensions", extensions))
    if optional or extra_headers:
        lines.extend(_header_lines([*optional, *extra_headers]))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def build_request(
    host: str,
    target: str,
    key: str,
    origin: str | None = None,
    subprotocols: tuple[str, ...] | list[str] = (),
    extensions: str | None = None,
    extra_headers: list[tuple[str, str]] | tuple = (),
) -> bytes:
    """
    The client's opening request (RFC 6455 §4.1).

    @raise ValueError: a header, the host or the target would inject lines.
    """
    for part in (host, target):
        if _FORBIDDEN_IN_VALUE_STR.search(part) or " " in part:
            raise ValueError(f"invalid host or request target {part!r}")
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    optional = []
    if origin is not None:
        optional.append(("Origin", origin))
    if subprotocols:
        optional.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if extensions:
        optional.append(("Sec-WebSocket-Extensions", extensions))
    lines.extend(_header_lines([*optional, *extra_headers]))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True, slots=True)
class HandshakeResponse:
    """
    The server's answer to the client's opening request.

    @ivar status: the HTTP status code.
    @ivar headers: (name, value) pairs in the order received.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    _index: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self._index:
            object.__setattr__(self, "_index", _index(self.headers))

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._index.get(name.lower(), default)

    def tokens(self, name: str) -> list[str]:
        return split_tokens(self._index.get(name.lower()))

    @property
    def subprotocol(self) -> str | None:
        value = self.get("sec-websocket-protocol")
        return value.strip() if value is not None else None


def parse_response(head: bytes, max_headers: int = 100) -> HandshakeResponse:
    """
    Parse a response head (everything before the blank line).

    @raise HandshakeRejected: it is not a well-formed HTTP response.
    """
    try:
        first, headers = parse_head(head, max_headers)
    except HandshakeFailed as exc:
        raise HandshakeRejected(f"malformed response: {exc.reason}") from None
    match = _STATUS_LINE.fullmatch(first)
    if match is None:
        raise HandshakeRejected("malformed response: not an http status line")
    return HandshakeResponse(
        status=int(match.group(3)),
        reason=(match.group(4) or b"").decode("latin-1"),
        headers=headers,
    )


def check_response_start(data: bytes | bytearray) -> None:
    """
    Fail at once on the first bytes of an answer that can never begin an
    HTTP status line (RFC 9112 §4), without waiting for the end of a head
    that may never come: the server speaks another protocol on this port.

    @param data: the bytes received so far, from the start of the answer.
    @raise NotWebSocketServer: saying what the bytes look like: TLS (the
        URL should be C{wss://}), an SSH server, or anything else that is
        not HTTP, quoting its first line.
    """
    if b"HTTP/".startswith(bytes(data[:5])):
        return  # RFC 9112 §4: a status line, or the start of one
    first = data[0]
    if first in _TLS_ANSWERS:
        if len(data) < 2:
            return  # the next byte tells
        if data[1] == _TLS_MAJOR:
            raise NotWebSocketServer(
                "the server answered in tls, not http: this port speaks tls; connect with wss://"
            )
    elif _SSH_BANNER.startswith(bytes(data[:4])):
        if len(data) < len(_SSH_BANNER):
            return
        raise NotWebSocketServer(f"not a websocket server but an ssh server ({_first_line(data)})")
    raise NotWebSocketServer(f"not a websocket server: its answer is not http ({_first_line(data)})")


def _first_line(data: bytes | bytearray) -> str:
    """
    @return: the first line of C{data}, or its first characters, printable.
    """
    shown = bytes(data[:_QUOTED])
    line, newline, _ = shown.partition(b"\n")
    text = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in line.rstrip(b"\r"))
    more = "" if newline or len(data) <= _QUOTED else "..."
    return f'"{text}{more}"'


def validate_response(response: HandshakeResponse, key: str, subprotocols: tuple[str, ...] | list[str]) -> None:
    """
    Check the server's C{101} answer (RFC 6455 §4.1, the client's checks).

    @raise HandshakeRejected: the answer is not a valid acceptance.
    """
    def reject(reason: str) -> HandshakeRejected:
        return HandshakeRejected(reason, response.status, response.headers)

    if response.status != 101:
        raise reject(response.reason or STATUS_PHRASES.get(response.status, "unexpected status"))
    if "websocket" not in [t.lower() for t in response.tokens("upgrade")]:
        raise reject("response lacks upgrade: websocket")
    if "upgrade" not in [t.lower() for t in response.tokens("connection")]:
        raise reject("response lacks connection: upgrade")
    if (response.get("sec-websocket-accept") or "").strip() != compute_accept(key):
        raise reject("wrong sec-websocket-accept")
    chosen = response.subprotocol
    if chosen is not None and chosen not in subprotocols:
        raise reject(f"server chose subprotocol {chosen!r}, which was not offered")


def split_url(url: str) -> tuple[bool, str, int, str, str]:
    """
    Split a C{ws://} or C{wss://} URL.

    @return: (secure, host, port, host header value, request target).
    @raise ValueError: the URL is not a WebSocket URL (RFC 6455 §3).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a websocket url (scheme must be ws or wss): {url!r}")
    if parts.fragment:
        raise ValueError(f"a websocket url has no fragment: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"websocket url has no host: {url!r}")
    secure = scheme == "wss"
    port = parts.port or (443 if secure else 80)
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == (443 if secure else 80) else f"{shown}:{port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return secure, host, port, host_header, target
