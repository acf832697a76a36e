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

    def __init__(self, port: int, timeout: float = 10, extensions: str | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
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
        before = rssKiB(server.pid)
        client = RawClient(server.port)
        client.sock.setblocking(False)
        frame = build_frame(0x2, b"x" * 65536, mask_key=MASK)
        sent = 0
        peak = before
        dropped = False
        deadline = time.monotonic() + 20
        view = memoryview(b"")
        while sent < 100 * 2**20 and time.monotonic() < deadline:
            if not view:
                view = memoryview(frame)
            try:
                n = client.sock.send(view)
            except BlockingIOError:
                peak = max(peak, rssKiB(server.pid))
                time.sleep(0.05)
                continue
            except OSError:
                dropped = True
                break
            view = view[n:]
            sent += n
        peak = max(peak, rssKiB(server.pid))
        growth = peak - before
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

    def test_oneByteFragments(self):
        """
        A text message of 100,000 one-byte fragments is echoed whole, with
        bounded server memory.
        """
        server = self.startServer("--ping-interval", "0")
        time.sleep(0.2)
        before = rssKiB(server.pid)
        client = RawClient(server.port, timeout=30)
        count = 100_000
        frames = [build_frame(0x1, b"a", False, mask_key=MASK)]
        frames += [build_frame(0x0, b"b", False, mask_key=MASK)] * (count - 2)
        frames.append(build_frame(0x0, b"c", True, mask_key=MASK))
        client.sock.sendall(b"".join(frames))
        echo = client.frame()
        growth = rssKiB(server.pid) - before
        print(f"100,000 one-byte fragments: RSS growth {growth} KiB")
        self.assertEqual((echo.opcode, len(echo.payload)), (0x1, count))
        self.assertEqual(echo.payload[:2] + echo.payload[-1:], b"abc")
        self.assertLess(growth, 8 * 1024)
        client.close()

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
        before = rssKiB(server.pid)
        resetPeakRss(server.pid)
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
        growth = peakRssKiB(server.pid) - before
        print(f"1 GiB deflate bomb: {compressedBytes / 1000:.0f} kB in {frames} frames sent "
              f"before the close, peak RSS growth {growth} KiB")
        self.assertTrue(answered, "the server did not answer while the bomb was being sent")
        self.assertEqual((close.opcode, struct.unpack("!H", close.payload[:2])[0]), (0x8, 1009))
        self.assertEqual(close.payload[2:], b"message exceeds the size limit once inflated")
        self.assertLess(growth, 32 * 1024)
        client.close()

    def test_fragmentFloodPastLimit(self):
        """
        A message of more fragments than max_fragments fails with 1008.
        """
        server = self.startServer("--ping-interval", "0")
        client = RawClient(server.port)
        frames = [build_frame(0x2, b"a", False, mask_key=MASK)]
        frames += [build_frame(0x0, b"b", False, mask_key=MASK)] * 100_001
        try:
            client.sock.sendall(b"".join(frames))
        except OSError:
            pass
        close = client.frame()
        self.assertEqual((close.opcode, struct.unpack("!H", close.payload[:2])[0]), (0x8, 1008))
        client.close()

    def test_unansweredPings(self):
        """
        10,000 pings from a client that doesn't read cost bounded memory, and
        every pong is there when it finally reads.
        """
        server = self.startServer("--ping-interval", "0")
        time.sleep(0.2)
        before = rssKiB(server.pid)
        client = RawClient(server.port)
        client.sock.sendall(b"".join(build_frame(0x9, b"%05d" % i, mask_key=MASK) for i in range(10_000)))
        time.sleep(0.5)
        growth = rssKiB(server.pid) - before
        pongs = 0
        while pongs < 10_000:
            frame = client.frame()
            self.assertEqual(frame.opcode, 0xA)
            self.assertEqual(frame.payload, b"%05d" % pongs)
            pongs += 1
        print(f"10,000 unanswered pings: RSS growth {growth} KiB")
        self.assertLess(growth, 4 * 1024)
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

    def test_vanishedPeer(self):
        """
        A peer that stops answering (no pong) is dropped after the ping
        interval plus the ping timeout.
        """
        server = self.startServer("--ping-interval", "1", "--ping-timeout", "1")
        client = RawClient(server.port, timeout=10)
        started = time.monotonic()
        frames = []
        while (frame := client.frame()) is not None:
            frames.append(frame.opcode)
        elapsed = time.monotonic() - started
        print(f"vanished peer dropped after {elapsed:.2f}s")
        self.assertEqual(frames, [0x9, 0x8])
        self.assertLess(elapsed, 5)
        self.assertGreaterEqual(elapsed, 1.5)
        client.close()

    def test_sigtermGoingAway(self):
        """
        On SIGTERM, twistd stops listening, sends 1001 Going Away to every
        open connection, waits for the closes and exits.
        """
        server = self.startServer("--ping-interval", "0", "--shutdown-grace", "5")
        clients = [RawClient(server.port) for _ in range(3)]
        started = time.monotonic()
        server.process.terminate()
        for client in clients:
            close = client.frame()
            self.assertEqual((close.opcode, struct.unpack("!H", close.payload[:2])[0]), (0x8, 1001))
            client.send(0x8, struct.pack("!H", 1001))
            self.assertIsNone(client.frame())
            client.close()
        # twistd re-raises SIGTERM after a clean shutdown to report it.
        self.assertIn(server.process.wait(10), (0, -15))
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 5)
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
        client = RawClient(server.port)
        started = time.monotonic()
        server.process.terminate()
        self.assertEqual(client.frame().opcode, 0x8)
        self.assertIn(server.process.wait(10), (0, -15))
        self.assertGreaterEqual(time.monotonic() - started, 0.9)
        client.close()
        self.assertIn("Server Shut Down.", server.stop())
