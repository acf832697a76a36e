# -*- test-case-name: tests.test_apps -*-
"""
Ready-made applications for C{twistd websocket}.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from wsproto_tw.application import WebSocketApplication
from wsproto_tw.broadcast import PreparedMessage, sendPrepared
from wsproto_tw.connection import WebSocketConnection, sendPreparedEach

_log = Logger(namespace="wsproto_tw.apps")

# A transport without writesPausedSince (not a WebSocketConnection) is
# asked with whenDrained instead.
_ASK = object()


class EchoApplication(WebSocketApplication):
    """
    Sends every message back as it came: text as text, binary as binary.
    """

    __slots__ = ()

    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.transport.sendBinary(data)


class BroadcastGroup:
    """
    The connections of a broadcast: every message one of them sends goes to
    all of them, the sender included. Call the group to build a connection's
    L{BroadcastApplication}: it is an application factory. Each message is
    encoded once for all members (L{wsproto_tw.broadcast}).

    A client that does not read can't make the group hold memory for it
    without bound: while its transport's write buffer is full, what the
    group sends it is counted, and once that passes C{maxWriteBuffer} bytes
    the client is dropped.

    @ivar members: the open L{BroadcastApplication}s.
    @ivar maxWriteBuffer: bytes a blocked client may be sent before it is
        dropped; C{0} for no limit (then only the connection's own
        C{Config.max_write_buffer} applies).
    """

    def __init__(self, maxWriteBuffer: int = 4 << 20) -> None:
        self.maxWriteBuffer = maxWriteBuffer
        self.members: set[BroadcastApplication] = set()

    def __call__(self) -> BroadcastApplication:
        return BroadcastApplication(self)

    def sendText(self, text: str) -> None:
        """
        Send a text message to every member.
        """
        self.send(PreparedMessage(text))

    def sendBinary(self, data: bytes) -> None:
        """
        Send a binary message to every member.
        """
        self.send(PreparedMessage(data))

    def send(self, message: PreparedMessage) -> None:
        """
        Send a prepared message to every member: its frame is built once.
        """
        size = len(message.payload)
        ready = []
        for member in list(self.members):
            transport = member.transport
            if (
                type(transport) is WebSocketConnection
                and member._backlog is None
                and transport.writesPausedSince is None
            ):
                # A connection whose peer reads: the common case, sent to
                # with the others below, in one go.
                ready.append(transport)
            else:
                member.deliver(message, size)
        sendPreparedEach(ready, message)


class BroadcastApplication(WebSocketApplication):
    """
    A member of a L{BroadcastGroup}: a chat room where every message goes
    to everyone connected, as it came (text as text, binary as binary).
    """

    __slots__ = ("group", "_backlog")

    def __init__(self, group: BroadcastGroup) -> None:
        self.group = group
        # Bytes sent while the write buffer is full; None while it is not.
        self._backlog: int | None = None

    def connectionOpened(self, transport: Any) -> None:
        self.group.members.add(self)

    def connectionLost(self, reason: Any) -> None:
        self.group.members.discard(self)

    def textMessageReceived(self, text: str) -> None:
        self.group.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.group.sendBinary(data)

    def deliver(self, message: PreparedMessage, size: int) -> None:
        """
        Send one broadcast message to this member, unless it has fallen too
        far behind: then drop it.

        @param message: the message.
        @param size: its size, counted against the group's limit.
        """
        transport = self.transport
        if self._backlog is None:
            if getattr(transport, "writesPausedSince", _ASK) is None:
                # A WebSocketConnection whose peer reads (it says so
                # without making a Deferred): the common case.
                transport.sendPrepared(message)
                return
            drained = transport.whenDrained()
            if not drained.called:
                self._backlog = 0
                drained.addBoth(self._drained)
        if self._backlog is not None:
            limit = self.group.maxWriteBuffer
            self._backlog += size
            if limit and self._backlog > limit:
                self.group.members.discard(self)
                reason = f"peer is not reading ({self._backlog} bytes of broadcast behind)"
                drop = getattr(transport, "dropSlowConsumer", None)
                if drop is not None:
                    drop(reason)  # 1008, counted, logged
                else:
                    _log.info("dropping a broadcast client: {reason}", reason=reason)
                    transport.abortConnection()
                return
        sendPrepared(transport, message)

    def _drained(self, result: Any) -> None:
        self._backlog = None
