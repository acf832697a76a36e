"""
Tests for L{wsproto_tw.options}: the options every command line shares
and the one path from them to a L{Config}, through each command line that
uses it (C{twistd websocket}, C{python -m wsproto_tw}, C{python -m
wsproto_tw.testee}).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.python.reflect import accumulateClassList
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.test_client import closeAll, listenTCP
from tests.test_cli import runCommand
from wsproto_tw import __main__ as cli
from wsproto_tw import tap, testee
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.options import ConfigOptions, ServerConfigOptions, buildConfig
from wsproto_tw.server import WebSocketApplication, WebSocketServerFactory

#: The options of each command line, with the positional arguments it needs.
COMMAND_LINES: list[tuple[type[ConfigOptions], list[str]]] = [
    (tap.Options, []),
    (cli.Options, ["ws://127.0.0.1:8080/"]),
    (testee.Options, ["ws://127.0.0.1:9001"]),
]

#: Every shared option with a value other than every command line's default.
SHARED_ARGV = [
    "--max-message-size=4096",
    "--max-frame-size=1024",
    "--open-timeout=3",
    "--close-timeout=4",
    "--ping-interval=5",
    "--ping-timeout=6",
    "--idle-timeout=7",
    "--max-write-buffer=8192",
    "--write-timeout=9",
    "--subprotocol=v11.stomp",
    "--subprotocol=v10.stomp",
    "--compression",
    "--compression-window-bits=10",
    "--compression-client-window-bits=11",
    "--compression-mem-level=2",
    "--compression-level=1",
    "--compression-min-size=64",
    "--compression-no-context-takeover",
]

#: The L{Config} that C{SHARED_ARGV} describes.
SHARED_CONFIG = Config(
    max_message_size=4096,
    max_frame_size=1024,
    open_timeout=3.0,
    close_timeout=4.0,
    ping_interval=5.0,
    ping_timeout=6.0,
    idle_timeout=7.0,
    max_write_buffer=8192,
    write_buffer_timeout=9.0,
    subprotocols=("v11.stomp", "v10.stomp"),
    compression=PerMessageDeflate(
        server_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=11,
        mem_level=2,
        compress_level=1,
        min_size=64,
    ),
)


def parse(options: type[ConfigOptions], *argv: str) -> Any:
    parsed = options()
    parsed.parseOptions(list(argv))
    return parsed


def sharedNames() -> set[str]:
    """
    @return: the long names of the options L{ConfigOptions} defines.
    """
    return {name.rstrip("=") for name in ConfigOptions().longOpt} - {"help", "version"}


class _Typed(ConfigOptions):
    """
    L{ConfigOptions} with a short form of each kind of option.
    """

    optParameters = [["name", "n", "x", "A parameter."]]
    optFlags = [["flag", "f", "A flag."]]

    def opt_limit(self, value: str) -> None:
        """
        An option method.
        """
        self["limit"] = value

    opt_l = opt_limit


class GivenTests(SynchronousTestCase):
    """
    L{ConfigOptions.given}: which options the command line gave.
    """

    def test_everyForm(self) -> None:
        """
        Each option given is named by its long name, however it was typed:
        C{--name value}, C{--name=value}, abbreviated, short (alone or
        grouped), a flag, an option method or its alias; given its default
        value, it still counts.
        """
        cases = [
            (["--name", "x"], {"name"}),
            (["--name=x"], {"name"}),
            (["--na", "x"], {"name"}),
            (["-n", "x"], {"name"}),
            (["-nx"], {"name"}),
            (["--flag"], {"flag"}),
            (["-f"], {"flag"}),
            (["-fnx"], {"flag", "name"}),
            (["--limit", "3"], {"limit"}),
            (["-l", "3"], {"limit"}),
            (["--max-message-size", str(Config().max_message_size)], {"max-message-size"}),
            (["--compression", "--no-compression", "--subprotocol=a", "--subprotocol=b"], {"compression", "no-compression", "subprotocol"}),
            ([], set()),
        ]
        for argv, given in cases:
            self.assertEqual(parse(_Typed, *argv).given, frozenset(given), argv)
        self.assertEqual(_Typed().given, frozenset())

    def test_afterArguments(self) -> None:
        """
        Options after the positional arguments count too.
        """
        options = parse(cli.Options, "ws://127.0.0.1:8080/", "-s", "chat")
        self.assertEqual(options.given, frozenset({"subprotocol"}))


class BuildConfigTests(SynchronousTestCase):
    """
    L{buildConfig} maps each option to its L{Config} field, C{0} to off, and
    wrong values to messages naming the option as typed.
    """

    def test_everySharedOption(self) -> None:
        """
        Each shared option lands in the L{Config} or C{PerMessageDeflate}
        field it describes.
        """
        self.assertEqual(parse(ConfigOptions, *SHARED_ARGV).config(), SHARED_CONFIG)

    def test_zeroTurnsOff(self) -> None:
        """
        C{0} turns a limit or timeout off: a size becomes C{0} (no limit),
        a time or a count becomes L{None}.
        """
        cases = [
            ("max-message-size", "max_message_size", 0),
            ("max-frame-size", "max_frame_size", 0),
            ("open-timeout", "open_timeout", None),
            ("ping-interval", "ping_interval", None),
            ("ping-timeout", "ping_timeout", None),
            ("idle-timeout", "idle_timeout", None),
            ("write-timeout", "write_buffer_timeout", None),
        ]
        for option, field, off in cases:
            config = parse(ConfigOptions, f"--{option}=0").config()
            self.assertEqual(getattr(config, field), off, option)
        config = parse(ServerConfigOptions, "--max-connections=0").config()
        self.assertIsNone(config.max_connections)
        self.assertEqual(parse(ServerConfigOptions, "--max-connections=5").config().max_connections, 5)

    def test_zeroAndTheLimitsThatCantBeOff(self) -> None:
        """
        C{--close-timeout 0} and C{--max-write-buffer 0} are usage errors
        saying why the limit can't be off.
        """
        error = self.assertRaises(UsageError, parse, ConfigOptions, "--close-timeout=0")
        self.assertEqual(
            str(error), "--close-timeout must be positive: a peer that never answers a Close would be waited for forever"
        )
        error = self.assertRaises(UsageError, parse, ConfigOptions, "--max-write-buffer=0")
        self.assertEqual(
            str(error),
            "--max-write-buffer must be positive: a peer that never reads would make us hold everything sent to it",
        )

    def test_defaults(self) -> None:
        """
        Without options, a client's L{Config} is L{Config}'s default; a
        server's differs only by accepting permessage-deflate.
        """
        self.assertEqual(parse(ConfigOptions).config(), Config())
        self.assertEqual(parse(ServerConfigOptions).config(), Config(compression=PerMessageDeflate()))

    def test_badNumberNamesOption(self) -> None:
        """
        A negative or non-numeric value is refused with a message naming
        the option as typed and the value.
        """
        cases = [
            ("--max-message-size=-1", "--max-message-size must be a whole number of bytes, 0 or more, not '-1'"),
            ("--ping-interval=soon", "--ping-interval must be a number of seconds, 0 or more, not 'soon'"),
            ("--idle-timeout=inf", "--idle-timeout must be a number of seconds, 0 or more, not 'inf'"),
            ("--compression-level=high", "--compression-level must be a whole number, not 'high'"),
        ]
        for argument, message in cases:
            error = self.assertRaises(UsageError, parse, ConfigOptions, argument)
            self.assertEqual(str(error), message)
        error = self.assertRaises(UsageError, parse, ServerConfigOptions, "--max-connections=-5")
        self.assertEqual(str(error), "--max-connections must be a whole number, 0 or more, not '-5'")

    def test_configErrorNamesOption(self) -> None:
        """
        A value the L{Config} or C{PerMessageDeflate} refuses is reported
        under the option's name, never the field's.
        """
        cases = [
            (["--compression-window-bits=7"], "--compression-window-bits must be an integer from 8 to 15, not 7"),
            (["--compression-client-window-bits=16"], "--compression-client-window-bits must be an integer from 8 to 15, not 16"),
            (["--compression-mem-level=0"], "--compression-mem-level must be an integer from 1 to 9, not 0"),
            (["--compression-level=-2"], "--compression-level must be an integer from -1 to 9, not -2"),
        ]
        for argv, message in cases:
            error = self.assertRaises(UsageError, parse, ServerConfigOptions, *argv)
            self.assertEqual(str(error), message)

    def test_compressionOffIgnoresItsParameters(self) -> None:
        """
        Without C{--compression}, a client builds no permessage-deflate
        policy, so its parameters are not checked; a server's
        C{--no-compression} does the same.
        """
        self.assertIsNone(parse(ConfigOptions, "--compression-window-bits=9").config().compression)
        self.assertIsNone(parse(ServerConfigOptions, "--no-compression").config().compression)

    def test_serverOrigins(self) -> None:
        """
        A server's repeated C{--origin} is its allow-list.
        """
        config = parse(ServerConfigOptions, "--origin", "https://a.example", "--origin", "https://b.example").config()
        self.assertEqual(config.allowed_origins, frozenset({"https://a.example", "https://b.example"}))

    def test_optionsAfterArguments(self) -> None:
        """
        Options may follow the positional arguments, and C{--} ends the
        options.
        """
        options = parse(cli.Options, "ws://127.0.0.1:8080/", "--max-message-size", "0", "-s", "chat")
        self.assertEqual(options["url"], "ws://127.0.0.1:8080/")
        self.assertEqual(options.config().max_message_size, 0)
        self.assertEqual(options.config().subprotocols, ("chat",))
        self.assertRaises(UsageError, parse, cli.Options, "--", "ws://127.0.0.1:8080/", "--wait=1")

    def test_buildConfigIsTheOnePath(self) -> None:
        """
        L{ConfigOptions.config} is L{buildConfig}.
        """
        options = parse(ConfigOptions, "--max-message-size=10")
        self.assertEqual(options.config(), buildConfig(options))


class CommandLineTests(SynchronousTestCase):
    """
    Every command line accepts the same shared options, with the same
    meaning.
    """

    def test_sameOptions(self) -> None:
        """
        Each command line offers every shared option.
        """
        shared = sharedNames()
        self.assertIn("max-message-size", shared)
        self.assertIn("compression-window-bits", shared)
        for options, _ in COMMAND_LINES:
            names = {name.rstrip("=") for name in options().longOpt}
            self.assertEqual(shared - names, set(), options)

    def test_sameConfig(self) -> None:
        """
        The same shared options give the same L{Config} on every command
        line.
        """
        for options, arguments in COMMAND_LINES:
            self.assertEqual(parse(options, *arguments, *SHARED_ARGV).config(), SHARED_CONFIG, options)

    def test_sameDescriptions(self) -> None:
        """
        The shared options are described once: every command line's help
        text for them is that of L{ConfigOptions}.
        """
        rows: list[list] = []
        accumulateClassList(ConfigOptions, "optParameters", rows)
        shared = {row[0]: row[3] for row in rows}
        for options, _ in COMMAND_LINES:
            docs = options().docs
            for name, doc in shared.items():
                self.assertEqual(docs[name], doc, (options, name))

    def test_ownDefaults(self) -> None:
        """
        Each command line keeps its defaults: the server accepts
        permessage-deflate, the client does not offer it, the testee takes
        messages up to 64 MiB and sends no keepalive pings.
        """
        self.assertIsNotNone(parse(tap.Options).config().compression)
        self.assertIsNone(parse(cli.Options, "ws://h/").config().compression)
        config = parse(testee.Options).config()
        self.assertEqual((config.max_message_size, config.ping_interval, config.ping_timeout), (64 << 20, None, None))
        self.assertEqual(testee.defaultConfig(), config)

    def test_twistdBadValue(self) -> None:
        """
        C{twistd websocket} names the option of a bad value as typed.
        """
        error = self.assertRaises(UsageError, parse, tap.Options, "--compression-window-bits=7")
        self.assertEqual(str(error), "--compression-window-bits must be an integer from 8 to 15, not 7")
        error = self.assertRaises(UsageError, parse, tap.Options, "--max-frame-size=big")
        self.assertEqual(str(error), "--max-frame-size must be a whole number of bytes, 0 or more, not 'big'")

    def test_testeeBadValue(self) -> None:
        """
        C{python -m wsproto_tw.testee} exits with a message naming the
        option of a bad value as typed.
        """
        error = self.assertRaises(SystemExit, testee.main, ["ws://127.0.0.1:9", "--compression", "--compression-window-bits=16"])
        self.assertIn("error: --compression-window-bits must be an integer from 8 to 15, not 16", str(error))
        self.assertNotIn("server_max_window_bits", str(error))
        error = self.assertRaises(SystemExit, testee.main, ["ws://127.0.0.1:9", "--ping-interval=-1"])
        self.assertIn("error: --ping-interval must be a number of seconds, 0 or more, not '-1'", str(error))


class _Large(WebSocketApplication):
    """
    Answers any message with 2 MiB of text.
    """

    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText("x" * (2 << 20))


class CommandTests(TestCase):
    """
    C{python -m wsproto_tw} with shared options, in a child process.
    """

    timeout = 60

    def setUp(self) -> None:
        factory = WebSocketServerFactory(_Large, Config(max_message_size=0))
        self.addCleanup(closeAll, factory)
        self.url = f"ws://127.0.0.1:{listenTCP(self, factory)}/"

    @inlineCallbacks
    def test_maxMessageSizeZero(self) -> None:
        """
        C{--max-message-size 0}, after the URL, means no limit: a 2 MiB
        message (past the 1 MiB default) is received and the client exits
        with 0.
        """
        out, err, code = yield runCommand(self, [self.url, "--max-message-size", "0"], b"big\n")
        self.assertEqual((err, code), ("closed: 1000\n", 0))
        self.assertEqual(out, "x" * (2 << 20) + "\n")

    @inlineCallbacks
    def test_defaultLimit(self) -> None:
        """
        Without the option, the same message is past the 1 MiB default
        limit and fails the connection with 1009.
        """
        out, err, code = yield runCommand(self, [self.url], b"big\n")
        self.assertIn("closed: 1009", err)
        self.assertEqual(code, 1)

    @inlineCallbacks
    def test_badValueNamesOption(self) -> None:
        """
        A value the configuration refuses exits with 2 and a message naming
        the option as typed, not the field behind it.
        """
        out, err, code = yield runCommand(self, [self.url, "--compression", "--compression-window-bits", "7"])
        self.assertEqual(code, 2)
        self.assertIn("error: --compression-window-bits must be an integer from 8 to 15, not 7\n", err)
        self.assertNotIn("server_max_window_bits", err)
        out, err, code = yield runCommand(self, [self.url, "--close-timeout", "0"])
        self.assertEqual(code, 2)
        self.assertIn("error: --close-timeout must be positive", err)
