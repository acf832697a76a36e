#!/usr/bin/env python3
"""
Broadcast fan-out: one message to N open connections, as deliveries per
server CPU-second, each way of sending measured in the same run, rounds
interleaved.

The server runs in this process on the real reactor; a child process opens
N loopback connections (offering permessage-deflate if asked) and reads
and discards what arrives. Each round sends one message to every
connection and waits until every transport's write buffer has gone to the
kernel; the server's CPU time (user and system: building frames, the
write calls) over the round is what a delivery costs.

Ways of sending:
  - C{sendText}: each connection's C{sendText}, a frame built per
    connection (how C{BroadcastGroup} sent before C{wsproto_tw.broadcast});
  - C{broadcast}: L{wsproto_tw.broadcast.broadcast}, the frame built once;
  - C{group}: C{BroadcastGroup.sendText}, the C{twistd websocket --mode
    broadcast} room (the frame built once, plus its check of each member's
    write buffer).

    python bench/broadcast.py                      # 1,000 connections
    python bench/broadcast.py -n 10000 --deflate server_no_context_takeover
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CHILD = r"""
import base64, os, selectors, socket, sys
port, count, offer = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
header = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{header}\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    s.setblocking(False)
    socks.append(s)
print("open", flush=True)
sel = selectors.DefaultSelector()
for s in socks:
    sel.register(s, selectors.EVENT_READ)
sel.register(sys.stdin, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is sys.stdin:
            sys.exit(0)
        try:
            key.fileobj.recv(1 << 16)
        except BlockingIOError:
            pass
"""


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--connections", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128, help="bytes of the JSON text message")
    parser.add_argument("--rounds", type=int, default=200, help="messages per way of sending")
    parser.add_argument("--deflate", default="", help="the clients' permessage-deflate offer parameters, "
                        "e.g. server_no_context_takeover; '' for no compression, 'plain' for a bare offer")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    from twisted.internet import reactor, threads

    from wsproto_tw.apps import BroadcastGroup
    from wsproto_tw.broadcast import broadcast
    from wsproto_tw.core.config import Config
    from wsproto_tw.core.deflate import PerMessageDeflate
    from wsproto_tw.server import WebSocketServerFactory

    config = Config(ping_interval=None, open_timeout=None, compression=PerMessageDeflate())
    group = BroadcastGroup()
    factory = WebSocketServerFactory(group, config, reactor=reactor)
    port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")
    offer = ""
    if args.deflate:
        offer = "permessage-deflate" + ("" if args.deflate == "plain" else "; " + args.deflate)
    record = json.dumps({"id": 0, "kind": "price", "symbol": "ACME", "value": 101.5, "ok": True})
    text = ("[" + ",".join([record] * (args.size // (len(record) + 1) + 1)) + "]")[: args.size - 1] + "]"

    def perConnection(connections):
        for connection in connections:
            connection.sendText(text)

    def once(connections):
        broadcast(connections, text)

    ways = {"sendText": perConnection, "broadcast": once, "group": lambda connections: group.sendText(text)}
    costs: dict[str, list[float]] = {name: [] for name in ways}
    order = list(ways) * args.rounds
    state = {}

    def drained() -> bool:
        for connection in state["connections"]:
            transport = connection.transport
            if transport.dataBuffer or transport._tempDataBuffer:
                return False
        return True

    def step():
        if not order:
            state["child"].stdin.write("\n")
            state["child"].stdin.flush()
            state["child"].wait()
            reactor.stop()
            return
        name = order.pop(0)
        started = cpu()
        ways[name](state["connections"])

        def wait():
            if drained():
                costs[name].append(cpu() - started)
                reactor.callLater(0.001, step)
            else:
                reactor.callLater(0, wait)

        reactor.callLater(0, wait)

    def opened(child):
        state["child"] = child
        state["connections"] = list(factory.connections)
        step()

    def run():
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(port.getHost().port), str(args.connections), offer],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        if child.stdout.readline().strip() != "open":
            raise RuntimeError("the client process failed")
        time.sleep(0.5)
        return child

    threads.deferToThread(run).addCallback(lambda child: reactor.callLater(0.5, opened, child))
    reactor.run()
    n = len(state["connections"])
    extensions = state["connections"][0].extensions
    print(f"{n:,} connections, a {len(text)}-byte text message, {args.rounds} rounds per way, "
          f"extensions: {extensions or '(none)'}")
    result = {"connections": n, "message_bytes": len(text), "extensions": extensions, "ways": {}}
    for name, values in costs.items():
        median = statistics.median(values)
        best = min(values)
        result["ways"][name] = {"median_cpu_s": median, "deliveries_per_cpu_s": n / median,
                                "best_deliveries_per_cpu_s": n / best}
        print(f"  {name:<10} {n / median:>12,.0f} deliveries per CPU-s (median round {median * 1e3:.2f} ms, "
              f"best {n / best:,.0f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
