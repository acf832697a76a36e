#!/usr/bin/env python3
"""
What permessage-deflate costs a server in memory, per connection.

For each policy, a fresh ``twistd websocket`` echo server is started; N
connections are opened, each offering permessage-deflate (as browsers do)
and exchanging one text message, and kept open. The server's RSS before and
after, divided by N, is the cost of one open connection that has used
compression once, against the same with compression off.

    python bench/deflate_memory.py                     # 1,000 connections, 3 rounds
    python bench/deflate_memory.py -n 2000 --size 4096 --rounds 1

Run it with the Python that has wsproto_tw and Twisted installed. Each
cell is the median over the rounds (one fresh server per round and policy).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

from wsproto_tw.core.frames import FrameReader, build_frame

#: name -> (twistd websocket options, what the policy is)
POLICIES = {
    "off": (["--no-compression"], "--no-compression"),
    "default": ([], "window 15, memLevel 8, server keeps 4 KiB of context, client asked not to"),
    "small-window": (
        ["--compression-window-bits", "10", "--compression-mem-level", "2"],
        "window 10, memLevel 2, server keeps its context, client asked not to",
    ),
    "low-memory": (
        ["--compression-window-bits", "9", "--compression-client-window-bits", "9",
         "--compression-mem-level", "1", "--compression-no-context-takeover"],
        "window 9 both ways, memLevel 1, no context takeover either way",
    ),
}

OFFER = "permessage-deflate; client_no_context_takeover; client_max_window_bits"


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rssKiB(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def message(size: int) -> bytes:
    """
    A JSON text of about C{size} bytes, compressible as real traffic is.
    """
    items = []
    i = 0
    while sum(map(len, items)) < size:
        items.append(json.dumps({"id": i, "user": f"user{i % 37}", "text": f"message number {i}", "ok": i % 3 == 0}))
        i += 1
    return ("[" + ",".join(items) + "]").encode()


def compress(payload: bytes, window_bits: int) -> bytes:
    """
    One message body, compressed on its own (RFC 7692 §7.2.1).
    """
    compressor = zlib.compressobj(6, zlib.DEFLATED, -max(9, window_bits))
    return (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


class Server:
    """
    A C{twistd -n websocket} echo server on a free loopback port.
    """

    def __init__(self, options: list[str]) -> None:
        self.port = freePort()
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=",
             "websocket", "--port", f"tcp:{self.port}:interface=127.0.0.1:backlog=1024",
             "--ping-interval", "0", "--open-timeout", "0", *options],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Client:
    """
    A bare-socket client that offers permessage-deflate.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
             f"Sec-WebSocket-Extensions: {OFFER}\r\n\r\n").encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101 "):
            raise RuntimeError(head.decode("latin-1"))
        self.extensions = None
        self.clientBits = self.serverBits = 15
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions":
                self.extensions = value.strip()
                for param in self.extensions.split(";")[1:]:
                    key_, _, bits = param.strip().partition("=")
                    if key_ == "client_max_window_bits":
                        self.clientBits = int(bits)
                    elif key_ == "server_max_window_bits":
                        self.serverBits = int(bits)
        self.reader = FrameReader(expect_mask=False, max_frame_size=0, rsv1_allowed=True)
        self.reader.buffer += rest

    def exchange(self, payload: bytes) -> None:
        """
        Send C{payload} as text (compressed if negotiated) and check the echo.
        """
        if self.extensions is None:
            self.sock.sendall(build_frame(0x1, payload, mask_key=os.urandom(4)))
        else:
            self.sock.sendall(build_frame(0x1, compress(payload, self.clientBits), True, True, os.urandom(4)))
        while (frame := self.reader.read_frame()) is None:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("closed before the echo")
            self.reader.buffer += chunk
        echo = frame.payload
        if frame.rsv1:
            echo = zlib.decompressobj(-self.serverBits).decompress(echo + b"\x00\x00\xff\xff")
        if echo != payload or frame.rsv1 != (self.extensions is not None):
            raise RuntimeError("wrong echo")


def measure(options: list[str], count: int, payload: bytes) -> tuple[float, str | None]:
    """
    @return: the server's RSS growth per connection in KiB, and the
        extension it negotiated.
    """
    server = Server(options)
    clients: list[Client] = []
    try:
        warm = Client(server.port)  # imports, first allocations
        warm.exchange(payload)
        warm.sock.close()
        time.sleep(0.5)
        before = rssKiB(server.process.pid)
        for _ in range(count):
            client = Client(server.port)
            client.exchange(payload)
            clients.append(client)
        time.sleep(0.5)
        after = rssKiB(server.process.pid)
        return (after - before) / count, clients[0].extensions
    finally:
        for client in clients:
            client.sock.close()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--connections", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1024, help="bytes of the message each connection exchanges")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.connections + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    payload = message(args.size)
    results = {}
    for name, (options, _) in POLICIES.items():
        figures = []
        for _ in range(args.rounds):
            perConnection, extensions = measure(options, args.connections, payload)
            figures.append(perConnection)
        results[name] = {"kib_per_connection": statistics.median(figures), "rounds": figures, "extensions": extensions}
    print(f"{args.connections} connections, one {len(payload)}-byte text message each, "
          f"median of {args.rounds} round(s); server RSS growth per open connection:\n")
    print(f"{'policy':<12} {'KiB/conn':>9}  {'negotiated':<70}")
    for name, result in results.items():
        print(f"{name:<12} {result['kib_per_connection']:>9.1f}  {result['extensions'] or '(none)':<70}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"connections": args.connections, "message_bytes": len(payload), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
