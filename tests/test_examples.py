"""
The programs in C{examples/} run, each in a child process with a time
limit, so that they never rot.
"""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from websockets.sync.client import connect as websocketsConnect

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Program:
    """
    An example program running in a child process; its output is read line
    by line, and it is killed when the test ends.
    """

    def __init__(self, testCase: SynchronousTestCase, script: str, *arguments: str) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        testCase.addCleanup(self.kill)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode("utf-8", "replace"))
        self.lines.put(None)

    def waitFor(self, pattern: str, timeout: float = 30) -> re.Match:
        """
        @return: the match of the next output line matching C{pattern}.
        @raise AssertionError: none within C{timeout} seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.output)}") from None
            if line is None:
                raise AssertionError(f"exited; no line matching {pattern!r} in:\n{''.join(self.output)}")
            self.output.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        if self.process.stdout is not None:
            self.process.stdout.close()


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
