# -*- test-case-name: tests.core.test_assembly -*-
"""
Message assembly: the data message being received, from the first piece of
its first frame to the last piece of its last (RFC 6455 §5.4), inflated
(RFC 7692) and, for text, validated as it arrives (RFC 6455 §8.1).

What a message costs does not grow with its number of fragments beyond a
small constant: binary pieces are written into one growing C{bytes} by the C
C{BytesBuilder} when the accelerator is built, and otherwise (and for text,
whose decoded pieces are C{str}) kept in a short list that is joined into
one chunk every L{_BATCH} pieces, so that a flood of tiny fragments costs a
few bytes per fragment, not an object each.
"""

from __future__ import annotations

from typing import Any

from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.deflate import _TAIL
from wsproto_tw.core.errors import MessageTooBig, PolicyViolation
from wsproto_tw.core.events import BinaryMessage, TextMessage
from wsproto_tw.core.frames import BytesBuilder, _PythonBytesBuilder, apply_mask
from wsproto_tw.core.utf8 import Utf8Decoder

__all__ = ["MessageAssembler", "MessageStream", "MAX_PREALLOCATION", "MAX_INFLATED_PIECE"]

#: Most bytes allocated for a message before they arrive, on the strength of
#: the length its first frame announces.
MAX_PREALLOCATION = 64 << 20

# Pieces kept as objects before they are joined into one chunk: a few KiB at
# most for tiny pieces, and no extra copy for a message of fewer, larger
# pieces (the usual frame that arrives over a few reads).
_BATCH = 256

# frames.BytesBuilder is the C builder when the accelerator is built and
# enabled. Its pure-Python fallback keeps every piece as an object until the
# end, which is what must not happen here: then binary pieces are batched
# like text.
_IN_PLACE = BytesBuilder is not _PythonBytesBuilder


class MessageAssembler:
    """
    One data message under way: counts its frames, inflates it if it is
    compressed, enforces the message limits, and joins its pieces.

    The connection checks the order of frames (a continuation needs a
    message to continue, a new message needs the previous one finished)
    and feeds every piece of every frame of the message to L{add}.

    @ivar opcode: L{Opcode.TEXT} or L{Opcode.BINARY}.
    """

    __slots__ = ("opcode", "_codec", "_max_size", "_max_frames", "_size", "_frames", "_decoder",
                 "_builder", "_pieces", "_chunks", "_room")

    def __init__(
        self, opcode: Opcode, codec: Any, max_size: int, max_frames: int, size_hint: int = 0
    ) -> None:
        """
        @param opcode: the opcode of the message's first frame.
        @param codec: the permessage-deflate codec if the message is
            compressed (RSV1 on its first frame), else L{None}.
        @param max_size: the largest message in bytes, inflated; C{0} for
            no limit.
        @param max_frames: the most frames in the message; C{0} for no
            limit.
        @param size_hint: the bytes the first frame announces: room is made
            for that much (up to L{MAX_PREALLOCATION}) for an uncompressed
            binary message, as far as the peer's word is trusted.
        """
        self.opcode = opcode
        self._codec = codec
        self._max_size = max_size
        self._max_frames = max_frames
        self._size = 0
        self._frames = 0
        # Text is validated as it arrives (RFC 6455 §8.1: fail fast).
        self._decoder = Utf8Decoder() if opcode is Opcode.TEXT else None
        if self._decoder is None and _IN_PLACE:
            self._builder: Any = BytesBuilder(0 if codec is not None else min(size_hint, MAX_PREALLOCATION))
            self._pieces: list | None = None
        else:
            self._builder = None
            self._pieces = []
        # The joined batches of pieces, once there are more than _BATCH.
        self._chunks: list | None = None
        # The room reserve offered, without the C builder.
        self._room: bytearray | None = None

    @property
    def size(self) -> int:
        """
        The message's payload so far, in bytes (inflated).
        """
        return self._size

    def add(self, data: bytes, frame_start: bool, last: bool) -> TextMessage | BinaryMessage | None:
        """
        Add the next piece of the message.

        @param data: the piece, unmasked, as it came off the wire.
        @param frame_start: whether the piece begins a frame.
        @param last: whether the piece ends the message (it ends a frame
            with FIN set).
        @return: the whole message once C{last}, else L{None}.
        @raise PolicyViolation: the message has more than C{max_frames}
            frames.
        @raise MessageTooBig: the message (inflated) exceeds C{max_size}.
        @raise InvalidText: a text message is not valid UTF-8 so far.
        @raise InvalidCompressedData: the compressed data is corrupt.
        """
        if frame_start:
            self._frames += 1
            if self._max_frames and self._frames > self._max_frames:
                raise PolicyViolation(f"message of more than {self._max_frames} frames")
        limit = self._max_size
        codec = self._codec
        if codec is not None:
            # RFC 7692 §7.2.2; the limit applies to the inflated size and is
            # enforced while inflating (None: no limit; 0: nothing more).
            data = codec.decompress(data, last, limit - self._size if limit else None)
        self._size += len(data)
        if limit and self._size > limit:
            raise MessageTooBig(f"message exceeds the limit of {limit} bytes")
        decoder = self._decoder
        if decoder is not None:
            text = decoder.decode(data, last)
            if text:
                pieces = self._pieces
                pieces.append(text)
                if len(pieces) >= _BATCH:
                    self._join_batch("")
            if last:
                return TextMessage(self._join(""))
            return None
        pieces = self._pieces
        if pieces is None:
            if data:
                self._builder.append(data)
            if last:
                return BinaryMessage(self._builder.build())
            return None
        if data:
            pieces.append(data)
            if len(pieces) >= _BATCH:
                self._join_batch(b"")
        if last:
            return BinaryMessage(self._join(b""))
        return None

    def absorb(self, data: bytes, key: bytes | None, offset: int) -> bool:
        """
        Add a piece from the middle of a frame (neither its start nor its
        end) of an uncompressed binary message straight from the bytes
        received, unmasking it into the message on the way, when nothing
        can fail (see L{FrameReader.feed_into}).

        @param key: the frame's masking key, or L{None}.
        @param offset: how far into the frame's payload C{data} begins.
        @return: whether C{data} was added; if not, nothing changed and it
            is to be L{add}ed.
        """
        builder = self._builder
        if builder is None or self._codec is not None:
            return False
        size = self._size + len(data)
        if self._max_size and size > self._max_size:
            return False  # add raises MessageTooBig
        self._size = size
        builder.append(data, key, offset)
        return True

    def reserve(self, n: int) -> memoryview | None:
        """
        Offer room for up to C{n} more payload bytes of an uncompressed
        binary message, to be received straight into the message (then
        reported with L{commit}): with the C accelerator, a view of the
        message's own buffer, so that they are copied once, by the
        kernel, and unmasked in place.

        @param n: the payload bytes wanted, more than C{0}.
        @return: a writable memoryview of C{n} bytes, or fewer if the
            message's size limit leaves less room; or L{None} if it leaves
            none or the message is text or compressed (its bytes go
            through L{add}).
        """
        if self._decoder is not None or self._codec is not None:
            return None
        if self._max_size:
            n = min(n, self._max_size - self._size)
            if n <= 0:
                return None  # add raises MessageTooBig
        builder = self._builder
        if builder is not None:
            return builder.reserve(n)
        room = self._room = bytearray(n)
        return memoryview(room)

    def commit(self, n: int, key: bytes | None, offset: int) -> None:
        """
        Take the first C{n} bytes of the room L{reserve} offered, received
        still masked, as the next piece from the middle of a frame (neither
        its start nor its end: L{add} reports the end).

        @param key: the frame's masking key, or L{None}.
        @param offset: how far into the frame's payload the C{n} bytes
            begin.
        """
        self._size += n
        builder = self._builder
        if builder is not None:
            builder.commit(n, key, offset)
            return
        room, self._room = self._room, None
        with memoryview(room) as view:
            data = bytes(view[:n]) if key is None else apply_mask(view[:n], key, offset)
        pieces = self._pieces
        pieces.append(data)
        if len(pieces) >= _BATCH:
            self._join_batch(b"")

    def _join_batch(self, empty: Any) -> None:
        """
        Join the pieces kept so far into one chunk.
        """
        pieces = self._pieces
        if self._chunks is None:
            self._chunks = []
        self._chunks.append(empty.join(pieces))
        pieces.clear()

    def _join(self, empty: Any) -> Any:
        """
        @return: the whole message: every chunk and piece joined (a single
            piece is returned as it is, without a copy).
        """
        if self._chunks is not None:
            self._join_batch(empty)
            return empty.join(self._chunks)
        return empty.join(self._pieces)


#: Most bytes a piece of a compressed message inflates to at once in
#: streaming mode: the rest waits, still compressed, for L{MessageStream.more}.
MAX_INFLATED_PIECE = 256 * 1024


class MessageStream:
    """
    One data message under way, handed on piece by piece instead of joined
    (a connection's streaming mode, L{Connection.stream_messages
    <wsproto_tw.core.connection.Connection.stream_messages>}): the same
    frame count, size limit, inflation and incremental UTF-8 validation as
    L{MessageAssembler}, but what it keeps between pieces is a few bytes of
    a code point split across pieces (text) and the inflater's state, never
    the message.

    @ivar opcode: L{Opcode.TEXT} or L{Opcode.BINARY}.
    """

    __slots__ = ("opcode", "_codec", "_max_size", "_max_frames", "_size", "_frames", "_decoder", "_rest", "_last", "pending")

    def __init__(self, opcode: Opcode, codec: Any, max_size: int, max_frames: int) -> None:
        """
        @param opcode: the opcode of the message's first frame.
        @param codec: the permessage-deflate codec if the message is
            compressed (RSV1 on its first frame), else L{None}.
        @param max_size: the largest message in bytes, inflated, counted
            over all its pieces; C{0} for no limit.
        @param max_frames: the most frames in the message; C{0} for no
            limit.
        """
        self.opcode = opcode
        self._codec = codec
        self._max_size = max_size
        self._max_frames = max_frames
        self._size = 0
        self._frames = 0
        self._decoder = Utf8Decoder() if opcode is Opcode.TEXT else None
        # Compressed: the input of the last piece not inflated yet, and
        # whether that piece ends the message.
        self._rest = b""
        self._last = False
        #: Whether more of the last piece is to be had from L{more}.
        self.pending = False

    @property
    def complete(self) -> bool:
        """
        Whether the message's last piece has been handed on whole.
        """
        return self._last and not self.pending

    @property
    def size(self) -> int:
        """
        The message's payload so far, in bytes (inflated).
        """
        return self._size

    def absorb(self, data: bytes, key: bytes | None, offset: int) -> bool:
        """
        Never takes a piece straight from the bytes received: each piece is
        handed to the application, through L{add}.

        @return: C{False}.
        """
        return False

    def reserve(self, n: int) -> None:
        """
        Never offers room to receive into: each piece is handed to the
        application, through L{add}.

        @return: L{None}.
        """
        return None

    def add(self, data: bytes, frame_start: bool, last: bool) -> bytes | str:
        """
        Take the next piece of the message.

        @param data: the piece, unmasked, as it came off the wire.
        @param frame_start: whether the piece begins a frame.
        @param last: whether the piece ends the message (it ends a frame
            with FIN set).
        @return: the piece's data: C{bytes} for a binary message (inflated:
            at most L{MAX_INFLATED_PIECE} bytes of it, the rest to be had
            from L{more} while L{pending}),
            C{str} for text, decoded as far as whole code points go (a code
            point split across pieces comes out with the piece that ends
            it). May be empty.
        @raise PolicyViolation: the message has more than C{max_frames}
            frames.
        @raise MessageTooBig: the message so far (inflated) exceeds
            C{max_size}.
        @raise InvalidText: a text message is not valid UTF-8 so far.
        @raise InvalidCompressedData: the compressed data is corrupt.
        """
        if frame_start:
            self._frames += 1
            if self._max_frames and self._frames > self._max_frames:
                raise PolicyViolation(f"message of more than {self._max_frames} frames")
        self._last = last
        if self._codec is not None:
            self._rest = data + _TAIL if last else data
            return self.more()
        return self._hand_on(data, last)

    def more(self) -> bytes | str:
        """
        Inflate the next part, at most L{MAX_INFLATED_PIECE} bytes, of the
        compressed piece given to L{add}; call it again while L{pending}.

        @return: as for L{add}.
        @raise MessageTooBig: as for L{add}.
        @raise InvalidText: as for L{add}.
        @raise InvalidCompressedData: as for L{add}.
        """
        out, self._rest = self._codec.inflate_some(self._rest, self._last, MAX_INFLATED_PIECE)
        self.pending = len(out) == MAX_INFLATED_PIECE
        return self._hand_on(out, self._last and not self.pending)

    def _hand_on(self, data: bytes, end: bool) -> bytes | str:
        limit = self._max_size
        self._size += len(data)
        if limit and self._size > limit:
            raise MessageTooBig(f"message exceeds the limit of {limit} bytes")
        decoder = self._decoder
        if decoder is not None:
            return decoder.decode(data, end)
        return data
