"""
Interoperability with the C{stomp.py} package's WebSocket client, run in a
child process against a L{StompServer} on loopback.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import TestCase

import wsproto_tw
from tests.stomp.helpers import annServer, sessionsGone
from tests.tools import pipInstalled

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stomppy_client.py")
TCP_CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stomppy_tcp_client.py")


def ensureStompPy() -> None:
    """
    Install C{stomp.py} into this interpreter's environment if it is
    missing.

    @raise AssertionError: it can't be installed.
    """
    pipInstalled("stomp", "stomp.py")


class _Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.ended: Deferred = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out.append(data)

    def errReceived(self, data: bytes) -> None:
        self.out.append(data)

    def processEnded(self, reason: Any) -> None:
        self.ended.callback((reason.value.exitCode, b"".join(self.out).decode("utf-8", "replace")))


def runChild(argv: list[str], limit: float) -> Deferred:
    """
    Run C{argv} in a child process, killed after C{limit} seconds.

    @return: a Deferred firing with (exit code, output).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(wsproto_tw.__file__)))
    collect = _Collect()
    env = dict(os.environ, PYTHONPATH=root, PYTHONUNBUFFERED="1")
    process = reactor.spawnProcess(collect, argv[0], argv, env=env)
    killer = reactor.callLater(limit, process.signalProcess, "KILL")
    collect.ended.addBoth(lambda result: (killer.active() and killer.cancel(), result)[1])
    return collect.ended


@inlineCallbacks
def clientResult(testCase: TestCase, script: str, port: int | str) -> Any:
    """
    Run the C{stomp.py} client C{script} against C{port} on loopback; it
    must exit with 0.

    @return: a L{Deferred} firing with the JSON object it printed last.
    """
    code, output = yield runChild([sys.executable, script, str(port)], 90)
    testCase.assertEqual(code, 0, output)
    return json.loads(output.strip().splitlines()[-1])


def assertSession(testCase: TestCase, result: dict[str, Any]) -> None:
    """
    Check what C{stomppy_client.py} saw of a server where ann (passcode
    secret) may log in and C{/app/shout} publishes to C{/topic/news}
    upper-cased: the bad login refused, STOMP 1.2 as ann, and every step
    of its session.
    """
    testCase.assertEqual(result["badLogin"], "refused")
    testCase.assertEqual((result["connected"]["version"], result["connected"]["user-name"]), ("1.2", "ann"))
    testCase.assertEqual(result["queue"], ["a", "b", "b", True])
    testCase.assertEqual(result["topic"], [["plain", "in tx1"], ["plain", "in tx1"]])
    testCase.assertEqual(result["user"], ["for ann", "for ann"])
    testCase.assertEqual(result["app"], ["HEY", "HEY"])
    testCase.assertEqual(result["receipts"], [True, True])
    testCase.assertEqual(result["errors"], [])


class StompPyTests(TestCase):
    """
    Tests with C{stomp.py} over WebSocket.
    """

    timeout = 120

    def runClient(self, server: Any, factory: Any, script: str) -> Any:
        """
        Listen with C{factory} (of C{server}) on a loopback port, run the
        C{stomp.py} client C{script} against it, and wait for it to end;
        the port is closed and C{server}'s sessions gone when the test ends.

        @return: a L{Deferred} firing with the JSON object the client
            printed last.
        """
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(sessionsGone, server, reactor)
        return clientResult(self, script, port.getHost().port)

    @inlineCallbacks
    def test_session(self) -> Any:
        """
        C{stomp.py}'s WebSocket connection, STOMP 1.2: a wrong passcode is
        refused; logged in, it gets server heart-beats, ACKs and NACKs
        queue messages (the NACKed one comes back with a new id), receives
        a topic on two connections with transactions committed and
        aborted, a user queue on both of the user's sessions, what an
        application handler publishes, and its DISCONNECT receipts.
        """
        ensureStompPy()
        server = annServer(heart_beat=(500, 0))

        @server.route("/app/shout")
        def shout(request: Any) -> None:
            request.publish("/topic/news", request.text.upper())

        result = yield self.runClient(server, server.webSocketFactory(), CLIENT)
        assertSession(self, result)
        self.assertEqual(
            result["connected"], {"version": "1.2", "user-name": "ann", "heart-beat": "500,0", "server": "test"}
        )
        self.assertTrue(result["heartbeat"])

    @inlineCallbacks
    def test_tcpEveryVersion(self) -> Any:
        """
        C{stomp.py} over TCP (L{StompServer.streamFactory}) in STOMP 1.0,
        1.1 and 1.2: each version is negotiated, a queue message is
        received and acknowledged as that version names it, and each
        DISCONNECT gets its receipt.
        """
        ensureStompPy()
        server = annServer()
        result = yield self.runClient(server, server.streamFactory(), TCP_CLIENT)
        for version in ("1.0", "1.1", "1.2"):
            self.assertEqual(
                result[version],
                {"version": version, "body": "hello " + version, "receipts": ["sub", "ack", "bye"], "errors": []},
            )
        yield sessionsGone(server, reactor)


class TwistdStompTests(TestCase):
    """
    C{twistd websocket --mode stomp}: the embedded broker over WebSocket
    and over TCP (C{--stomp-port}), C{--auth} and C{--app} handlers, with
    C{stomp.py} as the client of both.
    """

    timeout = 180

    @inlineCallbacks
    def test_webSocketAndTCP(self) -> Any:
        """
        A real C{twistd websocket --mode stomp} serves C{stomp.py}'s
        WebSocket session (queues, topics, transactions, user queues, the
        C{--app} handler, receipts; a wrong passcode refused) and its TCP
        sessions in every version, with C{--auth memory:...}.
        """
        from tests.processes import Twistd

        ensureStompPy()
        root = os.path.dirname(os.path.dirname(os.path.abspath(wsproto_tw.__file__)))
        twistd = Twistd(
            self,
            "--mode", "stomp",
            "--port", "tcp:0:interface=127.0.0.1",
            "--stomp-port", "tcp:0:interface=127.0.0.1",
            "--auth", "memory:ann:secret",
            "--app", "tests.stomp.helpers.registerShout",
            # Heart-beats every second: the client waits 10 s for the first,
            # the default 10 s interval would race it.
            "--heart-beat", "1000,10000",
            env={"PYTHONPATH": root},
        )
        webSocketPort, tcpPort = twistd.listening(2)
        assertSession(self, (yield clientResult(self, CLIENT, webSocketPort)))
        result = yield clientResult(self, TCP_CLIENT, tcpPort)
        for version in ("1.0", "1.1", "1.2"):
            self.assertEqual(result[version]["body"], "hello " + version)
            self.assertEqual(result[version]["errors"], [])
        log = twistd.stop()
        self.assertNotIn("Traceback", log)
