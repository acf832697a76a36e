"""
Child processes for the tests that run real programs: C{twistd websocket}
and the examples. Each is killed when its test ends, and its output is read
line by line so a test can wait for a line.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ChildProcess", "Twistd", "twistdCommand"]


def twistdCommand() -> list[str]:
    """
    @return: the command running this interpreter's C{twistd}.
    """
    script = Path(sys.executable).with_name("twistd")
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]



def _defaultSigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)

class ChildProcess:
    """
    A program run for one test, its output (stdout and stderr) read line by
    line; it is killed when the test ends.

    @ivar log: the lines read so far.
    @ivar workdir: its working directory, a fresh one of the test's.
    """

    def __init__(self, testCase: Any, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.workdir = testCase.mktemp()
        os.makedirs(self.workdir)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self.process = subprocess.Popen(
            argv,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
            # SIGINT as a terminal's foreground program has it, however the
            # tests were started (a shell's background job ignores it, and
            # so would the server, inheriting that).
            preexec_fn=_defaultSigint,
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
        @raise AssertionError: none within C{timeout} seconds, or the
            program ended first.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.log)}") from None
            if line is None:
                raise AssertionError(f"exited; no line matching {pattern!r} in:\n{''.join(self.log)}")
            self.log.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def stop(self, timeout: float = 30) -> str:
        """
        Stop the program with SIGTERM; return its whole output.
        """
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.log.append(line)
        return "".join(self.log)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        if self.process.stdout is not None:
            self.process.stdout.close()


class Twistd(ChildProcess):
    """
    A C{twistd -n websocket} child process.
    """

    def __init__(self, testCase: Any, *arguments: str, env: dict[str, str] | None = None) -> None:
        super().__init__(testCase, [*twistdCommand(), "-n", "--pidfile=", "websocket", *arguments], env)

    def listening(self, count: int) -> list[str]:
        """
        @return: what each of the first C{count} listening ports reported
            (a port number, or a UNIX socket path), in C{--port} order.
        """
        return [self.waitFor(r"starting on '?([^'\s]+)'?").group(1) for _ in range(count)]
