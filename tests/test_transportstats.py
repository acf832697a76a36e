"""
Tests for the per-connection statistics an application reads on its
L{IWebSocketTransport}: C{openedAt} and C{lastActivity} (seconds on the
reactor's clock) on a WebSocket connection and on a SockJS session, and
C{statistics} on a WebSocket connection.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import MASK, clientFrame, requestBytes
from tests.sockjs.helpers import SockJSSite
from wsproto_tw.core.codes import Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


class Echo(WebSocketApplication):
    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText(text)


class WebSocketTimesTests(SynchronousTestCase):
    """
    C{openedAt} and C{lastActivity} of a L{WebSocketConnection
    <wsproto_tw.connection.WebSocketConnection>}.
    """

    def test_openedAtAndLastActivity(self):
        """
        C{openedAt} is the clock's time when the handshake completed and
        stays; C{lastActivity} is the time of the last read from the peer,
        and does not move when only we send.
        """
        clock = Clock()
        clock.advance(100)
        factory = WebSocketServerFactory(Echo, Config(ping_interval=None), reactor=clock)
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        connection = protocol.connection
        self.assertEqual((connection.openedAt, connection.lastActivity), (None, None))
        clock.advance(1.5)
        protocol.dataReceived(requestBytes())
        self.assertEqual((connection.openedAt, connection.lastActivity), (101.5, 101.5))
        clock.advance(2)
        protocol.dataReceived(clientFrame(Opcode.TEXT, b"hi", mask=MASK))
        self.assertEqual((connection.openedAt, connection.lastActivity), (101.5, 103.5))
        clock.advance(4)
        connection.sendText("only ours")
        self.assertEqual((connection.openedAt, connection.lastActivity), (101.5, 103.5))
        self.assertEqual((connection.statistics.text_received, connection.statistics.text_sent), (1, 2))


class SockJSTimesTests(SynchronousTestCase):
    """
    C{openedAt} and C{lastActivity} of a L{SockJSSession
    <wsproto_tw.sockjs.transport.SockJSSession>}.
    """

    def test_openedAtAndLastActivity(self):
        """
        A session's C{openedAt} is when it opened; C{lastActivity} is when
        a sending request last brought messages.
        """
        site = SockJSSite()
        site.clock.advance(10)
        site.fetch("POST", "/000/s/xhr")
        session = site.resource.sessions[b"s"]
        self.assertEqual((session.openedAt, session.lastActivity), (10, None))
        site.clock.advance(3)
        site.fetch("POST", "/000/s/xhr_send", b'["a"]')
        self.assertEqual((session.openedAt, session.lastActivity), (10, 13))
