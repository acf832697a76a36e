"""
The programs in C{examples/} run, each in a child process with a time
limit, so that they never rot.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase
from websockets.sync.client import connect as websocketsConnect

from tests.processes import ChildProcess

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def Program(testCase: SynchronousTestCase, script: str, *arguments: str) -> ChildProcess:
    """
    @return: the example C{script} running with C{arguments}.
    """
    return ChildProcess(testCase, [sys.executable, str(EXAMPLES / script), *arguments])


LOOPBACK = "tcp:0:interface=127.0.0.1"


class ExamplesTests(SynchronousTestCase):
    """
    Each example does what its docstring says.
    """

    def test_echoServerAndClient(self) -> None:
        """
        C{client.py} sends its messages to C{echo_server.py}, prints the
        echoes and exits with status 0 after a clean close.
        """
        server = Program(self, "echo_server.py", LOOPBACK)
        url = server.waitFor(r"listening on (ws://\S+)").group(1)
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "client.py"), url, "hello", "wörld"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        output = done.stdout.decode()
        self.assertEqual(done.returncode, 0, output)
        self.assertEqual(
            output.splitlines(),
            [f"connected to {url}", "received: hello", "received: wörld", "closed: 1000, clean: True"],
        )

    def test_clientRefused(self) -> None:
        """
        C{client.py} exits with an error when nothing listens.
        """
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / "client.py"), f"ws://127.0.0.1:{port}/", "x"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("Connection refused", done.stdout.decode())

    def test_chat(self) -> None:
        """
        C{chat/server.py} serves its page at C{/} and a room at C{/ws}.
        """
        server = Program(self, "chat/server.py", LOOPBACK)
        base = server.waitFor(r"listening on http://(\S+)/").group(1)
        with urllib.request.urlopen(f"http://{base}/", timeout=10) as response:
            page = response.read()
        self.assertIn(b'new WebSocket(scheme + location.host + "/ws")', page)
        with websocketsConnect(f"ws://{base}/ws", open_timeout=10) as ann:
            self.assertEqual(ann.recv(timeout=10), "* guest1 joined")
            with websocketsConnect(f"ws://{base}/ws", open_timeout=10) as bob:
                self.assertEqual(ann.recv(timeout=10), "* guest2 joined")
                self.assertEqual(bob.recv(timeout=10), "* guest2 joined")
                bob.send("hi ann")
                self.assertEqual(ann.recv(timeout=10), "guest2: hi ann")
                self.assertEqual(bob.recv(timeout=10), "guest2: hi ann")
            self.assertEqual(ann.recv(timeout=10), "* guest2 left")

    def test_wrappedLines(self) -> None:
        """
        C{wrapped_lines.py} puts a TCP line client and a WebSocket client
        in one room.
        """
        server = Program(self, "wrapped_lines.py", LOOPBACK, LOOPBACK)
        lines = server.waitFor(r"lines listening on tcp://([\d.]+):(\d+)/")
        url = server.waitFor(r"websocket listening on (ws://\S+)").group(1)
        with socket.create_connection((lines.group(1), int(lines.group(2))), timeout=10) as tcp:
            reader = tcp.makefile("rb")
            self.assertEqual(reader.readline(), b"welcome, guest1\n")
            with websocketsConnect(url, open_timeout=10) as ws:
                self.assertEqual(ws.recv(timeout=10), "welcome, guest2")
                ws.send("hello from the browser")
                self.assertEqual(reader.readline(), b"guest2: hello from the browser\n")
                self.assertEqual(ws.recv(timeout=10), "guest2: hello from the browser")
                tcp.sendall(b"hello from telnet\r\n")
                self.assertEqual(ws.recv(timeout=10), "guest1: hello from telnet")
                self.assertEqual(reader.readline(), b"guest1: hello from telnet\n")


class ExampleFailureTests(SynchronousTestCase):
    """
    A server example that can't listen says so in one line and exits with
    a non-zero status, at once.
    """

    def refused(self, script: str, *arguments: str) -> str:
        """
        Run C{script} with C{arguments} and check that it fails quickly.

        @return: its standard error.
        """
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / script), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=30,
        )
        error = done.stderr.decode()
        self.assertNotEqual(done.returncode, 0, error)
        self.assertEqual(len(error.strip().splitlines()), 1, error)
        self.assertNotIn("Traceback", error)
        return error

    def busyPort(self) -> str:
        """
        @return: the endpoint string of a loopback port that is in use
            until the test ends.
        """
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        return f"tcp:{busy.getsockname()[1]}:interface=127.0.0.1"

    def test_portInUse(self) -> None:
        """
        Each server example, given a port that is in use, prints one line
        naming the endpoint and the cause and exits with status 1.
        """
        busy = self.busyPort()
        for script, arguments in [
            ("echo_server.py", [busy]),
            ("chat/server.py", [busy]),
            ("wrapped_lines.py", [busy, LOOPBACK]),
            ("wrapped_lines.py", [LOOPBACK, busy]),
        ]:
            error = self.refused(script, *arguments)
            self.assertIn(f"can't listen on {busy}", error)
            self.assertIn("in use", error)

    def test_badEndpoint(self) -> None:
        """
        An endpoint string that is not one fails the same way.
        """
        for script in ("echo_server.py", "chat/server.py", "wrapped_lines.py"):
            error = self.refused(script, "tcp:abc")
            self.assertIn("can't listen on tcp:abc", error)
