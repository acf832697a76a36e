#!/usr/bin/env python3
"""
STOMP over WebSocket: wsproto_tw's embedded broker beside RabbitMQ's
Web-STOMP (Debian's rabbitmq-server with rabbitmq_web_stomp), measured in
the same run on loopback.

    .venv/bin/python bench/stomp.py            # about 2 minutes
    .venv/bin/python bench/stomp.py --quick

Scenarios, each server pinned to CPU 0 and the clients (Python, asyncio and
the websockets package) to CPU 1 when taskset exists:

  - fan-out: 1 publisher and N subscribers on one topic;
  - topics: many topics with 2 subscribers each, the publisher going round
    them;
  - idle: server memory (RSS) per subscription, for connections holding
    many idle subscriptions.

Throughput is messages delivered per server CPU-second (user + system time
of the server's processes, from /proc), so it holds on a busy machine. It
needs the project's test dependencies (websockets) and, for RabbitMQ, runs
as root on Debian (it installs rabbitmq-server when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stomp.rabbitmq import RabbitMQ  # noqa: E402

PIN_SERVER = ["taskset", "-c", "0"] if shutil.which("taskset") else []
CLIENT_CPUS = {1} if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 else None
BODY = "x" * 32

OUR_SERVER = """
from twisted.internet import reactor
from wsproto_tw.core.config import Config
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.server import StompServer
server = StompServer(StompConfig(heart_beat=(0, 0), max_subscriptions=100000), reactor=reactor)
factory = server.webSocketFactory(Config(max_message_size=1 << 20))
port = reactor.listenTCP(0, factory, interface="127.0.0.1", backlog=1024)
print(port.getHost().port, flush=True)
reactor.run()
"""


class _Scope:
    # What RabbitMQ's helper wants of a test case.
    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix="stomp-bench-")
        self.cleanups: list = []
        self.count = 0

    def mktemp(self) -> str:
        self.count += 1
        return os.path.join(self.base, str(self.count))

    def addCleanup(self, function, *args) -> None:
        self.cleanups.append((function, args))

    def close(self) -> None:
        for function, args in reversed(self.cleanups):
            function(*args)
        shutil.rmtree(self.base, ignore_errors=True)


def _group(pid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pid:  # its process group
                pids.append(int(entry))
    return pids


def cpuSeconds(pgid: int) -> float:
    """
    User + system CPU time of every process of group C{pgid}.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _group(pgid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def rss(pgid: int) -> int:
    """
    Resident memory in bytes of every process of group C{pgid}.
    """
    total = 0
    for pid in _group(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class Server:
    def __init__(self, name: str, url: str, pgid: int, host: str) -> None:
        self.name, self.url, self.pgid, self.host = name, url, pgid, host


def frame(command: str, *headers: str, body: str = "") -> str:
    return "\n".join((command, *headers)) + "\n\n" + body + "\x00"


class Subscriber:
    def __init__(self) -> None:
        self.count = 0
        self.receipts = 0
        self.ws = None
        self.task = None

    async def open(self, server: Server, destinations: list[str]) -> None:
        self.ws = await websockets.connect(server.url, subprotocols=["v12.stomp"], max_size=None, ping_interval=None)
        await self.ws.send(frame("CONNECT", "accept-version:1.2", f"host:{server.host}",
                                 "login:guest", "passcode:guest", "heart-beat:0,0"))
        reply = await self.ws.recv()
        assert reply.startswith("CONNECTED"), reply
        for i, destination in enumerate(destinations):
            await self.ws.send(frame("SUBSCRIBE", f"id:{i}", f"destination:{destination}",
                                     *(["receipt:ready"] if i == len(destinations) - 1 else [])))
        while "RECEIPT" not in (await self.ws.recv()):
            pass
        self.task = asyncio.ensure_future(self.read())

    async def read(self) -> None:
        async for data in self.ws:
            self.count += data.count("MESSAGE\n")
            self.receipts += data.count("RECEIPT\n")

    async def close(self) -> None:
        self.task.cancel()
        await self.ws.close()


async def waitFor(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.01)


async def deliveries(server: Server, topics: int, perTopic: int, messages: int) -> tuple[float, float]:
    """
    @return: (messages delivered per server CPU-second, per wall second).
    """
    subscribers = [Subscriber() for _ in range(topics * perTopic)]
    for i, subscriber in enumerate(subscribers):
        await subscriber.open(server, [f"/topic/bench.{i % topics}"])
    publisher = Subscriber()
    await publisher.open(server, ["/topic/unused"])
    expected = messages * perTopic
    window = 200
    cpu0, wall0 = cpuSeconds(server.pgid), time.monotonic()
    for start in range(0, messages, window):
        batch = range(start, min(start + window, messages))
        await publisher.ws.send("".join(frame("SEND", f"destination:/topic/bench.{n % topics}", body=BODY) for n in batch))
        done = (batch.stop) * perTopic
        await waitFor(lambda: sum(s.count for s in subscribers) >= done)
    await waitFor(lambda: sum(s.count for s in subscribers) >= expected)
    cpu, wall = cpuSeconds(server.pgid) - cpu0, time.monotonic() - wall0
    for subscriber in subscribers + [publisher]:
        await subscriber.close()
    return expected / cpu, expected / wall


async def idleMemory(server: Server, connections: int, perConnection: int) -> float:
    """
    @return: server bytes per idle subscription.
    """
    clients = [Subscriber() for _ in range(connections)]
    for client in clients:
        await client.open(server, ["/topic/warmup"])
    await asyncio.sleep(1)
    before = rss(server.pgid)
    for n, client in enumerate(clients):
        await client.ws.send("".join(frame("SUBSCRIBE", f"id:s{i}", f"destination:/topic/idle.{n}.{i}")
                                     for i in range(perConnection - 1))
                             + frame("SUBSCRIBE", "id:last", f"destination:/topic/idle.{n}.last", "receipt:done"))
    for client in clients:
        await waitFor(lambda client=client: client.receipts >= 1)
    await asyncio.sleep(1)
    after = rss(server.pgid)
    for client in clients:
        await client.close()
    return (after - before) / (connections * perConnection)


def startOurs() -> tuple[Server, subprocess.Popen]:
    process = subprocess.Popen(PIN_SERVER + [sys.executable, "-c", OUR_SERVER], stdout=subprocess.PIPE,
                               start_new_session=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    port = int(process.stdout.readline())
    return Server("wsproto_tw", f"ws://127.0.0.1:{port}/stomp", process.pid, "localhost"), process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and subscriptions")
    parser.add_argument("--no-rabbitmq", action="store_true", help="measure wsproto_tw alone")
    args = parser.parse_args()
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    subscribers, messages = (100, 200) if args.quick else (100, 1000)
    topics, topicMessages = (50, 1000) if args.quick else (100, 5000)
    idleConnections, idleEach = (10, 100) if args.quick else (20, 500)
    results: dict[str, dict[str, float]] = {}
    scope = _Scope()
    try:
        servers = []
        ours, process = startOurs()
        scope.addCleanup(lambda: (os.killpg(process.pid, 9), process.wait()))
        servers.append(ours)
        if not args.no_rabbitmq:
            rabbit = RabbitMQ(scope, webStomp=True, cpus="0" if PIN_SERVER else None)
            servers.append(Server("RabbitMQ", f"ws://127.0.0.1:{rabbit.webStompPort}/ws", rabbit.process.pid, "/"))
        for server in servers:
            # Memory first, while the server has not yet freed memory that
            # new subscriptions would reuse unseen.
            row = results.setdefault(server.name, {})
            row["bytes per idle subscription"] = asyncio.run(idleMemory(server, idleConnections, idleEach))
            cpu, wall = asyncio.run(deliveries(server, 1, subscribers, messages))
            row[f"1 topic x {subscribers} subscribers, per CPU-s"] = cpu
            row[f"1 topic x {subscribers} subscribers, per s"] = wall
            cpu, wall = asyncio.run(deliveries(server, topics, 2, topicMessages))
            row[f"{topics} topics x 2 subscribers, per CPU-s"] = cpu
            row[f"{topics} topics x 2 subscribers, per s"] = wall
            print(server.name, {k: round(v) for k, v in row.items()}, flush=True)
    finally:
        scope.close()
    names = list(results)
    width = max(len(k) for k in results[names[0]])
    print()
    print("measure".ljust(width), *(name.rjust(12) for name in names), *(["ratio".rjust(8)] if len(names) == 2 else []))
    for key in results[names[0]]:
        values = [results[name][key] for name in names]
        ratio = [f"{values[0] / values[1]:8.2f}"] if len(names) == 2 and values[1] else []
        print(key.ljust(width), *(f"{v:12.0f}" for v in values), *ratio)


if __name__ == "__main__":
    main()
