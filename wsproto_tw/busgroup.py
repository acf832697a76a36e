# -*- test-case-name: tests.stomp.test_bus -*-
"""
C{--mode broadcast} across processes: L{BusBroadcastGroup}, a
L{BroadcastGroup} whose messages go through a publish/subscribe bus (Redis:
L{wsproto_tw.redisbus.RedisBus}) shared by every process, each delivering
what the bus brings to its own members. While the bus is down, a message
reaches the members of the process that received it.
"""

from __future__ import annotations

from typing import Any

from wsproto_tw.apps import BroadcastGroup

__all__ = ["CHANNEL", "BusBroadcastGroup"]

#: The bus channel of C{--mode broadcast}.
CHANNEL = "wsproto_tw:broadcast"

_TEXT = b"t"
_BINARY = b"b"


class BusBroadcastGroup(BroadcastGroup):
    """
    A broadcast group spanning the processes that share C{bus}; give the
    bus's received messages to L{busMessageReceived}.

    @ivar bus: the L{Bus <wsproto_tw.stomp.bus.Bus>}.
    """

    def __init__(self, bus: Any, maxWriteBuffer: int = 4 << 20) -> None:
        super().__init__(maxWriteBuffer)
        self.bus = bus
        bus.subscribe(CHANNEL)

    def sendText(self, text: str) -> None:
        """
        Send a text message to every member of every process.
        """
        if self.bus.connected:
            self.bus.publish(CHANNEL, _TEXT + text.encode("utf-8"))
        else:
            super().sendText(text)

    def sendBinary(self, data: bytes) -> None:
        """
        Send a binary message to every member of every process.
        """
        if self.bus.connected:
            self.bus.publish(CHANNEL, _BINARY + bytes(data))
        else:
            super().sendBinary(data)

    def busMessageReceived(self, channel: str, payload: bytes) -> None:
        """
        The bus brought a message: send it to this process's members. What
        is not a message of this channel is dropped.
        """
        if channel != CHANNEL:
            return
        kind, body = payload[:1], payload[1:]
        if kind == _TEXT:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return
            super().sendText(text)
        elif kind == _BINARY:
            super().sendBinary(body)
