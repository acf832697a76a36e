"""
Shared helpers of the tests: TLS settings from a key and certificate file,
waiting until a server has closed every connection, and importing modules
in a fresh interpreter.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Generator, Iterable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.protocols.policies import WrappingFactory
from twisted.trial.unittest import SynchronousTestCase

import wsproto_tw
from wsproto_tw.server import WebSocketApplication

__all__ = [
    "QueueingClient",
    "freshImports",
    "pipInstalled",
    "protocolsGone",
    "serverTLS",
    "spawnCommand",
    "trustingTLS",
]


class QueueingClient(WebSocketApplication):
    """
    A client application that queues every message it receives and fires
    L{lost} with the close.

    @ivar messages: each message received, L{str} or L{bytes}.
    @ivar lost: fires with the reason the connection closed (a
        L{wsproto_tw.errors.ConnectionClosed}).
    """

    def __init__(self) -> None:
        self.messages: DeferredQueue = DeferredQueue()
        self.lost: Deferred = Deferred()

    def textMessageReceived(self, text: str) -> None:
        self.messages.put(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self.messages.put(data)

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(reason.value)


def serverTLS(keyPath: str, certPath: str, acceptableProtocols: list[bytes] | None = None) -> Any:
    """
    @param keyPath: a PEM private key file.
    @param certPath: the PEM certificate file of that key.
    @param acceptableProtocols: the ALPN protocols to offer, most preferred
        first; L{None} for none (a L{twisted.web.server.Site} declares its
        own).
    @return: server L{twisted.internet.ssl.CertificateOptions} with that
        key and certificate.
    """
    from twisted.internet import ssl

    with open(keyPath, "rb") as k, open(certPath, "rb") as c:
        pem = ssl.PrivateCertificate.loadPEM(k.read() + c.read())
    extra = {} if acceptableProtocols is None else {"acceptableProtocols": acceptableProtocols}
    return ssl.CertificateOptions(privateKey=pem.privateKey.original, certificate=pem.original, **extra)


def trustingTLS(certPath: str, acceptableProtocols: list[bytes] | None) -> Any:
    """
    @param certPath: a PEM certificate file for C{localhost}, the one trust
        root.
    @param acceptableProtocols: the ALPN protocols to offer, or L{None}.
    @return: client TLS settings (L{twisted.internet.ssl.optionsForClientTLS})
        for C{localhost} that trust only that certificate.
    """
    from twisted.internet import ssl

    with open(certPath, "rb") as f:
        authority = ssl.Certificate.loadPEM(f.read())
    return ssl.optionsForClientTLS("localhost", trustRoot=authority, acceptableProtocols=acceptableProtocols)


@inlineCallbacks
def protocolsGone(testCase: SynchronousTestCase, tracked: WrappingFactory) -> Generator[Any, Any, None]:
    """
    Wait up to 5 seconds, polling every 10 ms, until the server behind
    C{tracked} has no connection left; as a cleanup, it keeps a test from
    ending while the server still closes connections.

    @raise testCase.failureException: connections were still open.
    """
    for _ in range(500):
        if not tracked.protocols:
            return
        yield deferLater(reactor, 0.01, lambda: None)
    testCase.fail(f"server connections left open: {tracked.protocols}")


_FRESH_IMPORTS = """
import pkgutil, sys
skip = sys.argv[2].split(",")
for name in sys.argv[1].split(","):
    module = __import__(name)
    for info in pkgutil.walk_packages(getattr(sys.modules[name], "__path__", []), name + "."):
        if info.name not in skip:
            __import__(info.name)
print(",".join(sorted(name for name in sys.modules if name.split(".")[0] == "wsproto_tw")))
print(",".join(sorted(name for name in sys.modules if name.split(".")[0] in ("twisted", "zope"))))
"""


def freshImports(
    testCase: SynchronousTestCase, modules: Iterable[str], skip: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """
    Import modules in a fresh interpreter, with the folder of this
    C{wsproto_tw} first on its path, to see what they import.

    @param modules: the names of the modules to import; for a package, also
        every module under it (at any depth).
    @param skip: the names of modules under those packages not to import.
    @return: the names of the C{wsproto_tw} modules then loaded, and of the
        C{twisted} and C{zope} modules loaded, each sorted.
    @raise testCase.failureException: the interpreter failed (its standard
        error is in the message).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(wsproto_tw.__file__)))
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_IMPORTS, ",".join(modules), ",".join(skip)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=60,
        env={**os.environ, "PYTHONPATH": root},
    )
    testCase.assertEqual(result.returncode, 0, result.stderr)
    loaded, leaked = result.stdout.splitlines()
    return loaded.split(","), [name for name in leaked.split(",") if name]


def spawnCommand(
    testCase: SynchronousTestCase,
    child: Any,
    args: list[str],
    env: dict[str, str] | None = None,
    usePTY: bool = False,
) -> Any:
    """
    Start C{python -m wsproto_tw ARGS} (the command-line client) in this
    interpreter; it is killed if still running when the test ends.

    @param child: the L{twisted.internet.protocol.ProcessProtocol}, whose
        C{ended} L{Deferred} fires when the process has ended.
    @param env: the environment; this process's own by default.
    @param usePTY: give it a pseudo-terminal instead of pipes.
    @return: the process transport.
    """
    process = reactor.spawnProcess(
        child,
        sys.executable,
        [sys.executable, "-m", "wsproto_tw", *args],
        env=os.environ if env is None else env,
        usePTY=usePTY,
    )

    def kill() -> Deferred | None:
        if child.ended.called:
            return None
        process.signalProcess("KILL")
        return child.ended

    testCase.addCleanup(kill)
    return process


def pipInstalled(module: str, distribution: str) -> None:
    """
    Install C{distribution} with pip into this interpreter's environment if
    C{module} can't be imported.

    @param module: the name to import, e.g. C{"stomp"}.
    @param distribution: the package on the index, e.g. C{"stomp.py"}.
    @raise AssertionError: it is missing and can't be installed (pip's
        output is in the message).
    """
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", distribution], capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            raise AssertionError(f"{distribution} is missing and can't be installed:\n" + result.stdout + result.stderr)


def hasIPv6Loopback() -> bool:
    """
    @return: whether a socket can listen on C{::1} here.
    """
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
