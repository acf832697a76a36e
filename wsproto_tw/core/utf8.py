# -*- test-case-name: tests.core.test_utf8 -*-
"""
Incremental UTF-8 validation (RFC 6455 §8.1), decoding in the same pass.

CPython's incremental decoder already fails at the first byte that can't
start or continue a code point, with one exception: it holds C{ED A0..BF}
(the start of a UTF-16 surrogate) until the third byte arrives. L{Utf8Decoder}
checks that prefix itself, so invalid text fails in the fragment where it
appears.
"""

from __future__ import annotations

import codecs

from wsproto_tw.core.errors import InvalidText

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


class Utf8Decoder:
    """
    Decodes a text message fragment by fragment, failing fast.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder()

    def decode(self, data: bytes, final: bool) -> str:
        """
        @param data: the next fragment's bytes.
        @param final: whether this is the message's last fragment.
        @return: the text decoded so far from this fragment.
        @raise InvalidText: the bytes so far can't be valid UTF-8.
        """
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise InvalidText("invalid utf-8 in text message") from None
        if not final:
            pending = self._decoder.getstate()[0]
            if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise InvalidText("invalid utf-8 in text message")
        return text


def decode_text(data: bytes) -> str:
    """
    Decode a whole text payload.

    @raise InvalidText: it is not valid UTF-8.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidText("invalid utf-8 in text message") from None
