"""
The relay to an external STOMP broker: L{wsproto_tw.stomp.relay}'s
L{BrokerLink} and L{RelaySession} with exact bytes, and C{twistd websocket
--mode stomp --stomp-relay} in front of a real RabbitMQ with its STOMP
plugin (Debian's C{rabbitmq-server}, installed when missing, a fresh node
on loopback per test), including RabbitMQ stopped and started again
mid-session.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from websockets.sync.client import connect as websocketsConnect

from tests.processes import Twistd
from tests.test_workers import stopped
from tests.stomp.helpers import CONFIG, frame
from tests.stomp.rabbitmq import SERVER, RabbitMQ, _freePort, _stop, _waitForPort
from tests.stomp.test_options import parse
from tests.stomp.test_rabbitmq import Client
from wsproto_tw.stomp.broker import EmbeddedBroker
from wsproto_tw.stomp.frames import Frame, FrameReader, Version
from wsproto_tw.stomp.options import buildStompServer, stompPortServices
from wsproto_tw.stomp.relay import BrokerFailed, BrokerLink, LinkState, RelaySession
from wsproto_tw.stomp.relayclient import BrokerProtocol, RelayBroker
from wsproto_tw.stomp.routing import Router
from wsproto_tw.stomp.session import SessionState


def registerPid(server: object) -> None:
    """
    An C{--app} for C{twistd websocket --mode stomp}: C{/app/pid}
    publishes to C{/topic/pids} the body sent and the pid of the process
    that handled it.
    """

    @server.route("/app/pid")  # type: ignore[attr-defined]
    def pid(request: object) -> None:
        request.publish("/topic/pids", f"{request.text} {os.getpid()}")  # type: ignore[attr-defined]


def openedLink(heart_beat: tuple[int, int] = (1000, 1000), theirs: str = "2000,500") -> BrokerLink:
    """
    A link that sent C{CONNECT} and was answered C{CONNECTED} at time 0.
    """
    link = BrokerLink(login="guest", passcode="pw", host="/", heart_beat=heart_beat, now=0)
    link.data_to_send()
    link.receive_data(b"CONNECTED\nversion:1.2\nheart-beat:" + theirs.encode() + b"\n\n\x00", now=0)
    return link


class BrokerLinkTests(SynchronousTestCase):
    """
    L{BrokerLink}, the broker side of a relayed connection, without I/O.
    """

    def test_connectFrame(self) -> None:
        """
        The link starts with C{CONNECT}: the version asked for, the
        virtual host as C{host}, the relay's credentials and heart-beats.
        """
        link = BrokerLink(version=Version.V1_1, login="guest", passcode="pw", host="/", heart_beat=(5, 6), now=0)
        self.assertEqual(
            link.data_to_send(),
            b"CONNECT\naccept-version:1.1\nhost:/\nlogin:guest\npasscode:pw\nheart-beat:5,6\n\n\x00",
        )
        self.assertIs(link.state, LinkState.CONNECTING)

    def test_connected(self) -> None:
        """
        C{CONNECTED} gives L{BrokerConnected} with the broker's version and
        the heart-beats negotiated as STOMP 1.2 says; later frames are
        events as they are.
        """
        link = openedLink()
        [event] = link.events()
        self.assertEqual((event.version, event.heart_beat), (Version.V1_2, (1000, 2000)))
        self.assertIs(link.state, LinkState.CONNECTED)
        link.receive_data(b"MESSAGE\ndestination:/queue/a\nmessage-id:m\\c1\ncontent-length:1\n\nx\x00", now=1)
        self.assertEqual(
            link.events(), [Frame("MESSAGE", (("destination", "/queue/a"), ("message-id", "m:1"), ("content-length", "1")), b"x")]
        )

    def test_refused(self) -> None:
        """
        An C{ERROR} answering C{CONNECT} fails the link with its message,
        and it wants the connection closed.
        """
        link = BrokerLink(now=0)
        link.receive_data(b"ERROR\nmessage:Access refused for user 'x'\n\n\x00", now=0)
        self.assertEqual(link.events(), [BrokerFailed("Access refused for user 'x'")])
        self.assertTrue(link.wants_close)

    def test_connectTimeout(self) -> None:
        """
        Without C{CONNECTED} within C{connect_timeout}, the link fails.
        """
        link = BrokerLink(connect_timeout=3, now=10)
        self.assertEqual(link.next_deadline(), 13)
        link.handle_timer(now=13)
        self.assertEqual(link.events(), [BrokerFailed("the broker did not answer CONNECT in time")])

    def test_heartBeats(self) -> None:
        """
        The link sends an EOL at the negotiated interval, and fails when
        the broker is silent for twice its interval.
        """
        link = openedLink()
        link.events()
        self.assertEqual(link.next_deadline(), 1.0)
        link.handle_timer(now=1.0)
        self.assertEqual(link.data_to_send(), b"\n")
        link.receive_data(b"\n", now=1.5)
        link.handle_timer(now=2.0)
        self.assertEqual(link.data_to_send(), b"\n")
        self.assertEqual(link.events(), [])
        link.handle_timer(now=5.5)
        self.assertEqual(link.events(), [BrokerFailed("no heart-beat from the broker in 2000 ms")])
        self.assertTrue(link.wants_close)

    def test_sendAddsContentLength(self) -> None:
        """
        A frame whose body has a NUL gets a C{content-length}; before
        C{CONNECTED} nothing can be sent.
        """
        link = BrokerLink(now=0)
        self.assertRaises(Exception, link.send, Frame("SEND"))
        link = openedLink()
        link.send(Frame("SEND", (("destination", "/topic/a:b"),), b"a\x00b"))
        self.assertEqual(link.data_to_send(), b"SEND\ndestination:/topic/a\\cb\ncontent-length:3\n\na\x00b\x00")

    def test_disconnect(self) -> None:
        """
        L{BrokerLink.disconnect} sends C{DISCONNECT} and wants the
        connection closed, with no failure event.
        """
        link = openedLink()
        link.events()
        link.disconnect()
        self.assertEqual(link.data_to_send(), b"DISCONNECT\n\n\x00")
        self.assertTrue(link.wants_close)
        link.receive_eof()
        self.assertEqual(link.events(), [])


def relaySession() -> tuple[RelaySession, list[Frame]]:
    """
    A connected STOMP 1.2 L{RelaySession} whose forwarded frames are
    collected, and that list.
    """
    forwarded: list[Frame] = []
    session = RelaySession(CONFIG, EmbeddedBroker(), session_id="s1")
    session.receive_data(frame("CONNECT", "accept-version:1.2", "host:h"), now=0)
    session.events()
    session.forward = forwarded.append
    session.accept_connect(None, now=0)
    session.messages_to_send()
    return session, forwarded


class RelaySessionTests(SynchronousTestCase):
    """
    L{RelaySession}: the client's frames go to the broker, the broker's
    come back.
    """

    def test_framesForwarded(self) -> None:
        """
        C{SUBSCRIBE}, C{SEND}, C{ACK} and transactions go to the broker as
        they are, receipts included; the session answers none of them.
        """
        session, forwarded = relaySession()
        session.receive_data(
            frame("SUBSCRIBE", "id:0", "destination:/exchange/amq.topic/a.*", "ack:client", "receipt:r1")
            + frame("BEGIN", "transaction:t")
            + frame("SEND", "destination:/amq/queue/q", "transaction:t", body=b"x")
            + frame("ACK", "id:T_0@@1"),
            now=1,
        )
        self.assertEqual([f.command for f in forwarded], ["SUBSCRIBE", "BEGIN", "SEND", "ACK"])
        self.assertEqual(forwarded[0].get("receipt"), "r1")
        self.assertEqual(forwarded[2].body, b"x")
        self.assertEqual(session.messages_to_send(), [])

    def test_applicationDestinationsStayHere(self) -> None:
        """
        A C{SEND} to the application prefix goes to its handler (here
        none: an C{ERROR}), not to the broker.
        """
        session, forwarded = relaySession()
        session.receive_data(frame("SEND", "destination:/app/x"), now=1)
        self.assertEqual(forwarded, [])
        self.assertTrue(session.messages_to_send()[0].startswith("ERROR\nmessage:no handler for /app/x\n"))

    def test_reply(self) -> None:
        """
        A handler's C{reply} reaches the client on its subscriptions to
        the destination, as forwarded to the broker; not after
        C{UNSUBSCRIBE}.
        """
        router = Router()
        router.add("/app/ping", lambda request: request.reply("/topic/pong", "pong"))
        forwarded: list[Frame] = []
        session = RelaySession(CONFIG, EmbeddedBroker(), session_id="s1", router=router)
        session.receive_data(frame("CONNECT", "accept-version:1.2", "host:h"), now=0)
        session.events()
        session.forward = forwarded.append
        session.accept_connect(None, now=0)
        session.messages_to_send()
        session.receive_data(frame("SUBSCRIBE", "id:7", "destination:/topic/pong") + frame("SEND", "destination:/app/ping"), now=1)
        self.assertEqual([f.command for f in forwarded], ["SUBSCRIBE"])
        [reply] = session.messages_to_send()
        self.assertTrue(reply.startswith("MESSAGE\ndestination:/topic/pong\nmessage-id:s1-reply-1\nsubscription:7\n"), reply)
        session.receive_data(frame("UNSUBSCRIBE", "id:7") + frame("SEND", "destination:/app/ping"), now=2)
        self.assertEqual(session.messages_to_send(), [])

    def test_brokerFramesPassed(self) -> None:
        """
        The broker's C{MESSAGE} goes to the client as the broker wrote
        it; its C{ERROR} goes too, and ends the session.
        """
        session, _ = relaySession()
        woken = []
        session.wake = lambda: woken.append(True)
        session.broker_frame_received(
            Frame("MESSAGE", (("subscription", "0"), ("message-id", "T_0@@1"), ("content-length", "1")), b"x")
        )
        self.assertEqual(session.messages_to_send(), ["MESSAGE\nsubscription:0\nmessage-id:T_0@@1\ncontent-length:1\n\nx\x00"])
        session.broker_frame_received(Frame("ERROR", (("message", "not_found"),)))
        self.assertEqual(session.messages_to_send(), ["ERROR\nmessage:not_found\n\n\x00"])
        self.assertIs(session.state, SessionState.CLOSED)
        self.assertTrue(session.wants_close)
        self.assertEqual(len(woken), 2)

    def test_noLink(self) -> None:
        """
        A frame for the broker while the session has no broker connection
        gets C{ERROR message:broker not available}.
        """
        session, _ = relaySession()
        session.forward = None
        session.receive_data(frame("SEND", "destination:/queue/a"), now=1)
        self.assertTrue(session.messages_to_send()[0].startswith("ERROR\nmessage:broker not available\n"))


class BrokerProtocolTests(SynchronousTestCase):
    """
    L{BrokerProtocol}, the pump of a L{BrokerLink}, on a
    C{StringTransport} and a C{Clock}.
    """

    def opened(self) -> tuple[BrokerProtocol, StringTransport, Clock, list]:
        clock, transport, seen = Clock(), StringTransport(), []
        protocol = BrokerProtocol(
            lambda now: BrokerLink(heart_beat=(1000, 1000), connect_timeout=5, now=now), clock,
            lambda event: seen.append(("connected", event.heart_beat)),
            lambda received: seen.append(("frame", received.command)),
            lambda message: seen.append(("failed", message)),
        )
        protocol.makeConnection(transport)
        return protocol, transport, clock, seen

    def test_connectThenFrames(self) -> None:
        """
        The protocol writes C{CONNECT} at once, reports C{CONNECTED} and
        then each frame, and sends heart-beats on the clock.
        """
        protocol, transport, clock, seen = self.opened()
        self.assertTrue(transport.value().startswith(b"CONNECT\naccept-version:1.2\n"))
        transport.clear()
        protocol.dataReceived(b"CONNECTED\nversion:1.2\nheart-beat:1000,1000\n\n\x00MESSAGE\n\nx\x00")
        self.assertEqual(seen, [("connected", (1000, 1000)), ("frame", "MESSAGE")])
        clock.advance(1)
        self.assertEqual(transport.value(), b"\n")

    def test_noDelay(self) -> None:
        """
        The connection to the broker has Nagle's algorithm off, as every
        TCP connection of ours (L{wsproto_tw.wire.setNoDelay}).
        """
        from tests.test_nodelay import RecordingTCP

        transport = RecordingTCP()
        protocol = BrokerProtocol(
            lambda now: BrokerLink(heart_beat=(0, 0), connect_timeout=5, now=now), Clock(), print, print, print
        )
        protocol.makeConnection(transport)
        self.assertEqual(transport.noDelay, [True])

    def test_silentBrokerAborted(self) -> None:
        """
        A broker silent past twice its heart-beat is reported failed once,
        and the connection is aborted, not waited for.
        """
        protocol, transport, clock, seen = self.opened()
        protocol.dataReceived(b"CONNECTED\nversion:1.2\nheart-beat:1000,1000\n\n\x00")
        clock.advance(1)
        clock.advance(1)
        self.assertEqual(seen[-1], ("failed", "no heart-beat from the broker in 1000 ms"))
        self.assertTrue(transport.disconnected)
        protocol.connectionLost(None)
        self.assertEqual(len([s for s in seen if s[0] == "failed"]), 1)

    def test_noAnswer(self) -> None:
        """
        Without C{CONNECTED} within the link's connect timeout, the
        protocol reports the failure.
        """
        protocol, transport, clock, seen = self.opened()
        clock.advance(5)
        self.assertEqual(seen, [("failed", "the broker did not answer CONNECT in time")])
        self.assertTrue(transport.disconnected)

    def test_disconnectIsNoFailure(self) -> None:
        """
        L{BrokerProtocol.disconnect} says C{DISCONNECT} and closes; the
        loss that follows is not reported as a failure.
        """
        protocol, transport, clock, seen = self.opened()
        protocol.dataReceived(b"CONNECTED\nversion:1.2\n\n\x00")
        transport.clear()
        protocol.disconnect()
        self.assertEqual(transport.value(), b"DISCONNECT\n\n\x00")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(None)
        self.assertEqual(seen, [("connected", (0, 0))])


class RelayOptionsTests(SynchronousTestCase):
    """
    C{--stomp-relay} and its companions on the command line.
    """

    def test_relayBroker(self) -> None:
        """
        C{--stomp-relay} gives the server a L{RelayBroker} with the relay's
        credentials and virtual host, and its system connection's service
        is among the services to start.
        """
        options = parse(
            "--stomp-relay", "tcp:127.0.0.1:61613", "--stomp-relay-login", "guest",
            "--stomp-relay-passcode", "pw", "--stomp-relay-vhost", "/prod",
        )
        server = buildStompServer(options, Clock())
        self.assertIsInstance(server.broker, RelayBroker)
        self.assertEqual((server.broker.login, server.broker.passcode, server.broker.host), ("guest", "pw", "/prod"))
        self.assertIn(server.broker.service, stompPortServices(server, options))

    def test_credentialsNeedRelay(self) -> None:
        """
        The relay's credentials without C{--stomp-relay} are refused.
        """
        exc = self.assertRaises(usage.UsageError, parse, "--stomp-relay-login", "guest")
        self.assertEqual(str(exc), "--stomp-relay-login needs --stomp-relay")

    def test_badEndpoint(self) -> None:
        """
        A C{--stomp-relay} that is not a client endpoint is refused with
        a message naming it.
        """
        exc = self.assertRaises(usage.UsageError, parse, "--stomp-relay", "tcp:127.0.0.1")
        self.assertTrue(str(exc).startswith("--stomp-relay tcp:127.0.0.1: not a client endpoint"), str(exc))


class Rabbit:
    """
    A L{RabbitMQ} node that a test can stop and start again on the same
    ports and data.
    """

    def __init__(self, testCase: SynchronousTestCase) -> None:
        self.testCase = testCase
        self.node = RabbitMQ(testCase)
        self.stompPort = self.node.stompPort

    def stop(self) -> None:
        _stop(self.node.process)

    def start(self) -> None:
        env = self.node._env
        log = os.path.join(env["HOME"], "restart.log")
        with open(log, "wb") as output:
            self.node.process = subprocess.Popen(
                [SERVER], env=env, cwd=env["HOME"], start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            )
        self.testCase.addCleanup(_stop, self.node.process)
        _waitForPort(self.stompPort, 120, self.node.process, log)


def receiveUntil(client: Client, command: str, timeout: float = 15) -> Frame:
    """
    @return: the next frame C{client} receives, which must be a
        C{command} frame, within C{timeout} seconds.
    """
    client.socket.settimeout(timeout)
    received = client.receive()
    if received.command != command:
        raise AssertionError(f"expected {command}, got {received}")
    return received


def pidClients(testCase: SynchronousTestCase, port: int, count: int = 12) -> list[Client]:
    """
    Connect C{count} STOMP 1.2 clients without heart-beats to C{port}, each
    subscribed to C{/topic/pids} (where L{registerPid}'s handler answers);
    they are closed when the test ends.

    @return: the clients, once every subscription's receipt came back.
    """
    clients = []
    for _ in range(count):
        client = Client(port)
        testCase.addCleanup(client.close)
        client.send("CONNECT", "accept-version:1.2", "host:ours", "heart-beat:0,0")
        receiveUntil(client, "CONNECTED")
        clients.append(client)
    for client in clients:
        client.send("SUBSCRIBE", "id:p", "destination:/topic/pids", "receipt:r")
        receiveUntil(client, "RECEIPT")
    return clients


def closedSoon(client: Client, timeout: float = 15) -> bool:
    """
    @return: whether C{client}'s connection is closed by the other side
        within C{timeout} seconds.
    """
    client.socket.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.socket.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


class RelayWithRabbitMQTests(SynchronousTestCase):
    """
    C{twistd websocket --mode stomp --stomp-relay} with RabbitMQ behind it:
    clients of the relay (STOMP over TCP, on C{--stomp-port}) and clients
    straight on RabbitMQ exchange messages.
    """

    def setUp(self) -> None:
        self.rabbit = Rabbit(self)
        self.stompPort = _freePort()
        self.twistd = Twistd(
            self, "--mode", "stomp", "--port", "tcp:0:interface=127.0.0.1", "--heart-beat", "0,0",
            "--stomp-port", f"tcp:{self.stompPort}:interface=127.0.0.1",
            "--stomp-relay", f"tcp:127.0.0.1:{self.rabbit.stompPort}",
            "--stomp-relay-login", "guest", "--stomp-relay-passcode", "guest", "--stomp-relay-vhost", "/",
            "--app", "tests.stomp.helpers.registerShout",
        )
        self.twistd.waitFor(rf"starting on {self.stompPort}\b", 60)
        self.twistd.waitFor(r"system connection to \S+ is up", 60)

    def relayClient(self) -> Client:
        """
        A client of the relay, connected as someone RabbitMQ doesn't know
        (we authenticate clients; the broker sees the relay's login).
        """
        client = Client(self.stompPort)
        client.send("CONNECT", "accept-version:1.2", "host:ours", "login:ann", "passcode:any", "heart-beat:0,0")
        connected = receiveUntil(client, "CONNECTED")
        client.reader.version = Version(connected.get("version"))
        self.addCleanup(client.close)
        return client

    def rabbitClient(self) -> Client:
        """
        A client straight on RabbitMQ.
        """
        client = Client(self.rabbit.stompPort)
        self.assertEqual(client.connect("1.2").command, "CONNECTED")
        self.addCleanup(client.close)
        return client

    def test_destinationsPassThrough(self) -> None:
        """
        RabbitMQ's destination forms work through the relay both ways:
        C{/exchange/...} with a binding pattern, C{/queue/...} with client
        acknowledgements, C{/amq/queue/...}, C{/topic/...} and
        C{/temp-queue/...} as C{reply-to}; receipts come from RabbitMQ.
        """
        ours, theirs = self.relayClient(), self.rabbitClient()
        ours.send("SUBSCRIBE", "id:x", "destination:/exchange/amq.topic/prices.*", "receipt:r-x")
        self.assertEqual(receiveUntil(ours, "RECEIPT").get("receipt-id"), "r-x")
        theirs.send("SEND", "destination:/exchange/amq.topic/prices.acme", "content-type:text/plain", body=b"42")
        got = receiveUntil(ours, "MESSAGE")
        # RabbitMQ names amq.topic's messages /topic/ROUTING-KEY: passed on as it wrote it.
        self.assertEqual((got.get("subscription"), got.get("destination"), got.body), ("x", "/topic/prices.acme", b"42"))

        theirs.send("SUBSCRIBE", "id:q", "destination:/queue/work", "ack:client-individual", "receipt:r-q")
        receiveUntil(theirs, "RECEIPT")
        ours.send("SEND", "destination:/queue/work", "receipt:r-send", body=b"job")
        self.assertEqual(receiveUntil(ours, "RECEIPT").get("receipt-id"), "r-send")
        job = receiveUntil(theirs, "MESSAGE")
        self.assertEqual(job.body, b"job")
        theirs.send("ACK", f"id:{job.get('ack')}")

        ours.send("SUBSCRIBE", "id:amq", "destination:/amq/queue/work", "ack:client", "receipt:r-amq")
        receiveUntil(ours, "RECEIPT")
        theirs.send("UNSUBSCRIBE", "id:q", "receipt:r-unsub")
        receiveUntil(theirs, "RECEIPT")
        theirs.send("SEND", "destination:/amq/queue/work", body=b"again")
        again = receiveUntil(ours, "MESSAGE")
        self.assertEqual((again.get("subscription"), again.body), ("amq", b"again"))
        ours.send("ACK", f"id:{again.get('ack')}", "receipt:r-ack")
        self.assertEqual(receiveUntil(ours, "RECEIPT").get("receipt-id"), "r-ack")

        theirs.send("SUBSCRIBE", "id:t", "destination:/topic/news", "receipt:r-t")
        receiveUntil(theirs, "RECEIPT")
        ours.send("SEND", "destination:/topic/news", "reply-to:/temp-queue/answers", body=b"question")
        question = receiveUntil(theirs, "MESSAGE")
        self.assertEqual(question.body, b"question")
        theirs.send("SEND", f"destination:{question.get('reply-to')}", body=b"answer")
        answer = receiveUntil(ours, "MESSAGE")
        # RabbitMQ delivers a temporary queue's messages on a subscription
        # named after it, on the connection that created it: this session's.
        self.assertEqual((answer.body, answer.get("subscription")), (b"answer", "/temp-queue/answers"))

    def test_webSocketClient(self) -> None:
        """
        A browser-style client, STOMP 1.2 over a WebSocket (subprotocol
        C{v12.stomp}), and a client straight on RabbitMQ exchange messages
        through the relay, with receipts and a client acknowledgement.
        """
        url = re.search(r"serving (ws://\S+)", "".join(self.twistd.log)).group(1)
        theirs = self.rabbitClient()
        with websocketsConnect(url, subprotocols=["v12.stomp"], open_timeout=10) as browser:
            self.assertEqual(browser.subprotocol, "v12.stomp")
            reader = FrameReader(version=Version.V1_2)

            def receive() -> Frame:
                while (got := reader.next_frame()) is None:
                    message = browser.recv(timeout=15)
                    reader.feed(message.encode("utf-8") if isinstance(message, str) else message)
                return got

            browser.send(frame("CONNECT", "accept-version:1.2", "host:ours", "heart-beat:0,0").decode())
            self.assertEqual(receive().command, "CONNECTED")
            browser.send(frame("SUBSCRIBE", "id:0", "destination:/exchange/amq.fanout", "ack:client-individual",
                               "receipt:sub").decode())
            self.assertEqual(receive().get("receipt-id"), "sub")
            theirs.send("SEND", "destination:/exchange/amq.fanout", body=b"to the browser")
            got = receive()
            self.assertEqual((got.command, got.get("subscription"), got.body), ("MESSAGE", "0", b"to the browser"))
            browser.send(frame("ACK", f"id:{got.get('ack')}", "receipt:ack").decode())
            self.assertEqual(receive().get("receipt-id"), "ack")
            theirs.send("SUBSCRIBE", "id:q", "destination:/queue/from-browser", "receipt:r-q")
            receiveUntil(theirs, "RECEIPT")
            browser.send(frame("SEND", "destination:/queue/from-browser", "receipt:sent", body=b"hello").decode())
            self.assertEqual(receive().get("receipt-id"), "sent")
            self.assertEqual(receiveUntil(theirs, "MESSAGE").body, b"hello")
            browser.send(frame("DISCONNECT", "receipt:bye").decode())
            self.assertEqual(receive().get("receipt-id"), "bye")

    def test_applicationPublishesOverSystemConnection(self) -> None:
        """
        A C{SEND} to C{/app/...} goes to the application's handler, and
        what it publishes reaches RabbitMQ's subscribers through the
        system connection.
        """
        ours, theirs = self.relayClient(), self.rabbitClient()
        theirs.send("SUBSCRIBE", "id:t", "destination:/topic/news", "receipt:r-t")
        receiveUntil(theirs, "RECEIPT")
        ours.send("SEND", "destination:/app/shout", "receipt:r-app", body=b"hello")
        self.assertEqual(receiveUntil(ours, "RECEIPT").get("receipt-id"), "r-app")
        self.assertEqual(receiveUntil(theirs, "MESSAGE").body, b"HELLO")

    def test_brokerStopped(self) -> None:
        """
        RabbitMQ stopped mid-session: the relay's client gets C{ERROR
        message:broker not available} and is closed; a new session is
        refused the same way; once RabbitMQ is back, new sessions work and
        the system connection is up again.
        """
        ours = self.relayClient()
        ours.send("SUBSCRIBE", "id:x", "destination:/topic/news", "receipt:r-x")
        receiveUntil(ours, "RECEIPT")
        self.rabbit.stop()
        error = receiveUntil(ours, "ERROR")
        self.assertEqual(error.get("message"), "broker not available")
        self.assertTrue(closedSoon(ours))

        refused = Client(self.stompPort)
        self.addCleanup(refused.close)
        refused.send("CONNECT", "accept-version:1.2", "host:ours", "heart-beat:0,0")
        self.assertEqual(receiveUntil(refused, "ERROR").get("message"), "broker not available")

        self.rabbit.start()
        self.twistd.waitFor(r"system connection to \S+ is up", 60)
        again, theirs = self.relayClient(), self.rabbitClient()
        theirs.send("SUBSCRIBE", "id:t", "destination:/topic/news", "receipt:r-t")
        receiveUntil(theirs, "RECEIPT")
        again.send("SEND", "destination:/topic/news", body=b"direct")
        self.assertEqual(receiveUntil(theirs, "MESSAGE").body, b"direct")
        again.send("SEND", "destination:/app/shout", body=b"via system")
        self.assertEqual(receiveUntil(theirs, "MESSAGE").body, b"VIA SYSTEM")


class RelayWorkersTests(SynchronousTestCase):
    """
    C{twistd websocket --workers 2 --mode stomp --stomp-relay}: RabbitMQ
    carries messages between the clients of different workers.
    """

    def test_fanOutAcrossWorkers(self) -> None:
        """
        Clients spread over both workers all get what each of them sends,
        both straight to a RabbitMQ topic and through an application
        handler of whichever worker serves the sender.
        """
        rabbit = Rabbit(self)
        stompPort = _freePort()
        twistd = Twistd(
            self, "--workers", "2", "--mode", "stomp", "--port", "tcp:0:interface=127.0.0.1", "--heart-beat", "0,0",
            "--stomp-port", f"tcp:{stompPort}:interface=127.0.0.1",
            "--stomp-relay", f"tcp:127.0.0.1:{rabbit.stompPort}",
            "--stomp-relay-login", "guest", "--stomp-relay-passcode", "guest",
            "--app", "tests.stomp.test_relay.registerPid",
        )
        self.addCleanup(stopped, twistd)
        for _ in range(2):
            twistd.waitFor(r"worker \d \(pid \d+\): .*system connection to \S+ is up", 60)
        clients = pidClients(self, stompPort)
        for index, client in enumerate(clients):
            client.send("SEND", "destination:/app/pid", body=b"client-%d" % index)
        servedBy: dict[str, str] = {}
        for client in clients:
            got = {}
            for _ in clients:
                name, pid = receiveUntil(client, "MESSAGE").body.decode().split()
                got[name] = pid
            self.assertEqual(sorted(got), sorted(f"client-{i}" for i in range(len(clients))))
            servedBy.update(got)
        self.assertEqual(len(set(servedBy.values())), 2, servedBy)
        clients[0].send("SEND", "destination:/topic/pids", body=b"direct 0")
        for client in clients:
            self.assertEqual(receiveUntil(client, "MESSAGE").body, b"direct 0")
