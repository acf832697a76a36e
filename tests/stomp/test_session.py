"""
Tests for L{wsproto_tw.stomp.session}: CONNECT negotiation, heart-beats,
receipts, errors, byte for byte.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.stomp.helpers import CONFIG, connected, frame, sent
from wsproto_tw.stomp.broker import EmbeddedBroker
from wsproto_tw.stomp.config import StompConfig, choose_subprotocol
from wsproto_tw.stomp.errors import AuthenticationFailed, LimitExceeded, VersionMismatch
from wsproto_tw.stomp.events import ConnectRequested, SessionEnded, SessionFailed
from wsproto_tw.stomp.frames import Version
from wsproto_tw.stomp.session import SessionState, StompSession, negotiate_heart_beat


def newSession(config: StompConfig = CONFIG, **kwargs) -> StompSession:
    return StompSession(config, EmbeddedBroker(), session_id="s1", **kwargs)


class ConnectTests(SynchronousTestCase):
    """
    Tests for C{CONNECT}/C{STOMP} and C{CONNECTED}.
    """

    def test_noAcceptVersionMeans10(self):
        """
        A C{CONNECT} without C{accept-version} is STOMP 1.0: C{CONNECTED}
        has C{version:1.0} and no heart-beat.
        """
        session = newSession()
        session.receive_data(frame("CONNECT", "login:u", "passcode:p"), now=0)
        self.assertEqual(
            session.events(),
            [ConnectRequested(Version.V1_0, "u", "p", None, (("login", "u"), ("passcode", "p")))],
        )
        self.assertEqual(sent(session), [])
        session.accept_connect("u", now=0)
        self.assertEqual(sent(session), ["CONNECTED\nversion:1.0\nserver:test\nsession:s1\nuser-name:u\n\n\x00"])
        self.assertIs(session.state, SessionState.CONNECTED)
        self.assertIs(session.version, Version.V1_0)

    def test_highestCommonVersion(self):
        """
        The highest version in both C{accept-version} and ours is chosen;
        C{CONNECTED} announces our heart-beat.
        """
        session = newSession(StompConfig(server="test", heart_beat=(5000, 6000)))
        session.receive_data(frame("STOMP", "accept-version:1.0,1.1,2.0", "host:example", "heart-beat:0,0"), now=0)
        [event] = session.events()
        self.assertEqual((event.version, event.host), (Version.V1_1, "example"))
        session.accept_connect(None, now=0)
        self.assertEqual(sent(session), ["CONNECTED\nversion:1.1\nheart-beat:5000,6000\nserver:test\nsession:s1\n\n\x00"])

    def test_noCommonVersion(self):
        """
        Without a version in common, the answer is C{ERROR} whose
        C{version} header lists ours, then the connection closes.
        """
        session = newSession(StompConfig(server="test", versions=(Version.V1_1, Version.V1_2)))
        session.receive_data(frame("CONNECT", "accept-version:1.0,3.0"), now=0)
        self.assertEqual(
            sent(session),
            ["ERROR\nmessage:supported protocol versions are 1.1 1.2\nversion:1.1,1.2\ncontent-length:0\n\n\x00"],
        )
        [event] = session.events()
        self.assertIsInstance(event.error, VersionMismatch)
        self.assertTrue(session.wants_close)

    def test_subprotocolFixesVersion(self):
        """
        A STOMP WebSocket subprotocol fixes the session's version: with
        C{v10.stomp}, a client accepting 1.0 to 1.2 gets 1.0; with
        C{v12.stomp}, a 1.0-only client gets C{ERROR}.
        """
        session = newSession(subprotocol="v10.stomp")
        session.receive_data(frame("CONNECT", "accept-version:1.0,1.1,1.2"), now=0)
        self.assertEqual(session.events()[0].version, Version.V1_0)
        session = newSession(subprotocol="v12.stomp")
        session.receive_data(frame("CONNECT"), now=0)
        self.assertEqual(
            sent(session),
            ["ERROR\nmessage:supported protocol versions are 1.2\nversion:1.2\ncontent-length:0\n\n\x00"],
        )

    def test_frameBeforeConnect(self):
        """
        Any frame but C{CONNECT} or C{STOMP} first is an error; a receipt
        asked for is named in the C{ERROR}.
        """
        session = newSession()
        session.receive_data(frame("SEND", "destination:/queue/a", "receipt:r1"), now=0)
        self.assertEqual(
            sent(session),
            ["ERROR\nmessage:expected CONNECT, got SEND\nreceipt-id:r1\ncontent-length:0\n\n\x00"],
        )
        self.assertIs(session.state, SessionState.CLOSED)

    def test_framesWaitForAuthentication(self):
        """
        Frames that follow C{CONNECT} are handled only once it is
        accepted, after C{CONNECTED}.
        """
        session = newSession()
        session.receive_data(frame("CONNECT", "accept-version:1.2") + frame("BEGIN", "transaction:t", "receipt:r"), now=0)
        self.assertEqual(sent(session), [])
        session.accept_connect(None, now=0)
        out = sent(session)
        self.assertEqual(len(out), 2)
        self.assertTrue(out[0].startswith("CONNECTED\n"))
        self.assertEqual(out[1], "RECEIPT\nreceipt-id:r\n\n\x00")

    def test_rejectConnect(self):
        """
        C{reject_connect} answers C{ERROR} with the given message and
        closes; frames that followed are not handled.
        """
        session = newSession()
        session.receive_data(frame("CONNECT", "login:u", "passcode:bad") + frame("DISCONNECT", "receipt:r"), now=0)
        session.reject_connect("bad credentials")
        self.assertEqual(sent(session), ["ERROR\nmessage:bad credentials\ncontent-length:0\n\n\x00"])
        [_, failed] = session.events()
        self.assertIsInstance(failed.error, AuthenticationFailed)
        self.assertTrue(session.wants_close)

    def test_connectTwice(self):
        """
        A second C{CONNECT} is an error.
        """
        session = connected()
        session.receive_data(frame("CONNECT", "accept-version:1.2"), now=0)
        self.assertEqual(sent(session), ["ERROR\nmessage:already connected\ncontent-length:0\n\n\x00"])

    def test_badHeartBeat(self):
        """
        A C{heart-beat} header that is not two numbers is an error.
        """
        session = newSession()
        session.receive_data(frame("CONNECT", "accept-version:1.1", "heart-beat:10"), now=0)
        self.assertEqual(
            sent(session), ["ERROR\nmessage:heart-beat must be two numbers of milliseconds\ncontent-length:0\n\n\x00"]
        )


class HeartBeatTests(SynchronousTestCase):
    """
    Tests for heart-beat negotiation and timing.
    """

    def test_negotiation(self):
        """
        Each direction's interval is the larger of what the sides asked,
        or 0 when either side said 0.
        """
        self.assertEqual(negotiate_heart_beat((1000, 2000), (3000, 500)), (1000, 3000))
        self.assertEqual(negotiate_heart_beat((1000, 2000), (0, 500)), (1000, 0))
        self.assertEqual(negotiate_heart_beat((0, 2000), (3000, 500)), (0, 3000))
        self.assertEqual(negotiate_heart_beat((1000, 0), (3000, 0)), (0, 0))

    def connectAt(self, now: float) -> StompSession:
        session = newSession(StompConfig(server="test", heart_beat=(1000, 2000), heart_beat_grace=1.5))
        session.receive_data(frame("CONNECT", "accept-version:1.2", "heart-beat:3000,500"), now=now)
        session.accept_connect(None, now=now)
        sent(session)
        return session

    def test_sendsHeartBeats(self):
        """
        We send an EOL every negotiated send interval.
        """
        session = self.connectAt(100.0)
        self.assertEqual(session.heart_beat, (1000, 3000))
        self.assertEqual(session.next_deadline(), 101.0)
        session.handle_timer(now=101.0)
        self.assertEqual(sent(session), ["\n"])
        self.assertEqual(session.next_deadline(), 102.0)

    def test_silentClientFails(self):
        """
        A client silent for the receive interval times the grace gets
        C{ERROR}; anything it sends, a heart-beat too, starts it over.
        """
        session = self.connectAt(100.0)
        session.handle_timer(now=101.0)
        session.receive_data(b"\n", now=104.0)
        sent(session)
        session.handle_timer(now=108.4)
        self.assertFalse(session.wants_close)
        session.handle_timer(now=108.5)
        self.assertEqual(sent(session)[-1], "ERROR\nmessage:no heart-beat from the client in 3000 ms\ncontent-length:0\n\n\x00")
        self.assertTrue(session.wants_close)
        self.assertIsNone(session.next_deadline())

    def test_connectTimeout(self):
        """
        A session not connected C{connect_timeout} seconds after it
        started (no C{CONNECT}, or no answer to the authentication) gets
        C{ERROR}; once connected, the deadline is gone.
        """
        config = StompConfig(server="test", heart_beat=(0, 0), connect_timeout=5)
        session = newSession(config, now=10.0)
        self.assertEqual(session.next_deadline(), 15.0)
        session.receive_data(frame("CONNECT"), now=12.0)
        session.handle_timer(now=14.9)
        self.assertEqual(sent(session), [])
        session.handle_timer(now=15.0)
        self.assertEqual(sent(session), ["ERROR\nmessage:no CONNECT accepted within 5 seconds\ncontent-length:0\n\n\x00"])
        self.assertTrue(session.wants_close)
        session = newSession(config, now=10.0)
        session.receive_data(frame("CONNECT"), now=12.0)
        session.accept_connect(None, now=12.0)
        self.assertIsNone(session.next_deadline())
        self.assertIsNone(newSession(StompConfig(connect_timeout=None)).next_deadline())

    def test_frameTimeout(self):
        """
        A frame begun but not ended C{frame_timeout} seconds after its
        first octet fails the session with C{ERROR}, even with heart-beats
        off; octets that keep trickling in don't move the deadline; a
        completed frame (or heart-beat octets alone) leave none.
        """
        config = StompConfig(server="test", heart_beat=(0, 0), frame_timeout=5)
        session = newSession(config, now=0.0)
        session.receive_data(frame("CONNECT", "accept-version:1.2"), now=0.0)
        session.accept_connect(None, now=0.0)
        sent(session)
        self.assertIsNone(session.next_deadline())
        session.receive_data(b"\n\n", now=1.0)
        self.assertIsNone(session.next_deadline())
        session.receive_data(b"SEND\ndestination:/topic/a\n", now=2.0)
        self.assertEqual(session.next_deadline(), 7.0)
        session.receive_data(b"x:y\n", now=6.0)
        self.assertEqual(session.next_deadline(), 7.0)
        session.handle_timer(now=6.9)
        self.assertFalse(session.wants_close)
        session.handle_timer(now=7.0)
        self.assertEqual(sent(session), ["ERROR\nmessage:a frame was not complete within 5 seconds\ncontent-length:0\n\n\x00"])
        self.assertTrue(session.wants_close)
        session = newSession(config, now=0.0)
        session.receive_data(frame("CONNECT", "accept-version:1.2"), now=0.0)
        session.accept_connect(None, now=0.0)
        session.receive_data(b"SEND\ndestination:/topic/a\n", now=2.0)
        session.receive_data(b"\nbody\x00", now=3.0)
        self.assertIsNone(session.next_deadline())
        session = newSession(StompConfig(server="test", heart_beat=(0, 0), frame_timeout=None), now=0.0)
        session.receive_data(b"CONN", now=0.0)
        self.assertEqual(session.next_deadline(), 30.0)  # only connect_timeout
        with self.assertRaises(ValueError):
            StompConfig(frame_timeout=0)

    def test_noHeartBeatsIn10(self):
        """
        A STOMP 1.0 session has no heart-beats.
        """
        session = newSession(StompConfig(server="test", heart_beat=(1000, 1000)))
        session.receive_data(frame("CONNECT", "heart-beat:1000,1000"), now=0)
        session.accept_connect(None, now=0)
        self.assertEqual(session.heart_beat, (0, 0))
        self.assertIsNone(session.next_deadline())


class FrameHandlingTests(SynchronousTestCase):
    """
    Tests for receipts, errors and the end of a session.
    """

    def test_receipt(self):
        """
        A frame with C{receipt} gets a C{RECEIPT} naming it once handled.
        """
        session = connected()
        session.receive_data(frame("SUBSCRIBE", "id:0", "destination:/topic/a", "receipt:77"), now=0)
        self.assertEqual(sent(session), ["RECEIPT\nreceipt-id:77\n\n\x00"])

    def test_disconnectWithReceipt(self):
        """
        C{DISCONNECT} gets its C{RECEIPT}, then the session wants the
        connection closed; what follows is ignored.
        """
        session = connected()
        session.receive_data(frame("DISCONNECT", "receipt:bye") + frame("SEND", "destination:/topic/a"), now=0)
        self.assertEqual(sent(session), ["RECEIPT\nreceipt-id:bye\n\n\x00"])
        self.assertEqual(session.events(), [SessionEnded()])
        self.assertTrue(session.wants_close)
        session.receive_data(frame("SEND", "destination:/topic/a"), now=0)
        self.assertEqual(sent(session), [])

    def test_errorNamesReceipt(self):
        """
        A frame that fails gets C{ERROR} with C{receipt-id} when it asked
        for a receipt, and the session closes.
        """
        session = connected()
        session.receive_data(frame("SEND", "destination:/nowhere", "receipt:9"), now=0)
        self.assertEqual(
            sent(session), ["ERROR\nmessage:unknown destination /nowhere\nreceipt-id:9\ncontent-length:0\n\n\x00"]
        )
        self.assertTrue(session.wants_close)

    def test_unknownCommand(self):
        """
        An unknown command is an error.
        """
        session = connected()
        session.receive_data(frame("PUBLISH"), now=0)
        self.assertEqual(sent(session), ["ERROR\nmessage:unknown command PUBLISH\ncontent-length:0\n\n\x00"])

    def test_missingHeader(self):
        """
        A frame without a header its command needs is an error.
        """
        session = connected()
        session.receive_data(frame("SUBSCRIBE", "destination:/topic/a"), now=0)
        self.assertEqual(sent(session), ["ERROR\nmessage:SUBSCRIBE without header id\ncontent-length:0\n\n\x00"])

    def test_limitBreach(self):
        """
        A frame over a limit is answered with C{ERROR}, then a close.
        """
        session = connected(config=StompConfig(server="test", max_frame_size=64))
        session.receive_data(b"SEND\ndestination:/topic/a\n\n" + b"x" * 64, now=0)
        self.assertEqual(sent(session), ["ERROR\nmessage:frame too large\ncontent-length:0\n\n\x00"])
        [event] = session.events()
        self.assertIsInstance(event.error, LimitExceeded)
        self.assertTrue(session.wants_close)

    def test_undefinedEscapeFails(self):
        """
        An undefined escape in a 1.2 session's frame is answered with
        C{ERROR} (whose C{message} is itself escaped: C{\\\\}).
        """
        session = connected()
        session.receive_data(frame("SEND", "destination:/topic/\\a"), now=0)
        self.assertEqual(sent(session), ["ERROR\nmessage:undefined escape sequence \\\\a in header\ncontent-length:0\n\n\x00"])

    def test_escapesAfterNegotiation(self):
        """
        After C{CONNECTED}, the session's version escapes: a 1.2 session
        reads C{\\c} as a colon in a destination.
        """
        broker = EmbeddedBroker()
        session = connected(broker)
        session.receive_data(frame("SUBSCRIBE", "id:0", "destination:/topic/a\\cb"), now=0)
        session.receive_data(frame("SEND", "destination:/topic/a\\cb", "k:x\\ny", body=b"m"), now=0)
        self.assertEqual(
            sent(session),
            ["MESSAGE\ndestination:/topic/a\\cb\nmessage-id:1\nsubscription:0\nk:x\\ny\ncontent-length:1\n\nm\x00"],
        )

    def test_noEscapesIn10Session(self):
        """
        A 1.0 session reads and writes headers unescaped: a backslash is
        itself.
        """
        session = connected(version="1.0")
        session.receive_data(frame("SUBSCRIBE", "destination:/topic/a\\b"), now=0)
        session.receive_data(frame("SEND", "destination:/topic/a\\b", body=b"m"), now=0)
        self.assertEqual(
            sent(session),
            ["MESSAGE\ndestination:/topic/a\\b\nmessage-id:1\nsubscription:/topic/a\\b\ncontent-length:1\n\nm\x00"],
        )

    def test_binaryBodyInBinaryMessage(self):
        """
        A frame whose octets are UTF-8 goes out as text; one that is not,
        as binary.
        """
        session = connected()
        session.receive_data(frame("SUBSCRIBE", "id:0", "destination:/topic/a"), now=0)
        session.receive_data(frame("SEND", "destination:/topic/a", "content-length:2", body=b"\xff\x00"), now=0)
        session.receive_data(frame("SEND", "destination:/topic/a", body="é".encode()), now=0)
        self.assertEqual(
            sent(session),
            [
                b"MESSAGE\ndestination:/topic/a\nmessage-id:1\nsubscription:0\ncontent-length:2\n\n\xff\x00\x00",
                "MESSAGE\ndestination:/topic/a\nmessage-id:2\nsubscription:0\ncontent-length:2\n\né\x00",
            ],
        )

    def test_splitAndPackedAcrossMessages(self):
        """
        A frame split across two WebSocket messages, and two frames in one,
        are handled alike.
        """
        session = connected()
        data = frame("BEGIN", "transaction:a", "receipt:1") + frame("BEGIN", "transaction:b", "receipt:2")
        session.receive_data(data[:10], now=0)
        self.assertEqual(sent(session), [])
        session.receive_data(data[10:], now=0)
        self.assertEqual(sent(session), ["RECEIPT\nreceipt-id:1\n\n\x00", "RECEIPT\nreceipt-id:2\n\n\x00"])


class SubprotocolTests(SynchronousTestCase):
    """
    Tests for L{choose_subprotocol} and L{StompConfig}.
    """

    def test_firstOffered(self):
        """
        By default the first STOMP subprotocol the client offered that we
        speak is chosen.
        """
        self.assertEqual(choose_subprotocol(["chat", "v10.stomp", "v11.stomp"], CONFIG), "v10.stomp")
        self.assertEqual(choose_subprotocol(["chat"], CONFIG), None)
        config = StompConfig(versions=(Version.V1_1, Version.V1_2))
        self.assertEqual(choose_subprotocol(["v10.stomp", "v12.stomp", "v11.stomp"], config), "v12.stomp")

    def test_highest(self):
        """
        With C{subprotocol_rule="highest"} the highest version offered is
        chosen.
        """
        config = StompConfig(subprotocol_rule="highest")
        self.assertEqual(choose_subprotocol(["v10.stomp", "v12.stomp", "v11.stomp"], config), "v12.stomp")

    def test_configValidation(self):
        """
        A L{StompConfig} with a bad value raises L{ValueError}.
        """
        self.assertRaises(ValueError, StompConfig, versions=())
        self.assertRaises(ValueError, StompConfig, heart_beat=(-1, 0))
        self.assertRaises(ValueError, StompConfig, max_frame_size=0)
        self.assertRaises(ValueError, StompConfig, subprotocol_rule="lowest")
        self.assertRaises(ValueError, StompConfig, app_prefix="app")
        self.assertRaises(ValueError, StompConfig, versions=("2.0",))


class TransactionBytesTests(SynchronousTestCase):
    """
    Tests for L{StompConfig.max_transaction_bytes}.
    """

    config = StompConfig(server="test", heart_beat=(0, 0), max_transaction_bytes=1000)

    def sendIn(self, session, transaction):
        session.receive_data(
            frame("SEND", "destination:/topic/t", f"transaction:{transaction}", body=b"x" * 400), now=0
        )

    def test_bytesBounded(self):
        """
        A frame that would take what the open transactions of a session
        buffer past C{max_transaction_bytes} is an error, counted over all
        of them.
        """
        session = connected(config=self.config)
        session.receive_data(frame("BEGIN", "transaction:a") + frame("BEGIN", "transaction:b"), now=0)
        self.sendIn(session, "a")
        self.sendIn(session, "b")
        self.assertEqual(sent(session), [])
        self.sendIn(session, "a")
        self.assertEqual(
            sent(session), ["ERROR\nmessage:open transactions hold too many bytes (at most 1000)\ncontent-length:0\n\n\x00"]
        )

    def test_endingFrees(self):
        """
        Committing or aborting a transaction frees the bytes it buffered.
        """
        session = connected(config=self.config)
        session.receive_data(frame("BEGIN", "transaction:a") + frame("BEGIN", "transaction:b"), now=0)
        self.sendIn(session, "a")
        self.sendIn(session, "a")
        session.receive_data(frame("ABORT", "transaction:a"), now=0)
        self.sendIn(session, "b")
        self.sendIn(session, "b")
        session.receive_data(frame("COMMIT", "transaction:b") + frame("BEGIN", "transaction:c"), now=0)
        self.sendIn(session, "c")
        self.sendIn(session, "c")
        self.assertEqual(sent(session), [])
