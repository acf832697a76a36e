# -*- test-case-name: tests.stomp.test_bus -*-
"""
Topics that span processes: L{BusBroker}, an L{EmbeddedBroker} whose
C{/topic/...} messages go through a publish/subscribe L{Bus} (Redis, see
L{wsproto_tw.redisbus}) shared by every process, the design socket.io's
and Centrifugo's Redis adapters follow: each process subscribes to a bus
channel once per topic it has local subscribers for, publishes each topic
message to the bus only, and delivers what the bus brings to its own
subscribers.

What spans processes: C{/topic/...} messages, whoever sends them (clients,
handlers, server code). What does not: C{/queue/...} and
C{/user/...} destinations, acknowledgements and transactions, which stay
in each process's broker (relay to RabbitMQ for those,
L{wsproto_tw.stomp.relayclient}). While the bus is down, topic messages
are delivered in the process that received them, as without a bus.

Sans-I/O: the bus is an object with four members, and this module imports
no Twisted.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Protocol

from wsproto_tw.stomp.broker import AckMode, EmbeddedBroker, Message, Subscriber, Subscription
from wsproto_tw.stomp.errors import StompError
from wsproto_tw.stomp.frames import Frame, FrameReader, Version, serialize

__all__ = ["Bus", "BusBroker", "decode_message", "encode_message"]

_logger = logging.getLogger("wsproto_tw.stomp")

#: The prefix of the bus channels of topics.
CHANNEL_PREFIX = "wsproto_tw:stomp:"


class Bus(Protocol):
    """
    A publish/subscribe bus between processes.

    @ivar connected: whether what is published now reaches the other
        processes (and comes back to this one).
    """

    connected: bool

    def subscribe(self, channel: str) -> None:
        """
        Start receiving C{channel}'s messages (again after a reconnection).
        """

    def unsubscribe(self, channel: str) -> None:
        """
        Stop receiving C{channel}'s messages.
        """

    def publish(self, channel: str, payload: bytes) -> None:
        """
        Send C{payload} to every process subscribed to C{channel}, this
        one included.
        """


def encode_message(message: Message) -> bytes:
    """
    A message as bus payload: a STOMP 1.2 C{MESSAGE} frame with its
    destination, headers and C{content-length}.
    """
    headers = (("destination", message.destination),) + tuple(message.headers)
    headers += (("content-length", str(len(message.body))),)
    return serialize(Frame("MESSAGE", headers, message.body), Version.V1_2)


def decode_message(payload: bytes) -> Message:
    """
    The message that L{encode_message} wrote.

    @raise StompError: C{payload} is not such a frame.
    """
    reader = FrameReader(max_frame_size=sys.maxsize, max_headers=sys.maxsize, version=Version.V1_2)
    reader.feed(payload)
    frame = reader.next_frame()
    if frame is None or frame.command != "MESSAGE" or reader.buffered or not frame.headers:
        raise StompError("not a message of the bus")
    (name, destination), *headers = frame.headers
    if name != "destination":
        raise StompError("not a message of the bus")
    return Message(destination, tuple((n, v) for n, v in headers if n != "content-length"), frame.body)


class BusBroker(EmbeddedBroker):
    """
    An L{EmbeddedBroker} whose topics span the processes sharing C{bus}.
    Give the bus's received messages to L{bus_message_received}.

    @ivar bus: the L{Bus}.
    """

    def __init__(self, bus: Bus, **kwargs: Any) -> None:
        """
        @param kwargs: the limits of L{EmbeddedBroker}.
        """
        super().__init__(**kwargs)
        self.bus = bus

    @staticmethod
    def _channel(destination: str) -> str:
        return CHANNEL_PREFIX + destination

    def subscribe(self, subscriber: Subscriber, id: str, destination: str, ack: AckMode) -> Subscription:
        subscription = super().subscribe(subscriber, id, destination, ack)
        key = subscription._key
        if key[0] == "topic" and len(self._topics[key]) == 1:
            self.bus.subscribe(self._channel(destination))  # the first here
        return subscription

    def _end(self, subscription: Subscription) -> None:
        super()._end(subscription)
        key = subscription._key
        if key[0] == "topic" and key not in self._topics:
            self.bus.unsubscribe(self._channel(subscription.destination))  # the last here

    def publish(self, message: Message) -> None:
        """
        Send a topic message to the bus (delivered here when it comes
        back), or deliver it here when the bus is down; other destinations
        are this process's.
        """
        if self.bus.connected and self._key(message.destination, None, False)[0] == "topic":
            self.bus.publish(self._channel(message.destination), encode_message(message))
            return
        super().publish(message)

    def bus_message_received(self, channel: str, payload: bytes) -> None:
        """
        The bus brought C{payload} on C{channel}: deliver it to this
        process's subscribers. Never raises: a payload that is not a topic
        message of this channel is logged and dropped.
        """
        try:
            message = decode_message(payload)
            if self._channel(message.destination) != channel:
                raise StompError(f"a message to {message.destination} on channel {channel}")
            if self._key(message.destination, None, False)[0] != "topic":
                raise StompError(f"{message.destination} is not a topic")
            super().publish(message)
        except StompError as exc:
            _logger.warning("bus message dropped: %s", exc.message)
