# -*- test-case-name: tests.core.test_frames -*-
"""
RFC 6455 §5 framing: opcodes, close codes, the frame reader and writer, and
masking.
"""

from __future__ import annotations

import os
import struct

from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.errors import MessageTooBig, PeerViolation

__all__ = ["Opcode", "CloseCode", "Frame", "FrameReader", "build_frame", "apply_mask"]


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

_pack_b2 = struct.Struct("!BB").pack
_pack_b2h = struct.Struct("!BBH").pack
_pack_b2q = struct.Struct("!BBQ").pack
_unpack_h = struct.Struct("!H").unpack_from
_unpack_q = struct.Struct("!Q").unpack_from


def _mask_python(data: bytes, key: bytes) -> bytes:
    """
    XOR C{data} with the 4-byte C{key} repeated (RFC 6455 §5.3), in pure
    Python: one C{int} XOR for short data, four strided C{translate} calls
    (about twice as fast) for long data.
    """
    n = len(data)
    if n < 2048:
        repeated = key * (n // 4 + 1)
        return (
            int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")
        ).to_bytes(n, "little")
    out = bytearray(n)
    for i in range(4):
        out[i::4] = data[i::4].translate(_XOR_TABLES[key[i]])
    return bytes(out)


_XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]

apply_mask = _mask_python
if not os.environ.get("WSPROTO_TW_NO_SPEEDUPS"):
    try:
        from wsproto_tw.core._speedups import apply_mask  # type: ignore[no-redef]
    except ImportError:
        pass


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


def build_frame(
    opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False, mask_key: bytes | None = None
) -> bytes:
    """
    Serialize one frame (RFC 6455 §5.2).

    @param mask_key: four bytes to mask with (clients), or L{None} (servers).
    """
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    m = 0x80 if mask_key is not None else 0
    if n < 126:
        head = _pack_b2(b0, m | n)
    elif n < 0x10000:
        head = _pack_b2h(b0, m | 126, n)
    else:
        head = _pack_b2q(b0, m | 127, n)
    if mask_key is None:
        return head + payload
    return head + mask_key + apply_mask(payload, mask_key)


class FrameReader:
    """
    Reads frames out of a byte stream, checking everything RFC 6455 §5 asks of
    a single frame. Message-level rules (continuation, UTF-8, extensions) are
    the connection's.

    Data frames come out in pieces as their payload arrives, so that a
    message can be validated (and rejected) before its frame is complete,
    and a large frame is never held twice. Control frames come out whole.

    @ivar buffer: bytes received and not yet consumed.
    """

    __slots__ = (
        "buffer", "_expect_mask", "_max_frame_size", "_rsv_allowed",
        "_opcode", "_fin", "_rsv1", "_remaining", "_key", "_offset",
    )

    def __init__(self, expect_mask: bool, max_frame_size: int, rsv1_allowed: bool = False) -> None:
        self.buffer = bytearray()
        self._expect_mask = expect_mask
        self._max_frame_size = max_frame_size
        self._rsv_allowed = 0x40 if rsv1_allowed else 0
        # The data frame whose payload is being read, if any.
        self._opcode: Opcode | None = None
        self._fin = False
        self._rsv1 = False
        self._remaining = 0
        self._key: bytes | None = None
        self._offset = 0

    def allow_rsv1(self) -> None:
        """
        Accept RSV1 from now on (an extension that uses it was negotiated).
        """
        self._rsv_allowed = 0x40

    def read_frame(self) -> Frame | None:
        """
        Read the next frame only once it is whole (a convenience for simple
        callers and tests; connections use L{read_piece}).

        @return: the frame, or L{None} if more bytes are needed.
        """
        buf = self.buffer
        if self._opcode is not None or len(buf) < 2 or len(buf) < self._frame_length():
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
        if self._opcode is not None:
            # Continue the payload of a data frame.
            take = min(self._remaining, len(buf))
            if take == 0:
                return None
            data = self._take(take)
            self._remaining -= take
            end = self._remaining == 0
            opcode = self._opcode
            if end:
                self._opcode = None
            return opcode, self._fin, self._rsv1, data, False, end
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
        self._check(b0, b1, length, masked)
        if have < pos:
            return None
        opcode = _OPCODES[b0 & 0x0F]
        fin = bool(b0 & 0x80)
        rsv1 = bool(b0 & 0x40)
        if have - pos >= length:
            # The whole frame is here: the fast path.
            end = pos + length
            with memoryview(buf) as view:
                payload = bytes(view[pos:end])
            if masked:
                payload = apply_mask(payload, bytes(buf[pos - 4 : pos]))
            del buf[:end]
            return opcode, fin, rsv1, payload, True, True
        if opcode >= 0x8:
            return None  # control frames come out whole
        self._key = bytes(buf[pos - 4 : pos]) if masked else None
        self._offset = 0
        del buf[:pos]
        take = len(buf)
        data = self._take(take)
        self._opcode = opcode
        self._fin = fin
        self._rsv1 = rsv1
        self._remaining = length - take
        return opcode, fin, rsv1, data, True, False

    def _take(self, n: int) -> bytes:
        buf = self.buffer
        with memoryview(buf) as view:
            data = bytes(view[:n])
        del buf[:n]
        key = self._key
        if key is not None and n:
            shift = self._offset & 3
            self._offset += n
            data = apply_mask(data, key[shift:] + key[:shift])
        return data

    def _check(self, b0: int, b1: int, length: int, masked: int) -> None:
        if b0 & 0x70 & ~self._rsv_allowed:
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
        if length > 0x7FFFFFFFFFFFFFFF:
            raise PeerViolation("frame length has its most significant bit set")
        if bool(masked) != self._expect_mask:
            # RFC 6455 §5.1
            raise PeerViolation("unmasked frame from client" if self._expect_mask else "masked frame from server")
        if self._max_frame_size and length > self._max_frame_size:
            raise MessageTooBig(f"frame of {length} bytes exceeds the limit of {self._max_frame_size}")
