# -*- test-case-name: tests.test_metrics -*-
"""
Logging for servers: a level below which events are dropped before anything
formats them, and a choice of text or JSON lines, over C{twisted.logger}.

wsproto_tw's events are structured: their format fields (C{peer}, C{path},
C{code}, C{reason}, C{clean}, C{subprotocol}, C{duration}) are kept as
fields, so the JSON lines carry them by name (L{twisted.logger.eventAsJSON}).

What a log line costs is mostly its formatting and the write and flush of
each line: at C{warn}, the two C{info} lines of each connection (opened,
closed) are dropped by the first observer, unformatted.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.python import usage

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "logFormat", "logLevel", "logObserver", "twistdLogFile"]

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
        observer = jsonFileLogObserver(outFile, recordSeparator="")
    else:
        observer = textFileLogObserver(outFile)
    return FilteringLogObserver(
        observer, [LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))]
    )


def twistdLogFile(twistdOptions: Any) -> IO[Any] | None:
    """
    The file twistd would log to for its own options, as twistd chooses it:
    standard output with C{--logfile=-} or C{--nodaemon} and no log file,
    else C{--logfile} (C{twistd.log} by default), rotated like twistd's.

    @param twistdOptions: twistd's options (a subcommand's C{parent}), or
        L{None}: standard output.
    @return: the file, or L{None} when twistd logs to syslog (left to it).
    """
    if twistdOptions is None:
        return sys.stdout
    if twistdOptions.get("syslog"):
        return None
    name = twistdOptions.get("logfile") or ""
    if name == "-" or (not name and twistdOptions.get("nodaemon")):
        return sys.stdout
    from twisted.python.logfile import LogFile

    return LogFile.fromFullPath(name or "twistd.log")
