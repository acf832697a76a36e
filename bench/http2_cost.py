#!/usr/bin/env python3
"""
The per-message cost of WebSocket over HTTP/2 (RFC 8441) against HTTP/1.1,
on one C{twistd websocket --http2} server over TLS, in the same run.

    .venv/bin/python bench/http2_cost.py [--messages 20000] [--rounds 3]

The server runs as a child process (echo, every path a WebSocket); this
process is the client. Each round echoes 32-byte text messages over
C{--sockets} WebSockets with C{--window} messages in flight on each: once
as streams of one HTTP/2 connection (extended CONNECT), once as as many
TLS connections upgraded over HTTP/1.1. The result is messages per server
CPU-second (user + system time of the child, from /proc), the median over
the rounds, for each, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet import reactor, ssl  # noqa: E402
from twisted.internet.defer import Deferred, inlineCallbacks  # noqa: E402
from twisted.internet.endpoints import SSL4ClientEndpoint  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402

from tests.helpers import clientFrame  # noqa: E402
from tests.test_tls import selfSignedCertificate  # noqa: E402

PAYLOAD = b"x" * 32
FRAME = clientFrame(0x1, PAYLOAD)
ECHO = 2 + len(PAYLOAD)  # the server's unmasked frame


def cpuSeconds(pid: int) -> float:
    """
    @return: the user and system CPU time of process C{pid}, in seconds.
    """
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Run:
    """
    Counts echoes until C{total} came back, keeping C{window} in flight on
    each socket.
    """

    def __init__(self, total: int, window: int) -> None:
        self.total = total
        self.window = window
        self.sent = 0
        self.received = 0
        self.done: Deferred = Deferred()

    def echoed(self, count: int, send) -> None:
        self.received += count
        if self.received >= self.total:
            if not self.done.called:
                self.done.callback(None)
            return
        more = min(count, self.total - self.sent)
        if more > 0:
            self.sent += more
            send(FRAME * more)

    def start(self, send) -> None:
        more = min(self.window, self.total - self.sent)
        self.sent += more
        send(FRAME * more)


class HTTP11Socket(Protocol):
    def __init__(self, run: Run, opened: Deferred) -> None:
        self.run = run
        self.opened = opened
        self.buffer = b""
        self.upgraded = False

    def connectionMade(self) -> None:
        self.transport.write(
            b"GET /bench HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            assert head.startswith(b"HTTP/1.1 101"), head
            self.upgraded = True
            self.buffer = rest
            self.opened.callback(self)
        count, remainder = divmod(len(self.buffer), ECHO)
        self.buffer = self.buffer[count * ECHO :]
        if count:
            self.run.echoed(count, self.transport.write)


class H2Client(Protocol):
    def __init__(self, run: Run, streams: int, opened: Deferred) -> None:
        self.run = run
        self.count = streams
        self.opened = opened
        self.buffers: dict[int, bytes] = {}
        self.accepted = 0

    def connectionMade(self) -> None:
        from h2.config import H2Configuration
        from h2.connection import H2Connection

        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(1 << 30)
        self.transport.write(self.h2.data_to_send())
        self.settled = False

    def dataReceived(self, data: bytes) -> None:
        import h2.events

        for event in self.h2.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged) and not self.settled:
                self.settled = True
                for _ in range(self.count):
                    sid = self.h2.get_next_available_stream_id()
                    self.buffers[sid] = b""
                    self.h2.send_headers(
                        sid,
                        [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                         (":path", "/bench"), (":authority", "localhost"), ("sec-websocket-version", "13")],
                    )
            elif isinstance(event, h2.events.ResponseReceived):
                self.accepted += 1
                if self.accepted == self.count:
                    self.opened.callback(self)
            elif isinstance(event, h2.events.DataReceived):
                sid = event.stream_id
                self.h2.acknowledge_received_data(event.flow_controlled_length, sid)
                buffer = self.buffers[sid] + event.data
                count = len(buffer) // ECHO
                self.buffers[sid] = buffer[count * ECHO :]
                if count:
                    self.run.echoed(count, lambda data, sid=sid: self.h2.send_data(sid, data))
        out = self.h2.data_to_send()
        if out:
            self.transport.write(out)

    def startAll(self) -> None:
        for sid in self.buffers:
            self.run.start(lambda data, sid=sid: self.h2.send_data(sid, data))
        self.transport.write(self.h2.data_to_send())


@inlineCallbacks
def measure(kind: str, port: int, tls, pid: int, total: int, sockets: int, window: int):
    run = Run(total, window)
    if kind == "h2":
        opened: Deferred = Deferred()
        client = H2Client(run, sockets, opened)
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, tls([b"h2"]))
        yield endpoint.connect(Factory.forProtocol(lambda: client))
        yield opened
        before, start = cpuSeconds(pid), time.monotonic()
        client.startAll()
        yield run.done
        cpu, wall = cpuSeconds(pid) - before, time.monotonic() - start
        client.transport.loseConnection()
    else:
        protocols = []
        for _ in range(sockets):
            opened = Deferred()
            endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, tls([b"http/1.1"]))
            yield endpoint.connect(Factory.forProtocol(lambda opened=opened: HTTP11Socket(run, opened)))
            protocols.append((yield opened))
        before, start = cpuSeconds(pid), time.monotonic()
        for protocol in protocols:
            run.start(protocol.transport.write)
        yield run.done
        cpu, wall = cpuSeconds(pid) - before, time.monotonic() - start
        for protocol in protocols:
            protocol.transport.loseConnection()
    return total / cpu, cpu, wall


@inlineCallbacks
def main(arguments) -> None:
    directory = tempfile.mkdtemp(prefix="h2bench")
    keyPath, certPath = selfSignedCertificate(directory)
    twistd = Path(sys.executable).with_name("twistd")
    child = subprocess.Popen(
        [sys.executable, str(twistd), "-n", "--pidfile=", *arguments.twistd, "websocket", "--http2",
         "--port", f"ssl:0:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}",
         "--ping-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=directory,
    )
    try:
        port = None
        while port is None:
            line = child.stdout.readline().decode()
            match = re.search(r"starting on (\d+)", line)
            if match:
                port = int(match.group(1))
        with open(certPath, "rb") as f:
            authority = ssl.Certificate.loadPEM(f.read())

        def tls(protocols):
            return ssl.optionsForClientTLS("localhost", trustRoot=authority, acceptableProtocols=protocols)

        results: dict[str, list[float]] = {"h2": [], "http/1.1": []}
        for round in range(arguments.rounds):
            kinds = ("h2", "http/1.1") if round % 2 == 0 else ("http/1.1", "h2")
            for kind in kinds if arguments.only is None else (arguments.only,):
                rate, cpu, wall = yield measure(
                    kind, port, tls, child.pid, arguments.messages, arguments.sockets, arguments.window
                )
                results[kind].append(rate)
                print(f"round {round} {kind:8} {rate:10.0f} messages per server CPU-s"
                      f" (cpu {cpu:.2f} s, wall {wall:.2f} s)", flush=True)
        if arguments.only is not None:
            return
        h2, h1 = statistics.median(results["h2"]), statistics.median(results["http/1.1"])
        print(f"median: HTTP/2 {h2:.0f}, HTTP/1.1 {h1:.0f} messages per server CPU-s;"
              f" HTTP/2 / HTTP/1.1 = {h2 / h1:.2f}")
    finally:
        child.send_signal(signal.SIGINT)
        child.wait()
        reactor.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sockets", type=int, default=10)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("h2", "http/1.1"), default=None, help="measure one of them")
    parser.add_argument("--twistd", action="append", default=[], help="an option for twistd itself (--profile=...)")
    reactor.callWhenRunning(main, parser.parse_args())
    reactor.run()
