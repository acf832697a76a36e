"""
Tests for what an open, idle WebSocket connection costs the server: the
guard of C{bench/idle_memory.py}'s figure (issue #19, item 5: at most
2.5 KiB of RSS per idle connection with twistd's defaults).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import tracemalloc

from twisted.internet import reactor, threads
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from wsproto_tw.apps import EchoApplication
from wsproto_tw.core.config import Config
from wsproto_tw.core.deflate import PerMessageDeflate
from wsproto_tw.server import WebSocketServerFactory

#: Opens argv[2] WebSocket connections to 127.0.0.1:argv[1], offering
#: permessage-deflate as browsers do, prints "open", and holds them until
#: a line arrives on stdin.
_CLIENTS = r"""
import base64, os, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    socks.append(s)
print("open", flush=True)
sys.stdin.readline()
"""

#: Python allocations our code makes per idle connection (tracemalloc,
#: traces with a wsproto_tw frame: the core, the pump, the wire, the
#: application, the request, the timer entry, the factory's set), with
#: permessage-deflate negotiated: 1,531 B when this bound was set (Python
#: 3.11, Twisted 26.10), against 1,940 B before (no peer address kept, the
#: empty receive buffer let go, keepalive deadlines and counts in the
#: core connection's slots, a smaller frame reader and wire, one float
#: less) and 3,131 B before the work on issue #19 item 5. About 4%
#: headroom: what adds 70 B per connection (a small object, or an address
#: object kept per connection) fails it.
MAX_BYTES_PER_CONNECTION = 1600

#: Connections opened while measuring, after a few to warm up.
CONNECTIONS = 300
WARM_UP = 20


class IdleMemoryTests(TestCase):
    """
    An idle server connection over loopback, with twistd's defaults (echo,
    keepalive pings every 20 s, permessage-deflate accepted).
    """

    timeout = 120

    def setUp(self):
        self.factory = WebSocketServerFactory(
            EchoApplication, Config(compression=PerMessageDeflate()), reactor=reactor
        )
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.children = []
        self.addCleanup(self.release)

    @inlineCallbacks
    def openConnections(self, count):
        """
        Open C{count} connections from a child process; wait until the
        server has them all open.

        The child holds them until told to go (L{release}).
        """
        child = subprocess.Popen(
            [sys.executable, "-c", _CLIENTS, str(self.port.getHost().port), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.children.append(child)
        line = yield threads.deferToThread(child.stdout.readline)
        self.assertEqual(line.strip(), "open")
        while sum(1 for c in self.factory.connections if c.openedAt is not None) < count:
            yield deferLater(reactor, 0.01, lambda: None)

    def release(self):
        """
        Tell the children to close their connections, and wait until the
        server has none left.
        """
        for child in self.children:
            if child.poll() is None:
                child.stdin.write("\n")
                child.stdin.flush()
                child.wait()
            for stream in (child.stdin, child.stdout):
                stream.close()
        return self.drained()

    @inlineCallbacks
    def drained(self):
        for _ in range(1000):
            if not self.factory.connections:
                return
            yield deferLater(reactor, 0.01, lambda: None)

    @staticmethod
    def ours():
        """
        @return: the bytes currently traced with a wsproto_tw frame in
            their traceback, and none of the log system's: where log
            events go is the test runner's choice (trial's workers send
            them to their parent, and hold the pending answers).
        """
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [
                tracemalloc.Filter(True, "*/wsproto_tw/*", all_frames=True),
                tracemalloc.Filter(False, "*/twisted/logger/*", all_frames=True),
            ]
        )
        return sum(stat.size for stat in snapshot.statistics("filename"))

    @inlineCallbacks
    def test_bytesPerIdleConnection(self):
        """
        What the server's own code allocates per open, idle connection
        stays under L{MAX_BYTES_PER_CONNECTION}.
        """
        yield self.openConnections(WARM_UP)
        gc.collect()
        # Sixteen frames reach from any allocation to the wsproto_tw frame
        # that caused it (the reactor's frames are further out).
        tracemalloc.start(16)
        self.addCleanup(tracemalloc.stop)
        before = self.ours()
        yield self.openConnections(CONNECTIONS)
        gc.collect()
        each = (self.ours() - before) / CONNECTIONS
        tracemalloc.stop()
        self.assertEqual(len(self.factory.connections), WARM_UP + CONNECTIONS)
        # Every connection negotiated permessage-deflate and waits for its
        # keepalive ping, the idle case being measured.
        self.assertTrue(all(c.extensions for c in self.factory.connections))
        self.assertLess(each, MAX_BYTES_PER_CONNECTION, f"{each:.0f} B per idle connection")
