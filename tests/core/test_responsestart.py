"""
Tests for L{wsproto_tw.core.handshake.check_response_start} and for the
client connection that calls it: an answer that can never begin an HTTP
status line (TLS to a C{ws://} URL, an SSH banner, anything else) fails
the opening handshake at its first bytes, not at the opening deadline.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.helpers import fixedMask, responseBytes
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, State
from wsproto_tw.core.errors import HandshakeRejected, NotWebSocketServer
from wsproto_tw.core.events import HandshakeFailure, Opened
from wsproto_tw.core.handshake import check_response_start

# A TLS alert record (RFC 8446 §5.1, §6): fatal, protocol_version, as a TLS
# server answers a plain-text request.
TLS_ALERT = b"\x15\x03\x01\x00\x02\x02\x46"
# The start of a TLS ServerHello record.
TLS_HANDSHAKE = b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03"
SSH_BANNER = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"

TLS_REASON = "the server answered in tls, not http: this port speaks tls; connect with wss://"


def client() -> ClientConnection:
    """
    @return: a client connection whose request has been taken.
    """
    connection = ClientConnection(Config(), host="localhost:8080", now=0.0, mask_source=fixedMask())
    connection.data_to_send()
    return connection


class CheckResponseStartTests(SynchronousTestCase):
    """
    L{check_response_start} fails on bytes that can't begin a status line,
    saying what they look like, and lets anything that still can through.
    """

    def assertRefused(self, data: bytes, reason: str) -> None:
        error = self.assertRaises(NotWebSocketServer, check_response_start, data)
        self.assertEqual(error.reason, reason)
        self.assertEqual(error.status, 0)
        self.assertIsInstance(error, HandshakeRejected)

    def test_statusLineAndItsStart(self) -> None:
        """
        Nothing yet, every prefix of C{HTTP/} and a whole status line pass.
        """
        for data in (b"", b"H", b"HT", b"HTT", b"HTTP", b"HTTP/", b"HTTP/1.1 101 Switching Protocols\r\n"):
            check_response_start(data)
            check_response_start(bytearray(data))

    def test_tls(self) -> None:
        """
        A TLS alert or handshake record says the port speaks TLS and to use
        C{wss://}; a lone record type byte waits for the next byte.
        """
        check_response_start(b"\x15")
        check_response_start(b"\x16")
        self.assertRefused(TLS_ALERT, TLS_REASON)
        self.assertRefused(TLS_HANDSHAKE, TLS_REASON)
        self.assertRefused(TLS_ALERT[:2], TLS_REASON)

    def test_ssh(self) -> None:
        """
        An SSH identification string is named as such, quoted; its first
        bytes wait for more.
        """
        for data in (b"S", b"SS", b"SSH"):
            check_response_start(data)
        self.assertRefused(
            SSH_BANNER, 'not a websocket server but an ssh server ("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3")'
        )

    def test_other(self) -> None:
        """
        Anything else is quoted up to its first line end, control bytes as
        hex, and cut after 60 bytes.
        """
        self.assertRefused(
            b"220 mail.example.com ESMTP\r\n", 'not a websocket server: its answer is not http ("220 mail.example.com ESMTP")'
        )
        self.assertRefused(b"http/1.1 200 OK\r\n", 'not a websocket server: its answer is not http ("http/1.1 200 OK")')
        self.assertRefused(b"\x16\x01\xff", 'not a websocket server: its answer is not http ("\\x16\\x01\\xff")')
        self.assertRefused(
            b"x" * 61, 'not a websocket server: its answer is not http ("' + "x" * 60 + '...")'
        )


class ClientConnectionTests(SynchronousTestCase):
    """
    L{ClientConnection} fails its handshake at the first bytes that can't
    begin a status line, and only then.
    """

    def test_tlsAnswer(self) -> None:
        """
        A TLS alert, with no line end and no EOF after it, fails the
        handshake at once with L{NotWebSocketServer} and asks for the
        transport to be closed.
        """
        connection = client()
        connection.receive_data(TLS_ALERT, now=0.5)
        [event] = list(connection.events())
        self.assertIsInstance(event, HandshakeFailure)
        self.assertIsInstance(event.error, NotWebSocketServer)
        self.assertEqual(str(event.error), TLS_REASON)
        self.assertIs(connection.state, State.CLOSED)
        self.assertTrue(connection.wants_transport_closed)
        self.assertEqual(connection.data_to_send(), b"")

    def test_sshAnswerByteByByte(self) -> None:
        """
        An SSH banner arriving a byte at a time fails once its fourth byte
        is in.
        """
        connection = client()
        for byte in SSH_BANNER[:3]:
            connection.receive_data(bytes([byte]), now=0.0)
            self.assertEqual(list(connection.events()), [])
        connection.receive_data(SSH_BANNER[3:4], now=0.0)
        [event] = list(connection.events())
        self.assertEqual(event.error.reason, 'not a websocket server but an ssh server ("SSH-")')

    def test_foreignAnswerBeforeEOF(self) -> None:
        """
        A server that answers with something else and closes is reported
        for what it sent, not as closing before the response.
        """
        connection = client()
        connection.receive_data(b"Welcome to the echo service\r\n", now=0.0)
        connection.receive_eof()
        [event] = list(connection.events())
        self.assertEqual(
            event.error.reason, 'not a websocket server: its answer is not http ("Welcome to the echo service")'
        )

    def test_httpAnswerInPieces(self) -> None:
        """
        A valid C{101} split after each byte of C{HTTP/} still opens.
        """
        connection = client()
        response = responseBytes(connection.key)
        for byte in response[:6]:
            connection.receive_data(bytes([byte]), now=0.0)
            self.assertEqual(list(connection.events()), [])
        connection.receive_data(response[6:], now=0.0)
        [event] = list(connection.events())
        self.assertIsInstance(event, Opened)
        self.assertIs(connection.state, State.OPEN)
