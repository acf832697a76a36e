"""
Shared helpers of the tests that run real servers on loopback: TLS settings
from a key and certificate file, and waiting until a server has closed
every connection.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.protocols.policies import WrappingFactory
from twisted.trial.unittest import SynchronousTestCase

__all__ = ["protocolsGone", "serverTLS", "trustingTLS"]


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
