# -*- test-case-name: tests.stomp.test_server -*-
"""
STOMP over WebSocket for Twisted: the thin layer that moves WebSocket
messages between a connection and a sans-I/O L{StompSession}, arms its
heart-beat timer, and asks C{twisted.cred} who the client is.

    server = StompServer(portal=portalFor(strcred.makeChecker("memory:ann:pw")))

    @server.route("/app/chat/{room}")
    def chat(request):
        request.publish("/topic/chat." + request.params["room"], request.body)

    serverFromString(reactor, "tcp:8080").listen(server.webSocketFactory())
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from twisted.cred.checkers import ANONYMOUS, ICredentialsChecker, InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.credentials import Anonymous, UsernamePassword
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import maybeDeferred, succeed
from twisted.internet.interfaces import IHandshakeListener, IPushProducer, IReactorTime, ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from wsproto_tw.interfaces import IWebSocketApplication
from wsproto_tw.stomp.broker import Broker, EmbeddedBroker, Message
from wsproto_tw.stomp.config import StompConfig, choose_subprotocol
from wsproto_tw.stomp.events import ConnectRequested, SessionFailed
from wsproto_tw.stomp.routing import Router
from wsproto_tw.stomp.session import SessionState, StompSession, encode_body
from wsproto_tw.stomp.stats import SessionTotals
from wsproto_tw.wire import addressName, setNoDelay

__all__ = ["IStompPrincipal", "PrincipalRealm", "StompApplication", "StompServer", "StompStreamProtocol", "portalFor"]

_log = Logger(namespace="wsproto_tw.stomp")


class IStompPrincipal(Interface):
    """
    The avatar interface of STOMP logins: the avatar is the user name, a
    C{str}, which becomes the session's principal.
    """


@implementer(IRealm)
class PrincipalRealm:
    """
    A realm whose L{IStompPrincipal} avatar is the avatar id as text; the
    anonymous avatar id gives L{None}.
    """

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> tuple[Any, Any, Callable[[], None]]:
        if IStompPrincipal not in interfaces:
            raise NotImplementedError("only IStompPrincipal avatars")
        if avatarId == ANONYMOUS:
            name = None
        elif isinstance(avatarId, bytes):
            name = avatarId.decode("utf-8")
        else:
            name = str(avatarId)
        return IStompPrincipal, name, lambda: None


def portalFor(*checkers: ICredentialsChecker) -> Portal:
    """
    A portal that checks STOMP logins with C{checkers} (for example those
    of L{twisted.cred.strcred.makeChecker}: C{"memory:ann:secret"},
    C{"file:users.txt"}). A C{CONNECT} without C{login} is anonymous and is
    refused unless a checker allows anonymous access
    (L{twisted.cred.checkers.AllowAnonymousAccess}).
    """
    return Portal(PrincipalRealm(), [_bytesChecker(checker) for checker in checkers])


def _bytesChecker(checker: ICredentialsChecker) -> ICredentialsChecker:
    # strcred's "memory:" checker stores str names and passwords, while
    # UsernamePassword carries bytes (as "file:" checkers expect): a copy
    # with bytes makes "--auth memory:..." work.
    if not isinstance(checker, InMemoryUsernamePasswordDatabaseDontUse):
        return checker
    users = {
        (name.encode("utf-8") if isinstance(name, str) else name): (
            password.encode("utf-8") if isinstance(password, str) else password
        )
        for name, password in checker.users.items()
    }
    copy = InMemoryUsernamePasswordDatabaseDontUse()
    copy.users = users
    return copy


class StompServer:
    """
    The STOMP side of a server: the broker, the application destinations,
    the authentication, and every open session.

    @ivar config: the L{StompConfig}.
    @ivar broker: the L{Broker} sessions talk to.
    @ivar router: the L{Router} of application destinations.
    @ivar sessions: the open L{StompSession}s.
    @ivar totals: the counts of the sessions that ended, a
        L{SessionTotals <wsproto_tw.stomp.stats.SessionTotals>} (for
        L{wsproto_tw.metrics}).
    """

    def __init__(
        self,
        config: StompConfig | None = None,
        broker: Broker | None = None,
        *,
        router: Router | None = None,
        portal: Portal | None = None,
        authenticate: Callable[[str | None, str | None, str | None], Any] | None = None,
        reactor: IReactorTime | None = None,
    ) -> None:
        """
        @param portal: check C{login}/C{passcode} with this portal (see
            L{portalFor}); L{None} with no C{authenticate} accepts every
            client, as anonymous.
        @param authenticate: instead of a portal, a callable taking
            (login, passcode, host) and returning the principal (a user
            name, or L{None} for anonymous) or a Deferred of it; to refuse,
            it raises or fails. Either way, the client gets C{ERROR
            message:authentication failed}.
        @raise ValueError: both C{portal} and C{authenticate} are given.
        """
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor  # type: ignore[assignment]
        if portal is not None and authenticate is not None:
            raise ValueError("give a portal or an authenticate callable, not both")
        if portal is not None:
            authenticate = _portalAuthenticator(portal)
        self.config = config if config is not None else StompConfig()
        self.broker = broker if broker is not None else EmbeddedBroker()
        self.router = router if router is not None else Router()
        self.reactor = reactor
        self.sessions: set[StompSession] = set()
        self.totals = SessionTotals()
        self._authenticate = authenticate
        self._ids = itertools.count(1)

    def route(self, pattern: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """
        Register the decorated function as the handler of application
        destinations matching C{pattern}, e.g. C{"/app/chat/{room}"}; see
        L{Router}.
        """
        return self.router.route(pattern)

    def publish(self, destination: str, body: str | bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        """
        Send a message to a broker destination from server code (a timer,
        a database callback): C{/topic/...}, C{/queue/...} or
        C{/user/USER/queue/...}. A C{str} body is sent as UTF-8 text.

        @raise wsproto_tw.stomp.errors.DestinationError: the destination
            is unknown or full.
        """
        data, headers = encode_body(body, headers)
        self.broker.publish(Message(destination, headers, data))

    def buildApplication(self) -> StompApplication:
        """
        @return: a new L{StompApplication}: this is the application
            factory to give a WebSocket server factory.
        """
        return StompApplication(self)

    def streamFactory(self, max_write_buffer: int = 1024 * 1024, close_timeout: float = 10.0) -> Factory:
        """
        @param max_write_buffer: most octets written to a connection while
            its transport's write buffer is full (the peer is not reading);
            past it the connection is aborted. 1 MiB by default, like
            C{Config.max_write_buffer} over WebSocket.
        @param close_timeout: seconds a closing connection may take to send
            what it still holds (its last frames, C{ERROR} among them) to a
            peer that does not read them; then it is aborted. 10 by
            default, like C{Config.close_timeout} over WebSocket.
        @raise ValueError: C{close_timeout} is not positive.
        @return: a factory of STOMP-over-TCP connections to this server
            (the same broker and sessions, no WebSocket), for back-end
            services and any STOMP client: C{listen} it on C{tcp:61613}.
        """
        if not close_timeout > 0:
            raise ValueError("close_timeout must be positive")
        factory = Factory()
        factory.buildProtocol = lambda addr: StompStreamProtocol(  # type: ignore[method-assign]
            self, max_write_buffer=max_write_buffer, close_timeout=close_timeout
        )
        factory.noisy = False
        return factory

    def webSocketFactory(self, config: Any = None) -> Any:
        """
        @param config: the WebSocket L{wsproto_tw.core.Config}.
        @return: a L{wsproto_tw.server.WebSocketServerFactory} whose every
            connection is a STOMP session of this server.
        """
        from wsproto_tw.server import WebSocketServerFactory

        return WebSocketServerFactory(self.buildApplication, config, reactor=self.reactor)

    def _nextSessionId(self) -> str:
        return "session-%d" % next(self._ids)

    def _authenticateClient(self, event: ConnectRequested) -> Any:
        if self._authenticate is None:
            return succeed(None)
        return maybeDeferred(self._authenticate, event.login, event.passcode, event.host)


def _portalAuthenticator(portal: Portal) -> Callable[[str | None, str | None, str | None], Any]:
    def authenticate(login: str | None, passcode: str | None, host: str | None) -> Any:
        if login is None:
            credentials: Any = Anonymous()
        else:
            credentials = UsernamePassword(login.encode("utf-8"), (passcode or "").encode("utf-8"))
        return portal.login(credentials, None, IStompPrincipal).addCallback(lambda result: result[1])

    return authenticate


@implementer(IWebSocketApplication)
class StompApplication:
    """
    One WebSocket connection carrying one STOMP session: text and binary
    messages both carry frames; frames go out as text when they are UTF-8
    and as binary otherwise. It uses only C{sendText}, C{sendBinary},
    C{close} and C{subprotocol} of its transport.

    @ivar session: the L{StompSession}, once the connection is open.
    """

    transport: Any = None
    session: StompSession | None = None

    def __init__(self, server: StompServer) -> None:
        self.server = server
        self._timer: Any = None
        self._armedFor: float | None = None
        self._closing = False

    def requestReceived(self, request: Any) -> Any:
        """
        Answer the STOMP subprotocol that the server's rule picks among
        the client's offers (the first we speak, by default), or none.
        """
        from wsproto_tw.server import Accept

        return Accept(subprotocol=choose_subprotocol(request.subprotocols, self.server.config))

    def connectionOpened(self, transport: Any) -> None:
        self.transport = transport
        server = self.server
        sessionType = server.broker.session_type or StompSession
        self.session = sessionType(
            server.config,
            server.broker,
            session_id=server._nextSessionId(),
            subprotocol=transport.subprotocol,
            router=server.router,
            now=server.reactor.seconds(),
        )
        self.session.wake = self._flush
        server.sessions.add(self.session)
        self._rearm()

    def textMessageReceived(self, text: str) -> None:
        self._receive(text.encode("utf-8"))

    def binaryMessageReceived(self, data: bytes) -> None:
        self._receive(data)

    def pingReceived(self, payload: bytes) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def _receive(self, data: bytes) -> None:
        assert self.session is not None
        self.session.receive_data(data, now=self.server.reactor.seconds())
        self._deliver()
        self._flush()

    def _deliver(self) -> None:
        assert self.session is not None
        for event in self.session.events():
            match event:
                case ConnectRequested():
                    self._authenticate(event)
                case SessionFailed(error=error):
                    _log.info("stomp session {session} failed: {message}", session=self.session.session_id,
                              message=error.message)
                case _:
                    pass

    def _authenticate(self, event: ConnectRequested) -> None:
        session = self.session
        assert session is not None

        def accepted(principal: Any) -> None:
            if session.state is SessionState.AUTHENTICATING:
                # The broker gets ready for the session first (the relay
                # opens its broker connection).
                self.server.broker.open(session, event.version, lambda error: ready(principal, error))

        def ready(principal: Any, error: Any) -> None:
            if session.state is not SessionState.AUTHENTICATING:
                return
            if error is None:
                session.accept_connect(principal, now=self.server.reactor.seconds())
            else:
                session.reject_connect(error.message)
            self._deliver()
            self._flush()

        def refused(failure: Failure) -> None:
            _log.info(
                "stomp login refused for {login!r}: {why}",
                login=event.login,
                why=failure.getErrorMessage() or failure.type.__name__,  # UnauthorizedLogin() says nothing
            )
            session.reject_connect("authentication failed")
            self._deliver()
            self._flush()

        self.server._authenticateClient(event).addCallbacks(accepted, refused).addErrback(
            lambda failure: _log.failure("stomp authentication", failure)
        )

    def _flush(self) -> None:
        session = self.session
        if session is None or self.transport is None:
            return
        for message in session.messages_to_send():
            if isinstance(message, str):
                self.transport.sendText(message)
            else:
                self.transport.sendBinary(message)
        if session.wants_close and not self._closing:
            self._closing = True
            self.transport.close(1000, "")
        self._rearm()

    def _rearm(self) -> None:
        assert self.session is not None
        deadline = self.session.next_deadline()
        if self._timer is not None:
            if deadline == self._armedFor and self._timer.active():
                return  # most flushes (a delivery) leave the deadline as it was
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
        self._armedFor = deadline
        if deadline is not None:
            clock = self.server.reactor
            self._timer = clock.callLater(max(0.0, deadline - clock.seconds()), self._timerFired)

    def _timerFired(self) -> None:
        self._timer = None
        assert self.session is not None
        self.session.handle_timer(now=self.server.reactor.seconds())
        self._deliver()
        self._flush()

    def connectionLost(self, reason: Failure) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.session is not None:
            self.session.wake = None
            self.session.connection_lost()
            if self.session in self.server.sessions:
                self.server.sessions.discard(self.session)
                self.server.totals.add(self.session)


class _StreamTransport:
    # What StompApplication uses of a WebSocket transport, over a byte
    # stream: a frame or heart-beat is written as its octets.
    subprotocol = None
    request = None

    def __init__(self, protocol: StompStreamProtocol) -> None:
        self._protocol = protocol

    def sendText(self, text: str) -> None:
        self._protocol._write(text.encode("utf-8"))

    def sendBinary(self, data: bytes) -> None:
        self._protocol._write(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._protocol._close()


@implementer(IPushProducer, IHandshakeListener)
class StompStreamProtocol(Protocol):
    """
    STOMP over a plain byte stream (TCP, TLS, a UNIX socket): one session
    of a L{StompServer}, driven by the same L{StompApplication} as a
    WebSocket connection.

    It is its transport's push producer: while the transport's write
    buffer is full (the peer is not reading), what is written is counted,
    and past C{max_write_buffer} octets nothing more is written and the
    connection is aborted. A connection that closes (its session ended)
    and still holds frames its peer does not read is aborted after
    C{close_timeout} seconds.

    Over TLS, a session that ends before the client finished the TLS
    handshake (nothing, or not a TLS handshake, within C{connect_timeout})
    is aborted: its C{ERROR} can't be sent, and TLS would otherwise wait
    for the handshake, for ever, before closing.
    """

    def __init__(self, server: StompServer, max_write_buffer: int = 1024 * 1024, close_timeout: float = 10.0) -> None:
        self._app = server.buildApplication()
        self._clock = server.reactor
        self._close_timeout = close_timeout
        self._closing: Any = None
        self._max_write_buffer = max_write_buffer
        self._paused = False
        self._written = 0
        self._aborted = False
        self._registered = False
        self._handshaking = False

    def connectionMade(self) -> None:
        # Told by TLS when its handshake is done (IHandshakeListener).
        self._handshaking = ISSLTransport.providedBy(self.transport)
        setNoDelay(self.transport)
        self.transport.registerProducer(self, True)
        self._registered = True
        self._app.connectionOpened(_StreamTransport(self))

    def handshakeCompleted(self) -> None:
        self._handshaking = False

    def _close(self) -> None:
        # A transport with a producer registered does not close until it is
        # unregistered.
        if self._aborted:
            return
        if self._registered:
            self._registered = False
            self.transport.unregisterProducer()
        if self._handshaking:
            # TLS's loseConnection would wait for the handshake to finish.
            self._aborted = True
            self.transport.abortConnection()
            return
        self.transport.loseConnection()
        if self._closing is None:
            # A peer that does not read would hold the close for ever.
            self._closing = self._clock.callLater(self._close_timeout, self._closeTimedOut)

    def _closeTimedOut(self) -> None:
        self._closing = None
        if not self._aborted:
            self._aborted = True
            _log.info(
                "stomp connection {peer} aborted: still closing after {seconds} seconds (peer is not reading)",
                peer=addressName(self.transport.getPeer()),
                seconds=self._close_timeout,
            )
            self.transport.abortConnection()

    def _write(self, data: bytes) -> None:
        if self._aborted:
            return
        if self._paused:
            self._written += len(data)
            if self._written > self._max_write_buffer:
                self._aborted = True
                _log.info(
                    "stomp connection {peer} aborted: peer is not reading (more than {limit} bytes waiting)",
                    peer=addressName(self.transport.getPeer()),
                    limit=self._max_write_buffer,
                )
                self.transport.abortConnection()
                return
        self.transport.write(data)

    # IPushProducer: the transport says when its write buffer is full.

    def pauseProducing(self) -> None:
        if not self._paused:
            self._paused = True
            self._written = 0

    def resumeProducing(self) -> None:
        self._paused = False

    def stopProducing(self) -> None:
        pass

    def dataReceived(self, data: bytes) -> None:
        self._app.binaryMessageReceived(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._closing is not None:
            self._closing.cancel()
            self._closing = None
        self._app.connectionLost(reason)
