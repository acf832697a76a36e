# -*- test-case-name: tests.test_tap_modes -*-
"""
The chat page that C{twistd websocket --mode broadcast} serves at C{/}.
"""

from __future__ import annotations

from importlib import resources

from twisted.web.static import Data

__all__ = ["chatPage", "chatPageHTML"]


def chatPageHTML(path: str = "/ws") -> bytes:
    """
    @param path: the URL path of the WebSocket the page connects to, on the
        page's own host.
    @return: the chat page, as UTF-8 HTML.
    """
    page = resources.files(__name__).joinpath("chat.html").read_bytes()
    attribute = b'data-ws-path="/ws"'
    escaped = path.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return page.replace(attribute, b'data-ws-path="' + escaped.encode("utf-8") + b'"', 1)


def chatPage(path: str = "/ws") -> Data:
    """
    @param path: as for L{chatPageHTML}.
    @return: a C{twisted.web} resource serving the chat page.
    """
    return Data(chatPageHTML(path), "text/html; charset=utf-8")
