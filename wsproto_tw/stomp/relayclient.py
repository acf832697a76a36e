# -*- test-case-name: tests.stomp.test_relay -*-
"""
A relay to an external STOMP broker over any Twisted client endpoint
(C{tcp:127.0.0.1:61613}, C{tls:broker.example.com:61614}): L{RelayBroker},
the second implementation of L{Broker <wsproto_tw.stomp.broker.Broker>}.

    relay = RelayBroker(reactor, "tcp:127.0.0.1:61613", login="guest", passcode="guest", host="/")
    server = StompServer(broker=relay)
    relay.service.setServiceParent(application)   # the system connection

Each client session gets a broker connection of its own, opened when its
C{CONNECT} has been accepted by us, with the relay's credentials and
virtual host; the client gets C{CONNECTED} once the broker answered, and
C{ERROR message:broker not available} (then a close) when the broker can't
be reached or its connection is lost. One shared system connection,
reconnected with backoff, carries what server code and application
handlers publish. Every broker connection heart-beats both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from wsproto_tw.stomp.broker import AckMode, Broker, Message, Subscriber, Subscription
from wsproto_tw.stomp.errors import DestinationError, StompError
from wsproto_tw.stomp.frames import Command, Frame, Version
from wsproto_tw.stomp.relay import BROKER_NOT_AVAILABLE, BrokerConnected, BrokerFailed, BrokerLink, RelaySession
from wsproto_tw.wire import setNoDelay

__all__ = ["BrokerProtocol", "RelayBroker"]

_log = Logger(namespace="wsproto_tw.stomp.relay")


class BrokerProtocol(Protocol):
    """
    The pump of one L{BrokerLink}: it feeds the link, writes its octets,
    closes when asked and re-arms its single timer.

    @ivar link: the L{BrokerLink}, once the connection is made.
    @ivar onConnected: called with the L{BrokerConnected} event.
    @ivar onFrame: called with each frame the broker sends after
        C{CONNECTED}.
    @ivar onFailed: called once with a message when the link fails or the
        connection is lost (not after L{disconnect}).
    """

    link: BrokerLink | None = None

    def __init__(
        self,
        newLink: Callable[[float], BrokerLink],
        clock: Any,
        connected: Callable[[BrokerConnected], None],
        frameReceived: Callable[[Frame], None],
        failed: Callable[[str], None],
    ) -> None:
        self._newLink = newLink
        self._clock = clock
        self.onConnected = connected
        self.onFrame = frameReceived
        self.onFailed = failed
        self._timer: Any = None
        self._reported = False
        self._aborting = False

    def connectionMade(self) -> None:
        setNoDelay(self.transport)
        self.link = self._newLink(self._clock.seconds())
        self._flush()

    def dataReceived(self, data: bytes) -> None:
        assert self.link is not None
        self.link.receive_data(data, now=self._clock.seconds())
        self._deliver()
        self._flush()

    def send(self, frame: Frame) -> None:
        """
        Send C{frame} to the broker.

        @raise StompError: the link is not connected.
        """
        if self.link is None:
            raise StompError(BROKER_NOT_AVAILABLE)
        self.link.send(frame)
        self._flush()

    def disconnect(self) -> None:
        """
        Say C{DISCONNECT} and close; L{onFailed} is not called.
        """
        self._reported = True
        if self.link is None:
            if self.transport is not None:
                self.transport.abortConnection()
            return
        self.link.disconnect()
        self._flush()

    def _deliver(self) -> None:
        assert self.link is not None
        for event in self.link.events():
            if isinstance(event, BrokerConnected):
                self.onConnected(event)
            elif isinstance(event, BrokerFailed):
                self._aborting = True
                self._report(event.message)
            else:
                self.onFrame(event)

    def _report(self, message: str) -> None:
        if not self._reported:
            self._reported = True
            self.onFailed(message)

    def _flush(self) -> None:
        link = self.link
        if link is None or self.transport is None:
            return
        data = link.data_to_send()
        if data:
            self.transport.write(data)
        if link.wants_close:
            if self._aborting:
                self.transport.abortConnection()  # a silent broker: don't wait for the buffer
            else:
                self.transport.loseConnection()
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        deadline = None if self.link is None else self.link.next_deadline()
        if deadline is not None:
            self._timer = self._clock.callLater(max(0.0, deadline - self._clock.seconds()), self._timerFired)

    def _timerFired(self) -> None:
        self._timer = None
        assert self.link is not None
        self.link.handle_timer(now=self._clock.seconds())
        self._deliver()
        self._flush()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self.link is not None:
            self.link.receive_eof()
            self._deliver()
        self._report("the broker closed the connection")


class _OneProtocol(Factory):
    noisy = False

    def __init__(self, protocol: Protocol) -> None:
        self.protocol_ = protocol

    def buildProtocol(self, addr: Any) -> Protocol:
        return self.protocol_


class RelayBroker(Broker):
    """
    A L{Broker} that is an external STOMP broker: sessions must be
    L{RelaySession}s (L{session_type}), whose frames go to their own
    broker connections; L{publish} goes over the system connection.

    @ivar service: the service keeping the system connection (a
        L{ClientService}): start it with the server.
    @ivar system: the system connection's L{BrokerProtocol} while it is
        connected to the broker, else L{None}.
    """

    session_type = RelaySession

    def __init__(
        self,
        reactor: Any,
        endpoint: str,
        *,
        login: str | None = None,
        passcode: str | None = None,
        host: str | None = None,
        heartBeat: tuple[int, int] = (10000, 10000),
        connectTimeout: float = 10.0,
        maxRetryDelay: float = 5.0,
    ) -> None:
        """
        @param endpoint: a client endpoint description (Twisted's
            C{clientFromString}), e.g. C{"tcp:127.0.0.1:61613"}.
        @param login: the C{login} of every broker connection.
        @param passcode: their C{passcode}.
        @param host: their C{host} header: RabbitMQ's virtual host.
        @param heartBeat: (cx, cy) in ms each broker connection asks for.
        @param connectTimeout: seconds for a broker connection to be made
            and answered with C{CONNECTED}.
        @param maxRetryDelay: longest wait, in seconds, between two
            attempts of the system connection.
        """
        self.reactor = reactor
        self.description = endpoint
        self.endpoint = clientFromString(reactor, endpoint)
        self.login = login
        self.passcode = passcode
        self.host = host
        self.heartBeat = heartBeat
        self.connectTimeout = connectTimeout
        self.system: BrokerProtocol | None = None
        self._links: dict[Any, BrokerProtocol] = {}
        self.service = ClientService(
            self.endpoint,
            Factory.forProtocol(self._systemProtocol),
            retryPolicy=backoffPolicy(initialDelay=0.5, maxDelay=maxRetryDelay),
            clock=reactor,
        )

    def _newLink(self, version: Version) -> Callable[[float], BrokerLink]:
        return lambda now: BrokerLink(
            version=version, login=self.login, passcode=self.passcode, host=self.host,
            heart_beat=self.heartBeat, connect_timeout=self.connectTimeout, now=now,
        )

    # The system connection

    def _systemProtocol(self) -> BrokerProtocol:
        protocol: BrokerProtocol

        def connected(event: BrokerConnected) -> None:
            self.system = protocol
            _log.info("stomp relay: system connection to {endpoint} is up", endpoint=self.description)

        def frameReceived(frame: Frame) -> None:
            if frame.command == Command.ERROR:
                _log.warn("stomp relay: the broker said on the system connection: {message}",
                          message=frame.get("message"))

        def failed(message: str) -> None:
            if self.system is protocol:
                self.system = None
                _log.warn("stomp relay: system connection to {endpoint} lost: {message}",
                          endpoint=self.description, message=message)

        protocol = BrokerProtocol(self._newLink(Version.V1_2), self.reactor, connected, frameReceived, failed)
        return protocol

    # Session connections

    def open(self, subscriber: Subscriber, version: Version, done: Callable[[StompError | None], None]) -> None:
        """
        Open C{subscriber}'s broker connection; once the broker answered
        C{CONNECTED}, set the session's C{forward} and call C{done(None)};
        if it can't, C{done} gets a L{StompError} saying the broker is not
        available. Bounded by C{connectTimeout}.
        """
        session: RelaySession = subscriber  # type: ignore[assignment]
        answered = [False]

        def answer(error: StompError | None) -> None:
            if not answered[0]:
                answered[0] = True
                done(error)

        def connected(event: BrokerConnected) -> None:
            if self._links.get(session) is not protocol:
                protocol.disconnect()  # the session ended meanwhile
                return
            session.forward = protocol.send
            answer(None)

        def failed(message: str) -> None:
            if self._links.get(session) is protocol:
                del self._links[session]
            session.forward = None
            _log.info("stomp relay: broker connection of {session} failed: {message}",
                      session=getattr(session, "session_id", "?"), message=message)
            if answered[0]:
                session.fail(StompError(BROKER_NOT_AVAILABLE))
            else:
                answer(StompError(BROKER_NOT_AVAILABLE))

        protocol = BrokerProtocol(self._newLink(version), self.reactor, connected, session.broker_frame_received, failed)
        self._links[session] = protocol
        attempt = self.endpoint.connect(_OneProtocol(protocol))
        attempt.addTimeout(self.connectTimeout, self.reactor)

        def notConnected(failure: Failure) -> None:
            failed(f"can't connect: {failure.getErrorMessage()}")

        attempt.addErrback(notConnected)

    def detach(self, subscriber: Subscriber) -> None:
        """
        The session ended: say C{DISCONNECT} on its broker connection and
        close it.
        """
        protocol = self._links.pop(subscriber, None)
        if protocol is not None:
            protocol.disconnect()

    # Broker

    def publish(self, message: Message) -> None:
        """
        Send C{message} over the system connection.

        @raise DestinationError: the system connection is down.
        """
        system = self.system
        if system is None:
            raise DestinationError(BROKER_NOT_AVAILABLE)
        headers = (("destination", message.destination),) + tuple(message.headers)
        headers += (("content-length", str(len(message.body))),)
        system.send(Frame(Command.SEND, headers, message.body))

    def _notHere(self, *args: Any) -> Any:
        raise StompError("through the relay, subscriptions and acknowledgements are the broker's")

    def subscribe(self, subscriber: Subscriber, id: str, destination: str, ack: AckMode) -> Subscription:
        return self._notHere()

    def unsubscribe(self, subscriber: Subscriber, id: str) -> None:
        self._notHere()

    def ack(self, subscriber: Subscriber, message_id: str, subscription_id: str | None = None) -> None:
        self._notHere()

    def nack(self, subscriber: Subscriber, message_id: str, subscription_id: str | None = None) -> None:
        self._notHere()
