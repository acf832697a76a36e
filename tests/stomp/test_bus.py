"""
Topics across processes: L{wsproto_tw.stomp.bus.BusBroker} with a bus
made of lists, and C{twistd websocket --workers 2 --mode stomp --redis}
with a real C{redis-server} (Debian's, installed when missing, started on
a free loopback port with a configuration of the test's, stopped when it
ends), restarted mid-run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from twisted.python import usage
from websockets.sync.client import connect as websocketsConnect
from twisted.trial.unittest import SynchronousTestCase

from tests.processes import Twistd
from tests.test_workers import stopped
from tests.stomp.helpers import connected, frame, sent
from tests.stomp.rabbitmq import _freePort, _stop, _waitForPort
from tests.stomp.test_options import parse
from tests.stomp.test_relay import pidClients, receiveUntil
from tests.tools import pipInstalled
from wsproto_tw.stomp.broker import Message
from wsproto_tw.stomp.bus import BusBroker, decode_message, encode_message

CHANNEL = "wsproto_tw:stomp:/topic/news"


class ListBus:
    """
    A bus that records what it is asked.
    """

    def __init__(self) -> None:
        self.connected = True
        self.calls: list[tuple[str, ...]] = []

    def subscribe(self, channel: str) -> None:
        self.calls.append(("subscribe", channel))

    def unsubscribe(self, channel: str) -> None:
        self.calls.append(("unsubscribe", channel))

    def publish(self, channel: str, payload: bytes) -> None:
        self.calls.append(("publish", channel, payload))


class BusBrokerTests(SynchronousTestCase):
    """
    L{BusBroker} without I/O.
    """

    def test_codec(self) -> None:
        """
        A message goes through the bus as a STOMP 1.2 C{MESSAGE} frame and
        comes back equal, a NUL in the body and an escaped header too.
        """
        message = Message("/topic/a", (("x-note", "a:b\nc"),), b"a\x00b")
        payload = encode_message(message)
        self.assertEqual(payload, b"MESSAGE\ndestination:/topic/a\nx-note:a\\cb\\nc\ncontent-length:3\n\na\x00b\x00")
        self.assertEqual(decode_message(payload), message)

    def test_subscribeOncePerTopic(self) -> None:
        """
        The first local subscription to a topic subscribes the bus channel,
        the last one ending unsubscribes it; queues never touch the bus.
        """
        bus = ListBus()
        broker = BusBroker(bus)
        first, second = connected(broker, session_id="a"), connected(broker, session_id="b")
        for session in (first, second):
            session.receive_data(frame("SUBSCRIBE", "id:1", "destination:/topic/news"), now=0)
            session.receive_data(frame("SUBSCRIBE", "id:2", "destination:/queue/jobs"), now=0)
        self.assertEqual(bus.calls, [("subscribe", CHANNEL)])
        first.receive_data(frame("UNSUBSCRIBE", "id:1"), now=0)
        self.assertEqual(bus.calls, [("subscribe", CHANNEL)])
        second.connection_lost()
        self.assertEqual(bus.calls, [("subscribe", CHANNEL), ("unsubscribe", CHANNEL)])

    def test_topicsGoThroughTheBus(self) -> None:
        """
        A topic message is published to the bus only; delivered locally
        when the bus brings it back. A queue message stays local.
        """
        bus = ListBus()
        broker = BusBroker(bus)
        receiver = connected(broker, session_id="r")
        receiver.receive_data(frame("SUBSCRIBE", "id:1", "destination:/topic/news"), now=0)
        sender = connected(broker, session_id="s")
        sender.receive_data(frame("SEND", "destination:/topic/news", body=b"hi"), now=0)
        self.assertEqual(sent(receiver), [])
        _, channel, payload = bus.calls[-1]
        self.assertEqual(channel, CHANNEL)
        broker.bus_message_received(channel, payload)
        [delivered] = sent(receiver)
        self.assertTrue(delivered.startswith("MESSAGE\ndestination:/topic/news\n") and delivered.endswith("\n\nhi\x00"))
        receiver.receive_data(frame("SUBSCRIBE", "id:2", "destination:/queue/jobs"), now=0)
        calls = len(bus.calls)
        sender.receive_data(frame("SEND", "destination:/queue/jobs", body=b"job"), now=0)
        self.assertEqual(len(bus.calls), calls)
        self.assertEqual(len(sent(receiver)), 1)

    def test_busDownDeliversLocally(self) -> None:
        """
        While the bus is down, topic messages are delivered in this
        process.
        """
        bus = ListBus()
        bus.connected = False
        broker = BusBroker(bus)
        receiver = connected(broker, session_id="r")
        receiver.receive_data(frame("SUBSCRIBE", "id:1", "destination:/topic/news"), now=0)
        broker.publish(Message("/topic/news", (), b"local"))
        self.assertEqual(len(sent(receiver)), 1)
        self.assertEqual([c for c in bus.calls if c[0] == "publish"], [])

    def test_badPayloadDropped(self) -> None:
        """
        What the bus brings that is not a message of its channel is
        dropped (and logged), never raised.
        """
        broker = BusBroker(ListBus())
        receiver = connected(broker, session_id="r")
        receiver.receive_data(frame("SUBSCRIBE", "id:1", "destination:/topic/news"), now=0)
        broker.bus_message_received(CHANNEL, b"garbage")
        broker.bus_message_received(CHANNEL, encode_message(Message("/topic/other", (), b"x")))
        broker.bus_message_received("wsproto_tw:stomp:/queue/a", encode_message(Message("/queue/a", (), b"x")))
        self.assertEqual(sent(receiver), [])

    def test_options(self) -> None:
        """
        C{--redis} and C{--stomp-relay} exclude each other; C{--redis}
        needs a mode that has something to share.
        """
        exc = self.assertRaises(
            usage.UsageError, parse, "--redis", "tcp:127.0.0.1:6379", "--stomp-relay", "tcp:127.0.0.1:61613"
        )
        self.assertIn("--redis and --stomp-relay exclude each other", str(exc))
        from wsproto_tw.tap import Options

        exc = self.assertRaises(usage.UsageError, Options().parseOptions, ["--redis", "tcp:127.0.0.1:6379"])
        self.assertEqual(str(exc), "--redis needs --mode stomp or --mode broadcast")


def pubsubMessage(channel: bytes, payload: bytes) -> bytes:
    """
    What Redis sends a subscriber for one message (RESP).
    """
    return b"*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(channel), channel, len(payload), payload)


class RedisBusTests(SynchronousTestCase):
    """
    L{wsproto_tw.redisbus.RedisBus}'s subscriber connection, on a
    C{StringTransport}.
    """

    def test_burstParsedAtOnce(self) -> None:
        """
        Messages that arrive together are all delivered at once, in order,
        not one per reactor turn (what C{txredisapi} alone does); the
        channels are subscribed when the connection is ready.
        """
        ensureTxredisapi()
        from twisted.internet.task import Clock
        from twisted.internet.testing import StringTransport

        from wsproto_tw.redisbus import RedisBus

        bus = RedisBus("tcp:127.0.0.1:6379", reactor=Clock())
        received: list[tuple[str, bytes]] = []
        bus.received = lambda channel, payload: received.append((channel, payload))
        bus.subscribe("news")
        protocol = bus._factory("subscriber").buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertEqual(transport.value(), b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n")
        protocol.dataReceived(b"".join(pubsubMessage(b"news", b"m%d\r\n" % i) for i in range(50))[:-3])
        self.assertEqual(received, [("news", b"m%d\r\n" % i) for i in range(49)])
        protocol.dataReceived(b"\n\r\n")
        self.assertEqual(received[-1], ("news", b"m49\r\n"))


    def test_noDelay(self) -> None:
        """
        Both connections to Redis have Nagle's algorithm off, as every TCP
        connection of ours, and still say hello to the server.
        """
        ensureTxredisapi()
        from twisted.internet.task import Clock

        from tests.test_nodelay import RecordingTCP
        from wsproto_tw.redisbus import RedisBus

        bus = RedisBus("tcp:127.0.0.1:6379", reactor=Clock())
        bus.subscribe("news")
        for kind in ("subscriber", "publisher"):
            protocol = bus._factory(kind).buildProtocol(None)
            transport = RecordingTCP()
            protocol.makeConnection(transport)
            self.assertEqual(transport.noDelay, [True], kind)
        self.assertEqual(transport.value(), b"")  # the publisher sends nothing until asked


def ensureRedis() -> str:
    """
    Install Debian's C{redis-server} (as root) if it is missing.

    @return: the program's path.
    @raise AssertionError: it can't be installed.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        raise AssertionError("redis-server is missing, and only root may install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
        if result.returncode != 0:
            raise AssertionError(f"can't install redis-server ({' '.join(command)}):\n" + result.stdout + result.stderr)
    found = shutil.which("redis-server")
    if not found:
        raise AssertionError("redis-server is not there after installing it")
    return found


def ensureTxredisapi() -> None:
    """
    Install C{txredisapi} (the C{redis} extra) into this interpreter's
    environment if it is missing.

    @raise AssertionError: it can't be installed.
    """
    pipInstalled("txredisapi", "txredisapi")


class Redis:
    """
    A C{redis-server} on a free loopback port, no persistence, stopped
    when the test ends; L{stop} and L{start} restart it on the same port.
    """

    def __init__(self, testCase: SynchronousTestCase) -> None:
        self.testCase = testCase
        self.program = ensureRedis()
        self.base = os.path.abspath(testCase.mktemp())
        os.makedirs(self.base)
        self.port = _freePort()
        self.config = os.path.join(self.base, "redis.conf")
        with open(self.config, "w") as f:
            f.write(f"bind 127.0.0.1\nport {self.port}\nsave \"\"\nappendonly no\ndir {self.base}\ndaemonize no\n")
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        log = os.path.join(self.base, "redis.log")
        with open(log, "ab") as output:
            self.process = subprocess.Popen(
                [self.program, self.config], cwd=self.base, start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            )
        self.testCase.addCleanup(_stop, self.process)
        _waitForPort(self.port, 30, self.process, log)

    def stop(self) -> None:
        assert self.process is not None
        _stop(self.process)


class RedisWorkersTests(SynchronousTestCase):
    """
    C{twistd websocket --workers 2 --mode stomp --redis}: topic messages
    reach the clients of both workers.
    """

    def test_fanOutAcrossWorkers(self) -> None:
        """
        Clients spread over both workers all get each other's topic
        messages through Redis; with Redis stopped, each worker still
        delivers its own clients' messages to its own clients; once Redis
        is back, fan-out across workers resumes.
        """
        ensureTxredisapi()
        redis = Redis(self)
        stompPort = _freePort()
        twistd = Twistd(
            self, "--workers", "2", "--mode", "stomp", "--port", "tcp:0:interface=127.0.0.1", "--heart-beat", "0,0",
            "--stomp-port", f"tcp:{stompPort}:interface=127.0.0.1", "--redis", f"tcp:127.0.0.1:{redis.port}",
            "--app", "tests.stomp.test_relay.registerPid",
        )
        self.addCleanup(stopped, twistd)
        for _ in range(2):
            twistd.waitFor(r"worker \d \(pid \d+\): .*redis bus: connected to ", 60)
        clients = pidClients(self, stompPort)

        def everyoneSends() -> dict[int, dict[str, str]]:
            for index, client in enumerate(clients):
                client.send("SEND", "destination:/app/pid", body=b"client-%d" % index)
            return {
                index: dict(receiveUntil(client, "MESSAGE").body.decode().split() for _ in range(expected[index]))
                for index, client in enumerate(clients)
            }

        expected = {index: len(clients) for index in range(len(clients))}
        got = everyoneSends()
        for index in got:
            self.assertEqual(sorted(got[index]), sorted(f"client-{i}" for i in range(len(clients))))
        pidOf = got[0]
        self.assertEqual(len(set(pidOf.values())), 2, pidOf)

        redis.stop()
        for _ in range(2):
            twistd.waitFor(r"worker \d \(pid \d+\): .*redis bus: connection to \S+ lost", 30)
        # Each client now hears the clients of its own worker only.
        expected = {i: sum(1 for p in pidOf.values() if p == pidOf[f"client-{i}"]) for i in range(len(clients))}
        got = everyoneSends()
        for index in got:
            mine = pidOf[f"client-{index}"]
            self.assertEqual(sorted(got[index]), sorted(name for name, pid in pidOf.items() if pid == mine))

        redis.start()
        for _ in range(2):
            twistd.waitFor(r"worker \d \(pid \d+\): .*redis bus: connected to \S+ again", 60)
        expected = {index: len(clients) for index in range(len(clients))}
        got = everyoneSends()
        for index in got:
            self.assertEqual(sorted(got[index]), sorted(f"client-{i}" for i in range(len(clients))))


class BroadcastWorkersTests(SynchronousTestCase):
    """
    C{twistd websocket --workers 2 --mode broadcast --redis}: every
    client's message reaches every client, whichever worker serves it.
    """

    def test_broadcastAcrossWorkers(self) -> None:
        """
        Clients spread over both workers each get every client's message.
        """
        ensureTxredisapi()
        redis = Redis(self)
        twistd = Twistd(
            self, "--workers", "2", "--mode", "broadcast", "--port", "tcp:0:interface=127.0.0.1",
            "--redis", f"tcp:127.0.0.1:{redis.port}",
        )
        self.addCleanup(stopped, twistd)
        for _ in range(2):
            twistd.waitFor(r"worker \d \(pid \d+\): .*redis bus: connected to ", 60)
        url = re.search(r"serving (ws://\S+)", "".join(twistd.log)).group(1)
        clients = [websocketsConnect(url, open_timeout=10) for _ in range(12)]
        self.addCleanup(lambda: [client.close() for client in clients])
        for index, client in enumerate(clients):
            client.send(f"hello from {index}")
        for client in clients:
            got = sorted(client.recv(timeout=10) for _ in clients)
            self.assertEqual(got, sorted(f"hello from {i}" for i in range(len(clients))))
        for client in clients:
            client.close()
        # Each worker logs the connections it opened.
        served = re.findall(r"worker (\d) \(pid \d+\): .* opened 127\.0\.0\.1:", twistd.stop())
        self.assertEqual((len(served), set(served)), (len(clients), {"1", "2"}))
