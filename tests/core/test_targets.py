"""
Tests for the request line as the server core reads it: the request-target
forms of RFC 9112 §3.2 (L{wsproto_tw.core.handshake.parse_target}), and
early garbage refused at once, before the head is complete
(L{wsproto_tw.core.handshake.check_request_start}).
"""

from __future__ import annotations

import ssl

from twisted.trial.unittest import SynchronousTestCase

from tests.core.test_handshake import errorResponse
from tests.helpers import CLIENT_KEY
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ServerConnection, State
from wsproto_tw.core.errors import HandshakeFailed, PlainTextOnTLSPort, TLSOnPlainTextPort
from wsproto_tw.core.events import HandshakeFailure, RequestReceived
from wsproto_tw.core.handshake import (
    HandshakeRequest,
    build_error_response,
    check_request_start,
    check_tls_start,
    parse_request,
    parse_target,
)

PLAIN_REASON = "plain-text http received on a tls port; connect with wss:// here, or with ws:// to a plain-text port"
TLS_REASON = "tls handshake received on a plain-text port; connect with ws:// here, or with wss:// to a tls port"
BARE_LF = "bare lf in request head; lines must end with crlf"
ASTERISK = "request target * is for options requests; a websocket handshake names a path"
AUTHORITY = "request target host:port is for connect requests; a websocket handshake names a path"


def tlsClientHello() -> bytes:
    """
    @return: the first flight of a real TLS client (a ClientHello record),
        made by this Python's C{ssl} module.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def head(target: str, host: str = "server.example.com", method: str = "GET") -> bytes:
    """
    A valid opening request for C{target}, CRLF throughout.
    """
    return (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode("latin-1")


class ServerTestMixin:
    """
    Feeding bytes to a server connection and checking what it answers.
    """

    def server(self, *pieces: bytes) -> tuple[ServerConnection, list]:
        """
        @return: a server connection fed C{pieces}, one C{receive_data} each,
            and the events of all of them.
        """
        server = ServerConnection(Config(), now=0.0)
        events = []
        for piece in pieces:
            server.receive_data(piece, now=0.0)
            events.extend(server.events())
        return server, events

    def assertRefusedAtOnce(self, data: bytes, reason: str, kind: type = HandshakeFailed) -> None:
        """
        C{data}, with no end of head in sight, is answered at once with the
        exact C{400} response for C{reason}, and the connection closes.
        """
        server, events = self.server(data)
        self.assertEqual([type(event) for event in events], [HandshakeFailure], data)
        self.assertIsInstance(events[0].error, kind)
        self.assertEqual(events[0].error.reason, reason, data)
        self.assertEqual(server.data_to_send(), errorResponse(400, reason), data)
        self.assertTrue(server.wants_transport_closed)
        self.assertIs(server.state, State.CLOSED)
        self.assertIsNone(server.next_deadline())

    def assertRefused(self, data: bytes, reason: str) -> None:
        """
        The complete request C{data} is answered with C{400} for C{reason}.
        """
        server, events = self.server(data)
        self.assertEqual([type(event) for event in events], [HandshakeFailure], data)
        self.assertEqual(events[0].error.reason, reason, data)
        self.assertEqual(server.data_to_send(), errorResponse(400, reason), data)
        self.assertTrue(server.wants_transport_closed)


class TargetFormTests(ServerTestMixin, SynchronousTestCase):
    """
    A server accepts a C{GET} whose target is in origin-form or in
    absolute-form (RFC 9112 §3.2.1, §3.2.2), and gives the application the
    same path for both; other forms, and fragments, get C{400}.
    """

    def received(self, data: bytes) -> HandshakeRequest:
        server, events = self.server(data)
        self.assertEqual([type(event) for event in events], [RequestReceived], events)
        server.accept(now=0.0)
        self.assertTrue(server.data_to_send().startswith(b"HTTP/1.1 101 Switching Protocols\r\n"))
        return events[0].request

    def test_originForm(self) -> None:
        """
        An origin-form target gives its path and query; the C{Host} header
        gives the host.
        """
        for target, path, query in [
            ("/chat", "/chat", ""),
            ("/chat?room=1&x=%20", "/chat", "room=1&x=%20"),
            ("/", "/", ""),
            ("/chat?", "/chat", ""),
            ("//double/slash", "//double/slash", ""),
        ]:
            request = self.received(head(target))
            self.assertEqual((request.target, request.path, request.query), (target, path, query))
            self.assertEqual(request.host, "server.example.com")

    def test_absoluteForm(self) -> None:
        """
        An absolute-form target (RFC 9112 §3.2.2, which a server must
        accept), with or without a port, a query or a path, with an http,
        https, ws or wss scheme in any case, gives the same path and query
        as its origin-form; its authority is the request's host, in place of
        the C{Host} header.
        """
        for target, path, query, host in [
            ("http://127.0.0.1:8080/chat", "/chat", "", "127.0.0.1:8080"),
            ("http://127.0.0.1/chat", "/chat", "", "127.0.0.1"),
            ("http://example.com:8080/chat?room=1", "/chat", "room=1", "example.com:8080"),
            ("https://example.com/chat", "/chat", "", "example.com"),
            ("ws://example.com/chat", "/chat", "", "example.com"),
            ("wss://example.com:443/a/b?c", "/a/b", "c", "example.com:443"),
            ("HTTP://Example.COM/chat", "/chat", "", "Example.COM"),
            ("http://[::1]:8080/chat", "/chat", "", "[::1]:8080"),
            ("http://example.com", "/", "", "example.com"),
            ("http://example.com?x=1", "/", "x=1", "example.com"),
            ("http://example.com:/chat", "/chat", "", "example.com:"),
        ]:
            request = self.received(head(target, host="other.example.com"))
            self.assertEqual((request.target, request.path, request.query), (target, path, query))
            self.assertEqual(request.host, host)
            self.assertEqual(request.get("host"), "other.example.com")

    def test_otherForms(self) -> None:
        """
        A C{GET} with an asterisk-form or authority-form target (for
        C{OPTIONS} and C{CONNECT}), a relative reference, or an absolute
        URL that can't name this server is answered with C{400}.
        """
        for target, reason in [
            ("*", ASTERISK),
            ("server.example.com:80", AUTHORITY),
            ("[::1]:80", AUTHORITY),
            ("chat", "malformed request target; it must be a path or an absolute url"),
            ("ftp://example.com/chat", "request target scheme ftp is not http, https, ws or wss"),
            ("http:/chat", "malformed request target; it must be a path or an absolute url"),
            ("http://user:pw@example.com/chat", "request target has user info"),
            ("http:///chat", "request target has no host"),
            ("http://:80/chat", "request target has no host"),
            ("http://example.com:http/chat", "request target has a malformed host or port"),
            ("http://exa<mple.com/chat", "request target has a malformed host or port"),
            ("http://[::1/chat", "request target has a malformed host or port"),
        ]:
            self.assertRefused(head(target), reason)

    def test_otherMethodFirst(self) -> None:
        """
        C{OPTIONS *} is a well-formed request for another method: C{405}, as
        for any method but C{GET}.
        """
        server, events = self.server(head("*", method="OPTIONS"))
        self.assertEqual([type(event) for event in events], [HandshakeFailure])
        self.assertEqual(events[0].error.status, 405)

    def test_fragment(self) -> None:
        """
        A target with a fragment (RFC 3986 §3.5), in either form, is
        answered with C{400}.
        """
        for target in ("/chat#top", "/chat?x=1#top", "http://example.com/chat#top", "/#"):
            self.assertRefused(head(target), "request target has a fragment")

    def test_rawSpaces(self) -> None:
        """
        A target with a raw space is answered with C{400}.
        """
        for target in ("/my chat", "/chat?q=a b", "http://example.com/a b c"):
            self.assertRefused(head(target), "space in request target")

    def test_controlCharacter(self) -> None:
        """
        A target with a control character (a tab, say) is answered with
        C{400}.
        """
        for target in ("/a\tb", "/\x00", "/\x7f", "/chat?\x1b"):
            self.assertRefused(head(target), "control character in request target")

    def test_parseTarget(self) -> None:
        """
        L{parse_target} gives the path, the query and the authority (for
        absolute-form), or raises L{HandshakeFailed} with status 400.
        """
        self.assertEqual(parse_target("/a?b"), ("/a", "b", None))
        self.assertEqual(parse_target("wss://h:1/a?b"), ("/a", "b", "h:1"))
        error = self.assertRaises(HandshakeFailed, parse_target, "*")
        self.assertEqual((error.status, error.reason), (400, ASTERISK))

    def test_requestBuiltFromFields(self) -> None:
        """
        A L{HandshakeRequest} built from fields another parser read (as the
        C{twisted.web} resource builds it) gives the same path, query and
        host; for a target no form matches, the parts before and after
        C{?}.
        """
        request = HandshakeRequest("GET", "http://h:1/chat?x=1", (1, 1), (("Host", "other"),))
        self.assertEqual((request.path, request.query, request.host), ("/chat", "x=1", "h:1"))
        request = HandshakeRequest("GET", "*?x", (1, 1), (("Host", "other"),))
        self.assertEqual((request.path, request.query, request.host), ("*", "x", "other"))

    def test_originFormPath(self) -> None:
        """
        The path of a target in origin-form is what L{parse_target} (or,
        for one it refuses, the part before C{?}) makes of it: everything
        before the first C{?}, whatever follows.
        """
        from wsproto_tw.core.handshake import _target_parts

        for target in ("/", "/chat", "/a?b", "/a?b?c", "/?", "//x/y?z", "/a#f", "/a?b#f", "/a#f?b", "/\xe9?\xff"):
            request = HandshakeRequest("GET", target, (1, 1), (("Host", "h"),))
            self.assertEqual(request.path, _target_parts(target)[0], target)
            self.assertEqual(request.path, target.split("?")[0], target)


class EarlyGarbageTests(ServerTestMixin, SynchronousTestCase):
    """
    Bytes that can never begin a valid request are answered with C{400} as
    soon as they arrive, without waiting for the end of a head that may
    never come.
    """

    def test_tlsClientHello(self) -> None:
        """
        A TLS ClientHello on the plain-text port is answered at once with
        C{400} and a plain-text body saying what happened.
        """
        hello = tlsClientHello()
        self.assertEqual(hello[:2], b"\x16\x03")
        self.assertNotIn(b"\r\n\r\n", hello)
        self.assertRefusedAtOnce(hello, TLS_REASON, TLSOnPlainTextPort)

    def test_tlsRecordHeader(self) -> None:
        """
        The first two bytes of a TLS handshake record are enough; the first
        one alone is not answered yet, as the second tells.
        """
        server, events = self.server(b"\x16")
        self.assertEqual((events, server.data_to_send(), server.state), ([], b"", State.CONNECTING))
        server.receive_data(b"\x03", now=0.0)
        [event] = list(server.events())
        self.assertIsInstance(event.error, TLSOnPlainTextPort)
        self.assertEqual(server.data_to_send(), errorResponse(400, TLS_REASON))
        server, events = self.server(b"\x16", b"\x01")
        self.assertEqual(events[0].error.reason, "malformed request line")

    def test_tlsWholeHead(self) -> None:
        """
        TLS bytes that happen to hold a blank line get the same answer.
        """
        self.assertRefusedAtOnce(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", TLS_REASON, TLSOnPlainTextPort)

    def test_bareLineFeeds(self) -> None:
        """
        A request whose lines end with a bare LF (RFC 9112 §2.2) is
        answered at the first of them, in the request line or a header.
        """
        self.assertRefusedAtOnce(b"GET /chat HTTP/1.1\n", BARE_LF)
        self.assertRefusedAtOnce(head("/chat").replace(b"\r\n", b"\n"), BARE_LF)
        self.assertRefusedAtOnce(b"GET /chat HTTP/1.1\r\nHost: a\nUpgrade: websocket\n", BARE_LF)
        self.assertRefusedAtOnce(b"\n", BARE_LF)

    def test_bareCarriageReturn(self) -> None:
        """
        A CR not followed by LF is answered at once.
        """
        self.assertRefusedAtOnce(b"GET /chat HTTP/1.1\rHost: a", "bare cr in request head")
        self.assertRefusedAtOnce(b"GET /chat HTTP/1.1\r\nHost: a\rb", "bare cr in request head")

    def test_badRequestLineStart(self) -> None:
        """
        A method that is not a token (a control byte, a separator), a
        second space, or anything but C{HTTP/x.y} after the target, is
        answered as soon as it arrives.
        """
        for data in (
            b"\x00",
            b"\x01\x02\x03",
            b"G(ET",
            b"GET\t/",
            b" GET /",
            b"GET  /",
            b"GET / X",
            b"GET / HTTP/1.1 ",
            b"GET / HTTP/11",
            b"\xff\xfe",
            b"{\"json\": 1}",
        ):
            self.assertRefusedAtOnce(data, "malformed request line")

    def test_badTargetStart(self) -> None:
        """
        A control character or a fragment in a target is answered as soon
        as it arrives; a space inside a target too, as what follows it is
        not an HTTP version.
        """
        self.assertRefusedAtOnce(b"GET /chat#", "request target has a fragment")
        self.assertRefusedAtOnce(b"GET /ch\x00", "control character in request target")
        self.assertRefusedAtOnce(b"GET /my chat", "malformed request line")
        self.assertRefusedAtOnce(b"GET /my chat HTTP/1.1\r\n", "space in request target")

    def test_validRequestByteByByte(self) -> None:
        """
        A valid request fed one byte at a time is never refused on the way,
        whatever its target's form, with one empty line before it (RFC 9112
        §2.2) or not.
        """
        for data in (head("/chat?x=1"), head("http://127.0.0.1:8080/chat"), b"\r\n" + head("/chat")):
            server, events = self.server(*[data[i : i + 1] for i in range(len(data))])
            self.assertEqual([type(event) for event in events], [RequestReceived], data)
            self.assertEqual(events[0].request.path, "/chat")
            self.assertEqual(server.data_to_send(), b"")

    def test_otherMethodsPass(self) -> None:
        """
        The early check is about syntax: a request line of another method
        passes it, and is refused with C{405} once its head is whole.
        """
        server, events = self.server(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n")
        self.assertEqual((events, server.state), ([], State.CONNECTING))
        server.receive_data(b"\r\n", now=0.0)
        [event] = list(server.events())
        self.assertEqual(event.error.status, 405)

    def test_checkRequestStart(self) -> None:
        """
        L{check_request_start} passes every prefix of a valid request, and
        ignores what follows the end of the head.
        """
        data = b"\r\n" + head("/chat") + b"\x81\x85\x00\n\r garbage"
        for end in range(len(data) + 1):
            check_request_start(data[:end])
            check_request_start(bytearray(data[:end]))
        error = self.assertRaises(HandshakeFailed, check_request_start, b"GET / HTTP/1.1\r\n\n")
        self.assertEqual((error.status, error.reason), (400, BARE_LF))

    def test_parseRequestChecksSyntax(self) -> None:
        """
        L{parse_request} refuses a whole head as the early check refuses its
        start, with the same reasons, and skips one leading empty line.
        """
        error = self.assertRaises(HandshakeFailed, parse_request, tlsClientHello())
        self.assertIsInstance(error, TLSOnPlainTextPort)
        error = self.assertRaises(HandshakeFailed, parse_request, b"GET / HTTP/1.1\nHost: a")
        self.assertEqual(error.reason, BARE_LF)
        request = parse_request(b"\r\nGET /chat HTTP/1.1\r\nHost: a")
        self.assertEqual((request.method, request.path, request.headers), ("GET", "/chat", (("Host", "a"),)))


class TLSPortStartTests(SynchronousTestCase):
    """
    L{check_tls_start} tells a plain-text request on a TLS port from TLS
    by its first byte.
    """

    def test_plainRequest(self) -> None:
        """
        A request line's method (an ASCII letter first) is refused with
        C{400}, and the answer is a plain-text HTTP response saying what
        to do.
        """
        for start in (b"G", b"GET / HTTP/1.1\r\n", b"post", b"OPTIONS * HTTP/1.1\r\n\r\n", bytearray(b"P"), b"\r\nGET", b"\n"):
            error = self.assertRaises(PlainTextOnTLSPort, check_tls_start, start)
            self.assertEqual((error.status, error.reason), (400, PLAIN_REASON))
        self.assertEqual(build_error_response(error), errorResponse(400, PLAIN_REASON))

    def test_tls(self) -> None:
        """
        A TLS record, an SSL 2 style hello (high bit set) and anything else
        that is not a letter are left to TLS.
        """
        hello = tlsClientHello()
        for start in (hello, hello[:1], b"\x80\x2e\x01", b"\x00", b" GET", b"1", b"\xc3"):
            self.assertIsNone(check_tls_start(start))
