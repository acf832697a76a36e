# -*- test-case-name: tests.interop -*-
"""
What every interoperability test shares: the messages exchanged, our echo
server's application, the exchange our client runs, and peers in other
processes.

The plan, in both directions: text with characters of every UTF-8 length
(four bytes included), empty text, 256 bytes of binary, empty binary, a
1 MiB binary and a 1 MiB text message, each echoed and compared; a ping
each way, each answered by a pong with its payload; then the tester closes
with 1000 and both ends see a clean close.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.error import ProcessDone, ProcessExitedAlready
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from tests.interop.plan import OUR_PING, STEP, SUBPROTOCOL, messages, mismatch
from tests.interop.tools import HERE, ensureTools
from wsproto_tw.core.config import Config
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory


def config(compression: bool, **kwargs: Any) -> Config:
    """
    Our configuration for a test: the subprotocols, default limits (a
    1 MiB message is the largest allowed), no keepalive, permessage-deflate
    if asked.
    """
    if compression:
        from wsproto_tw.core.deflate import PerMessageDeflate

        kwargs["compression"] = PerMessageDeflate()
    return Config(ping_interval=None, **kwargs)


class EchoRecorder(WebSocketApplication):
    """
    Our server's side of every pair: pings the peer once it is open, echoes
    every message and records what it sees.

    @ivar lost: fires with the L{ConnectionClosed} of the connection.
    """

    def __init__(self) -> None:
        self.subprotocol: str | None = None
        self.extensions: str | None = None
        self.echoed = 0
        self.pings: list[bytes] = []
        self.pongs: list[bytes] = []
        self.lost: Deferred = Deferred()

    def connectionOpened(self, transport: Any) -> None:
        self.subprotocol = transport.subprotocol
        self.extensions = transport.extensions
        transport.ping(OUR_PING)

    def textMessageReceived(self, text: str) -> None:
        self.echoed += 1
        self.transport.sendText(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.echoed += 1
        self.transport.sendBinary(data)

    def pingReceived(self, payload: bytes) -> None:
        self.pings.append(payload)

    def pongReceived(self, payload: bytes) -> None:
        self.pongs.append(payload)

    def connectionLost(self, reason: Failure) -> None:
        self.lost.callback(reason.value)


class PlanClient(WebSocketApplication):
    """
    Our client's side of every pair: queues what arrives for L{runPlan}.
    """

    def __init__(self) -> None:
        self.inbox: DeferredQueue = DeferredQueue()
        self.pongs: DeferredQueue = DeferredQueue()
        self.pings: list[bytes] = []
        self.lost: Deferred = Deferred()

    def textMessageReceived(self, text: str) -> None:
        self.inbox.put(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.inbox.put(data)

    def pingReceived(self, payload: bytes) -> None:
        self.pings.append(payload)

    def pongReceived(self, payload: bytes) -> None:
        self.pongs.put(payload)

    def connectionLost(self, reason: Failure) -> None:
        self.lost.callback(reason.value)


def within(d: Deferred, what: str, seconds: float = STEP) -> Deferred:
    """
    C{d}, failing with a message saying what was awaited after C{seconds}.
    """

    def late(failure: Failure) -> Failure:
        from twisted.internet.defer import TimeoutError

        if failure.check(TimeoutError):
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        return failure

    return d.addTimeout(seconds, reactor).addErrback(late)


class InteropTestCase(TestCase):
    """
    Installs the tools first (a failed installation fails the test), and
    bounds every test in time.
    """

    timeout = 120

    def setUp(self) -> None:
        self.tools = ensureTools()

    def listen(self, compression: bool, factory: Any = None) -> tuple[int, list[EchoRecorder]]:
        """
        Run our echo server on a free loopback port until the test ends.

        @return: its port and the list its applications are added to.
        """
        apps: list[EchoRecorder] = []

        def build() -> EchoRecorder:
            app = EchoRecorder()
            apps.append(app)
            return app

        if factory is None:
            factory = WebSocketServerFactory(build, config(compression, subprotocols=(SUBPROTOCOL,)))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port, apps

    async def serverSaw(self, apps: list[EchoRecorder], compression: bool, peerPing: bytes | None) -> None:
        """
        Check our server's side of a finished exchange: one connection, the
        subprotocol and extension negotiated, every message echoed, a ping
        answered each way, and a clean close with 1000.

        @param peerPing: the payload of the peer's ping, or L{None} if it
            sends none.
        """
        self.assertEqual(len(apps), 1, "one connection expected")
        app = apps[0]
        closed = await within(app.lost, "our server's connectionLost")
        self.assertEqual((closed.code, closed.wasClean), (1000, True))
        self.assertEqual(app.subprotocol, SUBPROTOCOL)
        self.assertExtension(app.extensions, compression)
        self.assertEqual(app.echoed, len(messages()))
        self.assertEqual(app.pongs, [OUR_PING])
        self.assertEqual(app.pings, [] if peerPing is None else [peerPing])

    def assertExtension(self, header: str | None, compression: bool) -> None:
        """
        C{header}, a C{Sec-WebSocket-Extensions} value, is permessage-deflate
        (with parameters) when C{compression} is on, and absent otherwise.
        """
        if compression:
            self.assertIsNotNone(header, "no extension negotiated")
            self.assertEqual(header.split(";")[0].strip(), "permessage-deflate", header)
            self.assertNotIn(",", header, "more than one extension")
        else:
            self.assertIn(header, (None, ""))

    def assertVerdict(self, verdict: dict[str, Any]) -> None:
        """
        A peer's verdict lists no error.
        """
        self.assertEqual(verdict.get("errors"), [], json.dumps(verdict)[:4000])

    async def runPlan(self, connecting: Deferred, app: PlanClient, compression: bool, peerPing: bytes | None) -> Any:
        """
        Run the plan from our client, on a connection being opened, and check
        our side of it.

        @param connecting: the L{Deferred} of C{connect}.
        @param peerPing: the payload of the ping the peer sends once the
            connection is open, or L{None}.
        @return: the open L{WebSocketProtocol}.
        """
        transport = await within(connecting, "our client's opening handshake")
        self.assertEqual(transport.subprotocol, SUBPROTOCOL)
        self.assertExtension(transport.extensions, compression)
        await self.exchange(transport, app, peerPing)
        return transport

    async def exchange(
        self, transport: Any, app: PlanClient, peerPing: bytes | None, ping: bytes = OUR_PING
    ) -> None:
        """
        Run the plan as the tester on an open connection, and check each
        step.

        @param transport: has the L{IWebSocketTransport} methods C{sendText},
            C{sendBinary}, C{ping} and C{close}.
        @param app: receives what the connection delivers.
        @param peerPing: as for L{runPlan}.
        @param ping: the payload of the tester's ping.
        """
        for message in messages():
            if isinstance(message, str):
                transport.sendText(message)
            else:
                transport.sendBinary(message)
            what = f"the echo of {type(message).__name__} of {len(message)}"
            got = await within(app.inbox.get(), what)
            self.assertIsNone(mismatch(message, got))
        transport.ping(ping)
        self.assertEqual(await within(app.pongs.get(), "a pong"), ping)
        transport.close(1000, "done")
        closed = await within(app.lost, "the closing handshake")
        self.assertEqual((closed.code, closed.wasClean), (1000, True))
        self.assertEqual(app.pings, [] if peerPing is None else [peerPing])

    def spawn(self, argv: list[str]) -> PeerProcess:
        """
        Start a peer in another process; it is killed when
        the test ends if it is still running.
        """
        peer = PeerProcess(" ".join(Path(a).name for a in argv[:4]))
        reactor.spawnProcess(peer, argv[0], argv, env=dict(os.environ), path=str(HERE.parent.parent))
        self.addCleanup(peer.stop)
        return peer

    def spawnPython(self, module: str, *args: str) -> PeerProcess:
        """
        Start a Python peer module of this package, from the checkout's root.
        """
        return self.spawn([sys.executable, "-u", "-m", f"tests.interop.{module}", *args])

    def spawnNode(self, script: str, *args: str) -> PeerProcess:
        """
        Start a Node.js peer script of this folder.
        """
        return self.spawn([self.tools.node, str(HERE / script), *args])


class PeerExited(Exception):
    """
    A peer process ended before printing what was awaited.
    """


class PeerProcess(ProcessProtocol):
    """
    A peer in another process that prints one JSON object per line.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._buffer = b""
        self._lines: list[dict[str, Any]] = []
        self._waiting: list[Deferred] = []
        self._stderr = b""
        self.ended: Deferred = Deferred()
        self._done: Failure | None = None

    def outReceived(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                value = {"errors": [f"not JSON: {line[:500]!r}"]}
            if self._waiting:
                self._waiting.pop(0).callback(value)
            else:
                self._lines.append(value)

    def errReceived(self, data: bytes) -> None:
        self._stderr = (self._stderr + data)[-8000:]

    def processEnded(self, reason: Failure) -> None:
        self._done = reason
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(self._exited())
        self.ended.callback(None)

    def _exited(self) -> Failure:
        status = "" if self._done is None or self._done.check(ProcessDone) else f" ({self._done.value})"
        stderr = self._stderr.decode(errors="replace")
        return Failure(PeerExited(f"{self.name} ended{status} before saying enough; its stderr:\n{stderr}"))

    def nextLine(self, what: str, seconds: float = 60.0) -> Deferred:
        """
        @return: a L{Deferred} firing with the next JSON line.
        """
        if self._lines:
            d: Deferred = Deferred()
            d.callback(self._lines.pop(0))
        elif self._done is not None:
            d = Deferred()
            d.errback(self._exited())
        else:
            d = Deferred(lambda d: self._waiting.remove(d) if d in self._waiting else None)
            self._waiting.append(d)
        return within(d, f"{what} from {self.name}", seconds)

    def stop(self) -> Deferred:
        """
        Kill the process unless it has ended, and wait until it has.
        """
        if self._done is None:
            try:
                self.transport.signalProcess("KILL")
            except ProcessExitedAlready:
                pass
        return self.ended


