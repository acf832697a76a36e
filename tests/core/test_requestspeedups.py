"""
Tests for the opening request's fast path:
L{wsproto_tw.core._speedups.parse_upgrade_request} (C) against
L{wsproto_tw.core.handshake.parse_request} and
L{wsproto_tw.core.handshake.validate_request} (the pure-Python reference),
on the same exact bytes, and L{wsproto_tw.core.handshake.read_request},
which picks one or the other.

The C function may decline any head (return L{None}: the reference then
parses it); it must never accept one that the reference refuses, and what
it returns for one it accepts must be exactly what the reference makes of it.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from tests.core.test_speedups import NO_SPEEDUPS, _requireBuilt, _speedups
from wsproto_tw.core import handshake
from wsproto_tw.core.errors import HandshakeFailed
from wsproto_tw.core.handshake import parse_request, read_request, validate_request

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="

BASE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: " + KEY + b"\r\nSec-WebSocket-Version: 13"
)


def _head(*lines: bytes, first: bytes = b"GET / HTTP/1.1") -> bytes:
    return b"\r\n".join((first, *lines))


_USUAL = (b"Host: example.com", b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Key: " + KEY,
          b"Sec-WebSocket-Version: 13")


def _without(name: bytes, *extra: bytes) -> bytes:
    return _head(*[line for line in _USUAL if not line.startswith(name + b":")], *extra)


def _replaced(name: bytes, line: bytes) -> bytes:
    return _head(*[line if old.startswith(name + b":") else old for old in _USUAL])


# Heads the C function must parse, exactly as the reference does.
ACCEPTED = [
    BASE,
    _head(*_USUAL),
    _head(b"host: a", b"upgrade: websocket", b"connection: upgrade", b"sec-websocket-key: " + KEY,
          b"sec-websocket-version: 13"),
    # Firefox's Connection, and tokens in any case.
    _replaced(b"Connection", b"Connection: keep-alive, Upgrade"),
    _replaced(b"Connection", b"Connection:\tkeep-alive ,\t UPGRADE\t,"),
    _replaced(b"Upgrade", b"Upgrade: WebSocket"),
    _replaced(b"Upgrade", b"Upgrade: h2c, websocket"),
    # Whitespace around values is not theirs (RFC 9110 §5.5).
    _replaced(b"Host", b"Host: \t example.com:80 \t"),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key:\t" + KEY + b" "),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version:13"),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: ++++//////AAAAzzzz0099=="),
    # A comma in the one Host line.
    _replaced(b"Host", b"Host: a,b"),
    # Other fields, repeated ones combined, empty values, 8-bit values.
    _head(*_USUAL, b"Origin: https://example.com", b"User-Agent: test/1.0",
          b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
          b"Sec-WebSocket-Protocol: chat, superchat", b"Sec-WebSocket-Protocol: stomp"),
    _head(*_USUAL, b"X-Empty:", b"X-Empty:  ", b"Cookie: caf\xe9=cr\xe8me\xff", b"X-A: 1", b"X-A: 2", b"X-A: 3"),
    _head(b"X-First: 1", *_USUAL),
    _head(*_USUAL, b"Origin: https://other.example"),
    _head(*_USUAL, b"X-Token!#$%&'*+-.^_`|~09azAZ: v"),
    # Targets: a query, 8-bit bytes (latin-1), anything but controls,
    # spaces and "#".
    _head(*_USUAL, first=b"GET /chat?room=1&x=%20 HTTP/1.1"),
    _head(*_USUAL, first=b"GET /\xe9t\xe9\xff\x80 HTTP/1.1"),
    _head(*_USUAL, first=b"GET //a/b?c=d/e?f HTTP/1.1"),
]

# Heads the reference accepts and the C function may leave to it.
LEFT = [
    _head(*_USUAL, first=b"GET / HTTP/1.2"),
    _head(*_USUAL, first=b"GET http://example.com/chat?x HTTP/1.1"),
    _head(*_USUAL, first=b"GET ws://example.com HTTP/1.1"),
    b"\r\n" + _head(*_USUAL),
    _head(*_USUAL, b"Content-Length: 0"),
    _head(*_USUAL, b"Connection: keep-alive"),
    _head(*_USUAL, b"Upgrade: websocket"),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: \x0b" + KEY),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version: 13\x0c"),
    _replaced(b"Upgrade", b"Upgrade: \x1cwebsocket"),
    _head(*_USUAL, b"X-" + b"n" * 200 + b": long name"),
]

# Heads the reference refuses: the C function must leave them to it.
REFUSED = [
    b"",
    b"GET",
    b"GET / HTTP/1.1",
    b"\x16\x03\x01\x02\x00",
    _head(*_USUAL, first=b"POST / HTTP/1.1"),
    _head(*_USUAL, first=b"get / HTTP/1.1"),
    _head(*_USUAL, first=b"GET  / HTTP/1.1"),
    _head(*_USUAL, first=b"GET / HTTP/1.1 "),
    _head(*_USUAL, first=b"GET / HTTP/1.0"),
    _head(*_USUAL, first=b"GET / HTTP/2.0"),
    _head(*_USUAL, first=b"GET / http/1.1"),
    _head(*_USUAL, first=b"GET / HTTP/1.11"),
    _head(*_USUAL, first=b"GET /a b HTTP/1.1"),
    _head(*_USUAL, first=b"GET /a#b HTTP/1.1"),
    _head(*_USUAL, first=b"GET /a\x01 HTTP/1.1"),
    _head(*_USUAL, first=b"GET /a\x7f HTTP/1.1"),
    _head(*_USUAL, first=b"GET /a\x00 HTTP/1.1"),
    _head(*_USUAL, first=b"GET /a\tb HTTP/1.1"),
    _head(*_USUAL, first=b"GET * HTTP/1.1"),
    _head(*_USUAL, first=b"GET a HTTP/1.1"),
    _head(*_USUAL, first=b"GET HTTP/1.1"),
    # RFC 9112 §2.2: CRLF only.
    BASE.replace(b"\r\nUpgrade", b"\nUpgrade"),
    BASE.replace(b"\r\nUpgrade", b"\rUpgrade"),
    BASE.replace(b"websocket", b"web\rsocket"),
    BASE.replace(b"websocket", b"web\nsocket"),
    BASE + b"\r",
    BASE + b"\n",
    BASE + b"\r\n",
    BASE.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\n"),
    # RFC 9110 §5.5: no NUL; RFC 9112 §5.2: no obsolete line folding.
    BASE.replace(b"websocket", b"web\x00socket"),
    BASE.replace(b"\r\nUpgrade: websocket", b"\r\n Upgrade: websocket"),
    BASE.replace(b"\r\nUpgrade: websocket", b"\r\nUpgrade:\r\n websocket"),
    BASE.replace(b"\r\nUpgrade: websocket", b"\r\n\tUpgrade: websocket"),
    # RFC 9110 §5.1: names are tokens, then a colon.
    BASE.replace(b"Upgrade:", b"Upgrade :"),
    BASE.replace(b"Upgrade:", b"Up grade:"),
    BASE.replace(b"Upgrade:", b"Upgrade@:"),
    BASE.replace(b"Upgrade:", b"Upgr\xe9de:"),
    BASE.replace(b"Upgrade:", b":"),
    BASE.replace(b"Upgrade: websocket", b"Upgrade"),
    _head(*_USUAL, b"X-Empty-Line", b""),
    # RFC 6455 §4.2.1: each of these, once.
    _without(b"Host"),
    _without(b"Upgrade"),
    _without(b"Connection"),
    _without(b"Sec-WebSocket-Key"),
    _without(b"Sec-WebSocket-Version"),
    _replaced(b"Host", b"Host:"),
    _replaced(b"Host", b"Host:  \t "),
    _head(*_USUAL, b"Host: other"),
    _head(*_USUAL, b"Host: a,b"),
    _head(*_USUAL, b"Sec-WebSocket-Key: " + KEY),
    _head(*_USUAL, b"Sec-WebSocket-Version: 13"),
    _replaced(b"Upgrade", b"Upgrade: websocket2"),
    _replaced(b"Upgrade", b"Upgrade: web socket"),
    _replaced(b"Upgrade", b"Upgrade: websocket/13"),
    _replaced(b"Upgrade", b"Upgrade:"),
    _replaced(b"Connection", b"Connection: keep-alive"),
    _replaced(b"Connection", b"Connection: upgrades"),
    _replaced(b"Connection", b"Connection: keep-alive upgrade"),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version: 8"),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version: 013"),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version: 12"),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version: 31"),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version: 1 3"),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version: 13, 8"),
    _replaced(b"Sec-WebSocket-Version", b"Sec-WebSocket-Version:"),
    # RFC 6455 §4.1: the key is 16 bytes in base64.
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: " + KEY[:-2]),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: " + KEY[:-1]),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: " + KEY + b"="),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: A" + KEY),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: " + KEY[:21] + b"==="),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: " + KEY[:21] + b"*=="),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: " + KEY[:21] + b"\xe9=="),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: " + KEY[:10] + b" " + KEY[11:]),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA"),
    _replaced(b"Sec-WebSocket-Key", b"Sec-WebSocket-Key:"),
    # RFC 9112 §6.3: no body.
    _head(*_USUAL, b"Content-Length: 5"),
    _head(*_USUAL, b"Content-Length: x"),
    _head(*_USUAL, b"Transfer-Encoding: chunked"),
]


def _reference(head: bytes, max_headers: int = 100) -> tuple:
    """
    @return: what the reference makes of C{head}: C{("ok", method, target,
        version, headers, index, key)}, or C{("refused", type, reason,
        status)}.
    """
    try:
        request = parse_request(head, max_headers)
        key = validate_request(request, None)
    except HandshakeFailed as e:
        return ("refused", type(e), e.reason, e.status)
    return ("ok", request.method, request.target, request.http_version, request.headers, request._index, key)


def _fast(head: bytes, max_headers: int = 100) -> tuple | None:
    """
    @return: what the C function makes of C{head}, as L{_reference} has
        it, or L{None} when it leaves it to the reference.
    """
    parsed = _speedups.parse_upgrade_request(head, max_headers, handshake._SHARED_VALUES, handshake._SHARED_PAIRS)
    if parsed is None:
        return None
    method, target, headers, index, key = parsed
    return ("ok", method, target, (1, 1), headers, index, key)


class ParseUpgradeRequestTests(SynchronousTestCase):
    """
    L{_speedups.parse_upgrade_request} against the reference, head by head.
    """

    def setUp(self) -> None:
        _requireBuilt(self)

    def test_accepted(self) -> None:
        """
        The usual opening requests are parsed in C, to exactly what the
        reference makes of them: the same method, target, fields in order
        (names as sent, values without surrounding spaces and tabs, 8-bit
        bytes as latin-1), index (repeated fields joined with C{", "}) and
        key.
        """
        for head in ACCEPTED:
            reference = _reference(head)
            self.assertEqual(reference[0], "ok", head)
            self.assertEqual(_fast(head), reference, head)

    def test_exactResult(self) -> None:
        """
        One head's result, spelled out.
        """
        head = _head(*_USUAL, b"X-A:  1 ", b"x-a: \xe92")
        self.assertEqual(
            _speedups.parse_upgrade_request(head, 100, handshake._SHARED_VALUES, handshake._SHARED_PAIRS),
            (
                "GET",
                "/",
                (("Host", "example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                 ("Sec-WebSocket-Key", KEY.decode()), ("Sec-WebSocket-Version", "13"), ("X-A", "1"),
                 ("x-a", "\xe92")),
                {"host": "example.com", "upgrade": "websocket", "connection": "Upgrade",
                 "sec-websocket-key": KEY.decode(), "sec-websocket-version": "13", "x-a": "1, \xe92"},
                KEY.decode(),
            ),
        )

    def test_leftToReference(self) -> None:
        """
        Heads the reference accepts but that are not the usual request
        are left to it (or parsed to the same result).
        """
        for head in LEFT:
            reference = _reference(head)
            self.assertEqual(reference[0], "ok", head)
            self.assertIn(_fast(head), (None, reference), head)

    def test_refused(self) -> None:
        """
        Every head the reference refuses is left to it, to say why.
        """
        for head in REFUSED:
            self.assertEqual(_reference(head)[0], "refused", head)
            self.assertIsNone(_fast(head), head)

    def test_tooManyHeaders(self) -> None:
        """
        A head with more field lines than C{max_headers} is left to the
        reference (which refuses it); one with as many is parsed.
        """
        self.assertEqual(_reference(BASE, 4)[0], "refused")
        self.assertIsNone(_fast(BASE, 4))
        self.assertEqual(_fast(BASE, 5), _reference(BASE, 5))

    def test_everyPrefix(self) -> None:
        """
        Every prefix of a head (each a bytes object of its own size, so
        that reading past its end would read what is not there) is parsed
        as the reference parses it, or left to it.
        """
        head = _head(*_USUAL, b"Origin: http://a", first=b"GET /chat?x=1 HTTP/1.1")
        for end in range(len(head) + 1):
            prefix = bytes(head[:end])
            reference = _reference(prefix)
            fast = _fast(prefix)
            if reference[0] == "refused":
                self.assertIsNone(fast, prefix)
            else:
                self.assertIn(fast, (None, reference), prefix)

    def test_mutations(self) -> None:
        """
        Heads changed at random (bytes replaced, inserted or removed, among
        them the ones that matter to HTTP) are parsed as the reference
        parses them, or left to it, and never accepted when it refuses.
        """
        rng = random.Random(6455)
        special = b"\r\n\x00 \t:,#=/\x7f\x80\xe9\xffAaz09"
        accepted = refused = 0
        for _ in range(4000):
            head = bytearray(rng.choice(ACCEPTED))
            for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 3)):
                at = rng.randrange(len(head) + 1)
                byte = rng.choice(special) if rng.random() < 0.8 else rng.randrange(256)
                kind = rng.randrange(3)
                if kind == 0 and at < len(head):
                    head[at] = byte
                elif kind == 1:
                    head.insert(at, byte)
                elif at < len(head):
                    del head[at]
            head = bytes(head)
            reference = _reference(head)
            fast = _fast(head)
            if reference[0] == "refused":
                refused += 1
                self.assertIsNone(fast, head)
            else:
                self.assertIn(fast, (None, reference), head)
                accepted += fast is not None
        # Both sides of the line were tried.
        self.assertGreater(accepted, 300)
        self.assertGreater(refused, 500)

    def test_sharesValues(self) -> None:
        """
        Like the reference, the C function shares between requests one
        (name, value) pair per line of the fields whose values repeat
        (C{Upgrade: websocket}), with the reference's own pairs: an idle
        connection holds no copy of its own.
        """
        first = _fast(BASE)
        second = _fast(BASE)
        reference = _reference(BASE)
        assert first is not None and second is not None
        self.assertIs(first[4][1], second[4][1])
        self.assertIs(first[4][1], reference[4][1])
        # The key differs from one request to the next: not shared.
        self.assertIsNot(first[4][3], second[4][3])

    def test_badArguments(self) -> None:
        """
        The head must be C{bytes}, with four arguments in all.
        """
        shared = (handshake._SHARED_VALUES, handshake._SHARED_PAIRS)
        self.assertRaises(TypeError, _speedups.parse_upgrade_request, bytearray(BASE), 100, *shared)
        self.assertRaises(TypeError, _speedups.parse_upgrade_request, BASE, 100)
        self.assertRaises(TypeError, _speedups.parse_upgrade_request, BASE, 100, {}, {})
        self.assertRaises(TypeError, _speedups.parse_upgrade_request, BASE, "100", *shared)


class ReadRequestTests(SynchronousTestCase):
    """
    L{read_request}, with and without the C accelerator, gives what
    L{parse_request} and L{validate_request} give.
    """

    def test_selected(self) -> None:
        """
        L{read_request} uses the C function unless C{WSPROTO_TW_NO_SPEEDUPS}
        is set (or it was not built).
        """
        if NO_SPEEDUPS or _speedups is None:
            self.assertIsNone(handshake._parse_upgrade_request)
        else:
            self.assertIs(handshake._parse_upgrade_request, _speedups.parse_upgrade_request)

    def _readOutcome(self, head: bytes, origins: frozenset[str] | None) -> tuple:
        try:
            request, key = read_request(head, 100, "peer", origins)
        except HandshakeFailed as e:
            return ("refused", type(e), e.reason, e.status, e.headers)
        return ("ok", request, request._index, request.peer, key)

    def test_sameOutcome(self) -> None:
        """
        For every head, whichever implementation parses it, L{read_request}
        returns the same request and key, or raises the same error; an
        allowed origin is checked on both paths.
        """
        origins = frozenset(["https://example.com"])
        heads = ACCEPTED + LEFT + REFUSED
        fast = [self._readOutcome(head, origins) for head in heads]
        fast += [self._readOutcome(head, None) for head in heads]
        self.patch(handshake, "_parse_upgrade_request", None)
        slow = [self._readOutcome(head, origins) for head in heads]
        slow += [self._readOutcome(head, None) for head in heads]
        self.assertEqual(fast, slow)
        # Both outcomes, and the origin refused on the fast path too.
        kinds = [outcome[:2] for outcome in fast if outcome[0] == "refused"]
        self.assertIn(("refused", handshake.ForbiddenOrigin), kinds)
        self.assertIn("ok", [outcome[0] for outcome in fast])

    def test_request(self) -> None:
        """
        The request read is a L{handshake.HandshakeRequest} with the peer
        given, its path, and its headers looked up by any case.
        """
        request, key = read_request(_head(*_USUAL, first=b"GET /chat?a=1 HTTP/1.1"), 100, "peer", None)
        self.assertEqual(key, KEY.decode())
        self.assertEqual((request.method, request.path, request.query, request.peer), ("GET", "/chat", "a=1", "peer"))
        self.assertEqual(request.http_version, (1, 1))
        self.assertEqual(request.get("SEC-WEBSOCKET-VERSION"), "13")

    def test_madeRequest(self) -> None:
        """
        The request the fast path makes without the dataclass's
        C{__init__} is the one C{__init__} makes, field by field, a
        L{handshake.PeerSource} given as its peer asked for the address
        when C{peer} is first read.
        """
        headers = (("Host", "a"),)
        index = {"host": "a"}
        made = handshake._made_request("GET", "/x?y", headers, "peer", index)
        self.assertEqual(made, handshake.HandshakeRequest("GET", "/x?y", (1, 1), headers, "peer", index))
        self.assertEqual(
            (made.method, made.target, made.http_version, made.headers, made.peer, made._index),
            ("GET", "/x?y", (1, 1), headers, "peer", index),
        )
        self.assertIs(made._index, index)

        class Source(handshake.PeerSource):
            asked = 0

            def peer_address(self) -> object:
                self.asked += 1
                return "address"

        source = Source()
        made = handshake._made_request("GET", "/", headers, source, index)
        self.assertEqual(source.asked, 0)
        self.assertEqual((made.peer, made.peer, source.asked), ("address", "address", 1))
