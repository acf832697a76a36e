"""
Stress tests over real loopback sockets against a C{twistd websocket}
subprocess: abusive peers must cost the server bounded memory, and vanished
peers must be dropped. Each test is bounded in count and time.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.core.frames import FrameReader, build_frame

MASK = b"\x0a\x0b\x0c\x0d"


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rssKiB(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def peakRssKiB(pid: int) -> int:
    """
    The process's peak RSS (VmHWM) since it started or since
    L{resetPeakRss}.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def resetPeakRss(pid: int) -> None:
    """
    Reset the peak RSS to the current RSS (Linux 4.0+). Where that is not
    allowed, the peak keeps counting from the start: a measurement then only
    overstates growth.
    """
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


class PeakRss:
    """
    A process's peak RSS growth from now on: the peak (VmHWM, reset here)
    minus the RSS now.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        resetPeakRss(pid)
        self.base = rssKiB(pid)

    def growth(self) -> int:
        """
        @return: the growth of the peak RSS since this was made, in KiB.
        """
        return peakRssKiB(self.pid) - self.base


def queuedBytes(local: tuple[str, int], remote: tuple[str, int]) -> tuple[int, int]:
    """
    The kernel's queues of one TCP socket of any process, from
    C{/proc/net/tcp}.

    @param local: the socket's own address.
    @param remote: its peer's address.
    @return: the bytes it has written that its peer has not acknowledged
        yet (C{tx_queue}), and the bytes it has received and not read
        (C{rx_queue}).
    """

    def hexAddress(address: tuple[str, int]) -> str:
        return socket.inet_aton(address[0])[::-1].hex().upper() + f":{address[1]:04X}"

    want = (hexAddress(local), hexAddress(remote))
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) == want:
                tx, rx = fields[4].split(":")
                return int(tx, 16), int(rx, 16)
    raise AssertionError(f"no TCP socket {local} -> {remote}")


def fdCount(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Server:
    """
    A C{twistd -n websocket} subprocess on a free loopback port.
    """

    def __init__(self, *options: str) -> None:
        self.port = freePort()
        # A file, not a pipe: nobody reads the log while the test runs.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", "websocket",
             "--port", f"tcp:{self.port}:interface=127.0.0.1", *options],
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
        raise AssertionError("server did not start")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")


class RawClient:
    """
    A bare-socket WebSocket client, to misbehave precisely.
    """

    def __init__(
        self, port: int, timeout: float = 10, extensions: str | None = None, receiveBuffer: int | None = None
    ) -> None:
        """
        @param receiveBuffer: if given, the socket's C{SO_RCVBUF}, set
            before connecting so that it also bounds the TCP window.
        """
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receiveBuffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        offer = "" if extensions is None else f"Sec-WebSocket-Extensions: {extensions}\r\n"
        self.sock.sendall(
            (f"GET /stress HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             f"Sec-WebSocket-Version: 13\r\n{offer}\r\n").encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError("closed during handshake")
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        self.head = head
        self.reader = FrameReader(expect_mask=False, max_frame_size=0)
        self.reader.buffer += rest

    def send(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.sock.sendall(build_frame(opcode, payload, fin, mask_key=MASK))

    def frame(self):
        while True:
            frame = self.reader.read_frame()
            if frame is not None:
                return frame
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return None
            self.reader.buffer += chunk

    def close(self) -> None:
        self.sock.close()


class StressTests(SynchronousTestCase):
    def startServer(self, *options: str) -> Server:
        server = Server(*options)
        self.addCleanup(server.stop)
        return server

    def test_neverReadingClient(self):
        """
        A client that sends 100 MB to the echo server and never reads costs
        the server only a few MB: the server stops reading from it, then
        drops it after the write timeout.
        """
        server = self.startServer("--write-timeout", "3", "--ping-interval", "0")
        time.sleep(0.2)
        peak = PeakRss(server.pid)
        client = RawClient(server.port)
        client.sock.setblocking(False)
        frame = build_frame(0x2, b"x" * 65536, mask_key=MASK)
        sent = 0
        dropped = False
        deadline = time.monotonic() + 20
        view = memoryview(b"")
        while sent < 100 * 2**20 and time.monotonic() < deadline:
            if not view:
                view = memoryview(frame)
            try:
                n = client.sock.send(view)
            except BlockingIOError:
                time.sleep(0.05)
                continue
            except OSError:
                dropped = True
                break
            view = view[n:]
            sent += n
        growth = peak.growth()
        print(f"never-reading client: sent {sent / 2**20:.1f} MiB, peak RSS growth {growth} KiB")
        self.assertLess(sent, 100 * 2**20, "the server kept reading from a client that never reads")
        self.assertLess(growth, 8 * 1024)
        # The server drops the stalled client after the write timeout.
        client.sock.setblocking(True)
        client.sock.settimeout(10)
        if not dropped:
            try:
                while client.sock.recv(1 << 20):
                    pass
            except ConnectionResetError:
                pass
        client.close()
        self.assertIn("peer is not reading", server.stop())

    def fragmentedEcho(self, server: Server, opcode: int, payload: bytes):
        """
        Send C{payload} as one message of one-byte fragments and return the
        echo's first frame.
        """
        client = RawClient(server.port, timeout=60)
        frames = [build_frame(opcode, payload[:1], False, mask_key=MASK)]
        frames += [build_frame(0x0, payload[i : i + 1], False, mask_key=MASK) for i in range(1, len(payload) - 1)]
        frames.append(build_frame(0x0, payload[-1:], True, mask_key=MASK))
        client.sock.sendall(b"".join(frames))
        echo = client.frame()
        client.close()
        return echo

    def assertFragmentsBounded(self, opcode: int, payload: bytes, kind: str) -> None:
        """
        A message of C{len(payload)} one-byte fragments is echoed whole, and
        the server's peak RSS grows by less than 8 MiB while it assembles
        and echoes it: its bookkeeping is a small constant per fragment.
        (The server first echoes a message of 1,000 such fragments, so that
        what is measured is the fragments and not a first connection.)
        """
        server = self.startServer("--ping-interval", "0")
        warm = self.fragmentedEcho(server, opcode, payload[:1000])
        self.assertEqual((warm.opcode, warm.payload), (opcode, payload[:1000]))
        peak = PeakRss(server.pid)
        echo = self.fragmentedEcho(server, opcode, payload)
        growth = peak.growth()
        implementation = "pure Python" if os.environ.get("WSPROTO_TW_NO_SPEEDUPS") else "C accelerator"
        print(f"{len(payload):,} one-byte {kind} fragments ({implementation}): peak RSS growth {growth} KiB")
        self.assertEqual((echo.opcode, echo.fin, len(echo.payload)), (opcode, True, len(payload)))
        self.assertEqual(echo.payload, payload)
        self.assertLess(growth, 8 * 1024)

    def test_oneByteTextFragments(self):
        """
        A text message of 100,000 one-byte fragments, nearly all of them a
        third of a three-byte character (C{"\u20ac"} split across three
        fragments, so that the UTF-8 validator carries state across every
        fragment), is echoed whole with bounded peak server memory.
        """
        payload = ("a" + "\u20ac" * 33_333).encode("utf-8")
        self.assertEqual(len(payload), 100_000)
        self.assertFragmentsBounded(0x1, payload, "text")

    def test_oneByteBinaryFragments(self):
        """
        A binary message of 100,000 one-byte fragments is echoed whole with
        bounded peak server memory.
        """
        payload = bytes(range(256)) * 390 + bytes(160)
        self.assertEqual(len(payload), 100_000)
        self.assertFragmentsBounded(0x2, payload, "binary")

    def test_compressionBomb(self):
        """
        A compressed message that would inflate to 1 GiB (about 1 MB of
        deflate data, made here 1 MiB of zeros at a time and sent in frames
        of 64 KiB as it is made) fails with 1009 once past the 1 MiB
        message limit, and the server's peak RSS grows by only a few MB:
        the limit applies to the inflated bytes, while inflating.
        """
        server = self.startServer("--ping-interval", "0")
        time.sleep(0.2)
        peak = PeakRss(server.pid)
        client = RawClient(server.port, extensions="permessage-deflate")
        self.assertIn(b"\r\nSec-WebSocket-Extensions: permessage-deflate", client.head)
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
        zeros = bytes(1 << 20)
        pending = b""
        frames = compressedBytes = 0
        answered = False
        for mebibyte in range(1024):
            pending += compressor.compress(zeros)
            last = mebibyte == 1023
            if last:
                # RFC 7692 §7.2.1: the sync flush's 00 00 ff ff is left off.
                pending = (pending + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
            if len(pending) < 65536 and not last:
                continue
            opcode, rsv1 = (0x2, True) if frames == 0 else (0x0, False)
            try:
                client.sock.sendall(build_frame(opcode, pending, last, rsv1, mask_key=MASK))
            except OSError:
                break  # the server closed the connection under us
            frames += 1
            compressedBytes += len(pending)
            pending = b""
            if select.select([client.sock], [], [], 0.05)[0]:
                answered = True
                break
        close = client.frame()
        growth = peak.growth()
        print(f"1 GiB deflate bomb: {compressedBytes / 1000:.0f} kB in {frames} frames sent "
              f"before the close, peak RSS growth {growth} KiB")
        self.assertTrue(answered, "the server did not answer while the bomb was being sent")
        self.assertEqual((close.opcode, struct.unpack("!H", close.payload[:2])[0]), (0x8, 1009))
        self.assertEqual(close.payload[2:], b"message exceeds the size limit once inflated")
        self.assertLess(growth, 32 * 1024)
        client.close()

    def test_fragmentFloodPastLimit(self):
        """
        A message of more fragments than max_fragments (100,001 one-byte
        binary fragments) fails with 1008, and the server's peak RSS grows
        by less than 8 MiB before it does.
        """
        server = self.startServer("--ping-interval", "0")
        warm = self.fragmentedEcho(server, 0x2, bytes(1000))
        self.assertEqual(warm.payload, bytes(1000))
        peak = PeakRss(server.pid)
        client = RawClient(server.port, timeout=60)
        frames = [build_frame(0x2, b"a", False, mask_key=MASK)]
        frames += [build_frame(0x0, b"b", False, mask_key=MASK)] * 100_001
        try:
            client.sock.sendall(b"".join(frames))
        except OSError:
            pass
        close = client.frame()
        growth = peak.growth()
        print(f"100,002 one-byte binary fragments: peak RSS growth {growth} KiB before the close")
        self.assertEqual((close.opcode, struct.unpack("!H", close.payload[:2])[0]), (0x8, 1008))
        self.assertLess(growth, 8 * 1024)
        client.close()

    def test_unansweredPings(self):
        """
        Pings from a client that doesn't read, each carrying the largest
        payload a control frame may (125 bytes, RFC 6455 §5.5), to a
        client whose receive buffer is small: the pongs soon outgrow the
        kernel's buffers, so the server holds pongs itself, and it stops
        reading pings rather than holding more; its peak memory stays
        bounded, and every pong arrives, in order, when the client reads.
        """
        server = self.startServer("--ping-interval", "0")
        warm = RawClient(server.port)
        warm.send(0x9, b"warm")
        self.assertEqual(warm.frame().payload, b"warm")
        warm.close()
        time.sleep(0.3)
        peak = PeakRss(server.pid)
        client = RawClient(server.port, receiveBuffer=4096)
        count = 100_000
        payloads = [(b"%06d" % i * 21)[:125] for i in range(count)]
        data = b"".join(build_frame(0x9, payload, mask_key=MASK) for payload in payloads)
        pingSize, pongSize = len(data) // count, 2 + 125
        client.sock.setblocking(False)
        sent = 0
        # Send until the server has stopped reading for a second.
        while sent < len(data) and select.select([], [client.sock], [], 1.0)[1]:
            try:
                sent += client.sock.send(data[sent : sent + 65536])
            except BlockingIOError:
                pass
        time.sleep(0.5)
        local, remote = client.sock.getsockname(), client.sock.getpeername()
        clientUnsent, clientUnread = queuedBytes(local, remote)
        serverUnacknowledged, serverUnread = queuedBytes(remote, local)
        pingsRead = (sent - clientUnsent - serverUnread) // pingSize
        inKernel = serverUnacknowledged + clientUnread
        held = pingsRead * pongSize - inKernel
        growth = peak.growth()
        print(f"unanswered 125-byte pings: {sent / 2**20:.1f} MiB sent, {pingsRead:,} read by the server; "
              f"of their pongs, {inKernel / 1024:.0f} KiB in kernel buffers, {held / 1024:.0f} KiB held by the "
              f"server; peak RSS growth {growth} KiB")
        self.assertLess(sent, len(data), "the server read every ping of a client that does not read")
        self.assertGreater(held, 32 * 1024, "the pongs fit in the kernel's buffers: the test tests nothing")
        self.assertLess(growth, 4 * 1024)
        # Now read: the server reads the remaining pings, and the rest of
        # them can be sent.
        client.sock.setblocking(True)
        client.sock.settimeout(30)
        sender = threading.Thread(target=client.sock.sendall, args=(data[sent:],), daemon=True)
        sender.start()
        for i, payload in enumerate(payloads):
            frame = client.frame()
            self.assertEqual((frame.opcode, frame.payload), (0xA, payload), i)
        sender.join(30)
        self.assertFalse(sender.is_alive())
        client.close()

    def test_manyConnections(self):
        """
        1,000 connections opened and closed leave no file descriptor behind
        and little memory.
        """
        server = self.startServer("--ping-interval", "0")
        warm = RawClient(server.port)
        warm.send(0x8, struct.pack("!H", 1000))
        warm.frame()
        warm.close()
        time.sleep(0.3)
        fds, before = fdCount(server.pid), rssKiB(server.pid)
        for batch in range(10):
            clients = [RawClient(server.port) for _ in range(100)]
            for client in clients:
                client.send(0x1, b"hello")
            for client in clients:
                self.assertEqual(client.frame().payload, b"hello")
                client.send(0x8, struct.pack("!H", 1000))
            for client in clients:
                self.assertEqual(client.frame().opcode, 0x8)
                self.assertIsNone(client.frame())  # the server closes TCP first
                client.close()
        time.sleep(0.5)
        growth = rssKiB(server.pid) - before
        print(f"1,000 connections: fd {fds} -> {fdCount(server.pid)}, RSS growth {growth} KiB")
        self.assertEqual(fdCount(server.pid), fds)
        self.assertLess(growth, 4 * 1024)

    def test_compressedConnectionsMemory(self):
        """
        With the default compression policy, 500 connections that offered
        permessage-deflate as browsers do (C{client_no_context_takeover})
        and exchanged one 1 KiB JSON message each, compressed both ways, cost
        the server less than 32 KiB of RSS each while they stay open (a zlib
        compressor kept per connection would be about 110 KiB).
        """
        server = self.startServer("--ping-interval", "0")
        offer = "permessage-deflate; client_no_context_takeover"
        record = b'{"id": 17, "user": "user17", "text": "message number 17", "ok": false}'
        payload = b"[" + b",".join([record] * 14) + b"]"
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
        frame = build_frame(0x1, body, True, True, MASK)

        def exchange(client: RawClient) -> None:
            client.reader.allow_rsv1()
            client.sock.sendall(frame)
            echo = client.frame()
            self.assertTrue(echo.rsv1)
            inflated = zlib.decompressobj(-15).decompress(echo.payload + b"\x00\x00\xff\xff")
            self.assertEqual(inflated, payload)

        warm = RawClient(server.port, extensions=offer)
        exchange(warm)
        warm.close()
        time.sleep(0.3)
        before = rssKiB(server.pid)
        clients = []
        for _ in range(500):
            client = RawClient(server.port, extensions=offer)
            self.addCleanup(client.close)
            exchange(client)
            clients.append(client)
        time.sleep(0.3)
        perConnection = (rssKiB(server.pid) - before) / len(clients)
        print(f"500 compressed connections after one {len(payload)}-byte message: {perConnection:.1f} KiB each")
        self.assertLess(perConnection, 32)

    def test_vanishedPeer(self):
        """
        A peer that stops answering (no pong) is dropped after the ping
        interval plus the ping timeout (2 s here; the bounds are generous,
        since this is real time in a child process on a shared machine, and
        the timers themselves are tested with a L{Clock} in
        C{tests.test_protocol}).
        """
        server = self.startServer("--ping-interval", "1", "--ping-timeout", "1")
        client = RawClient(server.port, timeout=60)
        started = time.monotonic()
        frames = []
        while (frame := client.frame()) is not None:
            frames.append(frame.opcode)
        elapsed = time.monotonic() - started
        print(f"vanished peer dropped after {elapsed:.2f}s")
        self.assertEqual(frames, [0x9, 0x8])
        self.assertLess(elapsed, 30)
        self.assertGreaterEqual(elapsed, 1.5)
        client.close()

    def test_sigtermGoingAway(self):
        """
        On SIGTERM, twistd stops listening, sends 1001 Going Away to every
        open connection, waits for the closes and exits: long before its
        60 s grace period ends.
        """
        server = self.startServer("--ping-interval", "0", "--shutdown-grace", "60")
        clients = [RawClient(server.port, timeout=30) for _ in range(3)]
        started = time.monotonic()
        server.process.terminate()
        for client in clients:
            close = client.frame()
            self.assertEqual((close.opcode, struct.unpack("!H", close.payload[:2])[0]), (0x8, 1001))
            client.send(0x8, struct.pack("!H", 1001))
            self.assertIsNone(client.frame())
            client.close()
        # twistd re-raises SIGTERM after a clean shutdown to report it.
        self.assertIn(server.process.wait(40), (0, -15))
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 40)
        self.assertRaises(OSError, socket.create_connection, ("127.0.0.1", server.port), 1)
        log = server.stop()
        self.assertEqual(log.count("code=1001 clean=True"), 3)
        self.assertIn("Server Shut Down.", log)

    def test_sigtermGraceExpires(self):
        """
        Connections that don't answer the 1001 are dropped after the grace
        period, and twistd exits.
        """
        server = self.startServer("--ping-interval", "0", "--shutdown-grace", "1")
        client = RawClient(server.port, timeout=30)
        started = time.monotonic()
        server.process.terminate()
        self.assertEqual(client.frame().opcode, 0x8)
        self.assertIn(server.process.wait(30), (0, -15))
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        client.close()
        self.assertIn("Server Shut Down.", server.stop())
