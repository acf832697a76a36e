# -*- test-case-name: tests.test_startup -*-
"""
Starting and stopping C{twistd websocket} well: each start-up failure as
one line naming the option and its fix (L{checkPort}, L{checkOrigin},
L{checkApplication}), the URL served once listening
(L{ListeningService}), and a second interrupt during the shutdown grace
ending it at once (L{InterruptibleShutdown}).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import endpoints
from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.python import reflect, usage
from twisted.python.failure import Failure

from wsproto_tw.application import WebSocketApplication
from wsproto_tw.errors import Reject
from wsproto_tw.server import ShutdownService

__all__ = [
    "InterruptibleShutdown",
    "answering500",
    "ListeningService",
    "checkApplication",
    "checkOrigin",
    "checkPort",
    "importApp",
    "servedURL",
]

_log = Logger()

#: What to install for TLS.
TLS_MISSING = "TLS needs pyOpenSSL, which is not installed: pip install 'wsproto_tw[tls]' (from a checkout: pip install '.[tls]')"
# The top-level modules of the tls extra.
_TLS_MODULES = frozenset(("OpenSSL", "service_identity", "idna", "cryptography"))
# The port number of a tcp:, tcp6: or ssl: endpoint.
_PORT_NUMBER = re.compile(r"(?:tcp6?|ssl):(?:port=)?(\d+)(?::|$)")
_EXAMPLES = "e.g. {name} 8080, tcp:8080:interface=127.0.0.1, ssl:8443:privateKey=key.pem:certKey=cert.pem, unix:/run/ws.sock"
# RFC 6454 §6.2: scheme "://" host [ ":" port ], as browsers send it; or
# "null" (RFC 6454 §7.3).
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://(?:\[[0-9A-Fa-f:.]+\]|[^/:?#\[\]@\s]+)(?::[0-9]+)?")


def checkPort(
    reactor: Any, description: str, listen: bool = False, default: bool = False, name: str = "--port"
) -> None:
    """
    Check a C{--port} endpoint string: build the endpoint (which parses the
    description and, for C{ssl:}, loads the key and certificate) and, with
    C{listen}, bind a socket where it would listen (TCP, TLS and UNIX
    endpoints) and close it at once.

    @param reactor: the reactor to build the endpoint with.
    @param description: the endpoint string, as given to C{--port}.
    @param listen: whether to try binding too.
    @param default: whether C{description} is the default, not given.
    @param name: the option, if not C{--port} (C{--metrics}, ...).
    @raise usage.UsageError: in one line, naming the option, what is wrong
        and how to fix it.
    """
    option = f"{name} {description}" + (" (the default)" if default else "")
    number = _PORT_NUMBER.match(description)
    if number is not None and int(number.group(1)) > 65535:
        raise usage.UsageError(
            f"{option}: port {int(number.group(1))} is out of range; use 1 to 65535 (0: any free port)"
        )
    try:
        endpoint = endpoints.serverFromString(reactor, description)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in _TLS_MODULES:
            raise usage.UsageError(f"{option}: {TLS_MISSING}") from None
        raise usage.UsageError(f"{option}: {exc}") from None
    except OSError as exc:
        raise usage.UsageError(
            f"{option}: can't read {exc.filename or 'a file'}: {exc.strerror or exc}; "
            "give the paths of existing PEM files (privateKey=KEY.pem:certKey=CERT.pem)"
        ) from None
    except (ValueError, TypeError) as exc:
        kind = description.split(":", 1)[0]
        if str(exc).startswith("Unknown endpoint type"):
            raise usage.UsageError(
                f"{option}: unknown endpoint type {kind!r}; use tcp:, tcp6:, ssl: or unix: ({_EXAMPLES.format(name=name)})"
            ) from None
        escape = "; a colon in a value is escaped, e.g. interface=\\:\\:1" if "::" in description else ""
        raise usage.UsageError(f"{option}: not a valid endpoint ({_reason(exc)}); {_EXAMPLES.format(name=name)}{escape}") from None
    except Exception as exc:
        # pyOpenSSL: a file that is not PEM, a key and a certificate that
        # don't match.
        raise usage.UsageError(
            f"{option}: can't load the key and certificate ({_reason(exc)}); "
            "privateKey= and certKey= must name a matching PEM key and certificate"
        ) from None
    if listen:
        try:
            _tryBinding(endpoint)
        except Exception as exc:
            raise usage.UsageError(describeListenError(option, exc, name)) from None


def _tryBinding(endpoint: Any) -> None:
    """
    Bind a socket of the kind a TCP, TLS or UNIX endpoint listens with, and
    close it: what would stop it listening (the address in use, a
    privileged port, an interface this machine does not have, a missing
    directory) raises here. Other endpoints are not tried.
    """
    if isinstance(endpoint, endpoints.UNIXServerEndpoint):
        address = getattr(endpoint, "_address", None)
        directory = os.path.dirname(os.path.abspath(address)) if isinstance(address, str) else None
        if directory is not None and not os.path.isdir(directory):
            raise FileNotFoundError(errno.ENOENT, "no such directory", directory)
        return
    interface = getattr(endpoint, "_interface", "")
    if isinstance(endpoint, endpoints.TCP6ServerEndpoint) or (
        # An ssl: (or tcp:) port on an IPv6 interface listens on IPv6, as
        # Twisted's port does for such an interface.
        isinstance(endpoint, (endpoints.TCP4ServerEndpoint, endpoints.SSL4ServerEndpoint))
        and isinstance(interface, str)
        and ":" in interface
    ):
        family, anywhere = socket.AF_INET6, "::"
    elif isinstance(endpoint, (endpoints.TCP4ServerEndpoint, endpoints.SSL4ServerEndpoint)):
        family, anywhere = socket.AF_INET, ""
    else:
        return
    port = getattr(endpoint, "_port", None)
    if not isinstance(port, int):
        return
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As Twisted listens: SO_REUSEADDR, so that only a socket in use
        # (not one in TIME_WAIT) makes the address unavailable.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(socketAddress(family, interface or anywhere, port))


def socketAddress(family: int, host: str, port: int) -> tuple[Any, ...]:
    """
    @return: the address to bind a socket of C{family} to: C{(host, port)},
        or for IPv6 the 4-tuple with the scope id a link-local address
        names (C{fe80::1%eth0}), as Twisted's own port binds.
    """
    if family != socket.AF_INET6:
        return (host, port)
    try:
        return socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0][4]
    except socket.gaierror:
        return (host, port)  # bind says what is wrong


def describeListenError(option: str, error: BaseException, name: str = "--port") -> str:
    """
    @param option: the option and its value, as L{checkPort} names them.
    @param name: the option's name.
    @return: why listening failed and what to do, in one line.
    """
    cause = getattr(error, "socketError", None) or error
    code = getattr(cause, "errno", None)
    if code == errno.EADDRINUSE:
        return f"{option}: address already in use (another program listens there); stop it or choose another {name}"
    if code == errno.EACCES:
        return f"{option}: permission denied; ports below 1024 need root: choose another {name} (e.g. 8080)"
    if code == errno.EADDRNOTAVAIL or isinstance(cause, socket.gaierror):
        return f"{option}: the interface is not an address of this machine; use one it has (e.g. 127.0.0.1)"
    if isinstance(error, OverflowError):
        return f"{option}: the port is out of range; use 1 to 65535 (0: any free port)"
    if isinstance(cause, OSError) and cause.filename:
        return f"{option}: {cause.strerror}: {cause.filename}; use a path in an existing, writable directory"
    return f"{option}: can't listen: {_reason(error)}"


def _reason(error: BaseException) -> str:
    args = error.args[0] if error.args else None
    if isinstance(args, list) and args and all(isinstance(a, tuple) for a in args):
        # OpenSSL's error queue: (library, function, reason) triples.
        return "; ".join(str(a[-1]) for a in args if a and a[-1]) or type(error).__name__
    return " ".join((str(error) or type(error).__name__).split())


def checkOrigin(origin: str) -> None:
    """
    Refuse a C{--origin} that no browser can send (RFC 6454 §6.2: the
    serialization is C{scheme://host[:port]}, no path), which would refuse
    every browser.

    @raise usage.UsageError: showing the form to use.
    """
    if origin == "null" or _ORIGIN.fullmatch(origin):
        return
    host = re.sub(r"^[A-Za-z][A-Za-z0-9+.\-]*://", "", origin).split("/", 1)[0] or "app.example.com"
    raise usage.UsageError(
        f"--origin {origin}: an origin is scheme://host[:port] with no path, as browsers send it; "
        f"e.g. --origin https://{host}"
    )


def importApp(name: str, kind: str) -> Any:
    """
    Import the object that C{--app NAME} names.

    @param name: its fully qualified name (C{package.module.name}).
    @param kind: what it must be, for the error (C{"a function"}).
    @return: the object, which is callable.
    @raise usage.UsageError: it can't be imported, or is not callable.
    """
    try:
        found = reflect.namedAny(name)
    except Exception as exc:
        raise usage.UsageError(f"--app {name}: can't import it ({exc}); is its package on PYTHONPATH?") from None
    if not callable(found):
        raise usage.UsageError(f"--app {name}: not {kind}: {found!r}")
    return found


def checkApplication(name: str, factory: Callable[[], Any]) -> None:
    """
    Call C{--app}'s factory once, as each connection will, so that one that
    fails is refused at start rather than on every connection.

    @raise usage.UsageError: it raised.
    """
    try:
        factory()
    except Exception as exc:
        raise usage.UsageError(
            f"--app {name}: calling it failed ({type(exc).__name__}: {_reason(exc)}); "
            "it must build an application when called with no arguments"
        ) from None


def answering500(name: str, factory: Callable[[], Any]) -> Callable[[], Any]:
    """
    Wrap C{--app}'s factory so that a connection whose application can't be
    built is answered C{500 Internal Server Error} (and the failure logged)
    instead of being dropped without an answer.

    @param name: the C{--app} value, for the log.
    @return: a factory that never raises.
    """

    def build() -> Any:
        try:
            return factory()
        except Exception:
            _log.failure("--app {name}: building the application failed; answering 500", name=name)
            return _Unavailable()

    return build


class _Unavailable(WebSocketApplication):
    """
    The application of a connection whose own application could not be
    built: it refuses the opening handshake with C{500}.
    """

    def requestReceived(self, request: Any) -> None:
        raise Reject(500, "the application failed to start; see the server's log")


def servedURL(address: Any, secure: bool, path: str, pages: bool) -> str:
    """
    @param address: the listening port's C{getHost()}.
    @param secure: whether the port speaks TLS.
    @param path: the WebSocket's path.
    @param pages: whether pages are served besides (C{--static}, the chat).
    @return: what a port serves, for the log: C{ws://127.0.0.1:8080/}.
    """
    scheme, web = ("wss", "https") if secure else ("ws", "http")
    host = getattr(address, "host", None)
    if host is None:
        name = getattr(address, "name", address)
        return f"{scheme}:// on unix:{os.fsdecode(name) if isinstance(name, bytes) else name}"
    everywhere = host in ("0.0.0.0", "::", "")
    shown = "localhost" if everywhere else (f"[{host}]" if ":" in host else host)
    text = f"{scheme}://{shown}:{address.port}{path}"
    if pages:
        text += f" and pages at {web}://{shown}:{address.port}/"
    return text + (" (every interface)" if everywhere else "")


class ListeningService(StreamServerEndpointService):
    """
    Listens on one C{--port}: once listening it logs the URL served; if
    listening fails it logs one line naming the option and the fix (no
    traceback) and stops the reactor, and the process then exits with
    status 1.
    """

    def __init__(
        self,
        endpoint: Any,
        factory: Any,
        description: str,
        reactor: Any,
        path: str = "/",
        pages: bool = False,
        exit: Callable[[int], None] | None = None,
    ) -> None:
        """
        @param description: the C{--port} string, for the messages.
        @param path: the WebSocket's path, for the URL logged.
        @param pages: whether pages are served besides, for the URL logged.
        @param exit: called with the exit status once the reactor has
            stopped after a failure; the default ends the process.
        """
        super().__init__(endpoint, factory)
        self.description = description
        self.reactor = reactor
        self.path = path
        self.pages = pages
        self._exit = exit or _exitAfterTwistd

    def privilegedStartService(self) -> None:
        # As StreamServerEndpointService does, with our own outcomes.
        self._waitingForPort = self.endpoint.listen(self.factory)
        self._waitingForPort.addCallbacks(self._listening, self._failed)

    def _listening(self, port: Any) -> Any:
        secure = isinstance(self.endpoint, endpoints.SSL4ServerEndpoint) or self.description.startswith("ssl:")
        _log.info("serving {url}", url=servedURL(port.getHost(), secure, self.path, self.pages))
        return port

    def _failed(self, failure: Failure) -> None:
        if failure.check(CancelledError):
            return None
        _log.error("{problem}", problem=describeListenError(f"--port {self.description}", failure.value))
        self.reactor.addSystemEventTrigger("after", "shutdown", self._exit, 1)
        if self.reactor.running:
            self.reactor.stop()
        else:
            self.reactor.callWhenRunning(self.reactor.stop)
        return None


def _exitAfterTwistd(status: int) -> None:
    """
    Make the process exit with C{status} once twistd has cleaned up (its
    PID file) and returned.
    """
    import atexit

    def exit() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    atexit.register(exit)


class InterruptibleShutdown(ShutdownService):
    """
    A L{ShutdownService} that a second SIGINT or SIGTERM cuts short: once
    the reactor runs, it wraps the reactor's handlers of both signals; the
    first signal goes to the reactor's handler (which stops the reactor,
    and so this service, starting the grace period), and any signal after
    that, or after the service has started stopping, drops the connections
    still open at once, so the process ends now instead of after the grace
    (and C{reactor.stop()} is not called again).
    """

    _stopping = False

    def startService(self) -> None:
        super().startService()
        reactor = self.factory.reactor
        if hasattr(reactor, "callWhenRunning"):
            # After the reactor has installed its own handlers.
            reactor.callWhenRunning(self._wrapSignals)

    def stopService(self) -> Any:
        self._stopping = True
        return super().stopService()

    def _wrapSignals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        reactor = self.factory.reactor
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue  # ignored, or the default action: leave it

            def handler(number: int, frame: Any, previous: Callable[..., Any] = previous) -> None:
                if self._stopping:
                    reactor.callFromThread(self.dropAll, signal.Signals(number).name)
                else:
                    self._stopping = True
                    previous(number, frame)

            signal.signal(signum, handler)

    def dropAll(self, why: str = "asked") -> None:
        """
        Drop every connection still open now.

        @param why: what asked for it, for the log.
        """
        left = list(self.factory.connections)
        if left:
            _log.warn("{why} again: dropping {count} connection(s) now", why=why, count=len(left))
        for connection in left:
            connection.abortConnection()
