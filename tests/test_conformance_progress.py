"""
Tests for L{wsproto_tw.conformance.Progress}: a conformance run says on
standard error how many cases are done, so that a long run is not silent,
without changing its verdict.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.conformance import Progress

LINE = r"wsproto-tw-conformance {label}: (\d+) of {total} cases done after \d+ s"


class ProgressTests(SynchronousTestCase):
    """
    L{Progress} counts cases from the testee's output and reports them.
    """

    def test_serverLines(self) -> None:
        """
        In twistd's log, each WebSocket opened after the first means one
        more case done; other lines count for nothing.
        """
        progress = Progress("server", 0)
        progress.total = 216
        for line in (
            "2026-11-29T11:00:00+0000 [-] WebSocketServerFactory starting on 4242\n",
            "2026-11-29T11:00:00+0000 [wsproto_tw#info] opened 127.0.0.1:50312 / subprotocol=None\n",
        ):
            progress.serverLine(line)
        self.assertEqual(progress.done, 0)
        progress.serverLine("2026-11-29T11:00:01+0000 [wsproto_tw#info] closed 127.0.0.1:50312 / code=1000\n")
        progress.serverLine("2026-11-29T11:00:01+0000 [wsproto_tw#info] opened 127.0.0.1:50314 /runCase\n")
        self.assertEqual(progress.done, 1)
        self.assertRegex(progress.line(), "^" + LINE.format(label="server", total=216) + "$")
        self.assertTrue(progress.line().startswith("wsproto-tw-conformance server: 1 of 216 cases done after "))

    def test_testeeLines(self) -> None:
        """
        The client testee's C{case N/COUNT: ...} lines give the count and
        the total.
        """
        progress = Progress("client --compression", 0)
        progress.testeeLine("case 7/216: closed 1000 in 0.31s\n")
        progress.testeeLine("something else\n")
        self.assertEqual((progress.done, progress.total), (7, 216))
        self.assertTrue(progress.line().startswith("wsproto-tw-conformance client --compression: 7 of 216 cases done"))

    def test_everyInterval(self) -> None:
        """
        Once started, a line is written every C{interval} seconds until it
        is stopped; with an interval of 0, none.
        """
        lines: list[str] = []

        async def run(interval: float) -> None:
            progress = Progress("server", interval, lines.append)
            progress.start()
            await asyncio.sleep(0.25)
            progress.stop()
            await asyncio.sleep(0.1)

        asyncio.run(run(0.1))
        self.assertEqual(len(lines), 2, lines)
        self.assertEqual(lines[0], "wsproto-tw-conformance server: 0 cases done after 0 s")
        lines.clear()
        asyncio.run(run(0))
        self.assertEqual(lines, [])


class CommandTests(SynchronousTestCase):
    """
    C{wsproto-tw-conformance --progress} on a few cases, in each role.
    """

    def conformance(self, mode: str) -> tuple[str, str]:
        outdir = os.path.abspath(self.mktemp())
        done = subprocess.run(
            [sys.executable, "-m", "wsproto_tw.conformance", mode, "-i", "9.1.*", "-i", "9.2.*", "-i", "9.3.*",
             "--progress", "0.2", "--outdir", outdir],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=300,
        )
        out, err = done.stdout.decode(), done.stderr.decode()
        self.assertEqual(done.returncode, 0, out + err)
        self.assertIn("PASSED: 21 OK, 0 INFORMATIONAL, 0 not OK, of 21 cases", out)
        return out, err

    def assertProgress(self, mode: str, err: str) -> None:
        pattern = re.compile("^" + LINE.format(label=mode, total=21) + "$")
        counts = [int(pattern.match(line).group(1)) for line in err.splitlines() if pattern.match(line)]
        self.assertTrue(counts, err)
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(err.splitlines(), [line for line in err.splitlines() if pattern.match(line)])

    def test_server(self) -> None:
        """
        Server mode: progress lines on standard error, the summary on
        standard output.
        """
        out, err = self.conformance("server")
        self.assertProgress("server", err)
        self.assertNotIn("cases done", out)

    def test_client(self) -> None:
        """
        Client mode: the same.
        """
        out, err = self.conformance("client")
        self.assertProgress("client", err)
