#!/usr/bin/env python3
"""
What a WebSocket handshake costs the server, in instructions: the whole
server process (Python, Twisted, wsproto_tw, the C library; not the
kernel) under valgrind's callgrind, driven over loopback by the load
generator (bench/loadgen.c, handshake mode, 32 in parallel: connect,
opening handshake, closing handshake, TCP close).

Instruction counts do not depend on what else the machine runs, as CPU
times do. The server runs twice, until SMALL and then LARGE connections
have closed; the difference of the two totals over LARGE - SMALL is the
cost of one handshake, start-up and shutdown cancelling out (a few
thousand instructions of noise a handshake remain: how the reactor's
turns batch the events, the connections under way at the end).

    python3 bench/handshake_cost.py                 # twistd websocket, default log
    python3 bench/handshake_cost.py --server quiet  # its log at warn level
    python3 bench/handshake_cost.py --server floor  # servers/handshake_floor.py

The servers: C{log} is C{twistd -n websocket} with twistd's default log
(an info line per connection opened and closed), C{quiet} the same with
the log at warn level (servers/quiet_log.py), C{floor} the least a Twisted
server can do for a handshake (servers/handshake_floor.py). Each runs in
this process's Python (or --python's), with this checkout first on its
path, in process: twistd's own exit (os._exit) would skip what is to be
counted otherwise.

Needs valgrind, a C compiler and zlib's headers (for the load generator).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def serve(kind: str, port: int, count: int) -> None:
    """
    Run server C{kind} on C{port} until C{count} connections have closed.
    """
    sys.path.insert(0, str(BENCH / "servers"))
    from twisted.internet import reactor

    closed = [0]

    def onClosed() -> None:
        closed[0] += 1
        if closed[0] == count:
            reactor.stop()

    if kind == "floor":
        import handshake_floor

        lost = handshake_floor.Floor.connectionLost

        def connectionLost(self, reason):  # type: ignore[no-untyped-def]
            lost(self, reason)
            onClosed()

        handshake_floor.Floor.connectionLost = connectionLost  # type: ignore[method-assign]
        sys.argv = ["handshake_floor.py", str(port)]
        handshake_floor.main()
        return
    from wsproto_tw.server import WebSocketServerFactory

    forget = WebSocketServerFactory._lost

    def _lost(self, connection):  # type: ignore[no-untyped-def]
        forget(self, connection)
        onClosed()

    WebSocketServerFactory._lost = _lost  # type: ignore[method-assign]
    argv = ["twistd", "-n", "--pidfile="]
    if kind == "quiet":
        argv.append("--logger=quiet_log.observer")
    argv += ["websocket", "--port", f"tcp:{port}:interface=127.0.0.1", "--max-message-size", "0"]
    sys.argv = argv
    from twisted.scripts.twistd import run

    run()


def loadgen(work: Path) -> Path:
    """
    @return: the load generator, compiled into C{work} unless bench/run.py
        built one.
    """
    built = BENCH / "out" / "loadgen"
    if built.exists():
        return built
    binary = work / "loadgen"
    subprocess.run(["cc", "-O2", "-o", binary, BENCH / "loadgen.c", "-lz"], check=True)
    return binary


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def instructions(python: str, kind: str, count: int, client: Path, work: Path) -> int:
    """
    @return: the instructions the server process ran until C{count}
        connections closed, start-up and shutdown included.
    """
    port = freePort()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log = work / f"{kind}-{count}.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work / 'callgrind.out'}",
             python, __file__, "--serve", kind, str(port), str(count)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + 300
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"handshake_cost: the {kind} server did not start; see {log}")
                time.sleep(0.5)
        # The probe above is a connection too: it closed without a handshake.
        driver = subprocess.Popen(
            [client, "--port", str(port), "--mode", "handshake", "--parallel", "32", "--warmup", "0",
             "--duration", "100000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        server.wait()
        driver.kill()
        driver.wait()
    found = re.search(rb"Collected : (\d+)", log.read_bytes())
    if found is None:
        sys.exit(f"handshake_cost: no instruction count from valgrind; see {log}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", choices=("log", "quiet", "floor"), default="log")
    p.add_argument("--python", default=sys.executable, help="the server's Python (default: this one)")
    p.add_argument("--small", type=int, default=300, help="connections in the first run")
    p.add_argument("--large", type=int, default=1300, help="connections in the second run")
    args = p.parse_args()
    if args.large <= args.small:
        p.error("--large must be more than --small")
    if shutil.which("valgrind") is None:
        sys.exit("handshake_cost: valgrind not found")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        client = loadgen(work)
        small = instructions(args.python, args.server, args.small, client, work)
        large = instructions(args.python, args.server, args.large, client, work)
    perHandshake = (large - small) / (args.large - args.small)
    print(f"{args.server}: {perHandshake:,.0f} instructions per handshake "
          f"({small:,} for {args.small}, {large:,} for {args.large})")


if __name__ == "__main__":
    main()
