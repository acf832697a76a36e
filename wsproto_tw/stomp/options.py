# -*- test-case-name: tests.stomp.test_options -*-
"""
Command-line options of a STOMP server (C{twistd websocket --mode stomp})
and the one path from them to a L{StompServer}.

Mix L{StompOptionsMixin} into a L{usage.Options} whose C{optParameters}
include L{STOMP_PARAMETERS}; it brings C{--auth} (Twisted's C{strcred}:
C{--auth memory:ann:secret}, C{--auth file:users.txt}, C{--help-auth}) and
the repeatable C{--stomp-port}. As on every wsproto_tw command line, C{0}
turns a limit off.
"""

from __future__ import annotations

import sys
from typing import Any

from twisted.application import strports
from twisted.application.service import IService
from twisted.cred.credentials import IAnonymous, IUsernamePassword
from twisted.cred.strcred import AuthOptionMixin
from twisted.python import usage

from wsproto_tw._startup import importApp
from wsproto_tw.options import byteCount, count, seconds
from wsproto_tw.stomp.broker import EmbeddedBroker
from wsproto_tw.stomp.config import FIRST, HIGHEST, StompConfig
from wsproto_tw.stomp.server import StompServer, portalFor

__all__ = ["STOMP_PARAMETERS", "StompOptionsMixin", "buildStompServer", "stompPortServices"]


def _heartBeat(text: str) -> tuple[int, int]:
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise usage.UsageError(f"--heart-beat must be two whole numbers of milliseconds, cx,cy, not {text!r}")
    return int(parts[0]), int(parts[1])


def _subprotocolRule(text: str) -> str:
    if text not in (FIRST, HIGHEST):
        raise usage.UsageError(f"--stomp-subprotocol must be first or highest, not {text!r}")
    return text


def _prefix(text: str) -> str | None:
    if text == "none":
        return None
    if not text.startswith("/"):
        raise usage.UsageError(f"--app-prefix must start with / (or be none), not {text!r}")
    return text


def _clientEndpoint(text: str) -> str:
    from twisted.internet import reactor
    from twisted.internet.endpoints import clientFromString

    try:
        # Only built: nothing connects until the server starts.
        clientFromString(reactor, text)
    except Exception as exc:
        raise usage.UsageError(f"--stomp-relay {text}: not a client endpoint: {exc}") from None
    return text


def _redisEndpoint(text: str) -> str:
    from twisted.internet import reactor
    from twisted.internet.endpoints import clientFromString

    try:
        import txredisapi  # noqa: F401
    except ImportError:
        raise usage.UsageError("--redis needs txredisapi: pip install 'wsproto_tw[redis]'") from None
    try:
        clientFromString(reactor, text)
    except Exception as exc:
        raise usage.UsageError(f"--redis {text}: not a client endpoint: {exc}") from None
    return text


STOMP_PARAMETERS: list[list[Any]] = [
    ["app-prefix", None, "/app", "With --mode stomp: STOMP destinations handled by the application (--app registers handlers); none for none.", _prefix],
    ["heart-beat", None, "10000,10000", "With --mode stomp: STOMP heart-beats in ms, cx,cy: we send at least every cx, we want the client's every cy; 0 for none.", _heartBeat],
    ["stomp-subprotocol", None, FIRST, "With --mode stomp: which vNN.stomp subprotocol to answer: first (the first the client offered that we speak) or highest.", _subprotocolRule],
    ["stomp-max-frame-size", None, 1 << 20, "With --mode stomp: largest STOMP frame received, in bytes.", byteCount("stomp-max-frame-size")],
    ["max-subscriptions", None, 100, "With --mode stomp: most STOMP subscriptions of one session.", count("max-subscriptions")],
    ["stomp-frame-timeout", None, 30.0, "With --mode stomp: seconds a received STOMP frame may take from its first byte to its last.", seconds("stomp-frame-timeout")],
    ["stomp-max-transaction-bytes", None, 16 << 20, "With --mode stomp: most bytes a STOMP session buffers in its open transactions.", byteCount("stomp-max-transaction-bytes")],
    ["stomp-max-queue-bytes", None, 64 << 20, "With --mode stomp: most bytes of messages waiting in one queue of the embedded broker.", byteCount("stomp-max-queue-bytes")],
    ["stomp-max-queued-bytes", None, 256 << 20, "With --mode stomp: most bytes of messages waiting in all queues of the embedded broker.", byteCount("stomp-max-queued-bytes")],
    ["max-unacked", None, 1000, "With --mode stomp: most unacknowledged messages per subscription; delivery pauses there.", count("max-unacked")],
    ["stomp-relay", None, None, "With --mode stomp: relay STOMP to an external broker (RabbitMQ's rabbitmq_stomp, ActiveMQ) at this client endpoint, e.g. tcp:127.0.0.1:61613 or tls:broker:61614, instead of the embedded broker: one broker connection per session.", _clientEndpoint],
    ["stomp-relay-login", None, None, "With --stomp-relay: the login of every broker connection.", None],
    ["stomp-relay-passcode", None, None, "With --stomp-relay: the passcode of every broker connection.", None],
    ["stomp-relay-vhost", None, None, "With --stomp-relay: the host header of every broker connection (RabbitMQ's virtual host, e.g. /).", None],
    ["redis", None, None, "Redis server whose publish/subscribe carries STOMP /topic/ messages (--mode stomp) or the broadcast (--mode broadcast) to every process sharing it (--workers, other machines), as a client endpoint, e.g. tcp:127.0.0.1:6379 (needs wsproto_tw[redis]).", _redisEndpoint],
]


class StompOptionsMixin(AuthOptionMixin):
    """
    C{--auth} (any C{strcred} checker of user names and passwords, or
    anonymous access) and C{--stomp-port}.

    Mixed into options with a C{mode} (C{twistd websocket}), it refuses
    each STOMP option given on the command line outside C{--mode stomp};
    what was given is read from their C{given}
    (L{wsproto_tw.options.ConfigOptions.given}).
    """

    supportedInterfaces = (IUsernamePassword, IAnonymous)

    def postOptions(self) -> None:
        """
        @raise usage.UsageError: C{--redis} with C{--stomp-relay}, or
            with a C{--mode} other than C{stomp} and C{broadcast}; a
            C{--stomp-relay-*} option without C{--stomp-relay}.
        """
        super().postOptions()  # type: ignore[misc]
        if self.get("stomp-relay") is not None and self.get("redis") is not None:  # type: ignore[attr-defined]
            raise usage.UsageError("--redis and --stomp-relay exclude each other: the relayed broker spans processes itself")
        if self.get("redis") is not None and self.get("mode", "stomp") not in ("stomp", "broadcast"):  # type: ignore[attr-defined]
            raise usage.UsageError("--redis needs --mode stomp or --mode broadcast")
        for name in ("stomp-relay-login", "stomp-relay-passcode", "stomp-relay-vhost"):
            if self.get(name) is not None and self.get("stomp-relay") is None:  # type: ignore[attr-defined]
                raise usage.UsageError(f"--{name} needs --stomp-relay")
        if self.get("mode", "stomp") != "stomp":  # type: ignore[attr-defined]
            # Given to another mode, they would be ignored without a word:
            # --auth would seem to guard a server that lets anyone in. What
            # was typed is refused, whatever its value: the default too.
            given = getattr(self, "given", frozenset())
            if "auth" in given:
                raise usage.UsageError("--auth needs --mode stomp: it checks STOMP logins (CONNECT's login and passcode)")
            for name, *_ in STOMP_PARAMETERS:
                if name != "redis" and name in given:
                    raise usage.UsageError(f"--{name} needs --mode stomp")

    def opt_auth(self, description: str) -> None:
        """
        With --mode stomp: how STOMP logins (CONNECT's login and passcode) are checked, e.g. memory:ann:secret, file:users.txt or anonymous (repeatable; --help-auth lists the kinds).
        """
        super().opt_auth(description)

    def opt_stomp_port(self, description: str) -> None:
        """
        Endpoint for STOMP over TCP on the same broker, e.g. tcp:61613 (repeatable; --mode stomp).
        """
        if description.isdigit():
            description = f"tcp:{description}"
        self.setdefault("stomp-port", []).append(description)  # type: ignore[attr-defined]


def _off(value: int) -> int:
    # 0 turns a limit off.
    return value or sys.maxsize


def buildStompServer(options: Any, reactor: Any) -> StompServer:
    """
    The L{StompServer} that C{options} describe: its configuration, its
    broker, C{--auth} checkers in a portal, and the handlers C{--app}
    registers (C{--app package.module.register} names a callable that is
    called with the server, e.g. to use C{server.route}).

    @raise usage.UsageError: C{--app} can't be imported or called.
    """
    heartBeat = options["heart-beat"]
    if isinstance(heartBeat, str):  # the default, which usage.Options does not coerce
        heartBeat = _heartBeat(heartBeat)
    config = StompConfig(
        heart_beat=heartBeat,
        app_prefix=options["app-prefix"],
        subprotocol_rule=options["stomp-subprotocol"],
        max_frame_size=_off(options["stomp-max-frame-size"]),
        max_subscriptions=_off(options["max-subscriptions"]),
        frame_timeout=options["stomp-frame-timeout"] or None,
        max_transaction_bytes=_off(options["stomp-max-transaction-bytes"]),
    )
    broker: Any
    if options.get("stomp-relay") is not None and options.get("redis") is not None:
        raise usage.UsageError("--redis and --stomp-relay exclude each other: the relayed broker spans processes itself")
    if options.get("redis") is not None:
        from wsproto_tw.redisbus import RedisBus
        from wsproto_tw.stomp.bus import BusBroker

        bus = RedisBus(options["redis"], reactor=reactor)
        broker = BusBroker(
            bus,
            max_unacked=_off(options["max-unacked"]),
            max_queue_bytes=_off(options["stomp-max-queue-bytes"]),
            max_queued_bytes=_off(options["stomp-max-queued-bytes"]),
        )
        bus.received = broker.bus_message_received
    elif options.get("stomp-relay") is not None:
        from wsproto_tw.stomp.relayclient import RelayBroker

        broker = RelayBroker(
            reactor,
            options["stomp-relay"],
            login=options.get("stomp-relay-login"),
            passcode=options.get("stomp-relay-passcode"),
            host=options.get("stomp-relay-vhost"),
        )
    else:
        broker = EmbeddedBroker(
            max_unacked=_off(options["max-unacked"]),
            max_queue_bytes=_off(options["stomp-max-queue-bytes"]),
            max_queued_bytes=_off(options["stomp-max-queued-bytes"]),
        )
    checkers = options.get("credCheckers") or []
    server = StompServer(config, broker, portal=portalFor(*checkers) if checkers else None, reactor=reactor)
    app = options.get("app")
    if app is not None:
        importApp(app, "a function")(server)
    return server


def stompPortServices(server: StompServer, options: Any, endpoints: list[Any] | None = None) -> list[IService]:
    """
    @param endpoints: the endpoints to listen on instead of the
        C{--stomp-port} descriptions (a worker of C{--workers} adopts its
        parent's ports).
    @return: one listening service of STOMP over TCP per C{--stomp-port},
        and with C{--stomp-relay} the service of the relay's system
        connection or the C{--redis} bus's.
    """
    # --max-write-buffer and --close-timeout bound STOMP over TCP as they
    # bound WebSocket connections.
    makeConfig = getattr(options, "config", None)
    if callable(makeConfig):
        config = makeConfig()
        factory = server.streamFactory(max_write_buffer=config.max_write_buffer, close_timeout=config.close_timeout)
    else:
        factory = server.streamFactory()
    if endpoints is not None:
        from twisted.application.internet import StreamServerEndpointService

        services: list[IService] = [StreamServerEndpointService(endpoint, factory) for endpoint in endpoints]
    else:
        services = [strports.service(description, factory) for description in options.get("stomp-port", [])]
    # The relay's system connection, or the bus's connections.
    for owner in (server.broker, getattr(server.broker, "bus", None)):
        service = getattr(owner, "service", None)
        if service is not None:
            services.insert(0, service)
    return services
