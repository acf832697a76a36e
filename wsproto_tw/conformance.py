# -*- test-case-name: tests.test_conformance -*-
"""
C{wsproto-tw-conformance}: run the Autobahn TestSuite case files (through the
C{kosoku} package) against wsproto_tw, write the HTML and JSON report, and
print a summary by case group and behavior.

Two modes:

  - C{server} (the default): the fuzzing client drives a server. Without
    C{--url} the command starts C{twistd -n websocket} itself on a free
    loopback port, configured for reading the report (see L{SERVER_OPTIONS}),
    and stops it afterwards; with C{--url} it tests a server that is already
    running.
  - C{client}: the fuzzing server listens on a free loopback port and the
    command runs C{python -m wsproto_tw.testee} against it.

The exit status is 0 only if every case is strictly OK, or INFORMATIONAL
where the suite itself marks the outcome so (7.1.6, 7.13.1 and 7.13.2);
NON-STRICT, FAILED, UNIMPLEMENTED, ERROR and missing cases are failures and
are listed by case id.

This module runs on asyncio because C{kosoku} does; the WebSocket peers under
test run in their own processes, on Twisted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Options given to C{twistd websocket} in server mode, chosen so that the
#: report reads as the RFC intends: the 9.* cases send messages of up to
#: 16 MiB, which the default 1 MiB limit would rightly refuse with 1009;
#: and no keepalive pings, which no case expects: on a busy machine a case
#: can outlast the 20 s ping interval, and the fuzzing client then judges
#: it by a ping it did not ask for (the client testee is run the same way).
SERVER_OPTIONS = ("--max-message-size", "16777216", "--ping-interval", "0")

#: The C{twistd websocket} switch that turns permessage-deflate on.
SERVER_COMPRESSION_OPTION = "--compression"

#: The cases that need permessage-deflate (RFC 7692): left out of the
#: default selection unless C{--compression} is given.
COMPRESSION_CASES = ("12.*", "13.*")

#: Autobahn's names of the case groups.
GROUPS = {
    "1": "Framing",
    "2": "Pings/Pongs",
    "3": "Reserved Bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 Handling",
    "7": "Close Handling",
    "9": "Limits/Performance",
    "10": "Misc",
    "12": "Compression (payloads)",
    "13": "Compression (parameters)",
}

BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED", "ERROR")

#: Outcomes a case may have and still pass: strictly OK, or INFORMATIONAL
#: where the suite defines the case (or its closing behavior) as such.
ACCEPTED = frozenset({"OK", "INFORMATIONAL"})

_STARTED = re.compile(r"starting on (\d+)")
# A WebSocket opened, in twistd websocket's log: the fuzzing client opens
# one per case.
_OPENED = re.compile(r"\bopened \S+ /")
# A case run, in the client testee's output.
_CASE_RUN = re.compile(r"^case (\d+)/(\d+):")


class RunError(Exception):
    """
    The run could not be completed: the testee did not start, crashed, or
    the run timed out.
    """


@dataclass
class Outcome:
    """
    One case's verdict.

    @ivar caseId: e.g. C{"7.1.6"}.
    @ivar behavior: one of L{BEHAVIORS}.
    @ivar behaviorClose: the closing handshake's verdict, e.g. C{"OK"} or
        C{"WRONG CODE"}.
    @ivar result: the suite's explanation of C{behavior}.
    """

    caseId: str
    behavior: str
    behaviorClose: str
    result: str = ""

    @property
    def passed(self) -> bool:
        return self.behavior in ACCEPTED and self.behaviorClose in ACCEPTED


@dataclass
class Run:
    """
    Everything the summary reports about one run.
    """

    mode: str
    testee: str
    url: str
    include: list[str]
    exclude: list[str]
    outdir: Path
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


def caseKey(caseId: str) -> tuple[int, ...]:
    """
    @return: a sort key ordering case ids numerically (1.2.10 after 1.2.9).
    """
    return tuple(int(part) if part.isdigit() else 0 for part in caseId.split("."))


def selection(include: Sequence[str], exclude: Sequence[str], compression: bool) -> tuple[list[str], list[str]]:
    """
    The cases to run: C{include} (everything when empty) minus C{exclude};
    without C{compression} and an explicit C{include}, the compression cases
    are left out.
    """
    include, exclude = list(include), list(exclude)
    if not include and not compression:
        exclude += [c for c in COMPRESSION_CASES if c not in exclude]
    return include, exclude


def failures(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """
    @return: the outcomes that make the run fail.
    """
    return [o for o in outcomes if not o.passed]


def summarize(run: Run) -> str:
    """
    @return: the human-readable summary of C{run}: counts by group and
        behavior, the closing-handshake verdicts, the failed cases, the
        testee's options and the wall time.
    """
    lines = []
    outcomes = sorted(run.outcomes, key=lambda o: caseKey(o.caseId))
    lines.append(f"wsproto_tw conformance, {run.mode} mode: {len(outcomes)} cases")
    lines.append(f"testee:    {run.testee}")
    lines.append(f"url:       {run.url}")
    lines.append(
        "selection: include " + (" ".join(run.include) or "all")
        + ("; exclude " + " ".join(run.exclude) if run.exclude else "")
    )
    lines.append(f"report:    {run.outdir / 'index.html'} (JSON: {run.outdir / 'index.json'})")
    lines.append("")
    width = max(len(c) for c in BEHAVIORS) + 2
    header = f"{'group':<28}{'cases':>6}" + "".join(f"{c:>{width}}" for c in BEHAVIORS) + "  behaviorClose"
    lines.append(header)
    lines.append("-" * len(header))
    byGroup: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        byGroup.setdefault(outcome.caseId.split(".")[0], []).append(outcome)

    def row(name: str, group: list[Outcome]) -> str:
        counts = Counter(o.behavior for o in group)
        closes = Counter(o.behaviorClose for o in group)
        return (
            f"{name:<28}{len(group):>6}"
            + "".join(f"{counts.get(c, 0):>{width}}" for c in BEHAVIORS)
            + "  "
            + ", ".join(f"{k} {v}" for k, v in sorted(closes.items()))
        )

    for group in sorted(byGroup, key=lambda g: caseKey(g)):
        lines.append(row(f"{group}.* {GROUPS.get(group, '')}", byGroup[group]))
    lines.append("-" * len(header))
    lines.append(row("total", outcomes))
    informational = [o.caseId for o in outcomes if o.passed and "INFORMATIONAL" in (o.behavior, o.behaviorClose)]
    if informational:
        lines.append("INFORMATIONAL (as the suite defines them): " + ", ".join(informational))
    failed = failures(outcomes)
    lines.append("")
    if failed:
        lines.append(f"FAILED: {len(failed)} case(s) not OK:")
        for o in failed:
            detail = f" - {o.result}" if o.result else ""
            lines.append(f"  {o.caseId}: behavior={o.behavior} behaviorClose={o.behaviorClose}{detail}")
    for problem in run.problems:
        lines.append(f"ERROR: {problem}")
    verdict = "PASSED" if outcomes and not failed and not run.problems else "FAILED"
    strict = sum(1 for o in outcomes if o.behavior == o.behaviorClose == "OK")
    lines.append(
        f"{verdict}: {strict} OK, {len(informational)} INFORMATIONAL, "
        f"{len(failed)} not OK, of {len(outcomes)} cases; wall time {run.seconds:.1f} s"
    )
    return "\n".join(lines)


# -- running the suite ---------------------------------------------------


def _outcomes(results: Sequence[Any]) -> list[Outcome]:
    outcomes = [
        Outcome(r.case_id, r.behavior.value, r.behavior_close.value)
        for r in results
    ]
    for outcome, r in zip(outcomes, results):
        if not outcome.behavior == outcome.behaviorClose == "OK":
            outcome.result = " ".join(filter(None, (r.result, r.result_close)))
    return outcomes


def _clearReports(outdir: Path) -> None:
    """
    Remove the report files a previous run left in C{outdir}, so the folder
    holds one run's report.
    """
    if not outdir.is_dir():
        return
    for path in outdir.iterdir():
        if path.is_file() and (path.name.startswith("index.") or "_case_" in path.name):
            path.unlink()


class _Process:
    """
    A child process whose output goes to a log file, and whose first line
    matching a pattern can be awaited.
    """

    def __init__(self, argv: list[str], log: Path, onLine: Callable[[str], None] | None = None) -> None:
        self.argv = argv
        self.log = log
        self.onLine = onLine
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task | None = None
        self._waiters: list[tuple[re.Pattern, asyncio.Future]] = []

    async def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self._pump = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with open(self.log, "wb") as log:
            async for line in self.proc.stdout:
                log.write(line)
                log.flush()
                text = line.decode("utf-8", "replace")
                if self.onLine is not None:
                    self.onLine(text)
                for pattern, waiter in list(self._waiters):
                    match = pattern.search(text)
                    if match and not waiter.done():
                        waiter.set_result(match)
                        self._waiters.remove((pattern, waiter))
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RunError(f"{self.argv[0]} exited before printing what was expected"))

    async def waitFor(self, pattern: re.Pattern, timeout: float) -> re.Match:
        if self._pump is None or self._pump.done():
            raise RunError(f"{self.argv[0]} is not running")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((pattern, waiter))
        return await asyncio.wait_for(waiter, timeout)

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._pump is not None:
            await self._pump
        return code

    async def stop(self, grace: float = 15.0) -> int | None:
        """
        Ask the process to stop (SIGTERM), and kill it if it has not within
        C{grace} seconds.
        """
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        return await self.wait()

    def tail(self, lines: int = 10) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Progress:
    """
    Where a run is, said every C{interval} seconds on standard error
    (C{57 of 216 cases done after 2 min 10 s}), so that a long run is not
    silent. The count comes from the testee's output: the WebSockets
    twistd logs as opened, but the last (server), the cases the client
    testee reports as run (client). It changes no verdict.

    @ivar done: how many cases are done.
    @ivar total: how many cases were selected, if known.
    """

    def __init__(self, label: str, interval: float, write: Callable[[str], None] | None = None) -> None:
        """
        @param label: what runs, e.g. C{server --compression}.
        @param interval: seconds between lines; 0 for none.
        @param write: writes one line; to standard error by default.
        """
        self.label = label
        self.interval = interval
        self.done = 0
        self.total: int | None = None
        self._opened = 0
        self._write = write or _writeError
        self._started = time.monotonic()
        self._task: asyncio.Task | None = None

    def serverLine(self, text: str) -> None:
        """
        Count a line of twistd's log: each WebSocket opened after the first
        means the case before it is done.
        """
        if _OPENED.search(text):
            self._opened += 1
            self.done = self._opened - 1

    def testeeLine(self, text: str) -> None:
        """
        Read a line of the client testee's output: C{case N/COUNT: ...}.
        """
        match = _CASE_RUN.match(text)
        if match:
            self.done = max(self.done, int(match.group(1)))
            self.total = self.total or int(match.group(2))

    def line(self) -> str:
        """
        @return: the progress line for now.
        """
        of = f" of {self.total}" if self.total else ""
        elapsed = _duration(time.monotonic() - self._started)
        return f"wsproto-tw-conformance {self.label}: {self.done}{of} cases done after {elapsed}"

    def start(self) -> None:
        """
        Start saying where the run is, every C{interval} seconds.
        """
        self._started = time.monotonic()
        if self.interval > 0:
            self._task = asyncio.ensure_future(self._report())

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._write(self.line())

    def stop(self) -> None:
        """
        Stop saying where the run is.
        """
        if self._task is not None:
            self._task.cancel()
            self._task = None


def _writeError(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    """
    @return: C{seconds} as C{42 s} or C{2 min 10 s}.
    """
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


async def _selectedCount(run: Run) -> int | None:
    """
    @return: how many cases the run's selection holds, as a fuzzing server
        counts them, or L{None} if that can't be had.
    """
    from kosoku import run_fuzzingserver

    try:
        async with run_fuzzingserver(run.include or None, run.exclude or None, host="127.0.0.1", port=0) as fuzzer:
            return await asyncio.wait_for(_caseCount(fuzzer.address, fuzzer.port), 30)
    except Exception:
        return None


def _twistdCommand() -> list[str]:
    script = Path(sys.executable).with_name("twistd")
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _testeeCommand() -> list[str]:
    return [sys.executable, "-m", "wsproto_tw.testee"]


async def _runServer(args: argparse.Namespace, run: Run, progress: Progress) -> list[Any]:
    from kosoku import FailureError, run_fuzzingclient

    server: _Process | None = None
    if progress.interval > 0:
        progress.total = await _selectedCount(run)
    if args.url is None:
        options = list(SERVER_OPTIONS)
        if args.compression:
            options.append(SERVER_COMPRESSION_OPTION)
        options += args.testee_arg
        argv = [
            *_twistdCommand(),
            "-n",
            "--pidfile=",
            "websocket",
            "--port",
            "tcp:0:interface=127.0.0.1",
            *options,
        ]
        run.testee = "twistd -n websocket --port tcp:0:interface=127.0.0.1 " + shlex.join(options)
        server = _Process(argv, run.outdir / "twistd.log", progress.serverLine)
        await server.start()
        try:
            port = int((await server.waitFor(_STARTED, args.startup_timeout)).group(1))
        except (asyncio.TimeoutError, RunError):
            await server.stop()
            raise RunError(f"twistd websocket did not start; its log ends with:\n{server.tail()}") from None
        run.url = f"ws://127.0.0.1:{port}"
    else:
        run.url = args.url
        run.testee = f"the server at {args.url} (its options are its own)"
    try:
        progress.start()
        try:
            return await asyncio.wait_for(
                run_fuzzingclient(run.url, run.include or None, run.exclude or None), args.timeout
            )
        except FailureError as failure:
            return failure.results
        except asyncio.TimeoutError:
            raise RunError(f"the cases did not finish within {args.timeout:g} s") from None
    finally:
        progress.stop()
        if server is not None:
            code = await server.stop()
            log = server.log.read_text(errors="replace")
            tracebacks = log.count("Traceback (most recent call last)")
            if tracebacks:
                run.problems.append(f"the server logged {tracebacks} traceback(s); see {server.log}")
            if code not in (0, -signal.SIGTERM):
                run.problems.append(f"twistd exited with status {code}; see {server.log}")


async def _caseCount(host: str, port: int) -> int:
    """
    Ask a fuzzing server how many cases it will serve, over a WebSocket
    connection driven by the sans-I/O core.
    """
    from wsproto_tw.core import ClientConnection, Config
    from wsproto_tw.core.events import ConnectionFailed, HandshakeFailure, TextMessage

    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(host, port)
    conn = ClientConnection(Config(ping_interval=None), host=f"{host}:{port}", target="/getCaseCount", now=loop.time())
    try:
        writer.write(conn.data_to_send())
        while True:
            data = await reader.read(65536)
            if data:
                conn.receive_data(data, now=loop.time())
            else:
                conn.receive_eof()
            for event in conn.events():
                if isinstance(event, TextMessage):
                    return int(event.text)
                if isinstance(event, (HandshakeFailure, ConnectionFailed)):
                    raise RunError(f"fuzzing server: {event}")
            writer.write(conn.data_to_send())
            if not data:
                raise RunError("fuzzing server closed the connection without a case count")
    finally:
        writer.close()


async def _runClient(args: argparse.Namespace, run: Run, progress: Progress) -> list[Any]:
    from kosoku import FailureError, run_fuzzingserver

    async with run_fuzzingserver(run.include or None, run.exclude or None, host="127.0.0.1", port=0) as fuzzer:
        run.url = f"ws://{fuzzer.address}:{fuzzer.port}"
        expected = await asyncio.wait_for(_caseCount(fuzzer.address, fuzzer.port), args.startup_timeout)
        options = ["--agent", args.agent]
        if args.compression:
            options.append("--compression")
        options += args.testee_arg
        run.testee = "python -m wsproto_tw.testee URL " + shlex.join(options)
        testee = _Process([*_testeeCommand(), run.url, *options], run.outdir / "testee.log", progress.testeeLine)
        progress.total = expected
        await testee.start()
        progress.start()
        result = asyncio.ensure_future(fuzzer.get_result())
        exited = asyncio.ensure_future(testee.wait())
        try:
            done, _ = await asyncio.wait({result, exited}, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
            if result not in done and exited in done:
                # The last case's result may be computed a moment after the
                # testee, having run it, exits.
                done, _ = await asyncio.wait({result}, timeout=5)
            if result not in done:
                if exited.done():
                    raise RunError(
                        f"the testee exited with status {exited.result()} before running every case; "
                        f"its log ends with:\n{testee.tail()}"
                    )
                raise RunError(f"the cases did not finish within {args.timeout:g} s")
            try:
                results = result.result()
            except FailureError as failure:
                results = failure.results
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), 10)
        finally:
            progress.stop()
            result.cancel()
            code = await testee.stop()
        if code != 0:
            run.problems.append(f"the testee exited with status {code}; see {testee.log}")
        if len(results) < expected:
            run.problems.append(f"{expected - len(results)} of the {expected} selected cases were never run")
        return results


async def _main(args: argparse.Namespace) -> int:
    include, exclude = selection(args.include, args.exclude, args.compression)
    outdir = Path(args.outdir or Path("reports") / ("servers" if args.mode == "server" else "clients"))
    outdir.mkdir(parents=True, exist_ok=True)
    _clearReports(outdir)
    run = Run(args.mode, "", "", include, exclude, outdir)
    started = time.monotonic()
    results: list[Any] = []
    label = args.mode + (" --compression" if args.compression else "")
    progress = Progress(label, args.progress)
    try:
        if args.mode == "server":
            results = await _runServer(args, run, progress)
        else:
            results = await _runClient(args, run, progress)
    except RunError as exc:
        run.problems.append(str(exc))
    except ValueError as exc:  # kosoku: a pattern that matches no case
        run.problems.append(str(exc))
    except OSError as exc:
        run.problems.append(f"could not run: {exc}")
    run.seconds = time.monotonic() - started
    if results:
        from kosoku._report import write_reports

        write_reports(results, str(outdir))
    run.outcomes = _outcomes(results)
    if not run.outcomes and not run.problems:
        run.problems.append("no case was run: check --include/--exclude")
    text = summarize(run)
    (outdir / "summary.txt").write_text(text + "\n")
    print(text, flush=True)
    return 0 if run.outcomes and not failures(run.outcomes) and not run.problems else 1


def parser() -> argparse.ArgumentParser:
    """
    @return: the command line parser of C{wsproto-tw-conformance}.
    """
    p = argparse.ArgumentParser(
        prog="wsproto-tw-conformance",
        description=(
            "Run the Autobahn TestSuite cases (kosoku) against wsproto_tw, write the HTML+JSON "
            "report and print a summary. Exit status 0 only if every case is OK (or INFORMATIONAL "
            "where the suite defines it so)."
        ),
    )
    p.add_argument(
        "mode",
        nargs="?",
        choices=("server", "client"),
        default="server",
        help="server: test a WebSocket server (default); client: test wsproto_tw's client",
    )
    p.add_argument(
        "--url",
        help="server mode: ws://host:port of a running server; default: start twistd websocket on a free loopback port",
    )
    p.add_argument(
        "-i", "--include", action="append", default=[], metavar="CASE",
        help="case id or glob to run, e.g. 1.1.1 or 9.* (repeatable; default: all but 12.* and 13.*, "
        "or all with --compression)",
    )
    p.add_argument(
        "-x", "--exclude", action="append", default=[], metavar="CASE",
        help="case id or glob to leave out (repeatable)",
    )
    p.add_argument("-o", "--outdir", help="report folder (default: reports/servers or reports/clients)")
    p.add_argument(
        "--compression", action="store_true",
        help="turn permessage-deflate on in the testee and include the 12.* and 13.* cases by default",
    )
    p.add_argument(
        "--testee-arg", "--server-arg", action="append", default=[], metavar="ARG",
        help="extra argument for the testee: twistd websocket (server) or wsproto_tw.testee (client); "
        "repeatable, e.g. --testee-arg=--ping-interval=0",
    )
    p.add_argument("--agent", default="wsproto_tw", help="client mode: the agent name in the report (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds the cases may take (default: %(default)g)")
    p.add_argument(
        "--progress", type=float, default=30.0, metavar="SECONDS",
        help="say which case is running on standard error every SECONDS (default: %(default)g; 0: never)",
    )
    p.add_argument(
        "--startup-timeout", type=float, default=30.0, help="seconds the testee may take to start (default: %(default)g)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """
    The C{wsproto-tw-conformance} command.
    """
    args = parser().parse_args(argv)
    if args.url is not None and args.mode != "server":
        parser().error("--url is for server mode")
    raise SystemExit(asyncio.run(_main(args)))


if __name__ == "__main__":
    main()
