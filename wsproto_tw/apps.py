# -*- test-case-name: tests.test_apps -*-
"""
Ready-made applications for C{twistd websocket}.
"""

from __future__ import annotations

from wsproto_tw._protocol import WebSocketApplication


class EchoApplication(WebSocketApplication):
    """
    Sends every message back as it came: text as text, binary as binary.
    """

    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.transport.sendBinary(data)
