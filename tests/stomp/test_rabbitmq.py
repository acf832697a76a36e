"""
Differential tests: the same scripted STOMP 1.2 sessions, over TCP, against
RabbitMQ's STOMP plugin (Debian's C{rabbitmq-server}, started and stopped
on loopback by the test) and against our broker, for the behaviour both
must share. Each script returns a transcript with what may differ
(message ids, server names, extra headers) left out; the two transcripts
must be equal, and equal to what the script expects.
"""

from __future__ import annotations

import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import ChildProcess
from tests.stomp.rabbitmq import RabbitMQ
from wsproto_tw.stomp.frames import Frame, FrameReader, Version

OUR_SERVER = Path(__file__).resolve().parent / "stomp_tcp_server.py"


class Client:
    """
    A blocking STOMP client over TCP for scripts: it writes frames as
    given and reads them with our codec.
    """

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = FrameReader()

    def send(self, command: str, *headers: str, body: bytes = b"") -> None:
        self.socket.sendall(("\n".join((command, *headers)) + "\n\n").encode() + body + b"\x00")

    def receive(self) -> Frame:
        while (frame := self.reader.next_frame()) is None:
            data = self.socket.recv(65536)
            if not data:
                raise AssertionError("connection closed")
            self.reader.feed(data)
        return frame

    def connect(self, version: str = "1.0,1.1,1.2") -> Frame:
        self.send("CONNECT", f"accept-version:{version}", "host:/", "login:guest", "passcode:guest", "heart-beat:0,0")
        frame = self.receive()
        if frame.command == "CONNECTED":
            self.reader.version = Version(frame.get("version"))
        return frame

    def close(self) -> None:
        self.socket.close()


def receiveAny(*clients: Client, timeout: float = 10) -> tuple[Client, Frame]:
    """
    @return: the first frame any of C{clients} receives, and which.
    @raise AssertionError: none within C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        for client in clients:
            frame = client.reader.next_frame()
            if frame is not None:
                return client, frame
        left = deadline - time.monotonic()
        readable, _, _ = select.select([c.socket for c in clients], [], [], max(0.0, left))
        if not readable:
            raise AssertionError("no frame in time")
        for client in clients:
            if client.socket in readable:
                data = client.socket.recv(65536)
                if not data:
                    raise AssertionError("connection closed")
                client.reader.feed(data)


def message(frame: Frame, *headers: str) -> tuple[Any, ...]:
    """
    What two brokers must agree on of a frame: its command, destination,
    body and the named headers.
    """
    return (frame.command, frame.get("destination"), frame.body, *(frame.get(name) for name in headers))


def negotiation(port: int) -> list[Any]:
    """
    The version chosen for several C{accept-version} values; no version
    in common is an C{ERROR}.
    """
    out = []
    for accepted in ("1.0,1.1,1.2", "1.1", "1.0,1.1", "1.2"):
        client = Client(port)
        frame = client.connect(accepted)
        out.append((frame.command, frame.get("version")))
        client.close()
    client = Client(port)
    out.append(client.connect("9.9").command)
    client.close()
    return out


def topicFanOut(port: int) -> list[Any]:
    """
    Two subscribers of a topic both get what a third sends, with its
    headers (escaped in 1.2), and a body with a NUL sized by
    C{content-length}; receipts name their frames.
    """
    a, b, sender = Client(port), Client(port), Client(port)
    for client in (a, b, sender):
        client.connect()
    out = []
    for client in (a, b):
        client.send("SUBSCRIBE", "id:s1", "destination:/topic/news", "receipt:r-sub")
        out.append(client.receive().get("receipt-id"))
    sender.send("SEND", "destination:/topic/news", "x-note:a\\cb\\nc", "content-length:3", "receipt:r-send", body=b"a\x00b")
    out.append(sender.receive().get("receipt-id"))
    for client in (a, b):
        out.append(message(client.receive(), "subscription", "x-note"))
    for client in (a, b, sender):
        client.close()
    return out


def queueRoundRobin(port: int) -> list[Any]:
    """
    Two consumers of a queue get its messages in turn; what one NACKs is
    delivered again; a transaction's SENDs arrive at COMMIT, an aborted
    one's never.
    """
    first, second, sender = Client(port), Client(port), Client(port)
    for client in (first, second, sender):
        client.connect()
    out = []
    for client in (first, second):
        client.send("SUBSCRIBE", "id:q", "destination:/queue/work", "ack:client-individual", "receipt:sub")
        out.append(client.receive().command)
    for body in (b"1", b"2", b"3", b"4"):
        sender.send("SEND", "destination:/queue/work", body=body)
    got = {"first": [], "second": []}
    frames = {}
    for name, client in (("first", first), ("second", second)):
        for _ in range(2):
            frame = client.receive()
            got[name].append(frame.body)
            frames[frame.body] = (client, frame)
    out.append(got)
    for body in (b"1", b"2", b"4"):
        client, frame = frames[body]
        client.send("ACK", f"id:{frame.get('ack')}")
    client, frame = frames[b"3"]
    client.send("NACK", f"id:{frame.get('ack')}", "receipt:nacked")
    # The NACKed message comes back, to one of the two (which one is the
    # broker's choice); the NACK's receipt comes too.
    redelivered, owner, receipts = None, None, []
    while redelivered is None or not receipts:
        who, frame = receiveAny(first, second)
        if frame.command == "MESSAGE":
            redelivered, owner = frame, who
        else:
            receipts.append(frame.get("receipt-id"))
    out.append((message(redelivered), receipts))
    owner.send("ACK", f"id:{redelivered.get('ack')}", "receipt:acked")
    out.append(owner.receive().get("receipt-id"))
    first.send("UNSUBSCRIBE", "id:q", "receipt:unsub")
    out.append(first.receive().get("receipt-id"))
    sender.send("BEGIN", "transaction:t1")
    sender.send("SEND", "destination:/queue/work", "transaction:t1", body=b"aborted")
    sender.send("ABORT", "transaction:t1")
    sender.send("BEGIN", "transaction:t2")
    sender.send("SEND", "destination:/queue/work", "transaction:t2", body=b"committed")
    sender.send("COMMIT", "transaction:t2", "receipt:done")
    out.append(sender.receive().get("receipt-id"))
    out.append(message(second.receive()))
    for client in (first, second, sender):
        client.close()
    return out


EXPECTED = {
    negotiation: [("CONNECTED", "1.2"), ("CONNECTED", "1.1"), ("CONNECTED", "1.1"), ("CONNECTED", "1.2"), "ERROR"],
    topicFanOut: [
        "r-sub", "r-sub", "r-send",
        ("MESSAGE", "/topic/news", b"a\x00b", "s1", "a:b\nc"),
        ("MESSAGE", "/topic/news", b"a\x00b", "s1", "a:b\nc"),
    ],
}


class DifferentialTests(SynchronousTestCase):
    """
    Scripts run against RabbitMQ and against our broker.
    """

    def setUp(self) -> None:
        self.rabbit = RabbitMQ(self).stompPort
        ours = ChildProcess(self, [sys.executable, str(OUR_SERVER)])
        self.ours = int(ours.waitFor(r"listening on (\d+)").group(1))

    def compare(self, script: Any) -> list[Any]:
        theirs = script(self.rabbit)
        ours = script(self.ours)
        self.assertEqual(ours, theirs)
        return ours

    def test_negotiation(self) -> None:
        """
        Both choose the highest common version, and refuse with C{ERROR}
        when there is none.
        """
        self.assertEqual(self.compare(negotiation), EXPECTED[negotiation])

    def test_topicFanOut(self) -> None:
        """
        Both fan a topic out to every subscriber with escaped headers and
        a NUL in the body, and answer receipts.
        """
        self.assertEqual(self.compare(topicFanOut), EXPECTED[topicFanOut])

    def test_queue(self) -> None:
        """
        Both hand a queue's messages to consumers in turn, deliver a
        NACKed message again, apply a committed transaction and drop an
        aborted one, and stop delivering after C{UNSUBSCRIBE}.
        """
        self.assertEqual(
            self.compare(queueRoundRobin),
            [
                "RECEIPT", "RECEIPT",
                {"first": [b"1", b"3"], "second": [b"2", b"4"]},
                (("MESSAGE", "/queue/work", b"3"), ["nacked"]),
                "acked", "unsub", "done",
                ("MESSAGE", "/queue/work", b"committed"),
            ],
        )
