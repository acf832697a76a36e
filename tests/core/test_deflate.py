"""
Tests for L{wsproto_tw.core.deflate}: permessage-deflate (RFC 7692)
negotiation in both roles, the per-message codec with the examples of RFC
7692 §7.2.3, the violations it turns into close codes, and the size limit
applied to what a message inflates to.
"""

from __future__ import annotations

import random
import struct
import time
import tracemalloc
import zlib

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import (
    clientFrame,
    fixedMask,
    openedClient,
    openedServer,
    parseFrames,
    requestBytes,
    responseBytes,
    sentCloseCode,
    serverFrame,
)
from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, ServerConnection, State
from wsproto_tw.core.deflate import (
    DeflateCodec,
    PerMessageDeflate,
    client_accept,
    client_offer,
    negotiate_server,
    parse_extensions,
)
from wsproto_tw.core.errors import (
    HandshakeFailed,
    HandshakeRejected,
    InvalidCompressedData,
    MessageTooBig,
)
from wsproto_tw.core.events import (
    BinaryMessage,
    ConnectionFailed,
    HandshakeFailure,
    Opened,
    Ping,
    RequestReceived,
    TextMessage,
)

MiB = 1 << 20
TAIL = b"\x00\x00\xff\xff"

# RFC 7692 §7.2.3.1: "Hello", compressed, as one frame's payload.
HELLO = bytes.fromhex("f2 48 cd c9 c9 07 00")
# RFC 7692 §7.2.3.2: the second "Hello" compressed with the same window.
HELLO_AGAIN = bytes.fromhex("f2 00 11 00 00")

NO_TIMERS = {"ping_interval": None}


def compressed(payload: bytes, window_bits: int = 15) -> bytes:
    """
    C{payload} as a permessage-deflate message body, by zlib alone (RFC
    7692 §7.2.1: raw deflate, sync flush, the 4-byte tail removed).
    """
    compressor = zlib.compressobj(6, zlib.DEFLATED, -window_bits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(TAIL)
    return data[:-4]


def strictInflate(body: bytes, window_bits: int) -> bytes:
    """
    Inflate a message body one output byte per call, so that every
    back-reference has to come from zlib's window of C{2 ** window_bits}
    bytes: a stream that reaches further back fails ("invalid distance too
    far back").
    """
    decompressor = zlib.decompressobj(-window_bits)
    out = bytearray()
    data = body + TAIL
    while data:
        out += decompressor.decompress(data, 1)
        data = decompressor.unconsumed_tail
    return bytes(out)


def zeroMaskedFrame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """
    A client frame with the masking key C{00 00 00 00}, so that a large
    payload goes out as it is without masking it byte by byte in Python.
    """
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 0x10000:
        head += b"\xfe" + struct.pack("!H", n)
    else:
        head += b"\xff" + struct.pack("!Q", n)
    return head + b"\x00\x00\x00\x00" + payload


def deflatedServer(policy: PerMessageDeflate | None = None, offer: str = "permessage-deflate", **config) -> ServerConnection:
    """
    An open server whose client offered C{offer}.
    """
    return openedServer(
        Config(compression=policy or PerMessageDeflate(), **{**NO_TIMERS, **config}),
        headers=[("Sec-WebSocket-Extensions", offer)],
    )


def deflatedClient(
    policy: PerMessageDeflate | None = None, answer: str = "permessage-deflate", **config
) -> ClientConnection:
    """
    An open client whose offer the server answered with C{answer}.
    """
    return openedClient(
        Config(compression=policy or PerMessageDeflate(), **{**NO_TIMERS, **config}),
        headers=[("Sec-WebSocket-Extensions", answer)],
    )


def bombParts() -> tuple[bytes, bytes]:
    """
    What zlib makes of a message of zeros, one sync-flushed MiB at a time:
    the output for the first MiB and, once the window is all zeros, the
    output for every further MiB, which is always the same bytes. C{first +
    steady * (n - 1)} is then a valid message body that inflates to C{n}
    MiB, and building it costs no compression time.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    zeros = bytes(MiB)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    steady = compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressor.compress(zeros) + compressor.flush(zlib.Z_SYNC_FLUSH) == steady
    return first, steady


class ParseExtensionsTests(SynchronousTestCase):
    """
    L{parse_extensions} reads C{Sec-WebSocket-Extensions} (RFC 6455 §9.1).
    """

    def test_severalExtensions(self):
        """
        Each extension comes out with its parameters, in order; a parameter
        without a value has L{None}.
        """
        self.assertEqual(
            parse_extensions(
                "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame;no_context_takeover, foo"
            ),
            [
                ("permessage-deflate", [("client_max_window_bits", None)]),
                ("x-webkit-deflate-frame", [("no_context_takeover", None)]),
                ("foo", []),
            ],
        )

    def test_values(self):
        """
        Parameter values are tokens, with optional whitespace around C{;}
        and C{=}.
        """
        self.assertEqual(
            parse_extensions("permessage-deflate ;server_max_window_bits=10 ; client_max_window_bits = 9"),
            [("permessage-deflate", [("server_max_window_bits", "10"), ("client_max_window_bits", "9")])],
        )

    def test_quotedValues(self):
        """
        A quoted-string value is unquoted, quoted-pairs included.
        """
        self.assertEqual(
            parse_extensions('permessage-deflate; server_max_window_bits="10"; x="a\\bc"'),
            [("permessage-deflate", [("server_max_window_bits", "10"), ("x", "abc")])],
        )

    def test_emptyElements(self):
        """
        Empty list elements are skipped (RFC 9110 §5.6.1), and an empty
        value is an empty list.
        """
        self.assertEqual(parse_extensions(" , a ,, b ,"), [("a", []), ("b", [])])
        self.assertEqual(parse_extensions(""), [])

    def test_malformed(self):
        """
        A value that does not follow the grammar raises L{ValueError}
        saying where.
        """
        cases = [
            ("a;", "expected a parameter name at end of header"),
            ("a; =1", "expected a parameter name at '='"),
            ("a; b=", "expected a parameter value at end of header"),
            ("a; b=@", "expected a parameter value at '@'"),
            ('a; b="1', "unterminated quoted string"),
            ('a; b="1 0"', "quoted value '1 0' is not a token"),
            ("a b", "unexpected 'b'"),
            ("a; b=c=d", "unexpected '='"),
            ('"a"', "expected an extension name at '\"'"),
        ]
        for value, message in cases:
            error = self.assertRaises(ValueError, parse_extensions, value)
            self.assertEqual(str(error), message, value)


class PolicyTests(SynchronousTestCase):
    """
    L{PerMessageDeflate} holds a valid policy.
    """

    def test_defaults(self):
        """
        By default: full windows, the server keeps its compression context
        as the last 4096 bytes it sent, the client compresses each message
        on its own, zlib's memLevel 8 and level 6, and every message
        compressed.
        """
        policy = PerMessageDeflate()
        self.assertEqual(
            (
                policy.server_no_context_takeover, policy.client_no_context_takeover,
                policy.server_max_window_bits, policy.client_max_window_bits,
                policy.mem_level, policy.compress_level, policy.min_size, policy.context_size,
            ),
            (False, True, 15, 15, 8, 6, 0, 4096),
        )

    def test_invalid(self):
        """
        Out-of-range numbers raise L{ValueError}, non-bool flags
        L{TypeError}.
        """
        cases = [
            ({"server_max_window_bits": 7}, "server_max_window_bits must be an integer from 8 to 15, not 7"),
            ({"server_max_window_bits": 16}, "server_max_window_bits must be an integer from 8 to 15, not 16"),
            ({"client_max_window_bits": 7}, "client_max_window_bits must be an integer from 8 to 15, not 7"),
            ({"client_max_window_bits": True}, "client_max_window_bits must be an integer from 8 to 15, not True"),
            ({"mem_level": 0}, "mem_level must be an integer from 1 to 9, not 0"),
            ({"mem_level": 10}, "mem_level must be an integer from 1 to 9, not 10"),
            ({"compress_level": 10}, "compress_level must be an integer from -1 to 9, not 10"),
            ({"min_size": -1}, "min_size must be a non-negative integer, not -1"),
            ({"context_size": -1}, "context_size must be an integer from 0 to 32768 or None, not -1"),
            ({"context_size": 32769}, "context_size must be an integer from 0 to 32768 or None, not 32769"),
            ({"context_size": 1.5}, "context_size must be an integer from 0 to 32768 or None, not 1.5"),
        ]
        for kwargs, message in cases:
            error = self.assertRaises(ValueError, PerMessageDeflate, **kwargs)
            self.assertEqual(str(error), message)
        error = self.assertRaises(TypeError, PerMessageDeflate, server_no_context_takeover=1)
        self.assertEqual(str(error), "server_no_context_takeover must be a bool, not 1")


class ServerNegotiationTests(SynchronousTestCase):
    """
    L{negotiate_server} answers the first offer the policy accepts (RFC
    7692 §5, §7.1).
    """

    def assertAnswer(self, policy, offer, answer, local=(15, True), peer=(15, False)):
        """
        C{offer} gets the response C{answer} and a codec compressing with
        C{local} (window bits, context takeover) and inflating with C{peer}.
        """
        response, codec = negotiate_server(policy, offer)
        self.assertEqual(response, answer)
        self.assertEqual(
            ((codec.local_window_bits, codec.local_context_takeover),
             (codec.peer_window_bits, codec.peer_context_takeover)),
            (local, peer),
        )

    def assertDeclined(self, policy, offer):
        self.assertEqual(negotiate_server(policy, offer), (None, None))

    def test_noOffer(self):
        """
        Without the header nothing is negotiated.
        """
        self.assertDeclined(PerMessageDeflate(), None)
        self.assertDeclined(PerMessageDeflate(), "")

    def test_plainOffer(self):
        """
        By default a server asks the client for C{client_no_context_takeover}
        (so that it keeps no inflate state between messages) and keeps its
        own context.
        """
        self.assertAnswer(PerMessageDeflate(), "permessage-deflate", "permessage-deflate; client_no_context_takeover")

    def test_plainOfferBothContexts(self):
        """
        A policy that lets the client keep its context answers with no
        parameter at all.
        """
        policy = PerMessageDeflate(client_no_context_takeover=False)
        self.assertAnswer(policy, "permessage-deflate", "permessage-deflate", peer=(15, True))

    def test_serverNoContextTakeoverOffered(self):
        """
        An offered C{server_no_context_takeover} is always accepted (RFC 7692
        §7.1.1.1): the server then compresses each message on its own.
        """
        policy = PerMessageDeflate(client_no_context_takeover=False)
        self.assertAnswer(
            policy, "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover", local=(15, False), peer=(15, True),
        )

    def test_serverNoContextTakeoverByPolicy(self):
        """
        A policy with C{server_no_context_takeover} says so unasked.
        """
        self.assertAnswer(
            PerMessageDeflate(server_no_context_takeover=True), "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover", local=(15, False),
        )

    def test_clientNoContextTakeoverOffered(self):
        """
        An offered C{client_no_context_takeover} is echoed, even by a policy
        that would let the client keep its context.
        """
        policy = PerMessageDeflate(client_no_context_takeover=False)
        self.assertAnswer(
            policy, "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        )

    def test_serverMaxWindowBitsOffered(self):
        """
        An offered C{server_max_window_bits} is answered with it, or with
        the policy's smaller window (RFC 7692 §7.1.2.1).
        """
        offer = "permessage-deflate; server_max_window_bits=10"
        self.assertAnswer(
            PerMessageDeflate(), offer,
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10", local=(10, True),
        )
        self.assertAnswer(
            PerMessageDeflate(server_max_window_bits=9), offer,
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=9", local=(9, True),
        )
        self.assertAnswer(
            PerMessageDeflate(server_max_window_bits=12), offer,
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10", local=(10, True),
        )

    def test_serverMaxWindowBitsByPolicy(self):
        """
        A policy with a smaller window says so unasked.
        """
        self.assertAnswer(
            PerMessageDeflate(server_max_window_bits=11), "permessage-deflate",
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=11", local=(11, True),
        )

    def test_clientMaxWindowBitsOffered(self):
        """
        An offered C{client_max_window_bits} with a value is answered with
        the smaller of it and the policy's; without a value, the policy's
        window is answered only if it is below 15.
        """
        self.assertAnswer(
            PerMessageDeflate(), "permessage-deflate; client_max_window_bits=12",
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=12", peer=(12, False),
        )
        self.assertAnswer(
            PerMessageDeflate(client_max_window_bits=10), "permessage-deflate; client_max_window_bits=12",
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=10", peer=(10, False),
        )
        self.assertAnswer(
            PerMessageDeflate(), "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_no_context_takeover",
        )
        self.assertAnswer(
            PerMessageDeflate(client_max_window_bits=9), "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=9", peer=(9, False),
        )

    def test_clientWindowCapDeclinesUnlimitableClient(self):
        """
        A policy capping the client's window declines an offer without
        C{client_max_window_bits}: such a client can't be told (RFC 7692
        §7.1.2.2), and the next offer is considered.
        """
        policy = PerMessageDeflate(client_max_window_bits=10)
        self.assertDeclined(policy, "permessage-deflate")
        self.assertAnswer(
            policy, "permessage-deflate; server_no_context_takeover, permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=10", peer=(10, False),
        )

    def test_allFourParameters(self):
        """
        An offer with every parameter gets each of them back.
        """
        self.assertAnswer(
            PerMessageDeflate(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9; client_max_window_bits=8",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=9; client_max_window_bits=8",
            local=(9, False), peer=(8, False),
        )

    def test_firstAcceptableOffer(self):
        """
        Offers are tried in order and other extensions are skipped; the first
        valid one is answered.
        """
        self.assertAnswer(
            PerMessageDeflate(),
            "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=11, permessage-deflate",
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=11", local=(11, True),
        )

    def test_invalidOffersDeclined(self):
        """
        An offer with an unknown or repeated parameter, an out-of-range or
        malformed window, or a value where none belongs, is declined; a
        later valid offer is still accepted.
        """
        for offer in [
            "permessage-deflate; foo",
            "permessage-deflate; foo=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=9; client_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            'permessage-deflate; client_max_window_bits="x"',
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=true",
            "x-webkit-deflate-frame",
        ]:
            self.assertDeclined(PerMessageDeflate(), offer)
            self.assertAnswer(
                PerMessageDeflate(), offer + ", permessage-deflate",
                "permessage-deflate; client_no_context_takeover",
            )

    def test_caseInsensitiveNames(self):
        """
        Extension and parameter names are compared case-insensitively.
        """
        self.assertAnswer(
            PerMessageDeflate(), "PerMessage-Deflate; Server_Max_Window_Bits=10",
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10", local=(10, True),
        )

    def test_malformedHeader(self):
        """
        A header that does not follow RFC 6455 §9.1 raises
        L{HandshakeFailed} with status 400.
        """
        error = self.assertRaises(HandshakeFailed, negotiate_server, PerMessageDeflate(), "permessage-deflate;")
        self.assertEqual(
            (error.status, error.reason),
            (400, "malformed sec-websocket-extensions: expected a parameter name at end of header"),
        )


class ServerHandshakeTests(SynchronousTestCase):
    """
    The server connection negotiates during the opening handshake.
    """

    def test_acceptResponse(self):
        """
        The C{101} response carries the answer, and C{extensions} holds it.
        """
        server = ServerConnection(Config(compression=PerMessageDeflate()), now=0.0)
        server.receive_data(
            requestBytes(headers=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]),
            now=0.0,
        )
        self.assertEqual([type(e) for e in server.events()], [RequestReceived])
        server.accept(now=0.0)
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n\r\n",
        )
        self.assertEqual(server.extensions, "permessage-deflate; client_no_context_takeover")

    def test_repeatedHeaderFields(self):
        """
        Offers spread over several header fields are read as one list.
        """
        server = deflatedServer(offer="permessage-deflate; foo")
        self.assertIsNone(server.extensions)
        server = openedServer(
            Config(compression=PerMessageDeflate()),
            headers=[
                ("Sec-WebSocket-Extensions", "permessage-deflate; foo"),
                ("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover"),
            ],
        )
        self.assertEqual(server.extensions, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")

    def test_malformedHeader(self):
        """
        A malformed C{Sec-WebSocket-Extensions} is answered with 400.
        """
        server = ServerConnection(Config(compression=PerMessageDeflate()), now=0.0)
        server.receive_data(requestBytes(headers=[("Sec-WebSocket-Extensions", "permessage-deflate x")]), now=0.0)
        events = list(server.events())
        self.assertEqual([type(e) for e in events], [HandshakeFailure])
        self.assertEqual(
            server.data_to_send(),
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 51\r\n"
            b"Connection: close\r\n\r\nmalformed sec-websocket-extensions: unexpected 'x'\n",
        )
        self.assertTrue(server.wants_transport_closed)

    def test_declinedOffer(self):
        """
        A declined offer opens the connection without compression: no
        header, and RSV1 from the client fails it with 1002.
        """
        server = deflatedServer(offer="permessage-deflate; server_max_window_bits=16")
        self.assertIsNone(server.extensions)
        server.receive_data(clientFrame(Opcode.TEXT, HELLO, rsv=4), now=0.0)
        self.assertEqual(
            list(server.events()), [ConnectionFailed(1002, "reserved bits set without a negotiated extension")]
        )

    def test_compressionOff(self):
        """
        Without a policy, offers are ignored and RSV1 is a protocol error.
        """
        server = openedServer(Config(**NO_TIMERS), headers=[("Sec-WebSocket-Extensions", "permessage-deflate")])
        self.assertIsNone(server.extensions)
        server.receive_data(clientFrame(Opcode.TEXT, HELLO, rsv=4), now=0.0)
        self.assertEqual([type(e) for e in server.events()], [ConnectionFailed])
        self.assertEqual(sentCloseCode(server.data_to_send()), 1002)


class ClientNegotiationTests(SynchronousTestCase):
    """
    L{client_offer} makes the client's offer and L{client_accept} checks the
    server's answer against it (RFC 7692 §7.1).
    """

    def test_defaultOffer(self):
        """
        The default offer says that the client compresses each message on
        its own and lets the server lower the client's window.
        """
        self.assertEqual(
            client_offer(PerMessageDeflate()), "permessage-deflate; client_no_context_takeover; client_max_window_bits"
        )

    def test_fullOffer(self):
        """
        Every parameter of the policy is offered.
        """
        policy = PerMessageDeflate(
            server_no_context_takeover=True, client_no_context_takeover=False,
            server_max_window_bits=10, client_max_window_bits=9,
        )
        self.assertEqual(
            client_offer(policy),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9",
        )

    def test_requestHeader(self):
        """
        The client's opening request carries the offer.
        """
        client = ClientConnection(
            Config(compression=PerMessageDeflate()), host="h", now=0.0, mask_source=fixedMask()
        )
        self.assertIn(
            b"\r\nSec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_max_window_bits\r\n",
            client.data_to_send(),
        )

    def test_acceptPlain(self):
        """
        A bare answer: full windows, the server keeps its context, the
        client compresses each message on its own as its policy says.
        """
        codec = client_accept(PerMessageDeflate(), "permessage-deflate")
        self.assertEqual(
            (codec.local_window_bits, codec.local_context_takeover, codec.peer_window_bits, codec.peer_context_takeover),
            (15, False, 15, True),
        )

    def test_acceptAllFour(self):
        """
        An answer may lower both windows and turn off both contexts, even
        unasked (RFC 7692 §7.1.1, §7.1.2).
        """
        codec = client_accept(
            PerMessageDeflate(client_no_context_takeover=False),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            'server_max_window_bits=10; client_max_window_bits="9"',
        )
        self.assertEqual(
            (codec.local_window_bits, codec.local_context_takeover, codec.peer_window_bits, codec.peer_context_takeover),
            (9, False, 10, False),
        )

    def test_acceptWindowsAsAsked(self):
        """
        Windows at or under what was offered are accepted.
        """
        policy = PerMessageDeflate(server_max_window_bits=10, client_max_window_bits=12)
        codec = client_accept(policy, "permessage-deflate; server_max_window_bits=10")
        self.assertEqual((codec.local_window_bits, codec.peer_window_bits), (12, 10))
        codec = client_accept(policy, "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8")
        self.assertEqual((codec.local_window_bits, codec.peer_window_bits), (8, 8))

    def test_invalidAnswers(self):
        """
        An answer that is not a valid reply to the offer raises
        L{HandshakeRejected} with status 101 and says what is wrong.
        """
        default = PerMessageDeflate()
        cases = [
            (default, "x-foo", "server accepted extension 'x-foo', which was not offered"),
            (default, "permessage-deflate, x-foo", "server accepted extension 'x-foo', which was not offered"),
            (default, "permessage-deflate, permessage-deflate", "server accepted permessage-deflate more than once"),
            (default, "", "empty sec-websocket-extensions"),
            (default, "permessage-deflate;", "malformed sec-websocket-extensions: expected a parameter name at end of header"),
            (default, "permessage-deflate; foo", "invalid permessage-deflate response: unknown parameter foo"),
            (default, "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
             "invalid permessage-deflate response: duplicate parameter client_no_context_takeover"),
            (default, "permessage-deflate; server_max_window_bits=16",
             "invalid permessage-deflate response: invalid server_max_window_bits '16'"),
            (default, "permessage-deflate; client_max_window_bits",
             "client_max_window_bits without a value"),
            (PerMessageDeflate(server_no_context_takeover=True), "permessage-deflate",
             "server did not accept server_no_context_takeover"),
            (PerMessageDeflate(server_max_window_bits=10), "permessage-deflate",
             "server did not accept server_max_window_bits"),
            (PerMessageDeflate(server_max_window_bits=10), "permessage-deflate; server_max_window_bits=11",
             "server_max_window_bits=11 is over the 10 offered"),
            (PerMessageDeflate(client_max_window_bits=10), "permessage-deflate; client_max_window_bits=11",
             "client_max_window_bits=11 is over the 10 offered"),
        ]
        for policy, answer, reason in cases:
            error = self.assertRaises(HandshakeRejected, client_accept, policy, answer)
            self.assertEqual((error.status, error.reason), (101, reason), answer)


class ClientHandshakeTests(SynchronousTestCase):
    """
    The client connection checks the answer during the opening handshake.
    """

    def client(self, policy: PerMessageDeflate | None = None) -> ClientConnection:
        client = ClientConnection(
            Config(compression=policy or PerMessageDeflate()), host="h", now=0.0, mask_source=fixedMask()
        )
        client.data_to_send()
        return client

    def test_opened(self):
        """
        A valid answer opens the connection; L{Opened} and C{extensions}
        carry it.
        """
        client = self.client()
        answer = "permessage-deflate; client_no_context_takeover"
        client.receive_data(responseBytes(client.key, [("Sec-WebSocket-Extensions", answer)]), now=0.0)
        events = list(client.events())
        self.assertEqual([type(e) for e in events], [Opened])
        self.assertEqual((events[0].extensions, client.extensions), (answer, answer))

    def test_declined(self):
        """
        A server may decline: the connection opens without compression, and
        RSV1 from it fails the connection with 1002.
        """
        client = self.client()
        client.receive_data(responseBytes(client.key), now=0.0)
        self.assertEqual([type(e) for e in client.events()], [Opened])
        self.assertIsNone(client.extensions)
        client.send_text("Hello")
        self.assertEqual(parseFrames(client.data_to_send()), [(0x1, b"Hello", True, 0)])
        client.receive_data(serverFrame(Opcode.TEXT, HELLO, rsv=4), now=0.0)
        self.assertEqual(
            list(client.events()), [ConnectionFailed(1002, "reserved bits set without a negotiated extension")]
        )

    def test_invalidAnswerFails(self):
        """
        An answer that does not match the offer fails the handshake with
        L{HandshakeRejected} (status 101) and closes the transport.
        """
        for policy, answer, reason in [
            (None, "x-foo", "server accepted extension 'x-foo', which was not offered"),
            (None, "permessage-deflate; bar=1", "invalid permessage-deflate response: unknown parameter bar"),
            (PerMessageDeflate(server_max_window_bits=9), "permessage-deflate; server_max_window_bits=12",
             "server_max_window_bits=12 is over the 9 offered"),
            (PerMessageDeflate(server_no_context_takeover=True), "permessage-deflate",
             "server did not accept server_no_context_takeover"),
        ]:
            client = self.client(policy)
            client.receive_data(responseBytes(client.key, [("Sec-WebSocket-Extensions", answer)]), now=0.0)
            events = list(client.events())
            self.assertEqual([type(e) for e in events], [HandshakeFailure])
            self.assertIsInstance(events[0].error, HandshakeRejected)
            self.assertEqual((events[0].error.status, events[0].error.reason), (101, reason))
            self.assertIs(client.state, State.CLOSED)
            self.assertTrue(client.wants_transport_closed)


class RfcExampleTests(SynchronousTestCase):
    """
    The examples of RFC 7692 §7.2.3, sent and received.
    """

    def test_sendHello(self):
        """
        "Hello" is sent as C{c1 07 f2 48 cd c9 c9 07 00} (§7.2.3.1).
        """
        server = deflatedServer()
        server.send_text("Hello")
        self.assertEqual(server.data_to_send(), b"\xc1\x07" + HELLO)

    def test_sendBinary(self):
        """
        Binary messages are compressed the same way, with RSV1 set.
        """
        server = deflatedServer()
        server.send_binary(b"Hello")
        self.assertEqual(server.data_to_send(), b"\xc2\x07" + HELLO)

    def test_sendWithContextTakeover(self):
        """
        With context takeover, the second "Hello" refers back to the first:
        C{c1 05 f2 00 11 00 00} (§7.2.3.2).
        """
        server = deflatedServer()
        server.send_text("Hello")
        server.send_text("Hello")
        self.assertEqual(server.data_to_send(), b"\xc1\x07" + HELLO + b"\xc1\x05" + HELLO_AGAIN)

    def test_sendWithoutContextTakeover(self):
        """
        With C{server_no_context_takeover}, each message is compressed on
        its own.
        """
        server = deflatedServer(offer="permessage-deflate; server_no_context_takeover")
        server.send_text("Hello")
        server.send_text("Hello")
        self.assertEqual(server.data_to_send(), (b"\xc1\x07" + HELLO) * 2)

    def test_sendEmpty(self):
        """
        An empty message is sent as the single byte C{00} (§7.2.3.6).
        """
        server = deflatedServer()
        server.send_text("")
        self.assertEqual(server.data_to_send(), b"\xc1\x01\x00")

    def test_receiveHello(self):
        """
        A compressed "Hello" from the client is delivered as text.
        """
        server = deflatedServer()
        server.receive_data(clientFrame(Opcode.TEXT, HELLO, rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello")])

    def test_receiveFragmented(self):
        """
        A compressed message in two frames, RSV1 on the first only
        (§7.2.3.1), is delivered whole.
        """
        server = deflatedServer()
        server.receive_data(clientFrame(Opcode.TEXT, HELLO[:3], fin=False, rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [])
        server.receive_data(clientFrame(Opcode.CONTINUATION, HELLO[3:]), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello")])

    def test_receiveByteByByte(self):
        """
        A compressed fragmented message fed one byte at a time is delivered
        once, whole.
        """
        server = deflatedServer()
        data = clientFrame(Opcode.BINARY, HELLO[:3], fin=False, rsv=4) + clientFrame(Opcode.CONTINUATION, HELLO[3:])
        events = []
        for i in range(len(data)):
            server.receive_data(data[i : i + 1], now=0.0)
            events += server.events()
        self.assertEqual(events, [BinaryMessage(b"Hello")])

    def test_receiveStoredBlock(self):
        """
        A stored (uncompressed) deflate block (§7.2.3.3).
        """
        server = deflatedServer()
        server.receive_data(clientFrame(Opcode.TEXT, bytes.fromhex("00 05 00 fa ff 48 65 6c 6c 6f 00"), rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello")])

    def test_receiveFinalBlock(self):
        """
        A message ending in a block with BFINAL set (§7.2.3.4) is
        delivered, and the next message starts a new stream.
        """
        server = deflatedServer(PerMessageDeflate(client_no_context_takeover=False))
        server.receive_data(clientFrame(Opcode.TEXT, bytes.fromhex("f3 48 cd c9 c9 07 00 00"), rsv=4), now=0.0)
        server.receive_data(clientFrame(Opcode.TEXT, HELLO, rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello"), TextMessage("Hello")])

    def test_receiveTwoBlocks(self):
        """
        Two deflate blocks in one message (§7.2.3.5).
        """
        server = deflatedServer()
        server.receive_data(
            clientFrame(Opcode.TEXT, bytes.fromhex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00"), rsv=4), now=0.0
        )
        self.assertEqual(list(server.events()), [TextMessage("Hello")])

    def test_receiveEmpty(self):
        """
        An empty compressed message, as C{00} or as no payload at all.
        """
        server = deflatedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"\x00", rsv=4) + clientFrame(Opcode.BINARY, b"", rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage(""), BinaryMessage(b"")])

    def test_uncompressedMessagesStillAllowed(self):
        """
        With permessage-deflate negotiated, a message without RSV1 is taken
        as it is.
        """
        server = deflatedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"Hello"), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello")])


class ContextTakeoverTests(SynchronousTestCase):
    """
    Context takeover, negotiated per direction, decides whether a message may
    refer to the ones before it.
    """

    def test_serverInflatesWithClientContext(self):
        """
        A server that lets the client keep its context inflates the RFC's
        second "Hello" with the first one's window.
        """
        server = deflatedServer(PerMessageDeflate(client_no_context_takeover=False))
        self.assertEqual(server.extensions, "permessage-deflate")
        server.receive_data(clientFrame(Opcode.TEXT, HELLO, rsv=4) + clientFrame(Opcode.TEXT, HELLO_AGAIN, rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [TextMessage("Hello"), TextMessage("Hello")])

    def test_serverInflatesWithoutClientContext(self):
        """
        After asking for C{client_no_context_takeover} (the default), the
        server starts each message with an empty window: a reference to the
        previous message is invalid compressed data, 1007.
        """
        server = deflatedServer()
        server.receive_data(clientFrame(Opcode.TEXT, HELLO, rsv=4) + clientFrame(Opcode.TEXT, HELLO_AGAIN, rsv=4), now=0.0)
        self.assertEqual(
            list(server.events()),
            [TextMessage("Hello"), ConnectionFailed(1007, "invalid compressed data: invalid distance too far back")],
        )

    def test_clientCompressesWithContext(self):
        """
        A client whose policy keeps its context, answered without
        C{client_no_context_takeover}, compresses the second "Hello" against
        the first.
        """
        client = deflatedClient(PerMessageDeflate(client_no_context_takeover=False))
        client.send_text("Hello")
        client.send_text("Hello")
        self.assertEqual(
            parseFrames(client.data_to_send()), [(0x1, HELLO, True, 4), (0x1, HELLO_AGAIN, True, 4)]
        )

    def test_clientCompressesWithoutContext(self):
        """
        By default, or when the server asks for C{client_no_context_takeover},
        the client compresses each message on its own.
        """
        for policy, answer in [
            (PerMessageDeflate(), "permessage-deflate"),
            (PerMessageDeflate(client_no_context_takeover=False), "permessage-deflate; client_no_context_takeover"),
        ]:
            client = deflatedClient(policy, answer)
            client.send_text("Hello")
            client.send_text("Hello")
            self.assertEqual(parseFrames(client.data_to_send()), [(0x1, HELLO, True, 4)] * 2)

    def test_clientInflatesWithServerContext(self):
        """
        Unless the server said C{server_no_context_takeover}, the client
        keeps the server's window between messages.
        """
        client = deflatedClient()
        client.receive_data(serverFrame(Opcode.TEXT, HELLO, rsv=4) + serverFrame(Opcode.TEXT, HELLO_AGAIN, rsv=4), now=0.0)
        self.assertEqual(list(client.events()), [TextMessage("Hello"), TextMessage("Hello")])

    def test_clientInflatesWithoutServerContext(self):
        """
        After C{server_no_context_takeover}, the client starts each message
        with an empty window and fails a reference to the previous one with
        1007.
        """
        client = deflatedClient(answer="permessage-deflate; server_no_context_takeover")
        client.receive_data(serverFrame(Opcode.TEXT, HELLO, rsv=4) + serverFrame(Opcode.TEXT, HELLO_AGAIN, rsv=4), now=0.0)
        self.assertEqual(
            list(client.events()),
            [TextMessage("Hello"), ConnectionFailed(1007, "invalid compressed data: invalid distance too far back")],
        )
        self.assertEqual(sentCloseCode(client.data_to_send()), 1007)


class WindowBitsTests(SynchronousTestCase):
    """
    The negotiated window bounds how far back what we send refers.
    """

    # 200 random-looking bytes repeated 700 bytes later: a window of 1024
    # bytes can refer back to them, one of 512 can't.
    BLOCK = bytes((i * 151 + 7) % 251 for i in range(200))
    DATA = BLOCK + bytes((i * 89 + 3) % 241 for i in range(500)) + BLOCK

    def sent(self, offer: str) -> bytes:
        server = deflatedServer(offer=offer)
        server.send_binary(self.DATA)
        [(opcode, body, fin, rsv)] = parseFrames(server.data_to_send())
        self.assertEqual((opcode, fin, rsv), (0x2, True, 4))
        return body

    def test_fullWindowRefersFarBack(self):
        """
        With the full window, the repeat is found: the output needs a window
        over 512 bytes.
        """
        body = self.sent("permessage-deflate")
        self.assertEqual(strictInflate(body, 10), self.DATA)
        self.assertRaises(zlib.error, strictInflate, body, 9)

    def test_smallWindows(self):
        """
        With C{server_max_window_bits} 8 to 10, the output inflates with a
        window of that size (8 is compressed with zlib's 9-bit window, which
        never refers back more than 250 bytes).
        """
        for bits in (8, 9, 10):
            body = self.sent(f"permessage-deflate; server_max_window_bits={bits}")
            self.assertEqual(strictInflate(body, bits), self.DATA)

    def test_clientWindow(self):
        """
        A client told C{client_max_window_bits=9} compresses within it.
        """
        client = deflatedClient(answer="permessage-deflate; client_max_window_bits=9")
        client.send_binary(self.DATA)
        [(_, body, _, rsv)] = parseFrames(client.data_to_send())
        self.assertEqual(rsv, 4)
        self.assertEqual(strictInflate(body, 9), self.DATA)


class ViolationTests(SynchronousTestCase):
    """
    Breaking RFC 7692 fails the connection with the matching close code.
    """

    def assertFails(self, connection, data: bytes, code: int, reason: str):
        connection.receive_data(data, now=0.0)
        self.assertEqual(list(connection.events()), [ConnectionFailed(code, reason)])
        self.assertEqual(sentCloseCode(connection.data_to_send()), code)
        self.assertIs(connection.state, State.CLOSED)

    def test_rsv1OnControlFrame(self):
        """
        RSV1 on a ping (control frames are never compressed) is 1002.
        """
        self.assertFails(deflatedServer(), clientFrame(Opcode.PING, b"", rsv=4), 1002, "rsv1 set on a control frame")

    def test_rsv1OnContinuation(self):
        """
        RSV1 on a continuation frame is 1002 (RFC 7692 §6.1: only the first
        frame of a message carries it).
        """
        self.assertFails(
            deflatedServer(),
            clientFrame(Opcode.TEXT, HELLO[:3], fin=False, rsv=4) + clientFrame(Opcode.CONTINUATION, HELLO[3:], rsv=4),
            1002, "rsv1 set on a continuation frame",
        )

    def test_otherReservedBits(self):
        """
        RSV2 and RSV3 stay reserved.
        """
        for rsv in (2, 1, 6):
            self.assertFails(
                deflatedServer(), clientFrame(Opcode.TEXT, HELLO, rsv=rsv), 1002,
                "reserved bits set without a negotiated extension",
            )

    def test_corruptStream(self):
        """
        A payload that is not a deflate stream fails with 1007 (invalid
        payload data), in either role.
        """
        self.assertFails(
            deflatedServer(), clientFrame(Opcode.BINARY, b"\xff\xff\xff", rsv=4), 1007,
            "invalid compressed data: invalid block type",
        )
        self.assertFails(
            deflatedClient(), serverFrame(Opcode.BINARY, b"\x00\x05\x00\x00\x00", rsv=4), 1007,
            "invalid compressed data: invalid stored block lengths",
        )

    def test_corruptInLaterFragment(self):
        """
        A stream that goes wrong in a later fragment (here a block of the
        reserved type 11 after a sync-flushed first fragment) fails there,
        with 1007.
        """
        self.assertFails(
            deflatedServer(),
            clientFrame(Opcode.BINARY, HELLO + TAIL, fin=False, rsv=4) + clientFrame(Opcode.CONTINUATION, b"\xff\xff"),
            1007, "invalid compressed data: invalid block type",
        )

    def test_invalidUtf8Inflated(self):
        """
        Compressed text that inflates to invalid UTF-8 fails with 1007.
        """
        server = deflatedServer()
        server.receive_data(clientFrame(Opcode.TEXT, compressed(b"ok \xff"), rsv=4), now=0.0)
        events = list(server.events())
        self.assertEqual([type(e) for e in events], [ConnectionFailed])
        self.assertEqual(events[0].code, 1007)


class SendingTests(SynchronousTestCase):
    """
    What goes out compressed, and what doesn't.
    """

    def test_minSize(self):
        """
        Messages shorter than C{min_size} go out as they are, without RSV1;
        from C{min_size} on they are compressed.
        """
        server = deflatedServer(PerMessageDeflate(min_size=6))
        server.send_text("Hello")
        server.send_text("Hello!")
        server.send_binary(b"")
        self.assertEqual(
            server.data_to_send(), b"\x81\x05Hello" + b"\xc1\x08" + compressed(b"Hello!") + b"\x82\x00"
        )

    def test_minSizeKeepsContext(self):
        """
        A message sent uncompressed does not enter the compression context.
        """
        server = deflatedServer(PerMessageDeflate(min_size=5))
        server.send_text("Hello")
        server.send_text("Hi")
        server.send_text("Hello")
        self.assertEqual(
            server.data_to_send(), b"\xc1\x07" + HELLO + b"\x81\x02Hi" + b"\xc1\x05" + HELLO_AGAIN
        )

    def test_controlFramesNeverCompressed(self):
        """
        Pings, pongs (also automatic ones) and Close frames go out without
        RSV1 and uncompressed.
        """
        server = deflatedServer()
        server.send_ping(b"Hello")
        server.send_pong(b"Hello")
        server.receive_data(clientFrame(Opcode.PING, b"Hello"), now=0.0)
        self.assertEqual(list(server.events()), [Ping(b"Hello")])
        server.send_close(1000, "Hello", now=0.0)
        self.assertEqual(
            server.data_to_send(),
            b"\x89\x05Hello" + b"\x8a\x05Hello" + b"\x8a\x05Hello" + b"\x88\x07\x03\xe8Hello",
        )

    def test_clientMasksCompressedPayload(self):
        """
        The client sends the compressed payload masked, RSV1 set.
        """
        client = deflatedClient()
        client.send_text("Hello")
        masked = bytes(b ^ (1, 2, 3, 4)[i % 4] for i, b in enumerate(HELLO))
        self.assertEqual(client.data_to_send(), b"\xc1\x87\x01\x02\x03\x04" + masked)

    def test_roundTrip(self):
        """
        What one side compresses, the other inflates, in both directions and
        with every context and window combination.
        """
        messages = ["Hello", "", "\u00e9t\u00e9 " * 300, "x" * 70000, "Hello"]
        for offer in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8",
        ]:
            policy = PerMessageDeflate(client_no_context_takeover=False)
            server = deflatedServer(policy, offer)
            client = deflatedClient(policy, server.extensions)
            for text in messages:
                server.send_text(text)
                client.send_text(text)
            server.receive_data(client.data_to_send(), now=0.0)
            client.receive_data(server.data_to_send(), now=0.0)
            expected = [TextMessage(text) for text in messages]
            self.assertEqual(list(server.events()), expected, offer)
            self.assertEqual(list(client.events()), expected, offer)


class CodecTests(SynchronousTestCase):
    """
    L{DeflateCodec} on its own.
    """

    def codec(self, takeover: bool = True) -> DeflateCodec:
        return DeflateCodec(
            local_window_bits=15, local_context_takeover=takeover,
            peer_window_bits=15, peer_context_takeover=takeover,
        )

    def test_settingsShared(self):
        """
        Codecs negotiated alike share one object for their settings: a
        codec holds only its own state (its context and zlib objects), and
        still answers for its settings.
        """
        one, two = self.codec(), self.codec()
        self.assertIs(one._params, two._params)
        self.assertIsNot(one._params, self.codec(takeover=False)._params)
        self.assertEqual(DeflateCodec.__slots__, ("_params", "_context", "_compressor", "_decompressor"))
        self.assertEqual(
            (one.local_window_bits, one.local_context_takeover, one.peer_window_bits, one.peer_context_takeover),
            (15, True, 15, True),
        )
        self.assertIsNone(one.shared_key)
        self.assertEqual(self.codec(takeover=False).shared_key, (6, 8, 15, 0))

    def test_compress(self):
        """
        C{compress} returns the body and the RSV1 flag.
        """
        codec = self.codec()
        self.assertEqual(codec.compress(b"Hello"), (HELLO, True))
        self.assertEqual(codec.compress(b"Hello"), (HELLO_AGAIN, True))

    def test_decompressInPieces(self):
        """
        A message inflated in pieces gives the same bytes as whole.
        """
        body = compressed(b"abc" * 1000)
        codec = self.codec(takeover=False)
        out = b"".join(codec.decompress(body[i : i + 3], False, None) for i in range(0, len(body), 3))
        out += codec.decompress(b"", True, None)
        self.assertEqual(out, b"abc" * 1000)

    def test_limitBoundary(self):
        """
        A message may inflate to exactly C{max_length}; one byte more raises
        L{MessageTooBig}.
        """
        body = compressed(bytes(1000))
        self.assertEqual(self.codec().decompress(body, True, 1000), bytes(1000))
        error = self.assertRaises(MessageTooBig, self.codec().decompress, body, True, 999)
        self.assertEqual(str(error), "message exceeds the size limit once inflated")
        self.assertEqual(MessageTooBig.close_code, 1009)

    def test_corrupt(self):
        """
        Invalid deflate data raises L{InvalidCompressedData}, close code 1007.
        """
        error = self.assertRaises(InvalidCompressedData, self.codec().decompress, b"\xff", True, None)
        self.assertEqual(str(error), "invalid compressed data: invalid block type")
        self.assertEqual(InvalidCompressedData.close_code, 1007)

    def test_noStateAtRest(self):
        """
        Without context takeover, no zlib object is kept between messages.
        With it, by default, the compressor isn't kept either: only the
        bytes sent, which prime the next message's compressor. (The
        decompressor with the peer's context is kept.)
        """
        codec = self.codec(takeover=False)
        codec.compress(b"Hello")
        codec.decompress(HELLO, True, None)
        self.assertEqual((codec._compressor, codec._decompressor, codec._context), (None, None, b""))
        codec = self.codec(takeover=True)
        codec.compress(b"Hello")
        codec.decompress(HELLO, True, None)
        self.assertEqual((codec._compressor, codec._context), (None, b"Hello"))
        self.assertNotEqual(codec._decompressor, None)

    def test_contextKeepsCompressor(self):
        """
        With C{context_size=None}, the zlib compressor itself is kept
        between messages, as the whole window of context.
        """
        codec = DeflateCodec(
            local_window_bits=15, local_context_takeover=True,
            peer_window_bits=15, peer_context_takeover=True, context_size=None,
        )
        self.assertEqual(codec.compress(b"Hello"), (HELLO, True))
        self.assertNotEqual(codec._compressor, None)
        self.assertEqual(codec._context, b"")
        self.assertEqual(codec.compress(b"Hello"), (HELLO_AGAIN, True))

    def test_contextIsLastBytesSent(self):
        """
        The context kept is the last C{context_size} bytes of the messages
        sent compressed, across message boundaries, and never more than
        the window.
        """
        codec = DeflateCodec(
            local_window_bits=15, local_context_takeover=True,
            peer_window_bits=15, peer_context_takeover=True, context_size=8,
        )
        codec.compress(b"abcde")
        self.assertEqual(codec._context, b"abcde")
        codec.compress(b"fghij")
        self.assertEqual(codec._context, b"cdefghij")
        codec.compress(b"0123456789")
        self.assertEqual(codec._context, b"23456789")
        codec = DeflateCodec(
            local_window_bits=9, local_context_takeover=True,
            peer_window_bits=15, peer_context_takeover=True, context_size=4096,
        )
        codec.compress(bytes(1000))
        self.assertEqual(codec._context, bytes(512))

    def test_contextRefersAcrossMessages(self):
        """
        A message may refer to the bytes of the previous one kept as
        context: the peer, inflating all messages as one stream, gets each
        back, and the repeat costs a few bytes instead of its own size.
        """
        block = random.Random(19).randbytes(1000)
        codec = self.codec()
        first, _ = codec.compress(block)
        second, _ = codec.compress(block)
        self.assertLess(len(second), 20)
        self.assertGreater(len(first), 900)
        peer = zlib.decompressobj(-15)
        self.assertEqual(peer.decompress(first + TAIL), block)
        self.assertEqual(peer.decompress(second + TAIL), block)

    def test_contextBeyondSizeNotReferred(self):
        """
        Bytes sent before the last C{context_size} are not referred to: the
        body inflates with a window of C{context_size} bytes plus the
        message's own.
        """
        block = random.Random(19).randbytes(200)
        filler = random.Random(20).randbytes(1000)
        codec = DeflateCodec(
            local_window_bits=15, local_context_takeover=True,
            peer_window_bits=15, peer_context_takeover=True, context_size=512,
        )
        first, _ = codec.compress(block + filler)
        second, _ = codec.compress(block)
        self.assertGreater(len(second), 180)
        peer = zlib.decompressobj(-15)
        self.assertEqual(peer.decompress(first + TAIL) + peer.decompress(second + TAIL), block + filler + block)

    def test_windowSizedToMessage(self):
        """
        Each message's compressor has a window just long enough for the
        message and its context, and produces the same bytes as one with
        the full window would.
        """
        rnd = random.Random(21)
        payloads = [bytes(rnd.choice(b"abcdefgh{}:,0123") for _ in range(size)) for size in (0, 1, 250, 1000, 40000)]
        # A repeat 255 bytes back in a 295-byte message: a 512-byte window
        # reaches only 250 bytes back, so this needs 1024.
        block = rnd.randbytes(40)
        payloads.append(block + rnd.randbytes(215) + block)
        for payload in payloads:
            codec = DeflateCodec(
                local_window_bits=15, local_context_takeover=False,
                peer_window_bits=15, peer_context_takeover=False,
            )
            self.assertEqual(codec.compress(payload), (compressed(payload), True), len(payload))

    def test_contextSizeZero(self):
        """
        With C{context_size=0}, each message is compressed on its own even
        where context takeover was negotiated.
        """
        server = deflatedServer(PerMessageDeflate(context_size=0))
        self.assertEqual(server.extensions, "permessage-deflate; client_no_context_takeover")
        server.send_text("Hello")
        server.send_text("Hello")
        self.assertEqual(server.data_to_send(), (b"\xc1\x07" + HELLO) * 2)

    def test_memoryAtRest(self):
        """
        By default, a server connection that has sent and received one
        compressed 1 KiB message keeps no zlib object, only the message's
        bytes as context: zlib's memory is C malloc, which tracemalloc
        can't see, so the test checks that nothing holds a zlib object.
        """
        payload = b'{"id": 1, "user": "someone", "text": "hello"}' * 23
        server = deflatedServer()
        server.receive_data(clientFrame(Opcode.BINARY, compressed(payload), rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [BinaryMessage(payload)])
        server.send_binary(payload)
        server.data_to_send()
        codec = server._codec
        self.assertEqual((codec._compressor, codec._decompressor), (None, None))
        self.assertEqual(codec._context, payload)


class SizeLimitTests(SynchronousTestCase):
    """
    C{max_message_size} applies to what a message inflates to, checked while
    inflating: a small compressed message can't make us hold more.
    """

    def test_limitAfterInflate(self):
        """
        A compressed message of exactly C{max_message_size} inflated bytes is
        delivered; one byte more fails with 1009, though both payloads are
        tiny.
        """
        server = deflatedServer(max_message_size=1000)
        server.receive_data(clientFrame(Opcode.BINARY, compressed(bytes(1000)), rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [BinaryMessage(bytes(1000))])
        payload = compressed(bytes(1001))
        self.assertLess(len(payload), 20)
        server.receive_data(clientFrame(Opcode.BINARY, payload, rsv=4), now=0.0)
        self.assertEqual(list(server.events()), [ConnectionFailed(1009, "message exceeds the size limit once inflated")])
        self.assertEqual(sentCloseCode(server.data_to_send()), 1009)

    def test_limitAcrossFragments(self):
        """
        The limit counts the inflated bytes of every fragment.
        """
        server = deflatedServer(max_message_size=1000)
        body = compressed(b"a" * 1001)
        server.receive_data(
            clientFrame(Opcode.TEXT, body[:4], fin=False, rsv=4) + clientFrame(Opcode.CONTINUATION, body[4:]), now=0.0
        )
        self.assertEqual(list(server.events()), [ConnectionFailed(1009, "message exceeds the size limit once inflated")])

    def test_bombParts(self):
        """
        The bomb's building blocks are what L{bombParts} says: each further
        part inflates to one more MiB of zeros, and the 1 GiB message is
        about 1 MB.
        """
        first, steady = bombParts()
        self.assertEqual(zlib.decompressobj(-15).decompress(first + steady * 3 + TAIL), bytes(4 * MiB))
        self.assertLess(len(first) + 1023 * len(steady), 1_100_000)

    def assertBombDefused(self, connection, data: bytes):
        """
        Feed C{data} to C{connection}: it must fail with 1009 within a
        quarter of a second of CPU time (inflating the whole GiB takes about
        half a second; CPU time, so that a loaded machine doesn't count),
        while Python allocations peak under 8 MiB.
        """
        tracemalloc.start()
        try:
            started = time.process_time()
            connection.receive_data(data, now=0.0)
            events = list(connection.events())
            elapsed = time.process_time() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertEqual(events, [ConnectionFailed(1009, "message exceeds the size limit once inflated")])
        self.assertEqual(sentCloseCode(connection.data_to_send()), 1009)
        self.assertLess(peak, 8 * MiB)
        self.assertLess(elapsed, 0.25)

    def test_bombInFragments(self):
        """
        A 1 GiB message of zeros, about 1 MB compressed and sent in frames of
        100 KB (under the 1 MiB frame limit), fails with 1009 at the first
        frame, never holding much more than the 1 MiB limit.
        """
        first, steady = bombParts()
        body = first + steady * 1023
        pieces = [body[i : i + 100_000] for i in range(0, len(body), 100_000)]
        data = b"".join(
            zeroMaskedFrame(Opcode.BINARY if i == 0 else Opcode.CONTINUATION, piece, fin=i == len(pieces) - 1,
                            rsv=4 if i == 0 else 0)
            for i, piece in enumerate(pieces)
        )
        server = deflatedServer(max_message_size=MiB)
        del body, pieces
        self.assertBombDefused(server, data)

    def test_bombInOneFrame(self):
        """
        The same message in one frame, with the frame limit raised so that
        only the inflated size can stop it, fails the same way.
        """
        first, steady = bombParts()
        data = zeroMaskedFrame(Opcode.TEXT, first + steady * 1023, rsv=4)
        server = deflatedServer(max_message_size=MiB, max_frame_size=2 * MiB)
        self.assertBombDefused(server, data)

    def test_bombToClient(self):
        """
        A client is protected the same way from a server's bomb.
        """
        first, steady = bombParts()
        data = serverFrame(Opcode.BINARY, first + steady * 1023, rsv=4)
        client = deflatedClient(max_message_size=MiB, max_frame_size=2 * MiB)
        self.assertBombDefused(client, data)
