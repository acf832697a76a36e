#!/usr/bin/env python3
"""
What one open, idle WebSocket connection costs the server: the whole
Twisted layer (the transport, L{StreamWire}, L{WebSocketConnection}, its
flow objects, the application) and the core, over real loopback TCP.

The server runs in this process, with twistd's defaults (an echo
application, keepalive pings every 20 s, permessage-deflate accepted); a
child process opens N connections, each handshaking (optionally offering
permessage-deflate as browsers do, and exchanging one 1 KiB JSON text
message), and holds them open. Two figures per connection: Python's own
allocations (tracemalloc, exact but blind to zlib's C buffers and the
kernel), and the growth of the process's RSS. The allocation sites that
grew most are listed.

    python bench/idle_memory.py                    # 10,000 connections
    python bench/idle_memory.py -n 2000 --deflate --message
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import resource
import subprocess
import sys
import tracemalloc
import zlib

CHILD = r"""
import base64, os, socket, sys, zlib
port, count, deflate, payload = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4].encode()
offer = "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_max_window_bits\r\n"
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer if deflate else ''}\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    if payload:
        mask = os.urandom(4)
        body, first = payload, 0x81
        if deflate:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            body, first = (c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH))[:-4], 0xC1
        n = len(body)
        header = bytes([first, 0x80 | 126]) + n.to_bytes(2, "big") if n > 125 else bytes([first, 0x80 | n])
        s.sendall(header + mask + bytes(b ^ mask[j % 4] for j, b in enumerate(body)))
        rest = head.split(b"\r\n\r\n", 1)[1]
        while len(rest) < 2:
            rest += s.recv(65536)
    socks.append(s)
print("open", flush=True)
sys.stdin.readline()
"""


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def jsonMessage(size: int) -> str:
    items, i = [], 0
    while sum(map(len, items)) < size:
        items.append(json.dumps({"id": i, "user": f"user{i % 37}", "text": f"message number {i}", "ok": i % 3 == 0}))
        i += 1
    return "[" + ",".join(items) + "]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--connections", type=int, default=10_000)
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--message", action="store_true", help="exchange one 1 KiB JSON text message")
    parser.add_argument("--top", type=int, default=12, help="allocation sites to list")
    parser.add_argument("--by", choices=("lineno", "filename"), default="lineno", help="group allocation sites by")
    parser.add_argument("--no-tracemalloc", dest="trace", action="store_false",
                        help="RSS only (tracemalloc's own bookkeeping inflates RSS)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    from twisted.internet import reactor, threads

    from wsproto_tw.apps import EchoApplication
    from wsproto_tw.core.config import Config
    from wsproto_tw.core.deflate import PerMessageDeflate
    from wsproto_tw.server import WebSocketServerFactory

    factory = WebSocketServerFactory(EchoApplication, Config(compression=PerMessageDeflate()), reactor=reactor)
    port = reactor.listenTCP(0, factory, backlog=1024, interface="127.0.0.1")
    payload = jsonMessage(1024) if args.message else ""
    result = {}

    def run():
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(port.getHost().port), str(args.connections),
             "1" if args.deflate else "0", payload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        line = child.stdout.readline()
        if line.strip() != "open":
            raise RuntimeError("the client process failed")
        return child

    def measured(child):
        gc.collect()
        after = rss()
        n = len(factory.connections)
        result.update(connections=n, rss_bytes_per_conn=(after - before[1]) / n)
        if args.trace:
            snapshot = tracemalloc.take_snapshot()
            result["traced_bytes_per_conn"] = (tracemalloc.get_traced_memory()[0] - before[0]) / n
            stats = snapshot.compare_to(first, args.by)
            result["top"] = [(str(s.traceback[0]), s.size_diff / n) for s in stats[: args.top]]
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait()
        reactor.stop()

    gc.collect()
    first = None
    if args.trace:
        tracemalloc.start()
        first = tracemalloc.take_snapshot()
    before = (tracemalloc.get_traced_memory()[0], rss())
    threads.deferToThread(run).addCallback(lambda child: reactor.callLater(1.0, measured, child))
    reactor.run()
    print(f"{result['connections']:,} open connections (deflate offered: {args.deflate}, "
          f"one message: {args.message}):")
    if args.trace:
        print(f"  Python allocations (tracemalloc): {result['traced_bytes_per_conn']:,.0f} B per connection")
        print(f"  RSS growth (with tracemalloc on): {result['rss_bytes_per_conn']:,.0f} B per connection")
        print("  largest growth by allocation site (B per connection):")
        for site, size in result["top"]:
            print(f"    {size:8.1f}  {site}")
    else:
        print(f"  RSS growth: {result['rss_bytes_per_conn']:,.0f} B per connection")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
