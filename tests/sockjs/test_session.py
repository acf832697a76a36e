"""
Tests for L{wsproto_tw.sockjs.session}: the session's frames, receivers,
queue and deadlines, with C{now} passed in.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.sockjs.frames import (
    BrokenJSON,
    eventsource_framing,
    jsonp_framing,
    websocket_framing,
    xhr_framing,
    xhr_streaming_framing,
)
from wsproto_tw.sockjs.session import (
    Closed,
    MessageReceived,
    Opened,
    Session,
    SessionConfig,
    SessionState,
    check_close_code,
)

_PRELUDE = b"h" * 2048 + b"\n"


def opened(config: SessionConfig | None = None) -> Session:
    """
    @return: a session opened by an xhr poll at time 0.
    """
    session = Session(config or SessionConfig(), now=0)
    session.attach(xhr_framing(), now=0)
    session.events()
    return session


class SessionTests(SynchronousTestCase):
    """
    Tests for L{Session}.
    """

    def test_firstPollOpens(self):
        """
        The first receiving request gets C{o} and ends; the session is open.
        """
        session = Session(SessionConfig(), now=0)
        receiver = session.attach(xhr_framing(), now=0)
        self.assertEqual(receiver.data_to_send(), [b"o\n"])
        self.assertTrue(receiver.finished)
        self.assertIs(session.state, SessionState.OPEN)
        self.assertEqual(session.events(), [Opened()])

    def test_pollGetsQueuedMessages(self):
        """
        What was sent between polls leaves in one C{a} frame with the next
        poll.
        """
        session = opened()
        session.send_text("a", now=1)
        session.send_text("b", now=1)
        self.assertEqual(session.queued, 2)
        receiver = session.attach(xhr_framing(), now=2)
        self.assertEqual(receiver.data_to_send(), [b'a["a","b"]\n'])
        self.assertTrue(receiver.finished)
        self.assertEqual(session.queued, 0)

    def test_pollWaitsForMessage(self):
        """
        A poll with nothing queued stays attached until a message comes.
        """
        session = opened()
        receiver = session.attach(jsonp_framing("cb"), now=1)
        self.assertEqual(receiver.data_to_send(), [])
        self.assertFalse(receiver.finished)
        session.send_text("hi", now=2)
        self.assertEqual(receiver.data_to_send(), [b'cb("a[\\"hi\\"]");\r\n'])
        self.assertTrue(receiver.finished)
        self.assertIsNone(session.receiver)

    def test_streamingStaysOpen(self):
        """
        A streaming request gets the prelude, C{o}, and each message as it
        is sent.
        """
        session = Session(SessionConfig(), now=0)
        receiver = session.attach(xhr_streaming_framing(), now=0)
        self.assertEqual(receiver.data_to_send(), [_PRELUDE, b"o\n"])
        session.send_text("x", now=1)
        session.send_text("y", now=1)
        self.assertEqual(receiver.data_to_send(), [b'a["x"]\n', b'a["y"]\n'])
        self.assertFalse(receiver.finished)

    def test_responseLimit(self):
        """
        A streaming response ends once C{response_limit} bytes of frames
        (the prelude not counted) have gone; the session stays open for the
        next one.
        """
        session = Session(SessionConfig(response_limit=4096), now=0)
        receiver = session.attach(xhr_streaming_framing(), now=0)
        receiver.data_to_send()
        message = "x" * 128
        for _ in range(30):
            session.send_text(message, now=1)
        self.assertFalse(receiver.finished)
        session.send_text(message, now=1)
        self.assertTrue(receiver.finished)
        self.assertEqual(len(receiver.data_to_send()), 31)
        self.assertIs(session.state, SessionState.OPEN)
        session.send_text("z", now=2)
        again = session.attach(eventsource_framing(), now=2)
        self.assertEqual(again.data_to_send(), [b"\r\n", b'data: a["z"]\r\n\r\n'])

    def test_webSocketUnbounded(self):
        """
        The response limit does not apply to a WebSocket receiver.
        """
        session = Session(SessionConfig(response_limit=10), now=0)
        receiver = session.attach(websocket_framing(), now=0)
        session.send_text("x" * 100, now=0)
        self.assertEqual(receiver.data_to_send(), [b"o", b'a["' + b"x" * 100 + b'"]'])
        self.assertFalse(receiver.finished)

    def test_anotherConnection(self):
        """
        A second receiving request gets C{c[2010,...]} and ends; the first
        stays attached.
        """
        session = opened()
        first = session.attach(xhr_framing(), now=1)
        second = session.attach(xhr_streaming_framing(), now=1)
        self.assertEqual(second.data_to_send(), [_PRELUDE, b'c[2010,"Another connection still open"]\n'])
        self.assertTrue(second.finished)
        self.assertIs(session.receiver, first)
        self.assertIs(session.state, SessionState.OPEN)

    def test_receive(self):
        """
        An open session reports each message it receives.
        """
        session = opened()
        session.receive(b'["a","b"]', now=1)
        self.assertEqual(session.events(), [MessageReceived("a"), MessageReceived("b")])
        self.assertRaises(BrokenJSON, session.receive, b'["a', now=1)
        session.receive("", now=1, allow_empty=True)
        self.assertEqual(session.events(), [])

    def test_sendTextChecksType(self):
        """
        C{send_text} takes str only.
        """
        self.assertRaises(TypeError, opened().send_text, b"x", now=0)


class CloseTests(SynchronousTestCase):
    """
    Tests for closing a session.
    """

    def test_closeFrameRepeated(self):
        """
        After the application closes, every poll until the disconnect delay
        gets the close frame; L{Closed} is reported, clean, with the first.
        """
        session = opened()
        session.close(3000, "Go away!", now=1)
        self.assertEqual(session.events(), [])
        for now in (2, 3, 4):
            receiver = session.attach(xhr_framing(), now=now)
            self.assertEqual(receiver.data_to_send(), [b'c[3000,"Go away!"]\n'])
            self.assertTrue(receiver.finished)
        self.assertEqual(session.events(), [Closed(3000, "Go away!", True)])
        session.handle_timer(now=9)
        self.assertIs(session.state, SessionState.CLOSED)

    def test_closeAfterQueued(self):
        """
        A streaming receiver gets the queued messages, then the close frame,
        and ends.
        """
        session = opened()
        session.send_text("last", now=1)
        session.close(3000, "Go away!", now=1)
        receiver = session.attach(xhr_streaming_framing(), now=2)
        self.assertEqual(receiver.data_to_send(), [_PRELUDE, b'a["last"]\n', b'c[3000,"Go away!"]\n'])
        self.assertTrue(receiver.finished)

    def test_invalidCloseCode(self):
        """
        Codes that mean "no code was sent", or out of range, raise
        L{ValueError}.
        """
        for code in (1005, 1006, 1015, 999, 5000):
            self.assertRaises(ValueError, check_close_code, code)
            self.assertRaises(ValueError, opened().close, code, "", now=0)
        check_close_code(3000)

    def test_interrupted(self):
        """
        A receiving request cut off by the client closes an open session
        with C{c[1002,"Connection interrupted"]}, reported unclean.
        """
        session = opened()
        receiver = session.attach(xhr_framing(), now=1)
        session.detach(receiver, now=2)
        self.assertEqual(session.events(), [Closed(1002, "Connection interrupted", False)])
        again = session.attach(xhr_framing(), now=3)
        self.assertEqual(again.data_to_send(), [b'c[1002,"Connection interrupted"]\n'])

    def test_detachFinishedIgnored(self):
        """
        A request that ended because the session finished it does not
        close the session when it goes.
        """
        session = opened()
        receiver = session.attach(xhr_framing(), now=1)
        session.send_text("x", now=1)
        session.detach(receiver, now=2)
        self.assertIs(session.state, SessionState.OPEN)

    def test_queueLimit(self):
        """
        More than C{max_queue_size} characters waiting fails the session
        with 1008 and drops them; past C{queue_high_water} the session
        reports its writes paused.
        """
        session = opened(SessionConfig(max_queue_size=10, queue_high_water=5))
        session.send_text("123456", now=1)
        self.assertTrue(session.writes_paused)
        session.send_text("12345", now=1)
        self.assertEqual(session.events(), [Closed(1008, "message queue over its limit", False)])
        self.assertFalse(session.writes_paused)
        receiver = session.attach(xhr_framing(), now=2)
        self.assertEqual(receiver.data_to_send(), [b'c[1008,"message queue over its limit"]\n'])

    def test_end(self):
        """
        C{end} reports L{Closed} at once and forgets the session.
        """
        session = opened()
        receiver = session.attach(websocket_framing(), now=1)
        session.end(1000, "bye", was_clean=True)
        self.assertTrue(receiver.finished)
        self.assertEqual(session.events(), [Closed(1000, "bye", True)])
        self.assertIs(session.state, SessionState.CLOSED)
        self.assertIsNone(session.next_deadline())


class EndAfterCloseTests(SynchronousTestCase):
    """
    Tests for ending a session whose close frame did not go out.
    """

    def test_ownCode(self):
        """
        Ended before its close frame reached a receiver, a closed session
        reports its own close code, unclean.
        """
        session = opened()
        session.close(3000, "Go away!", now=1)
        session.end(1006, "session aborted", was_clean=False)
        self.assertEqual(session.events(), [Closed(3000, "Go away!", False)])


class DeadlineTests(SynchronousTestCase):
    """
    Tests for the heartbeat and the disconnect delay.
    """

    def test_heartbeat(self):
        """
        An attached receiver sent nothing for 25 seconds gets C{h}; a
        polling one then ends.
        """
        session = opened()
        streaming = Session(SessionConfig(), now=0)
        stream = streaming.attach(xhr_streaming_framing(), now=0)
        stream.data_to_send()
        self.assertEqual(streaming.next_deadline(), 25)
        streaming.send_text("x", now=10)
        self.assertEqual(streaming.next_deadline(), 35)
        streaming.handle_timer(now=35)
        self.assertEqual(stream.data_to_send(), [b'a["x"]\n', b"h\n"])
        self.assertEqual(streaming.next_deadline(), 60)

        poll = session.attach(xhr_framing(), now=1)
        session.handle_timer(now=26)
        self.assertEqual(poll.data_to_send(), [b"h\n"])
        self.assertTrue(poll.finished)

    def test_disconnectDelay(self):
        """
        A session without a receiving request for 5 seconds is over: it
        reports L{Closed} unclean and is L{SessionState.CLOSED}.
        """
        session = opened()
        self.assertEqual(session.next_deadline(), 5)
        session.handle_timer(now=4.9)
        self.assertIs(session.state, SessionState.OPEN)
        session.handle_timer(now=5)
        self.assertEqual(session.events(), [Closed(1006, "session timed out", False)])
        self.assertIs(session.state, SessionState.CLOSED)

    def test_attachedKeepsSession(self):
        """
        While a receiver is attached, the disconnect delay does not run;
        it starts again when the receiver ends.
        """
        session = opened()
        receiver = session.attach(xhr_framing(), now=4)
        self.assertEqual(session.next_deadline(), 29)
        session.send_text("x", now=20)
        self.assertTrue(receiver.finished)
        self.assertEqual(session.next_deadline(), 25)

    def test_noHeartbeat(self):
        """
        With C{heartbeat_interval=None}, no heartbeat deadline is set.
        """
        session = Session(SessionConfig(heartbeat_interval=None), now=0)
        session.attach(xhr_streaming_framing(), now=0)
        self.assertIsNone(session.next_deadline())

    def test_configValidated(self):
        """
        L{SessionConfig} refuses values out of range.
        """
        for kwargs in (
            {"heartbeat_interval": 0},
            {"disconnect_delay": 0},
            {"response_limit": 0},
            {"max_queue_size": 10, "queue_high_water": 11},
        ):
            self.assertRaises(ValueError, SessionConfig, **kwargs)
