"""
Tests for L{wsproto_tw.core.keepalive}: ping, pong and idle deadlines as
values, without a connection.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.core.config import Config
from wsproto_tw.core.keepalive import Keepalive


def started(now: float = 0.0, **config) -> Keepalive:
    """
    A L{Keepalive} for C{Config(**config)}, started at C{now}.
    """
    keepalive = Keepalive(Config(**config))
    keepalive.start_keepalive(now)
    return keepalive


class KeepaliveTests(SynchronousTestCase):
    """
    L{Keepalive} keeps the deadlines; the connection asks what fell due.
    """

    def test_nothingBeforeStart(self):
        """
        Before L{Keepalive.start}, nothing is due, ever.
        """
        keepalive = Keepalive(Config(ping_interval=20, idle_timeout=5))
        self.assertIsNone(keepalive.keepalive_deadline())
        self.assertIsNone(keepalive.ping_due(1000.0))
        self.assertFalse(keepalive.pong_overdue(1000.0))
        self.assertFalse(keepalive.idle_expired(1000.0))

    def test_start(self):
        """
        Starting arms the first ping C{ping_interval} and the idle timeout
        C{idle_timeout} after C{now}; the earlier is the next deadline.
        """
        keepalive = started(100.0, ping_interval=20, idle_timeout=5)
        self.assertEqual((keepalive.ping_at, keepalive.pong_by, keepalive.idle_by), (120.0, None, 105.0))
        self.assertEqual(keepalive.keepalive_deadline(), 105.0)
        self.assertIsNone(started(ping_interval=None).keepalive_deadline())

    def test_pingThenPong(self):
        """
        A ping falls due at C{ping_at} with a counter as payload, arms the
        pong deadline; its pong returns the round trip and arms the next
        ping.
        """
        keepalive = started(0.0, ping_interval=20, ping_timeout=10)
        self.assertIsNone(keepalive.ping_due(19.9))
        self.assertEqual(keepalive.ping_due(20.0), b"\x00\x01")
        self.assertEqual((keepalive.ping_at, keepalive.pong_by), (None, 30.0))
        self.assertIsNone(keepalive.ping_due(25.0))
        self.assertIsNone(keepalive.pong_received(b"\x00\x02", 20.5))
        self.assertEqual(keepalive.pong_received(b"\x00\x01", 20.25), 0.25)
        self.assertEqual((keepalive.ping_at, keepalive.pong_by), (40.25, None))
        self.assertIsNone(keepalive.pong_received(b"\x00\x01", 21.0))
        self.assertEqual(keepalive.ping_due(40.25), b"\x00\x02")

    def test_pongOverdue(self):
        """
        Without a pong, the pong deadline is overdue at C{ping_timeout}
        after the ping.
        """
        keepalive = started(0.0, ping_interval=20, ping_timeout=10)
        keepalive.ping_due(20.0)
        self.assertFalse(keepalive.pong_overdue(29.9))
        self.assertTrue(keepalive.pong_overdue(30.0))

    def test_noPingTimeout(self):
        """
        Without C{ping_timeout}, pings go on every C{ping_interval},
        answered or not.
        """
        keepalive = started(0.0, ping_interval=20, ping_timeout=None)
        self.assertEqual(keepalive.ping_due(20.0), b"\x00\x01")
        self.assertEqual((keepalive.ping_at, keepalive.pong_by), (40.0, None))
        self.assertEqual(keepalive.ping_due(40.0), b"\x00\x02")

    def test_counterWraps(self):
        """
        The ping payload is the count of pings modulo 2**16, in two bytes.
        """
        keepalive = started(0.0, ping_interval=1, ping_timeout=None)
        payloads = [keepalive.ping_due(float(t)) for t in range(1, 65538)]
        self.assertEqual(payloads[-2:], [b"\x00\x00", b"\x00\x01"])

    def test_idle(self):
        """
        The idle timeout expires once, and is then off.
        """
        keepalive = started(0.0, ping_interval=None, idle_timeout=5)
        self.assertFalse(keepalive.idle_expired(4.9))
        self.assertTrue(keepalive.idle_expired(5.0))
        self.assertFalse(keepalive.idle_expired(6.0))
        self.assertIsNone(keepalive.keepalive_deadline())

    def test_stop(self):
        """
        Once stopped, nothing is due, and a pong for the ping already sent
        measures nothing.
        """
        keepalive = started(0.0, ping_interval=20, ping_timeout=10, idle_timeout=50)
        keepalive.ping_due(20.0)
        keepalive.stop_keepalive()
        self.assertIsNone(keepalive.keepalive_deadline())
        self.assertIsNone(keepalive.pong_received(b"\x00\x01", 21.0))
        self.assertIsNone(keepalive.ping_at)

    def test_pauseAndResume(self):
        """
        While paused, no deadline is reported or enforced. Resuming gives an
        unanswered ping a full C{ping_timeout} and the idle timeout a fresh
        start from C{now}, and says whether keepalive was paused.
        """
        keepalive = started(0.0, ping_interval=20, ping_timeout=10, idle_timeout=50)
        keepalive.ping_due(20.0)
        keepalive.pause_keepalive()
        self.assertIsNone(keepalive.keepalive_deadline())
        self.assertFalse(keepalive.pong_overdue(100.0))
        self.assertFalse(keepalive.idle_expired(100.0))
        self.assertTrue(keepalive.resume_keepalive(now=100.0))
        self.assertFalse(keepalive.resume_keepalive(now=101.0))
        self.assertEqual((keepalive.pong_by, keepalive.idle_by), (110.0, 150.0))
        self.assertEqual(keepalive.keepalive_deadline(), 110.0)

    def test_pausedPingWaits(self):
        """
        A ping that falls due while paused is due at once on resuming.
        """
        keepalive = started(0.0, ping_interval=20)
        keepalive.pause_keepalive()
        self.assertIsNone(keepalive.ping_due(30.0))
        keepalive.resume_keepalive(now=30.0)
        self.assertEqual(keepalive.ping_due(30.0), b"\x00\x01")

    def test_noInstanceDict(self):
        """
        Keepalive keeps its state in slots.
        """
        self.assertFalse(hasattr(Keepalive(Config()), "__dict__"))
