# -*- test-case-name: tests.test_reconnect -*-
"""
A WebSocket client that stays connected: L{ReconnectingClientService}, an
L{IService <twisted.application.service.IService>} in the manner of
L{twisted.application.internet.ClientService}.

    from twisted.application.service import Application
    from wsproto_tw.reconnect import ReconnectingClientService

    service = ReconnectingClientService("wss://example.com/feed", Dashboard)
    service.setServiceParent(application)

The service connects when started, and again whenever the connection is
lost or an attempt fails, after a delay that grows exponentially with the
number of failed attempts in a row, with random jitter so that many clients
cut off at once do not come back at once (L{backoffPolicy}). Every
connection gets a new application from the application factory.

Failures are of two kinds:

  - I{transient}, retried: the network (refused, reset, timed out, DNS),
    TLS, a handshake timeout, a proxy's 5xx, and a server that answers the
    handshake with 5xx, C{408 Request Timeout} or C{429 Too Many Requests}
    (after at least its C{Retry-After} seconds, if it says, up to an hour);
  - I{refusals}, not retried: a server that answers the handshake with any
    other 4xx (wrong path, authentication or origin: asking again gets the
    same answer), a proxy's 4xx (C{407}: its credentials), and a URL,
    header or proxy setting that can't be sent. The service then gives up:
    it logs the reason, fails the L{whenConnected} Deferreds with it, and
    makes no more attempts until it is stopped and started again.

L{stopService <ReconnectingClientService.stopService>} cancels a pending
attempt or retry, closes an open connection with C{1001 Going Away}, and
returns a Deferred that fires once the connection is closed (bounded by
C{Config.close_timeout}).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from wsproto_tw.client import connect, connectWebSocket, parseURL
from wsproto_tw.core.tunnel import ProxyRefused
from wsproto_tw.errors import HandshakeRejected

__all__ = [
    "DEFAULT_FACTOR",
    "DEFAULT_INITIAL_DELAY",
    "DEFAULT_JITTER",
    "DEFAULT_MAX_DELAY",
    "ReconnectingClientService",
    "backoffPolicy",
    "isRefusal",
]

#: Seconds before the first retry (before jitter).
DEFAULT_INITIAL_DELAY = 1.0
#: Each failed attempt in a row multiplies the delay by this.
DEFAULT_FACTOR = 2.0
#: The longest delay between attempts, in seconds (the cap).
DEFAULT_MAX_DELAY = 60.0
#: Up to this fraction of each delay is taken off at random.
DEFAULT_JITTER = 0.5

#: The longest C{Retry-After} honoured, in seconds.
MAX_RETRY_AFTER = 3600.0

_log = Logger()


def backoffPolicy(
    initialDelay: float = DEFAULT_INITIAL_DELAY,
    factor: float = DEFAULT_FACTOR,
    maxDelay: float = DEFAULT_MAX_DELAY,
    jitter: float = DEFAULT_JITTER,
    random: Callable[[], float] = _random.random,
) -> Callable[[int], float]:
    """
    Exponential backoff with jitter.

    With the defaults, the delays after 1, 2, 3, ... failures in a row are
    at most 1, 2, 4, 8, 16, 32, 60, 60, ... seconds, and each is cut by a
    random amount of up to half ("equal jitter"): 0.5-1 s, 1-2 s, ...,
    30-60 s.

    @param initialDelay: the delay after one failure, before jitter.
    @param factor: the growth per further failure.
    @param maxDelay: the cap, before jitter.
    @param jitter: the largest fraction taken off at random, from 0 (none)
        to 1.
    @param random: returns a float in [0, 1).
    @return: a function of the number of failures in a row (1 or more)
        giving the delay in seconds before the next attempt.
    @raise ValueError: a parameter is out of range.
    """
    if initialDelay < 0 or maxDelay < initialDelay or factor < 1 or not 0 <= jitter <= 1:
        raise ValueError("backoff needs 0 <= initialDelay <= maxDelay, factor >= 1 and 0 <= jitter <= 1")

    def policy(failures: int) -> float:
        exponent = max(0, failures - 1)
        # Capped before the power can overflow.
        delay = maxDelay if exponent > 1000 else min(maxDelay, initialDelay * factor**exponent)
        return delay * (1 - jitter * random())

    return policy


def isRefusal(failure: Failure) -> bool:
    """
    @return: whether C{failure} is a refusal that asking again won't change
        (see the module documentation), rather than a transient failure.
    """
    if failure.check(ValueError, TypeError):
        return True
    status = getattr(failure.value, "status", 0)
    if failure.check(HandshakeRejected, ProxyRefused) and 400 <= status < 500:
        return status not in (408, 429)
    return False


def _retryAfter(failure: Failure) -> float:
    """
    @return: the seconds a C{Retry-After} of a rejection asks for (RFC 9110
        §10.2.3, delay-seconds form only), or 0.
    """
    if not failure.check(HandshakeRejected):
        return 0.0
    for name, value in failure.value.headers:
        if name.lower() == "retry-after" and value.strip().isdigit():
            return min(float(value.strip()), MAX_RETRY_AFTER)
    return 0.0


class _Watched:
    """
    An application, as the connection sees it, that also tells the service
    when the connection is lost. Everything else reaches the application.
    """

    def __init__(self, application: Any, lost: Callable[[_Watched], None]) -> None:
        object.__setattr__(self, "_application", application)
        object.__setattr__(self, "_lost", lost)
        object.__setattr__(self, "isLost", False)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._application, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._application, name, value)

    def connectionLost(self, reason: Failure) -> None:
        object.__setattr__(self, "isLost", True)
        try:
            self._application.connectionLost(reason)
        finally:
            self._lost(self)


class ReconnectingClientService(Service):
    """
    Keeps one WebSocket connection to a URL open while running; see the
    module documentation.

    @ivar url: the C{ws://} or C{wss://} URL.
    @ivar refusal: the L{Failure} the service gave up on, or L{None}.
    """

    def __init__(
        self,
        url: str,
        applicationFactory: Callable[[], Any],
        *,
        reactor: Any = None,
        endpoint: Any = None,
        initialDelay: float = DEFAULT_INITIAL_DELAY,
        factor: float = DEFAULT_FACTOR,
        maxDelay: float = DEFAULT_MAX_DELAY,
        jitter: float = DEFAULT_JITTER,
        random: Callable[[], float] = _random.random,
        **connectOptions: Any,
    ) -> None:
        """
        @param url: the URL to connect to.
        @param applicationFactory: called with no arguments for every
            connection, to build its L{IWebSocketApplication}.
        @param reactor: the reactor; the global one by default.
        @param endpoint: if given, every attempt goes through this
            L{IStreamClientEndpoint} (L{connectWebSocket}), else through
            L{connect}, which resolves the URL's host and honours proxies.
        @param initialDelay: see L{backoffPolicy}.
        @param factor: see L{backoffPolicy}.
        @param maxDelay: see L{backoffPolicy}.
        @param jitter: see L{backoffPolicy}.
        @param random: see L{backoffPolicy}.
        @param connectOptions: keyword arguments for L{connect} (C{config},
            C{origin}, C{headers}, C{trustRoot}, C{insecure}, C{proxy},
            ...), or for L{connectWebSocket} with an C{endpoint}.
        @raise ValueError: C{url} is not a WebSocket URL, or the backoff
            parameters are out of range.
        """
        parseURL(url)
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.url = url
        self.refusal: Failure | None = None
        self._applicationFactory = applicationFactory
        self._reactor = reactor
        self._endpoint = endpoint
        self._connectOptions = connectOptions
        self._delay = backoffPolicy(initialDelay, factor, maxDelay, jitter, random)
        self._failures = 0
        self._attempt: Deferred | None = None
        self._retry: Any = None
        self._watched: _Watched | None = None
        self._current: Any = None
        self._waiters: list[Deferred] = []
        self._closed: Deferred | None = None

    # -- IService ------------------------------------------------------------

    def startService(self) -> None:
        """
        Start connecting.
        """
        super().startService()
        self.refusal = None
        self._failures = 0
        self._connect()

    def stopService(self) -> Deferred:
        """
        Stop: cancel a pending attempt or retry, close the open connection
        with C{1001}, fail the L{whenConnected} Deferreds with
        L{CancelledError}.

        @return: a L{Deferred} that fires once the connection is closed.
        """
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._attempt is not None:
            self._attempt.cancel()
        self._failWaiters(Failure(CancelledError("the reconnecting service stopped")))
        if self._current is None:
            return succeed(None)
        if self._closed is None:
            self._closed = Deferred()
            self._current.close(1001, "going away")
        closed = Deferred()
        self._closed.addBoth(lambda result: closed.callback(None) or result)
        return closed

    # -- the connection -----------------------------------------------------

    def whenConnected(self) -> Deferred:
        """
        @return: a L{Deferred} firing with the open connection (its
            L{IWebSocketTransport}) now or once there is one; it fails with
            the refusal if the service gives up, and with L{CancelledError}
            if the service stops first.
        """
        # Asked from the application's connectionLost, the connection is
        # already gone.
        if self._current is not None and not (self._watched is not None and self._watched.isLost):
            return succeed(self._current)
        if self.refusal is not None:
            return fail(self.refusal)
        waiter = Deferred()
        self._waiters.append(waiter)
        return waiter

    def _connect(self) -> None:
        self._retry = None

        def build() -> _Watched:
            self._watched = _Watched(self._applicationFactory(), self._lost)
            return self._watched

        try:
            if self._endpoint is None:
                attempt = connect(self.url, build, reactor=self._reactor, **self._connectOptions)
            else:
                attempt = connectWebSocket(self._endpoint, self.url, build, reactor=self._reactor, **self._connectOptions)
        except Exception:
            self._giveUp(Failure())
            return
        self._attempt = attempt
        attempt.addCallbacks(self._opened, self._attemptFailed)

    def _opened(self, transport: Any) -> None:
        self._attempt = None
        self._failures = 0
        if self._watched is not None and self._watched.isLost:
            # Lost already, while the application was opening it.
            self._reconnectAfterLoss()
            return
        self._current = transport
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(transport)

    def _attemptFailed(self, failure: Failure) -> None:
        self._attempt = None
        if not self.running:
            return
        if isRefusal(failure):
            self._giveUp(failure)
            return
        self._failures += 1
        delay = max(self._delay(self._failures), _retryAfter(failure))
        _log.info(
            "connecting to {url} failed ({error}); attempt {attempt} in {delay:.1f}s",
            url=self.url,
            error=failure.getErrorMessage() or failure.type.__name__,
            attempt=self._failures + 1,
            delay=delay,
        )
        self._retry = self._reactor.callLater(delay, self._connect)

    def _lost(self, watched: _Watched) -> None:
        if watched is not self._watched:
            return
        self._current = None
        if self._closed is not None:
            closed, self._closed = self._closed, None
            closed.callback(None)
        if self._attempt is None:
            self._reconnectAfterLoss()

    def _reconnectAfterLoss(self) -> None:
        if self.running and self.refusal is None and self._retry is None:
            # The connection had opened: back to the first delay.
            self._failures = 1
            self._retry = self._reactor.callLater(self._delay(1), self._connect)

    def _giveUp(self, failure: Failure) -> None:
        self.refusal = failure
        _log.error(
            "giving up on {url}: {error}; not reconnecting until restarted",
            url=self.url,
            error=failure.getErrorMessage() or failure.type.__name__,
        )
        self._failWaiters(failure)

    def _failWaiters(self, failure: Failure) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(failure)
