# -*- test-case-name: tests.core.test_frames -*-
"""
RFC 6455 §5 framing: opcodes, close codes, the frame reader and writer, and
masking.
"""

from __future__ import annotations

import struct
from typing import Callable

from wsproto_tw.core.accelerator import speedups
from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.errors import MessageTooBig, PeerViolation

__all__ = [
    "Opcode", "CloseCode", "Frame", "FrameReader", "BytesBuilder", "build_frame", "build_frame_pieces", "apply_mask",
]


# RFC 6455 §7.4: codes that may appear in a Close frame on the wire.
_WIRE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


def is_valid_wire_code(code: int) -> bool:
    """
    @return: whether C{code} may be sent in a Close frame (RFC 6455 §7.4).
    """
    return code in _WIRE_CODES or 3000 <= code <= 4999


_CONTROL = frozenset((Opcode.CLOSE, Opcode.PING, Opcode.PONG))
_KNOWN = frozenset(Opcode)
_OPCODES = {int(op): op for op in Opcode}
# What the C read_frame reads whole, by opcode: data frames and control
# frames (None for the reserved opcodes between them).
_READ_OPCODES = tuple(_OPCODES.get(code) for code in range(0x0B))

_MAX_LENGTH = 0x7FFFFFFFFFFFFFFF
# Payloads shorter than this are sliced out of the receive buffer; longer
# ones are unmasked straight from a memoryview of it.
_SLICE_LIMIT = 1024

_pack_b2 = struct.Struct("!BB").pack
_pack_b2h = struct.Struct("!BBH").pack
_pack_b2q = struct.Struct("!BBQ").pack
_unpack_h = struct.Struct("!H").unpack_from
_unpack_q = struct.Struct("!Q").unpack_from


def _mask_python(data: bytes, key: bytes, offset: int = 0) -> bytes:
    """
    XOR C{data} with the 4-byte C{key} repeated (RFC 6455 §5.3), in pure
    Python: one C{int} XOR for short data, four strided C{translate} calls
    (about twice as fast) for long data. Both arguments may be any
    bytes-like object, as for the C version.

    @param offset: how far into the payload C{data} begins, in bytes: the
        key carries on where the part before left it.
    @raise ValueError: C{key} is not 4 bytes, or C{offset} is negative.
    """
    n = len(data)
    key = bytes(key)
    if len(key) != 4:
        raise ValueError("mask key must be 4 bytes")
    if offset < 0:
        raise ValueError("offset must not be negative")
    shift = offset & 3
    if shift:
        key = key[shift:] + key[:shift]
    if n < 2048:
        repeated = key * (n // 4 + 1)
        return (
            int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")
        ).to_bytes(n, "little")
    data = bytes(data)
    out = bytearray(n)
    for i in range(4):
        out[i::4] = data[i::4].translate(_XOR_TABLES[key[i]])
    return bytes(out)


_XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]


class _PythonBytesBuilder:
    """
    Joins the pieces of a message into one bytes object, in pure Python: it
    keeps the pieces and joins them once, in L{build}. (The C version writes
    each piece into the result as it comes, which spares holding the
    pieces.)
    """

    __slots__ = ("_parts", "_room")

    def __init__(self, size_hint: int = 0) -> None:
        if size_hint < 0:
            raise ValueError("size_hint must not be negative")
        self._parts: list[bytes] = []
        # The room reserve offered, a bytearray, or None.
        self._room: bytearray | None = None

    def append(self, data: bytes, key: bytes | None = None, offset: int = 0) -> None:
        """
        Add C{data} (any bytes-like object) at the end; with a 4-byte
        masking C{key}, unmasked, C{data} beginning C{offset} bytes into
        its payload (RFC 6455 §5.3).
        """
        self._room = None
        self._parts.append(bytes(data) if key is None else _mask_python(data, key, offset))

    def reserve(self, n: int) -> memoryview:
        """
        Offer room for the next C{n} bytes, to receive bytes into; L{commit}
        then says how many were written.

        @return: a writable memoryview of C{n} bytes.
        @raise ValueError: C{n} is negative.
        """
        if n < 0:
            raise ValueError("n must not be negative")
        room = self._room = bytearray(n)
        return memoryview(room)

    def commit(self, n: int, key: bytes | None = None, offset: int = 0) -> None:
        """
        Take the first C{n} bytes of the room L{reserve} offered as
        appended; with a 4-byte masking C{key}, unmasked, their first byte
        being C{offset} bytes into its payload (RFC 6455 §5.3).

        @raise ValueError: C{n} is outside the room reserved.
        """
        room = self._room
        if n < 0 or n > (0 if room is None else len(room)):
            raise ValueError(f"commit({n}) outside the {0 if room is None else len(room)} bytes reserved")
        self._room = None
        if n:
            with memoryview(room) as view:
                self.append(view[:n], key, offset)

    def build(self) -> bytes:
        """
        @return: everything appended, as one bytes object; the builder starts
            over empty.
        """
        parts, self._parts = self._parts, []
        self._room = None
        return b"".join(parts)

    def __len__(self) -> int:
        return sum(map(len, self._parts))


apply_mask = _mask_python
BytesBuilder = _PythonBytesBuilder
# The C accelerator's whole-frame read (see FrameReader.read_piece), or None.
_read_frame: Callable[..., tuple | bool | None] | None = None
if speedups is not None:
    BytesBuilder = speedups.BytesBuilder  # type: ignore[misc]
    apply_mask = speedups.apply_mask
    _read_frame = speedups.read_frame


class Frame:
    """
    One decoded frame.

    @ivar opcode: the L{Opcode}.
    @ivar payload: the unmasked payload.
    @ivar fin: the FIN bit.
    @ivar rsv1: the RSV1 bit (permessage-deflate's "compressed" flag).
    """

    __slots__ = ("opcode", "payload", "fin", "rsv1")

    def __init__(self, opcode: Opcode, payload: bytes, fin: bool = True, rsv1: bool = False) -> None:
        self.opcode = opcode
        self.payload = payload
        self.fin = fin
        self.rsv1 = rsv1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (self.opcode, self.payload, self.fin, self.rsv1) == (
            other.opcode, other.payload, other.fin, other.rsv1)

    def __repr__(self) -> str:
        return f"Frame({self.opcode!r}, {self.payload[:32]!r}, fin={self.fin}, rsv1={self.rsv1})"


def _frame_head(opcode: int, n: int, fin: bool, rsv1: bool, masked: bool) -> bytes:
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    m = 0x80 if masked else 0
    if n < 126:
        return _pack_b2(b0, m | n)
    if n < 0x10000:
        return _pack_b2h(b0, m | 126, n)
    return _pack_b2q(b0, m | 127, n)


#: The two-octet headers of unmasked, uncompressed, final text and binary
#: frames with payloads of 0 to 125 octets (RFC 6455 §5.2), by payload
#: length: a server's small message is its header from here plus its payload.
SMALL_TEXT_HEADS = tuple(bytes((0x81, n)) for n in range(126))
SMALL_BINARY_HEADS = tuple(bytes((0x82, n)) for n in range(126))


def build_frame(
    opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False, mask_key: bytes | None = None
) -> bytes:
    """
    Serialize one frame (RFC 6455 §5.2).

    @param mask_key: four bytes to mask with (clients), or L{None} (servers).
    """
    head = _frame_head(opcode, len(payload), fin, rsv1, mask_key is not None)
    if mask_key is None:
        return head + payload
    return head + mask_key + apply_mask(payload, mask_key)


def build_frame_pieces(
    opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False, mask_key: bytes | None = None
) -> tuple[bytes, bytes]:
    """
    Serialize one frame (RFC 6455 §5.2) as two pieces to be sent one after
    the other, the header (with the masking key, if any) and the payload,
    so that a large payload is not copied behind its header: unmasked
    (servers), the payload piece is C{payload} itself.

    @param payload: the payload, C{bytes}.
    @param mask_key: four bytes to mask with (clients), or L{None} (servers).
    @return: C{(header, payload)}; joined, they are L{build_frame}'s bytes.
    """
    head = _frame_head(opcode, len(payload), fin, rsv1, mask_key is not None)
    if mask_key is None:
        return head, payload
    return head + mask_key, apply_mask(payload, mask_key)


class FrameReader:
    """
    Reads frames out of a byte stream, checking everything RFC 6455 §5 asks of
    a single frame. Message-level rules (continuation, UTF-8, extensions) are
    the connection's.

    Data frames come out in pieces as their payload arrives, so that a
    message can be validated (and rejected) before its frame is complete,
    and a large frame is never held twice. Control frames come out whole.

    Bytes received while the payload of a data frame is under way and
    nothing else is buffered are kept as they came (L{feed}), not copied
    into L{buffer}: the next piece of the payload is unmasked straight from
    them, or, unmasked already (a client's), is them.

    @ivar buffer: bytes received and not yet consumed (but for a chunk
        L{feed} keeps as it came: use L{feed} and L{clear} to add and drop
        bytes once frames are read): a C{bytearray}, or, once L{release}d
        while empty, a shared empty C{bytes} until L{feed} adds to it.
    """

    __slots__ = (
        "buffer", "_mask_bit", "_max_frame_size", "_plain",
        "_frame", "_remaining", "_offset", "_chunk",
    )

    def __init__(self, expect_mask: bool, max_frame_size: int, rsv1_allowed: bool = False) -> None:
        self.buffer = bytearray()
        self._mask_bit = 0x80 if expect_mask else 0
        self._max_frame_size = max_frame_size
        self._plain = _PLAIN_FIRST_BYTES
        if rsv1_allowed:
            self.allow_rsv1()
        # The data frame whose payload is being read, if any: its opcode,
        # FIN and RSV1 bits and masking key (or None), one tuple made per
        # frame that spans reads; the payload bytes still to come, and how
        # far into the payload the next piece begins.
        self._frame: tuple[Opcode, bool, bool, bytes | None] | None = None
        self._remaining = 0
        self._offset = 0
        # Received bytes kept as they came (see feed), or None.
        self._chunk: bytes | None = None

    def feed(self, data: bytes) -> None:
        """
        Add received bytes at the end of what is to be read.

        @param data: C{bytes}, or another bytes-like object (copied).
        """
        if self._chunk is not None:
            # Only while a payload is under way, with nothing buffered.
            self.buffer = bytearray(self._chunk)
            self._chunk = None
        buffer = self.buffer
        if self._frame is not None and not buffer and type(data) is bytes:
            self._chunk = data
        elif buffer is _RELEASED:
            self.buffer = bytearray(data)
        else:
            buffer += data

    def feed_into(self, data: bytes, sink: Callable[[bytes, bytes | None, int], bool]) -> bool:
        """
        Pass received bytes that are all payload of the data frame under
        way, and do not end it, straight to C{sink} instead of L{feed}ing
        them: the fast path of a large frame, which skips the pieces
        L{read_piece} makes.

        @param sink: called as C{sink(data, key, offset)}, with the frame's
            masking key (or L{None}) and how far into the payload C{data}
            begins; it unmasks and keeps C{data} and returns C{True}, or
            returns C{False} without taking anything.
        @return: whether C{sink} took C{data}; if not, nothing changed and
            the caller L{feed}s it.
        """
        n = len(data)
        frame = self._frame
        if frame is None or not 0 < n < self._remaining or self._chunk is not None or self.buffer:
            return False
        if not sink(data, frame[3], self._offset):
            return False
        self._offset += n
        self._remaining -= n
        return True

    def direct_room(self) -> int:
        """
        How many payload bytes of the data frame under way may be received
        straight into place (and reported with L{payload_received}) instead
        of being L{feed}: all that is still to come of it while nothing else
        is buffered; else C{0}.
        """
        if self._frame is None or self._chunk is not None or self.buffer:
            return 0
        return self._remaining

    def payload_received(self, n: int) -> tuple[bytes | None, int]:
        """
        The next C{n} payload bytes of the data frame under way were
        received straight into place, still masked, at most L{direct_room}
        of them. If they end the frame, its end comes out of L{read_piece}
        as an empty piece.

        @return: C{(key, offset)}: the frame's masking key (or L{None}) and
            how far into the payload the C{n} bytes begin, to unmask them.
        @raise ValueError: C{n} is not within L{direct_room}.
        """
        if not 0 < n <= self.direct_room():
            raise ValueError(f"{n} bytes received in place, {self.direct_room()} expected at most")
        offset = self._offset
        self._offset = offset + n
        self._remaining -= n
        return self._frame[3], offset  # type: ignore[index]

    def clear(self) -> None:
        """
        Drop every byte received and not yet read.
        """
        self.buffer = _RELEASED
        self._chunk = None

    def release(self) -> None:
        """
        If nothing is buffered, let the buffer go until more bytes arrive:
        an idle connection then holds no C{bytearray} of its own.
        """
        if not self.buffer and self._chunk is None:
            self.buffer = _RELEASED

    def allow_rsv1(self) -> None:
        """
        Accept RSV1 from now on (an extension that uses it was negotiated).
        """
        self._plain = _PLAIN_FIRST_BYTES_RSV1

    def read_frame(self) -> Frame | None:
        """
        Read the next frame only once it is whole (a convenience for simple
        callers and tests; connections use L{read_piece}).

        @return: the frame, or L{None} if more bytes are needed.
        """
        buf = self.buffer
        if self._frame is not None or len(buf) < 2 or len(buf) < self._frame_length():
            return None
        piece = self.read_piece()
        if piece is None:
            return None
        opcode, fin, rsv1, payload, _, _ = piece
        return Frame(opcode, payload, fin, rsv1)

    def _frame_length(self) -> int:
        buf = self.buffer
        length = buf[1] & 0x7F
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return 1 << 64
            length = _unpack_h(buf, 2)[0]
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return 1 << 64
            length = _unpack_q(buf, 2)[0]
            pos = 10
        return pos + (4 if buf[1] & 0x80 else 0) + length

    def read_piece(self) -> tuple[Opcode, bool, bool, bytes, bool, bool] | None:
        """
        Read the next piece of a frame.

        @return: C{(opcode, fin, rsv1, data, start, end)}: C{data} is the
            next unmasked slice of the payload, C{start} says it begins the
            frame and C{end} that it ends it; or L{None} if more bytes are
            needed.
        @raise PeerViolation: the frame breaks RFC 6455 §5 or a limit.
        """
        buf = self.buffer
        if self._frame is not None:
            return self._continue_payload()
        if _read_frame is not None:
            # A whole data frame with nothing to check but the masking
            # direction and the size (a message in one frame, the common
            # case), or a whole control frame valid as it stands (a Close,
            # a Ping), is read in C; the rest below.
            piece = _read_frame(
                buf, self._mask_bit, self._plain is _PLAIN_FIRST_BYTES_RSV1, self._max_frame_size, _READ_OPCODES
            )
            if piece is not False:
                return piece  # type: ignore[return-value]
        have = len(buf)
        if have < 2:
            return None
        b0 = buf[0]
        b1 = buf[1]
        length = b1 & 0x7F
        pos = 2
        if length == 126:
            if have < 4:
                return None
            length = _unpack_h(buf, 2)[0]
            pos = 4
        elif length == 127:
            if have < 10:
                return None
            length = _unpack_q(buf, 2)[0]
            pos = 10
        masked = b1 & 0x80
        if masked:
            pos += 4
        if (
            b0 not in self._plain
            or masked != self._mask_bit
            or (self._max_frame_size and length > self._max_frame_size)
            or length > _MAX_LENGTH
        ):
            # Something to check: a control frame, a reserved bit or
            # opcode, the masking direction or the size.
            self._check(b0, b1, length, masked)
        if have < pos:
            return None
        opcode = _OPCODES[b0 & 0x0F]
        fin = (b0 & 0x80) != 0
        rsv1 = (b0 & 0x40) != 0
        end = pos + length
        if have >= end:
            # The whole frame is here: the fast path. Slicing copies, which
            # costs less than a memoryview for small payloads only.
            if length < _SLICE_LIMIT:
                payload = apply_mask(buf[pos:end], buf[pos - 4 : pos]) if masked else bytes(buf[pos:end])
            else:
                with memoryview(buf) as view:
                    if masked:
                        payload = apply_mask(view[pos:end], view[pos - 4 : pos])
                    else:
                        payload = bytes(view[pos:end])
            del buf[:end]
            return opcode, fin, rsv1, payload, True, True
        if opcode >= 0x8:
            return None  # control frames come out whole
        self._frame = (opcode, fin, rsv1, bytes(buf[pos - 4 : pos]) if masked else None)
        self._offset = 0
        self._remaining = length
        del buf[:pos]
        data = self._take(len(buf))
        return opcode, fin, rsv1, data, True, self._frame is None

    @property
    def remaining(self) -> int:
        """
        Payload bytes of the data frame under way still to come (C{0}
        between frames).
        """
        return self._remaining

    def _continue_payload(self) -> tuple[Opcode, bool, bool, bytes, bool, bool] | None:
        """
        Read the next piece of the payload of the data frame under way.
        """
        opcode, fin, rsv1, _ = self._frame  # type: ignore[misc]
        chunk = self._chunk
        if not self._remaining:
            # The rest of the payload was received in place
            # (payload_received): only its end is left to report.
            self._frame = None
            if chunk is not None:
                self._chunk = None
                self.buffer += chunk
            return opcode, fin, rsv1, b"", False, True
        if chunk is not None:
            return opcode, fin, rsv1, self._takeChunk(chunk), False, self._frame is None
        if not self.buffer:
            return None
        data = self._take(min(self._remaining, len(self.buffer)))
        return opcode, fin, rsv1, data, False, self._frame is None

    def _takeChunk(self, chunk: bytes) -> bytes:
        """
        Take the next piece of the payload under way off the chunk L{feed}
        kept, unmasked; what follows the payload goes to the buffer.
        """
        self._chunk = None
        n = len(chunk)
        remaining = self._remaining
        key = self._frame[3]  # type: ignore[index]
        if n <= remaining:
            data = chunk if key is None else apply_mask(chunk, key, self._offset)
        else:
            with memoryview(chunk) as view:
                data = bytes(view[:remaining]) if key is None else apply_mask(view[:remaining], key, self._offset)
                # Nothing was buffered while the chunk was kept.
                self.buffer = bytearray(view[remaining:])
            n = remaining
        self._offset += n
        self._remaining = remaining - n
        if self._remaining == 0:
            self._frame = None
        return data

    def _take(self, n: int) -> bytes:
        """
        Take the next C{n} bytes of the payload under way off the buffer,
        unmasked.
        """
        buf = self.buffer
        key = self._frame[3]  # type: ignore[index]
        with memoryview(buf) as view:
            if key is None:
                data = bytes(view[:n])
            else:
                # The key continues where the previous piece left it.
                data = apply_mask(view[:n], key, self._offset)
        del buf[:n]
        self._offset += n
        self._remaining -= n
        if self._remaining == 0:
            self._frame = None
        return data

    def _check(self, b0: int, b1: int, length: int, masked: int) -> None:
        rsv_allowed = 0x40 if self._plain is _PLAIN_FIRST_BYTES_RSV1 else 0
        if b0 & 0x70 & ~rsv_allowed:
            raise PeerViolation("reserved bits set without a negotiated extension")
        opcode = b0 & 0x0F
        if opcode not in _OPCODES:
            raise PeerViolation(f"reserved opcode {opcode:#x}")
        if opcode >= 0x8:
            # RFC 6455 §5.5: control frames.
            if length > 125:
                raise PeerViolation("control frame too long")
            if not b0 & 0x80:
                raise PeerViolation("fragmented control frame")
        # RFC 6455 §5.2: the most significant bit of a 64-bit length is 0.
        if length > _MAX_LENGTH:
            raise PeerViolation("frame length has its most significant bit set")
        if masked != self._mask_bit:
            # RFC 6455 §5.1
            raise PeerViolation("unmasked frame from client" if self._mask_bit else "masked frame from server")
        if self._max_frame_size and length > self._max_frame_size:
            raise MessageTooBig(f"frame of {length} bytes exceeds the limit of {self._max_frame_size}")


# What a released reader's buffer is (FrameReader.release): one empty bytes
# object for all of them.
_RELEASED = b""

# First bytes that need no check beyond the masking direction and the size:
# a data frame (FIN either way) without reserved bits; with RSV1 allowed
# once an extension that uses it was negotiated.
_PLAIN_FIRST_BYTES = frozenset(fin | op for fin in (0, 0x80) for op in (0x0, 0x1, 0x2))
_PLAIN_FIRST_BYTES_RSV1 = _PLAIN_FIRST_BYTES | frozenset(b | 0x40 for b in _PLAIN_FIRST_BYTES)
