# -*- test-case-name: tests.core.test_deflate -*-
"""
permessage-deflate (RFC 7692): negotiation of C{Sec-WebSocket-Extensions}
and the per-message codec.

Negotiation is pure: L{client_offer} makes the client's header value,
L{negotiate_server} answers an offer and L{client_accept} checks the answer.
The server and the client each get a L{DeflateCodec} that compresses whole
outgoing messages and inflates incoming ones piece by piece, never past the
size it is allowed to produce.
"""

from __future__ import annotations

import re
import sys
import zlib
from typing import Any
from dataclasses import dataclass

from wsproto_tw.core.errors import (
    HandshakeFailed,
    HandshakeRejected,
    InvalidCompressedData,
    MessageTooBig,
)

__all__ = [
    "EXTENSION_NAME",
    "DeflateCodec",
    "PerMessageDeflate",
    "client_accept",
    "client_offer",
    "negotiate_server",
    "parse_extensions",
]

EXTENSION_NAME = "permessage-deflate"

# RFC 7692 §7.2.1: the empty stored block a sync flush ends with; stripped
# from what is sent, appended to what is received (§7.2.2).
_TAIL = b"\x00\x00\xff\xff"

_SERVER_NO_CONTEXT_TAKEOVER = "server_no_context_takeover"
_CLIENT_NO_CONTEXT_TAKEOVER = "client_no_context_takeover"
_SERVER_MAX_WINDOW_BITS = "server_max_window_bits"
_CLIENT_MAX_WINDOW_BITS = "client_max_window_bits"

# RFC 9110 §5.6.2 token; RFC 6455 §9.1 extension grammar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_OWS = re.compile(r"[ \t]*")
# RFC 9110 §5.6.4 quoted-string (qdtext / quoted-pair).
_QUOTED = re.compile(r'"((?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*)"')
_UNQUOTE = re.compile(r"\\(.)")
# RFC 7692 §7.1.2: 8 to 15, decimal, no leading zero.
_WINDOW_BITS = re.compile(r"(?:[89]|1[0-5])\Z")


@dataclass(frozen=True)
class PerMessageDeflate:
    """
    A permessage-deflate policy: what a client offers, and what a server
    accepts or requires. The parameter names are those of RFC 7692 §7.1.

    @ivar server_no_context_takeover: client: ask the server to compress
        each message on its own, and fail if it does not agree. Server:
        always do so (no compression state is kept between messages).
    @ivar client_no_context_takeover: client: say that it compresses each
        message on its own, and do so. Server: always ask the client to do
        so, so that no inflate state is kept between messages. A server
        also asks for it whenever the client offers it.
    @ivar server_max_window_bits: client: ask the server for an LZ77
        window of at most 2 ** this many bytes (8 to 15; 15 asks nothing).
        Server: the largest window it compresses with.
    @ivar client_max_window_bits: client: the largest window it compresses
        with (always offered, so that a server may lower it). Server: the
        largest window it accepts from a client; below 15, an offer from a
        client that can't be told to use less is declined.
    @ivar mem_level: zlib's C{memLevel} for compressing, 1 to 9: memory
        for the hash table and the pending output, at some cost in ratio.
    @ivar compress_level: zlib's compression level, 0 (none) to 9, or -1
        for zlib's default (6).
    @ivar min_size: messages shorter than this many bytes are sent
        uncompressed (RSV1 off).
    @ivar context_size: when our compression context is kept between
        messages (RFC 7692 §7.2.3.2: a server without
        C{server_no_context_takeover}, a client without
        C{client_no_context_takeover}), how many bytes of the messages
        already sent the next one may refer to, 0 to 32768. These bytes are
        all a connection keeps: each message is compressed by a new zlib
        compressor primed with them (a preset dictionary), and the peer,
        whose window holds the same bytes, inflates it as the continuation
        of its stream. L{None} keeps zlib's compressor itself between
        messages instead, about C{2 ** (window bits + 2) + 2 ** (mem_level
        + 9)} bytes (256 KiB at window 15, memLevel 8) plus 6 KiB of zlib
        state per connection for as long as it is open.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = True
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    mem_level: int = 8
    compress_level: int = 6
    min_size: int = 0
    context_size: int | None = 4096

    def __post_init__(self) -> None:
        for name in (_SERVER_NO_CONTEXT_TAKEOVER, _CLIENT_NO_CONTEXT_TAKEOVER):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, not {getattr(self, name)!r}")
        for name, low, high in (
            (_SERVER_MAX_WINDOW_BITS, 8, 15),
            (_CLIENT_MAX_WINDOW_BITS, 8, 15),
            ("mem_level", 1, 9),
            ("compress_level", -1, 9),
        ):
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")
        if not _is_int(self.min_size) or self.min_size < 0:
            raise ValueError(f"min_size must be a non-negative integer, not {self.min_size!r}")
        if self.context_size is not None and (not _is_int(self.context_size) or not 0 <= self.context_size <= 32768):
            raise ValueError(f"context_size must be an integer from 0 to 32768 or None, not {self.context_size!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _CodecParams:
    """
    The settings of a L{DeflateCodec}, the same for every connection that
    negotiated the same: one object for them all.
    """

    __slots__ = (
        "local_window_bits", "local_context_takeover", "peer_window_bits", "peer_context_takeover", "shared_key",
        "level", "mem_level", "min_size", "context_size",
    )

    def __init__(
        self,
        local_window_bits: int,
        local_context_takeover: bool,
        peer_window_bits: int,
        peer_context_takeover: bool,
        compress_level: int,
        mem_level: int,
        min_size: int,
        context_size: int | None,
    ) -> None:
        self.local_window_bits = local_window_bits
        self.local_context_takeover = local_context_takeover
        self.peer_window_bits = peer_window_bits
        self.peer_context_takeover = peer_context_takeover
        self.level = compress_level
        self.mem_level = mem_level
        self.min_size = min_size
        # How many bytes of context to keep (0 when there is none to keep),
        # or None to keep the compressor; never more than the window.
        if not local_context_takeover:
            context_size = 0
        elif context_size is not None:
            context_size = min(context_size, 1 << local_window_bits)
        self.context_size = context_size
        self.shared_key = (
            (compress_level, mem_level, max(9, local_window_bits), min_size) if context_size == 0 else None
        )


#: The L{_CodecParams} made so far, by their arguments; at most
#: L{_MAX_CODEC_PARAMS} (a few policies make a few of them).
_CODEC_PARAMS: dict[tuple, _CodecParams] = {}
_MAX_CODEC_PARAMS = 256


class DeflateCodec:
    """
    The negotiated permessage-deflate state of one connection (RFC 7692
    §6, §7.2): compresses what we send, inflates what the peer sends.

    zlib state is made on first use, and when context takeover is off in a
    direction it is dropped after each message, so that a connection at rest
    holds none for that direction. When our context is kept, by default
    only the last C{context_size} bytes sent are (see
    L{PerMessageDeflate.context_size}), not a zlib compressor.

    @ivar local_window_bits: the window we compress with, as negotiated.
    @ivar local_context_takeover: whether our messages share one window.
    @ivar peer_window_bits: the window the peer compresses with.
    @ivar peer_context_takeover: whether the peer's messages share one.
    @ivar shared_key: when what L{compress} makes of a message depends
        only on the message and on settings (our messages never refer to
        earlier ones), those settings, as a hashable key: codecs with equal
        keys compress a message to the same bytes, which a broadcast
        builds once (L{PreparedMessage
        <wsproto_tw.core.prepared.PreparedMessage>}). L{None} otherwise.
    """

    __slots__ = ("_params", "_context", "_compressor", "_decompressor")

    def __init__(
        self,
        *,
        local_window_bits: int,
        local_context_takeover: bool,
        peer_window_bits: int,
        peer_context_takeover: bool,
        compress_level: int = 6,
        mem_level: int = 8,
        min_size: int = 0,
        context_size: int | None = 4096,
    ) -> None:
        key = (
            local_window_bits, local_context_takeover, peer_window_bits, peer_context_takeover,
            compress_level, mem_level, min_size, context_size,
        )
        params = _CODEC_PARAMS.get(key)
        if params is None:
            params = _CodecParams(*key)
            if len(_CODEC_PARAMS) < _MAX_CODEC_PARAMS:
                _CODEC_PARAMS[key] = params
        # What was negotiated and configured, shared by every codec alike:
        # a connection holds only its own state.
        self._params = params
        self._context = b""
        self._compressor: zlib._Compress | None = None
        self._decompressor: zlib._Decompress | None = None

    @property
    def local_window_bits(self) -> int:
        return self._params.local_window_bits

    @property
    def local_context_takeover(self) -> bool:
        return self._params.local_context_takeover

    @property
    def peer_window_bits(self) -> int:
        return self._params.peer_window_bits

    @property
    def peer_context_takeover(self) -> bool:
        return self._params.peer_context_takeover

    @property
    def shared_key(self) -> tuple[int, int, int, int] | None:
        return self._params.shared_key

    def __repr__(self) -> str:
        return (
            f"DeflateCodec(local_window_bits={self._params.local_window_bits}, "
            f"local_context_takeover={self.local_context_takeover}, "
            f"peer_window_bits={self._params.peer_window_bits}, "
            f"peer_context_takeover={self._params.peer_context_takeover})"
        )

    def compress(self, payload: bytes) -> tuple[bytes, bool]:
        """
        Compress one whole outgoing message (RFC 7692 §7.2.1).

        @return: the payload to send and whether RSV1 is set: a message
            under C{min_size} goes out as it is.
        """
        if len(payload) < self._params.min_size:
            return payload, False
        compressor = self._compressor
        if compressor is None:
            # zlib can't compress raw deflate with an 8-bit window. With 9
            # bits it never refers back more than 512 - 262 = 250 bytes, so
            # its output is valid for a peer that allowed 8 (a 256-byte
            # window).
            context = self._context
            size = self._params.context_size
            bits = max(9, self._params.local_window_bits)
            if size is not None:
                # A compressor for one message needs no window longer than
                # the message and its context (plus zlib's 262-byte
                # lookahead) to produce the same bytes, and a smaller one
                # is quicker to allocate.
                bits = min(bits, max(9, (len(context) + len(payload) + 261).bit_length()))
            if context:
                # RFC 7692 §7.2.3.2: the peer's window ends with the bytes
                # of our earlier messages, so a new compressor primed with
                # them continues the stream (its first block starts on the
                # byte boundary the last sync flush left).
                compressor = zlib.compressobj(
                    self._params.level, zlib.DEFLATED, -bits, self._params.mem_level, zlib.Z_DEFAULT_STRATEGY, context
                )
            else:
                compressor = zlib.compressobj(self._params.level, zlib.DEFLATED, -bits, self._params.mem_level)
            if size is None:
                self._compressor = compressor
            elif size:
                if len(payload) >= size:
                    self._context = bytes(payload[-size:])
                else:
                    self._context = (context + payload)[-size:]
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        if data.endswith(_TAIL):
            data = data[:-4]
        return data, True

    def compress_stream(self) -> DeflateStream:
        """
        Start compressing one outgoing message given in pieces (RFC 7692
        §7.2.1 over the frames of a fragmented message, §6.1: RSV1 on its
        first frame only). Until its last piece, no other message may be
        compressed.

        The message is compressed whatever its size (C{min_size} can't be
        known to apply), with the full negotiated window.

        @return: the L{DeflateStream} that compresses its pieces.
        """
        compressor = self._compressor
        size = self._params.context_size
        if compressor is None:
            bits = max(9, self._params.local_window_bits)
            context = self._context
            if context:
                compressor = zlib.compressobj(
                    self._params.level, zlib.DEFLATED, -bits, self._params.mem_level, zlib.Z_DEFAULT_STRATEGY, context
                )
            else:
                compressor = zlib.compressobj(self._params.level, zlib.DEFLATED, -bits, self._params.mem_level)
            if size is None:
                self._compressor = compressor
        return DeflateStream(self, compressor, size)

    def inflate_some(self, data: bytes, fin: bool, size: int) -> tuple[bytes, bytes]:
        """
        Inflate part of the next piece of a compressed message, at most
        C{size} bytes of output, so that a small piece that inflates to
        megabytes is handed on a bounded part at a time (streaming mode).

        @param data: the input: the next bytes of the message's payload, or
            what the last call left unconsumed.
        @param fin: C{data} ends the message: the C{00 00 ff ff} tail must
            already be appended to it (by the first call for the piece);
            once nothing is left to inflate, the inflater is reset as
            L{decompress} does.
        @param size: the most bytes to return, positive.
        @return: C{(output, rest)}: the inflated bytes (C{size} of them if
            there may be more, even when C{rest} is empty), and the input
            not consumed yet, to be given to the next call.
        @raise InvalidCompressedData: C{data} is not a valid deflate stream.
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-self._params.peer_window_bits)
        if decompressor.eof:
            # RFC 7692 §7.2.3.4: what follows a final block is ignored.
            out, rest = b"", b""
        else:
            try:
                out = decompressor.decompress(data, size)
            except zlib.error as exc:
                self._decompressor = None
                detail = str(exc).rpartition(": ")[2]
                raise InvalidCompressedData(f"invalid compressed data: {detail}") from None
            rest = decompressor.unconsumed_tail
        if fin and not rest and len(out) < size and (not self._params.peer_context_takeover or decompressor.eof):
            self._decompressor = None
        return out, rest

    def decompress(self, data: bytes, fin: bool, max_length: int | None) -> bytes:
        """
        Inflate the next piece of a compressed message (RFC 7692 §7.2.2).

        @param data: the next bytes of the message's payload, in order.
        @param fin: C{data} ends the message: the C{00 00 ff ff} tail is
            appended before inflating it.
        @param max_length: how many more bytes the message may inflate to,
            or L{None} for no limit. zlib stops once it has produced one byte
            more, so a small payload that inflates to gigabytes costs no
            more memory than the limit.
        @raise MessageTooBig: the message inflates past C{max_length}.
        @raise InvalidCompressedData: C{data} is not a valid deflate stream.
            RFC 7692 §6.2 leaves the close code open; this one carries 1007
            (invalid payload data), as for text that is not UTF-8.
        """
        decompressor = self._decompressor
        if decompressor is None:
            decompressor = self._decompressor = zlib.decompressobj(-self._params.peer_window_bits)
        if fin:
            data += _TAIL
        if decompressor.eof:
            # RFC 7692 §7.2.3.4: a block with BFINAL set ended the stream;
            # whatever follows it in this message is ignored.
            out = b""
        else:
            try:
                if max_length is None:
                    out = decompressor.decompress(data)
                else:
                    out = decompressor.decompress(data, max_length + 1)
            except zlib.error as exc:
                self._decompressor = None
                detail = str(exc).rpartition(": ")[2]
                raise InvalidCompressedData(f"invalid compressed data: {detail}") from None
            if max_length is not None and len(out) > max_length:
                self._decompressor = None
                raise MessageTooBig("message exceeds the size limit once inflated")
        if fin and (not self._params.peer_context_takeover or decompressor.eof):
            # After a final block the stream can't go on: the next message
            # starts a new one (with an empty window).
            self._decompressor = None
        return out


class DeflateStream:
    """
    One outgoing message being compressed piece by piece
    (L{DeflateCodec.compress_stream}): each piece is compressed and
    sync-flushed, so that it can go out as a frame at once; the last one
    loses the C{00 00 ff ff} tail (RFC 7692 §7.2.1). What it keeps between
    pieces is the compressor and, when the codec keeps its context as
    bytes, the last C{context_size} bytes of the message.
    """

    __slots__ = ("_codec", "_compressor", "_size", "_tail")

    def __init__(self, codec: DeflateCodec, compressor: Any, size: int | None) -> None:
        self._codec = codec
        self._compressor = compressor
        # The codec's context as bytes (its last `size` bytes sent), or None
        # when it keeps its compressor or no context at all.
        self._size = size
        self._tail = codec._context if size else b""

    def compress(self, data: bytes, last: bool) -> bytes:
        """
        @param data: the next piece of the message.
        @param last: whether it is the last piece.
        @return: the payload of the piece's frame.
        """
        compressor = self._compressor
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        size = self._size
        if size:
            tail = self._tail
            self._tail = bytes(data[-size:]) if len(data) >= size else (tail + data)[-size:]
            if last:
                self._codec._context = self._tail
        if last and out.endswith(_TAIL):
            out = out[:-4]
        return out


def parse_extensions(value: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """
    Parse a C{Sec-WebSocket-Extensions} value (RFC 6455 §9.1): a list of
    extensions, each a token and its parameters, each a token with an
    optional token or quoted-string value (unquoted here). Empty list
    elements are skipped (RFC 9110 §5.6.1).

    @return: C{[(name, [(param, value or None), ...]), ...]} in order, names
        as sent.
    @raise ValueError: C{value} does not follow the grammar; the message says
        where.
    """
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    pos = 0
    end = len(value)

    def skip(pos: int) -> int:
        return _OWS.match(value, pos).end()  # type: ignore[union-attr]

    def token(pos: int, what: str) -> tuple[str, int]:
        match = _TOKEN.match(value, pos)
        if match is None:
            found = repr(value[pos]) if pos < end else "end of header"
            raise ValueError(f"expected {what} at {found}")
        return match.group(), match.end()

    while True:
        pos = skip(pos)
        if pos == end:
            return result
        if value[pos] == ",":
            pos += 1
            continue
        name, pos = token(pos, "an extension name")
        params: list[tuple[str, str | None]] = []
        pos = skip(pos)
        while pos < end and value[pos] == ";":
            pos = skip(pos + 1)
            param, pos = token(pos, "a parameter name")
            pos = skip(pos)
            argument = None
            if pos < end and value[pos] == "=":
                pos = skip(pos + 1)
                if pos < end and value[pos] == '"':
                    match = _QUOTED.match(value, pos)
                    if match is None:
                        raise ValueError("unterminated quoted string")
                    argument = _UNQUOTE.sub(r"\1", match.group(1))
                    pos = match.end()
                    # RFC 6455 §9.1: unquoted, the value must be a token.
                    if _TOKEN.fullmatch(argument) is None:
                        raise ValueError(f"quoted value {argument!r} is not a token")
                else:
                    argument, pos = token(pos, "a parameter value")
                pos = skip(pos)
            params.append((param, argument))
        if pos < end and value[pos] != ",":
            raise ValueError(f"unexpected {value[pos]!r}")
        result.append((name, params))


def _window_bits(value: str | None) -> int | None:
    if value is None or _WINDOW_BITS.match(value) is None:
        return None
    return int(value)


def _read_params(params: list[tuple[str, str | None]]) -> dict[str, str | None]:
    """
    Check the parameters of one permessage-deflate element (RFC 7692
    §7.1): each at most once, known, with a valid value where one is
    needed. C{client_max_window_bits} may come without a value.

    @return: parameter name (lower case) to value.
    @raise ValueError: what is wrong.
    """
    seen: dict[str, str | None] = {}
    for name, value in params:
        key = name.lower()
        if key in seen:
            raise ValueError(f"duplicate parameter {key}")
        if key in (_SERVER_NO_CONTEXT_TAKEOVER, _CLIENT_NO_CONTEXT_TAKEOVER):
            if value is not None:
                raise ValueError(f"{key} takes no value")
        elif key in (_SERVER_MAX_WINDOW_BITS, _CLIENT_MAX_WINDOW_BITS):
            if _window_bits(value) is None and not (key == _CLIENT_MAX_WINDOW_BITS and value is None):
                raise ValueError(f"invalid {key} {value!r}")
        else:
            raise ValueError(f"unknown parameter {name}")
        seen[key] = value
    return seen


def _format(params: list[tuple[str, int | None]]) -> str:
    parts = [EXTENSION_NAME]
    for name, value in params:
        parts.append(name if value is None else f"{name}={value}")
    # One string for every connection that negotiates the same parameters.
    return sys.intern("; ".join(parts))


def _codec(
    policy: PerMessageDeflate,
    local_window_bits: int,
    local_no_context_takeover: bool,
    peer_window_bits: int,
    peer_no_context_takeover: bool,
) -> DeflateCodec:
    return DeflateCodec(
        local_window_bits=local_window_bits,
        local_context_takeover=not local_no_context_takeover,
        peer_window_bits=peer_window_bits,
        peer_context_takeover=not peer_no_context_takeover,
        compress_level=policy.compress_level,
        mem_level=policy.mem_level,
        min_size=policy.min_size,
        context_size=policy.context_size,
    )


def _answer(policy: PerMessageDeflate, offer: dict[str, str | None]) -> tuple[str, DeflateCodec] | None:
    """
    The server's answer to one valid offer (RFC 7692 §7.1), or L{None} if
    the policy can't accept it.
    """
    response: list[tuple[str, int | None]] = []
    # §7.1.1.1: an offered server_no_context_takeover must be accepted; a
    # server may also choose it on its own.
    server_nct = _SERVER_NO_CONTEXT_TAKEOVER in offer or policy.server_no_context_takeover
    if server_nct:
        response.append((_SERVER_NO_CONTEXT_TAKEOVER, None))
    # §7.1.1.2: a server may always ask for client_no_context_takeover. It
    # does when the client offers it too, since some clients mean by that
    # "I accept being asked" and keep their window unless asked.
    client_nct = _CLIENT_NO_CONTEXT_TAKEOVER in offer or policy.client_no_context_takeover
    if client_nct:
        response.append((_CLIENT_NO_CONTEXT_TAKEOVER, None))
    # §7.1.2.1: at most what the client asked for; a server may also lower
    # its window unasked.
    server_bits = policy.server_max_window_bits
    if _SERVER_MAX_WINDOW_BITS in offer:
        server_bits = min(server_bits, int(offer[_SERVER_MAX_WINDOW_BITS]))  # type: ignore[arg-type]
        response.append((_SERVER_MAX_WINDOW_BITS, server_bits))
    elif server_bits < 15:
        response.append((_SERVER_MAX_WINDOW_BITS, server_bits))
    # §7.1.2.2: the client's window can only be limited if the client
    # offered the parameter.
    client_bits = policy.client_max_window_bits
    if _CLIENT_MAX_WINDOW_BITS not in offer:
        if client_bits < 15:
            return None
    else:
        offered = offer[_CLIENT_MAX_WINDOW_BITS]
        if offered is not None:
            client_bits = min(client_bits, int(offered))
            response.append((_CLIENT_MAX_WINDOW_BITS, client_bits))
        elif client_bits < 15:
            response.append((_CLIENT_MAX_WINDOW_BITS, client_bits))
    codec = _codec(policy, server_bits, server_nct, client_bits, client_nct)
    return _format(response), codec


def negotiate_server(
    policy: PerMessageDeflate, header_value: str | None
) -> tuple[str | None, DeflateCodec | None]:
    """
    Answer a client's C{Sec-WebSocket-Extensions} (RFC 7692 §5, §7.1): accept
    the first permessage-deflate offer that is valid and that C{policy} can
    accept. Other extensions, and offers with unknown or repeated parameters
    or invalid values, are declined.

    @param header_value: the request's header (repeated fields joined with
        C{", "}), or L{None}.
    @return: the response's C{Sec-WebSocket-Extensions} value and the codec,
        or C{(None, None)} when nothing is accepted.
    @raise HandshakeFailed: the header does not follow RFC 6455 §9.1 (400).
    """
    if header_value is None:
        return None, None
    try:
        extensions = parse_extensions(header_value)
    except ValueError as exc:
        raise HandshakeFailed(f"malformed sec-websocket-extensions: {exc}") from None
    for name, params in extensions:
        if name.lower() != EXTENSION_NAME:
            continue
        try:
            offer = _read_params(params)
        except ValueError:
            continue
        answer = _answer(policy, offer)
        if answer is not None:
            return answer
    return None, None


def client_offer(policy: PerMessageDeflate) -> str:
    """
    @return: the client's C{Sec-WebSocket-Extensions} value for C{policy}
        (RFC 7692 §7.1): one offer. C{client_max_window_bits} is always
        included, without a value when it is 15, so that the server may
        lower it.
    """
    params: list[tuple[str, int | None]] = []
    if policy.server_no_context_takeover:
        params.append((_SERVER_NO_CONTEXT_TAKEOVER, None))
    if policy.client_no_context_takeover:
        params.append((_CLIENT_NO_CONTEXT_TAKEOVER, None))
    if policy.server_max_window_bits < 15:
        params.append((_SERVER_MAX_WINDOW_BITS, policy.server_max_window_bits))
    client_bits = policy.client_max_window_bits
    params.append((_CLIENT_MAX_WINDOW_BITS, client_bits if client_bits < 15 else None))
    return _format(params)


def client_accept(policy: PerMessageDeflate, header_value: str) -> DeflateCodec:
    """
    Check the server's C{Sec-WebSocket-Extensions} against the offer
    L{client_offer} made for C{policy} (RFC 7692 §7.1).

    @return: the codec to use.
    @raise HandshakeRejected: the answer is malformed, names another or a
        second extension, or has parameters the offer does not allow.
    """

    def reject(reason: str) -> HandshakeRejected:
        return HandshakeRejected(reason, 101)

    try:
        extensions = parse_extensions(header_value)
    except ValueError as exc:
        raise reject(f"malformed sec-websocket-extensions: {exc}") from None
    if not extensions:
        raise reject("empty sec-websocket-extensions")
    for name, _ in extensions:
        if name.lower() != EXTENSION_NAME:
            raise reject(f"server accepted extension {name!r}, which was not offered")
    if len(extensions) > 1:
        raise reject("server accepted permessage-deflate more than once")
    try:
        answer = _read_params(extensions[0][1])
    except ValueError as exc:
        raise reject(f"invalid permessage-deflate response: {exc}") from None
    if policy.server_no_context_takeover and _SERVER_NO_CONTEXT_TAKEOVER not in answer:
        # §7.1.1.1: a server that accepts must include it.
        raise reject("server did not accept server_no_context_takeover")
    server_bits = 15
    if _SERVER_MAX_WINDOW_BITS in answer:
        server_bits = int(answer[_SERVER_MAX_WINDOW_BITS])  # type: ignore[arg-type]
        if server_bits > policy.server_max_window_bits:
            raise reject(
                f"server_max_window_bits={server_bits} is over the "
                f"{policy.server_max_window_bits} offered"
            )
    elif policy.server_max_window_bits < 15:
        # §7.1.2.1: a server that accepts must include it.
        raise reject("server did not accept server_max_window_bits")
    client_bits = policy.client_max_window_bits
    if _CLIENT_MAX_WINDOW_BITS in answer:
        value = answer[_CLIENT_MAX_WINDOW_BITS]
        if value is None:
            # §7.1.2.2: in a response, the parameter has a value.
            raise reject("client_max_window_bits without a value")
        client_bits = int(value)
        if client_bits > policy.client_max_window_bits:
            raise reject(
                f"client_max_window_bits={client_bits} is over the "
                f"{policy.client_max_window_bits} offered"
            )
    client_nct = policy.client_no_context_takeover or _CLIENT_NO_CONTEXT_TAKEOVER in answer
    server_nct = _SERVER_NO_CONTEXT_TAKEOVER in answer
    return _codec(policy, client_bits, client_nct, server_bits, server_nct)
