# -*- test-case-name: tests.test_workers -*-
"""
C{twistd websocket --workers N}: N processes serving the same ports.

The parent binds the listening sockets of each C{--port} and
C{--stomp-port} (C{tcp:}, C{tcp6:}, C{ssl:} and C{unix:} descriptions,
parsed by Twisted's endpoints), never accepts on them, and starts N
workers: C{twistd websocket} again with the same options, each inheriting
its listening sockets as file descriptors 3, 4, ... and adopting them
(C{reactor.adoptStreamPort}). For an C{ssl:} port each worker reads the
certificate and key of the description itself and runs TLS over the
adopted socket (the parent reads them too, so that a missing file is one
error line before any worker starts).

For a TCP port the parent binds one socket per worker, all with
C{SO_REUSEPORT} on the same address, and the kernel spreads new
connections over them evenly (by a hash of their addresses). One socket
shared by all workers would not: whichever worker wakes first accepts
every connection waiting, so a burst of connections lands on one worker
(measured: two workers then echo no faster than one). The parent binding
them keeps what the endpoints give (interfaces, backlogs, IPv6, port C{0},
privileged ports bound before twistd drops privileges, a port in use said
once), and as the parent holds each worker's socket, connections queued
on it while its worker restarts wait for the new one instead of being
reset. A UNIX socket can't be bound twice: its one socket is shared.

The parent relays each worker's output to its own log, prefixed with the
worker's number and pid; restarts a worker that exits (after a second);
and on SIGTERM tells every worker to stop (each says 1001 Going Away to
its clients, as one process does) and waits for them, at most the
shutdown grace and five seconds, before killing what is left.

Each worker has the whole configuration, and its own embedded STOMP
broker and broadcast group: messages reach the clients of the worker that
received them. To fan out across workers, relay STOMP to a broker
(C{--stomp-relay}).
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, endpoints, error, tcp, unix
from twisted.internet.defer import Deferred, DeferredList, gatherResults, maybeDeferred
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.logger import Logger
from twisted.python import usage

from wsproto_tw._startup import _exitAfterTwistd, describeListenError, socketAddress

__all__ = [
    "WORKER_FDS",
    "ParentWatch",
    "WorkersService",
    "adoptedEndpoints",
    "checkWorkers",
    "withTLS",
    "workerArguments",
    "workerCount",
]

#: The environment variable telling a worker its inherited listening
#: sockets: C{"FD:FAMILY,..."} in the order of the C{--port} options, then
#: the C{--stomp-port} ones.
WORKER_FDS = "WSPROTO_TW_WORKER_FDS"

#: Seconds before a worker that exited is started again.
RESTART_DELAY = 1.0

_log = Logger(namespace="wsproto_tw.workers")


def workerCount(value: str) -> int:
    """
    Parse C{--workers}: a whole number at least 1, or C{auto} for the
    number of cores.

    @raise usage.UsageError: anything else.
    """
    if value == "auto":
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise usage.UsageError(f"--workers must be a whole number at least 1, or auto, not {value!r}")
    return int(value)


def checkWorkers(options: Any) -> None:
    """
    Check what C{--workers} above 1 can't share.

    @raise usage.UsageError: naming the option.
    """
    if options["workers"] < 2:
        return
    if options.get("metrics") is not None:
        raise usage.UsageError("--metrics can't be shared by --workers: each worker would need a port of its own")
    for name, descriptions in (("--port", options["port"] or ["tcp:8080"]), ("--stomp-port", options.get("stomp-port", []))):
        for description in descriptions:
            kind = description.split(":", 1)[0]
            if kind not in ("tcp", "tcp6", "ssl", "unix"):
                raise usage.UsageError(f"{name} {description}: --workers shares tcp:, tcp6:, ssl: and unix: ports only")


def workerArguments(arguments: Sequence[str]) -> list[str]:
    """
    @return: the C{twistd websocket} arguments of a worker: the parent's
        without C{--workers}.
    """
    out: list[str] = []
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument == "--workers":
            skip = True
        elif not argument.startswith("--workers="):
            out.append(argument)
    return out


def adoptedEndpoints(reactor: Any, environ: Any = None) -> list[Any] | None:
    """
    In a worker: the endpoints of the listening sockets it inherited, in
    the order of the C{--port} options then the C{--stomp-port} ones.

    @return: L{endpoints.AdoptedStreamServerEndpoint}s, or L{None} when
        this process is not a worker.
    """
    value = (os.environ if environ is None else environ).get(WORKER_FDS)
    if value is None:
        return None
    out = []
    for item in filter(None, value.split(",")):
        fd, family = item.split(":")
        out.append(_InheritedEndpoint(reactor, int(fd), int(family)))
    return out


class _InheritedEndpoint(endpoints.AdoptedStreamServerEndpoint):
    """
    A listening socket a worker inherited from the parent. A UNIX socket is
    the parent's, shared by every worker: the worker's port leaves its path
    in place and the socket listening when it stops (Twisted's adopted
    port would remove the one and shut the other down, for every worker,
    those started after that one included).
    """

    def listen(self, factory: Any) -> Deferred:
        if self.addressFamily != socket.AF_UNIX:
            return super().listen(factory)
        if self._used:
            return defer.fail(error.AlreadyListened())
        self._used = True
        try:
            self._setNonBlocking(self.fileno)
            port = _InheritedUNIXPort._fromListeningDescriptor(self.reactor, self.fileno, factory)
            port.startListening()
            self._close(self.fileno)
        except BaseException:
            return defer.fail()
        return defer.succeed(port)


class _InheritedUNIXPort(unix.Port):
    """
    A UNIX listening port whose socket and path other processes share (the
    parent's): starting, it neither binds nor touches the path (Twisted's
    adopted port would chmod it to its default mode, 0666, whatever
    C{mode=} the parent was given, and through a symbolic link put there
    meanwhile); stopping, it neither removes the path nor shuts the socket
    down (which would stop it listening in every process: Twisted spares
    an adopted TCP port that, not an adopted UNIX one).
    """

    _shouldShutdown = False

    def startListening(self) -> None:
        tcp._reservedFD.reserve()
        _log.info("{factory} starting on {path}", factory=self._getLogPrefix(self.factory),
                  path=os.fsdecode(self._bindPath))
        self.factory.doStart()
        self.socket = self._preexistingSocket
        self._preexistingSocket = None
        self.connected = True
        self.fileno = self.socket.fileno
        self.numberAccepts = 100
        self.startReading()

    def connectionLost(self, reason: Any) -> None:
        # An adopted port holds no lock file: only the socket to close.
        tcp.Port.connectionLost(self, reason)


class _SharedUNIXPort(unix.Port):
    """
    The parent's UNIX listening port, shared with the workers: if its path
    is gone when it stops (removed by someone else), there is nothing to
    remove, and its lock file is still released.
    """

    def connectionLost(self, reason: Any) -> None:
        try:
            super().connectionLost(reason)
        except FileNotFoundError:
            if self.lockFile is not None:
                self.lockFile.unlock()
            tcp.Port.connectionLost(self, reason)


def withTLS(reactor: Any, adopted: Sequence[Any], descriptions: Sequence[str], answering: int | None = None) -> list[Any]:
    """
    In a worker: the inherited endpoints, those of C{ssl:} descriptions
    wrapped in TLS with the description's certificate and key
    (L{TLSPortEndpoint}).

    @param adopted: L{adoptedEndpoints}, in the order of C{descriptions}.
    @param answering: how many of the first ports serve HTTP and answer a
        plain-text request with C{400} (the rest, STOMP ports, do not);
        all by default.
    @raise ValueError: the lists differ in length.
    """
    if len(adopted) != len(descriptions):
        raise ValueError(f"{len(adopted)} inherited sockets for {len(descriptions)} ports")
    from wsproto_tw.tlsport import tlsPortEndpoint

    if answering is None:
        answering = len(descriptions)
    out = []
    for index, (endpoint, description) in enumerate(zip(adopted, descriptions)):
        if description.split(":", 1)[0] == "ssl":
            endpoint = tlsPortEndpoint(reactor, description, endpoint, answerPlainText=index < answering)
        out.append(endpoint)
    return out


class _ParentPipe(Protocol):
    # A worker's standard input is a pipe from its parent, which never
    # writes to it: its end means the parent is gone.
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def connectionLost(self, reason: Any = None) -> None:
        if self.reactor.running:
            _log.warn("the parent of this worker is gone: stopping")
            self.reactor.stop()


class ParentWatch(Service):
    """
    In a worker: stop the reactor (and so the worker, with 1001 Going Away
    to its clients) when the parent process is gone, even killed.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def startService(self) -> None:
        super().startService()
        from twisted.internet.stdio import StandardIO

        StandardIO(_ParentPipe(self.reactor), stdin=0, stdout=os.open(os.devnull, os.O_WRONLY), reactor=self.reactor)


def _twistd() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(script):
        return [sys.executable, script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _reusePortSockets(endpoint: Any, count: int) -> list[socket.socket]:
    """
    @return: C{count} listening sockets with C{SO_REUSEPORT} on the
        address of a TCP endpoint (port C{0}: the port the first got).
    """
    family = socket.AF_INET6 if isinstance(endpoint, endpoints.TCP6ServerEndpoint) or ":" in (endpoint._interface or "") else socket.AF_INET
    port = endpoint._port
    out = []
    try:
        for _ in range(count):
            listening = socket.socket(family, socket.SOCK_STREAM)
            out.append(listening)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listening.bind(socketAddress(family, endpoint._interface or ("::" if family == socket.AF_INET6 else ""), port))
            listening.listen(endpoint._backlog)
            listening.setblocking(False)
            port = listening.getsockname()[1]
    except BaseException:
        for listening in out:
            listening.close()
        raise
    return out


class _Refuse(Factory):
    # The parent never accepts (it stops reading its ports at once).
    noisy = False

    def logPrefix(self) -> str:
        # Twisted's port logs "<this> starting on <path>".
        return "the workers' listening socket"

    def buildProtocol(self, addr: Any) -> None:
        return None


# The time stamp twistd's text log starts a line with.
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d{4}|Z) ")


class _Worker(ProcessProtocol):
    def __init__(self, service: WorkersService, index: int) -> None:
        self.service = service
        self.index = index
        self.pid: int | None = None
        self.ended: Deferred = Deferred()
        self._partial = b""

    def connectionMade(self) -> None:
        self.pid = self.transport.pid
        _log.info("worker {index} started (pid {pid})", index=self.index, pid=self.pid)

    def outReceived(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            # The parent's log line has a time stamp of its own: the
            # worker's, if its line starts with one, goes.
            text = _STAMP.sub("", line.decode("utf-8", "replace").rstrip("\r"), 1)
            _log.info("worker {index} (pid {pid}): {line}", index=self.index, pid=self.pid, line=text)

    errReceived = outReceived

    def signal(self, name: str) -> None:
        try:
            self.transport.signalProcess(name)
        except Exception:
            pass  # already gone

    def processEnded(self, reason: Any) -> None:
        if self._partial:
            self.outReceived(b"\n")
        self.service._ended(self, reason)
        self.ended.callback(None)


class WorkersService(Service):
    """
    The parent of C{--workers N}: the shared listening sockets and the
    worker processes.

    @ivar workers: the running L{_Worker}s by index.
    @ivar ports: per description, the workers' listening sockets (a list:
        TCP) or the one shared listening port (UNIX), never read by this
        process.
    """

    def __init__(
        self,
        reactor: Any,
        descriptions: Sequence[str],
        arguments: Sequence[str],
        count: int,
        grace: float,
        environ: dict[str, str] | None = None,
    ) -> None:
        """
        @param descriptions: the endpoint descriptions to share, in the
            order the workers adopt them (C{--port}s, then C{--stomp-port}s).
        @param arguments: the workers' C{twistd websocket} arguments.
        @param count: how many workers.
        @param grace: C{--shutdown-grace}: seconds a worker may take to
            close its connections before it is killed (plus five).
        """
        self.reactor = reactor
        self.descriptions = list(descriptions)
        self.arguments = list(arguments)
        self.count = count
        self.grace = grace
        self.environ = dict(os.environ if environ is None else environ)
        self.ports: list[Any] = []
        self.workers: dict[int, _Worker] = {}
        self._stopping = False
        self._restarts: dict[int, Any] = {}

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        for description in self.descriptions:
            endpoint = endpoints.serverFromString(self.reactor, description)
            if isinstance(endpoint, (endpoints.TCP4ServerEndpoint, endpoints.TCP6ServerEndpoint, endpoints.SSL4ServerEndpoint)):
                self.ports.append(_reusePortSockets(endpoint, self.count))
                continue
            # A UNIX socket: one, shared.
            port = _SharedUNIXPort(
                endpoint._address, _Refuse(), endpoint._backlog, endpoint._mode, self.reactor, endpoint._wantPID
            )
            try:
                port.startListening()
            except error.CannotListenError as failed:
                # As a single process says it (_startup.PortService), in one
                # line: the same path twice, say.
                _log.error("{problem}", problem=describeListenError(f"--port {description}", failed))
                self.reactor.addSystemEventTrigger("after", "shutdown", _exitAfterTwistd, 1)
                self.reactor.callWhenRunning(self.reactor.stop)
                self._stopping = True
                return
            port.stopReading()
            self.ports.append(port)

    def startService(self) -> None:
        super().startService()
        if self._stopping:
            return  # a port failed: no worker is started
        for index in range(1, self.count + 1):
            self._spawn(index)

    def _childFDs(self, index: int) -> tuple[dict[int, Any], str]:
        childFDs: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        described = []
        for offset, port in enumerate(self.ports):
            fd = 3 + offset
            listening = port[index - 1] if isinstance(port, list) else port.socket
            childFDs[fd] = listening.fileno()
            described.append(f"{fd}:{listening.family}")
        return childFDs, ",".join(described)

    def _spawn(self, index: int) -> None:
        self._restarts.pop(index, None)
        childFDs, described = self._childFDs(index)
        environ = dict(self.environ, **{WORKER_FDS: described, "PYTHONUNBUFFERED": "1"})
        command = _twistd() + ["-n", "--pidfile=", "websocket", *self.arguments]
        worker = _Worker(self, index)
        self.workers[index] = worker
        self.reactor.spawnProcess(worker, command[0], command, env=environ, childFDs=childFDs)

    def _ended(self, worker: _Worker, reason: Any) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
        if self._stopping:
            _log.info("worker {index} (pid {pid}) stopped", index=worker.index, pid=worker.pid)
            return
        _log.warn("worker {index} (pid {pid}) exited ({why}); starting it again in {delay:g} s",
                  index=worker.index, pid=worker.pid, why=reason.getErrorMessage(), delay=RESTART_DELAY)
        self._restarts[worker.index] = self.reactor.callLater(RESTART_DELAY, self._spawn, worker.index)

    def stopService(self) -> Deferred:
        super().stopService()
        self._stopping = True
        for call in self._restarts.values():
            if call.active():
                call.cancel()
        self._restarts.clear()
        workers = list(self.workers.values())
        for worker in workers:
            worker.signal("TERM")

        def kill() -> None:
            for worker in workers:
                if not worker.ended.called:
                    _log.warn("worker {index} (pid {pid}) did not stop in time: killed", index=worker.index, pid=worker.pid)
                    worker.signal("KILL")

        killer = self.reactor.callLater(self.grace + 5.0, kill)

        def stopped(_: Any) -> Any:
            if killer.active():
                killer.cancel()
            for port in self.ports:
                if isinstance(port, list):
                    for listening in port:
                        listening.close()
            return gatherResults([maybeDeferred(port.stopListening) for port in self.ports if not isinstance(port, list)])

        return DeferredList([worker.ended for worker in workers]).addCallback(stopped)

