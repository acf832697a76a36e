# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics and health checks for a WebSocket server, with
C{prometheus_client} (the C{wsproto_tw[metrics]} extra).

Nothing is counted on the way: each connection's core keeps its own plain
integers (L{Statistics <wsproto_tw.core.stats.Statistics>}), and
L{Metrics} adds them up only when it is scraped (the live connections of
the factories it watches) or when a connection is gone (into the totals of
closed ones)::

    from wsproto_tw.metrics import Metrics, metricsSite

    metrics = Metrics()
    factory = WebSocketServerFactory(MyApplication, metrics=metrics)
    endpoints.serverFromString(reactor, "tcp:8080").listen(factory)
    endpoints.serverFromString(reactor, "tcp:9108").listen(metricsSite())

The families, all prefixed C{wsproto_tw_}: C{connections_open} (a gauge)
and C{connections_opened_total}, by C{wire}; C{handshakes_total} by HTTP
C{status}; C{messages_received_total}, C{messages_sent_total},
C{message_bytes_received_total} and C{message_bytes_sent_total} by C{type}
(C{text}, C{binary}; payload bytes, after decompression on the way in,
before compression on the way out); C{wire_bytes_received_total} and
C{wire_bytes_sent_total} (everything, heads and frame headers included);
C{close_codes_received_total}, C{close_codes_sent_total} and
C{failures_total} by C{code} (counted when a connection is gone);
C{ping_rtt_seconds} (a histogram of keepalive round trips);
C{slow_consumer_drops_total}; C{read_pauses_total} by C{reason}
(C{writes}: the peer does not read; C{backlog}: the application is behind;
C{application}: it paused reading; C{negotiating}: it answers the opening
request later); C{compression_input_bytes_total},
C{compression_output_bytes_total} and C{compression_ratio} (messages sent
compressed).

With L{Metrics.watchStomp}, the C{stomp_} families of a STOMP server;
with L{Metrics.watchSockJS}, SockJS sessions under the wire C{sockjs}.
L{Metrics.snapshot} gives the same figures as plain data, with the
slowest consumers, for the C{/status} page of L{metricsSite}.

A scrape reads the connections' counters as they are: it must run in the
reactor thread, as L{MetricsResource} does (not through
C{prometheus_client}'s own threaded servers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from twisted.application.service import Service
from twisted.web.resource import Resource
from twisted.web.server import Site

from wsproto_tw.core.stats import RTT_BUCKETS

__all__ = [
    "Health",
    "HealthResource",
    "HealthService",
    "Metrics",
    "MetricsResource",
    "StatusResource",
    "metricsSite",
    "processRegistry",
    "statusPage",
]

#: The wire of a connection whose wire does not name itself (C{wireName}).
DEFAULT_WIRE = "websocket"

#: The Statistics fields that are added up as they are.
_FIELDS = (
    "bytes_received", "bytes_sent",
    "text_received", "text_bytes_received", "binary_received", "binary_bytes_received",
    "text_sent", "text_bytes_sent", "binary_sent", "binary_bytes_sent",
    "deflate_bytes_in", "deflate_bytes_out", "slow_consumer_drops",
)

_fieldValues = attrgetter(*_FIELDS)

#: The opening handshake's statuses that open a connection: HTTP/1.1 and
#: HTTP/2 (RFC 8441).
_OPENED = (101, 200)


def _wireName(connection: Any) -> str:
    """
    @return: the name of a connection's wire, for the C{wire} label: its
        wire's C{wireName} attribute, else L{DEFAULT_WIRE}.
    """
    return getattr(connection.wire, "wireName", DEFAULT_WIRE)


def _count(counts: dict, key: Any, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


class _Totals:
    """
    Statistics added up over many connections.

    @ivar sums: the L{_FIELDS}, by name.
    @ivar handshakes: connections by handshake status.
    @ivar opened: connections that opened, by wire.
    @ivar rttCounts: keepalive round trips by bucket of L{RTT_BUCKETS}.
    @ivar rttSum: their total, in seconds.
    @ivar readPauses: read pauses by reason (upper case).
    """

    def __init__(self) -> None:
        self.sums = dict.fromkeys(_FIELDS, 0)
        self.handshakes: dict[int, int] = {}
        self.opened: dict[str, int] = {}
        self.rttCounts = [0] * (len(RTT_BUCKETS) + 1)
        self.rttSum = 0.0
        self.readPauses: dict[str, int] = {}

    def add(self, stats: Any, wire: str) -> None:
        """
        Add one connection's L{Statistics <wsproto_tw.core.stats.Statistics>}.

        @param wire: the name of its wire.
        """
        sums = self.sums
        # Most are 0 (a connection that only opened and closed): skipped.
        for name, value in zip(_FIELDS, _fieldValues(stats)):
            if value:
                sums[name] += value
        status = stats.handshake_status
        if status is not None:
            _count(self.handshakes, status)
            if status in _OPENED:
                _count(self.opened, wire)
        if stats.rtt_counts is not None:
            self.rttCounts = [a + b for a, b in zip(self.rttCounts, stats.rtt_counts)]
            self.rttSum += stats.rtt_sum
        if stats.read_pauses:
            for reason, n in stats.read_pauses.items():
                _count(self.readPauses, reason, n)

    def copy(self) -> _Totals:
        other = _Totals()
        other.sums = dict(self.sums)
        other.handshakes = dict(self.handshakes)
        other.opened = dict(self.opened)
        other.rttCounts = list(self.rttCounts)
        other.rttSum = self.rttSum
        other.readPauses = dict(self.readPauses)
        return other


class Metrics(Collector):
    """
    The WebSocket metrics of the factories it watches: a
    C{prometheus_client} collector that reads their connections' counters
    at scrape time. One per registry (its families' names are fixed):
    have it L{watch} every factory.

    @ivar factories: the L{WebSocketServerFactory
        <wsproto_tw.server.WebSocketServerFactory>}s watched.
    """

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        """
        @param registry: where to register, or L{None} not to (then
            L{collect} it yourself, or register it later).
        """
        self.factories: list[Any] = []
        self.stompServers: list[Any] = []
        self.sockJS = False
        self._closed = _Totals()
        self._closeSent: dict[int, int] = {}
        self._closeReceived: dict[int, int] = {}
        self._failures: dict[int, int] = {}
        if registry is not None:
            registry.register(self)

    def watch(self, factory: Any) -> None:
        """
        Count the connections of C{factory} from now on (its C{metrics}
        becomes this object). L{WebSocketServerFactory
        <wsproto_tw.server.WebSocketServerFactory>}C{(metrics=)} calls it;
        call it for a factory built elsewhere (a L{WebSocketResource
        <wsproto_tw.resource.WebSocketResource>}'s C{webSocketFactory}).
        """
        if factory not in self.factories:
            self.factories.append(factory)
        factory.metrics = self

    def watchSockJS(self) -> None:
        """
        Count this process's SockJS sessions too, under the wire C{sockjs}
        of C{connections_open} and C{connections_opened} (from
        L{SessionCounts <wsproto_tw.sockjs.transport.SessionCounts>}: every
        L{SockJSResource <wsproto_tw.sockjs.resource.SockJSResource>} of
        the process). Their messages are not counted.
        """
        self.sockJS = True

    def watchStomp(self, server: Any) -> None:
        """
        Count the STOMP sessions of C{server} too (the C{stomp_} families,
        shown once a server is watched): sessions, subscriptions, frames
        received by command, messages delivered and C{ERROR} frames sent,
        over WebSocket and STOMP-over-TCP alike. Read at scrape time from
        the sessions' own counters and the server's totals of ended ones.

        @param server: a L{StompServer <wsproto_tw.stomp.server.StompServer>}.
        """
        if server not in self.stompServers:
            self.stompServers.append(server)

    def closed(self, connection: Any) -> None:
        """
        Add a connection that is gone to the totals. Its factory calls this
        once, before forgetting it.

        @param connection: a L{WebSocketConnection
            <wsproto_tw.connection.WebSocketConnection>}.
        """
        stats = connection.statistics
        if stats is None:
            return  # its wire never connected
        self._closed.add(stats, _wireName(connection))
        record = connection.closeRecord
        if record.sent is not None:
            _count(self._closeSent, record.sent)
        if record.received is not None:
            _count(self._closeReceived, record.received)
        if record.failed is not None:
            _count(self._failures, record.failed)

    def refused(self, status: int) -> None:
        """
        Count an opening handshake answered with C{status} before any
        connection of a watched factory took it: a plain-text request on a
        TLS port (L{TLSPortEndpoint <wsproto_tw.tlsport.TLSPortEndpoint>}).

        @param status: the HTTP status sent.
        """
        _count(self._closed.handshakes, status)

    # -- Collector -------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        """
        @return: the families, without samples (what registering needs).
        """
        families = list(self._families(_Totals(), {}, empty=True))
        if self.stompServers:
            families += self._stompFamilies(empty=True)
        return families

    def collect(self) -> Iterable[Metric]:
        """
        @return: every family, from the totals of closed connections plus
            the counters of the live ones.
        """
        totals, live, _ = self._gather()
        families = list(self._families(totals, live))
        if self.stompServers:
            families += self._stompFamilies()
        return families

    def _gather(self) -> tuple[_Totals, dict[str, int], list[Any]]:
        """
        @return: the totals of closed connections plus the counters of the
            live ones, the open connections by wire, and the open
            connections.
        """
        totals = self._closed.copy()
        live: dict[str, int] = {}
        opened = []
        for factory in self.factories:
            for connection in list(factory.connections):
                stats = connection.statistics
                if stats is None:
                    continue
                wire = _wireName(connection)
                totals.add(stats, wire)
                if stats.handshake_status in _OPENED:
                    _count(live, wire)
                    opened.append(connection)
        if self.sockJS:
            from wsproto_tw.sockjs.transport import SessionCounts

            totals.opened["sockjs"] = SessionCounts.opened
            live["sockjs"] = SessionCounts.opened - SessionCounts.closed
        for wire in totals.opened:
            # A wire whose last connection closed shows 0, not nothing.
            live.setdefault(wire, 0)
        return totals, live, opened

    def snapshot(self, now: float, slowest: int = 10) -> dict[str, Any]:
        """
        What the C{/status} page shows, as plain data (C{/status.json}):
        the figures of L{collect}, and the slowest consumers.

        @param now: the time, in seconds on the connections' clock.
        @param slowest: how many slow consumers to list at most.
        @return: a dict of C{open} and C{opened} (connections by wire),
            C{handshakes} (by status), C{messages} and C{messageBytes}
            (C{received} and C{sent}, by type), C{wireBytes} (C{received},
            C{sent}), C{closeCodes} (C{received} and C{sent}, by code),
            C{failures} (by code), C{slowConsumerDrops}, C{slowConsumers}
            (the open connections whose peer does not read what we write,
            paused longest first: C{peer}, C{path}, C{pausedFor},
            C{openFor} and C{lastActivity} in seconds ago, C{messagesSent},
            C{bytesSent}), and with a watched STOMP server, C{stomp}.
        """
        from wsproto_tw._pump import _peer

        totals, live, opened = self._gather()
        sums = totals.sums
        paused = sorted(
            (c for c in opened if getattr(c, "writesPausedSince", None) is not None),
            key=lambda c: c.writesPausedSince,
        )[:slowest]

        def ago(when: float | None) -> float | None:
            return None if when is None else round(now - when, 3)

        slow = []
        for connection in paused:
            stats = connection.statistics
            request = connection.request
            slow.append({
                "peer": _peer(connection.wire),
                "path": request.path if request is not None else None,
                "pausedFor": ago(connection.writesPausedSince),
                "openFor": ago(connection.openedAt),
                "lastActivity": ago(connection.lastActivity),
                "messagesSent": stats.text_sent + stats.binary_sent,
                "bytesSent": stats.bytes_sent,
            })

        def byKey(counts: dict) -> dict[str, int]:
            return {str(key): counts[key] for key in sorted(counts)}

        result: dict[str, Any] = {
            "open": live,
            "opened": dict(totals.opened),
            "handshakes": byKey(totals.handshakes),
            "messages": {
                direction: {"text": sums[f"text_{direction}"], "binary": sums[f"binary_{direction}"]}
                for direction in ("received", "sent")
            },
            "messageBytes": {
                direction: {"text": sums[f"text_bytes_{direction}"], "binary": sums[f"binary_bytes_{direction}"]}
                for direction in ("received", "sent")
            },
            "wireBytes": {"received": sums["bytes_received"], "sent": sums["bytes_sent"]},
            "closeCodes": {"received": byKey(self._closeReceived), "sent": byKey(self._closeSent)},
            "failures": byKey(self._failures),
            "slowConsumerDrops": sums["slow_consumer_drops"],
            "slowConsumers": slow,
        }
        if self.stompServers:
            result["stomp"] = {
                family.name[len("wsproto_tw_stomp_"):]: (
                    {s.labels["command"]: s.value for s in family.samples}
                    if family.name.endswith("frames_received") else family.samples[0].value
                )
                for family in self._stompFamilies()
            }
        return result

    def _stompFamilies(self, empty: bool = False) -> list[Metric]:
        from wsproto_tw.stomp.stats import SessionTotals

        totals, open_, subscriptions = SessionTotals(), 0, 0
        for server in self.stompServers:
            ended = server.totals
            totals.sessions += ended.sessions
            for command, n in ended.frames_received.items():
                _count(totals.frames_received, command, n)
            totals.messages_delivered += ended.messages_delivered
            totals.errors_sent += ended.errors_sent
            for session in list(server.sessions):
                totals.add(session)
                open_ += 1
                subscriptions += session.subscription_count
        p = "wsproto_tw_stomp_"
        families: list[Metric] = [
            GaugeMetricFamily(p + "sessions_open", "Open STOMP sessions."),
            CounterMetricFamily(p + "sessions", "STOMP sessions started."),
            GaugeMetricFamily(p + "subscriptions", "Subscriptions of the open STOMP sessions."),
            CounterMetricFamily(p + "frames_received", "STOMP frames received from clients, by command.",
                                labels=["command"]),
            CounterMetricFamily(p + "messages_delivered", "MESSAGE frames sent to subscribers."),
            CounterMetricFamily(p + "errors_sent", "ERROR frames sent (each ends its session)."),
        ]
        if not empty:
            # totals.sessions counted the live ones too (add): all started.
            for family, value in zip(families, (open_, totals.sessions, subscriptions)):
                family.add_metric([], value)
            for command in sorted(totals.frames_received):
                families[3].add_metric([command], totals.frames_received[command])
            families[4].add_metric([], totals.messages_delivered)
            families[5].add_metric([], totals.errors_sent)
        return families

    def _families(self, totals: _Totals, live: dict[str, int], empty: bool = False) -> Iterator[Metric]:
        sums = totals.sums
        p = "wsproto_tw_"

        def byLabel(family: Any, counts: dict, default: Iterable = ()) -> Any:
            for key in default:
                counts.setdefault(key, 0)
            if not empty:
                for key in sorted(counts):
                    family.add_metric([str(key)], counts[key])
            return family

        def single(family: Any, value: float) -> Any:
            if not empty:
                family.add_metric([], value)
            return family

        yield byLabel(GaugeMetricFamily(p + "connections_open", "Open WebSocket connections.", labels=["wire"]),
                      dict(live), [DEFAULT_WIRE])
        yield byLabel(CounterMetricFamily(p + "connections_opened", "WebSocket connections opened.", labels=["wire"]),
                      dict(totals.opened), [DEFAULT_WIRE])
        yield byLabel(CounterMetricFamily(p + "handshakes", "Opening handshakes answered, by HTTP status.",
                                          labels=["status"]), dict(totals.handshakes))
        for direction in ("received", "sent"):
            yield byLabel(
                CounterMetricFamily(p + f"messages_{direction}", f"Messages {direction}, by type.", labels=["type"]),
                {"text": sums[f"text_{direction}"], "binary": sums[f"binary_{direction}"]},
            )
            yield byLabel(
                CounterMetricFamily(
                    p + f"message_bytes_{direction}",
                    f"Payload bytes of the messages {direction} (uncompressed), by type.",
                    labels=["type"],
                ),
                {"text": sums[f"text_bytes_{direction}"], "binary": sums[f"binary_bytes_{direction}"]},
            )
            yield single(
                CounterMetricFamily(p + f"wire_bytes_{direction}", f"Bytes {direction} on the wire, heads included."),
                sums[f"bytes_{direction}"],
            )
        yield byLabel(CounterMetricFamily(p + "close_codes_received", "Close frames received, by code.",
                                          labels=["code"]), dict(self._closeReceived))
        yield byLabel(CounterMetricFamily(p + "close_codes_sent", "Close frames sent, by code.", labels=["code"]),
                      dict(self._closeSent))
        yield byLabel(CounterMetricFamily(p + "failures", "Connections failed (RFC 6455 7.1.7), by close code.",
                                          labels=["code"]), dict(self._failures))
        rtt = HistogramMetricFamily(p + "ping_rtt_seconds", "Keepalive ping round-trip time.")
        if not empty:
            buckets, cumulative = [], 0
            for bound, n in zip([*map(str, RTT_BUCKETS), "+Inf"], totals.rttCounts):
                cumulative += n
                buckets.append((bound, cumulative))
            rtt.add_metric([], buckets, totals.rttSum)
        yield rtt
        yield single(CounterMetricFamily(p + "slow_consumer_drops",
                                         "Connections dropped because the peer did not read."),
                     sums["slow_consumer_drops"])
        yield byLabel(CounterMetricFamily(p + "read_pauses", "Times reading stopped, by reason.", labels=["reason"]),
                      {reason.lower(): n for reason, n in totals.readPauses.items()})
        yield single(CounterMetricFamily(p + "compression_input_bytes",
                                         "Payload bytes of the messages sent compressed, before compression."),
                     sums["deflate_bytes_in"])
        yield single(CounterMetricFamily(p + "compression_output_bytes",
                                         "Payload bytes of the messages sent compressed, after compression."),
                     sums["deflate_bytes_out"])
        ratio = GaugeMetricFamily(p + "compression_ratio",
                                  "Uncompressed over compressed bytes of the messages sent compressed.")
        if not empty and sums["deflate_bytes_out"]:
            ratio.add_metric([], sums["deflate_bytes_in"] / sums["deflate_bytes_out"])
        yield ratio


def processRegistry() -> CollectorRegistry:
    """
    @return: a new registry with C{prometheus_client}'s process, platform
        and garbage-collector collectors, ready for a L{Metrics}.
    """
    from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class MetricsResource(Resource):
    """
    A C{twisted.web} resource serving a registry in the Prometheus text
    format (or OpenMetrics, if the scraper asks for it), rendered in the
    reactor thread. Mount it anywhere::

        root.putChild(b"metrics", MetricsResource())
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Any) -> bytes:
        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", contentType.encode("ascii"))
        return encoder(self.registry)

    render_HEAD = render_GET


class Health:
    """
    Whether the server is ready for new connections: a load balancer
    should stop sending new ones once it is not. It is ready while it
    listens (L{ready}) and every readiness check added with
    L{addReadinessCheck} passes (a broker or a bus connected, say).

    @ivar ready: L{True} while listening, L{False} before it and once
        shutting down.
    """

    def __init__(self, ready: bool = False) -> None:
        self.ready = ready
        self._checks: list[tuple[str, Callable[[], Any]]] = []

    def addReadinessCheck(self, name: str, check: Callable[[], Any]) -> None:
        """
        Be unready while C{check} fails: a relay to a broker adds one that
        tells whether it is connected. Checks are called at each readiness
        request, in the reactor thread: they must answer at once, from
        what they know (a flag kept up to date), without I/O.

        @param name: what C{/readyz} names when the check fails, e.g.
            C{"broker"}.
        @param check: called with no argument; ready when it returns a true
            value, not ready when it returns a false one or raises.
        """
        self._checks.append((name, check))

    def removeReadinessCheck(self, name: str) -> None:
        """
        Forget the readiness checks added under C{name}.
        """
        self._checks = [(n, check) for n, check in self._checks if n != name]

    def unready(self) -> list[str]:
        """
        @return: why the server is not ready: C{"stopping"} (or not yet
            listening) and the names of the failing checks; empty when
            ready.
        """
        reasons = [] if self.ready else ["stopping"]
        for name, check in self._checks:
            try:
                passed = check()
            except Exception:
                passed = False
            if not passed:
                reasons.append(name)
        return reasons


class HealthService(Service):
    """
    Makes a L{Health} ready when started and not ready when stopped. Add it
    to the parent after the listening services: stopped first, it turns
    the server unready before listening stops and connections are told
    1001.
    """

    def __init__(self, health: Health) -> None:
        self.health = health

    def startService(self) -> None:
        super().startService()
        self.health.ready = True

    def stopService(self) -> None:
        self.health.ready = False
        return super().stopService()


class HealthResource(Resource):
    """
    C{200 ok}, or C{503} with the reason: for readiness (C{ready=True}),
    while the L{Health} is not ready (C{not ready}, then what is not: the
    server stopping, or the names of the failing readiness checks, as in
    C{not ready: broker}); for liveness, never.
    """

    isLeaf = True

    def __init__(self, health: Health, ready: bool = True) -> None:
        super().__init__()
        self.health = health
        self.checksReady = ready

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        if self.checksReady:
            reasons = self.health.unready()
            if reasons:
                request.setResponseCode(503)
                if reasons == ["stopping"]:
                    return b"not ready\n"
                return f"not ready: {', '.join(reasons)}\n".encode("utf-8")
        return b"ok\n"

    render_HEAD = render_GET


class _MetricsSite(Site):
    """
    A L{Site} that writes no access log line (a load balancer's health
    checks and a scraper would fill the log), and names itself C{metrics}
    in the lines of its ports.
    """

    noisy = False

    def logPrefix(self) -> str:
        return "metrics"

    def log(self, request: Any) -> None:
        pass


class StatusResource(Resource):
    """
    C{/status.json}: L{Metrics.snapshot} as JSON, with C{time} (seconds
    on the clock) and C{ready}, for the C{/status} page (or any script).
    """

    isLeaf = True

    def __init__(self, metrics: Metrics, health: Health | None = None, clock: Any = None) -> None:
        """
        @param clock: the L{IReactorTime} of the connections; the global
            reactor by default.
        """
        super().__init__()
        if clock is None:
            from twisted.internet import reactor as clock
        self.metrics = metrics
        self.health = health
        self.clock = clock

    def render_GET(self, request: Any) -> bytes:
        import json

        now = self.clock.seconds()
        snapshot = self.metrics.snapshot(now)
        snapshot["time"] = now
        snapshot["ready"] = self.health is None or not self.health.unready()
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(snapshot, sort_keys=True).encode("utf-8")


def statusPage() -> Resource:
    """
    @return: the C{/status} page: one self-contained HTML file (no
        external assets) that polls C{status.json} beside it every second
        (C{?interval=SECONDS} to change it) and shows open connections,
        message and byte rates and totals, close codes, failures and the
        slowest consumers.
    """
    from importlib import resources

    from twisted.web.static import Data

    page = resources.files("wsproto_tw.static").joinpath("status.html").read_bytes()
    resource = Data(page, "text/html; charset=utf-8")
    resource.isLeaf = True
    return resource


def metricsSite(
    registry: CollectorRegistry = REGISTRY,
    health: Health | None = None,
    metrics: Metrics | None = None,
    clock: Any = None,
) -> Site:
    """
    The site of the metrics endpoint: C{/metrics} (the registry), C{/health}
    and C{/readyz} (200 while C{health} is ready, 503 otherwise: while
    stopping, or while one of its readiness checks fails, see
    L{Health.addReadinessCheck}), and C{/healthz} (200 while the process
    answers); with C{metrics}, C{/status} (a page for people, see
    L{statusPage}) and C{/status.json} (L{StatusResource}). It writes no
    access log.

    @param health: the readiness to report; without it, always ready.
    @param metrics: the L{Metrics} the status page shows.
    @param clock: the connections' L{IReactorTime}, for the status page;
        the global reactor by default.
    """
    if health is None:
        health = Health(ready=True)
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
    ready = HealthResource(health)
    root.putChild(b"health", ready)
    root.putChild(b"readyz", ready)
    root.putChild(b"healthz", HealthResource(health, ready=False))
    if metrics is not None:
        root.putChild(b"status", statusPage())
        root.putChild(b"status.json", StatusResource(metrics, health, clock))
    return _MetricsSite(root)
