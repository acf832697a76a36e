# -*- test-case-name: tests.sockjs.test_frames -*-
"""
SockJS 0.3 framing, sans-I/O: the frames the server sends, the JSON they
are written in, the way each HTTP transport wraps them, and the decoding
of what clients send.

Frames (server to client), each a short string:

  - C{o}: the session is open;
  - C{h}: heartbeat;
  - C{a["m1","m2"]}: messages, as a JSON array of strings;
  - C{c[3000,"Go away!"]}: the session is closed, with a code and a
    reason.

The JSON is written with every character that some browser mangles in
transit escaped as C{\\uXXXX} (L{encode_json}). Clients send no framing:
a JSON array of strings (or, over WebSocket, one JSON string) carries
their messages (L{decode_messages}).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "ANOTHER_CONNECTION",
    "BrokenJSON",
    "CLOSE_ANOTHER_CONNECTION",
    "CLOSE_INTERRUPTED",
    "Framing",
    "HEARTBEAT",
    "OPEN",
    "PayloadExpected",
    "SockJSRequestError",
    "close_frame",
    "decode_messages",
    "encode_json",
    "eventsource_framing",
    "htmlfile_framing",
    "jsonp_framing",
    "messages_frame",
    "valid_callback",
    "valid_session_part",
    "websocket_framing",
    "xhr_framing",
    "xhr_streaming_framing",
]

OPEN = "o"
HEARTBEAT = "h"

#: The close code and reason sent to a second receiving request while one
#: is already attached to the session.
CLOSE_ANOTHER_CONNECTION = (2010, "Another connection still open")
#: The close code and reason of a session whose receiving request was cut
#: off by the network.
CLOSE_INTERRUPTED = (1002, "Connection interrupted")

# Characters the server must send escaped: C0 controls, the zero-width
# and bidi marks, the line and paragraph separators, the invisible
# operators and the specials block, which browsers drop or rewrite in
# XHR and script bodies; and surrogates, which can't be sent as UTF-8.
_ESCAPABLE = re.compile("[\x00-\x1f\u200c-\u200f\u2028-\u202f\u2060-\u206f\ufff0-\uffff\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def encode_json(value: object) -> str:
    """
    Encode C{value} as compact JSON, non-ASCII characters written as they
    are except those that browsers mangle, which are escaped.

    @param value: what L{json.dumps} accepts.
    @return: the JSON text.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _ESCAPABLE.sub(_escape, text)


def messages_frame(messages: Sequence[str]) -> str:
    """
    @param messages: the messages, in order.
    @return: the C{a} frame carrying them, e.g. C{a["hi"]}.
    """
    return "a" + encode_json(list(messages))


def close_frame(code: int, reason: str) -> str:
    """
    @return: the C{c} frame, e.g. C{c[3000,"Go away!"]}.
    """
    return "c" + encode_json([code, reason])


ANOTHER_CONNECTION = close_frame(*CLOSE_ANOTHER_CONNECTION)


class SockJSRequestError(Exception):
    """
    A request that sends messages was refused; the message is the body of
    the answer, C{status} its HTTP status.

    @cvar status: the HTTP status to answer with.
    """

    status = 500


class PayloadExpected(SockJSRequestError):
    """
    The request carried no messages.
    """

    def __init__(self) -> None:
        super().__init__("Payload expected.")


class BrokenJSON(SockJSRequestError):
    """
    The request's body is not a JSON array of strings (or one string).
    """

    def __init__(self) -> None:
        super().__init__("Broken JSON encoding.")


def decode_messages(payload: bytes | str, *, allow_empty: bool = False) -> list[str]:
    """
    Decode the messages a client sent: a JSON array of strings, or one
    JSON string.

    @param payload: the request body, or a WebSocket text message.
    @param allow_empty: whether an empty payload means no message (as over
        WebSocket, where empty messages are ignored) rather than an error.
    @return: the messages, in order.
    @raise PayloadExpected: C{payload} is empty (unless C{allow_empty}).
    @raise BrokenJSON: C{payload} is not JSON, or not strings.
    """
    if not payload:
        if allow_empty:
            return []
        raise PayloadExpected()
    try:
        value = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the decoder's stack (a
        # body of 100,000 C{[}) is broken JSON too, not our bug.
        raise BrokenJSON() from None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(message, str) for message in value):
        raise BrokenJSON()
    return value


_CALLBACK = re.compile(r"[A-Za-z0-9_.\-]+")


def valid_callback(name: str) -> bool:
    """
    @return: whether C{name} may name the JavaScript function of the
        C{jsonp} and C{htmlfile} transports: letters, digits, C{_}, C{-}
        and C{.} only, so that it can't inject script.
    """
    return _CALLBACK.fullmatch(name) is not None


def valid_session_part(segment: str) -> bool:
    """
    @return: whether C{segment} may be the server or session id of a
        session URL: not empty, and without a dot.
    """
    return bool(segment) and "." not in segment


@dataclass(frozen=True)
class Framing:
    """
    How a transport carries frames to the client.

    @ivar name: the transport's name in the URL, e.g. C{"xhr_streaming"}.
    @ivar prelude: what a response starts with, before any frame.
    @ivar encode: turns one frame into what the response carries for it.
    @ivar streaming: whether the response stays open after a frame (until
        the response limit); a polling response ends after one.
    @ivar bounded: whether the response limit applies (all but WebSocket).
    """

    name: str
    prelude: bytes
    encode: Callable[[str], bytes]
    streaming: bool
    bounded: bool = True


def _lines(frame: str) -> bytes:
    return frame.encode("utf-8") + b"\n"


def xhr_framing() -> Framing:
    """
    C{xhr}: polling, one frame per response, followed by a newline.
    """
    return Framing("xhr", b"", _lines, False)


# 2048 "h" and a newline: some browsers deliver nothing of a streamed
# XHR response before its first 2 KiB.
_XHR_PRELUDE = b"h" * 2048 + b"\n"


def xhr_streaming_framing() -> Framing:
    """
    C{xhr_streaming}: a 2 KiB prelude, then frames one per line.
    """
    return Framing("xhr_streaming", _XHR_PRELUDE, _lines, True)


def _event(frame: str) -> bytes:
    return b"data: " + frame.encode("utf-8") + b"\r\n\r\n"


def eventsource_framing() -> Framing:
    """
    C{eventsource}: server-sent events, one C{data:} event per frame,
    after a blank line.
    """
    return Framing("eventsource", b"\r\n", _event, True)


def jsonp_framing(callback: str) -> Framing:
    """
    C{jsonp}: polling, one frame per response as a call of C{callback}
    with the frame as a JSON string.

    @param callback: a name for which L{valid_callback} holds.
    """
    prefix = callback.encode("ascii") + b"("

    def encode(frame: str) -> bytes:
        return prefix + encode_json(frame).encode("utf-8") + b");\r\n"

    return Framing("jsonp", b"", encode, False)


_HTMLFILE_HEAD = """<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.%s;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>
"""


def htmlfile_framing(callback: str) -> Framing:
    """
    C{htmlfile}: an HTML page, padded past 1 KiB (browsers render nothing
    of a smaller one as it streams), that hands each frame, in a
    C{<script>} of its own, to the function C{callback} of its parent
    window.

    @param callback: a name for which L{valid_callback} holds.
    """
    head = (_HTMLFILE_HEAD % callback).encode("ascii")
    prelude = head + b" " * max(0, 1024 - len(head)) + b"\r\n\r\n"

    def encode(frame: str) -> bytes:
        return b"<script>\np(" + encode_json(frame).encode("utf-8") + b");\n</script>\r\n"

    return Framing("htmlfile", prelude, encode, True)


def websocket_framing() -> Framing:
    """
    C{websocket}: each frame is one WebSocket text message (its UTF-8
    bytes here), without a limit.
    """
    return Framing("websocket", b"", lambda frame: frame.encode("utf-8"), True, bounded=False)
