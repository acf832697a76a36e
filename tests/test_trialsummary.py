"""
Tests for L{tests.trialsummary}, the last word of C{run-tests.sh}: a run
counts by trial's exit status and final summary only, a crash is a failure,
and with C{WSPROTO_TW_NO_SKIPS} every skip is listed and counted as failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.trialsummary import RunResult, main, parseRun, report

#: The checkout, where C{python -m tests.trialsummary} runs.
ROOT = Path(__file__).resolve().parent.parent

PASSED_LOG = """\
tests.core.test_frames
  FrameTests
    test_one ...                                                           [OK]

-------------------------------------------------------------------------------
Ran 3 tests in 0.012s

PASSED (successes=3)
"""

SKIPPED_LOG = """\
tests.test_tls
  ALPNTests
    test_h2 ...                                                       [SKIPPED]
    test_http11 ...                                                   [SKIPPED]
  ListenTests
    test_tcp6 ...                                                     [SKIPPED]
    test_tcp4 ...                                                          [OK]

===============================================================================
[SKIPPED]
twisted.web has no HTTP/2 here (install h2 and priority)

tests.test_tls.ALPNTests.test_h2
tests.test_tls.ALPNTests.test_http11
===============================================================================
[SKIPPED]
this machine has no IPv6 loopback (::1)

tests.test_tls.ListenTests.test_tcp6
-------------------------------------------------------------------------------
Ran 4 tests in 1.500s

PASSED (skips=3, successes=1)
"""


class ParseRunTests(SynchronousTestCase):
    """
    L{parseRun} counts one run by its exit status and the end of its output.
    """

    def test_passed(self) -> None:
        """
        A run that exits 0 after C{PASSED (successes=3)} counts 3 passed.
        """
        result = parseRun("run", 0, PASSED_LOG)
        self.assertEqual((result.passed, result.failed, result.skipped, result.problems), (3, 0, [], []))

    def test_failed(self) -> None:
        """
        Failures, errors and unexpected successes count as failed; expected
        failures as passed.
        """
        log = PASSED_LOG.replace(
            "PASSED (successes=3)",
            "FAILED (expectedFailures=1, failures=1, errors=2, unexpectedSuccesses=1, successes=2)",
        ).replace("Ran 3 tests", "Ran 7 tests")
        result = parseRun("run", 1, log)
        self.assertEqual((result.passed, result.failed, result.problems), (3, 4, []))

    def test_passedThenCrashed(self) -> None:
        """
        A C{PASSED} summary followed by the output of a crash (a nested run's
        summary printed before a segmentation fault) is no summary: the run
        counts as failed, and the report says it crashed.
        """
        log = PASSED_LOG + (
            "Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f (most recent call first):\n"
        )
        result = parseRun("pure Python", 139, log)
        self.assertEqual((result.passed, result.failed), (0, 1))
        self.assertEqual(
            result.problems,
            ["pure Python: exit status 139 (killed by SIGSEGV) and no trial summary at the end of its output "
             "(did it crash?); its last line: Current thread 0x00007f (most recent call first):"],
        )

    def test_noOutput(self) -> None:
        """
        A run that printed nothing counts as failed, whatever its exit
        status.
        """
        result = parseRun("run", 0, "")
        self.assertEqual((result.passed, result.failed), (0, 1))
        self.assertIn("no trial summary", result.problems[0])

    def test_noTests(self) -> None:
        """
        A run of no tests at all (trial's bare C{PASSED}) counts as failed.
        """
        result = parseRun("run", 0, "\n" + "-" * 79 + "\n\nPASSED\n")
        self.assertEqual((result.passed, result.failed, result.problems), (0, 1, ["run: ran no tests"]))

    def test_summaryWithoutRanLine(self) -> None:
        """
        A C{PASSED} line that does not follow trial's C{Ran N tests} line
        (a test's own output, with the run killed after it) is no summary.
        """
        result = parseRun("run", 0, "    test_b ...\nPASSED (successes=3)\n")
        self.assertEqual((result.passed, result.failed), (0, 1))

    def test_passedWithNonZeroStatus(self) -> None:
        """
        A C{PASSED} summary with a non-zero exit status (trial died after
        printing it) counts as failed.
        """
        result = parseRun("run", 139, PASSED_LOG)
        self.assertEqual((result.passed, result.failed), (3, 1))
        self.assertEqual(result.problems, ["run: exit status 139 (killed by SIGSEGV) after PASSED"])

    def test_countsDoNotAddUp(self) -> None:
        """
        A summary whose counts do not add up to the tests trial says it ran
        counts as failed.
        """
        result = parseRun("run", 0, PASSED_LOG.replace("Ran 3 tests", "Ran 5 tests"))
        self.assertEqual((result.passed, result.failed), (3, 1))
        self.assertEqual(result.problems, ["run: ran 5 tests but its summary counts 3"])

    def test_skippedListed(self) -> None:
        """
        Each skipped test is listed with its reason.
        """
        result = parseRun("run", 0, SKIPPED_LOG)
        self.assertEqual((result.passed, result.failed, result.problems), (1, 0, []))
        self.assertEqual(
            result.skipped,
            [
                ("tests.test_tls.ALPNTests.test_h2", "twisted.web has no HTTP/2 here (install h2 and priority)"),
                ("tests.test_tls.ALPNTests.test_http11", "twisted.web has no HTTP/2 here (install h2 and priority)"),
                ("tests.test_tls.ListenTests.test_tcp6", "this machine has no IPv6 loopback (::1)"),
            ],
        )


class ReportTests(SynchronousTestCase):
    """
    L{report} adds the runs up into one last line and an exit status.
    """

    def test_allPassed(self) -> None:
        """
        The last line is C{N passed, 0 failed} and the status 0 when every
        run passed.
        """
        lines, status = report([RunResult("a", passed=3), RunResult("b", passed=4)], noSkips=True)
        self.assertEqual((lines, status), (["7 passed, 0 failed"], 0))

    def test_crashedRun(self) -> None:
        """
        A run without a summary makes the total fail, and its problem is
        printed before the last line.
        """
        results = [parseRun("a", 0, PASSED_LOG), parseRun("b", 139, "    test_b ...\n")]
        lines, status = report(results, noSkips=True)
        self.assertEqual(lines[-1], "3 passed, 1 failed")
        self.assertTrue(lines[0].startswith("FAILED: b: exit status 139 (killed by SIGSEGV) and no trial summary"))
        self.assertEqual(status, 1)

    def test_skipsFail(self) -> None:
        """
        With C{noSkips}, every skipped test is listed and counts as failed.
        """
        lines, status = report([parseRun("a", 0, SKIPPED_LOG)], noSkips=True)
        self.assertEqual(
            lines,
            [
                "SKIPPED: 3 tests (each counts as failed: no test may skip here):",
                "  [a] tests.test_tls.ALPNTests.test_h2: twisted.web has no HTTP/2 here (install h2 and priority)",
                "  [a] tests.test_tls.ALPNTests.test_http11: twisted.web has no HTTP/2 here (install h2 and priority)",
                "  [a] tests.test_tls.ListenTests.test_tcp6: this machine has no IPv6 loopback (::1)",
                "1 passed, 3 failed, 3 skipped",
            ],
        )
        self.assertEqual(status, 1)

    def test_skipsAllowed(self) -> None:
        """
        Without C{noSkips}, skipped tests are listed and counted, but don't
        fail the run.
        """
        lines, status = report([parseRun("a", 0, SKIPPED_LOG)], noSkips=False)
        self.assertEqual(lines[0], "SKIPPED: 3 tests (not counted as failed):")
        self.assertEqual((lines[-1], status), ("1 passed, 0 failed, 3 skipped", 0))


class RealTrialTests(SynchronousTestCase):
    """
    The summary of real trial runs, each in a child process, as
    C{run-tests.sh} runs them.
    """

    def trial(self, source: str) -> tuple[int, str]:
        """
        Run trial on a test module made of C{source}.

        @return: trial's exit status, as the shell reports it, and its
            output.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with open(os.path.join(directory, "test_made.py"), "w") as f:
            f.write(textwrap.dedent(source))
        done = subprocess.run(
            [sys.executable, "-m", "twisted.trial", "--temp-directory", os.path.join(directory, "_trial_temp"),
             "test_made"],
            cwd=directory, env=dict(os.environ, PYTHONPATH=directory), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=120,
        )
        status = done.returncode if done.returncode >= 0 else 128 - done.returncode
        return status, done.stdout.decode("utf-8", "replace")

    def summary(self, status: int, output: str, noSkips: bool) -> tuple[list[str], int]:
        """
        @return: the lines C{python -m tests.trialsummary} prints for one
            run, and its exit status.
        """
        log = os.path.abspath(self.mktemp())
        with open(log, "w") as f:
            f.write(output)
        env = {k: v for k, v in os.environ.items() if k != "WSPROTO_TW_NO_SKIPS"}
        if noSkips:
            env["WSPROTO_TW_NO_SKIPS"] = "1"
        done = subprocess.run(
            [sys.executable, "-m", "tests.trialsummary", "--run", "made", str(status), log],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
        )
        return done.stdout.decode().splitlines(), done.returncode

    def test_segmentationFault(self) -> None:
        """
        A test that kills trial with SIGSEGV, after printing what looks like
        a passing summary, fails the run.
        """
        status, output = self.trial(
            """
            import os, signal
            from twisted.trial.unittest import SynchronousTestCase

            class T(SynchronousTestCase):
                def test_a(self):
                    pass

                def test_b(self):
                    print("\\nRan 3 tests in 0.1s\\n\\nPASSED (successes=3)", flush=True)
                    os.kill(os.getpid(), signal.SIGSEGV)
            """
        )
        self.assertEqual(status, 139, output)
        lines, code = self.summary(status, output, noSkips=True)
        self.assertEqual(
            lines, ["FAILED: made: exit status 139 (killed by SIGSEGV) after PASSED", "3 passed, 1 failed"]
        )
        self.assertEqual(code, 1)

    def test_skipsAndFailures(self) -> None:
        """
        A real run's failures and skips are counted, and its skipped tests
        listed with their reasons.
        """
        status, output = self.trial(
            """
            from twisted.trial.unittest import SynchronousTestCase

            class T(SynchronousTestCase):
                def test_passes(self):
                    pass

                def test_fails(self):
                    self.fail("no")

                def test_skips(self):
                    raise self.skipTest("no h2 here")

            class U(SynchronousTestCase):
                skip = "not on this machine"

                def test_skipped(self):
                    pass
            """
        )
        self.assertEqual(status, 1, output)
        lines, code = self.summary(status, output, noSkips=True)
        self.assertEqual(
            lines,
            [
                "SKIPPED: 2 tests (each counts as failed: no test may skip here):",
                "  [made] test_made.T.test_skips: no h2 here",
                "  [made] test_made.U.test_skipped: not on this machine",
                "1 passed, 3 failed, 2 skipped",
            ],
        )
        self.assertEqual(code, 1)

    def test_onlySkips(self) -> None:
        """
        A run where trial passes but a test skipped fails under
        C{WSPROTO_TW_NO_SKIPS}, and passes without it.
        """
        status, output = self.trial(
            """
            from twisted.trial.unittest import SynchronousTestCase

            class T(SynchronousTestCase):
                def test_passes(self):
                    pass

                def test_skips(self):
                    raise self.skipTest("no h2 here")
            """
        )
        self.assertEqual(status, 0, output)
        self.assertEqual(self.summary(status, output, noSkips=True)[0][-1], "1 passed, 1 failed, 1 skipped")
        self.assertEqual(self.summary(status, output, noSkips=True)[1], 1)
        self.assertEqual(self.summary(status, output, noSkips=False), (
            ["SKIPPED: 1 tests (not counted as failed):", "  [made] test_made.T.test_skips: no h2 here",
             "1 passed, 0 failed, 1 skipped"], 0))

    def test_emptyModule(self) -> None:
        """
        A real run that found no test fails.
        """
        status, output = self.trial("")
        self.assertEqual(status, 0, output)
        self.assertEqual(
            self.summary(status, output, noSkips=True), (["FAILED: made: ran no tests", "0 passed, 1 failed"], 1)
        )

    def test_mainWithoutRuns(self) -> None:
        """
        With no run to count, L{main} fails.
        """
        self.assertEqual(main([]), 1)
