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

    # A slot, not an instance dict, for applications that add no attributes
    # (L{EchoApplication <wsproto_tw.apps.EchoApplication>}): one per
    # connection. Subclasses without __slots__ get a dict as usual.
    __slots__ = ("transport", "__weakref__")

    transport: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # C{transport} reads L{None} until it is set, as a class attribute
        # default did: set here, which every subclass's instances go
        # through whatever their __init__ does. (Not a __getattr__: a class
        # with one has every attribute read on its instances, the
        # application's own included, looked up the slow way, never by
        # the interpreter's specialized instructions.)
        new = super().__new__
        self = new(cls) if new is object.__new__ else new(cls, *args, **kwargs)
        self.transport = None
        return self

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
