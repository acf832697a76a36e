# -*- test-case-name: tests.test_metrics -*-
"""
Logging for servers: a level below which events are dropped before anything
formats them, and a choice of text or JSON lines, over C{twisted.logger}.

wsproto_tw's events are structured: their format fields (C{peer}, C{path},
C{code}, C{reason}, C{clean}, C{subprotocol}, C{duration}) are kept as
fields, so the JSON lines carry them by name (L{twisted.logger.eventAsJSON}).

What a log line costs is mostly its formatting: Twisted's formatter parses
each event's format string in Python (it allows calls in it) and formats
its time stamp anew. L{formatClassicText} writes the same lines several
times faster: the format goes to C{str.format_map}, and the time stamp is
formatted once a second. At C{warn}, the two C{info} lines of each
connection (opened, closed) are dropped by the first observer, unformatted,
after one set lookup. C{twistd websocket} logs through L{logObserver} by
default.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from string import Formatter
from time import time
from typing import IO, Any

from twisted.logger import (
    ILogObserver,
    Logger,
    LogLevel,
    formatEventAsClassicLogText,
    formatTime,
    jsonFileLogObserver,
)
from twisted.python import usage
from zope.interface import directlyProvides, implementer

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "FastLogger",
    "formatClassicText",
    "logFormat",
    "logLevel",
    "logObserver",
    "twistdLogFile",
]

#: The names C{--log-level} takes, most verbose first.
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")

#: The names C{--log-format} takes.
LOG_FORMATS = ("text", "json")


def logLevel(value: str) -> str:
    """
    Check a C{--log-level} value.

    @return: C{value}, lower case.
    @raise usage.UsageError: it names no level of L{LOG_LEVELS}.
    """
    name = value.lower()
    if name not in LOG_LEVELS:
        raise usage.UsageError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return name


def logFormat(value: str) -> str:
    """
    Check a C{--log-format} value.

    @return: C{value}, lower case.
    @raise usage.UsageError: it names no format of L{LOG_FORMATS}.
    """
    name = value.lower()
    if name not in LOG_FORMATS:
        raise usage.UsageError(f"--log-format must be text or json, not {value!r}")
    return name


_LOG_LEVELS = frozenset(LogLevel.iterconstants())


class FastLogger(Logger):
    """
    A L{Logger} whose events cost less to emit: L{Logger.emit} checks the
    level against a list of every level, sorted anew on each event; this
    checks it against a set. The events are the same.
    """

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: object) -> None:
        if level not in _LOG_LEVELS or "log_trace" in kwargs:
            Logger.emit(self, level, format, **kwargs)
            return
        kwargs["log_logger"] = self
        kwargs["log_level"] = level
        kwargs["log_namespace"] = self.namespace
        kwargs["log_source"] = self.source
        kwargs["log_format"] = format
        kwargs["log_time"] = time()
        self.observer(kwargs)

    def info(self, format: str | None = None, **kwargs: object) -> None:
        # emit(), inline: one call less per connection opened and closed.
        if "log_trace" in kwargs:
            Logger.emit(self, LogLevel.info, format, **kwargs)
            return
        kwargs["log_logger"] = self
        kwargs["log_level"] = LogLevel.info
        kwargs["log_namespace"] = self.namespace
        kwargs["log_source"] = self.source
        kwargs["log_format"] = format
        kwargs["log_time"] = time()
        self.observer(kwargs)


# The time stamp of the last second formatted: (whole second, text).
_lastStamp: list = [None, ""]

# Formats made into functions (see _compiled), by format string; False
# for one that is left to str.format_map. Bounded: once it holds
# _MAX_COMPILED formats, new ones are left to format_map, not made (a
# program that builds a new format for each event pays format_map's cost,
# not a compile's, past the first few hundred); so is a format longer
# than _MAX_FORMAT characters (making one costs more the longer it is).
_COMPILED: dict[str, Callable[[dict], str] | bool] = {}
_MAX_COMPILED = 256
_MAX_FORMAT = 512


def _compiled(format: str) -> Callable[[dict], str] | bool:
    """
    @return: a function of an event that gives what C{format.format_map}
        of it gives, or C{False} if C{format} is left to C{format_map}.
    """
    made = _COMPILED.get(format)
    if made is None:
        if len(_COMPILED) >= _MAX_COMPILED or len(format) > _MAX_FORMAT:
            return False
        made = _COMPILED[format] = _compile(format)
    return made


def _compile(format: str) -> Callable[[dict], str] | bool:
    """
    Make C{format} into an f-string over the event's fields:
    C{str.format_map} parses a format anew each time, an f-string's code
    is made once. Only formats whose replacement fields are plain names
    (no index, attribute or position), with any conversion and a format
    spec without nested fields, are made so; none of the format's text
    goes into the code (its parts are the function's constants).

    @return: the function, or C{False}.
    """
    try:
        parsed = list(Formatter().parse(format))
    except ValueError:
        return False
    code = []
    constants: dict[str, str] = {}
    for literal, name, spec, conversion in parsed:
        if literal:
            constants[f"_c{len(constants)}"] = literal
            code.append(f"{{_c{len(constants) - 1}}}")
        if name is None:
            continue
        if not name.isidentifier() or not name.isascii() or conversion not in (None, "r", "s", "a"):
            return False
        if spec and ("{" in spec or "}" in spec):
            return False
        constants[f"_c{len(constants)}"] = name
        field = f"e[_c{len(constants) - 1}]"
        if conversion:
            field += f"!{conversion}"
        if spec:
            constants[f"_c{len(constants)}"] = spec
            field += f":{{_c{len(constants) - 1}}}"
        code.append(f"{{{field}}}")
    defaults = "".join(f", {name}={name}" for name in constants)
    made = eval(f'lambda e{defaults}: f"{"".join(code)}"', {}, constants)
    return made  # type: ignore[no-any-return]


def formatClassicText(event: dict) -> str | None:
    """
    Format an event as twistd's log lines do
    (L{twisted.logger.formatEventAsClassicLogText}: C{"{time} [{system}]
    {text}\\n"}), faster: the format string is applied by
    C{str.format_map}, and the time stamp is formatted once a second. An
    event it can't format so (a traceback to add, a call in its format,
    flattened fields, a format that fails) goes to Twisted's formatter.

    @return: the line, or L{None} for an event without text.
    """
    format = event.get("log_format")
    if type(format) is not str or "log_failure" in event or "log_flattened" in event or "()" in format:
        return formatEventAsClassicLogText(event)
    made = _COMPILED.get(format)
    if made is None:
        made = _compiled(format)
    try:
        text = made(event) if made else format.format_map(event)
    except Exception:
        return formatEventAsClassicLogText(event)
    if not text:
        return None
    system = event.get("log_system")
    if system is None:
        level = event.get("log_level")
        system = f"{event.get('log_namespace', '-')}#{'-' if level is None else level.name}"
    elif type(system) is not str:
        return formatEventAsClassicLogText(event)
    when = event.get("log_time")
    if when is None:
        stamp = "-"
    else:
        second = int(when)
        cached = _lastStamp
        if cached[0] != second:
            # Whole seconds only (RFC 3339 without fractions), as Twisted's.
            cached[1] = formatTime(when)
            cached[0] = second
        stamp = cached[1]
    line = f"{stamp} [{system}] {text}"
    if "\n" in line:
        line = line.replace("\n", "\n\t")
    return line + "\n"


def _levelsFrom(level: str) -> frozenset[LogLevel]:
    """
    @return: the levels at C{level} (a name of L{LOG_LEVELS}) and above.
    """
    least = LogLevel.levelWithName(level)
    return frozenset(each for each in LogLevel.iterconstants() if each >= least)


@implementer(ILogObserver)
class _LevelFilter:
    """
    Pass on the events at a level and above (and with a namespace), as
    L{LogLevelFilterPredicate} in a L{FilteringLogObserver} would, with one
    set lookup: their comparison of levels costs microseconds an event.
    """

    __slots__ = ("_observer", "_levels")

    def __init__(self, observer: ILogObserver, level: str) -> None:
        self._observer = observer
        self._levels = _levelsFrom(level)

    def __call__(self, event: dict) -> None:
        if event.get("log_level") in self._levels and event.get("log_namespace"):
            self._observer(event)


def _textFileObserver(outFile: IO[Any], level: str = "debug") -> ILogObserver:
    """
    An observer that writes each event's L{formatClassicText} line to a
    file, and flushes it (what L{FileLogObserver} does, with one call less
    an event), for the events at a level and above (and with a namespace),
    as L{_LevelFilter} passes them on.

    It is a function that provides L{ILogObserver}, not an object with a
    C{__call__} method: the log publisher's call of it is then a plain
    Python function call, not a trip through the type's C{__call__} slot
    (a bound method made and called from C), about 1,700 instructions
    less a line.
    """
    write = outFile.write
    flush = outFile.flush
    levels = _levelsFrom(level)

    def observe(event: dict) -> None:
        if event.get("log_level") not in levels or not event.get("log_namespace"):
            return
        text = formatClassicText(event)
        if text:
            write(text)
            flush()

    directlyProvides(observe, ILogObserver)
    return observe


def logObserver(outFile: IO[Any], level: str = "info", format: str = "text") -> ILogObserver:
    """
    An observer writing events at C{level} and above to C{outFile}.

    @param level: a name of L{LOG_LEVELS}.
    @param format: C{"text"} (twistd's usual lines) or C{"json"}: one JSON
        object per line (L{twisted.logger.eventAsJSON}; C{log_time} in
        seconds since the epoch, C{log_level} as C{{"name": ..., ...}}, and
        the event's own fields by name).
    """
    if format == "json":
        return _LevelFilter(jsonFileLogObserver(outFile, recordSeparator=""), level)
    # The text observer filters too: one call less an event.
    return _textFileObserver(outFile, level)


def twistdLogFile(twistdOptions: Any) -> IO[Any] | None:
    """
    The file twistd would log to for its own options, as twistd chooses it:
    standard output with C{--logfile=-} or C{--nodaemon} and no log file,
    else C{--logfile} (C{twistd.log} by default), a L{LogFile} that
    rotates by size and on C{SIGUSR1}, as twistd's does.

    @param twistdOptions: twistd's options (a subcommand's C{parent}), or
        L{None}: standard output.
    @return: the file, or L{None} when twistd logs to syslog or through
        C{--logger} (left to it).
    """
    if twistdOptions is None:
        return sys.stdout
    if twistdOptions.get("syslog") or twistdOptions.get("logger"):
        return None
    name = twistdOptions.get("logfile") or ""
    if name == "-" or (not name and twistdOptions.get("nodaemon")):
        return sys.stdout
    from twisted.python.logfile import LogFile

    logFile = LogFile.fromFullPath(name or "twistd.log")
    import signal

    if not signal.getsignal(signal.SIGUSR1):
        # Unless something else took it: kill -USR1 rotates the log.
        def rotate(signum: int, frame: Any) -> None:
            from twisted.internet import reactor

            reactor.callFromThread(logFile.rotate)

        signal.signal(signal.SIGUSR1, rotate)
    return logFile
