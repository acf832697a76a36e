"""
Tests for L{wsproto_tw.core.handshake} and for the opening handshake as the
server and client connections run it (RFC 6455 §4).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import (
    CLIENT_KEY,
    clientFrame,
    fixedMask,
    requestBytes,
    responseBytes,
    serverFrame,
)
from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, ServerConnection, State
from wsproto_tw.core.errors import (
    ForbiddenOrigin,
    HandshakeFailed,
    HandshakeRejected,
    HandshakeTimeout,
    HeadTooLarge,
    InvalidState,
    MethodNotAllowed,
    UpgradeRequired,
)
from wsproto_tw.core.events import HandshakeFailure, Opened, Ping, RequestReceived, TextMessage
from wsproto_tw.core.handshake import (
    build_request,
    compute_accept,
    parse_request,
    parse_response,
    split_tokens,
    split_url,
)

SEED_KEY = "Uc9l9TMkWGbHFD2qnFHltg=="
SEED_ACCEPT = "1qVdfYHU9hPOl4JYYNXF623Gzn0="

PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    505: "HTTP Version Not Supported",
    408: "Request Timeout",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
}


def errorResponse(status: int, reason: str, headers: tuple = (), phrase: str | None = None) -> bytes:
    """
    The exact response a server writes when it refuses a handshake: with
    C{Connection: close} last, unless C{headers} has a C{Connection} field.
    """
    body = (reason + "\n").encode("utf-8")
    lines = [f"HTTP/1.1 {status} {phrase or PHRASES[status]}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
    ]
    if not any(name.lower() == "connection" for name, _ in headers):
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def rawRequest(*lines: str) -> bytes:
    """
    A request head made of C{lines}, CRLF-terminated, with the blank line.
    """
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


VALID_LINES = (
    "GET /chat HTTP/1.1",
    "Host: server.example.com",
    "Upgrade: websocket",
    "Connection: Upgrade",
    f"Sec-WebSocket-Key: {CLIENT_KEY}",
    "Sec-WebSocket-Version: 13",
)


# What a 426 answer carries: one Connection field, saying both.
UPGRADE_REQUIRED_HEADERS = [("Upgrade", "websocket"), ("Connection", "Upgrade, close"), ("Sec-WebSocket-Version", "13")]


def without(prefix: str) -> list[str]:
    return [line for line in VALID_LINES if not line.startswith(prefix)]


class HandshakeFunctionTests(SynchronousTestCase):
    """
    Tests for the pure functions of L{wsproto_tw.core.handshake}.
    """

    def test_computeAccept(self):
        """
        L{compute_accept} gives the RFC 6455 §1.3 answer and the seed
        example's answer, for str and bytes keys.
        """
        self.assertEqual(compute_accept(CLIENT_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(compute_accept(SEED_KEY.encode()), SEED_ACCEPT)

    def test_splitTokens(self):
        """
        L{split_tokens} splits on commas, strips whitespace and drops empty
        elements.
        """
        self.assertEqual(split_tokens(" keep-alive ,, Upgrade,"), ["keep-alive", "Upgrade"])
        self.assertEqual(split_tokens(None), [])
        self.assertEqual(split_tokens(""), [])

    def test_parseRequest(self):
        """
        L{parse_request} keeps the method, target, version and headers in
        order, and splits path and query.
        """
        request = parse_request(b"GET /chat?room=1&x=2 HTTP/1.1\r\nHost: a\r\nX-Thing:  v  ")
        self.assertEqual(request.method, "GET")
        self.assertEqual(request.target, "/chat?room=1&x=2")
        self.assertEqual(request.path, "/chat")
        self.assertEqual(request.query, "room=1&x=2")
        self.assertEqual(request.http_version, (1, 1))
        self.assertEqual(request.headers, (("Host", "a"), ("X-Thing", "v")))
        self.assertEqual(request.get("x-thing"), "v")
        self.assertEqual(request.host, "a")
        self.assertIsNone(request.origin)
        self.assertEqual(request.get("missing", "d"), "d")

    def test_parseRequestObsFold(self):
        """
        A folded header line (obsolete line folding) is malformed.
        """
        exc = self.assertRaises(HandshakeFailed, parse_request, b"GET / HTTP/1.1\r\nX-A: 1\r\n  2")
        self.assertEqual(exc.reason, "malformed header line")

    def test_parseRequestSpaceBeforeColon(self):
        """
        Whitespace between a header name and its colon is malformed
        (RFC 9112 §5.1).
        """
        exc = self.assertRaises(HandshakeFailed, parse_request, b"GET / HTTP/1.1\r\nHost : a")
        self.assertEqual(exc.reason, "malformed header line")

    def test_parseRequestControlCharacters(self):
        """
        A header value holding a bare CR, a bare LF or a NUL is malformed
        (RFC 9110 §5.5, RFC 9112 §2.2), so it can't smuggle a second header.
        """
        cases = [
            (b"a\nX-Injected: 1", "bare lf in request head; lines must end with crlf"),
            (b"a\rb", "bare cr in request head"),
            (b"a\x00b", "malformed header line"),
        ]
        for value, reason in cases:
            exc = self.assertRaises(HandshakeFailed, parse_request, b"GET / HTTP/1.1\r\nX-A: " + value)
            self.assertEqual(exc.reason, reason, value)

    def test_parseResponse(self):
        """
        L{parse_response} reads the status, the reason phrase and the
        headers; a status line without a phrase has an empty reason.
        """
        response = parse_response(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket")
        self.assertEqual((response.status, response.reason), (101, "Switching Protocols"))
        self.assertEqual(response.headers, (("Upgrade", "websocket"),))
        self.assertEqual(parse_response(b"HTTP/1.1 404").reason, "")

    def test_buildRequest(self):
        """
        L{build_request} writes the RFC 6455 §4.1 request.
        """
        self.assertEqual(
            build_request("h:8080", "/", CLIENT_KEY, extensions="permessage-deflate"),
            rawRequest(
                "GET / HTTP/1.1", "Host: h:8080", "Upgrade: websocket", "Connection: Upgrade",
                f"Sec-WebSocket-Key: {CLIENT_KEY}", "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Extensions: permessage-deflate",
            ),
        )

    def test_buildRequestRefusesLineBreaks(self):
        """
        L{build_request} refuses a header name or value, target or host
        holding CR or LF, which would inject header lines.
        """
        self.assertRaises(ValueError, build_request, "h", "/", CLIENT_KEY, extra_headers=[("X", "a\r\nY: b")])
        self.assertRaises(ValueError, build_request, "h", "/", CLIENT_KEY, extra_headers=[("X\n", "a")])
        self.assertRaises(ValueError, build_request, "h", "/ HTTP/1.1\r\nX: y", CLIENT_KEY)
        self.assertRaises(ValueError, build_request, "h\r\n", "/", CLIENT_KEY)
        self.assertRaises(ValueError, build_request, "h", "/", CLIENT_KEY, origin="o\n")

    def test_splitUrl(self):
        """
        L{split_url} gives the security, host, port, Host header and target
        of a WebSocket URL, with default ports left out of the Host header.
        """
        self.assertEqual(split_url("ws://example.com"), (False, "example.com", 80, "example.com", "/"))
        self.assertEqual(
            split_url("wss://Example.com:8443/a/b?c=d"),
            (True, "example.com", 8443, "example.com:8443", "/a/b?c=d"),
        )
        self.assertEqual(split_url("ws://[::1]:9000/"), (False, "::1", 9000, "[::1]:9000", "/"))
        self.assertEqual(split_url("wss://h:443/"), (True, "h", 443, "h", "/"))
        for url in ("http://h/", "ws://h/#frag", "ws:///path"):
            self.assertRaises(ValueError, split_url, url)


class ServerHandshakeTests(SynchronousTestCase):
    """
    The opening handshake on L{ServerConnection}.
    """

    def receive(self, data: bytes, config: Config | None = None, now: float = 0.0) -> tuple[ServerConnection, list]:
        server = ServerConnection(config or Config(), now=now)
        server.receive_data(data, now=now)
        return server, list(server.events())

    def assertRefused(self, data: bytes, status: int, reason: str, headers=(), kind=HandshakeFailed, config=None):
        """
        The server answers C{data} with the exact error response, reports a
        L{HandshakeFailure} and wants the transport closed.
        """
        server, events = self.receive(data, config)
        self.assertEqual(len(events), 1, events)
        self.assertIsInstance(events[0], HandshakeFailure)
        error = events[0].error
        self.assertIsInstance(error, kind)
        self.assertEqual((error.status, error.reason), (status, reason))
        self.assertEqual(server.data_to_send(), errorResponse(status, reason, headers))
        self.assertTrue(server.wants_transport_closed)
        self.assertIs(server.state, State.CLOSED)
        self.assertIsNone(server.next_deadline())
        return server

    def test_seedExample(self):
        """
        The seed example: the accept value is derived from the key, and of
        C{v10.stomp, v11.stomp} the configured C{v10.stomp} is chosen.
        """
        data = requestBytes(key=SEED_KEY, headers=[("Sec-WebSocket-Protocol", "v10.stomp, v11.stomp")])
        server, events = self.receive(data, Config(subprotocols=("v10.stomp",)))
        self.assertEqual([type(e) for e in events], [RequestReceived])
        self.assertEqual(events[0].subprotocol, "v10.stomp")
        self.assertEqual(events[0].request.subprotocols, ["v10.stomp", "v11.stomp"])
        self.assertEqual(server.data_to_send(), b"")
        server.accept(now=0.0)
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + SEED_ACCEPT.encode() + b"\r\n"
            b"Sec-WebSocket-Protocol: v10.stomp\r\n"
            b"\r\n",
        )
        self.assertIs(server.state, State.OPEN)
        self.assertEqual(server.subprotocol, "v10.stomp")

    def test_serverPreferenceOrder(self):
        """
        The server's order of preference decides, not the client's.
        """
        data = requestBytes(headers=[("Sec-WebSocket-Protocol", "b, a")])
        _, events = self.receive(data, Config(subprotocols=("a", "b")))
        self.assertEqual(events[0].subprotocol, "a")

    def test_noCommonSubprotocol(self):
        """
        Without a common subprotocol, the response has no
        C{Sec-WebSocket-Protocol} header.
        """
        data = requestBytes(key=SEED_KEY, headers=[("Sec-WebSocket-Protocol", "v11.stomp")])
        server, events = self.receive(data, Config(subprotocols=("v10.stomp",)))
        self.assertIsNone(events[0].subprotocol)
        server.accept(now=0.0)
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + SEED_ACCEPT.encode() + b"\r\n\r\n",
        )
        self.assertIsNone(server.subprotocol)

    def test_requireSubprotocol(self):
        """
        With C{require_subprotocol}, a request offering none of the
        configured subprotocols is answered with 400.
        """
        config = Config(subprotocols=("v10.stomp", "v12.stomp"), require_subprotocol=True)
        self.assertRefused(
            requestBytes(headers=[("Sec-WebSocket-Protocol", "mqtt")]), 400,
            "no common subprotocol; this server speaks v10.stomp, v12.stomp", config=config,
        )
        self.assertRefused(
            requestBytes(), 400, "no common subprotocol; this server speaks v10.stomp, v12.stomp", config=config
        )

    def test_acceptChoosesSubprotocol(self):
        """
        C{accept(subprotocol=...)} overrides the configured choice with
        another offered subprotocol, or with none.
        """
        data = requestBytes(headers=[("Sec-WebSocket-Protocol", "a, b")])
        server, _ = self.receive(data, Config(subprotocols=("a",)))
        server.accept(subprotocol="b", extra_headers=[("X-Served-By", "test")], now=0.0)
        response = server.data_to_send()
        self.assertTrue(response.endswith(b"Sec-WebSocket-Protocol: b\r\nX-Served-By: test\r\n\r\n"), response)
        server, _ = self.receive(data, Config(subprotocols=("a",)))
        server.accept(subprotocol=None, now=0.0)
        self.assertNotIn(b"Sec-WebSocket-Protocol", server.data_to_send())
        self.assertIsNone(server.subprotocol)

    def test_acceptUnofferedSubprotocol(self):
        """
        C{accept()} with a subprotocol the client did not offer raises
        L{ValueError} and leaves the handshake pending.
        """
        server, _ = self.receive(requestBytes(headers=[("Sec-WebSocket-Protocol", "a")]))
        self.assertRaises(ValueError, server.accept, subprotocol="b", now=0.0)
        self.assertIs(server.state, State.CONNECTING)
        self.assertEqual(server.data_to_send(), b"")

    def test_requestReceivedFields(self):
        """
        L{RequestReceived} carries the parsed request.
        """
        _, events = self.receive(requestBytes(target="/chat?room=7", headers=[("Origin", "http://example.com")]))
        request = events[0].request
        self.assertEqual((request.method, request.path, request.query), ("GET", "/chat", "room=7"))
        self.assertEqual(request.origin, "http://example.com")
        self.assertEqual(request.host, "server.example.com")
        self.assertEqual(request.headers[0], ("Host", "server.example.com"))

    def test_caseInsensitiveHeaders(self):
        """
        Header names and the C{websocket}/C{upgrade} tokens match
        case-insensitively.
        """
        data = rawRequest(
            "GET / HTTP/1.1", "host: a", "UPGRADE: WebSocket", "connection: UPGRADE",
            f"sec-websocket-key: {CLIENT_KEY}", "SEC-WEBSOCKET-VERSION: 13",
        )
        server, events = self.receive(data)
        self.assertEqual([type(e) for e in events], [RequestReceived])
        server.accept(now=0.0)
        self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", server.data_to_send())

    def test_connectionKeepAliveUpgrade(self):
        """
        C{Connection: keep-alive, Upgrade} (as Firefox sends it) is accepted.
        """
        data = rawRequest(*without("Connection"), "Connection: keep-alive, Upgrade")
        _, events = self.receive(data)
        self.assertEqual([type(e) for e in events], [RequestReceived])

    def test_repeatedHeadersCombined(self):
        """
        Repeated header fields are combined in order, as a comma-separated
        list.
        """
        data = rawRequest(
            *without("Connection"), "Connection: keep-alive", "Connection: Upgrade",
            "Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b, c",
        )
        _, events = self.receive(data)
        self.assertEqual([type(e) for e in events], [RequestReceived])
        request = events[0].request
        self.assertEqual(request.get("connection"), "keep-alive, Upgrade")
        self.assertEqual(request.subprotocols, ["a", "b", "c"])

    def test_malformedRequestLine(self):
        """
        A request line that is not C{METHOD target HTTP/x.y} is answered with
        400.
        """
        for line in ("GET /chat", "GET  /chat HTTP/1.1", "GET /chat HTTP/1.1 extra", "\x00 / HTTP/1.1"):
            self.assertRefused(rawRequest(line, *VALID_LINES[1:]), 400, "malformed request line")

    def test_malformedHeaderLine(self):
        """
        A header line without a colon, or with a bad name, is answered with
        400.
        """
        for line in ("NoColon", ": empty-name", "Bad Name: x"):
            self.assertRefused(rawRequest(*VALID_LINES, line), 400, "malformed header line")
        self.assertRefused(
            rawRequest(*VALID_LINES, "X-A: a\nX-B: b"), 400, "bare lf in request head; lines must end with crlf"
        )

    def test_missingHost(self):
        """
        A request without C{Host} is answered with 400.
        """
        self.assertRefused(rawRequest(*without("Host")), 400, "missing host header")

    def test_duplicateHost(self):
        """
        Two C{Host} lines are answered with 400 (RFC 9112 §3.2), whatever
        their values.
        """
        for second in ("Host: other.example.com", "Host: server.example.com", "Host: "):
            self.assertRefused(rawRequest(*VALID_LINES, second), 400, "more than one host header")

    def test_duplicateKey(self):
        """
        Two C{Sec-WebSocket-Key} lines are answered with 400 (RFC 6455
        §11.3.1), even when they are the same.
        """
        self.assertRefused(
            rawRequest(*VALID_LINES, f"Sec-WebSocket-Key: {CLIENT_KEY}"), 400,
            "more than one sec-websocket-key header",
        )

    def test_duplicateVersion(self):
        """
        Two C{Sec-WebSocket-Version} lines are answered with 400 (RFC 6455
        §11.3.5), even when both say 13.
        """
        self.assertRefused(
            rawRequest(*VALID_LINES, "Sec-WebSocket-Version: 13"), 400,
            "more than one sec-websocket-version header",
        )

    def test_listInOneVersionLine(self):
        """
        A list of versions on one line is not taken for repeated lines: it
        is answered as an unsupported version, 426.
        """
        self.assertRefused(
            rawRequest(*without("Sec-WebSocket-Version"), "Sec-WebSocket-Version: 13, 8"), 426,
            "unsupported websocket version 13, 8; this server speaks 13",
            headers=UPGRADE_REQUIRED_HEADERS, kind=UpgradeRequired,
        )

    def test_badKeyLength(self):
        """
        A key that is not 16 bytes in base64, or not base64 at all, is
        answered with 400.
        """
        for key in ("AAAA", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZSEh", "!!!!!!!!!!!!!!!!!!!!!!==", "\u00e9"):
            data = rawRequest(*without("Sec-WebSocket-Key"), f"Sec-WebSocket-Key: {key}")
            self.assertRefused(data, 400, "sec-websocket-key must be 16 bytes in base64")

    def test_missingKey(self):
        """
        A request without C{Sec-WebSocket-Key} is answered with 400.
        """
        self.assertRefused(rawRequest(*without("Sec-WebSocket-Key")), 400, "missing sec-websocket-key header")

    def test_missingVersion(self):
        """
        A request without C{Sec-WebSocket-Version} is answered with 400.
        """
        self.assertRefused(
            rawRequest(*without("Sec-WebSocket-Version")), 400, "missing sec-websocket-version header"
        )

    def test_noConnectionUpgrade(self):
        """
        A request whose C{Connection} header lacks C{upgrade}, or that has
        none, is answered with 400.
        """
        self.assertRefused(
            rawRequest(*without("Connection"), "Connection: keep-alive"), 400,
            "connection header must contain upgrade",
        )
        self.assertRefused(rawRequest(*without("Connection")), 400, "connection header must contain upgrade")

    def test_http10(self):
        """
        An HTTP/1.0 request is answered with 400.
        """
        self.assertRefused(
            rawRequest("GET /chat HTTP/1.0", *VALID_LINES[1:]), 400,
            "a websocket handshake needs http/1.1 or later",
        )

    def test_http2OnHttp1Wire(self):
        """
        A request line saying HTTP/2.0 (or any major version from 2 on) in
        HTTP/1.1 syntax is answered with 505 (RFC 6455 §4.1: HTTP/1.1 or
        higher in HTTP/1.1 syntax; HTTP/2 has its own framing).
        """
        for version in ("2.0", "3.0", "9.9"):
            self.assertRefused(
                rawRequest(f"GET /chat HTTP/{version}", *VALID_LINES[1:]), 505,
                f"http/{version} is not spoken in http/1.1 syntax; a websocket handshake needs http/1.1",
            )

    def test_http1Later(self):
        """
        A later HTTP/1.x minor version is accepted (RFC 9110 §2.5).
        """
        server, events = self.receive(rawRequest("GET /chat HTTP/1.2", *VALID_LINES[1:]))
        self.assertIsInstance(events[0], RequestReceived)

    def test_requestBodyRefused(self):
        """
        An opening handshake with a body (a positive C{Content-Length} or
        any C{Transfer-Encoding}) is answered with 400: its body must never
        be read as WebSocket frames.
        """
        for header in ("Content-Length: 5", "Transfer-Encoding: chunked", "Transfer-Encoding: identity"):
            self.assertRefused(
                rawRequest(*VALID_LINES, header) + b"\x81\x80abcd",
                400,
                "request body not allowed on the opening handshake",
            )

    def test_malformedContentLength(self):
        """
        A negative or malformed C{Content-Length} is answered with 400.
        """
        for value in ("-1", "abc", "1.0", "", "0, 1", "+0"):
            self.assertRefused(
                rawRequest(*VALID_LINES, f"Content-Length: {value}"),
                400,
                "malformed content-length header",
            )

    def test_zeroContentLength(self):
        """
        C{Content-Length: 0} says there is no body: the handshake goes on.
        """
        server, events = self.receive(rawRequest(*VALID_LINES, "Content-Length: 0"))
        self.assertIsInstance(events[0], RequestReceived)

    def test_post(self):
        """
        A POST is answered with 405 and C{Allow: GET}.
        """
        self.assertRefused(
            rawRequest("POST /chat HTTP/1.1", *VALID_LINES[1:]), 405,
            "method POST is not allowed; a websocket handshake uses GET",
            headers=[("Allow", "GET")], kind=MethodNotAllowed,
        )

    def test_wrongVersion(self):
        """
        Version 8 is answered with 426 and C{Sec-WebSocket-Version: 13}
        (RFC 6455 §4.4).
        """
        self.assertRefused(
            rawRequest(*without("Sec-WebSocket-Version"), "Sec-WebSocket-Version: 8"), 426,
            "unsupported websocket version 8; this server speaks 13",
            headers=UPGRADE_REQUIRED_HEADERS,
            kind=UpgradeRequired,
        )

    def test_plainGet(self):
        """
        A plain GET without C{Upgrade} is answered with 426.
        """
        self.assertRefused(
            rawRequest("GET / HTTP/1.1", "Host: example.com", "Accept: text/html"), 426,
            "this is a websocket endpoint; send an upgrade: websocket request",
            headers=UPGRADE_REQUIRED_HEADERS,
            kind=UpgradeRequired,
        )

    def test_upgradeRequiredOneConnectionHeader(self):
        """
        The 426 answer has exactly one C{Connection} field, C{Upgrade, close}.
        """
        server, _ = self.receive(rawRequest("GET / HTTP/1.1", "Host: example.com"))
        body = b"this is a websocket endpoint; send an upgrade: websocket request\n"
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 426 Upgrade Required\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade, close\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 65\r\n"
            b"\r\n" + body,
        )

    def test_rejectWithConnectionHeader(self):
        """
        A rejection whose own headers have a C{Connection} field gets
        C{close} added to it rather than a second field.
        """
        server, _ = self.receive(requestBytes())
        server.reject(403, "no", [("Connection", "keep-alive")])
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 403 Forbidden\r\n"
            b"Connection: keep-alive, close\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 3\r\n"
            b"\r\n"
            b"no\n",
        )

    def test_upgradeToOtherProtocol(self):
        """
        An upgrade to another protocol (here h2c) is answered with 426.
        """
        server = self.assertRefused(
            rawRequest(*without("Upgrade"), "Upgrade: h2c"), 426,
            "this is a websocket endpoint; send an upgrade: websocket request",
            headers=UPGRADE_REQUIRED_HEADERS,
            kind=UpgradeRequired,
        )
        self.assertEqual(server.close_code, 1006)

    def test_originNotAllowed(self):
        """
        An C{Origin} not on the allow-list is answered with 403.
        """
        config = Config(allowed_origins=frozenset({"https://example.com"}))
        self.assertRefused(
            requestBytes(headers=[("Origin", "https://evil.example")]), 403,
            "origin https://evil.example is not allowed", kind=ForbiddenOrigin, config=config,
        )

    def test_originAllowed(self):
        """
        An C{Origin} on the allow-list (compared case-insensitively) is
        accepted, and so is a request without C{Origin}.
        """
        config = Config(allowed_origins=["https://Example.com"])
        for headers in ([("Origin", "HTTPS://EXAMPLE.COM")], []):
            _, events = self.receive(requestBytes(headers=headers), config)
            self.assertEqual([type(e) for e in events], [RequestReceived], headers)

    def test_headTooLarge(self):
        """
        A head over 16 KiB is answered with 431, with or without its end
        having arrived.
        """
        big = "x" * (16 * 1024)
        self.assertRefused(
            requestBytes(headers=[("X-Big", big)]), 431, "head over 16384 bytes", kind=HeadTooLarge
        )
        self.assertRefused(
            b"GET / HTTP/1.1\r\nX-Big: " + b"x" * (16 * 1024), 431, "head over 16384 bytes", kind=HeadTooLarge
        )

    def test_headAtLimit(self):
        """
        A head of exactly C{max_head_size} bytes, blank line included, is
        accepted; one byte more is not.
        """
        base = requestBytes(headers=[("X-Pad", "")])
        size = 300
        padded = requestBytes(headers=[("X-Pad", "p" * (size - len(base)))])
        self.assertEqual(len(padded), size)
        _, events = self.receive(padded, Config(max_head_size=size))
        self.assertEqual([type(e) for e in events], [RequestReceived])
        self.assertRefused(padded, 431, "head over 299 bytes", kind=HeadTooLarge, config=Config(max_head_size=size - 1))

    def test_tooManyHeaders(self):
        """
        More than 100 header lines are answered with 431; exactly 100 are
        accepted.
        """
        extra = [(f"X-H{i}", "v") for i in range(95)]
        _, events = self.receive(requestBytes(headers=extra))
        self.assertEqual([type(e) for e in events], [RequestReceived])
        self.assertRefused(
            requestBytes(headers=extra + [("X-One-More", "v")]), 431, "more than 100 header lines", kind=HeadTooLarge
        )

    def test_drippedByteByByte(self):
        """
        A request fed one byte at a time is reported once, when its last
        byte arrives.
        """
        data = requestBytes(headers=[("Sec-WebSocket-Protocol", "chat")])
        server = ServerConnection(Config(subprotocols=("chat",)), now=0.0)
        for i in range(len(data) - 1):
            server.receive_data(data[i : i + 1], now=0.0)
            self.assertEqual(list(server.events()), [], i)
        server.receive_data(data[-1:], now=0.0)
        events = list(server.events())
        self.assertEqual([(type(e), e.subprotocol) for e in events], [(RequestReceived, "chat")])

    def test_bytesAfterHeadKept(self):
        """
        Frames sent in the same read as the request head are kept until
        C{accept()} and then parsed: nothing is lost or read twice.
        """
        data = requestBytes() + clientFrame(Opcode.TEXT, b"Hello") + clientFrame(Opcode.TEXT, b"Hi", fin=False)
        server, events = self.receive(data)
        self.assertEqual([type(e) for e in events], [RequestReceived])
        self.assertEqual(list(server.events()), [])
        server.accept(now=0.0)
        server.receive_data(clientFrame(Opcode.CONTINUATION, b"!"), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello"), TextMessage("Hi!")])

    def test_bytesBeforeAcceptDrip(self):
        """
        Frame bytes that arrive while the server waits for C{accept()} are
        kept too.
        """
        server, _ = self.receive(requestBytes())
        for byte in clientFrame(Opcode.TEXT, b"Hello"):
            server.receive_data(bytes([byte]), now=0.0)
            self.assertEqual(list(server.events()), [])
        server.accept(now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello")])

    def test_openTimeout(self):
        """
        A client dripping its request too slowly is answered with 408 when
        the open deadline passes.
        """
        server = ServerConnection(Config(), now=100.0)
        self.assertEqual(server.next_deadline(), 110.0)
        data = requestBytes()
        for i in range(9):
            server.receive_data(data[i : i + 1], now=100.0 + i)
            self.assertEqual(list(server.events()), [])
            server.handle_timer(now=100.0 + i)
            self.assertEqual(server.data_to_send(), b"")
            self.assertEqual(server.next_deadline(), 110.0)
        server.handle_timer(now=110.0)
        events = list(server.events())
        self.assertEqual([type(e) for e in events], [HandshakeFailure])
        self.assertEqual((events[0].error.status, events[0].error.reason), (408, "opening handshake timed out"))
        self.assertEqual(server.data_to_send(), errorResponse(408, "opening handshake timed out"))
        self.assertTrue(server.wants_transport_closed)
        self.assertIsNone(server.next_deadline())

    def test_openTimeoutWhileUndecided(self):
        """
        A request nobody accepts or rejects in time is answered with 408,
        and a late C{accept()} raises L{InvalidState}.
        """
        server, _ = self.receive(requestBytes())
        server.handle_timer(now=10.0)
        self.assertEqual(server.data_to_send(), errorResponse(408, "opening handshake timed out"))
        self.assertEqual([type(e) for e in server.events()], [HandshakeFailure])
        self.assertRaises(InvalidState, server.accept, now=10.0)

    def test_openTimeoutDisabled(self):
        """
        With C{open_timeout=None} a connecting server has no deadline.
        """
        server = ServerConnection(Config(open_timeout=None, ping_interval=None), now=0.0)
        self.assertIsNone(server.next_deadline())

    def test_acceptBeforeRequest(self):
        """
        C{accept()} before a request has arrived raises L{InvalidState}.
        """
        server = ServerConnection(Config(), now=0.0)
        server.receive_data(requestBytes()[:20], now=0.0)
        self.assertEqual(list(server.events()), [])
        exc = self.assertRaises(InvalidState, server.accept, now=0.0)
        self.assertEqual(str(exc), "can't accept in state CONNECTING")

    def test_acceptTwice(self):
        """
        A second C{accept()}, or C{reject()} after C{accept()}, raises
        L{InvalidState}.
        """
        server, _ = self.receive(requestBytes())
        server.accept(now=0.0)
        self.assertRaises(InvalidState, server.accept, now=0.0)
        self.assertRaises(InvalidState, server.reject, 403)

    def test_acceptAfterReject(self):
        """
        C{accept()} or C{reject()} after C{reject()} raises L{InvalidState}.
        """
        server, _ = self.receive(requestBytes())
        server.reject(403)
        self.assertRaises(InvalidState, server.accept, now=0.0)
        self.assertRaises(InvalidState, server.reject, 403)

    def test_rejectNonErrorStatus(self):
        """
        C{reject()} with a status outside 400-599 raises L{ValueError}.
        """
        server, _ = self.receive(requestBytes())
        for status in (101, 200, 302, 600):
            self.assertRaises(ValueError, server.reject, status)
        self.assertIs(server.state, State.CONNECTING)

    def test_rejectFormat(self):
        """
        C{reject()} writes the status line, the given headers, a plain-text
        one-line body and C{Connection: close}, and asks for the transport to
        be closed.
        """
        server, _ = self.receive(requestBytes())
        server.reject(403, "members only", [("X-Why", "policy")])
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 403 Forbidden\r\n"
            b"X-Why: policy\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 13\r\n"
            b"Connection: close\r\n"
            b"\r\n"
            b"members only\n",
        )
        events = list(server.events())
        self.assertEqual([type(e) for e in events], [HandshakeFailure])
        self.assertEqual((events[0].error.status, events[0].error.reason), (403, "members only"))
        self.assertTrue(server.wants_transport_closed)
        self.assertIs(server.state, State.CLOSED)

    def test_rejectDefaultsAndPhrases(self):
        """
        C{reject()} defaults to 403 C{forbidden}; other statuses get their
        standard reason phrase.
        """
        server, _ = self.receive(requestBytes())
        server.reject()
        self.assertEqual(server.data_to_send(), errorResponse(403, "forbidden"))
        server, _ = self.receive(requestBytes())
        server.reject(429, "slow down")
        self.assertEqual(server.data_to_send(), errorResponse(429, "slow down", phrase="Too Many Requests"))

    def test_rejectMultiLineReason(self):
        """
        A reason with line breaks still gives a one-line body.
        """
        server, _ = self.receive(requestBytes())
        server.reject(400, "first\r\nsecond")
        self.assertTrue(server.data_to_send().endswith(b"\r\n\r\nfirst second\n"))

    def test_rejectHeaderInjection(self):
        """
        C{reject()} and C{accept()} refuse header names or values holding CR
        or LF.
        """
        server, _ = self.receive(requestBytes())
        self.assertRaises(ValueError, server.reject, 403, "no", [("X-A", "1\r\nSet-Cookie: x")])
        self.assertRaises(ValueError, server.accept, extra_headers=[("X-A\r\n", "1")], now=0.0)
        self.assertIs(server.state, State.CONNECTING)
        self.assertEqual(server.data_to_send(), b"")

    def test_earlyDataLimit(self):
        """
        More than 64 KiB sent before the server decides is answered with 400.
        """
        server, _ = self.receive(requestBytes())
        server.receive_data(b"\x00" * (64 * 1024 + 1), now=0.0)
        events = list(server.events())
        self.assertEqual([type(e) for e in events], [HandshakeFailure])
        self.assertEqual(server.data_to_send(), errorResponse(400, "data before the handshake completed"))

    def test_sendBeforeOpen(self):
        """
        Sending before the handshake completes raises L{InvalidState}.
        """
        server, _ = self.receive(requestBytes())
        self.assertRaises(InvalidState, server.send_text, "x")
        self.assertRaises(InvalidState, server.send_binary, b"x")
        self.assertRaises(InvalidState, server.send_ping)
        self.assertRaises(InvalidState, server.send_close, 1000, now=0.0)


class ClientHandshakeTests(SynchronousTestCase):
    """
    The opening handshake on L{ClientConnection}.
    """

    def client(self, config: Config | None = None, now: float = 0.0, **kwargs) -> ClientConnection:
        client = ClientConnection(
            config or Config(), host="server.example.com", now=now, mask_source=fixedMask(bytes(range(16))),
            **kwargs,
        )
        client.data_to_send()
        return client

    def assertRejected(self, client, reason: str, status: int, kind=HandshakeRejected):
        events = list(client.events())
        self.assertEqual([type(e) for e in events], [HandshakeFailure])
        error = events[0].error
        self.assertIsInstance(error, kind)
        self.assertEqual((error.reason, error.status), (reason, status))
        self.assertTrue(client.wants_transport_closed)
        self.assertIs(client.state, State.CLOSED)
        self.assertEqual(client.data_to_send(), b"")
        return error

    def test_requestFormat(self):
        """
        The request carries the Host, a key from the mask source, the Origin,
        the offered subprotocols and the extra headers, in that order.
        """
        client = ClientConnection(
            Config(subprotocols=("chat", "superchat")), host="server.example.com", target="/chat?x=1",
            origin="http://example.com", extra_headers=[("Authorization", "Bearer t")], now=0.0,
            mask_source=fixedMask(bytes(range(16))),
        )
        self.assertEqual(client.key, "AAECAwQFBgcICQoLDA0ODw==")
        self.assertEqual(
            client.data_to_send(),
            b"GET /chat?x=1 HTTP/1.1\r\n"
            b"Host: server.example.com\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Origin: http://example.com\r\n"
            b"Sec-WebSocket-Protocol: chat, superchat\r\n"
            b"Authorization: Bearer t\r\n"
            b"\r\n",
        )
        self.assertIs(client.state, State.CONNECTING)

    def test_minimalRequest(self):
        """
        Without Origin, subprotocols or extra headers, the request has the
        six required lines only.
        """
        client = ClientConnection(Config(), host="h", now=0.0, mask_source=fixedMask(bytes(range(16))))
        self.assertEqual(
            client.data_to_send(),
            rawRequest("GET / HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade",
                       "Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==", "Sec-WebSocket-Version: 13"),
        )

    def test_accepted(self):
        """
        A valid C{101} opens the connection and reports L{Opened}.
        """
        client = self.client()
        client.receive_data(responseBytes(client.key), now=0.0)
        events = list(client.events())
        self.assertEqual([type(e) for e in events], [Opened])
        self.assertEqual(events[0].response.status, 101)
        self.assertIsNone(events[0].subprotocol)
        self.assertIsNone(events[0].extensions)
        self.assertIs(client.state, State.OPEN)
        self.assertEqual(client.response, events[0].response)

    def test_acceptedDripped(self):
        """
        A C{101} fed one byte at a time opens the connection at its last
        byte.
        """
        client = self.client()
        data = responseBytes(client.key)
        for i in range(len(data) - 1):
            client.receive_data(data[i : i + 1], now=0.0)
            self.assertEqual(list(client.events()), [], i)
        client.receive_data(data[-1:], now=0.0)
        self.assertEqual([type(e) for e in client.events()], [Opened])

    def test_subprotocolChosen(self):
        """
        The subprotocol the server picks among those offered is reported.
        """
        client = self.client(Config(subprotocols=("v10.stomp", "v11.stomp")))
        client.receive_data(responseBytes(client.key, [("Sec-WebSocket-Protocol", "v11.stomp")]), now=0.0)
        events = list(client.events())
        self.assertEqual(events[0].subprotocol, "v11.stomp")
        self.assertEqual(client.subprotocol, "v11.stomp")

    def test_framesAfter101(self):
        """
        Frames in the same read as the C{101} are not lost.
        """
        client = self.client()
        client.receive_data(
            responseBytes(client.key) + serverFrame(Opcode.TEXT, b"Hello") + serverFrame(Opcode.PING, b"p"),
            now=0.0,
        )
        events = list(client.events())
        self.assertEqual([type(e) for e in events[:1]], [Opened])
        self.assertEqual(events[1:], [TextMessage("Hello"), Ping(b"p")])
        self.assertEqual(client.data_to_send(), clientFrame(Opcode.PONG, b"p", mask=b"\x00\x01\x02\x03"))

    def test_clientMasksWithMaskSource(self):
        """
        The style guide's example: with the key 01 02 03 04, "hi" is
        C{81 82 01 02 03 04 69 6b}.
        """
        client = ClientConnection(Config(), host="h", now=0.0, mask_source=lambda n: b"\x01\x02\x03\x04")
        client.data_to_send()
        client.receive_data(responseBytes(client.key), now=0.0)
        list(client.events())
        client.send_text("hi")
        self.assertEqual(client.data_to_send(), b"\x81\x82\x01\x02\x03\x04\x69\x6b")

    def test_rejectedWithBody(self):
        """
        A non-101 answer fails with L{HandshakeRejected} carrying the status,
        the headers and the body (read up to C{Content-Length}).
        """
        client = self.client()
        client.receive_data(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nmembers", now=0.0
        )
        self.assertEqual(list(client.events()), [])
        client.receive_data(b" only", now=0.0)
        error = self.assertRejected(client, "Forbidden", 403)
        self.assertEqual(error.headers, [("Content-Type", "text/plain"), ("Content-Length", "12")])
        self.assertEqual(error.body, b"members only")
        self.assertEqual(str(error), "403 Forbidden")

    def test_rejectedBodyUntilEof(self):
        """
        Without C{Content-Length}, the body is what arrives before EOF.
        """
        client = self.client()
        client.receive_data(b"HTTP/1.1 500 Internal Server Error\r\n\r\n", now=0.0)
        self.assertEqual(list(client.events()), [])
        client.receive_eof()
        error = self.assertRejected(client, "Internal Server Error", 500)
        self.assertEqual(error.body, b"")

    def test_rejectedEmptyBody(self):
        """
        C{Content-Length: 0} fails the handshake at once.
        """
        client = self.client()
        client.receive_data(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", now=0.0)
        self.assertEqual(self.assertRejected(client, "Not Found", 404).body, b"")

    def test_rejectedThenEof(self):
        """
        A rejection and EOF received together, before the events are read,
        still report the rejection with its body.
        """
        client = self.client()
        client.receive_data(b"HTTP/1.1 403 Forbidden\r\n\r\nno", now=0.0)
        client.receive_eof()
        self.assertEqual(self.assertRejected(client, "Forbidden", 403).body, b"no")

    def test_redirect(self):
        """
        A redirect fails with its status and C{Location} header.
        """
        client = self.client()
        client.receive_data(b"HTTP/1.1 301 Moved Permanently\r\nLocation: ws://b/\r\nContent-Length: 0\r\n\r\n", now=0.0)
        error = self.assertRejected(client, "Moved Permanently", 301)
        self.assertEqual(error.headers, [("Location", "ws://b/"), ("Content-Length", "0")])

    def test_wrongAccept(self):
        """
        A C{101} with the wrong C{Sec-WebSocket-Accept} is rejected.
        """
        client = self.client()
        client.receive_data(responseBytes(CLIENT_KEY), now=0.0)
        self.assertRejected(client, "wrong sec-websocket-accept", 101)

    def test_missingAccept(self):
        """
        A C{101} without C{Sec-WebSocket-Accept} is rejected.
        """
        client = self.client()
        client.receive_data(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", now=0.0
        )
        self.assertRejected(client, "wrong sec-websocket-accept", 101)

    def test_missingUpgrade(self):
        """
        A C{101} without C{Upgrade: websocket} is rejected.
        """
        client = self.client()
        accept = compute_accept(client.key)
        client.receive_data(
            f"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode(), now=0.0
        )
        self.assertRejected(client, "response lacks upgrade: websocket", 101)

    def test_missingConnection(self):
        """
        A C{101} without C{Connection: Upgrade} is rejected.
        """
        client = self.client()
        accept = compute_accept(client.key)
        client.receive_data(
            f"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode(), now=0.0
        )
        self.assertRejected(client, "response lacks connection: upgrade", 101)

    def test_subprotocolNotOffered(self):
        """
        A subprotocol the client did not offer is rejected.
        """
        client = self.client(Config(subprotocols=("chat",)))
        client.receive_data(responseBytes(client.key, [("Sec-WebSocket-Protocol", "other")]), now=0.0)
        self.assertRejected(client, "server chose subprotocol 'other', which was not offered", 101)

    def test_extensionNotOffered(self):
        """
        An extension the client did not offer is rejected.
        """
        client = self.client()
        client.receive_data(responseBytes(client.key, [("Sec-WebSocket-Extensions", "permessage-deflate")]), now=0.0)
        self.assertRejected(client, "server answered with an extension that was not offered", 101)

    def test_garbage(self):
        """
        An answer that is not HTTP fails with status 0, saying what it is;
        one that starts like HTTP but is not a status line is malformed.
        """
        client = self.client()
        client.receive_data(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", now=0.0)
        self.assertRejected(client, 'not a websocket server but an ssh server ("SSH-2.0-OpenSSH_9.2")', 0)
        client = self.client()
        client.receive_data(b"HTTP/1.1 OK\r\n\r\n", now=0.0)
        self.assertRejected(client, "malformed response: not an http status line", 0)

    def test_malformedResponseHeader(self):
        """
        A malformed header line in the answer fails with status 0.
        """
        client = self.client()
        client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nno colon here\r\n\r\n", now=0.0)
        self.assertRejected(client, "malformed response: malformed header line", 0)

    def test_endlessGarbage(self):
        """
        An answer whose head never ends fails with L{HandshakeRejected} once
        it is over C{max_head_size}.
        """
        client = self.client(Config(max_head_size=1024))
        client.receive_data(b"HTTP/1.1 200 " + b"x" * 1012, now=0.0)
        self.assertRejected(client, "malformed response: head over 1024 bytes", 0)

    def test_eofBeforeResponse(self):
        """
        EOF before the whole answer fails with L{HandshakeRejected}.
        """
        client = self.client()
        client.receive_data(b"HTTP/1.1 101 Swi", now=0.0)
        self.assertEqual(list(client.events()), [])
        client.receive_eof()
        self.assertRejected(client, "connection closed before the handshake response", 0)

    def test_openTimeout(self):
        """
        No answer within C{open_timeout} fails with L{HandshakeTimeout}.
        """
        client = self.client(Config(open_timeout=5.0), now=50.0)
        self.assertEqual(client.next_deadline(), 55.0)
        client.handle_timer(now=54.9)
        self.assertEqual(list(client.events()), [])
        client.handle_timer(now=55.0)
        events = list(client.events())
        self.assertEqual([type(e) for e in events], [HandshakeFailure])
        self.assertIsInstance(events[0].error, HandshakeTimeout)
        self.assertEqual(str(events[0].error), "opening handshake timed out")
        self.assertTrue(client.wants_transport_closed)
        self.assertIsNone(client.next_deadline())

    def test_sendBeforeOpen(self):
        """
        Sending before the answer arrives raises L{InvalidState}.
        """
        client = self.client()
        self.assertRaises(InvalidState, client.send_text, "x")
        self.assertRaises(InvalidState, client.send_close, now=0.0)

    def test_headerInjection(self):
        """
        Extra headers holding CR or LF raise L{ValueError}.
        """
        self.assertRaises(
            ValueError, ClientConnection, Config(), host="h", now=0.0, extra_headers=[("X", "1\r\nY: 2")]
        )


class CompactRequestTests(SynchronousTestCase):
    """
    What an opened server connection keeps of its request: the headers, not
    their index; parsed heads share what every client sends alike.
    """

    HEAD = (
        b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"X-Thing: a\r\nx-thing: b"
    )

    def test_getAfterOpen(self):
        """
        Once the connection opens, the request drops its header index and
        L{HandshakeRequest.get} and C{tokens} answer as before: any case,
        repeated fields combined with C{", "}, the default when absent.
        """
        server = ServerConnection(Config(), now=0.0)
        server.receive_data(self.HEAD + b"\r\n\r\n", now=0.0)
        (event,) = server.events()
        request = event.request
        before = [request.get("x-THING"), request.get("upgrade"), request.get("nope", "d"), request.tokens("X-Thing")]
        self.assertEqual(before, ["a, b", "websocket", "d", ["a", "b"]])
        server.accept(now=0.0)
        self.assertIs(server.state, State.OPEN)
        self.assertIsNone(request._index)
        after = [request.get("x-THING"), request.get("upgrade"), request.get("nope", "d"), request.tokens("X-Thing")]
        self.assertEqual(after, before)
        self.assertIsNone(request.get("nope"))

    def test_sharedPairs(self):
        """
        Two requests share the (name, value) pairs of fields every client
        sends alike, and their HTTP version; not the key, not a field
        outside that list, not a line over 256 bytes.
        """
        long = b"\r\nUser-Agent: " + b"x" * 300
        first = parse_request(self.HEAD + long)
        second = parse_request(self.HEAD + long)
        self.assertEqual(first.headers, second.headers)
        pairs = dict(zip([name.lower() for name, _ in first.headers], zip(first.headers, second.headers)))
        self.assertIs(*pairs["upgrade"])
        self.assertIs(*pairs["host"])
        self.assertIsNot(*pairs["sec-websocket-key"])
        self.assertIsNot(*pairs["user-agent"])
        self.assertIs(first.http_version, second.http_version)
        self.assertEqual(parse_request(self.HEAD.replace(b"HTTP/1.1", b"HTTP/1.2")).http_version, (1, 2))
