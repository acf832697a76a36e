# -*- test-case-name: tests.test_protocol -*-
"""
The base class of WebSocket applications, for both sides.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure
from zope.interface import implementer

from wsproto_tw.interfaces import IStreamingWebSocketApplication, IWebSocketApplication

__all__ = ["StreamingWebSocketApplication", "WebSocketApplication"]


@implementer(IWebSocketApplication)
class WebSocketApplication:
    """
    A base application that does nothing; subclass it and override what you
    need. C{self.transport} is the L{IWebSocketTransport
    <wsproto_tw.interfaces.IWebSocketTransport>}, set before
    C{connectionOpened}.
    """

    transport: Any = None

    def requestReceived(self, request: Any) -> Any:
        return None

    def connectionOpened(self, transport: Any) -> None:
        pass

    def textMessageReceived(self, text: str) -> Any:
        return None

    def binaryMessageReceived(self, data: bytes) -> Any:
        return None

    def pingReceived(self, payload: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure) -> None:
        pass


@implementer(IStreamingWebSocketApplication)
class StreamingWebSocketApplication(WebSocketApplication):
    """
    A base application that takes data messages piece by piece (see
    L{IStreamingWebSocketApplication
    <wsproto_tw.interfaces.IStreamingWebSocketApplication>}) and does
    nothing with them; override L{messageStarted}, L{messageDataReceived}
    and L{messageEnded}.
    """

    def messageStarted(self, binary: bool) -> None:
        pass

    def messageDataReceived(self, data: bytes | str) -> Any:
        return None

    def messageEnded(self) -> Any:
        return None
