"""
The last word of C{run-tests.sh}: one line over all its trial runs,
C{N passed, N failed} (C{, N skipped} if any), and an exit status that is 0
only when nothing failed.

A run counts only by what trial itself says at its very end: its exit status
and its final summary line (C{PASSED (...)} or C{FAILED (...)}, after the
C{Ran N tests} line). Anything else is a failure: a run that printed no such
summary (it crashed, or was killed), a run of no tests, a summary whose
counts don't add up to the tests it ran, or a non-zero exit status after a
C{PASSED}. A C{PASSED} earlier in the output (a nested trial run's, or one
printed before a segmentation fault) counts for nothing.

With C{WSPROTO_TW_NO_SKIPS=1} in the environment (C{run-tests.sh} sets it),
every skipped test is listed with its reason and counted as failed: in the
test command's own environment no test may skip.

Usage::

    python -m tests.trialsummary --run LABEL STATUS LOG [--run LABEL STATUS LOG ...]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from dataclasses import dataclass, field

__all__ = ["RunResult", "main", "parseRun", "report"]

#: The counts in trial's summary line that are passes.
_PASSES = ("successes", "expectedFailures")

#: The counts in trial's summary line that are failures.
_FAILURES = ("failures", "errors", "unexpectedSuccesses")

_SUMMARY = re.compile(r"(PASSED|FAILED) \(([a-zA-Z]+=\d+(?:, [a-zA-Z]+=\d+)*)\)")
_RAN = re.compile(r"Ran (\d+) tests? in \S+s")


@dataclass
class RunResult:
    """
    What one trial run counts for.

    @ivar label: the run's name, for messages.
    @ivar passed: tests that passed.
    @ivar failed: tests that failed, or 1 for a run without a usable summary.
    @ivar skipped: C{(test id, reason)} of each skipped test.
    @ivar problems: why the run counts as failed beyond its own failures.
    """

    label: str
    passed: int = 0
    failed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _skippedTests(lines: list[str]) -> list[tuple[str, str]]:
    """
    @return: C{(test id, reason)} for each test in trial's C{[SKIPPED]}
        sections, which read: a line of C{=}, C{[SKIPPED]}, the reason, a
        blank line, then the ids of the tests skipped for that reason.
    """
    skipped = []
    i = 0
    while i < len(lines):
        if lines[i] == "[SKIPPED]" and i > 0 and lines[i - 1].startswith("====="):
            i += 1
            reason = []
            while i < len(lines) and lines[i].strip():
                reason.append(lines[i].strip())
                i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("=====", "-----")):
                skipped.append((lines[i].strip(), " ".join(reason)))
                i += 1
        else:
            i += 1
    return skipped


def parseRun(label: str, status: int, output: str) -> RunResult:
    """
    Count one trial run by its exit status and the end of its output.

    @param label: the run's name, for messages.
    @param status: trial's exit status (as the shell reports it: 128 + N
        for a death by signal N).
    @param output: everything trial printed.
    """
    result = RunResult(label)
    exit = f"exit status {status}"
    if status > 128:
        try:
            exit += f" (killed by {signal.Signals(status - 128).name})"
        except ValueError:
            pass
    lines = output.splitlines()
    tail = [line.rstrip() for line in lines if line.strip()][-2:]
    summary = _SUMMARY.fullmatch(tail[-1]) if tail else None
    ran = _RAN.fullmatch(tail[0]) if len(tail) == 2 else None
    if tail and tail[-1] == "PASSED":
        # What trial prints when it found no test at all.
        result.failed = 1
        result.problems.append(f"{label}: ran no tests")
        return result
    if summary is None or ran is None:
        result.failed = 1
        last = tail[-1] if tail else "(no output)"
        result.problems.append(
            f"{label}: {exit} and no trial summary at the end of its output "
            f"(did it crash?); its last line: {last}"
        )
        return result
    counts = {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", summary.group(2))}
    result.passed = sum(counts.get(name, 0) for name in _PASSES)
    result.failed = sum(counts.get(name, 0) for name in _FAILURES)
    if sum(counts.values()) != int(ran.group(1)):
        result.failed = max(result.failed, 1)
        result.problems.append(f"{label}: ran {ran.group(1)} tests but its summary counts {sum(counts.values())}")
    if (status == 0) != (summary.group(1) == "PASSED"):
        result.failed = max(result.failed, 1)
        result.problems.append(f"{label}: {exit} after {summary.group(1)}")
    skipped = _skippedTests(lines)
    if len(skipped) != counts.get("skips", 0):
        # The count is trial's; the names are only for the listing.
        skipped += [("(a test not listed)", "")] * (counts.get("skips", 0) - len(skipped))
        skipped = skipped[: counts.get("skips", 0)]
    result.skipped = skipped
    return result


def report(results: list[RunResult], noSkips: bool) -> tuple[list[str], int]:
    """
    @param noSkips: count every skipped test as failed.
    @return: the lines to print, the last one C{N passed, N failed} (C{, N
        skipped} if any), and the exit status: 0 only if nothing failed.
    """
    lines = []
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    skipped = sum(len(r.skipped) for r in results)
    for r in results:
        for problem in r.problems:
            lines.append(f"FAILED: {problem}")
    if skipped:
        verdict = "each counts as failed: no test may skip here" if noSkips else "not counted as failed"
        lines.append(f"SKIPPED: {skipped} tests ({verdict}):")
        for r in results:
            for testId, reason in r.skipped:
                lines.append(f"  [{r.label}] {testId}: {reason}")
        if noSkips:
            failed += skipped
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    lines.append(line)
    return lines, 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.trialsummary", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", nargs=3, action="append", default=[], metavar=("LABEL", "STATUS", "LOG"),
        help="a trial run: its name, its exit status, the file holding its output",
    )
    args = parser.parse_args(argv)
    results = []
    for label, status, path in args.run:
        with open(path, encoding="utf-8", errors="replace") as f:
            output = f.read()
        results.append(parseRun(label, int(status), output))
    if not results:
        results.append(RunResult("(no run)", failed=1, problems=["no trial run to count"]))
    lines, code = report(results, bool(os.environ.get("WSPROTO_TW_NO_SKIPS")))
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
