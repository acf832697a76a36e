"""
Tests for L{wsproto_tw.stomp.broker} through sessions: topics, queues,
user destinations, acknowledgements per version, transactions, bounds.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.stomp.helpers import CONFIG, connected, frame, sent
from wsproto_tw.stomp.broker import Broker, EmbeddedBroker, Message
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.errors import DestinationError, SlowConsumer


def subscribe(session, destination, id="0", ack="auto"):
    session.receive_data(frame("SUBSCRIBE", f"id:{id}", f"destination:{destination}", f"ack:{ack}"), now=0)


def send(session, destination, body=b"x", *headers):
    session.receive_data(frame("SEND", f"destination:{destination}", *headers, body=body), now=0)


def bodies(session) -> list[bytes]:
    """
    The bodies of the MESSAGE frames C{session} wants sent, taken out.
    """
    out = []
    for message in sent(session):
        data = message.encode() if isinstance(message, str) else message
        assert data.startswith(b"MESSAGE\n"), data
        out.append(data.split(b"\n\n", 1)[1][:-1])
    return out


class TopicTests(SynchronousTestCase):
    """
    Tests for C{/topic/...} destinations.
    """

    def test_fanOut(self):
        """
        Every subscriber of a topic gets every message, the sender too,
        with the user headers and C{content-type} passed on.
        """
        broker = EmbeddedBroker()
        a, b = connected(broker, session_id="a"), connected(broker, session_id="b")
        subscribe(a, "/topic/t", "sa")
        subscribe(b, "/topic/t", "sb")
        send(a, "/topic/t", b"hi", "content-type:text/plain", "x-k:1", "x-k:2", "receipt:r")
        self.assertEqual(
            sent(a),
            [
                "MESSAGE\ndestination:/topic/t\nmessage-id:1\nsubscription:sa\ncontent-type:text/plain\nx-k:1\n"
                "content-length:2\n\nhi\x00",
                "RECEIPT\nreceipt-id:r\n\n\x00",
            ],
        )
        self.assertEqual(bodies(b), [b"hi"])

    def test_noSubscriber(self):
        """
        A message to a topic nobody subscribes to is dropped.
        """
        broker = EmbeddedBroker()
        a = connected(broker)
        send(a, "/topic/t")
        subscribe(a, "/topic/t")
        self.assertEqual(sent(a), [])

    def test_unsubscribe(self):
        """
        After C{UNSUBSCRIBE}, nothing more arrives; an unknown id is an
        error.
        """
        broker = EmbeddedBroker()
        a = connected(broker)
        subscribe(a, "/topic/t")
        a.receive_data(frame("UNSUBSCRIBE", "id:0"), now=0)
        send(a, "/topic/t")
        self.assertEqual(sent(a), [])
        a.receive_data(frame("UNSUBSCRIBE", "id:0"), now=0)
        self.assertEqual(sent(a), ["ERROR\nmessage:no subscription 0\ncontent-length:0\n\n\x00"])

    def test_unknownDestination(self):
        """
        Subscribing or sending to a destination that is not a topic,
        queue or user queue is an error.
        """
        for command in ("SUBSCRIBE\nid:0", "SEND"):
            a = connected()
            a.receive_data(f"{command}\ndestination:/topic/\n\n\x00".encode(), now=0)
            self.assertEqual(sent(a), ["ERROR\nmessage:unknown destination /topic/\ncontent-length:0\n\n\x00"])

    def test_unackedBoundPausesDelivery(self):
        """
        At C{max_unacked} unacknowledged messages a client-ack
        subscription gets no more until an acknowledgement arrives; then
        the held messages follow in order.
        """
        broker = EmbeddedBroker(max_unacked=2)
        a = connected(broker)
        subscribe(a, "/topic/t", ack="client-individual")
        for body in (b"1", b"2", b"3", b"4"):
            send(a, "/topic/t", body)
        self.assertEqual(bodies(a), [b"1", b"2"])
        a.receive_data(frame("ACK", "id:1"), now=0)
        self.assertEqual(bodies(a), [b"3"])
        a.receive_data(frame("ACK", "id:2") + frame("ACK", "id:3"), now=0)
        self.assertEqual(bodies(a), [b"4"])

    def test_slowConsumer(self):
        """
        Past C{max_pending} held messages, the subscriber's session gets
        C{ERROR} and closes; the sender goes on.
        """
        broker = EmbeddedBroker(max_unacked=1, max_pending=1)
        slow, sender = connected(broker, session_id="slow"), connected(broker, session_id="sender")
        subscribe(slow, "/topic/t", ack="client")
        wakes = []
        slow.wake = lambda: wakes.append(True)
        for body in (b"1", b"2", b"3"):
            send(sender, "/topic/t", body)
        out = sent(slow)
        self.assertEqual(len(out), 2)
        self.assertEqual(out[1], "ERROR\nmessage:more than 1 messages wait for subscription 0\ncontent-length:0\n\n\x00")
        self.assertIsInstance(slow.events()[0].error, SlowConsumer)
        self.assertTrue(slow.wants_close)
        self.assertEqual(len(wakes), 2)
        self.assertFalse(sender.wants_close)

    def test_slowConsumerWithTwoSubscriptions(self):
        """
        When a session fails while a message goes out, its other
        subscriptions to the topic get nothing more and hold nothing.
        """
        broker = EmbeddedBroker(max_unacked=1, max_pending=0)
        slow, sender = connected(broker, session_id="slow"), connected(broker, session_id="sender")
        subscribe(slow, "/topic/t", id="1", ack="client")
        subscribe(slow, "/topic/t", id="2", ack="client")
        send(sender, "/topic/t", b"1")
        slow.receive_data(frame("ACK", "id:2"), now=0)
        send(sender, "/topic/t", b"2")
        self.assertTrue(slow.wants_close)
        self.assertEqual(len(sent(slow)), 3)
        self.assertEqual(broker._deliveries, {})


class MixedVersionTests(SynchronousTestCase):
    """
    Tests for one message delivered to sessions of different versions.
    """

    def test_eachVersionEscapes(self):
        """
        Each subscriber gets the message written in its own version: the
        1.1 one with escapes, the 1.0 one without the header that 1.0
        can't carry.
        """
        broker = EmbeddedBroker()
        v10 = connected(broker, version="1.0", session_id="a")
        v11 = connected(broker, version="1.1", session_id="b")
        v12 = connected(broker, version="1.2", session_id="c")
        for session in (v10, v11):
            subscribe(session, "/topic/t")
        send(v12, "/topic/t", b"m", "k:x\\ny", "ok:a\\cb")
        self.assertEqual(sent(v10), ["MESSAGE\ndestination:/topic/t\nmessage-id:1\nsubscription:0\nok:a:b\ncontent-length:1\n\nm\x00"])
        self.assertEqual(
            sent(v11), ["MESSAGE\ndestination:/topic/t\nmessage-id:2\nsubscription:0\nk:x\\ny\nok:a\\cb\ncontent-length:1\n\nm\x00"]
        )

    def test_unwritableDestinationFailsSubscriber(self):
        """
        A message that a 1.0 subscriber can't be sent (its destination,
        subscribed with a raw CR, would need an escape) fails that
        subscriber's session, not the sender's.
        """
        broker = EmbeddedBroker()
        v10 = connected(broker, version="1.0", session_id="a")
        v12 = connected(broker, version="1.2", session_id="c")
        v10.receive_data(b"SUBSCRIBE\ndestination:/topic/a\r\n\n\x00", now=0)
        v12.receive_data(frame("SEND", "destination:/topic/a\\r", "receipt:r"), now=0)
        self.assertEqual(sent(v12), ["RECEIPT\nreceipt-id:r\n\n\x00"])
        self.assertEqual(
            sent(v10),
            ["ERROR\nmessage:a message to /topic/a  can't be written in STOMP 1.0\ncontent-length:0\n\n\x00"],
        )
        self.assertTrue(v10.wants_close)


class QueueTests(SynchronousTestCase):
    """
    Tests for C{/queue/...} destinations.
    """

    def test_roundRobin(self):
        """
        Each message of a queue goes to one subscriber, in turn.
        """
        broker = EmbeddedBroker()
        a, b = connected(broker, session_id="a"), connected(broker, session_id="b")
        subscribe(a, "/queue/q")
        subscribe(b, "/queue/q")
        for body in (b"1", b"2", b"3"):
            send(a, "/queue/q", body)
        self.assertEqual(bodies(a), [b"1", b"3"])
        self.assertEqual(bodies(b), [b"2"])

    def test_waitsForSubscriber(self):
        """
        Messages sent to a queue nobody subscribes to wait there, and go
        to the first subscriber.
        """
        broker = EmbeddedBroker()
        a = connected(broker)
        send(a, "/queue/q", b"1")
        send(a, "/queue/q", b"2")
        self.assertEqual(broker.queued("/queue/q"), 2)
        subscribe(a, "/queue/q")
        self.assertEqual(bodies(a), [b"1", b"2"])
        self.assertEqual(broker.queued("/queue/q"), 0)

    def test_queueFull(self):
        """
        Sending to a queue holding C{max_queue_length} messages is an
        error.
        """
        broker = EmbeddedBroker(max_queue_length=1)
        a = connected(broker)
        send(a, "/queue/q")
        send(a, "/queue/q")
        self.assertEqual(sent(a), ["ERROR\nmessage:queue /queue/q is full\ncontent-length:0\n\n\x00"])

    def test_queueBytesFull(self):
        """
        A message that would take a queue past C{max_queue_bytes} is an
        error and is not stored.
        """
        broker = EmbeddedBroker(max_queue_bytes=10)
        a = connected(broker)
        send(a, "/queue/q", b"x" * 6)
        send(a, "/queue/q", b"y" * 6)
        self.assertEqual(
            sent(a), ["ERROR\nmessage:queue /queue/q is full (at most 10 bytes)\ncontent-length:0\n\n\x00"]
        )
        self.assertEqual(broker.queued("/queue/q"), 1)
        self.assertEqual(broker.queued_bytes(), 6)

    def test_queuedBytesFull(self):
        """
        A message that would take all queues together past
        C{max_queued_bytes} is an error and is not stored; delivering
        messages frees their bytes.
        """
        broker = EmbeddedBroker(max_queued_bytes=10)
        a = connected(broker)
        send(a, "/queue/q1", b"x" * 6)
        send(a, "/queue/q2", b"y" * 6)
        self.assertEqual(
            sent(a), ["ERROR\nmessage:the broker's queues are full (at most 10 bytes)\ncontent-length:0\n\n\x00"]
        )
        self.assertEqual(broker.queued("/queue/q2"), 0)
        self.assertEqual(broker.queue_count(), 1)
        b = connected(broker, session_id="b")
        subscribe(b, "/queue/q1")
        self.assertEqual(bodies(b), [b"x" * 6])
        self.assertEqual(broker.queued_bytes(), 0)
        send(b, "/queue/q2", b"y" * 6)
        self.assertEqual(broker.queued_bytes(), 6)

    def test_tooManyQueues(self):
        """
        Sending to a new queue when C{max_queues} queues are held is an
        error; sending to an existing one is not.
        """
        broker = EmbeddedBroker(max_queues=1)
        a = connected(broker)
        send(a, "/queue/q1")
        send(a, "/queue/q2")
        self.assertEqual(sent(a), ["ERROR\nmessage:too many queues (at most 1)\ncontent-length:0\n\n\x00"])
        b = connected(broker, session_id="b")
        send(b, "/queue/q1")
        self.assertEqual(sent(b), [])
        self.assertEqual(broker.queued("/queue/q1"), 2)
        self.assertEqual(broker.queue_count(), 1)

    def test_emptyQueueForgotten(self):
        """
        A queue left with no messages and no subscribers is forgotten, so
        it does not count against C{max_queues}.
        """
        broker = EmbeddedBroker(max_queues=1)
        a = connected(broker)
        send(a, "/queue/q1", b"1")
        subscribe(a, "/queue/q1")
        self.assertEqual(bodies(a), [b"1"])
        a.receive_data(frame("UNSUBSCRIBE", "id:0"), now=0)
        self.assertEqual(broker.queue_count(), 0)
        send(a, "/queue/q2", b"2")
        self.assertEqual(broker.queued("/queue/q2"), 1)

    def test_nackRedelivers(self):
        """
        A NACKed queue message is delivered again, to the next subscriber
        in turn, with a new message id.
        """
        broker = EmbeddedBroker()
        a, b = connected(broker, session_id="a"), connected(broker, session_id="b")
        subscribe(a, "/queue/q", ack="client-individual")
        subscribe(b, "/queue/q", ack="client-individual")
        send(a, "/queue/q", b"m")
        self.assertEqual(bodies(a), [b"m"])
        a.receive_data(frame("NACK", "id:1"), now=0)
        self.assertEqual(
            sent(b),
            ["MESSAGE\ndestination:/queue/q\nmessage-id:2\nsubscription:0\nack:2\ncontent-length:1\n\nm\x00"],
        )

    def test_unackedRedeliveredOnSessionEnd(self):
        """
        What a session left unacknowledged goes, in order, to another
        subscriber when its connection is lost.
        """
        broker = EmbeddedBroker(max_unacked=2)
        a, b = connected(broker, session_id="a"), connected(broker, session_id="b")
        subscribe(a, "/queue/q", ack="client")
        for body in (b"1", b"2", b"3"):
            send(b, "/queue/q", body)
        self.assertEqual(bodies(a), [b"1", b"2"])
        subscribe(b, "/queue/q", ack="auto")
        self.assertEqual(bodies(b), [b"3"])
        a.connection_lost()
        self.assertEqual(bodies(b), [b"1", b"2"])

    def test_clientAckIsCumulative(self):
        """
        In C{client} mode, ACK of a message acknowledges the ones before
        it too; in C{client-individual} mode, only itself.
        """
        broker = EmbeddedBroker()
        a, b = connected(broker, session_id="a"), connected(broker, session_id="b")
        subscribe(a, "/queue/q", ack="client")
        for body in (b"1", b"2", b"3"):
            send(b, "/queue/q", body)
        sent(a)
        a.receive_data(frame("ACK", "id:2"), now=0)
        a.connection_lost()
        subscribe(b, "/queue/q")
        self.assertEqual(bodies(b), [b"3"])

        broker = EmbeddedBroker()
        a, b = connected(broker, session_id="a"), connected(broker, session_id="b")
        subscribe(a, "/queue/q", ack="client-individual")
        for body in (b"1", b"2", b"3"):
            send(b, "/queue/q", body)
        sent(a)
        a.receive_data(frame("ACK", "id:2"), now=0)
        a.connection_lost()
        subscribe(b, "/queue/q")
        self.assertEqual(bodies(b), [b"1", b"3"])


class AckVersionTests(SynchronousTestCase):
    """
    Tests for how ACK and NACK name a message in each version.
    """

    def deliverOne(self, version):
        broker = EmbeddedBroker()
        a = connected(broker, version=version)
        subscribe(a, "/queue/q", id="s", ack="client")
        send(a, "/queue/q")
        return broker, a, sent(a)

    def test_ack12(self):
        """
        In 1.2, C{MESSAGE} has an C{ack} header and C{ACK} names it in
        C{id}; C{message-id} alone is not enough.
        """
        broker, a, out = self.deliverOne("1.2")
        self.assertEqual(out, ["MESSAGE\ndestination:/queue/q\nmessage-id:1\nsubscription:s\nack:1\ncontent-length:1\n\nx\x00"])
        a.receive_data(frame("ACK", "id:1", "receipt:r"), now=0)
        self.assertEqual(sent(a), ["RECEIPT\nreceipt-id:r\n\n\x00"])
        broker, a, out = self.deliverOne("1.2")
        a.receive_data(frame("ACK", "message-id:1", "subscription:s"), now=0)
        self.assertEqual(sent(a), ["ERROR\nmessage:ACK without header id\ncontent-length:0\n\n\x00"])

    def test_ack11(self):
        """
        In 1.1, C{MESSAGE} has no C{ack} header; C{ACK} names the message
        by C{message-id} and C{subscription}, both required.
        """
        broker, a, out = self.deliverOne("1.1")
        self.assertEqual(out, ["MESSAGE\ndestination:/queue/q\nmessage-id:1\nsubscription:s\ncontent-length:1\n\nx\x00"])
        a.receive_data(frame("NACK", "message-id:1", "subscription:other"), now=0)
        self.assertEqual(sent(a), ["ERROR\nmessage:no unacknowledged message 1\ncontent-length:0\n\n\x00"])
        broker, a, out = self.deliverOne("1.1")
        a.receive_data(frame("ACK", "message-id:1"), now=0)
        self.assertEqual(sent(a), ["ERROR\nmessage:ACK without header subscription\ncontent-length:0\n\n\x00"])
        broker, a, out = self.deliverOne("1.1")
        a.receive_data(frame("ACK", "message-id:1", "subscription:s", "receipt:r"), now=0)
        self.assertEqual(sent(a), ["RECEIPT\nreceipt-id:r\n\n\x00"])

    def test_ack10(self):
        """
        In 1.0, C{ACK} names the message by C{message-id}; there is no
        C{NACK}.
        """
        broker, a, out = self.deliverOne("1.0")
        a.receive_data(frame("ACK", "message-id:1", "receipt:r"), now=0)
        self.assertEqual(sent(a), ["RECEIPT\nreceipt-id:r\n\n\x00"])
        broker, a, out = self.deliverOne("1.0")
        a.receive_data(frame("NACK", "message-id:1"), now=0)
        self.assertEqual(sent(a), ["ERROR\nmessage:NACK is not a STOMP 1.0 command\ncontent-length:0\n\n\x00"])

    def test_ackOfAnotherSession(self):
        """
        A session can't acknowledge a message delivered to another one.
        """
        broker = EmbeddedBroker()
        a, b = connected(broker, session_id="a"), connected(broker, session_id="b")
        subscribe(a, "/queue/q", ack="client")
        send(b, "/queue/q")
        b.receive_data(frame("ACK", "id:1"), now=0)
        self.assertEqual(sent(b), ["ERROR\nmessage:no unacknowledged message 1\ncontent-length:0\n\n\x00"])


class UserDestinationTests(SynchronousTestCase):
    """
    Tests for C{/user/queue/...}.
    """

    def test_everySessionOfTheUser(self):
        """
        A message to C{/user/alice/queue/q} reaches every session of
        alice subscribed to C{/user/queue/q}, and nobody else.
        """
        broker = EmbeddedBroker()
        a1 = connected(broker, principal="alice", session_id="a1")
        a2 = connected(broker, principal="alice", session_id="a2")
        bob = connected(broker, principal="bob", session_id="b")
        for session in (a1, a2, bob):
            subscribe(session, "/user/queue/q")
        send(bob, "/user/alice/queue/q", b"hi")
        self.assertEqual(
            sent(a1), ["MESSAGE\ndestination:/user/queue/q\nmessage-id:1\nsubscription:0\ncontent-length:2\n\nhi\x00"]
        )
        self.assertEqual(bodies(a2), [b"hi"])
        self.assertEqual(sent(bob), [])

    def test_needsPrincipal(self):
        """
        A session without an authenticated user can't subscribe to a user
        destination.
        """
        a = connected()
        subscribe(a, "/user/queue/q")
        self.assertEqual(
            sent(a), ["ERROR\nmessage:/user/queue/q needs an authenticated user\ncontent-length:0\n\n\x00"]
        )

    def test_serverSide(self):
        """
        The broker's C{publish} of a L{Message} is what server code calls,
        for user destinations too; a bad destination raises
        L{DestinationError}.
        """
        broker = EmbeddedBroker()
        a = connected(broker, principal="alice")
        subscribe(a, "/user/queue/q")
        broker.publish(Message("/user/alice/queue/q", (), b"1"))
        self.assertEqual(bodies(a), [b"1"])
        self.assertRaises(DestinationError, broker.publish, Message("/user/alice/topic/q"))
        self.assertIsInstance(broker, Broker)


class TransactionTests(SynchronousTestCase):
    """
    Tests for BEGIN, COMMIT and ABORT.
    """

    def test_commitDelivers(self):
        """
        Frames of a transaction take effect at C{COMMIT}, in order.
        """
        broker = EmbeddedBroker()
        a = connected(broker)
        subscribe(a, "/topic/t")
        a.receive_data(frame("BEGIN", "transaction:t1"), now=0)
        send(a, "/topic/t", b"1", "transaction:t1")
        send(a, "/topic/t", b"2", "transaction:t1")
        self.assertEqual(sent(a), [])
        a.receive_data(frame("COMMIT", "transaction:t1"), now=0)
        self.assertEqual(bodies(a), [b"1", b"2"])

    def test_abortDrops(self):
        """
        C{ABORT} drops the transaction's frames, ACKs included.
        """
        broker = EmbeddedBroker()
        a, b = connected(broker, session_id="a"), connected(broker, session_id="b")
        subscribe(a, "/queue/q", ack="client")
        send(b, "/queue/q", b"1")
        sent(a)
        a.receive_data(frame("BEGIN", "transaction:t1"), now=0)
        a.receive_data(frame("ACK", "id:1", "transaction:t1"), now=0)
        send(a, "/queue/q", b"2", "transaction:t1")
        a.receive_data(frame("ABORT", "transaction:t1"), now=0)
        a.connection_lost()
        subscribe(b, "/queue/q")
        self.assertEqual(bodies(b), [b"1"])

    def test_unknownTransaction(self):
        """
        A frame naming a transaction that is not open is an error.
        """
        for data in (frame("SEND", "destination:/topic/t", "transaction:x"), frame("COMMIT", "transaction:x")):
            a = connected()
            a.receive_data(data, now=0)
            self.assertEqual(sent(a), ["ERROR\nmessage:unknown transaction x\ncontent-length:0\n\n\x00"])

    def test_transactionBounds(self):
        """
        Open transactions per session and frames per transaction are
        bounded.
        """
        config = StompConfig(server="test", heart_beat=(0, 0), max_transactions=1, max_transaction_frames=1)
        a = connected(config=config)
        a.receive_data(frame("BEGIN", "transaction:1") + frame("BEGIN", "transaction:2"), now=0)
        self.assertEqual(sent(a), ["ERROR\nmessage:too many open transactions (at most 1)\ncontent-length:0\n\n\x00"])
        a = connected(config=config)
        a.receive_data(frame("BEGIN", "transaction:1"), now=0)
        send(a, "/topic/t", b"1", "transaction:1")
        send(a, "/topic/t", b"2", "transaction:1")
        self.assertEqual(sent(a), ["ERROR\nmessage:transaction 1 has too many frames\ncontent-length:0\n\n\x00"])


class SubscriptionBoundTests(SynchronousTestCase):
    """
    Tests for the bounds on subscriptions.
    """

    def test_maxSubscriptions(self):
        """
        More than C{max_subscriptions} subscriptions is an error, and so
        is an id in use.
        """
        a = connected(config=StompConfig(server="test", heart_beat=(0, 0), max_subscriptions=1))
        subscribe(a, "/topic/a", id="1")
        subscribe(a, "/topic/b", id="2")
        self.assertEqual(sent(a), ["ERROR\nmessage:too many subscriptions (at most 1)\ncontent-length:0\n\n\x00"])
        a = connected()
        subscribe(a, "/topic/a", id="1")
        subscribe(a, "/topic/b", id="1")
        self.assertEqual(sent(a), ["ERROR\nmessage:subscription id 1 is already in use\ncontent-length:0\n\n\x00"])

    def test_badAckMode(self):
        """
        An C{ack} header that is not a mode is an error.
        """
        a = connected()
        subscribe(a, "/topic/a", ack="never")
        self.assertEqual(sent(a), ["ERROR\nmessage:ack must be auto, client or client-individual\ncontent-length:0\n\n\x00"])
