# -*- test-case-name: tests.sockjs.test_resource -*-
"""
The options of a SockJS endpoint, as one frozen dataclass. Sans-I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsproto_tw.sockjs.session import SessionConfig

__all__ = ["SockJSConfig"]

#: Where the iframe page loads C{sockjs-client} from by default.
DEFAULT_SOCKJS_URL = "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"


@dataclass(frozen=True)
class SockJSConfig:
    """
    What a L{SockJSResource <wsproto_tw.sockjs.resource.SockJSResource>}
    serves, and its limits.

    @ivar session: the timings and limits of each session.
    @ivar websocket: whether the C{websocket} transports are offered
        (C{/info} says so; the WebSocket URLs answer 404 when not).
    @ivar cookie_needed: whether session requests set a C{JSESSIONID}
        cookie (the client's own, or C{dummy}), for load balancers that
        make sessions sticky by it; C{/info} says so.
    @ivar sockjs_url: the URL of C{sockjs-client} that the iframe page
        loads (iframe-based transports, in browsers only).
    @ivar max_request_body: the largest body, in bytes, that a sending
        request (C{xhr_send}, C{jsonp_send}) may carry; larger gets 413.
    @raise ValueError: a value is out of range.
    """

    session: SessionConfig = field(default_factory=SessionConfig)
    websocket: bool = True
    cookie_needed: bool = False
    sockjs_url: str = DEFAULT_SOCKJS_URL
    max_request_body: int = 1 << 20

    def __post_init__(self) -> None:
        if self.max_request_body <= 0:
            raise ValueError("max_request_body must be positive")
        if '"' in self.sockjs_url or "<" in self.sockjs_url:
            raise ValueError("sockjs_url must not contain '\"' or '<'")
