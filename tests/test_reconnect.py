"""
Tests for L{wsproto_tw.reconnect}.

The service is driven through a scripted endpoint, L{StringTransport}s and
a L{Clock}; one test runs it against our server on loopback.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError, DNSLookupError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.test_client import Recorder, acceptFor, closeAll, listenTCP
from tests.tools import spawnCommand
from wsproto_tw.core.config import Config
from wsproto_tw.errors import HandshakeRejected
from wsproto_tw.proxy import ProxyAuthenticationFailed, ProxyRefused
from wsproto_tw.reconnect import (
    DEFAULT_FACTOR,
    DEFAULT_INITIAL_DELAY,
    DEFAULT_JITTER,
    DEFAULT_MAX_DELAY,
    ReconnectingClientService,
    backoffPolicy,
)
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


class BackoffTests(SynchronousTestCase):
    """
    L{backoffPolicy}: exponential, capped, with jitter.
    """

    def test_defaults(self) -> None:
        """
        The documented defaults: 1 s, doubling, capped at 60 s, up to half
        taken off at random.
        """
        self.assertEqual(
            (DEFAULT_INITIAL_DELAY, DEFAULT_FACTOR, DEFAULT_MAX_DELAY, DEFAULT_JITTER), (1.0, 2.0, 60.0, 0.5)
        )
        policy = backoffPolicy(random=lambda: 0.0)
        self.assertEqual([policy(n) for n in range(1, 10)], [1, 2, 4, 8, 16, 32, 60, 60, 60])
        self.assertEqual(policy(10**6), 60)
        policy = backoffPolicy(random=lambda: 1.0)
        self.assertEqual([policy(n) for n in (1, 2, 7)], [0.5, 1, 30])

    def test_jitterSpreads(self) -> None:
        """
        Each delay uses a fresh random number.
        """
        numbers = iter([0.0, 0.5, 1.0])
        policy = backoffPolicy(initialDelay=4, factor=1, maxDelay=4, random=lambda: next(numbers))
        self.assertEqual([policy(1), policy(1), policy(1)], [4, 3, 2])

    def test_badParameters(self) -> None:
        """
        Parameters out of range raise L{ValueError}.
        """
        for kwargs in ({"initialDelay": -1}, {"maxDelay": 0.5}, {"factor": 0.5}, {"jitter": 1.5}):
            self.assertRaises(ValueError, backoffPolicy, **kwargs)


@implementer(IStreamClientEndpoint)
class ScriptedEndpoint:
    """
    Each C{connect} takes the next outcome: C{"connect"} connects at once
    to a new L{StringTransport}, C{"pending"} never answers (until
    cancelled), or an exception fails the attempt. When the script runs out,
    attempts connect.
    """

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.attempts = 0
        self.cancelled = 0
        self.protocols: list[Any] = []
        self.transports: list[StringTransport] = []

    def connect(self, factory: Any) -> Deferred:
        self.attempts += 1
        outcome = self.script.pop(0) if self.script else "connect"
        if outcome == "pending":
            return Deferred(lambda d: setattr(self, "cancelled", self.cancelled + 1))
        if isinstance(outcome, Exception):
            return fail(outcome)
        transport = StringTransport()
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
        protocol.makeConnection(transport)
        self.protocols.append(protocol)
        self.transports.append(transport)
        return succeed(protocol)

    def accept(self) -> None:
        """
        Answer the last connection's handshake with a C{101}.
        """
        self.protocols[-1].dataReceived(acceptFor(self.transports[-1]))

    def answer(self, head: bytes) -> None:
        """
        Answer the last connection's handshake with C{head} and close it.
        """
        self.protocols[-1].dataReceived(head)
        self.protocols[-1].connectionLost(Failure(ConnectionDone()))

    def drop(self) -> None:
        """
        The last connection is lost without a closing handshake.
        """
        self.protocols[-1].connectionLost(Failure(ConnectionDone()))


def startService(*script: Any, **kwargs: Any) -> tuple[ReconnectingClientService, ScriptedEndpoint, Clock, list[Recorder]]:
    """
    Start a service over a L{ScriptedEndpoint} and a L{Clock}, without
    jitter.
    """
    clock = Clock()
    endpoint = ScriptedEndpoint(*script)
    apps: list[Recorder] = []

    def build() -> Recorder:
        apps.append(Recorder())
        return apps[-1]

    kwargs.setdefault("random", lambda: 0.0)
    service = ReconnectingClientService("ws://example.com/feed", build, reactor=clock, endpoint=endpoint, **kwargs)
    service.startService()
    return service, endpoint, clock, apps


def closeCodeSent(transport: StringTransport) -> int:
    """
    @return: the close code of the masked Close frame the client wrote
        after its request.
    """
    frame = transport.value().split(b"\r\n\r\n", 1)[1]
    assert frame[0] == 0x88 and frame[1] & 0x80, frame
    key = frame[2:6]
    payload = bytes(b ^ key[i % 4] for i, b in enumerate(frame[6 : 6 + (frame[1] & 0x7F)]))
    return int.from_bytes(payload[:2], "big")


class ServiceTests(SynchronousTestCase):
    """
    L{ReconnectingClientService} connects, retries, gives up on refusals,
    and stops cleanly.
    """

    def test_interface(self) -> None:
        """
        The service provides L{IService}.
        """
        service, endpoint, clock, apps = startService()
        verifyObject(IService, service)

    def test_connectsOnStart(self) -> None:
        """
        Starting connects at once; L{whenConnected} fires with the open
        connection, now or later.
        """
        service, endpoint, clock, apps = startService()
        waiting = service.whenConnected()
        self.assertEqual(endpoint.attempts, 1)
        self.assertNoResult(waiting)
        endpoint.accept()
        transport = self.successResultOf(waiting)
        self.assertEqual(apps[0].opened, [transport])
        self.assertIs(self.successResultOf(service.whenConnected()), transport)

    def test_networkFailuresRetried(self) -> None:
        """
        Network failures are retried after 1, 2, 4 ... seconds; a success
        resets the count.
        """
        service, endpoint, clock, apps = startService(
            ConnectionRefusedError(), DNSLookupError(), ConnectionRefusedError(), "connect"
        )
        for delay, attempts in ((1, 2), (2, 3), (4, 4)):
            clock.advance(delay - 0.01)
            self.assertEqual(endpoint.attempts, attempts - 1)
            clock.advance(0.01)
            self.assertEqual(endpoint.attempts, attempts)
        endpoint.accept()
        self.assertEqual(len(apps[-1].opened), 1)
        endpoint.drop()
        clock.advance(1)
        self.assertEqual(endpoint.attempts, 5)

    def test_jitter(self) -> None:
        """
        The delay is cut by the random jitter.
        """
        service, endpoint, clock, apps = startService(ConnectionRefusedError(), random=lambda: 1.0)
        clock.advance(0.5)
        self.assertEqual(endpoint.attempts, 2)

    def test_newApplicationPerConnection(self) -> None:
        """
        After a lost connection the service reconnects after the initial
        delay, with a new application from the factory.
        """
        service, endpoint, clock, apps = startService()
        endpoint.accept()
        endpoint.drop()
        self.assertEqual([len(app.lost) for app in apps], [1])
        self.assertNoResult(service.whenConnected())
        clock.advance(1)
        endpoint.accept()
        self.assertEqual(len(apps), 2)
        self.assertIsNot(apps[0], apps[1])
        self.assertEqual(len(apps[1].opened), 1)
        self.assertIs(self.successResultOf(service.whenConnected()), apps[1].opened[0])

    def test_whenConnectedFromConnectionLost(self) -> None:
        """
        L{whenConnected} asked from the application's C{connectionLost}
        waits for the next connection.
        """
        service, endpoint, clock, apps = startService()
        endpoint.accept()
        asked: list[Deferred] = []
        apps[0].connectionLost = lambda reason: asked.append(service.whenConnected())  # type: ignore[method-assign]
        endpoint.drop()
        self.assertNoResult(asked[0])
        clock.advance(1)
        endpoint.accept()
        self.assertIs(self.successResultOf(asked[0]), apps[1].opened[0])

    def test_serverErrorsRetried(self) -> None:
        """
        A handshake answered with 5xx, 408 or 429 is retried; C{Retry-After}
        is waited for at least.
        """
        service, endpoint, clock, apps = startService()
        endpoint.answer(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        clock.advance(1)
        self.assertEqual(endpoint.attempts, 2)
        endpoint.answer(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n")
        clock.advance(29)
        self.assertEqual(endpoint.attempts, 2)
        clock.advance(1)
        self.assertEqual(endpoint.attempts, 3)
        endpoint.answer(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        clock.advance(4)
        self.assertEqual(endpoint.attempts, 4)
        self.assertIsNone(service.refusal)

    def test_rejectionGivesUp(self) -> None:
        """
        A handshake refused with another 4xx is not retried: the waiting
        L{whenConnected} Deferreds fail with L{HandshakeRejected}, and so do
        later ones.
        """
        service, endpoint, clock, apps = startService()
        waiting = service.whenConnected()
        endpoint.answer(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        clock.advance(3600)
        self.assertEqual(endpoint.attempts, 1)
        self.assertEqual(self.failureResultOf(waiting, HandshakeRejected).value.status, 403)
        self.assertEqual(self.failureResultOf(service.whenConnected(), HandshakeRejected).value.status, 403)
        self.assertEqual(service.refusal.value.status, 403)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_proxyRefusals(self) -> None:
        """
        A proxy's 407 gives up; its 502 is retried.
        """
        service, endpoint, clock, apps = startService(ProxyRefused("h:80", 502, "Bad Gateway"), ProxyAuthenticationFailed("h:80", 407, "Proxy Authentication Required"))
        clock.advance(1)
        self.assertEqual(endpoint.attempts, 2)
        clock.advance(3600)
        self.assertEqual(endpoint.attempts, 2)
        self.assertIsInstance(service.refusal.value, ProxyAuthenticationFailed)

    def test_restartAfterGivingUp(self) -> None:
        """
        Stopping and starting again tries again.
        """
        service, endpoint, clock, apps = startService()
        endpoint.answer(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        self.successResultOf(service.stopService())
        service.startService()
        self.assertEqual(endpoint.attempts, 2)
        self.assertIsNone(service.refusal)

    def test_stopClosesConnection(self) -> None:
        """
        Stopping closes the open connection with 1001 and fires once it is
        closed; nothing reconnects.
        """
        service, endpoint, clock, apps = startService()
        endpoint.accept()
        stopped = service.stopService()
        self.assertEqual(closeCodeSent(endpoint.transports[0]), 1001)
        self.assertNoResult(stopped)
        endpoint.protocols[0].dataReceived(b"\x88\x02\x03\xe9")
        endpoint.drop()
        self.successResultOf(stopped)
        self.assertEqual([(c.code, c.wasClean) for c in apps[0].lost], [(1001, True)])
        clock.advance(3600)
        self.assertEqual(endpoint.attempts, 1)

    def test_stopWhileWaiting(self) -> None:
        """
        Stopping between attempts cancels the retry and fires at once; a
        waiting L{whenConnected} fails with L{CancelledError}.
        """
        service, endpoint, clock, apps = startService(ConnectionRefusedError())
        waiting = service.whenConnected()
        self.successResultOf(service.stopService())
        self.failureResultOf(waiting, CancelledError)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stopWhileConnecting(self) -> None:
        """
        Stopping during an attempt cancels it; no retry follows.
        """
        service, endpoint, clock, apps = startService("pending", config=Config(open_timeout=None))
        self.successResultOf(service.stopService())
        self.assertEqual(endpoint.cancelled, 1)
        clock.advance(3600)
        self.assertEqual(endpoint.attempts, 1)

    def test_badURL(self) -> None:
        """
        A URL that is not a WebSocket URL raises L{ValueError} at once.
        """
        self.assertRaises(ValueError, ReconnectingClientService, "http://example.com/", Recorder, reactor=Clock())


class Dropper(WebSocketApplication):
    """
    Drops the first connection it serves; echoes on the others.
    """

    served = 0

    def connectionOpened(self, transport: Any) -> None:
        Dropper.served += 1
        if Dropper.served == 1:
            transport.abortConnection()

    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText(text)


class LoopbackTests(TestCase):
    """
    The service against our server over loopback.
    """

    timeout = 30

    @inlineCallbacks
    def test_reconnectsAndStops(self) -> None:
        """
        A connection the server drops is replaced by a new one with a new
        application; stopping closes it cleanly.
        """
        Dropper.served = 0
        factory = WebSocketServerFactory(Dropper)
        self.addCleanup(closeAll, factory)
        port = listenTCP(self, factory)
        apps: list[Recorder] = []

        def build() -> Recorder:
            apps.append(Recorder())
            return apps[-1]

        service = ReconnectingClientService(
            f"ws://127.0.0.1:{port}/", build, initialDelay=0.05, maxDelay=0.1, proxy=False
        )
        service.startService()
        self.addCleanup(service.stopService)
        while True:
            transport = yield service.whenConnected()
            [app] = [app for app in apps if transport in app.opened]
            if Dropper.served == 2:
                break
            # The first connection opened before the server dropped it.
            yield app.closed
        self.assertEqual(len(apps), 2)
        self.assertIs(app, apps[1])
        got = apps[1].nextMessage()
        transport.sendText("again")
        self.assertEqual((yield got), "again")
        yield service.stopService()
        self.assertEqual([(c.code, c.wasClean) for c in apps[1].lost], [(1001, True)])
        self.assertEqual(Dropper.served, 2)


# -- the command-line client ------------------------------------------------------


class Conversation(ProcessProtocol):
    """
    Runs C{python -m wsproto_tw}: writes C{first}; once standard error
    shows C{cue}, writes C{then} and closes standard input.
    """

    def __init__(self, first: bytes, cue: str, then: bytes) -> None:
        self.first = first
        self.cue = cue
        self.then = then
        self.out = b""
        self.err = b""
        self.ended: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.first)
        if not self.cue:
            self.transport.write(self.then)
            self.transport.closeStdin()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        cued = self.cue and self.cue in self.err.decode(errors="replace")
        self.err += data
        if self.cue and not cued and self.cue in self.err.decode(errors="replace"):
            self.transport.write(self.then)
            self.transport.closeStdin()

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback((self.out.decode(), self.err.decode(), getattr(reason.value, "exitCode", None)))


def converse(testCase: TestCase, args: list[str], first: bytes, cue: str = "", then: bytes = b"") -> Deferred:
    """
    Run the command with a L{Conversation}; it is killed if the test ends
    first.

    @return: a L{Deferred} firing with (stdout, stderr, exit status).
    """
    child = Conversation(first, cue, then)
    spawnCommand(testCase, child, args)
    return child.ended


class CommandTests(TestCase):
    """
    C{python -m wsproto_tw --reconnect}.
    """

    timeout = 60

    def serve(self, config: Config | None = None, port: int = 0) -> int:
        from tests.test_cli import Server

        factory = WebSocketServerFactory(Server, config)
        self.addCleanup(closeAll, factory)
        listening = reactor.listenTCP(port, factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        return listening.getHost().port

    @inlineCallbacks
    def test_reconnectsAfterClose(self) -> None:
        """
        When the server closes, the command says so, reconnects, and goes on
        with the next lines; the end of input still closes with 1000 and
        exit status 0.
        """
        port = self.serve()
        out, err, code = yield converse(
            self, [f"ws://127.0.0.1:{port}/", "--reconnect"], b"quit\n", "reconnecting", b"hi\n"
        )
        self.assertEqual(
            (out, err, code), ("hi\n", "closed: 4000 bye; reconnecting\nreconnected\nclosed: 1000\n", 0)
        )

    @inlineCallbacks
    def test_retriesUntilServerListens(self) -> None:
        """
        A refused connection is retried until the server listens; lines
        wait for the connection.
        """
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        ended = converse(self, [f"ws://127.0.0.1:{port}/", "--reconnect"], b"hello\n")
        started = Deferred()
        reactor.callLater(1.5, started.callback, None)
        yield started
        self.assertFalse(ended.called)
        self.serve(port=port)
        out, err, code = yield ended
        self.assertEqual((out, err, code), ("hello\n", "closed: 1000\n", 0))

    @inlineCallbacks
    def test_givesUpOnRefusal(self) -> None:
        """
        A 403 stops the retries: the error line, exit status 1.
        """
        port = self.serve(Config(allowed_origins=frozenset({"https://good.example"})))
        out, err, code = yield converse(
            self, [f"ws://127.0.0.1:{port}/", "--reconnect", "--origin", "https://evil.example"], b"hi\n"
        )
        self.assertEqual((out, err, code), ("", "error: 403 Forbidden: origin https://evil.example is not allowed\n", 1))
