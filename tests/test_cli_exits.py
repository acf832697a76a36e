"""
Every way a session of C{python -m wsproto_tw} can end, with its standard
input left open: through a pipe that stays open and through a
pseudo-terminal. Each run is a child process against a server on loopback;
every wait is bounded.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.test_client import closeAll, listenTCP
from tests.tools import spawnCommand
from wsproto_tw.core.config import Config
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory

#: Seconds any one wait of these tests may take.
WAIT = 15


class Session(ProcessProtocol):
    """
    A child C{python -m wsproto_tw} whose standard input is never closed.
    Collects its output (on a pseudo-terminal standard output and error
    are one stream) and its exit status.

    @ivar ended: fires with (output, errors, exit status or L{None} if a
        signal ended it) when the child exits.
    """

    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.ended: Deferred = Deferred()
        self._waiting: list[tuple[bytes, Deferred]] = []

    def outReceived(self, data: bytes) -> None:
        self.out += data
        self._check()

    def errReceived(self, data: bytes) -> None:
        self.err += data
        self._check()

    def _check(self) -> None:
        for text, d in list(self._waiting):
            if text in self.out or text in self.err:
                self._waiting.remove((text, d))
                d.callback(None)

    def shown(self, text: bytes) -> Deferred:
        """
        @return: a L{Deferred} firing once C{text} has been written, failing
            after L{WAIT} seconds.
        """
        d: Deferred = Deferred()
        self._waiting.append((text, d))
        self._check()
        return d.addTimeout(WAIT, reactor)

    def processEnded(self, reason: Failure) -> None:
        code = getattr(reason.value, "exitCode", None)
        self.ended.callback((self.out.decode("utf-8", "replace"), self.err.decode("utf-8", "replace"), code))


def start(testCase: TestCase, args: list[str], usePTY: bool) -> tuple[Session, Any]:
    """
    Start C{python -m wsproto_tw ARGS}, its standard input a pipe that stays
    open or a pseudo-terminal; it is killed if still running when the test
    ends.

    @return: the L{Session} and the process transport.
    """
    session = Session()
    return session, spawnCommand(testCase, session, args, usePTY=usePTY)


class Greeter(WebSocketApplication):
    """
    Says C{hello} as soon as the connection opens, echoes text, and closes
    with the code (and reason) its request path names: C{/close/1001/going
    away} closes with 1001 and C{"going away"} a moment after opening.
    """

    def requestReceived(self, request: Any) -> None:
        self.target = request.target

    def connectionOpened(self, transport: Any) -> None:
        super().connectionOpened(transport)
        transport.sendText("hello")
        parts = self.target.split("/")
        if len(parts) >= 3 and parts[1] == "close":
            reason = parts[3].replace("%20", " ") if len(parts) > 3 else ""
            reactor.callLater(0.3, transport.close, int(parts[2]), reason)

    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.transport.sendText(f"binary {data.hex()}")


class ExitTestsMixin:
    """
    The ends of a session; C{usePTY} says whether standard input is a
    pseudo-terminal (interactive) or a pipe.
    """

    timeout = 60
    usePTY = False

    def setUp(self) -> None:
        self.factory = WebSocketServerFactory(Greeter, Config())
        self.addCleanup(closeAll, self.factory)
        self.base = f"ws://127.0.0.1:{listenTCP(self, self.factory)}"

    def output(self, out: str, err: str) -> str:
        """
        @return: everything the child wrote (one stream on a terminal).
        """
        return (out + err).replace("\r\n", "\n")

    def assertEnded(self, result: tuple[str, str, int | None], status: int, line: str) -> None:
        """
        The child exited (not killed by a signal) with C{status}, wrote
        C{line}, and Python did not abort at shutdown.
        """
        out, err, code = result
        text = self.output(out, err)
        self.assertNotIn("Fatal Python error", text)
        self.assertNotIn("Traceback", text)
        self.assertIn(line + "\n", text)
        self.assertEqual(code, status, text)

    @inlineCallbacks
    def ends(self, session: Session, status: int, line: str) -> Any:
        """
        Wait up to L{WAIT} seconds for C{session} to end, then check it as
        L{assertEnded} does.
        """
        self.assertEnded((yield session.ended.addTimeout(WAIT, reactor)), status, line)

    @inlineCallbacks
    def serverCloses(self, path: str, line: str, status: int) -> Any:
        session, _ = start(self, [self.base + path], self.usePTY)
        result = yield session.ended.addTimeout(WAIT, reactor)
        self.assertIn("hello", self.output(*result[:2]))
        self.assertEnded(result, status, line)

    def test_serverCloses1000(self) -> Any:
        """
        The server closes with 1000 while standard input is open: exit 0.
        """
        return self.serverCloses("/close/1000", "closed: 1000", 0)

    def test_serverCloses1001(self) -> Any:
        """
        The server closes with 1001 (going away, as when it shuts down or an
        idle timeout fires) while standard input is open: exit 0.
        """
        return self.serverCloses("/close/1001/going%20away", "closed: 1001 going away", 0)

    def test_serverClosesOtherCode(self) -> Any:
        """
        The server closes with another code while standard input is open:
        exit 1, still without an abort.
        """
        return self.serverCloses("/close/4000/bye", "closed: 4000 bye", 1)

    @inlineCallbacks
    def signalled(self, signal: str) -> Any:
        session, process = start(self, [self.base + "/"], self.usePTY)
        yield session.shown(b"hello")
        process.signalProcess(signal)
        yield self.ends(session, 0, "closed: 1000")

    def test_sigint(self) -> Any:
        """
        SIGINT (Ctrl-C) while open closes with 1000 and exits with 0.
        """
        return self.signalled("INT")

    def test_sigterm(self) -> Any:
        """
        SIGTERM while open closes with 1000 and exits with 0.
        """
        return self.signalled("TERM")

    @inlineCallbacks
    def test_refused(self) -> Any:
        """
        A refused connection exits with 1 and one line while standard input
        is open.
        """
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        session, _ = start(self, [f"ws://127.0.0.1:{number}/"], self.usePTY)
        yield self.ends(session, 1, f"error: connection refused by 127.0.0.1:{number}")


class PipeExitTests(ExitTestsMixin, TestCase):
    """
    The ends of a session whose standard input is a pipe left open.
    """

    usePTY = False

    @inlineCallbacks
    def test_commands(self) -> Any:
        """
        With C{--commands}, C{/binary HEX} sends a binary message, C{/ping}
        a ping whose pong is shown, C{//TEXT} the text C{/TEXT}, and
        C{/close 4000 bye} closes with that code: a close asked for, so
        exit 0.
        """
        session, process = start(self, [self.base + "/", "--commands"], False)
        yield session.shown(b"hello")
        process.write(b"/binary 00 ff10\n")
        yield session.shown(b"binary 00ff10\n")
        process.write(b"/ping are you there\n")
        yield session.shown(b"pong: are you there\n")
        process.write(b"//slash\n/nonsense\n")
        yield session.shown(b"/slash\n")
        yield session.shown(b"error: unknown command /nonsense")
        process.write(b"/binary zz\n/close 1005\n/ping " + b"x" * 126 + b"\n")
        yield session.shown(b"error: /binary takes hex digits, e.g. /binary 00ff10, not 'zz'")
        yield session.shown(b"error: /close 1005: ")
        yield session.shown(b"error: /ping takes at most 125 bytes")
        process.write(b"/close 4000 bye\n")
        yield self.ends(session, 0, "closed: 4000")

    @inlineCallbacks
    def test_commandsOffInPipe(self) -> Any:
        """
        Without C{--commands}, lines from a pipe are sent as they are, even
        those that start with C{/}.
        """
        session, process = start(self, [self.base + "/"], False)
        yield session.shown(b"hello")
        process.write(b"/ping\n")
        yield session.shown(b"/ping\n")
        process.closeStdin()
        yield self.ends(session, 0, "closed: 1000")


class TerminalExitTests(ExitTestsMixin, TestCase):
    """
    The ends of an interactive session on a pseudo-terminal.
    """

    usePTY = True

    @inlineCallbacks
    def test_typedLinesAndCommands(self) -> Any:
        """
        On a terminal, typed lines are sent, replies are shown with C{< },
        commands work without C{--commands}, and C{/close} ends the
        session with exit 0.
        """
        session, process = start(self, [self.base + "/"], True)
        yield session.shown(b"/help for commands")
        process.write(b"hi there\n")
        yield session.shown(b"< hi there")
        process.write(b"/binary 0a0b\n")
        yield session.shown(b"< binary 0a0b")
        process.write(b"/close\n")
        yield self.ends(session, 0, "closed: 1000")

    @inlineCallbacks
    def test_ctrlC(self) -> None:
        """
        Ctrl-C typed on the terminal (the terminal sends SIGINT) closes with
        1000 and exits with 0.
        """
        session, process = start(self, [self.base + "/"], True)
        yield session.shown(b"< hello")
        process.write(b"\x03")
        yield self.ends(session, 0, "closed: 1000")

    @inlineCallbacks
    def test_ctrlD(self) -> None:
        """
        Ctrl-D typed on the terminal ends the input: the client closes with
        1000 and exits with 0.
        """
        session, process = start(self, [self.base + "/", "--wait", "0.1"], True)
        yield session.shown(b"< hello")
        process.write(b"last\n")
        yield session.shown(b"< last")
        process.write(b"\x04")
        yield self.ends(session, 0, "closed: 1000")
