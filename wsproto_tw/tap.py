# -*- test-case-name: tests.test_tap -*-
"""
C{twistd websocket}: options and service.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from twisted.application import strports
from twisted.application.service import IService, MultiService, Service
from twisted.internet import endpoints
from twisted.python import reflect, usage

from wsproto_tw._startup import (
    InterruptibleShutdown,
    ListeningService,
    answering500,
    checkApplication,
    checkOrigin,
    checkPort,
    importApp,
)
from wsproto_tw.apps import BroadcastGroup, EchoApplication
from wsproto_tw.core.config import Config
from wsproto_tw.logs import logFormat, logLevel
from wsproto_tw.options import ServerConfigOptions, seconds
from wsproto_tw.server import WebSocketServerFactory
from wsproto_tw.stomp.options import STOMP_PARAMETERS, StompOptionsMixin, buildStompServer, stompPortServices
from wsproto_tw.tlsport import tlsPortEndpoint
from wsproto_tw.workers import (
    WORKER_FDS,
    ParentWatch,
    WorkersService,
    adoptedEndpoints,
    checkWorkers,
    withTLS,
    workerArguments,
    workerCount,
)


def _mode(value: str) -> str:
    if value not in ("echo", "broadcast", "stomp"):
        raise usage.UsageError(f"--mode must be echo, broadcast or stomp, not {value!r}")
    return value


def _metricsEndpoint(value: str) -> str:
    """
    Check C{--metrics}: an endpoint description, and the C{metrics} extra
    installed.

    @return: the endpoint description (a bare number means C{tcp:NUMBER}).
    """
    from twisted.internet.endpoints import serverFromString

    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise usage.UsageError("--metrics needs prometheus_client: pip install 'wsproto_tw[metrics]'") from None
    description = f"tcp:{value}" if value.isdigit() else value
    try:
        # Only parsed: the endpoint is built without a reactor, and dropped.
        serverFromString(None, description)
    except Exception as exc:
        raise usage.UsageError(f"--metrics {value}: not an endpoint: {exc}") from None
    return description


class Options(StompOptionsMixin, ServerConfigOptions):
    """
    Options of C{twistd websocket}: the shared limits, timeouts, keepalive,
    subprotocol, origin and compression options of L{ServerConfigOptions},
    what to serve where, and with C{--mode stomp} the STOMP options of
    L{wsproto_tw.stomp.options} (C{--auth}, C{--stomp-port}, ...).
    """

    synopsis = "[options]"
    longdesc = (
        "Serve WebSocket (RFC 6455, RFC 7692) on one or more endpoints. "
        "Without options: an echo server on tcp:8080, every path. "
        "0 turns a limit or timeout off (--close-timeout and --max-write-buffer must be positive)."
    )
    optParameters = [
        ["shutdown-grace", None, 10.0, "Seconds to wait for 1001 Going Away closes when stopping.", seconds("shutdown-grace")],
        ["mode", None, "echo", "What the server does: echo (send each message back), broadcast (send each message to every client; without --static, a chat page is served at /) or stomp (STOMP 1.0-1.2 over WebSocket with an embedded broker).", _mode],
        ["app", None, None, "Your own application instead of --mode: package.module.Name of an application class or factory, called once per connection; with --mode stomp, a function called once with the StompServer to register handlers.", None],
        ["static", None, None, "Directory served over HTTP on the same port(s); the WebSocket is then at --path.", None],
        ["path", None, None, "URL path of the WebSocket: default /ws with --static or --mode broadcast; otherwise every path is a WebSocket unless --path is given.", None],
        ["http2-max-streams", None, 100, "With --http2: streams open at once per HTTP/2 connection.", int],
        ["metrics", None, None, "Endpoint serving /metrics (Prometheus), /health and /readyz (503 once stopping) and /healthz, e.g. tcp:9108 (needs wsproto_tw[metrics]).", _metricsEndpoint],
        ["log-level", None, None, "Least level logged: debug, info (the default: a line per connection opened and closed), warn (per-connection lines dropped unformatted), error or critical. twistd's log goes through wsproto_tw's observer (unless --logger or --syslog): twistd's lines, formatted several times faster.", logLevel],
        ["log-format", None, None, "Log lines as text (twistd's, the default) or json (one object per line, fields by name: peer, path, code, reason...).", logFormat],
        ["workers", None, 1, "Processes serving the same tcp:, tcp6:, ssl: and unix: ports (auto: one per core); each has the whole configuration and its own broker.", workerCount],
    ] + STOMP_PARAMETERS
    optFlags = [
        ["http2", None, "Over TLS (ssl: ports), offer h2 and http/1.1 by ALPN and serve WebSocket over HTTP/2 (RFC 8441) besides HTTP/1.1 upgrades."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["port"] = []
        #: With C{--mode stomp}: the L{StompServer
        #: <wsproto_tw.stomp.server.StompServer>}, once built.
        self.stompServer: Any = None

    def opt_port(self, description: str) -> None:
        """
        Endpoint to listen on: 8080, tcp:8080:interface=127.0.0.1, ssl:8443:privateKey=key.pem:certKey=cert.pem, unix:/run/ws.sock (repeatable; default tcp:8080).
        """
        if description.isdigit():
            description = f"tcp:{description}"
        self["port"].append(description)

    def opt_compression(self) -> None:
        """
        Accept permessage-deflate offers (RFC 7692); on by default (--no-compression turns it off).
        """
        self["compression"] = True

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse the options; run by twistd, a wrong one ends the command with
        one line naming it and the fix (not twistd's whole usage text).
        """
        try:
            #: The command line as given, for C{--workers}.
            self.arguments = list(options) if options is not None else sys.argv[1:]
            super().parseOptions(options)
        except usage.UsageError as exc:
            if getattr(self, "parent", None) is None:
                raise
            raise SystemExit(f"twistd websocket: error: {exc}") from None

    def postOptions(self) -> None:
        super().postOptions()
        self._checkServing()
        checkWorkers(self)
        self._checkPorts()

    def _checkPorts(self) -> None:
        """
        Check each C{--port} (or the default), C{--metrics} and
        C{--stomp-port}, and C{--origin}: build each endpoint and, run by
        twistd (before it forks into the background), bind where it would
        listen, so that what can't be served is said at once.

        @raise usage.UsageError: naming the option and the fix.
        """
        from twisted.internet import reactor

        # A worker of --workers inherits ports its parent checked and bound.
        run = getattr(self, "parent", None) is not None and WORKER_FDS not in os.environ
        for description in self["port"] or ["tcp:8080"]:
            checkPort(reactor, description, listen=run, default=not self["port"])
        others = [("--metrics", self.get("metrics"))] + [("--stomp-port", d) for d in self.get("stomp-port", [])]
        for name, description in others:
            if description is not None:
                checkPort(reactor, description, listen=run, name=name)
        for origin in self["origin"]:
            checkOrigin(origin)

    def _checkServing(self) -> None:
        """
        @raise usage.UsageError: C{--mode}, C{--app}, C{--static} or
            C{--path} is wrong.
        """
        if "stomp-port" in self.given and self["mode"] != "stomp":
            raise usage.UsageError("--stomp-port needs --mode stomp")
        if self["app"] is not None and self["mode"] == "stomp":
            # A function called with the StompServer to register handlers.
            importApp(self["app"], "a function")
        elif self["app"] is not None:
            if self["mode"] != "echo":
                raise usage.UsageError("--app and --mode broadcast exclude each other")
            checkApplication(self["app"], importApp(self["app"], "a class or factory"))
        if self["static"] is not None and not os.path.isdir(self["static"]):
            raise usage.UsageError(f"--static {self['static']}: not a directory")
        if self["http2"]:
            from wsproto_tw.resource import _requireH2

            try:
                _requireH2()
            except ImportError as exc:
                raise usage.UsageError(f"--http2: {exc}") from None
        if self["http2-max-streams"] < 1:
            raise usage.UsageError(f"--http2-max-streams must be at least 1, not {self['http2-max-streams']}")
        if "http2-max-streams" in self.given and not self["http2"]:
            raise usage.UsageError("--http2-max-streams needs --http2")
        path = self["path"]
        if path is not None and (not path.startswith("/") or not path.strip("/")):
            raise usage.UsageError(f"--path must start with / and name a path below /, not {path!r}")

    def applicationFactory(self) -> Callable[[], Any]:
        """
        @return: what builds each connection's application: C{--app},
            or the application of C{--mode} (with C{--mode stomp}, of the
            one L{StompServer <wsproto_tw.stomp.server.StompServer>}).
        """
        if self["mode"] == "stomp":
            if self.stompServer is None:
                from twisted.internet import reactor

                self.stompServer = buildStompServer(self, reactor)
            return self.stompServer.buildApplication
        if self["app"] is not None:
            return answering500(self["app"], reflect.namedAny(self["app"]))
        if self["mode"] == "broadcast":
            if self.get("redis") is not None:
                # Across processes, through Redis (issue 15).
                from wsproto_tw.busgroup import BusBroadcastGroup
                from wsproto_tw.redisbus import RedisBus

                bus = RedisBus(self["redis"])
                group = BusBroadcastGroup(bus, self["max-write-buffer"])
                bus.received = group.busMessageReceived
                self.busService = bus.service
                return group
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
    http2 = bool(options["http2"])
    if static is None and path is None and options["mode"] != "broadcast":
        if not http2:
            factory = WebSocketServerFactory(applicationFactory, config, reactor=reactor)
            return factory, factory
        # HTTP/2 streams reach a WebSocket through a site's resources: a
        # WebSocketResource as the root answers every path.
        from wsproto_tw.resource import WebSocketResource, WebSocketSite

        everywhere = WebSocketResource(applicationFactory, config, reactor)
        site = WebSocketSite(
            everywhere, config, reactor=reactor, http2=True, http2MaxStreams=options["http2-max-streams"]
        )
        return everywhere.webSocketFactory, site
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
    return webSocket.webSocketFactory, WebSocketSite(
        mountAt(path, webSocket, fallback),
        config,
        reactor=reactor,
        http2=http2,
        http2MaxStreams=options["http2-max-streams"],
    )


def makeService(options: Options) -> IService:
    """
    Build the C{twistd websocket} service: one listening service per
    C{--port}, all sharing one factory.
    """
    from twisted.internet import reactor

    if options["workers"] > 1 and WORKER_FDS not in os.environ:
        return _workersParent(options, reactor)
    # In a worker of --workers: the ports its parent bound, in order.
    adopted = adoptedEndpoints(reactor)
    factory, listening = _listening(options, options.config(), reactor)
    parent = _OperationsService()
    if adopted is not None:
        ParentWatch(reactor).setServiceParent(parent)
    # Added first, stopped last: listening stops, then connections close.
    InterruptibleShutdown(factory, options["shutdown-grace"]).setServiceParent(parent)
    pages = options["static"] is not None or options["mode"] == "broadcast"
    path = options["path"] or ("/ws" if pages else "/")
    ports = options["port"] or ["tcp:8080"]
    if adopted is not None:
        adopted = withTLS(reactor, adopted, ports + list(options.get("stomp-port", [])), answering=len(ports))
    for index, description in enumerate(ports):
        if adopted is not None:
            endpoint = adopted[index]
        elif description.split(":", 1)[0] == "ssl":
            # As Twisted's ssl: port, with a plain-text request answered.
            endpoint = tlsPortEndpoint(reactor, description)
        else:
            endpoint = endpoints.serverFromString(reactor, description)
        ListeningService(endpoint, listening, description, reactor, path, pages).setServiceParent(parent)
    if options["mode"] == "stomp":
        stompEndpoints = None if adopted is None else adopted[len(ports):]
        for service in stompPortServices(options.stompServer, options, stompEndpoints):
            service.setServiceParent(parent)
    if getattr(options, "busService", None) is not None:
        options.busService.setServiceParent(parent)  # --mode broadcast --redis
    return _operations(options, factory, parent)


def _workersParent(options: Options, reactor: Any) -> IService:
    """
    The parent process of C{--workers N}: it binds the ports and runs the
    workers (L{wsproto_tw.workers}), and serves nothing itself.
    """
    parent = _OperationsService()
    shared = (options["port"] or ["tcp:8080"]) + list(options.get("stomp-port", []))
    WorkersService(
        reactor, shared, workerArguments(options.arguments), options["workers"], options["shutdown-grace"]
    ).setServiceParent(parent)
    return _operations(options, None, parent)  # type: ignore[arg-type]


# -- operations: metrics, health, logs (issue 18) ----------------------------


class _OperationsService(MultiService):
    """
    The root service: the WebSocket service itself, or with C{--metrics}
    the service holding it, the metrics endpoint and the health service.
    It gives twistd's application its log observer.

    Stopped in reverse order: the health service first (C{/readyz} answers
    503 before listening stops and connections are told 1001), the
    WebSocket service next, and the metrics endpoint only once every
    connection is gone.

    @ivar logObserver: the observer twistd's application is to log to, or
        L{None} to leave twistd's own.
    """

    logObserver: Any = None

    def setServiceParent(self, parent: Any) -> None:
        # twistd logs to the application's ILogObserver component, unless
        # given --logger.
        from twisted.logger import ILogObserver
        from twisted.python.components import Componentized

        if self.logObserver is not None and isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.logObserver)
        super().setServiceParent(parent)


class _MetricsPort(Service):
    """
    The metrics endpoint's listening service: it stops listening only once
    the factory's connections are gone, so that C{/readyz} says 503 for as
    long as the server is shutting down.
    """

    def __init__(self, listening: Any, factory: WebSocketServerFactory, grace: float) -> None:
        self.listening = listening
        self.factory = factory
        self.grace = grace

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self.listening.privilegedStartService()

    def startService(self) -> None:
        super().startService()
        self.listening.startService()

    def stopService(self) -> Any:
        super().stopService()
        # The WebSocket service stopped first: its shutdown is under way,
        # and this only waits for it.
        d = self.factory.shutdown(grace=self.grace)
        d.addCallback(lambda _: self.listening.stopService())
        return d


def _readinessChecks(options: Options, health: Any) -> None:
    """
    Make C{/readyz} say 503 while what the server relays through is down:
    the external broker of C{--stomp-relay} (its system connection), the
    Redis bus of C{--redis}.
    """
    broker = getattr(getattr(options, "stompServer", None), "broker", None)
    if broker is not None and hasattr(broker, "system"):
        health.addReadinessCheck("broker", lambda: broker.system is not None)
    bus = getattr(broker, "bus", None) or getattr(getattr(options, "busService", None), "bus", None)
    if bus is not None:
        health.addReadinessCheck("bus", lambda: bus.connected)


def _operations(options: Options, factory: WebSocketServerFactory, service: IService) -> IService:
    """
    Add what C{--metrics}, C{--log-level} and C{--log-format} ask for. The
    log goes through wsproto_tw's observer (L{wsproto_tw.logs.logObserver})
    by default too, at C{info} in twistd's text lines, formatted several
    times faster than twistd's own observer; unless twistd is told
    C{--logger} or C{--syslog}.

    @param service: the WebSocket service, an L{_OperationsService}.
    @return: C{service} without C{--metrics}, else an
        L{_OperationsService} holding it.
    """
    from wsproto_tw.logs import logObserver, twistdLogFile

    level, format, endpoint = options["log-level"], options["log-format"], options["metrics"]
    outFile = twistdLogFile(getattr(options, "parent", None))
    observer = None if outFile is None else logObserver(outFile, level or "info", format or "text")
    if endpoint is None:
        service.logObserver = observer  # type: ignore[attr-defined]
        return service
    root = _OperationsService()
    root.logObserver = observer
    from wsproto_tw.metrics import Health, HealthService, Metrics, metricsSite, processRegistry

    registry = processRegistry()
    metrics = Metrics(registry)
    metrics.watch(factory)
    if getattr(options, "stompServer", None) is not None:
        metrics.watchStomp(options.stompServer)
    if options.get("sockjs"):
        metrics.watchSockJS()
    health = Health()
    _readinessChecks(options, health)
    root.registry, root.health = registry, health  # type: ignore[attr-defined]
    site = metricsSite(registry, health, metrics)
    _MetricsPort(strports.service(endpoint, site), factory, options["shutdown-grace"]).setServiceParent(root)
    service.setServiceParent(root)
    HealthService(health).setServiceParent(root)
    return root


# -- SockJS (issue 16): --sockjs PREFIX, beside the WebSocket ------------------


def _optSockJS(self: Options, prefix: str) -> None:
    """
    URL path where SockJS (for clients behind proxies that block the WebSocket upgrade) serves the same application, e.g. /sockjs (repeatable).
    """
    from wsproto_tw.sockjs.tap import checkPrefix

    self.setdefault("sockjs", []).append(checkPrefix(prefix))


Options.opt_sockjs = _optSockJS  # type: ignore[attr-defined]
_listeningWebSocket = _listening


def _listening(options: Options, config: Config, reactor: Any) -> tuple[WebSocketServerFactory, Any]:  # type: ignore[no-redef]
    """
    What L{_listeningWebSocket} builds, with SockJS mounted at each
    C{--sockjs} prefix (L{wsproto_tw.sockjs.tap.mountSockJS}); the
    WebSocket and SockJS share one application factory.
    """
    prefixes = options.get("sockjs") or []
    if not prefixes:
        return _listeningWebSocket(options, config, reactor)
    from wsproto_tw.sockjs.tap import mountSockJS

    applicationFactory = options.applicationFactory()
    options.applicationFactory = lambda: applicationFactory  # type: ignore[method-assign]
    factory, listening = _listeningWebSocket(options, config, reactor)
    return mountSockJS(prefixes, applicationFactory, config, reactor, factory, listening, options["shutdown-grace"])
