# -*- test-case-name: tests.test_client -*-
"""
The Autobahn client testee: drives wsproto_tw's client through every case of
an Autobahn fuzzing server (C{kosoku -m fuzzingserver}, or the Autobahn
test suite's C{wstest -m fuzzingserver}).

    python -m wsproto_tw.testee ws://127.0.0.1:9001 --agent wsproto_tw

It asks C{/getCaseCount}, runs each C{/runCase?case=N&agent=NAME}, echoing
every message it receives, and ends with C{/updateReports?agent=NAME}, which
makes the server write its report.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.python import usage

from wsproto_tw.server import WebSocketApplication
from wsproto_tw.client import connect
from wsproto_tw.core.config import Config
from wsproto_tw.options import ConfigOptions

__all__ = ["EchoClient", "Options", "defaultConfig", "main", "runTestee"]


class Options(ConfigOptions):
    """
    The options of C{python -m wsproto_tw.testee}: the shared limits,
    timeouts, keepalive, subprotocol and compression options of
    L{ConfigOptions}, with the testee's own defaults, and the run's.
    """

    synopsis = "Usage: python -m wsproto_tw.testee [options] [URL]"
    longdesc = (
        "Run wsproto_tw's client through an Autobahn fuzzing server's cases "
        "(URL: the fuzzing server, default ws://127.0.0.1:9001). "
        "0 turns a limit or timeout off (--close-timeout and --max-write-buffer must be positive)."
    )
    # Messages up to 64 MiB (the 9.* cases send 16 MiB), and no keepalive
    # pings (they would show up in the case reports).
    configDefaults = {
        "max-message-size": 64 << 20,
        "ping-interval": 0,
        "ping-timeout": 0,
        "max-write-buffer": 128 << 20,
    }
    optFlags = [["quiet", None, "No line per case."]]
    optParameters = [["agent", None, "wsproto_tw", "Agent name in the reports."]]

    def parseArgs(self, url: str = "ws://127.0.0.1:9001") -> None:
        self["url"] = url


def defaultConfig(compression: Any = None) -> Config:
    """
    The testee's configuration: that of its options' defaults (messages up
    to 64 MiB, no keepalive pings), with C{compression}.

    @param compression: a C{PerMessageDeflate} policy, or L{None}.
    """
    options = Options()
    options.parseOptions([])
    return replace(options.config(), compression=compression)


class EchoClient(WebSocketApplication):
    """
    Sends every message back as it came; fires C{closed} with the
    L{ConnectionClosed <wsproto_tw.errors.ConnectionClosed>} when the
    connection ends, and collects the text messages in C{texts}.
    """

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.texts: list[str] = []
        self.closed: Deferred = Deferred()
        self.closedWith: Any = None

    def textMessageReceived(self, text: str) -> None:
        if self.echo:
            self.transport.sendText(text)
        else:
            self.texts.append(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        if self.echo:
            self.transport.sendBinary(data)

    def connectionLost(self, reason: Any) -> None:
        self.closedWith = reason.value
        self.closed.callback(reason.value)


@inlineCallbacks
def _session(url: str, reactor: Any, config: Config, echo: bool) -> Any:
    """
    Run one connection to its end.

    @return: a L{Deferred} firing with the L{EchoClient} once its connection
        has closed, or failing if it could not be opened.
    """
    app = EchoClient(echo)
    yield connect(url, lambda: app, config=config, reactor=reactor)
    yield app.closed
    return app


@inlineCallbacks
def runTestee(
    url: str,
    agent: str,
    reactor: Any = None,
    config: Config | None = None,
    log: Any = None,
) -> Any:
    """
    Run every case of the Autobahn fuzzing server at C{url}.

    @param url: the fuzzing server's base URL, e.g. C{"ws://127.0.0.1:9001"}.
    @param agent: the name the report files carry.
    @param reactor: the reactor; the global one by default.
    @param config: the client configuration; L{defaultConfig} by default.
    @param log: called with one line of progress per case, if given.
    @return: a L{Deferred} firing with the number of cases run once the
        server has written its reports; it fails if the server can't be
        reached or does not report the case count. A case whose connection
        can't be opened is left to the server's verdict.
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    if config is None:
        config = defaultConfig()
    base = url.rstrip("/")
    name = quote(agent, safe="")
    # The control connections need none of the cases' limits.
    control = Config(ping_interval=None, ping_timeout=None)
    app = yield _session(f"{base}/getCaseCount", reactor, control, echo=False)
    if not app.texts or not app.texts[0].strip().isdigit():
        raise ValueError(f"no case count from {base}/getCaseCount: {app.texts!r}")
    count = int(app.texts[0])
    for case in range(1, count + 1):
        started = time.monotonic()
        try:
            caseApp = yield _session(f"{base}/runCase?case={case}&agent={name}", reactor, config, echo=True)
            outcome = f"closed {caseApp.closedWith.code}"
        except Exception as exc:
            outcome = f"not opened: {exc}"
        if log is not None:
            log(f"case {case}/{count}: {outcome} in {time.monotonic() - started:.2f}s")
    yield _session(f"{base}/updateReports?agent={name}", reactor, control, echo=False)
    return count


def _compression() -> Any:
    """
    @return: the permessage-deflate policy the C{--compression} flag selects.
    @raise SystemExit: this installation has no permessage-deflate support.
    """
    try:
        from wsproto_tw.core.deflate import PerMessageDeflate
    except ImportError:
        raise SystemExit(
            "error: --compression needs permessage-deflate support "
            "(wsproto_tw.core.deflate), which this installation lacks"
        ) from None
    return PerMessageDeflate()


def main(argv: list[str] | None = None) -> int:
    """
    The C{python -m wsproto_tw.testee} command.

    @return: the exit status: 0 once the server has its reports, 1 if the
        run could not be completed.
    @raise SystemExit: the arguments are wrong (with the message).
    """
    options = Options()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
        config = options.config()
    except usage.UsageError as exc:
        raise SystemExit(f"{options.synopsis}\nerror: {exc}") from None

    from twisted.internet import reactor

    outcome: dict[str, Any] = {}
    started = time.monotonic()

    def report(line: str) -> None:
        print(line, flush=True)

    def finished(result: Any) -> None:
        outcome["result"] = result
        reactor.stop()

    def start() -> None:
        d = runTestee(options["url"], options["agent"], reactor, config, None if options["quiet"] else report)
        d.addBoth(finished)

    reactor.callWhenRunning(start)
    reactor.run()
    result = outcome.get("result")
    if not isinstance(result, int):
        error = getattr(result, "value", result)
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"ran {result} cases in {time.monotonic() - started:.1f}s; reports written by the server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
