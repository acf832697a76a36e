"""
Tests for L{wsproto_tw.core.connection}: messages, the closing handshake,
keepalive and idle timers, EOF, and the lazy order of events.
"""

from __future__ import annotations

import ast
import gc
import inspect
import tracemalloc
from dataclasses import replace

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import (
    clientFrame,
    closePayload,
    openedClient,
    openedServer,
    parseFrames,
    requestBytes,
    sentCloseCode,
    serverFrame,
)
from wsproto_tw.core import connection
from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, IllegalTransition, Role, ServerConnection, State
from wsproto_tw.core.errors import InvalidState
from wsproto_tw.core.handshake import PeerSource
from wsproto_tw.core.events import (
    BinaryMessage,
    CloseReceived,
    ConnectionFailed,
    Ping,
    Pong,
    RequestReceived,
    TextMessage,
)
from wsproto_tw.core.keepalive import Keepalive

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]

# A client's frames carry this key (see tests.helpers.fixedMask).
CLIENT_MASK = b"\x01\x02\x03\x04"

NO_TIMERS = Config(ping_interval=None)


class MessageTests(SynchronousTestCase):
    """
    Sending and receiving messages.
    """

    def test_sendText(self):
        """
        C{send_text} writes one unmasked text frame with the UTF-8 bytes.
        """
        server = openedServer()
        server.send_text("\u00e9t\u00e9")
        self.assertEqual(server.data_to_send(), b"\x81\x05\xc3\xa9t\xc3\xa9")

    def test_sendBinary(self):
        """
        C{send_binary} takes bytes, bytearray or memoryview.
        """
        server = openedServer()
        server.send_binary(b"\x00\x01")
        server.send_binary(bytearray(b"\x02"))
        server.send_binary(memoryview(b"\x03"))
        self.assertEqual(server.data_to_send(), b"\x82\x02\x00\x01\x82\x01\x02\x82\x01\x03")
        self.assertEqual(server.data_to_send(), b"")

    def test_sendLengthBoundaries(self):
        """
        Payloads of 0, 125 (the last one-octet length), 126 and 65,535 (the
        two-octet lengths) and 65,536 (eight octets) get the length field
        RFC 6455 §5.2 gives them, as text and as binary.
        """
        server = openedServer()
        for n, head in [
            (0, b"\x00"),
            (125, b"\x7d"),
            (126, b"\x7e\x00\x7e"),
            (65535, b"\x7e\xff\xff"),
            (65536, b"\x7f" + (65536).to_bytes(8, "big")),
        ]:
            server.send_text("t" * n)
            self.assertEqual(server.data_to_send(), b"\x81" + head + b"t" * n)
            server.send_binary(b"b" * n)
            self.assertEqual(server.data_to_send(), b"\x82" + head + b"b" * n)

    def test_sendWrongTypes(self):
        """
        C{send_text} refuses bytes and C{send_binary} refuses str, with
        L{TypeError}.
        """
        server = openedServer()
        self.assertRaises(TypeError, server.send_text, b"x")
        self.assertRaises(TypeError, server.send_binary, "x")
        self.assertRaises(TypeError, server.send_binary, 3)
        self.assertEqual(server.data_to_send(), b"")

    def test_sendPingPong(self):
        """
        C{send_ping} and C{send_pong} write control frames; payloads over 125
        bytes raise L{ValueError}.
        """
        server = openedServer()
        server.send_ping(b"p")
        server.send_pong(b"q")
        self.assertEqual(server.data_to_send(), b"\x89\x01p\x8a\x01q")
        self.assertRaises(ValueError, server.send_ping, b"x" * 126)
        self.assertRaises(ValueError, server.send_pong, b"x" * 126)
        server.send_ping(b"x" * 125)
        self.assertEqual(server.data_to_send(), b"\x89\x7d" + b"x" * 125)

    def test_clientSends(self):
        """
        A client masks every frame it sends, data and control alike.
        """
        client = openedClient()
        client.send_binary(b"ab")
        client.send_ping(b"")
        self.assertEqual(
            parseFrames(client.data_to_send()),
            [(Opcode.BINARY, b"ab", True, 0), (Opcode.PING, b"", True, 0)],
        )
        client.send_binary(b"ab")
        self.assertEqual(client.data_to_send(), b"\x82\x82\x01\x02\x03\x04\x60\x60")

    def test_emptyMessages(self):
        """
        Empty text and binary messages are delivered.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT) + clientFrame(Opcode.BINARY)
                            + clientFrame(Opcode.TEXT, fin=False) + clientFrame(Opcode.CONTINUATION), now=1.0)
        self.assertEqual(list(server.events()), [TextMessage(""), BinaryMessage(b""), TextMessage("")])

    def test_nextEvent(self):
        """
        C{next_event} returns one event at a time, then L{None}.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"a") + clientFrame(Opcode.TEXT, b"b"), now=1.0)
        self.assertEqual(server.next_event(), TextMessage("a"))
        self.assertEqual(server.next_event(), TextMessage("b"))
        self.assertIsNone(server.next_event())

    def test_roles(self):
        """
        Each connection knows its role.
        """
        self.assertIs(openedServer().role, Role.SERVER)
        self.assertIs(openedClient().role, Role.CLIENT)


class IdleListsTests(SynchronousTestCase):
    """
    An idle connection holds no queue of its own: the event queue and the
    output queue are the shared empty tuple until used, and again once
    drained.
    """

    def assertIdle(self, conn):
        self.assertIs(conn._events, connection._NOTHING)
        self.assertIs(conn._out, connection._NOTHING)

    def test_openedThenDrained(self):
        """
        After the handshake, and after a message in each direction is taken
        and written, both queues are the shared empty one again.
        """
        server = openedServer()
        self.assertEqual(list(server.events()), [])
        server.data_to_send()
        self.assertIdle(server)
        server.receive_data(clientFrame(Opcode.TEXT, b"one") + clientFrame(Opcode.PING, b"p"), now=1.0)
        self.assertEqual(server.next_event(), TextMessage("one"))
        server.send_text("two")
        self.assertEqual(server.next_event(), Ping(b"p"))
        self.assertEqual(server.next_event(), None)
        self.assertEqual(server.data_to_send(), serverFrame(Opcode.TEXT, b"two") + serverFrame(Opcode.PONG, b"p"))
        self.assertIdle(server)
        self.assertEqual(server.data_to_send(), b"")


class LazyEventTests(SynchronousTestCase):
    """
    Frames are parsed as events are taken, so the application's answers go
    out in order with what the core sends.
    """

    def test_wholeMessageEvents(self):
        """
        A message received whole comes out as the same event the event
        class makes: of that very class, equal, with the same hash and
        repr, and frozen.
        """
        from dataclasses import FrozenInstanceError

        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, "h\u00e9".encode()) + clientFrame(Opcode.BINARY, b"\x00"), now=1.0)
        text, binary = server.next_event(), server.next_event()
        for event, expected in [(text, TextMessage("h\u00e9")), (binary, BinaryMessage(b"\x00"))]:
            self.assertIs(type(event), type(expected))
            self.assertEqual(event, expected)
            self.assertEqual(hash(event), hash(expected))
            self.assertEqual(repr(event), repr(expected))
        self.assertRaises(FrozenInstanceError, setattr, text, "text", "x")
        self.assertRaises(FrozenInstanceError, setattr, binary, "data", b"x")

    def test_hasUnread(self):
        """
        has_unread says whether received bytes or events wait to be read:
        after a read of two messages, until the second is taken; after a
        read that ends inside a frame's header, until more arrives.
        """
        server = openedServer()
        self.assertFalse(server.has_unread())
        server.receive_data(clientFrame(Opcode.TEXT, b"one") + clientFrame(Opcode.TEXT, b"two"), now=1.0)
        self.assertTrue(server.has_unread())
        self.assertEqual(server.next_event(), TextMessage("one"))
        self.assertTrue(server.has_unread())
        self.assertEqual(server.next_event(), TextMessage("two"))
        self.assertFalse(server.has_unread())
        server.receive_data(clientFrame(Opcode.TEXT, b"three")[:3], now=1.0)
        self.assertIsNone(server.next_event())
        self.assertTrue(server.has_unread())

    def test_dataToSendIfRead(self):
        """
        data_to_send_if_read takes what is queued, as data_to_send_pieces
        does (counted as sent), only while nothing waits to be read: None,
        with nothing taken, while an event or received bytes wait; an empty
        list when nothing is queued.
        """
        server = openedServer()
        self.assertEqual(server.data_to_send_if_read(), [])
        sent = server.stats.bytes_sent
        server.receive_data(clientFrame(Opcode.TEXT, b"one") + clientFrame(Opcode.TEXT, b"two")[:3], now=1.0)
        self.assertEqual(server.next_event(), TextMessage("one"))
        server.send_text("echo: one")
        self.assertIsNone(server.data_to_send_if_read())
        self.assertIsNone(server.next_event())
        self.assertIsNone(server.data_to_send_if_read())
        server.receive_data(clientFrame(Opcode.TEXT, b"two")[3:], now=1.0)
        self.assertEqual(server.next_event(), TextMessage("two"))
        server.send_text("echo: two")
        self.assertEqual(server.data_to_send_if_read(), [b"\x81\x09echo: one", b"\x81\x09echo: two"])
        self.assertEqual(server.stats.bytes_sent, sent + 22)
        self.assertEqual(server.data_to_send_if_read(), [])
        server.receive_data(clientFrame(Opcode.PING, b"p"), now=1.0)
        self.assertIsNone(server.data_to_send_if_read())

    def test_sendBeforeLaterViolation(self):
        """
        What the application sends between two events goes out before the
        Close frame of a violation found later in the same read.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"one") + clientFrame(0x3, b"bad"), now=1.0)
        self.assertEqual(server.next_event(), TextMessage("one"))
        server.send_text("echo: one")
        self.assertEqual(server.next_event(), ConnectionFailed(1002, "reserved opcode 0x3"))
        self.assertEqual(
            server.data_to_send(),
            serverFrame(Opcode.TEXT, b"echo: one") + serverFrame(Opcode.CLOSE, closePayload(1002, b"reserved opcode 0x3")),
        )

    def test_sendBeforeLaterPong(self):
        """
        The pong for a ping that follows a message is queued after what the
        application sent in answer to the message.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"one") + clientFrame(Opcode.PING, b"p"), now=1.0)
        self.assertEqual(server.next_event(), TextMessage("one"))
        server.send_text("two")
        self.assertEqual(server.next_event(), Ping(b"p"))
        self.assertEqual(server.data_to_send(), b"\x81\x03two\x8a\x01p")

    def test_nothingParsedBeforeIteration(self):
        """
        C{receive_data} alone does not parse: no reply is queued until the
        events are taken.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.PING, b"p"), now=1.0)
        self.assertEqual(server.data_to_send(), b"")
        self.assertEqual(list(server.events()), [Ping(b"p")])
        self.assertEqual(server.data_to_send(), b"\x8a\x01p")

    def test_closeAfterMessage(self):
        """
        The application may still answer a message that precedes the peer's
        Close in the same read; the answer goes out before the echo.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"q") + clientFrame(Opcode.CLOSE, closePayload(1000)), now=1.0)
        self.assertEqual(server.next_event(), TextMessage("q"))
        server.send_text("a")
        self.assertEqual(server.next_event(), CloseReceived(1000, ""))
        self.assertEqual(server.data_to_send(), b"\x81\x01a\x88\x02\x03\xe8")


class PeerCloseTests(SynchronousTestCase):
    """
    The peer starts the closing handshake.
    """

    def test_validCodes(self):
        """
        Every code valid on the wire is reported and echoed, and the server
        then wants the transport closed.
        """
        for code in VALID_CODES:
            server = openedServer()
            server.receive_data(clientFrame(Opcode.CLOSE, closePayload(code, b"why")), now=1.0)
            self.assertEqual(list(server.events()), [CloseReceived(code, "why")], code)
            self.assertEqual(server.data_to_send(), serverFrame(Opcode.CLOSE, closePayload(code)), code)
            self.assertTrue(server.wants_transport_closed, code)
            self.assertIs(server.state, State.CLOSED)
            self.assertEqual((server.close_code, server.close_reason), (code, "why"))
            self.assertTrue(server.was_clean, code)

    def test_invalidCodes(self):
        """
        A code that may not appear on the wire fails the connection with
        1002.
        """
        for code in INVALID_CODES:
            server = openedServer()
            server.receive_data(clientFrame(Opcode.CLOSE, closePayload(code)), now=1.0)
            reason = f"invalid close code {code}"
            self.assertEqual(list(server.events()), [ConnectionFailed(1002, reason)], code)
            self.assertEqual(server.data_to_send(), serverFrame(Opcode.CLOSE, closePayload(1002, reason.encode())))
            self.assertEqual(server.close_code, 1002)
            self.assertFalse(server.was_clean)
            self.assertTrue(server.wants_transport_closed)

    def test_oneBytePayload(self):
        """
        A Close frame with a 1-byte payload fails the connection with 1002.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE, b"\x03"), now=1.0)
        self.assertEqual(list(server.events()), [ConnectionFailed(1002, "close frame with a 1-byte payload")])
        self.assertEqual(sentCloseCode(server.data_to_send()), 1002)

    def test_emptyClose(self):
        """
        A Close frame without a code is reported as 1005 and answered with
        1000.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE), now=1.0)
        self.assertEqual(list(server.events()), [CloseReceived(1005, "")])
        self.assertEqual(server.data_to_send(), b"\x88\x02\x03\xe8")
        self.assertEqual(server.close_code, 1005)
        self.assertTrue(server.was_clean)

    def test_echoCodeOnly(self):
        """
        The echo carries the peer's code but not its reason.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(4321, b"custom")), now=1.0)
        list(server.events())
        self.assertEqual(server.data_to_send(), b"\x88\x02\x10\xe1")

    def test_serverClosesTransport(self):
        """
        After the closing handshake the server wants the transport closed at
        once (RFC 6455 §7.1.1) and has no deadline left.
        """
        server = openedServer(Config(ping_interval=5.0, idle_timeout=30.0))
        self.assertFalse(server.wants_transport_closed)
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(1000)), now=1.0)
        list(server.events())
        self.assertTrue(server.wants_transport_closed)
        self.assertIsNone(server.next_deadline())

    def test_clientWaitsForServerToClose(self):
        """
        After echoing the server's Close, a client waits C{close_timeout}
        for the server to close TCP, then wants the transport closed itself.
        """
        client = openedClient(Config(close_timeout=3.0, ping_interval=None))
        client.receive_data(serverFrame(Opcode.CLOSE, closePayload(1001, b"bye")), now=10.0)
        self.assertEqual(list(client.events()), [CloseReceived(1001, "bye")])
        self.assertEqual(client.data_to_send(), clientFrame(Opcode.CLOSE, closePayload(1001), mask=CLIENT_MASK))
        self.assertIs(client.state, State.CLOSED)
        self.assertFalse(client.wants_transport_closed)
        self.assertEqual(client.next_deadline(), 13.0)
        client.handle_timer(now=12.9)
        self.assertFalse(client.wants_transport_closed)
        client.handle_timer(now=13.0)
        self.assertTrue(client.wants_transport_closed)
        self.assertIsNone(client.next_deadline())
        self.assertTrue(client.was_clean)
        self.assertEqual(client.close_code, 1001)

    def test_clientEofAfterClose(self):
        """
        When the server closes TCP in time, the client's close stays clean
        and its deadline goes.
        """
        client = openedClient(Config(ping_interval=None))
        client.receive_data(serverFrame(Opcode.CLOSE, closePayload(1000)), now=1.0)
        list(client.events())
        client.receive_eof()
        self.assertIsNone(client.next_deadline())
        self.assertTrue(client.was_clean)
        self.assertEqual(client.close_code, 1000)

    def test_bytesAfterCloseIgnored(self):
        """
        Frames after the peer's Close are not parsed.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(1000)) + clientFrame(Opcode.TEXT, b"late"), now=1.0)
        self.assertEqual(list(server.events()), [CloseReceived(1000, "")])
        server.receive_data(clientFrame(Opcode.TEXT, b"later"), now=1.0)
        self.assertEqual(list(server.events()), [])

    def test_sendAfterPeerCloseDropped(self):
        """
        Messages sent after the peer's Close are dropped silently.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(1000)), now=1.0)
        list(server.events())
        server.data_to_send()
        server.send_text("late")
        server.send_binary(b"late")
        server.send_ping(b"late")
        server.send_pong(b"late")
        server.send_close(1000, now=2.0)
        self.assertEqual(server.data_to_send(), b"")


class OwnCloseTests(SynchronousTestCase):
    """
    We start the closing handshake with C{send_close}.
    """

    def test_sendClose(self):
        """
        C{send_close} writes a Close frame with the code and reason, moves to
        CLOSING and sets the close deadline.
        """
        server = openedServer(Config(close_timeout=4.0, ping_interval=10.0))
        server.send_close(1001, "restarting", now=2.0)
        self.assertEqual(server.data_to_send(), serverFrame(Opcode.CLOSE, closePayload(1001, b"restarting")))
        self.assertIs(server.state, State.CLOSING)
        self.assertEqual(server.next_deadline(), 6.0)
        self.assertFalse(server.wants_transport_closed)

    def test_sendCloseDefaults(self):
        """
        C{send_close} defaults to 1000 without a reason; C{None} sends a
        Close frame without a code.
        """
        server = openedServer()
        server.send_close(now=0.0)
        self.assertEqual(server.data_to_send(), b"\x88\x02\x03\xe8")
        server = openedServer()
        server.send_close(None, now=0.0)
        self.assertEqual(server.data_to_send(), b"\x88\x00")

    def test_peerReplies(self):
        """
        Our Close answered by the peer's makes a clean close with the peer's
        code; a server then wants the transport closed.
        """
        server = openedServer()
        server.send_close(1000, "done", now=0.0)
        server.data_to_send()
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(1000, b"ok")), now=1.0)
        self.assertEqual(list(server.events()), [CloseReceived(1000, "ok")])
        self.assertEqual(server.data_to_send(), b"")
        self.assertTrue(server.was_clean)
        self.assertEqual((server.close_code, server.close_reason), (1000, "ok"))
        self.assertTrue(server.wants_transport_closed)
        self.assertIs(server.state, State.CLOSED)
        self.assertIsNone(server.next_deadline())

    def test_clientPeerReplies(self):
        """
        A client whose Close is answered waits C{close_timeout} for the
        server to close TCP.
        """
        client = openedClient(Config(close_timeout=2.0, ping_interval=None))
        client.send_close(1000, now=0.0)
        self.assertEqual(client.next_deadline(), 2.0)
        client.receive_data(serverFrame(Opcode.CLOSE, closePayload(1000)), now=1.0)
        list(client.events())
        self.assertEqual(client.data_to_send(), clientFrame(Opcode.CLOSE, closePayload(1000), mask=CLIENT_MASK))
        self.assertTrue(client.was_clean)
        self.assertFalse(client.wants_transport_closed)
        self.assertEqual(client.next_deadline(), 3.0)
        client.handle_timer(now=3.0)
        self.assertTrue(client.wants_transport_closed)

    def test_messagesWhileClosing(self):
        """
        Messages the peer sent before answering our Close are still
        delivered, but pings are no longer answered.
        """
        server = openedServer()
        server.send_close(1000, now=0.0)
        server.data_to_send()
        server.receive_data(
            clientFrame(Opcode.TEXT, b"in flight") + clientFrame(Opcode.PING, b"p") + clientFrame(Opcode.CLOSE, closePayload(1000)),
            now=1.0,
        )
        self.assertEqual(list(server.events()), [TextMessage("in flight"), Ping(b"p"), CloseReceived(1000, "")])
        self.assertEqual(server.data_to_send(), b"")

    def test_closeTimeout(self):
        """
        Without the peer's Close within C{close_timeout}, the connection
        wants the transport closed and the close is not clean.
        """
        server = openedServer(Config(close_timeout=5.0))
        server.send_close(1000, now=10.0)
        self.assertEqual(server.next_deadline(), 15.0)
        server.handle_timer(now=14.9)
        self.assertFalse(server.wants_transport_closed)
        server.handle_timer(now=15.0)
        self.assertTrue(server.wants_transport_closed)
        self.assertIs(server.state, State.CLOSED)
        self.assertFalse(server.was_clean)
        self.assertEqual(server.close_code, 1000)
        self.assertIsNone(server.next_deadline())
        self.assertEqual(server.data_to_send(), b"\x88\x02\x03\xe8")

    def test_violationWhileClosing(self):
        """
        A violation after our Close fails the connection without a second
        Close frame.
        """
        server = openedServer()
        server.send_close(1000, now=0.0)
        server.data_to_send()
        server.receive_data(clientFrame(0x3), now=1.0)
        self.assertEqual(list(server.events()), [ConnectionFailed(1002, "reserved opcode 0x3")])
        self.assertEqual(server.data_to_send(), b"")
        self.assertFalse(server.was_clean)
        self.assertEqual(server.close_code, 1002)
        self.assertTrue(server.wants_transport_closed)

    def test_sendCloseTwice(self):
        """
        A second C{send_close} does nothing.
        """
        server = openedServer()
        server.send_close(1000, now=0.0)
        server.send_close(1001, now=0.0)
        self.assertEqual(server.data_to_send(), b"\x88\x02\x03\xe8")

    def test_sendAfterCloseDropped(self):
        """
        Messages sent after our Close are dropped silently.
        """
        server = openedServer()
        server.send_close(1000, now=0.0)
        server.data_to_send()
        server.send_text("late")
        server.send_binary(b"late")
        server.send_ping()
        self.assertEqual(server.data_to_send(), b"")

    def test_reservedCodes(self):
        """
        1005, 1006 and 1015 (and any code invalid on the wire) can't be sent:
        L{ValueError}, and nothing is written.
        """
        for code in (1005, 1006, 1015, 999, 1004, 2999, 5000):
            server = openedServer()
            self.assertRaises(ValueError, server.send_close, code, now=0.0)
            self.assertIs(server.state, State.OPEN)
            self.assertEqual(server.data_to_send(), b"")

    def test_reasonLength(self):
        """
        A reason of 123 bytes fits in a Close frame; 124 bytes (counted as
        UTF-8) raise L{ValueError}.
        """
        server = openedServer()
        self.assertRaises(ValueError, server.send_close, 1000, "x" * 124, now=0.0)
        self.assertRaises(ValueError, server.send_close, 1000, "\u00e9" * 62, now=0.0)
        server.send_close(1000, "\u00e9" * 61 + "x", now=0.0)
        self.assertEqual(server.data_to_send(), b"\x88\x7d\x03\xe8" + ("\u00e9" * 61 + "x").encode())

    def test_reasonWithoutCode(self):
        """
        A reason without a code raises L{ValueError}.
        """
        self.assertRaises(ValueError, openedServer().send_close, None, "why", now=0.0)

    def test_closeBeforeOpen(self):
        """
        C{send_close} before the connection opens raises L{InvalidState}.
        """
        server = ServerConnection(Config(), now=0.0)
        server.receive_data(requestBytes(), now=0.0)
        self.assertEqual([type(e) for e in server.events()], [RequestReceived])
        exc = self.assertRaises(InvalidState, server.send_close, 1000, now=0.0)
        self.assertEqual(str(exc), "can't close before the opening handshake completes; reject it instead")


class EofTests(SynchronousTestCase):
    """
    The transport closing under the connection.
    """

    def test_eofWhileOpen(self):
        """
        EOF without a closing handshake is an abnormal closure: 1006, not
        clean, and no deadline left.
        """
        server = openedServer(Config(idle_timeout=5.0))
        server.receive_eof()
        self.assertIs(server.state, State.CLOSED)
        self.assertEqual((server.close_code, server.close_reason), (1006, ""))
        self.assertFalse(server.was_clean)
        self.assertIsNone(server.next_deadline())
        self.assertEqual(list(server.events()), [])

    def test_eofAfterOurClose(self):
        """
        EOF after our Close but before the peer's is not clean.
        """
        server = openedServer()
        server.send_close(1001, now=0.0)
        server.receive_eof()
        self.assertFalse(server.was_clean)
        self.assertIsNone(server.next_deadline())

    def test_bufferedBytesParsedAtEof(self):
        """
        Frames received just before EOF, but not yet parsed, are still
        reported.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.TEXT, b"last words") + clientFrame(Opcode.CLOSE, closePayload(1000)), now=1.0)
        server.receive_eof()
        self.assertEqual(list(server.events()), [TextMessage("last words"), CloseReceived(1000, "")])
        self.assertTrue(server.was_clean)
        self.assertIs(server.state, State.CLOSED)

    def test_receiveAfterEofIgnored(self):
        """
        Bytes after EOF are ignored.
        """
        server = openedServer()
        server.receive_eof()
        server.receive_data(clientFrame(Opcode.TEXT, b"x"), now=1.0)
        self.assertEqual(list(server.events()), [])


class KeepaliveTests(SynchronousTestCase):
    """
    Keepalive pings, their timeout and the idle timeout.
    """

    def test_pingAfterInterval(self):
        """
        The first keepalive ping goes out C{ping_interval} after opening,
        with a 2-byte counter payload.
        """
        server = openedServer(Config(ping_interval=20.0, ping_timeout=10.0), now=100.0)
        self.assertEqual(server.next_deadline(), 120.0)
        server.handle_timer(now=119.0)
        self.assertEqual(server.data_to_send(), b"")
        server.handle_timer(now=120.0)
        self.assertEqual(server.data_to_send(), b"\x89\x02\x00\x01")
        self.assertEqual(server.next_deadline(), 130.0)

    def test_pongUpdatesRtt(self):
        """
        The matching pong sets C{rtt}, is reported with it, clears the
        timeout and arms the next ping.
        """
        server = openedServer(Config(ping_interval=20.0, ping_timeout=10.0))
        server.handle_timer(now=20.0)
        server.data_to_send()
        server.receive_data(clientFrame(Opcode.PONG, b"\x00\x01"), now=20.25)
        self.assertEqual(list(server.events()), [Pong(b"\x00\x01", 0.25)])
        self.assertEqual(server.rtt, 0.25)
        self.assertEqual(server.next_deadline(), 40.25)
        server.handle_timer(now=40.25)
        self.assertEqual(server.data_to_send(), b"\x89\x02\x00\x02")

    def test_otherPongIgnored(self):
        """
        A pong with another payload does not count as the answer.
        """
        server = openedServer(Config(ping_interval=20.0, ping_timeout=10.0))
        server.handle_timer(now=20.0)
        server.receive_data(clientFrame(Opcode.PONG, b"\x00\x02"), now=21.0)
        self.assertEqual(list(server.events()), [Pong(b"\x00\x02", None)])
        self.assertIsNone(server.rtt)
        self.assertEqual(server.next_deadline(), 30.0)

    def test_pingTimeout(self):
        """
        Without a pong within C{ping_timeout}, the connection fails with
        1011 and wants the transport closed at once.
        """
        server = openedServer(Config(ping_interval=20.0, ping_timeout=10.0))
        server.handle_timer(now=20.0)
        server.data_to_send()
        server.handle_timer(now=29.9)
        self.assertEqual(server.data_to_send(), b"")
        server.handle_timer(now=30.0)
        self.assertEqual(list(server.events()), [ConnectionFailed(1011, "keepalive ping timeout")])
        self.assertEqual(server.data_to_send(), serverFrame(Opcode.CLOSE, closePayload(1011, b"keepalive ping timeout")))
        self.assertTrue(server.wants_transport_closed)
        self.assertEqual(server.close_code, CloseCode.INTERNAL_ERROR)
        self.assertIsNone(server.next_deadline())

    def test_clientPingTimeout(self):
        """
        A client whose keepalive ping goes unanswered also drops the
        transport at once, without waiting for the server.
        """
        client = openedClient(Config(ping_interval=5.0, ping_timeout=5.0))
        client.handle_timer(now=5.0)
        self.assertEqual(parseFrames(client.data_to_send()), [(Opcode.PING, b"\x00\x01", True, 0)])
        client.handle_timer(now=10.0)
        self.assertEqual(sentCloseCode(client.data_to_send()), 1011)
        self.assertTrue(client.wants_transport_closed)
        self.assertIsNone(client.next_deadline())

    def test_noPingTimeout(self):
        """
        With C{ping_timeout=None}, an unanswered ping never fails the
        connection, and keepalive goes on: the next ping follows
        C{ping_interval} after each one, answered or not.
        """
        server = openedServer(Config(ping_interval=20.0, ping_timeout=None))
        server.handle_timer(now=20.0)
        self.assertEqual(server.data_to_send(), b"\x89\x02\x00\x01")
        self.assertEqual(server.next_deadline(), 40.0)
        server.handle_timer(now=40.0)
        self.assertEqual(server.data_to_send(), b"\x89\x02\x00\x02")
        self.assertEqual(server.next_deadline(), 60.0)
        server.receive_data(clientFrame(Opcode.PONG, b"\x00\x02"), now=41.0)
        self.assertEqual(list(server.events()), [Pong(b"\x00\x02", 1.0)])
        self.assertEqual(server.next_deadline(), 61.0)
        self.assertIs(server.state, State.OPEN)

    def test_keepaliveDisabled(self):
        """
        With C{ping_interval=None}, an open connection has no deadline.
        """
        self.assertIsNone(openedServer(NO_TIMERS).next_deadline())
        self.assertIsNone(openedClient(NO_TIMERS).next_deadline())

    def test_idleTimeout(self):
        """
        After C{idle_timeout} seconds without a received byte, the
        connection closes with 1001; each received byte pushes it back.
        """
        server = openedServer(Config(idle_timeout=5.0, ping_interval=None, close_timeout=2.0))
        self.assertEqual(server.next_deadline(), 5.0)
        server.receive_data(b"\x81", now=3.0)
        self.assertEqual(server.next_deadline(), 8.0)
        server.handle_timer(now=5.0)
        self.assertEqual(server.data_to_send(), b"")
        server.handle_timer(now=8.0)
        self.assertEqual(server.data_to_send(), serverFrame(Opcode.CLOSE, closePayload(1001, b"idle timeout")))
        self.assertIs(server.state, State.CLOSING)
        self.assertEqual(server.next_deadline(), 10.0)

    def test_nextDeadlineEarliest(self):
        """
        C{next_deadline} is the earliest pending deadline.
        """
        server = openedServer(Config(idle_timeout=7.0, ping_interval=5.0, ping_timeout=4.0))
        self.assertEqual(server.next_deadline(), 5.0)
        server.handle_timer(now=5.0)
        self.assertEqual(server.next_deadline(), 7.0)
        server.receive_data(clientFrame(Opcode.PONG, b"\x00\x01"), now=6.0)
        list(server.events())
        self.assertEqual(server.next_deadline(), 11.0)

    def test_closingStopsKeepalive(self):
        """
        Once we send Close, keepalive and idle deadlines are gone; only the
        close deadline is left.
        """
        server = openedServer(Config(idle_timeout=3.0, ping_interval=2.0, close_timeout=9.0))
        server.send_close(1000, now=1.0)
        self.assertEqual(server.next_deadline(), 10.0)

    def test_pausedKeepaliveSendsNoPing(self):
        """
        While keepalive is paused no ping falls due; once resumed, a ping
        that fell due meanwhile goes out at once.
        """
        server = openedServer(Config(ping_interval=20.0, ping_timeout=10.0))
        server.pause_keepalive()
        self.assertIsNone(server.next_deadline())
        server.handle_timer(now=50.0)
        self.assertEqual(server.data_to_send(), b"")
        server.resume_keepalive(now=100.0)
        self.assertEqual(server.next_deadline(), 20.0)
        server.handle_timer(now=100.0)
        self.assertEqual(server.data_to_send(), b"\x89\x02\x00\x01")
        self.assertEqual(server.next_deadline(), 110.0)

    def test_pausedKeepaliveKeepsPongDeadline(self):
        """
        A pong that arrives while keepalive is paused and is read after it
        resumes answers the ping: the pong deadline that passed meanwhile
        does not fail the connection, and keepalive goes on.
        """
        server = openedServer(Config(ping_interval=20.0, ping_timeout=10.0))
        server.handle_timer(now=20.0)
        self.assertEqual(server.data_to_send(), b"\x89\x02\x00\x01")
        server.pause_keepalive()
        server.receive_data(clientFrame(Opcode.PONG, b"\x00\x01"), now=21.0)
        server.handle_timer(now=30.0)
        server.handle_timer(now=120.0)
        self.assertEqual(server.data_to_send(), b"")
        server.resume_keepalive(now=121.0)
        # The ping gets a full ping_timeout from the resumption.
        self.assertEqual(server.next_deadline(), 131.0)
        # Read at 121: the round trip includes the pause.
        self.assertEqual(list(server.events()), [Pong(b"\x00\x01", 101.0)])
        self.assertEqual(server.next_deadline(), 141.0)
        self.assertEqual(server.data_to_send(), b"")
        self.assertIs(server.state, State.OPEN)

    def test_resumedKeepaliveEnforcesPongDeadline(self):
        """
        After keepalive resumes, a ping still unanswered C{ping_timeout}
        later fails the connection with 1011.
        """
        server = openedServer(Config(ping_interval=20.0, ping_timeout=10.0))
        server.handle_timer(now=20.0)
        server.data_to_send()
        server.pause_keepalive()
        server.resume_keepalive(now=100.0)
        server.handle_timer(now=109.0)
        self.assertEqual(server.data_to_send(), b"")
        server.handle_timer(now=110.0)
        self.assertEqual(sentCloseCode(server.data_to_send()), 1011)
        self.assertTrue(server.wants_transport_closed)

    def test_pausedKeepaliveSuspendsIdleTimeout(self):
        """
        While keepalive is paused the idle timeout is not enforced; it
        starts over when keepalive resumes.
        """
        server = openedServer(Config(idle_timeout=5.0, ping_interval=None))
        server.pause_keepalive()
        self.assertIsNone(server.next_deadline())
        server.handle_timer(now=60.0)
        self.assertEqual(server.data_to_send(), b"")
        server.resume_keepalive(now=60.0)
        self.assertEqual(server.next_deadline(), 65.0)

    def test_pausedKeepaliveKeepsOtherDeadlines(self):
        """
        Pausing keepalive leaves the opening and closing deadlines alone.
        """
        server = ServerConnection(Config(open_timeout=10.0), now=0.0)
        server.pause_keepalive()
        self.assertEqual(server.next_deadline(), 10.0)
        server.handle_timer(now=10.0)
        self.assertTrue(server.data_to_send().startswith(b"HTTP/1.1 408 "))
        server = openedServer(Config(close_timeout=3.0))
        server.pause_keepalive()
        server.send_close(1000, now=1.0)
        self.assertEqual(server.next_deadline(), 4.0)
        server.handle_timer(now=4.0)
        self.assertTrue(server.wants_transport_closed)

    def test_timerAfterClosedDoesNothing(self):
        """
        C{handle_timer} on a closed connection writes nothing.
        """
        server = openedServer()
        server.receive_eof()
        server.handle_timer(now=1000.0)
        self.assertEqual(server.data_to_send(), b"")
        self.assertEqual(list(server.events()), [])


class _BrokenFrames(ServerConnection):
    """
    A server connection with a bug in its frame handling.
    """

    __slots__ = ()

    def _receive_piece(self, *args):
        raise ZeroDivisionError("bug in the frame path")


class _BrokenHead(ServerConnection):
    """
    A server connection with a bug in its request parsing.
    """

    __slots__ = ()

    def _take_head(self):
        raise ZeroDivisionError("bug in the head path")


class OwnBugTests(SynchronousTestCase):
    """
    An unexpected exception inside the core fails the connection with 1011
    and reaches the caller on the event: the core logs nothing itself.
    """

    def test_bugWhileOpen(self):
        """
        A bug while parsing frames queues a Close frame with 1011 and
        reports L{ConnectionFailed} carrying the exception and its
        traceback, without logging.
        """
        server = _BrokenFrames(Config(), now=0.0)
        server.receive_data(requestBytes(), now=0.0)
        list(server.events())
        server.accept(now=0.0)
        server.data_to_send()
        # A ping: a frame that takes the general path (a whole data
        # message is made in next_event itself).
        server.receive_data(clientFrame(Opcode.PING, b"x"), now=1.0)
        with self.assertNoLogs(level="DEBUG"):
            events = list(server.events())
        self.assertEqual(events, [ConnectionFailed(1011, "internal error")])
        self.assertIsInstance(events[0].error, ZeroDivisionError)
        self.assertIsNotNone(events[0].error.__traceback__)
        self.assertEqual(server.data_to_send(), serverFrame(Opcode.CLOSE, closePayload(1011, b"internal error")))
        self.assertTrue(server.wants_transport_closed)

    def test_bugWhileConnecting(self):
        """
        A bug while parsing the request head reports L{ConnectionFailed}
        with the exception and wants the transport closed.
        """
        server = _BrokenHead(Config(), now=0.0)
        server.receive_data(requestBytes(), now=0.0)
        with self.assertNoLogs(level="DEBUG"):
            events = list(server.events())
        self.assertEqual(events, [ConnectionFailed(1011, "internal error")])
        self.assertIsInstance(events[0].error, ZeroDivisionError)
        self.assertTrue(server.wants_transport_closed)
        self.assertIs(server.state, State.CLOSED)
        self.assertIsNone(server.next_deadline())

    def test_peerViolationHasNoError(self):
        """
        A failure caused by the peer carries no exception.
        """
        server = openedServer(NO_TIMERS)
        server.receive_data(b"\x81\x01x", now=0.0)
        events = list(server.events())
        self.assertEqual(events, [ConnectionFailed(1002, "unmasked frame from client")])
        self.assertIsNone(events[0].error)


class LargeMessageTests(SynchronousTestCase):
    """
    Messages that arrive in pieces are joined once, and what the peer
    announces is not trusted for memory.
    """

    def test_frameInPieces(self):
        """
        A binary frame fed a few bytes at a time comes out as one message
        of exactly the bytes sent.
        """
        payload = bytes(range(256)) * 300
        frame = clientFrame(Opcode.BINARY, payload, mask=CLIENT_MASK)
        server = openedServer(NO_TIMERS)
        events = []
        for start in range(0, len(frame), 1000):
            server.receive_data(frame[start : start + 1000], now=1.0)
            events.extend(server.events())
        self.assertEqual(events, [BinaryMessage(payload)])
        self.assertIs(type(events[0].data), bytes)

    def test_fragmentsInPieces(self):
        """
        A binary message of several frames, each fed in pieces, comes out
        whole.
        """
        parts = [b"a" * 5000, b"b" * 70_000, b"c" * 3]
        data = clientFrame(Opcode.BINARY, parts[0], fin=False, mask=CLIENT_MASK)
        data += clientFrame(Opcode.CONTINUATION, parts[1], fin=False, mask=CLIENT_MASK)
        data += clientFrame(Opcode.CONTINUATION, parts[2], mask=CLIENT_MASK)
        server = openedServer(NO_TIMERS)
        events = []
        for start in range(0, len(data), 4096):
            server.receive_data(data[start : start + 4096], now=1.0)
            events.extend(server.events())
        self.assertEqual(events, [BinaryMessage(b"".join(parts))])

    def test_announcedLengthNotTrusted(self):
        """
        Without a size limit, a frame whose header announces a terabyte
        (and whose payload never comes) is waited for, not allocated: the
        connection stays open.
        """
        server = openedServer(Config(max_message_size=0, ping_interval=None))
        header = b"\x82\xff" + (1 << 40).to_bytes(8, "big") + CLIENT_MASK
        server.receive_data(header + b"\x01\x02\x03", now=1.0)
        self.assertEqual(list(server.events()), [])
        self.assertIs(server.state, State.OPEN)
        self.assertEqual(server.data_to_send(), b"")

    def test_noInstanceDict(self):
        """
        Connections keep their state in slots: an idle connection holds no
        dictionary of attributes.
        """
        self.assertFalse(hasattr(openedServer(), "__dict__"))
        self.assertFalse(hasattr(openedClient(), "__dict__"))

    def test_requestCarriesPeer(self):
        """
        The request a server parses carries the C{peer} set on it before.
        """
        server = ServerConnection(Config(), now=0.0)
        peer = object()
        server.peer = peer
        server.receive_data(requestBytes(), now=0.0)
        [event] = list(server.events())
        self.assertIs(event.request.peer, peer)
        self.assertIs(server.request, event.request)

    def test_peerSourceAskedWhenRead(self):
        """
        A L{PeerSource} given as C{peer} is asked for the address only when
        the request's C{peer} (or the connection's) is first read, once
        each; the address then stays.
        """
        asked = []

        class Source(PeerSource):
            def peer_address(self):
                asked.append(1)
                return ("10.0.0.1", len(asked))

        server = ServerConnection(Config(), now=0.0)
        server.peer = Source()
        server.receive_data(requestBytes(), now=0.0)
        [event] = list(server.events())
        server.accept(now=0.0)
        self.assertEqual(asked, [])
        self.assertEqual(event.request.peer, ("10.0.0.1", 1))
        self.assertIs(event.request.peer, event.request.peer)
        self.assertEqual(server.peer, ("10.0.0.1", 2))
        self.assertIs(server.peer, server.peer)
        self.assertEqual(asked, [1, 1])
        self.assertEqual(replace(event.request, method="GET"), event.request)


def _fragmentFlood(opcode: int, pieces: list[bytes], count: int) -> bytes:
    """
    A message of C{count} frames as a client sends it, the I{i}th frame's
    payload being C{pieces[i % len(pieces)]}.
    """
    frames = [clientFrame(opcode, pieces[0], fin=False)]
    middle = [clientFrame(Opcode.CONTINUATION, pieces[i % len(pieces)], fin=False) for i in range(len(pieces))]
    for i in range(1, count - 1):
        frames.append(middle[i % len(pieces)])
    frames.append(clientFrame(Opcode.CONTINUATION, pieces[(count - 1) % len(pieces)]))
    return b"".join(frames)


def receivePeak(server: ServerConnection, data: bytes, chunk: int = 65536) -> tuple[list, int]:
    """
    Feed C{data} to C{server} C{chunk} bytes at a time, as a transport
    delivers it, taking the events after each chunk.

    @return: the events, and the peak of memory allocated meanwhile (the
        C{tracemalloc} peak over what was allocated before).
    """
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    events = []
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for piece in chunks:
            server.receive_data(piece, now=1.0)
            events.extend(server.events())
            del piece
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return events, peak


# A message of 100,000 one-byte fragments weighs 100 kB; what it may cost at
# most while it is received, the receive buffer's 64 KiB included. Keeping
# each fragment as an object would cost several MiB.
FRAGMENTS = 100_000
FRAGMENTS_PEAK = 512 * 1024


class FragmentMemoryTests(SynchronousTestCase):
    """
    A message's bookkeeping does not grow with its number of fragments
    beyond a few bytes each, and a flood of fragments fails early. (The
    suite runs these with the C accelerator and, under
    C{WSPROTO_TW_NO_SPEEDUPS=1}, without.)
    """

    def test_binaryOneByteFragments(self):
        """
        A binary message of 100,000 one-byte fragments is received whole,
        and its peak memory stays under 512 KiB.
        """
        server = openedServer(NO_TIMERS)
        events, peak = receivePeak(server, _fragmentFlood(Opcode.BINARY, [b"a", b"b", b"c"], FRAGMENTS))
        self.assertEqual(events, [BinaryMessage(b"abc" * (FRAGMENTS // 3) + b"a")])
        self.assertLess(peak, FRAGMENTS_PEAK)

    def test_textSplitCharacters(self):
        """
        A text message of 99,999 one-byte fragments, each a third of the
        UTF-8 encoding of C{"€"} (the costliest text fragments: each
        decoded piece would be an object of its own), is received whole,
        and its peak memory stays under 512 KiB.
        """
        euro = "\u20ac".encode("utf-8")
        server = openedServer(NO_TIMERS)
        data = _fragmentFlood(Opcode.TEXT, [euro[0:1], euro[1:2], euro[2:3]], FRAGMENTS - 1)
        events, peak = receivePeak(server, data)
        self.assertEqual(events, [TextMessage("\u20ac" * (FRAGMENTS // 3))])
        self.assertLess(peak, FRAGMENTS_PEAK)

    def test_fragmentFlood(self):
        """
        A message of more frames than C{max_fragments} fails with 1008 at
        the first frame too many, within the same memory bound, and nothing
        after it is parsed.
        """
        euro = "\u20ac".encode("utf-8")
        server = openedServer(Config(ping_interval=None, max_fragments=20_000))
        data = _fragmentFlood(Opcode.TEXT, [euro[0:1], euro[1:2], euro[2:3]], 30_000)
        events, peak = receivePeak(server, data + clientFrame(Opcode.TEXT, b"after"))
        self.assertEqual(events, [ConnectionFailed(1008, "message of more than 20000 frames")])
        self.assertEqual(sentCloseCode(server.data_to_send()), CloseCode.POLICY_VIOLATION)
        self.assertTrue(server.wants_transport_closed)
        self.assertLess(peak, FRAGMENTS_PEAK)

    def test_fragmentLimitConfigured(self):
        """
        C{max_fragments} counts the frames of one message, first frame
        included; C{0} means no limit.
        """
        server = openedServer(Config(ping_interval=None, max_fragments=3))
        server.receive_data(_fragmentFlood(Opcode.BINARY, [b"x"], 3), now=1.0)
        self.assertEqual(list(server.events()), [BinaryMessage(b"xxx")])
        server.receive_data(_fragmentFlood(Opcode.BINARY, [b"x"], 4), now=1.0)
        self.assertEqual(list(server.events()), [ConnectionFailed(1008, "message of more than 3 frames")])
        server = openedServer(Config(ping_interval=None, max_fragments=0))
        server.receive_data(_fragmentFlood(Opcode.BINARY, [b"x"], 1000), now=1.0)
        self.assertEqual(list(server.events()), [BinaryMessage(b"x" * 1000)])


class TransitionTests(SynchronousTestCase):
    """
    Every change of state is looked up in one table; anything it does not
    list is a bug of ours, reported as one.
    """

    def withoutTransition(self, state: State, input: str) -> None:
        """
        Take the transition from C{state} on the input named C{input} out
        of the table, for this test.
        """
        table = dict(connection._TRANSITIONS)
        del table[state, connection._Input[input]]
        self.patch(connection, "_TRANSITIONS", table)

    def test_illegalTransitionWhileParsing(self):
        """
        A transition missing from the table, reached while parsing, raises
        L{IllegalTransition}, which fails the connection with 1011 like any
        bug of ours and rides on the L{ConnectionFailed} event.
        """
        server = openedServer(NO_TIMERS)
        self.withoutTransition(State.OPEN, "CLOSE_RECEIVED")
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(1000)), now=1.0)
        events = list(server.events())
        self.assertEqual(events, [CloseReceived(1000, ""), ConnectionFailed(1011, "internal error")])
        self.assertIsInstance(events[1].error, IllegalTransition)
        self.assertEqual(str(events[1].error), "no transition from OPEN on close received")
        self.assertIs(server.state, State.CLOSED)
        self.assertTrue(server.wants_transport_closed)

    def test_illegalTransitionFromCommand(self):
        """
        A command whose transition is missing from the table raises
        L{IllegalTransition} to its caller, and the state does not change.
        """
        server = openedServer(NO_TIMERS)
        self.withoutTransition(State.OPEN, "CLOSE_SENT")
        exc = self.assertRaises(IllegalTransition, server.send_close, now=1.0)
        self.assertEqual(str(exc), "no transition from OPEN on close sent")
        self.assertIs(server.state, State.OPEN)

    def test_stateAssignedInOnePlace(self):
        """
        C{state} is assigned in C{Connection.__init__} (the initial state)
        and in C{Connection._transition} only.
        """
        tree = ast.parse(inspect.getsource(connection))
        assigned = []
        for cls in tree.body:
            if not isinstance(cls, ast.ClassDef):
                continue
            for function in cls.body:
                if not isinstance(function, ast.FunctionDef):
                    continue
                for node in ast.walk(function):
                    targets = []
                    if isinstance(node, ast.Assign):
                        targets = node.targets
                    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                        targets = [node.target]
                    for target in targets:
                        for name in ast.walk(target):
                            if isinstance(name, ast.Attribute) and name.attr == "state":
                                assigned.append(f"{cls.name}.{function.name}")
        self.assertEqual(assigned, ["Connection.__init__", "Connection._transition"])

    def test_closedEverywhere(self):
        """
        Every way into CLOSED ends parsing and deadlines: data received
        after it is ignored, and nothing is left to time out (a client
        after the closing handshake keeps only the wait for the server to
        close TCP).
        """
        ways = {
            "peer close": lambda c: c.receive_data(clientFrame(Opcode.CLOSE, closePayload(1000)), now=1.0),
            "violation": lambda c: c.receive_data(b"\x81\x01x", now=1.0),
            "fail": lambda c: c.fail(1008, "slow", now=1.0),
            "close timeout": lambda c: (c.send_close(now=1.0), c.handle_timer(now=100.0)),
            "eof": lambda c: c.receive_eof(),
        }
        for name, way in ways.items():
            server = openedServer(Config(ping_interval=5, idle_timeout=7))
            way(server)
            list(server.events())
            self.assertIs(server.state, State.CLOSED, name)
            self.assertIsNone(server.next_deadline(), name)
            server.receive_data(clientFrame(Opcode.TEXT, b"late"), now=2.0)
            self.assertEqual(list(server.events()), [], name)


class NowDocumentedTests(SynchronousTestCase):
    """
    Every core entry point that takes C{now} says what it is.
    """

    def test_nowDocumented(self):
        """
        Each public method (constructors included) of the connections and
        of L{Keepalive} with a C{now} parameter documents it as seconds on
        the caller's clock.
        """
        checked = []
        for cls in (ServerConnection, ClientConnection, Keepalive):
            for name in dir(cls):
                if name.startswith("_") and name != "__init__":
                    continue
                function = getattr(cls, name)
                if not callable(function) or isinstance(function, type):
                    continue
                try:
                    parameters = inspect.signature(function).parameters
                except (TypeError, ValueError):
                    continue
                if "now" not in parameters:
                    continue
                checked.append(f"{cls.__name__}.{name}")
                doc = " ".join((function.__doc__ or "").split())
                self.assertIn("@param now: the current time in seconds, on the caller's clock", doc, checked[-1])
        self.assertIn("ServerConnection.receive_data", checked)
        self.assertIn("ClientConnection.__init__", checked)
        self.assertIn("Keepalive.ping_due", checked)


def _maskedFrame(opcode: int, payload: bytes, fin: bool = True, key: bytes = CLIENT_MASK) -> bytes:
    """
    A client's frame of a large payload, masked in C (or Python) rather
    than byte by byte.
    """
    from wsproto_tw.core.frames import _frame_head, apply_mask

    return _frame_head(opcode, len(payload), fin, False, True) + key + apply_mask(payload, key)


def _summary(events: list) -> list:
    """
    C{events} with each message's data replaced by its length and digest,
    so that a failed comparison of large messages prints briefly.
    """
    import hashlib

    out = []
    for event in events:
        data = getattr(event, "data", None)
        if type(event) is BinaryMessage:
            out.append(("BinaryMessage", len(data), hashlib.sha256(data).hexdigest()))
        else:
            out.append(event)
    return out


def _receiveInto(server: ServerConnection, data: bytes, sizes: list[int], now: float = 1.0) -> list:
    """
    Write C{data} into the views C{server.receive_buffer} offers, C{sizes}
    bytes at a time (cycling), as a transport that receives into a buffer
    does, taking the events after each write.

    @return: the events.
    """
    events = []
    start = 0
    i = 0
    while start < len(data):
        view = server.receive_buffer(1, sizes[i % len(sizes)])
        if view is None:
            raise AssertionError(f"no buffer offered at {start} of {len(data)}")
        n = min(len(view), len(data) - start)
        view[:n] = data[start : start + n]
        view.release()
        server.receive_into_buffer(n, now=now)
        events.extend(server.events())
        start += n
        i += 1
    return events


class ReceiveIntoBufferTests(SynchronousTestCase):
    """
    L{Connection.receive_buffer} and L{Connection.receive_into_buffer}: the
    payload of a large binary frame received straight into its message.
    """

    def test_frameReceivedInPlace(self):
        """
        Once a binary frame's header and first bytes have come through
        L{receive_data}, the rest of its payload may be written into the
        views offered, in pieces of odd sizes (the masking key carries on
        across them): the message is exactly the payload sent, counted in
        the statistics, and the view is never longer than what is left.
        """
        payload = bytes(range(256)) * 4000 + b"tail"
        frame = _maskedFrame(Opcode.BINARY, payload)
        server = openedServer(NO_TIMERS)
        server.receive_data(frame[:1001], now=1.0)
        self.assertEqual(_summary(list(server.events())), _summary([]))
        rest = frame[1001:]
        view = server.receive_buffer(1, 1 << 30)
        self.assertEqual(len(view), len(rest))
        view.release()
        events = _receiveInto(server, rest, [3, 1001, 7, 65536, 2])
        self.assertEqual(_summary(events), _summary([BinaryMessage(payload)]))
        self.assertIs(type(events[0].data), bytes)
        self.assertIsNone(server.receive_buffer(1, 1 << 20))
        self.assertEqual((server.stats.binary_received, server.stats.binary_bytes_received), (1, len(payload)))

    def test_bytesCounted(self):
        """
        Bytes received into place count as bytes received.
        """
        payload = b"x" * 100_000
        frame = _maskedFrame(Opcode.BINARY, payload)
        server = openedServer(NO_TIMERS)
        before = server.stats.bytes_received
        server.receive_data(frame[:100], now=1.0)
        list(server.events())
        _receiveInto(server, frame[100:], [30_000])
        self.assertEqual(server.stats.bytes_received - before, len(frame))

    def test_minimumAndMaximum(self):
        """
        The view offered is at most C{maximum} bytes; none is offered when
        less than C{minimum} of the payload is left.
        """
        frame = _maskedFrame(Opcode.BINARY, b"y" * 5000)
        server = openedServer(NO_TIMERS)
        server.receive_data(frame[:1000], now=1.0)
        list(server.events())
        left = len(frame) - 1000
        view = server.receive_buffer(10, 100)
        self.assertEqual(len(view), 100)
        view.release()
        self.assertIsNone(server.receive_buffer(left + 1, 1 << 20))
        view = server.receive_buffer(left, 1 << 20)
        self.assertEqual(len(view), left)
        view.release()

    def test_nextFrameAfterwards(self):
        """
        Bytes that follow a frame received into place (the next message, a
        ping) are fed as usual, after the frame's end: the events keep the
        order of the wire.
        """
        payload = b"z" * 70_000
        frame = _maskedFrame(Opcode.BINARY, payload)
        server = openedServer(NO_TIMERS)
        server.receive_data(frame[:20], now=1.0)
        self.assertEqual(_summary(list(server.events())), _summary([]))
        view = server.receive_buffer(1, 1 << 20)
        n = len(view)
        view[:] = frame[20:]
        view.release()
        server.receive_into_buffer(n, now=1.0)
        server.receive_data(clientFrame(Opcode.PING, b"p") + clientFrame(Opcode.TEXT, b"hi"), now=1.0)
        self.assertEqual(
            _summary(list(server.events())), _summary([BinaryMessage(payload), Ping(b"p"), TextMessage("hi")])
        )

    def test_frameEndThenBytes(self):
        """
        When the frame's last payload bytes were received into place and
        more bytes come through L{receive_data} before its end is parsed,
        the end comes first and those bytes are parsed after it.
        """
        payload = b"q" * 70_000
        frame = _maskedFrame(Opcode.BINARY, payload)
        server = openedServer(NO_TIMERS)
        server.receive_data(frame[:20], now=1.0)
        list(server.events())
        view = server.receive_buffer(1, 1 << 20)
        view[:] = frame[20:]
        view.release()
        server.receive_into_buffer(len(frame) - 20, now=1.0)
        server.receive_data(clientFrame(Opcode.TEXT, b"next"), now=1.0)
        self.assertEqual(_summary(list(server.events())), _summary([BinaryMessage(payload), TextMessage("next")]))

    def test_fragmentedMessage(self):
        """
        The frames of a fragmented binary message, each with its own key,
        are each received into place after their header: the message is
        their payloads joined.
        """
        parts = [bytes([i]) * (100_000 + i) for i in range(3)]
        keys = [b"\x01\x02\x03\x04", b"\xaa\xbb\xcc\xdd", b"\x10\x20\x30\x40"]
        frames = [
            _maskedFrame(Opcode.BINARY if i == 0 else Opcode.CONTINUATION, part, fin=i == 2, key=keys[i])
            for i, part in enumerate(parts)
        ]
        server = openedServer(NO_TIMERS)
        events = []
        for frame in frames:
            server.receive_data(frame[:14], now=1.0)
            events.extend(server.events())
            events.extend(_receiveInto(server, frame[14:], [40_000, 999]))
        self.assertEqual(_summary(events), _summary([BinaryMessage(b"".join(parts))]))

    def test_limitLeavesLessRoom(self):
        """
        The view stops at the message's size limit; the bytes past it come
        through L{receive_data}, which fails the connection with 1009 at
        the limit, as when every byte comes that way.
        """
        limit = 150_000
        server = openedServer(Config(max_message_size=limit, ping_interval=None))
        first = _maskedFrame(Opcode.BINARY, b"a" * 100_000, fin=False)
        second = _maskedFrame(Opcode.CONTINUATION, b"b" * 100_000)
        server.receive_data(first + second[:14], now=1.0)
        self.assertEqual(_summary(list(server.events())), _summary([]))
        view = server.receive_buffer(1, 1 << 20)
        self.assertEqual(len(view), limit - 100_000)
        view[:] = second[14 : 14 + len(view)]
        view.release()
        server.receive_into_buffer(limit - 100_000, now=1.0)
        self.assertEqual(_summary(list(server.events())), _summary([]))
        self.assertIsNone(server.receive_buffer(1, 1 << 20))
        server.receive_data(second[14 + limit - 100_000 : 14 + limit - 100_000 + 1], now=1.0)
        [event] = list(server.events())
        self.assertEqual((type(event), event.code), (ConnectionFailed, CloseCode.MESSAGE_TOO_BIG))
        self.assertEqual(sentCloseCode(server.data_to_send()), CloseCode.MESSAGE_TOO_BIG)

    def test_notOffered(self):
        """
        No view is offered between frames, for text (validated as it
        arrives), while events wait to be taken, once closed, or in
        streaming mode.
        """
        server = openedServer(NO_TIMERS)
        self.assertIsNone(server.receive_buffer(1, 100))
        text = _maskedFrame(Opcode.TEXT, b"t" * 100_000)
        server.receive_data(text[:100], now=1.0)
        list(server.events())
        self.assertIsNone(server.receive_buffer(1, 100))

        server = openedServer(NO_TIMERS)
        binary = _maskedFrame(Opcode.BINARY, b"b" * 100_000)
        server.receive_data(clientFrame(Opcode.PING, b"") + binary[:100], now=1.0)
        self.assertIsNone(server.receive_buffer(1, 100))  # the ping is not taken yet
        self.assertEqual(_summary(list(server.events())), _summary([Ping(b"")]))
        self.assertIsNotNone(server.receive_buffer(1, 100))
        server.receive_eof()
        self.assertIsNone(server.receive_buffer(1, 100))

        server = openedServer(NO_TIMERS)
        server.stream_messages = True
        server.receive_data(binary[:100], now=1.0)
        list(server.events())
        self.assertIsNone(server.receive_buffer(1, 100))

    def test_bytesBufferedNotOffered(self):
        """
        While bytes received are waiting to be parsed (a frame's payload
        was fed along with what follows it), no view is offered: bytes
        must be parsed in the order they came.
        """
        server = openedServer(NO_TIMERS)
        first = _maskedFrame(Opcode.BINARY, b"a" * 100_000, fin=False)
        second = _maskedFrame(Opcode.CONTINUATION, b"b" * 100_000)
        server.receive_data(first[:100], now=1.0)
        list(server.events())
        # The rest of the first frame and the start of the second, not
        # parsed yet.
        server.receive_data(first[100:] + second[:100], now=1.0)
        self.assertIsNone(server.receive_buffer(1, 100))
        self.assertEqual(_summary(list(server.events())), _summary([]))
        view = server.receive_buffer(1, 1 << 20)
        self.assertEqual(len(view), len(second) - 100)
        view[:] = second[100:]
        view.release()
        server.receive_into_buffer(len(second) - 100, now=1.0)
        self.assertEqual(_summary(list(server.events())), _summary([BinaryMessage(b"a" * 100_000 + b"b" * 100_000)]))


class EnumLookupTests(SynchronousTestCase):
    """
    The hot paths compare with members held in module globals, not looked
    up on their enum class: on Python 3.11, each lookup on an enum class
    (C{State.OPEN}) goes through C{EnumType.__getattr__}'s slow path,
    several hundred instructions.
    """

    def _lookups(self, run):
        """
        @return: the attributes looked up on enum classes while C{run()}
            ran, as C{"Class.NAME"}.
        """
        import enum

        seen = []
        lookup = type.__getattribute__

        def counting(cls, name):
            seen.append(lookup(cls, "__name__") + "." + name)
            return lookup(cls, name)

        enum.EnumType.__getattribute__ = counting
        try:
            run()
        finally:
            del enum.EnumType.__getattribute__
        return seen

    def test_handshakes(self):
        """
        A server's opening and closing handshakes (a request accepted, a
        Close with 1000 answered, the transport closed) look up no
        attribute of an enum class.
        """
        request = requestBytes()
        close = clientFrame(Opcode.CLOSE, closePayload(CloseCode.NORMAL_CLOSURE))

        def run():
            server = ServerConnection(Config(), now=0.0)
            server.receive_data(request, now=0.0)
            list(server.events())
            server.accept(now=0.0)
            server.data_to_send()
            server.receive_data(close, now=0.0)
            self.assertEqual([type(event).__name__ for event in server.events()], ["CloseReceived"])
            self.assertTrue(server.wants_transport_closed)
            server.data_to_send()
            server.next_deadline()
            server.receive_eof()

        self.assertEqual(self._lookups(run), [])

    def test_messages(self):
        """
        Receiving a text or binary message and sending one back looks up no
        attribute of an enum class.
        """
        server = openedServer()
        text = clientFrame(Opcode.TEXT, b"hello")
        binary = clientFrame(Opcode.BINARY, b"\x00\x01")

        def run():
            server.receive_data(text, now=0.0)
            server.receive_data(binary, now=0.0)
            for event in server.events():
                if type(event).__name__ == "TextMessage":
                    server.send_text(event.text)
                else:
                    server.send_binary(event.data)
            server.data_to_send()

        self.assertEqual(self._lookups(run), [])


class HandshakeEventsTests(SynchronousTestCase):
    """
    The events of the opening and closing handshakes, made field by field
    (not through their dataclass constructors), are the constructors'.
    """

    def test_requestReceived(self):
        """
        A server's L{RequestReceived} equals, hashes and shows as the one
        its constructor makes of the same request and subprotocol.
        """
        server = ServerConnection(Config(subprotocols=("chat",)), now=0.0)
        server.receive_data(requestBytes(headers=[("Sec-WebSocket-Protocol", "chat")]), now=0.0)
        [event] = server.events()
        made = RequestReceived(server.request, "chat")
        self.assertIs(type(event), RequestReceived)
        self.assertEqual(event, made)
        self.assertEqual(hash(event), hash(made))
        self.assertEqual(repr(event), repr(made))
        self.assertIs(event.request, server.request)
        self.assertEqual(event.subprotocol, "chat")

    def test_closeReceived(self):
        """
        L{CloseReceived} equals, hashes and shows as the one its constructor
        makes of the same code and reason.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(CloseCode.GOING_AWAY, "bye".encode())), now=0.0)
        [event] = server.events()
        made = CloseReceived(1001, "bye")
        self.assertIs(type(event), CloseReceived)
        self.assertEqual(event, made)
        self.assertEqual(hash(event), hash(made))
        self.assertEqual(repr(event), repr(made))


class CloseStatusTests(SynchronousTestCase):
    """
    L{ServerConnection.close_status} is L{close_code}, L{close_reason} and
    L{was_clean} at once, however the connection ended.
    """

    def _status(self, server):
        status = server.close_status()
        self.assertEqual(status, (server.close_code, server.close_reason, server.was_clean))
        return status

    def test_open(self):
        """
        An open connection that sent and received no Close: 1006, no
        reason, not clean.
        """
        server = openedServer()
        self.assertEqual(self._status(server), (1006, "", False))
        self.assertIs(type(server.close_status()[0]), CloseCode)

    def test_closeReceived(self):
        """
        The peer's Close, answered: its code and reason, clean.
        """
        server = openedServer()
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(4000, b"done")), now=0.0)
        list(server.events())
        self.assertEqual(self._status(server), (4000, "done", True))

    def test_closeSentOnly(self):
        """
        Our Close, not answered: our code, no reason, not clean.
        """
        server = openedServer()
        server.send_close(CloseCode.GOING_AWAY, "bye", now=0.0)
        self.assertEqual(self._status(server), (1001, "", False))

    def test_closeSentAndAnswered(self):
        """
        Our Close, answered: the peer's code and reason, clean.
        """
        server = openedServer()
        server.send_close(CloseCode.GOING_AWAY, "bye", now=0.0)
        server.receive_data(clientFrame(Opcode.CLOSE, closePayload(1001, b"ok")), now=0.0)
        list(server.events())
        self.assertEqual(self._status(server), (1001, "ok", True))

    def test_failed(self):
        """
        A connection failed for the peer's fault: the code and reason it
        was failed with, not clean.
        """
        server = openedServer()
        server.receive_data(clientFrame(0x3), now=0.0)
        list(server.events())
        self.assertEqual(self._status(server), (1002, "reserved opcode 0x3", False))
