# -*- test-case-name: tests.test_tap -*-
"""
C{twistd websocket}: options and service.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.application import strports
from twisted.application.service import IService, MultiService
from twisted.python import reflect, usage

from wsproto_tw.apps import BroadcastGroup, EchoApplication
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
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


def _mode(value: str) -> str:
    if value not in ("echo", "broadcast"):
        raise ValueError(f"--mode must be echo or broadcast, not {value!r}")
    return value


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
        ["open-timeout", None, 10.0, "Seconds for the whole opening handshake (with a site, from connecting to the first request received whole); 0 = none.", _seconds],
        ["close-timeout", None, 10.0, "Seconds to wait for the peer's part of the closing handshake (then the connection is closed, and aborted after as long again); must be positive.", _seconds],
        ["ping-interval", None, 20.0, "Seconds between keepalive pings; 0 disables keepalive.", _seconds],
        ["ping-timeout", None, 20.0, "Seconds to wait for a keepalive pong; 0 waits forever.", _seconds],
        ["idle-timeout", None, 0.0, "Close connections idle (nothing received) this many seconds; 0 = never.", _seconds],
        ["max-connections", None, 0, "Most connections at once; past it handshakes get 503; 0 = no limit.", _size],
        ["max-write-buffer", None, 4 << 20, "Bytes queued for a peer that does not read before it is dropped (1008).", _size],
        ["write-timeout", None, 30.0, "Seconds a peer may leave our write buffer full before it is dropped (1008); 0 = never.", _seconds],
        ["shutdown-grace", None, 10.0, "Seconds to wait for 1001 Going Away closes when stopping.", _seconds],
        ["compression-window-bits", None, 15, "permessage-deflate: LZ77 window of our compressor, 8-15 (memory: 2**(N+2) bytes).", int],
        ["compression-client-window-bits", None, 15, "permessage-deflate: largest client window accepted, 8-15; below 15, clients that can't be limited get no compression.", int],
        ["compression-mem-level", None, 8, "permessage-deflate: zlib memLevel of our compressor, 1-9 (memory: 2**(N+9) bytes).", int],
        ["compression-level", None, 6, "permessage-deflate: zlib compression level, 0-9.", int],
        ["compression-min-size", None, 0, "permessage-deflate: send messages shorter than this uncompressed.", _size],
        ["mode", None, "echo", "What the server does: echo (send each message back) or broadcast (send each message to every client; without --static, a chat page is served at /).", _mode],
        ["app", None, None, "Your own application instead of --mode: package.module.Name of an application class or factory, called once per connection.", None],
        ["static", None, None, "Directory served over HTTP on the same port(s); the WebSocket is then at --path.", None],
        ["path", None, None, "URL path of the WebSocket: default /ws with --static or --mode broadcast; otherwise every path is a WebSocket unless --path is given.", None],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["port"] = []
        self["subprotocol"] = []
        self["origin"] = []
        self["compression"] = True
        self["compression-no-context-takeover"] = False

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

    def opt_compression(self) -> None:
        """
        Accept permessage-deflate (RFC 7692) when a client offers it (the default).
        """
        self["compression"] = True

    def opt_no_compression(self) -> None:
        """
        Never compress: decline every permessage-deflate offer.
        """
        self["compression"] = False

    def opt_compression_no_context_takeover(self) -> None:
        """
        permessage-deflate: compress each message on its own, keeping no compressor between messages.
        """
        self["compression-no-context-takeover"] = True

    def compression(self) -> PerMessageDeflate | None:
        """
        @return: the permessage-deflate policy these options describe, or
            L{None} with C{--no-compression}.
        @raise ValueError: a C{--compression-*} value is out of range.
        """
        if not self["compression"]:
            return None
        return PerMessageDeflate(
            server_no_context_takeover=self["compression-no-context-takeover"],
            server_max_window_bits=self["compression-window-bits"],
            client_max_window_bits=self["compression-client-window-bits"],
            mem_level=self["compression-mem-level"],
            compress_level=self["compression-level"],
            min_size=self["compression-min-size"],
        )

    def opt_origin(self, origin: str) -> None:
        """
        Origin allowed to connect (repeatable); without any, all origins are allowed.
        """
        self["origin"].append(origin)

    def config(self) -> Config:
        """
        @return: the L{Config} these options describe.
        """
        if self["close-timeout"] <= 0:
            # No close timeout would wait forever for a peer that never
            # answers our Close: unlike the other timeouts, it can't be off.
            raise usage.UsageError(
                "--close-timeout must be positive: a peer that never answers a Close would be waited for forever"
            )
        try:
            return Config(
                max_message_size=self["max-message-size"],
                max_frame_size=self["max-frame-size"],
                open_timeout=self["open-timeout"] or None,
                close_timeout=self["close-timeout"],
                ping_interval=self["ping-interval"] or None,
                ping_timeout=self["ping-timeout"] or None,
                idle_timeout=self["idle-timeout"] or None,
                max_connections=self["max-connections"] or None,
                max_write_buffer=self["max-write-buffer"],
                write_buffer_timeout=self["write-timeout"] or None,
                subprotocols=tuple(self["subprotocol"]),
                allowed_origins=frozenset(self["origin"]) if self["origin"] else None,
                compression=self.compression(),
            )
        except (TypeError, ValueError) as exc:
            raise usage.UsageError(str(exc)) from None

    def postOptions(self) -> None:
        self.config()
        self._checkServing()

    def _checkServing(self) -> None:
        """
        @raise usage.UsageError: C{--mode}, C{--app}, C{--static} or
            C{--path} is wrong.
        """
        if self["app"] is not None:
            if self["mode"] != "echo":
                raise usage.UsageError("--app and --mode broadcast exclude each other")
            try:
                application = reflect.namedAny(self["app"])
            except Exception as exc:
                raise usage.UsageError(f"--app {self['app']}: can't import it: {exc}") from None
            if not callable(application):
                raise usage.UsageError(f"--app {self['app']}: not a class or factory: {application!r}")
        if self["static"] is not None and not os.path.isdir(self["static"]):
            raise usage.UsageError(f"--static {self['static']}: not a directory")
        path = self["path"]
        if path is not None and (not path.startswith("/") or not path.strip("/")):
            raise usage.UsageError(f"--path must start with / and name a path below /, not {path!r}")

    def applicationFactory(self) -> Callable[[], Any]:
        """
        @return: what builds each connection's application: C{--app},
            or the application of C{--mode}.
        """
        if self["app"] is not None:
            return reflect.namedAny(self["app"])
        if self["mode"] == "broadcast":
            return BroadcastGroup(self["max-write-buffer"])
        return EchoApplication


def _listening(options: Options, config: Config, reactor: Any) -> tuple[WebSocketServerFactory, Any]:
    """
    @return: the factory of the WebSocket connections, and the protocol
        factory to listen with: that same factory when every path is a
        WebSocket, else a L{WebSocketSite
        <wsproto_tw.resource.WebSocketSite>} serving C{--static} (or the
        chat page) with the WebSocket at C{--path}.
    """
    applicationFactory = options.applicationFactory()
    static, path = options["static"], options["path"]
    if static is None and path is None and options["mode"] != "broadcast":
        factory = WebSocketServerFactory(applicationFactory, config, reactor=reactor)
        return factory, factory
    from twisted.web.resource import Resource
    from twisted.web.static import File

    from wsproto_tw.resource import WebSocketResource, WebSocketSite, mountAt
    from wsproto_tw.static import chatPage

    path = path or "/ws"
    webSocket = WebSocketResource(applicationFactory, config, reactor)
    if static is not None:
        fallback: Resource = File(static)
    else:
        fallback = Resource()
        if options["mode"] == "broadcast":
            fallback.putChild(b"", chatPage(path))
    # WebSocketSite: open_timeout bounds a connection's first request, and
    # an oversized head gets 431, as on the WebSocket factory's own ports.
    return webSocket.webSocketFactory, WebSocketSite(mountAt(path, webSocket, fallback), config, reactor=reactor)


def makeService(options: Options) -> IService:
    """
    Build the C{twistd websocket} service: one listening service per
    C{--port}, all sharing one factory.
    """
    from twisted.internet import reactor

    factory, listening = _listening(options, options.config(), reactor)
    parent = MultiService()
    # Added first, stopped last: listening stops, then connections close.
    ShutdownService(factory, options["shutdown-grace"]).setServiceParent(parent)
    for description in options["port"] or ["tcp:8080"]:
        strports.service(description, listening).setServiceParent(parent)
    return parent
