#!/usr/bin/env python3
"""
Echo throughput of C{twistd websocket --workers N} against one process,
on one port, in the same run: bench/loadgen.c (compiled here when missing)
drives N connections with K messages in flight each, every echo checked,
against C{twistd -n websocket --log-level warn} with C{--workers 1}, then
C{--workers 2} (and more with C{--workers}); rounds alternate.

Printed per run: echoed messages per second, the server processes' CPU
seconds (parent and workers, from /proc) and the load generator's share of
a core; then the ratio of each worker count's best throughput to one
process's. The load generator runs on the same machine, so on a 2-core box
it takes part of the cores the workers would use.

    python bench/workers.py                   # 1 and 2 workers, 3 rounds
    python bench/workers.py --workers 1 2 4 --duration 10

With C{--fanout}: C{--mode broadcast} fan-out instead, one process against
C{--workers 2 --redis} (a C{redis-server} started on a free loopback port
for the run): C{--subscribers} WebSocket clients (in a child process,
spread over the workers by the kernel) and one sender of C{--messages}
text messages; deliveries per second is subscribers times messages over
the time until the last one arrived.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
LOADGEN = OUT / "loadgen"


def loadgen() -> Path:
    if not LOADGEN.exists():
        OUT.mkdir(exist_ok=True)
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise SystemExit("bench/workers.py needs a C compiler for bench/loadgen.c")
        subprocess.run([cc, "-O2", "-o", str(LOADGEN), str(BENCH / "loadgen.c"), "-lz"], check=True)
    return LOADGEN


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def treeCPU(root: int) -> float:
    """
    CPU seconds (user and system) of C{root} and its children.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def serve(workers: int, port: int) -> subprocess.Popen:
    twistd = Path(sys.executable).with_name("twistd")
    command = [sys.executable, str(twistd), "-n", "--pidfile=", "websocket",
               "--port", f"tcp:{port}:interface=127.0.0.1", "--log-level", "warn"]
    if workers > 1:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise SystemExit(f"twistd --workers {workers} did not listen")
    # Every worker is up once each has said something: at warn, nothing;
    # give them the time they take to import and adopt the port.
    time.sleep(3.0 if workers > 1 else 0.5)
    return process


FANOUT_CLIENTS = r"""
import base64, os, selectors, socket, sys, time
port, count, total = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
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
received = 0
while received < total:
    for key, _ in sel.select(timeout=60):
        try:
            received += len(key.fileobj.recv(1 << 16))
        except BlockingIOError:
            pass
print("done", time.monotonic(), flush=True)
"""


def fanout(workers: int, args: argparse.Namespace, redisPort: int | None) -> dict:
    port = freePort()
    twistd = Path(sys.executable).with_name("twistd")
    command = [sys.executable, str(twistd), "-n", "--pidfile=", "websocket", "--mode", "broadcast",
               "--port", f"tcp:{port}:interface=127.0.0.1", "--log-level", "warn"]
    if workers > 1:
        command += ["--workers", str(workers), "--redis", f"tcp:127.0.0.1:{redisPort}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        time.sleep(4.0 if workers > 1 else 1.5)
        text = "x" * args.size
        frame = 2 + len(text)  # an unmasked text frame under 126 bytes
        total = frame * args.messages * args.subscribers
        clients = subprocess.Popen([sys.executable, "-c", FANOUT_CLIENTS, str(port), str(args.subscribers), str(total)],
                                   stdout=subprocess.PIPE, text=True)
        assert clients.stdout is not None
        if clients.stdout.readline().strip() != "open":
            raise SystemExit("the subscribers could not connect")
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as sender:
            before = treeCPU(process.pid)
            started = time.monotonic()
            for _ in range(args.messages):
                sender.send(text)
            line = clients.stdout.readline().split()
            clients.wait(30)
        if not line or line[0] != "done":
            raise SystemExit("the subscribers did not get every message")
        seconds = float(line[1]) - started
        return {"workers": workers, "deliveries_per_s": args.subscribers * args.messages / seconds,
                "server_cpu_s": treeCPU(process.pid) - before}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def redisServer() -> tuple[subprocess.Popen, int]:
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("--fanout needs redis-server (Debian: apt-get install redis-server)")
    port = freePort()
    process = subprocess.Popen([program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("redis-server did not listen")


def run(workers: int, args: argparse.Namespace) -> dict:
    port = freePort()
    process = serve(workers, port)
    try:
        before = treeCPU(process.pid)
        result = subprocess.run(
            [str(loadgen()), "--mode", "echo", "--port", str(port), "--conns", str(args.conns),
             "--inflight", str(args.inflight), "--size", str(args.size),
             "--warmup", str(args.warmup), "--duration", str(args.duration)],
            capture_output=True, text=True, timeout=args.warmup + args.duration + 120,
        )
        cpu = treeCPU(process.pid) - before
        if result.returncode != 0:
            raise SystemExit(f"loadgen failed: {result.stderr[-2000:]}")
        figures = json.loads(result.stdout)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return {
        "workers": workers,
        "messages_per_s": figures["messages"] / figures["seconds"],
        "server_cpu_s": cpu,
        "client_cpu_share": figures["client_cpu_share"],
        "errors": figures["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--conns", type=int, default=64)
    parser.add_argument("--inflight", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--fanout", action="store_true", help="measure --mode broadcast fan-out through Redis")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args(argv)
    if args.fanout:
        redis, redisPort = redisServer()
        try:
            found = []
            for round in range(args.rounds):
                for workers in (1, 2):
                    figures = fanout(workers, args, redisPort)
                    found.append(figures)
                    print(f"round {round + 1}  workers {workers}{' --redis' if workers > 1 else ''}: "
                          f"{figures['deliveries_per_s']:,.0f} deliveries/s, server CPU {figures['server_cpu_s']:.1f} s",
                          flush=True)
        finally:
            redis.terminate()
            redis.wait(10)
        for workers in (1, 2):
            print(f"workers {workers}: best {max(f['deliveries_per_s'] for f in found if f['workers'] == workers):,.0f} deliveries/s")
        return 0
    results = []
    for round in range(args.rounds):
        for workers in args.workers:
            figures = run(workers, args)
            figures["round"] = round + 1
            results.append(figures)
            print(f"round {round + 1}  workers {workers}: {figures['messages_per_s']:,.0f} messages/s, "
                  f"server CPU {figures['server_cpu_s']:.1f} s, loadgen {figures['client_cpu_share']:.0%} of a core, "
                  f"{figures['errors']} errors", flush=True)
    best = {w: max(r["messages_per_s"] for r in results if r["workers"] == w) for w in args.workers}
    base = best[min(args.workers)]
    for workers in args.workers:
        print(f"workers {workers}: best {best[workers]:,.0f} messages/s, {best[workers] / base:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "best": best}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
