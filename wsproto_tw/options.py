# -*- test-case-name: tests.test_options -*-
"""
The options every command line shares (C{twistd websocket}, C{python -m
wsproto_tw}, C{python -m wsproto_tw.testee}), and the one path from them to
a L{Config}.

One rule for "off", on every command line: B{C{0} turns a limit or a
timeout off} (no size limit, no timeout, no keepalive, no connection
limit); L{buildConfig} maps it to whatever L{Config} takes for off (C{0}
for a size, L{None} for a time or a count). Two can't be off, and C{0} is an
error for them: C{--close-timeout} (a peer that never answers our Close
would be waited for forever) and C{--max-write-buffer} (a peer that never
reads would make us hold everything sent to it).

Messages about a wrong value name the option as it is typed
(C{--compression-window-bits}), never the L{Config} field behind it.
"""

from __future__ import annotations

import getopt
import math
import re
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from twisted.python import usage

from wsproto_tw.core.config import Config

__all__ = [
    "ConfigOptions",
    "ServerConfigOptions",
    "buildConfig",
    "byteCount",
    "count",
    "integer",
    "seconds",
]


class _Number:
    """
    A coercer for a L{usage.Options} parameter that names its option when
    the value is wrong.
    """

    def __init__(self, option: str, parse: Callable[[str], Any], what: str, check: Callable[[Any], bool]) -> None:
        self._option = option
        self._parse = parse
        self._check = check
        self._what = what

    def __call__(self, text: str) -> Any:
        try:
            value = self._parse(text)
        except ValueError:
            value = None
        if value is None or not self._check(value):
            # A usage.UsageError passes through CoerceParameter unchanged,
            # without its "Parameter type enforcement failed" prefix.
            raise usage.UsageError(f"--{self._option} must be {self._what}, not {text!r}")
        return value


def byteCount(option: str) -> _Number:
    """
    @return: the coercer of an option taking a size in bytes, C{0} or more.
    """
    return _Number(option, int, "a whole number of bytes, 0 or more", lambda n: n >= 0)


def seconds(option: str) -> _Number:
    """
    @return: the coercer of an option taking a time in seconds, C{0} or
        more.
    """
    return _Number(option, float, "a number of seconds, 0 or more", lambda n: math.isfinite(n) and n >= 0)


def count(option: str) -> _Number:
    """
    @return: the coercer of an option taking a count, C{0} or more.
    """
    return _Number(option, int, "a whole number, 0 or more", lambda n: n >= 0)


def integer(option: str) -> _Number:
    """
    @return: the coercer of an option taking any whole number (its range is
        checked where the value is used).
    """
    return _Number(option, int, "a whole number", lambda n: True)


# The options backed by a number in Config: option, Config field, and what
# Config takes for off (never used for those in _NEVER_OFF).
_NUMBERS: tuple[tuple[str, str, Any], ...] = (
    ("max-message-size", "max_message_size", 0),
    ("max-frame-size", "max_frame_size", 0),
    ("open-timeout", "open_timeout", None),
    ("close-timeout", "close_timeout", None),
    ("ping-interval", "ping_interval", None),
    ("ping-timeout", "ping_timeout", None),
    ("idle-timeout", "idle_timeout", None),
    ("max-write-buffer", "max_write_buffer", None),
    ("write-timeout", "write_buffer_timeout", None),
    ("max-connections", "max_connections", None),
)

# The limits that can't be off, and why: 0 is refused with the reason.
_NEVER_OFF = {
    "close-timeout": "a peer that never answers a Close would be waited for forever",
    "max-write-buffer": "a peer that never reads would make us hold everything sent to it",
}

# permessage-deflate options: option, PerMessageDeflate field.
_COMPRESSION: tuple[tuple[str, str], ...] = (
    ("compression-window-bits", "server_max_window_bits"),
    ("compression-client-window-bits", "client_max_window_bits"),
    ("compression-mem-level", "mem_level"),
    ("compression-level", "compress_level"),
    ("compression-min-size", "min_size"),
)

# The option that sets each Config or PerMessageDeflate field.
_OPTION_OF_FIELD = {
    **{field: option for option, field, _ in _NUMBERS},
    **{field: option for option, field in _COMPRESSION},
    "server_no_context_takeover": "compression-no-context-takeover",
    "subprotocols": "subprotocol",
    "allowed_origins": "origin",
}


def _defaults() -> dict[str, Any]:
    """
    @return: L{Config}'s defaults under their option names, C{0} for off.
    """
    config = {f.name: f.default for f in fields(Config)}
    return {option: (0 if config[field] is None else config[field]) for option, field, _ in _NUMBERS}


_DEFAULT = _defaults()


class ConfigOptions(usage.Options):
    """
    The options every command line shares: limits, timeouts, keepalive,
    subprotocols and permessage-deflate. A command line subclasses it, adds
    its own options, and builds its L{Config} with L{buildConfig}.

    Options may come after the positional arguments
    (C{wsproto-tw URL --max-message-size 0}), as with C{argparse}.

    @cvar configDefaults: this command line's own defaults, by option name
        (C{"compression"} for whether permessage-deflate is on).
    @cvar server: whether the options configure a server (C{--origin} is
        then the allow-list, and C{--max-connections} applies).
    @ivar given: the long name of each option the command line gave,
        however it was typed (short or long, abbreviated, C{--name=value}
        or C{--name value}), whatever its value, even the default: what
        tells an option typed from one left alone, which the values can't.
    @type given: C{frozenset[str]}
    """

    configDefaults: dict[str, Any] = {}
    server = False

    optParameters = [
        ["max-message-size", None, _DEFAULT["max-message-size"],
         "Largest message in bytes, after decompression; 0 = no limit.", byteCount("max-message-size")],
        ["max-frame-size", None, None,
         "Largest frame payload in bytes; 0 = no limit; default: --max-message-size", byteCount("max-frame-size")],
        ["open-timeout", None, _DEFAULT["open-timeout"],
         "Seconds for the whole opening handshake (with a site, from connecting to the first request received whole); 0 = none.",
         seconds("open-timeout")],
        ["close-timeout", None, _DEFAULT["close-timeout"],
         "Seconds to wait for the peer's part of the closing handshake (then the connection is closed, and aborted after as long again); must be positive.",
         seconds("close-timeout")],
        ["ping-interval", None, _DEFAULT["ping-interval"],
         "Seconds between keepalive pings; 0 disables keepalive.", seconds("ping-interval")],
        ["ping-timeout", None, _DEFAULT["ping-timeout"],
         "Seconds to wait for a keepalive pong; 0 waits forever.", seconds("ping-timeout")],
        ["idle-timeout", None, _DEFAULT["idle-timeout"],
         "Close a connection idle (nothing received) this many seconds; 0 = never.", seconds("idle-timeout")],
        ["max-write-buffer", None, _DEFAULT["max-write-buffer"],
         "Bytes queued for a peer that does not read before it is dropped (1008); must be positive.",
         byteCount("max-write-buffer")],
        ["write-timeout", None, _DEFAULT["write-timeout"],
         "Seconds a peer may leave our write buffer full before it is dropped (1008); 0 = never.",
         seconds("write-timeout")],
        ["compression-window-bits", None, 15,
         "permessage-deflate server_max_window_bits, 8-15: a server compresses with a 2**N-byte LZ77 window "
         "(memory: 2**(N+2) bytes); a client asks the server for at most this.",
         integer("compression-window-bits")],
        ["compression-client-window-bits", None, 15,
         "permessage-deflate client_max_window_bits, 8-15: a client compresses with at most this window; "
         "a server accepts at most this (below 15, clients that can't be limited get no compression).",
         integer("compression-client-window-bits")],
        ["compression-mem-level", None, 8,
         "permessage-deflate: zlib memLevel of our compressor, 1-9 (memory: 2**(N+9) bytes).",
         integer("compression-mem-level")],
        ["compression-level", None, 6, "permessage-deflate: zlib compression level, 0-9 (-1: zlib's default).",
         integer("compression-level")],
        ["compression-min-size", None, 0, "permessage-deflate: send messages shorter than this uncompressed.",
         byteCount("compression-min-size")],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["subprotocol"] = []
        self["compression"] = False
        self["compression-no-context-takeover"] = False
        self.update(self.configDefaults)
        self.defaults.update(self.configDefaults)
        self.given: frozenset[str] = frozenset()

    def opt_version(self) -> None:
        """
        Display the version of wsproto_tw and exit.
        """
        from wsproto_tw import __version__

        print(f"wsproto_tw {__version__}")
        sys.exit(0)

    def opt_subprotocol(self, name: str) -> None:
        """
        Subprotocol: a server speaks them, a client offers them, in order of preference (repeatable).
        """
        self["subprotocol"].append(name)

    def opt_compression(self) -> None:
        """
        Use permessage-deflate (RFC 7692): a server accepts offers, a client makes one.
        """
        self["compression"] = True

    def opt_no_compression(self) -> None:
        """
        Never compress: a server declines every permessage-deflate offer, a client makes none.
        """
        self["compression"] = False

    def opt_compression_no_context_takeover(self) -> None:
        """
        permessage-deflate server_no_context_takeover: a server compresses each message on its own; a client asks it to.
        """
        self["compression-no-context-takeover"] = True

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse C{options}, which may mix options and positional arguments:
        the options are moved first, the arguments after a C{--}. The
        options found are recorded in L{given}.
        """
        if options is None:
            options = sys.argv[1:]
        if not (len(options) > 1 and options[-2] == "--_shell-completion"):
            try:
                found, arguments = getopt.gnu_getopt(options, self.shortOpt, self.longOpt)
            except getopt.GetoptError as exc:
                raise usage.UsageError(str(exc)) from None
            ordered: list[str] = []
            for name, value in found:
                if name.startswith("--"):
                    ordered.append(f"{name}={value}" if name[2:] + "=" in self.longOpt else name)
                else:
                    ordered.extend([name, value] if name[1] + ":" in self.shortOpt else [name])
            # getopt has resolved abbreviations and split grouped short
            # options; usage.Options maps what is left to the long name of
            # its handler through the same synonyms.
            self.given = frozenset(self.synonyms.get(name.lstrip("-"), name.lstrip("-")) for name, _ in found)
            options = [*ordered, "--", *arguments]
        super().parseOptions(options)

    def postOptions(self) -> None:
        """
        Check the values together by building the L{Config}.
        """
        self.config()

    def config(self) -> Config:
        """
        @return: the L{Config} these options describe.
        @raise usage.UsageError: a value is wrong; the message names the
            option as typed.
        """
        return buildConfig(self)


class ServerConfigOptions(ConfigOptions):
    """
    L{ConfigOptions} for a server: permessage-deflate on by default,
    C{--origin} allow-list and C{--max-connections}.
    """

    server = True
    configDefaults = {"compression": True}

    optParameters = [
        ["max-connections", None, _DEFAULT["max-connections"],
         "Most connections at once; past it handshakes get 503; 0 = no limit.", count("max-connections")],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["origin"] = []

    def opt_origin(self, origin: str) -> None:
        """
        Origin allowed to connect, e.g. https://app.example.com (repeatable); without any, all origins are allowed.
        """
        self["origin"].append(origin)


def _compression(options: ConfigOptions) -> Any:
    """
    @return: the C{PerMessageDeflate} policy of C{options}, or L{None}.
    @raise usage.UsageError: permessage-deflate is asked for and can't be
        had.
    """
    if not options["compression"]:
        return None
    try:
        from wsproto_tw.core.deflate import PerMessageDeflate
    except ImportError:
        raise usage.UsageError(
            "--compression needs permessage-deflate support (wsproto_tw.core.deflate), "
            "which this installation lacks"
        ) from None

    values = {field: options[option] for option, field in _COMPRESSION}
    return PerMessageDeflate(server_no_context_takeover=options["compression-no-context-takeover"], **values)


def _optionNames(message: str) -> str:
    """
    @return: C{message} with each L{Config} or C{PerMessageDeflate} field
        named replaced by its option, as typed.
    """
    pattern = r"\b(" + "|".join(map(re.escape, _OPTION_OF_FIELD)) + r")\b"
    return re.sub(pattern, lambda match: "--" + _OPTION_OF_FIELD[match.group(1)], message)


def buildConfig(options: ConfigOptions) -> Config:
    """
    The one path from command-line options to a L{Config}: every command
    line builds its configuration here. C{0} turns a limit or a timeout
    off (see the module's docstring); it is an error for the two that
    can't be off.

    @param options: parsed L{ConfigOptions} (or L{ServerConfigOptions}).
    @return: the L{Config} they describe.
    @raise usage.UsageError: a value is wrong; the message names the
        option as typed, never the L{Config} field.
    """
    arguments: dict[str, Any] = {}
    for option, field, off in _NUMBERS:
        if option not in options:
            continue  # this command line has no such option
        value = options[option]
        if value is None:
            continue  # Config's default (--max-frame-size: the message size)
        if value == 0:
            if option in _NEVER_OFF:
                raise usage.UsageError(f"--{option} must be positive: {_NEVER_OFF[option]}")
            value = off
        arguments[field] = value
    arguments["subprotocols"] = tuple(options["subprotocol"])
    if options.server and options["origin"]:
        arguments["allowed_origins"] = frozenset(options["origin"])
    try:
        return Config(compression=_compression(options), **arguments)
    except (TypeError, ValueError) as exc:
        raise usage.UsageError(_optionNames(str(exc))) from None
