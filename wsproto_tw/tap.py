# -*- test-case-name: tests.test_tap -*-
"""
C{twistd websocket}: options and service.
"""

from __future__ import annotations

from twisted.application import strports
from twisted.application.service import IService, MultiService
from twisted.python import usage

from wsproto_tw.apps import EchoApplication
from wsproto_tw.core.config import Config
from wsproto_tw.server import ShutdownService, WebSocketServerFactory


def _size(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _seconds(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


class Options(usage.Options):
    """
    Options of C{twistd websocket}.
    """

    synopsis = "[options]"
    longdesc = (
        "Serve WebSocket (RFC 6455, RFC 7692) on one or more endpoints. "
        "Without options: an echo server on tcp:8080, every path."
    )
    optParameters = [
        ["max-message-size", None, 1 << 20, "Largest message in bytes, after decompression; 0 = no limit.", _size],
        ["max-frame-size", None, None, "Largest frame payload in bytes; default: --max-message-size.", _size],
        ["open-timeout", None, 10.0, "Seconds for the whole opening handshake; 0 = none.", _seconds],
        ["close-timeout", None, 10.0, "Seconds to wait for the peer's part of the closing handshake.", _seconds],
        ["ping-interval", None, 20.0, "Seconds between keepalive pings; 0 disables keepalive.", _seconds],
        ["ping-timeout", None, 20.0, "Seconds to wait for a keepalive pong; 0 waits forever.", _seconds],
        ["idle-timeout", None, 0.0, "Close connections idle (nothing received) this many seconds; 0 = never.", _seconds],
        ["max-connections", None, 0, "Most connections at once; past it handshakes get 503; 0 = no limit.", _size],
        ["max-write-buffer", None, 4 << 20, "Bytes queued for a peer that does not read before it is dropped (1008).", _size],
        ["write-timeout", None, 30.0, "Seconds a peer may leave our write buffer full before it is dropped (1008); 0 = never.", _seconds],
        ["shutdown-grace", None, 10.0, "Seconds to wait for 1001 Going Away closes when stopping.", _seconds],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["port"] = []
        self["subprotocol"] = []
        self["origin"] = []

    def opt_port(self, description: str) -> None:
        """
        Endpoint to listen on: 8080, tcp:8080:interface=127.0.0.1, ssl:8443:privateKey=key.pem:certKey=cert.pem, unix:/run/ws.sock (repeatable; default tcp:8080).
        """
        if description.isdigit():
            description = f"tcp:{description}"
        self["port"].append(description)

    def opt_subprotocol(self, name: str) -> None:
        """
        Subprotocol spoken, in order of preference (repeatable).
        """
        self["subprotocol"].append(name)

    def opt_origin(self, origin: str) -> None:
        """
        Origin allowed to connect (repeatable); without any, all origins are allowed.
        """
        self["origin"].append(origin)

    def config(self) -> Config:
        """
        @return: the L{Config} these options describe.
        """
        try:
            return Config(
                max_message_size=self["max-message-size"],
                max_frame_size=self["max-frame-size"],
                open_timeout=self["open-timeout"] or None,
                close_timeout=self["close-timeout"] or 10.0,
                ping_interval=self["ping-interval"] or None,
                ping_timeout=self["ping-timeout"] or None,
                idle_timeout=self["idle-timeout"] or None,
                max_connections=self["max-connections"] or None,
                max_write_buffer=self["max-write-buffer"],
                write_buffer_timeout=self["write-timeout"] or None,
                subprotocols=tuple(self["subprotocol"]),
                allowed_origins=frozenset(self["origin"]) if self["origin"] else None,
            )
        except (TypeError, ValueError) as exc:
            raise usage.UsageError(str(exc)) from None

    def postOptions(self) -> None:
        self.config()


def makeService(options: Options) -> IService:
    """
    Build the C{twistd websocket} service: one listening service per
    C{--port}, all sharing one factory.
    """
    from twisted.internet import reactor

    factory = WebSocketServerFactory(EchoApplication, options.config(), reactor=reactor)
    parent = MultiService()
    # Added first, stopped last: listening stops, then connections close.
    ShutdownService(factory, options["shutdown-grace"]).setServiceParent(parent)
    for description in options["port"] or ["tcp:8080"]:
        strports.service(description, factory).setServiceParent(parent)
    return parent
