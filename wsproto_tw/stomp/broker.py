# -*- test-case-name: tests.stomp.test_broker -*-
"""
Destinations, subscriptions and acknowledgements: the L{Broker} interface
and L{EmbeddedBroker}, its in-process implementation.

Sans-I/O: the broker calls its subscribers (sessions) synchronously, and
they queue frames for their own transports. A relay to an external broker
is a second implementation of L{Broker}.
"""

from __future__ import annotations

import abc
import enum
import itertools
from collections import deque
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, Protocol

from wsproto_tw.stomp.errors import DestinationError, ProtocolError, SlowConsumer, StompError

__all__ = ["AckMode", "Broker", "EmbeddedBroker", "Message", "Subscriber", "Subscription"]

TOPIC_PREFIX = "/topic/"
QUEUE_PREFIX = "/queue/"
USER_PREFIX = "/user/"


class AckMode(str, enum.Enum):
    """
    The C{ack} header of C{SUBSCRIBE} (STOMP 1.2, "SUBSCRIBE ack Header").
    """

    AUTO = "auto"
    CLIENT = "client"
    CLIENT_INDIVIDUAL = "client-individual"


@dataclass(frozen=True)
class Message:
    """
    A message on its way through the broker.

    @ivar destination: where it was sent, e.g. C{"/topic/prices"}.
    @ivar headers: the headers delivered with it besides the ones each
        C{MESSAGE} frame gets (C{content-type} and user headers), as
        (name, value) pairs.
    @ivar body: the body octets.
    @ivar wire: what sessions computed once for every subscriber (the
        octets after the per-subscription headers, by version); not part
        of the value.
    """

    destination: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    wire: dict = field(default_factory=dict, compare=False, repr=False)


class Subscriber(Protocol):
    """
    What the broker delivers to: a session.

    @ivar principal: the authenticated user name, or L{None}; it selects
        the C{/user/queue/...} destinations a subscription receives.
    """

    principal: str | None

    def deliver(self, subscription: Subscription, message_id: str, message: Message) -> None:
        """
        Send C{message} to the peer as a C{MESSAGE} frame of C{subscription}.
        """

    def fail(self, error: StompError) -> None:
        """
        End the session with C{error} (for example a slow consumer).
        """


@dataclass(eq=False, slots=True)
class Subscription:
    """
    One C{SUBSCRIBE} of one session.

    @ivar subscriber: the session.
    @ivar id: the C{id} header.
    @ivar destination: the destination as subscribed.
    @ivar ack: the L{AckMode}.
    @ivar unacked: message id to L{Message}, in delivery order, of what
        was delivered and not yet acknowledged (never in C{AUTO} mode).
    @ivar pending: topic messages held while C{unacked} is full, or
        L{None} when none ever were (an idle subscription stays small).
    @ivar active: false once the subscription has ended.
    @ivar wire: what its subscriber computed once for its C{MESSAGE}
        frames (the escaped destination and id), or L{None}.
    """

    subscriber: Subscriber
    id: str
    destination: str
    ack: AckMode
    unacked: dict[str, Message] = field(default_factory=dict)
    pending: deque[Message] | None = None
    active: bool = True
    wire: object = None
    _key: tuple[str, ...] = ()


class Broker(abc.ABC):
    """
    The broker a session talks to. Every method is synchronous; errors are
    L{StompError}s that the session answers with C{ERROR}.
    """

    #: The session class this broker's sessions must be (a subclass of
    #: L{wsproto_tw.stomp.session.StompSession}), or L{None} for that class.
    session_type: Any = None

    def open(self, subscriber: Subscriber, version: Any, done: Callable[[StompError | None], None]) -> None:
        """
        A session's C{CONNECT} was accepted by the server: get ready for
        it, then call C{done(None)}; or call C{done(error)} to refuse it
        (the client gets C{ERROR} with the error's message). Here, at once;
        a broker that must reach something first (the relay) calls it
        later, within a bounded time.

        @param version: the session's L{wsproto_tw.stomp.frames.Version}.
        """
        done(None)

    @abc.abstractmethod
    def subscribe(self, subscriber: Subscriber, id: str, destination: str, ack: AckMode) -> Subscription:
        """
        Start delivering C{destination}'s messages to C{subscriber}.

        @raise DestinationError: C{destination} can't be subscribed to.
        @raise ProtocolError: C{id} is in use by this subscriber.
        """

    @abc.abstractmethod
    def unsubscribe(self, subscriber: Subscriber, id: str) -> None:
        """
        Stop a subscription; what it left unacknowledged on a queue is
        delivered again to another subscriber.

        @raise ProtocolError: no subscription C{id}.
        """

    @abc.abstractmethod
    def publish(self, message: Message) -> None:
        """
        Send C{message} to its destination.

        @raise DestinationError: the destination is unknown or full.
        """

    @abc.abstractmethod
    def ack(self, subscriber: Subscriber, message_id: str, subscription_id: str | None = None) -> None:
        """
        Acknowledge a message: in C{client} mode it and every message
        delivered before it on its subscription, in C{client-individual}
        mode it alone.

        @raise ProtocolError: no such unacknowledged message.
        """

    @abc.abstractmethod
    def nack(self, subscriber: Subscriber, message_id: str, subscription_id: str | None = None) -> None:
        """
        Refuse a message (cumulatively in C{client} mode, as for L{ack}):
        a queue's message goes back to the queue, a topic's is dropped.

        @raise ProtocolError: no such unacknowledged message.
        """

    @abc.abstractmethod
    def detach(self, subscriber: Subscriber) -> None:
        """
        The session ended: end its subscriptions; its unacknowledged queue
        messages are delivered again to other subscribers.
        """


class _Queue:
    __slots__ = ("messages", "subscriptions", "turn", "size")

    def __init__(self) -> None:
        self.messages: deque[Message] = deque()
        self.subscriptions: list[Subscription] = []
        self.turn = 0
        self.size = 0


def _size(message: Message) -> int:
    """
    @return: the octets C{message} holds, as counted against the queue byte
        limits: its body and its headers' names and values.
    """
    return len(message.body) + sum(len(name) + len(value) for name, value in message.headers)


class EmbeddedBroker(Broker):
    """
    An in-process broker.

      - C{/topic/NAME}: every subscriber gets every message sent after it
        subscribed.
      - C{/queue/NAME}: each message goes to one subscriber, in turn; a
        message sent while nobody can take it waits in the queue. NACKed
        messages, and those unacknowledged when their subscription ends,
        go back to the head of the queue.
      - C{/user/queue/NAME}: a subscription to it receives what is sent to
        C{/user/USER/queue/NAME}, where C{USER} is its session's
        principal: every session of that user gets it.

    @ivar max_unacked: most unacknowledged messages per subscription; at
        that many, delivery to it pauses until acknowledgements arrive.
    @ivar max_pending: most topic messages held for a paused subscription;
        past that the subscriber fails with L{SlowConsumer}.
    @ivar max_queue_length: most messages waiting in one queue; sending to
        a full queue fails with L{DestinationError}.
    @ivar max_queue_bytes: most octets (bodies and headers) waiting in one
        queue, 64 MiB by default; a message that would take a queue past it
        fails with L{DestinationError} and is not stored.
    @ivar max_queued_bytes: most octets waiting in all queues together,
        256 MiB by default; past it sending fails the same way.
    @ivar max_queues: most queue destinations the broker holds at once,
        10,000 by default; sending or subscribing to a new queue past it
        fails with L{DestinationError}. A queue with no messages and no
        subscribers is forgotten.
    """

    def __init__(
        self,
        *,
        max_unacked: int = 1000,
        max_pending: int = 10000,
        max_queue_length: int = 100000,
        max_queue_bytes: int = 64 * 1024 * 1024,
        max_queued_bytes: int = 256 * 1024 * 1024,
        max_queues: int = 10000,
    ) -> None:
        self.max_unacked = max_unacked
        self.max_pending = max_pending
        self.max_queue_length = max_queue_length
        self.max_queue_bytes = max_queue_bytes
        self.max_queued_bytes = max_queued_bytes
        self.max_queues = max_queues
        self._queued_bytes = 0
        self._ids = itertools.count(1)
        self._topics: dict[tuple[str, ...], list[Subscription]] = {}
        self._queues: dict[str, _Queue] = {}
        self._subscriptions: dict[Subscriber, dict[str, Subscription]] = {}
        self._deliveries: dict[str, Subscription] = {}

    # Destinations

    def _key(self, destination: str, principal: str | None, subscribing: bool) -> tuple[str, ...]:
        if destination.startswith(TOPIC_PREFIX) and len(destination) > len(TOPIC_PREFIX):
            return ("topic", destination)
        if destination.startswith(QUEUE_PREFIX) and len(destination) > len(QUEUE_PREFIX):
            return ("queue", destination)
        if destination.startswith(USER_PREFIX):
            rest = destination[len(USER_PREFIX) - 1 :]
            if subscribing:
                if principal is None:
                    raise DestinationError(f"{destination} needs an authenticated user")
                if rest.startswith(QUEUE_PREFIX) and len(rest) > len(QUEUE_PREFIX):
                    return ("user", principal, rest)
            else:
                user, slash, tail = rest[1:].partition("/")
                tail = "/" + tail
                if user and slash and tail.startswith(QUEUE_PREFIX) and len(tail) > len(QUEUE_PREFIX):
                    return ("user", user, tail)
        raise DestinationError(f"unknown destination {destination}")

    # Broker

    def subscribe(self, subscriber: Subscriber, id: str, destination: str, ack: AckMode) -> Subscription:
        key = self._key(destination, subscriber.principal, True)
        mine = self._subscriptions.setdefault(subscriber, {})
        if id in mine:
            raise ProtocolError(f"subscription id {id} is already in use")
        subscription = Subscription(subscriber, id, destination, AckMode(ack), _key=key)
        if key[0] == "queue":
            queue = self._queue(destination)
            queue.subscriptions.append(subscription)
            mine[id] = subscription
            self._dispatch(queue)
        else:
            mine[id] = subscription
            self._topics.setdefault(key, []).append(subscription)
        return subscription

    def _queue(self, destination: str) -> _Queue:
        queue = self._queues.get(destination)
        if queue is None:
            if len(self._queues) >= self.max_queues:
                raise DestinationError(f"too many queues (at most {self.max_queues})")
            queue = self._queues[destination] = _Queue()
        return queue

    def _requeue(self, queue: _Queue, messages: list[Message]) -> None:
        # Messages given back (NACKed, or unacknowledged when their
        # subscription ended) were already held; they go back past the limits.
        size = sum(_size(message) for message in messages)
        queue.size += size
        self._queued_bytes += size
        queue.messages.extendleft(reversed(messages))

    def unsubscribe(self, subscriber: Subscriber, id: str) -> None:
        subscription = self._subscriptions.get(subscriber, {}).pop(id, None)
        if subscription is None:
            raise ProtocolError(f"no subscription {id}")
        self._end(subscription)

    def detach(self, subscriber: Subscriber) -> None:
        for subscription in self._subscriptions.pop(subscriber, {}).values():
            self._end(subscription)

    def _end(self, subscription: Subscription) -> None:
        subscription.active = False
        for message_id in subscription.unacked:
            del self._deliveries[message_id]
        key = subscription._key
        if key[0] == "queue":
            queue = self._queues[subscription.destination]
            queue.subscriptions.remove(subscription)
            self._requeue(queue, list(subscription.unacked.values()))
            subscription.unacked.clear()
            self._dispatch(queue)
            if not queue.subscriptions and not queue.messages:
                del self._queues[subscription.destination]
        else:
            subscribers = self._topics[key]
            subscribers.remove(subscription)
            if not subscribers:
                del self._topics[key]

    def publish(self, message: Message) -> None:
        key = self._key(message.destination, None, False)
        if key[0] == "queue":
            size = _size(message)
            queue = self._queues.get(message.destination)
            if queue is not None and len(queue.messages) >= self.max_queue_length:
                raise DestinationError(f"queue {message.destination} is full")
            if (queue.size if queue is not None else 0) + size > self.max_queue_bytes:
                raise DestinationError(f"queue {message.destination} is full (at most {self.max_queue_bytes} bytes)")
            if self._queued_bytes + size > self.max_queued_bytes:
                raise DestinationError(f"the broker's queues are full (at most {self.max_queued_bytes} bytes)")
            queue = self._queue(message.destination)
            queue.messages.append(message)
            queue.size += size
            self._queued_bytes += size
            self._dispatch(queue)
            return
        for subscription in list(self._topics.get(key, ())):
            if not subscription.active:
                continue  # its session failed while this message went out
            if subscription.ack is AckMode.AUTO or (
                not subscription.pending and len(subscription.unacked) < self.max_unacked
            ):
                self._deliver(subscription, message)
            else:
                if subscription.pending is None:
                    subscription.pending = deque()
                subscription.pending.append(message)
                if len(subscription.pending) > self.max_pending:
                    subscription.subscriber.fail(
                        SlowConsumer(f"more than {self.max_pending} messages wait for subscription {subscription.id}")
                    )

    def _deliver(self, subscription: Subscription, message: Message) -> None:
        message_id = str(next(self._ids))
        if subscription.ack is not AckMode.AUTO:
            subscription.unacked[message_id] = message
            self._deliveries[message_id] = subscription
        subscription.subscriber.deliver(subscription, message_id, message)

    def _ready(self, subscription: Subscription) -> bool:
        return subscription.ack is AckMode.AUTO or len(subscription.unacked) < self.max_unacked

    def _dispatch(self, queue: _Queue) -> None:
        # Round robin over the subscriptions that can take a message.
        while queue.messages:
            count = len(queue.subscriptions)
            for step in range(count):
                subscription = queue.subscriptions[(queue.turn + step) % count]
                if self._ready(subscription):
                    queue.turn = (queue.turn + step + 1) % count
                    message = queue.messages.popleft()
                    size = _size(message)
                    queue.size -= size
                    self._queued_bytes -= size
                    self._deliver(subscription, message)
                    break
            else:
                return

    def _refill(self, subscription: Subscription) -> None:
        if subscription._key[0] == "queue":
            queue = self._queues.get(subscription.destination)
            if queue is not None:
                self._dispatch(queue)
            return
        while subscription.pending and self._ready(subscription):
            self._deliver(subscription, subscription.pending.popleft())

    def _settle(self, subscriber: Subscriber, message_id: str, subscription_id: str | None) -> tuple[Subscription, list[Message]]:
        subscription = self._deliveries.get(message_id)
        if (
            subscription is None
            or subscription.subscriber is not subscriber
            or (subscription_id is not None and subscription.id != subscription_id)
        ):
            raise ProtocolError(f"no unacknowledged message {message_id}")
        if subscription.ack is AckMode.CLIENT:
            # Cumulative: this message and every one delivered before it.
            settled = []
            for earlier in list(subscription.unacked):
                settled.append(subscription.unacked.pop(earlier))
                del self._deliveries[earlier]
                if earlier == message_id:
                    break
            return subscription, settled
        del self._deliveries[message_id]
        return subscription, [subscription.unacked.pop(message_id)]

    def ack(self, subscriber: Subscriber, message_id: str, subscription_id: str | None = None) -> None:
        subscription, _ = self._settle(subscriber, message_id, subscription_id)
        self._refill(subscription)

    def nack(self, subscriber: Subscriber, message_id: str, subscription_id: str | None = None) -> None:
        subscription, refused = self._settle(subscriber, message_id, subscription_id)
        if subscription._key[0] == "queue":
            self._requeue(self._queues[subscription.destination], refused)
        self._refill(subscription)

    # Introspection, for tests and metrics

    def queued(self, destination: str) -> int:
        """
        @return: how many messages wait in queue C{destination}.
        """
        queue = self._queues.get(destination)
        return 0 if queue is None else len(queue.messages)

    def queued_bytes(self) -> int:
        """
        @return: how many octets wait in all queues, as counted against
            L{max_queued_bytes}.
        """
        return self._queued_bytes

    def queue_count(self) -> int:
        """
        @return: how many queue destinations the broker holds.
        """
        return len(self._queues)
