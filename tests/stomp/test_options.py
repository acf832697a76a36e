"""
Tests for L{wsproto_tw.stomp.options}: from a command line to a
L{StompServer}.
"""

from __future__ import annotations

import sys

from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from tests.stomp.helpers import frame
from tests.stomp.test_server import opened
from wsproto_tw.stomp.options import STOMP_PARAMETERS, StompOptionsMixin, buildStompServer, stompPortServices

registered = []


def register(server):
    """
    An C{--app} target: registers a handler.
    """
    registered.append(server)
    server.route("/app/ping")(lambda request: request.reply("/topic/pong", "pong"))


class Options(StompOptionsMixin, usage.Options):
    optParameters = STOMP_PARAMETERS + [["app", None, None, "Handlers."]]


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    Tests for the STOMP options and L{buildStompServer}.
    """

    def test_defaults(self):
        """
        Without options: the default configuration, no authentication, no
        TCP port.
        """
        server = buildStompServer(parse(), Clock())
        self.assertEqual(server.config.heart_beat, (10000, 10000))
        self.assertEqual(server.config.app_prefix, "/app")
        self.assertEqual(server.config.subprotocol_rule, "first")
        self.assertEqual(server.broker.max_unacked, 1000)
        self.assertEqual(stompPortServices(server, parse()), [])
        app, transport = opened(server)
        app.textMessageReceived(frame("CONNECT").decode())
        self.assertTrue(transport.take()[0].startswith("CONNECTED\n"))

    def test_values(self):
        """
        Each option reaches the server; C{0} turns a limit off; C{--app}
        registers handlers; C{--stomp-port} is repeatable.
        """
        options = parse(
            "--heart-beat", "0,5000", "--app-prefix", "none", "--stomp-subprotocol", "highest",
            "--max-unacked", "0", "--max-subscriptions", "3", "--stomp-max-frame-size", "4096",
            "--app", "tests.stomp.test_options.register", "--stomp-port", "61613", "--stomp-port", "tcp:0",
        )
        server = buildStompServer(options, Clock())
        self.assertEqual(server.config.heart_beat, (0, 5000))
        self.assertIsNone(server.config.app_prefix)
        self.assertEqual(server.config.subprotocol_rule, "highest")
        self.assertEqual(server.broker.max_unacked, sys.maxsize)
        self.assertEqual(server.config.max_subscriptions, 3)
        self.assertEqual(server.config.max_frame_size, 4096)
        self.assertIs(registered[-1], server)
        self.assertIsNotNone(server.router.match("/app/ping"))
        self.assertEqual(options["stomp-port"], ["tcp:61613", "tcp:0"])
        self.assertEqual(len(stompPortServices(server, options)), 2)

    def test_portLimitsFromTwistd(self):
        """
        C{twistd websocket}'s C{--max-write-buffer} and C{--close-timeout}
        bound its STOMP-over-TCP connections too.
        """
        from wsproto_tw.tap import Options as TapOptions

        options = TapOptions()
        options.parseOptions(
            ["--mode", "stomp", "--stomp-port", "tcp:0", "--max-write-buffer", "2097152", "--close-timeout", "3"]
        )
        server = buildStompServer(options, Clock())
        [service] = stompPortServices(server, options)
        protocol = service.factory.buildProtocol(None)
        self.assertEqual((protocol._max_write_buffer, protocol._close_timeout), (2 * 1024 * 1024, 3.0))

    def test_byteLimitsAndFrameTimeout(self):
        """
        C{--stomp-frame-timeout}, C{--stomp-max-transaction-bytes},
        C{--stomp-max-queue-bytes} and C{--stomp-max-queued-bytes} reach
        the session configuration and the broker (sizes take K/M suffixes
        as the other byte options do); C{0} turns each off.
        """
        server = buildStompServer(parse(
            "--stomp-frame-timeout", "2.5", "--stomp-max-transaction-bytes", "1000",
            "--stomp-max-queue-bytes", "2000", "--stomp-max-queued-bytes", "3000",
        ), Clock())
        self.assertEqual(server.config.frame_timeout, 2.5)
        self.assertEqual(server.config.max_transaction_bytes, 1000)
        self.assertEqual((server.broker.max_queue_bytes, server.broker.max_queued_bytes), (2000, 3000))
        server = buildStompServer(parse(
            "--stomp-frame-timeout", "0", "--stomp-max-transaction-bytes", "0",
            "--stomp-max-queue-bytes", "0", "--stomp-max-queued-bytes", "0",
        ), Clock())
        self.assertIsNone(server.config.frame_timeout)
        self.assertEqual(server.config.max_transaction_bytes, sys.maxsize)
        self.assertEqual((server.broker.max_queue_bytes, server.broker.max_queued_bytes), (sys.maxsize, sys.maxsize))
        defaults = buildStompServer(parse(), Clock())
        self.assertEqual(defaults.config.frame_timeout, 30.0)
        self.assertEqual((defaults.broker.max_queue_bytes, defaults.broker.max_queued_bytes), (64 << 20, 256 << 20))

    def test_auth(self):
        """
        C{--auth memory:...} checks logins; a wrong one gets C{ERROR}.
        """
        server = buildStompServer(parse("--auth", "memory:ann:secret"), Clock())
        app, transport = opened(server)
        app.textMessageReceived(frame("CONNECT", "login:ann", "passcode:secret").decode())
        self.assertIn("user-name:ann", transport.take()[0])
        app, transport = opened(server)
        app.textMessageReceived(frame("CONNECT", "login:ann", "passcode:nope").decode())
        self.assertEqual(transport.take(), ["ERROR\nmessage:authentication failed\ncontent-length:0\n\n\x00"])

    def test_badValues(self):
        """
        A wrong value is a usage error naming the option.
        """
        for argv, message in (
            (("--heart-beat", "10"), "--heart-beat must be two whole numbers of milliseconds, cx,cy, not '10'"),
            (("--stomp-subprotocol", "lowest"), "--stomp-subprotocol must be first or highest, not 'lowest'"),
            (("--app-prefix", "app"), "--app-prefix must start with / (or be none), not 'app'"),
            (("--max-unacked", "-1"), "--max-unacked must be a whole number, 0 or more, not '-1'"),
        ):
            error = self.assertRaises(usage.UsageError, parse, *argv)
            self.assertEqual(str(error), message)
        error = self.assertRaises(usage.UsageError, buildStompServer, parse("--app", "no.such.module"), Clock())
        self.assertTrue(str(error).startswith("--app no.such.module: can't import it"))

    def test_help(self):
        """
        C{--help} lists every STOMP option and C{--auth}.
        """
        text = str(Options())
        self.assertIn("[default: 10000,10000]", text)
        for name in ("--app-prefix", "--heart-beat", "--stomp-subprotocol", "--stomp-max-frame-size",
                     "--max-subscriptions", "--max-unacked", "--stomp-port", "--auth"):
            self.assertIn(name, text)
