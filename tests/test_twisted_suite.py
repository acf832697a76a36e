"""
Twisted's own tests of C{twisted.web.websocket}, run against the drop-in
L{wsproto_tw.websocket}.

The tests are those of the installed Twisted, in
C{twisted/web/test/test_websocket.py}: the file is read, its import of
C{twisted.web.websocket} is changed to C{wsproto_tw.websocket}, and it runs
under trial in a child process. One more line changes: the file skips its
tests when the C{wsproto} library, which Twisted's implementation is built
on, can't be imported; that check now imports C{wsproto_tw} instead. No
test of the file is changed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import wsproto_tw

#: The module of the installed Twisted whose tests are run.
TWISTED_TESTS = "twisted.web.test.test_websocket"

#: How many tests that file has, by Twisted version, counted in each
#: release's wheel (24.11.0, the oldest the package accepts, has no such
#: file). Another count means the file changed: look at what it tests now
#: before changing this; a new Twisted version must be added.
TEST_COUNTS = {"25.5.0": 9, "26.4.0": 9, "26.10.0": 14}

#: The name the adapted file is run under.
ADAPTED_MODULE = "twisted_websocket_tests"

_IMPORT = "from twisted.web.websocket import"
_GUARD = '__import__("wsproto")'
_SUMMARY = re.compile(r"^(PASSED|FAILED) \((.*)\)\s*$", re.M)
_RAN = re.compile(r"^Ran (\d+) tests? in ", re.M)


def twistedTestsSource() -> str:
    """
    @return: the source of L{TWISTED_TESTS} in the installed Twisted.
    @raise LookupError: the installed Twisted has no such file.
    """
    import twisted

    try:
        spec = importlib.util.find_spec(TWISTED_TESTS)
    except ImportError:
        spec = None
    if spec is None or spec.origin is None or not os.path.isfile(spec.origin):
        raise LookupError(
            f"the installed Twisted {twisted.__version__} has no twisted/web/test/test_websocket.py:"
            " its websocket tests can't be run against wsproto_tw.websocket"
        )
    return Path(spec.origin).read_text(encoding="utf-8")


def adapted(source: str) -> str:
    """
    Point Twisted's websocket tests at L{wsproto_tw.websocket}.

    @param source: the source of L{TWISTED_TESTS}.
    @return: C{source} with its import of C{twisted.web.websocket} and its
        check for the C{wsproto} library changed to name C{wsproto_tw}.
    @raise ValueError: C{source} does not have exactly one of each, or
        still imports C{twisted.web.websocket} in another way.
    """
    for old in (_IMPORT, _GUARD):
        count = source.count(old)
        if count != 1:
            raise ValueError(f"expected one {old!r} in the twisted tests, found {count}")
    source = source.replace(_IMPORT, "from wsproto_tw.websocket import")
    source = source.replace(_GUARD, '__import__("wsproto_tw")')
    other = re.search(
        r"^\s*(import\s+twisted\.web\.websocket|from\s+twisted\.web\s+import\s+.*\bwebsocket\b"
        r"|from\s+twisted\.web\._?websocket\w*\s+import)",
        source,
        re.M,
    )
    if other is not None:
        raise ValueError(f"the twisted tests import twisted's websocket another way: {other.group(0).strip()!r}")
    return source


def summary(output: str) -> tuple[str, dict[str, int], int] | None:
    """
    Read trial's final summary.

    @param output: what C{python -m twisted.trial} printed.
    @return: the verdict (C{"PASSED"} or C{"FAILED"}), the counts by kind
        (C{successes}, C{failures}, C{errors}, C{skips} ...) and the number
        of tests run; or L{None} if the output has no summary.
    """
    verdicts = _SUMMARY.findall(output)
    ran = _RAN.findall(output)
    if not verdicts or not ran:
        return None
    verdict, counts = verdicts[-1]
    return verdict, {kind: int(n) for kind, n in re.findall(r"(\w+)=(\d+)", counts)}, int(ran[-1])


class AdaptedTests(SynchronousTestCase):
    """
    L{adapted} changes the import and the library check, and refuses a file
    it does not recognise.
    """

    sample = (
        "try:\n"
        '    __import__("wsproto")\n'
        "except ImportError:\n"
        "    shouldSkip = True\n"
        "else:\n"
        "    from twisted.web.websocket import (\n"
        "        WebSocketResource,\n"
        "    )\n"
    )

    def test_changesImportAndCheck(self) -> None:
        """
        The import names L{wsproto_tw.websocket} and the check imports
        C{wsproto_tw}; nothing else changes.
        """
        self.assertEqual(
            adapted(self.sample),
            self.sample.replace("twisted.web.websocket", "wsproto_tw.websocket").replace(
                '"wsproto"', '"wsproto_tw"'
            ),
        )

    def test_missingImport(self) -> None:
        """
        A file without the import is refused: its tests would not exercise
        the drop-in.
        """
        source = self.sample.replace(_IMPORT, "from somewhere.else import")
        with self.assertRaises(ValueError) as raised:
            adapted(source)
        self.assertIn("from twisted.web.websocket import", str(raised.exception))

    def test_otherImport(self) -> None:
        """
        A file that also imports Twisted's implementation another way is
        refused.
        """
        for line in (
            "import twisted.web.websocket\n",
            "from twisted.web import server, websocket\n",
            "from twisted.web._websocket_impl import WebSocketResource\n",
        ):
            with self.assertRaises(ValueError, msg=line):
                adapted(self.sample + line)


class SummaryTests(SynchronousTestCase):
    """
    L{summary} reads trial's last lines.
    """

    def test_passed(self) -> None:
        """
        A passing run gives its verdict, counts and number of tests.
        """
        output = "...\n---\nRan 14 tests in 0.027s\n\nPASSED (successes=14)\n"
        self.assertEqual(summary(output), ("PASSED", {"successes": 14}, 14))

    def test_failed(self) -> None:
        """
        A failing run counts its failures, errors and skips.
        """
        output = "Ran 14 tests in 0.1s\n\nFAILED (failures=3, skips=1, successes=10)\n"
        self.assertEqual(summary(output), ("FAILED", {"failures": 3, "skips": 1, "successes": 10}, 14))

    def test_noSummary(self) -> None:
        """
        Output without a summary (the run crashed or hung) gives L{None}.
        """
        self.assertIsNone(summary("Traceback (most recent call last):\n  ...\nImportError: boom\n"))
        self.assertIsNone(summary("PASSED (successes=14)\n"))


class TwistedWebSocketTests(SynchronousTestCase):
    """
    Twisted's own websocket tests pass against the drop-in.
    """

    #: Seconds the child trial run may take (it takes about two).
    runTimeout = 300

    def test_allPass(self) -> None:
        """
        Every test of the installed Twisted's
        C{twisted/web/test/test_websocket.py} passes against
        L{wsproto_tw.websocket}: as many successes as L{TEST_COUNTS} gives
        for that Twisted, and no failure, error or skip.
        """
        import twisted

        try:
            source = twistedTestsSource()
        except LookupError as exc:
            self.fail(str(exc))
        expected = TEST_COUNTS.get(twisted.__version__)
        if expected is None:
            self.fail(
                f"how many tests twisted/web/test/test_websocket.py has in Twisted {twisted.__version__}"
                " is not known: check what it tests, then add its count to TEST_COUNTS"
            )
        directory = Path(self.mktemp())
        directory.mkdir(parents=True)
        (directory / f"{ADAPTED_MODULE}.py").write_text(adapted(source), encoding="utf-8")
        project = str(Path(wsproto_tw.__file__).resolve().parent.parent)
        path = os.pathsep.join([str(directory), project, os.environ.get("PYTHONPATH", "")])
        argv = [
            sys.executable,
            "-m",
            "twisted.trial",
            f"--temp-directory={directory / '_trial_temp'}",
            ADAPTED_MODULE,
        ]
        try:
            done = subprocess.run(
                argv,
                cwd=directory,
                env=dict(os.environ, PYTHONPATH=path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=self.runTimeout,
            )
        except subprocess.TimeoutExpired as exc:
            output = (exc.output or b"").decode("utf-8", "replace")
            self.fail(f"twisted's websocket tests did not finish within {self.runTimeout} s:\n{output}")
        output = done.stdout.decode("utf-8", "replace")
        result = summary(output)
        if result is None:
            self.fail(f"trial printed no summary (exit status {done.returncode}):\n{output}")
        verdict, counts, ran = result
        self.assertEqual(
            (verdict, counts, ran, done.returncode),
            ("PASSED", {"successes": expected}, expected, 0),
            f"twisted's websocket tests against wsproto_tw.websocket:\n{output}",
        )
