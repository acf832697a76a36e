"""
Tests for L{wsproto_tw.conformance}: the summary and verdict logic, and the
Autobahn TestSuite runs (through C{kosoku}) of C{twistd websocket} and of
wsproto_tw's client, each in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.conformance import Outcome, Run, failures, parser, selection, summarize

#: The cases the suite itself defines as INFORMATIONAL.
INFORMATIONAL = {"7.1.6", "7.13.1", "7.13.2"}

#: The groups of RFC 6455 cases (12.* and 13.* are RFC 7692's).
RFC6455_GROUPS = {"1", "2", "3", "4", "5", "6", "7", "9", "10"}

#: How many cases the suite has in the RFC 6455 groups.
RFC6455_CASES = 301

#: How many cases the suite has in the permessage-deflate groups, 12.* and
#: 13.*.
COMPRESSION_CASES = 216

_log = Logger()


class VerdictTests(SynchronousTestCase):
    """
    Which outcomes pass, and what the summary says.
    """

    def test_strictlyOK(self) -> None:
        """
        A case passes when both its behavior and its closing behavior are OK
        or INFORMATIONAL.
        """
        self.assertTrue(Outcome("1.1.1", "OK", "OK").passed)
        self.assertTrue(Outcome("7.1.6", "INFORMATIONAL", "INFORMATIONAL").passed)

    def test_notOK(self) -> None:
        """
        NON-STRICT, FAILED, UNIMPLEMENTED and ERROR are failures, in either
        verdict.
        """
        for behavior, close in [
            ("NON-STRICT", "OK"),
            ("FAILED", "OK"),
            ("UNIMPLEMENTED", "OK"),
            ("ERROR", "FAILED"),
            ("OK", "WRONG CODE"),
            ("OK", "UNCLEAN"),
            ("OK", "FAILED BY CLIENT"),
        ]:
            self.assertFalse(Outcome("1.1.1", behavior, close).passed, (behavior, close))

    def test_defaultSelection(self) -> None:
        """
        Without C{--include}, the compression cases are left out unless
        compression is on; an explicit C{--include} is taken as given.
        """
        self.assertEqual(selection([], [], False), ([], ["12.*", "13.*"]))
        self.assertEqual(selection([], ["9.*"], False), ([], ["9.*", "12.*", "13.*"]))
        self.assertEqual(selection([], [], True), ([], []))
        self.assertEqual(selection(["12.1.1"], [], False), (["12.1.1"], []))

    def test_summaryListsFailures(self) -> None:
        """
        The summary counts cases by group and behavior, names the failed
        cases and the INFORMATIONAL ones, and shows the testee's options and
        the wall time.
        """
        run = Run(
            "server",
            "twistd -n websocket --max-message-size 16777216",
            "ws://127.0.0.1:9001",
            [],
            ["12.*", "13.*"],
            Path("reports/servers"),
            [
                Outcome("1.1.2", "OK", "OK"),
                Outcome("1.1.10", "NON-STRICT", "OK", "late"),
                Outcome("7.1.6", "INFORMATIONAL", "INFORMATIONAL"),
                Outcome("9.1.1", "FAILED", "WRONG CODE"),
            ],
            seconds=12.34,
        )
        text = summarize(run)
        self.assertEqual([o.caseId for o in failures(run.outcomes)], ["1.1.10", "9.1.1"])
        self.assertIn("--max-message-size 16777216", text)
        self.assertIn("  1.1.10: behavior=NON-STRICT behaviorClose=OK - late", text)
        self.assertIn("  9.1.1: behavior=FAILED behaviorClose=WRONG CODE", text)
        self.assertIn("INFORMATIONAL (as the suite defines them): 7.1.6", text)
        self.assertIn("exclude 12.* 13.*", text)
        rows = {line.split()[0]: line.split() for line in text.splitlines() if line[:1].isdigit()}
        # group, name, cases, OK, NON-STRICT, INFORMATIONAL, FAILED, ...
        self.assertEqual(rows["1.*"][:8], ["1.*", "Framing", "2", "1", "1", "0", "0", "0"])
        self.assertEqual(rows["9.*"][:8], ["9.*", "Limits/Performance", "1", "0", "0", "0", "1", "0"])
        self.assertTrue(text.endswith("FAILED: 1 OK, 1 INFORMATIONAL, 2 not OK, of 4 cases; wall time 12.3 s"))

    def test_commandLine(self) -> None:
        """
        The command line defaults to server mode and repeatable case globs.
        """
        args = parser().parse_args(["-i", "1.*", "-i", "2.*", "-x", "2.1", "--server-arg=--ping-interval=0"])
        self.assertEqual(args.mode, "server")
        self.assertEqual(args.include, ["1.*", "2.*"])
        self.assertEqual(args.exclude, ["2.1"])
        self.assertEqual(args.testee_arg, ["--ping-interval=0"])


class SuiteTests(SynchronousTestCase):
    """
    The Autobahn TestSuite against wsproto_tw, each run a subprocess of
    C{python -m wsproto_tw.conformance}, bounded in time.
    """

    def conformance(
        self, *arguments: str, timeout: float = 600, env: dict[str, str] | None = None
    ) -> dict[str, tuple[str, str]]:
        """
        Run the conformance command and check its exit status against the
        report it wrote.

        @return: C{{case id: (behavior, behaviorClose)}} from the report's
            C{index.json}.
        """
        outdir = os.path.abspath(self.mktemp())
        try:
            done = subprocess.run(
                [sys.executable, "-m", "wsproto_tw.conformance", *arguments, "--outdir", outdir,
                 "--timeout", str(timeout - 60)],
                stdout=subprocess.PIPE,
                # Standard error is trial's own: the command's progress lines
                # (cases done of total, every 30 s) show while it runs.
                stderr=None,
                timeout=timeout,
                env=dict(os.environ, **(env or {})),
            )
        except subprocess.TimeoutExpired as exc:
            self.fail(f"the conformance run took more than {timeout} s:\n{(exc.output or b'').decode(errors='replace')}")
        summary = done.stdout.decode(errors="replace")
        _log.info("wsproto-tw-conformance {arguments}:\n{summary}", arguments=" ".join(arguments), summary=summary)
        index = Path(outdir, "index.json")
        self.assertTrue(index.exists(), f"no report written:\n{summary}")
        results = {
            case: (entry["behavior"], entry["behaviorClose"])
            for cases in json.loads(index.read_text()).values()
            for case, entry in cases.items()
        }
        notOK = {
            case: verdict
            for case, verdict in sorted(results.items())
            if not set(verdict) <= {"OK", "INFORMATIONAL"}
        }
        self.assertEqual(notOK, {}, f"cases not OK: {', '.join(notOK)}\n{summary}")
        self.assertEqual(done.returncode, 0, summary)
        return results

    def assertRFC6455Run(self, results: dict[str, tuple[str, str]]) -> None:
        """
        Every case of every RFC 6455 group ran, no compression case did, and
        the only INFORMATIONAL cases are those the suite defines so.
        """
        self.assertEqual({case.split(".")[0] for case in results}, RFC6455_GROUPS)
        self.assertEqual(len(results), RFC6455_CASES)
        informational = {case for case, verdict in results.items() if "INFORMATIONAL" in verdict}
        self.assertEqual(informational, INFORMATIONAL)

    def assertCompressionRun(self, results: dict[str, tuple[str, str]]) -> None:
        """
        Every case of both compression groups ran, and nothing else.
        """
        self.assertEqual({case.split(".")[0] for case in results}, {"12", "13"})
        self.assertEqual(len(results), COMPRESSION_CASES)

    def test_server(self) -> None:
        """
        C{twistd websocket} passes every case of 1.* to 10.*: all OK except
        the suite's three INFORMATIONAL cases.
        """
        self.assertRFC6455Run(self.conformance("server"))

    def test_serverPurePython(self) -> None:
        """
        Without the C accelerator (C{WSPROTO_TW_NO_SPEEDUPS=1}, inherited by
        C{twistd websocket}), the server passes the same cases.
        """
        self.assertRFC6455Run(self.conformance("server", env={"WSPROTO_TW_NO_SPEEDUPS": "1"}))

    def test_client(self) -> None:
        """
        wsproto_tw's client passes every case of 1.* to 10.*.
        """
        self.assertRFC6455Run(self.conformance("client"))

    def test_clientPurePython(self) -> None:
        """
        Without the C accelerator, the client passes the same cases.
        """
        self.assertRFC6455Run(self.conformance("client", env={"WSPROTO_TW_NO_SPEEDUPS": "1"}))

    def test_serverCompression(self) -> None:
        """
        C{twistd websocket --compression} passes every permessage-deflate
        case (12.* and 13.*).
        """
        self.assertCompressionRun(
            self.conformance("server", "--compression", "-i", "12.*", "-i", "13.*", timeout=1200)
        )

    def test_clientCompression(self) -> None:
        """
        wsproto_tw's client with permessage-deflate passes every 12.* and
        13.* case.
        """
        self.assertCompressionRun(
            self.conformance("client", "--compression", "-i", "12.*", "-i", "13.*", timeout=1200)
        )
