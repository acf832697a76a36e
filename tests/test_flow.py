"""
Tests for L{wsproto_tw.flow}: the flow-control objects a connection holds,
as values, with a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import RecordingProducer
from wsproto_tw.core.config import Config
from wsproto_tw.flow import InboundFlow, OutboundFlow, PauseReason, PullToPush


class InboundFlowTests(SynchronousTestCase):
    """
    L{InboundFlow} says when reading must stop and start, and when
    keepalive is suspended: only for reasons of our own.
    """

    def test_firstReasonStopsReading(self) -> None:
        """
        The first reason stops reading; a second does not stop it again;
        reading starts when the last one goes.
        """
        flow = InboundFlow(Config())
        self.assertEqual(flow.pause(PauseReason.APPLICATION), (True, True))
        self.assertTrue(flow.paused)
        self.assertEqual(flow.pause(PauseReason.BACKLOG), (False, False))
        self.assertEqual(flow.resume(PauseReason.APPLICATION), (False, False))
        self.assertTrue(flow.paused)
        self.assertEqual(flow.resume(PauseReason.BACKLOG), (True, True))
        self.assertFalse(flow.paused)
        self.assertIsNone(flow.resume(PauseReason.BACKLOG))

    def test_writesDoNotSuspendKeepalive(self) -> None:
        """
        A peer that does not read (L{PauseReason.WRITES}) stops our reading
        but not keepalive; a reason of ours on top of it suspends keepalive.
        """
        flow = InboundFlow(Config())
        self.assertEqual(flow.pause(PauseReason.WRITES), (True, False))
        self.assertEqual(flow.pause(PauseReason.NEGOTIATING), (False, True))
        self.assertEqual(flow.resume(PauseReason.NEGOTIATING), (False, True))
        self.assertEqual(flow.resume(PauseReason.WRITES), (True, False))

    def test_backlogWaterMarks(self) -> None:
        """
        Past C{max_pending_messages} the backlog is over its high-water
        mark; while paused for it, it is under the low-water mark at half.
        """
        flow = InboundFlow(Config(max_pending_messages=4))
        self.assertEqual([flow.messagePending(1) for _ in range(5)], [False] * 4 + [True])
        flow.pause(PauseReason.BACKLOG)
        self.assertEqual([flow.messageSettled(1) for _ in range(3)], [False, False, True])
        self.assertEqual(flow.pendingMessages, 2)


class OutboundFlowTests(SynchronousTestCase):
    """
    L{OutboundFlow}: a full write buffer pauses the producer, holds
    L{OutboundFlow.whenDrained}, counts what piles up, and stalls.
    """

    def test_pauseAndResume(self) -> None:
        """
        A push producer is paused and resumed with the buffer, and
        whenDrained fires on resuming.
        """
        events: list[str] = []
        flow = OutboundFlow(Config(), Clock(), lambda reason: events.append(reason))
        flow.register(RecordingProducer(events), True)
        self.assertTrue(flow.pause())
        self.assertFalse(flow.pause())
        drained = flow.whenDrained()
        self.assertNoResult(drained)
        self.assertTrue(flow.resume())
        self.assertIsNone(self.successResultOf(drained))
        self.assertEqual(events, ["paused", "resumed"])
        self.assertRaises(RuntimeError, flow.register, RecordingProducer(events), True)

    def test_overLimitAndStall(self) -> None:
        """
        Bytes written while the buffer is full count against
        C{max_write_buffer}; a buffer full for C{write_buffer_timeout}
        seconds calls the stall callback once.
        """
        clock = Clock()
        stalls: list[str] = []
        flow = OutboundFlow(Config(max_write_buffer=10, write_buffer_timeout=5), clock, stalls.append)
        self.assertFalse(flow.overLimit(100))
        flow.pause()
        self.assertFalse(flow.overLimit(10))
        self.assertTrue(flow.overLimit(1))
        clock.advance(5)
        self.assertEqual(stalls, ["peer is not reading"])

    def test_stopTellsProducer(self) -> None:
        """
        When the wire is gone, the producer is told C{stopProducing} once
        and whenDrained Deferreds fail with the reason.
        """
        events: list[str] = []
        flow = OutboundFlow(Config(), Clock(), events.append)
        flow.register(RecordingProducer(events), True)
        flow.pause()
        drained = flow.whenDrained()
        flow.stop(Failure(ValueError("gone")))
        flow.stop(Failure(ValueError("again")))
        self.failureResultOf(drained, ValueError)
        self.assertEqual(events, ["paused", "stopped"])


class PullToPushTests(SynchronousTestCase):
    """
    L{PullToPush} asks a pull producer for data once per reactor turn while
    not paused.
    """

    def test_turns(self) -> None:
        """
        Each turn asks once; paused, it asks nothing; stopProducing reaches
        the pull producer.
        """
        clock = Clock()
        events: list[str] = []
        driver = PullToPush(RecordingProducer(events), clock)

        def turn() -> None:
            # One reactor turn: run the calls due now, not those they add
            # (Clock.advance(0) would run those too, forever).
            for call in list(clock.getDelayedCalls()):
                clock.calls.remove(call)
                call.func(*call.args, **call.kw)

        driver.start()
        turn()
        turn()
        self.assertEqual(events, ["resumed", "resumed"])
        driver.pauseProducing()
        turn()
        self.assertEqual(events, ["resumed", "resumed"])
        driver.stopProducing()
        self.assertEqual(events, ["resumed", "resumed", "stopped"])
        self.assertEqual(clock.getDelayedCalls(), [])
