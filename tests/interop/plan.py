# -*- test-case-name: tests.interop -*-
"""
The plan of every interoperability exchange, in plain Python (the
C{websockets} peer imports it in a process without Twisted).

The tester sends text with characters of every UTF-8 length (four bytes
included), empty text, 256 bytes of binary, empty binary, a 1 MiB binary
and a 1 MiB text message, and compares each echo; then it pings, and closes
with 1000.
"""

from __future__ import annotations

import os

MiB = 1 << 20

#: The subprotocol every tester asks for (after one nobody speaks) and
#: every server chooses.
SUBPROTOCOL = "echo.wsproto_tw"
OFFERED = ("x-not-spoken", SUBPROTOCOL)

#: Our pings' payload; each peer pings with its own.
OUR_PING = b"ping from wsproto_tw"

#: Seconds for one step of an exchange (an echo, a pong, the close).
STEP = 20.0


def textOfBytes(size: int) -> str:
    """
    Text whose UTF-8 form is exactly C{size} bytes, with characters of every
    UTF-8 length.
    """
    unit = "wsproto_tw: \u00e9 \u20ac \U0001d11e \U0001f600 "
    text = unit * (size // len(unit.encode()))
    return text + "x" * (size - len(text.encode()))


def bytesOf(size: int) -> bytes:
    """
    Bytes, the first half repetitive (compressible), the second half
    pseudo-random.
    """
    half = size // 2
    head = bytes((i >> 4) & 0xFF for i in range(256 * 16)) * (half // 4096 + 1)
    return head[:half] + os.urandom(size - half)


def messages() -> list[str | bytes]:
    """
    The messages of the plan, in order.
    """
    return [
        "h\u00e9llo, w\u00f6rld: \u20ac \U0001d11e \U0001f600",
        "",
        bytes(range(256)),
        b"",
        bytesOf(MiB),
        textOfBytes(MiB),
    ]


def mismatch(sent: str | bytes, got: str | bytes) -> str | None:
    """
    Why C{got} is not the echo of C{sent}, briefly (no megabyte diffs), or
    L{None} when it is.
    """
    if type(got) is not type(sent):
        return f"{type(sent).__name__} of {len(sent)} echoed as {type(got).__name__} of {len(got)}"
    if got == sent:
        return None
    if len(got) != len(sent):
        return f"{type(sent).__name__} of {len(sent)} echoed with length {len(got)}"
    at = next(i for i, (a, b) in enumerate(zip(sent, got)) if a != b)
    return f"{type(sent).__name__} of {len(sent)} differs at {at}"
