"""
C{twistd websocket --workers N} (L{wsproto_tw.workers}): a real twistd
whose workers share one port, each answering with its pid; a killed
worker comes back; SIGTERM stops them all, with 1001 Going Away.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
from typing import Any

from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from websockets.exceptions import ConnectionClosed
from websockets.asyncio.client import connect as websocketsAsyncConnect
from websockets.sync.client import connect as websocketsConnect

from tests.processes import Twistd
from wsproto_tw.apps import WebSocketApplication
from wsproto_tw.tap import Options
from wsproto_tw.workers import _Worker, adoptedEndpoints, workerArguments, workerCount


class PidApplication(WebSocketApplication):
    """
    Answers every text message with the pid of the process serving it.
    """

    def textMessageReceived(self, text: str) -> None:
        self.transport.sendText(str(os.getpid()))


async def askPids(url: str, context: Any, count: int) -> set[int]:
    """
    Open C{count} connections to C{url}, all kept open, with websockets'
    asyncio client, then ask each which pid serves it. (Its threaded
    client reads and writes one TLS connection from two threads at once:
    under load, a TLS 1.3 session ticket read while the opening request
    is written can lose the request.)

    @return: the pids that answered.
    """
    clients = [await asyncio.wait_for(websocketsAsyncConnect(url, ssl=context), 10) for _ in range(count)]
    try:
        pids = set()
        for client in clients:
            await client.send("pid?")
            pids.add(int(await asyncio.wait_for(client.recv(), 10)))
        return pids
    finally:
        for client in clients:
            await asyncio.wait_for(client.close(), 10)


def parentOf(pid: int) -> int:
    """
    @return: the parent pid of process C{pid} (from C{/proc}).
    """
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def stopped(twistd: Twistd) -> None:
    """
    Stop C{twistd} with SIGTERM if it still runs, so that its workers stop
    with it (killing it would leave them to notice on their own).
    """
    if twistd.process.poll() is None:
        twistd.stop()


def alive(pid: int) -> bool:
    """
    @return: whether process C{pid} exists (and is not a zombie).
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class WorkerOptionsTests(SynchronousTestCase):
    """
    The C{--workers} option and what the parent gives its workers.
    """

    def test_count(self) -> None:
        """
        C{--workers} is a whole number at least 1, or C{auto} for the
        number of cores.
        """
        self.assertEqual(workerCount("3"), 3)
        self.assertEqual(workerCount("auto"), os.cpu_count())
        exc = self.assertRaises(usage.UsageError, workerCount, "0")
        self.assertEqual(str(exc), "--workers must be a whole number at least 1, or auto, not '0'")

    def test_workerArguments(self) -> None:
        """
        A worker runs with the parent's arguments but C{--workers}.
        """
        self.assertEqual(
            workerArguments(["--port", "8080", "--workers", "2", "--mode", "echo", "--workers=3"]),
            ["--port", "8080", "--mode", "echo"],
        )

    def test_onlySharedPorts(self) -> None:
        """
        Ports the workers can't share are refused with C{--workers}: other
        endpoint types than C{tcp:}, C{tcp6:}, C{ssl:} and C{unix:}.
        """
        options = Options()
        exc = self.assertRaises(
            usage.UsageError, options.parseOptions, ["--workers", "2", "--port", "systemd:domain=INET:index=0"]
        )
        self.assertIn("--port systemd:domain=INET:index=0: --workers shares tcp:, tcp6:, ssl: and unix: ports only", str(exc))

    def test_withTLS(self) -> None:
        """
        In a worker, the inherited socket of an C{ssl:} port is served with
        the description's certificate; other ports are left as they are.
        """
        import tempfile

        from twisted.internet import reactor

        from tests.test_client import makeCertificate
        from wsproto_tw.tlsport import TLSPortEndpoint
        from wsproto_tw.workers import withTLS

        certificate, key = makeCertificate(tempfile.mkdtemp())
        adopted = adoptedEndpoints(object(), {"WSPROTO_TW_WORKER_FDS": "3:2,4:2,5:2"})
        tls = f"ssl:443:privateKey={key}:certKey={certificate}"
        found = withTLS(reactor, adopted, ["tcp:80", tls, tls], answering=2)
        self.assertIs(found[0], adopted[0])
        self.assertIsInstance(found[1], TLSPortEndpoint)
        self.assertIs(found[1].tcpEndpoint, adopted[1])
        # Only the first ports (HTTP) answer a plain-text request.
        self.assertEqual([found[1].answerPlainText, found[2].answerPlainText], [True, False])
        self.assertRaises(ValueError, withTLS, reactor, adopted, ["tcp:80"])

    def test_adoptedEndpoints(self) -> None:
        """
        A worker reads its inherited sockets from the environment, in
        order; a process without it is no worker.
        """
        self.assertIsNone(adoptedEndpoints(object(), {}))
        found = adoptedEndpoints(object(), {"WSPROTO_TW_WORKER_FDS": "3:2,4:1"})
        self.assertEqual([(e.fileno, e.addressFamily) for e in found], [(3, 2), (4, 1)])


class WorkerOutputTests(SynchronousTestCase):
    """
    A worker's output lines, logged by the parent with its own time stamp.
    """

    def test_timeStampDropped(self) -> None:
        """
        A line that starts with twistd's time stamp is logged without it
        (the parent's line has one); other lines, a partial line kept until
        its end, are logged as they are.
        """
        worker = _Worker(None, 2)
        worker.pid = 4321
        with capturedLogs() as events:
            worker.outReceived(b"2026-11-29T20:08:24+0000 [-] serving ws://127.0.0.1:1/\n{\"json\": 1}\n2026-11-29T20:")
            worker.outReceived(b"08:25.5Z [x] later\r\nplain 2026-11-29T20:08:24+0000 kept\n")
        self.assertEqual(
            [formatEvent(event) for event in events],
            [
                "worker 2 (pid 4321): [-] serving ws://127.0.0.1:1/",
                'worker 2 (pid 4321): {"json": 1}',
                "worker 2 (pid 4321): [x] later",
                "worker 2 (pid 4321): plain 2026-11-29T20:08:24+0000 kept",
            ],
        )


class WorkersTests(SynchronousTestCase):
    """
    A real C{twistd websocket --workers 2}.
    """

    def setUp(self) -> None:
        self.twistd = Twistd(
            self, "--workers", "2", "--port", "tcp:0:interface=127.0.0.1",
            "--app", "tests.test_workers.PidApplication", "--shutdown-grace", "5",
        )
        self.addCleanup(stopped, self.twistd)
        # Both workers serve the one port the parent bound: each logs its URL.
        urls = {self.twistd.waitFor(r"worker \d \(pid \d+\): .*serving (ws://\S+)", 60).group(1) for _ in range(2)}
        self.assertEqual(len(urls), 1)
        self.url = urls.pop()

    def pids(self, count: int) -> list[int]:
        """
        @return: the pids that answered C{count} connections, opened and
            held all at once.
        """
        clients = [websocketsConnect(self.url, open_timeout=10) for _ in range(count)]
        try:
            answers = []
            for client in clients:
                client.send("pid?")
                answers.append(int(client.recv(timeout=10)))
            return answers
        finally:
            for client in clients:
                client.close()

    def test_bothWorkersServe(self) -> None:
        """
        Connections to the one port are served by both workers, each a
        child of twistd.
        """
        pids = set(self.pids(60))
        self.assertEqual(len(pids), 2, pids)
        for pid in pids:
            self.assertEqual(parentOf(pid), self.twistd.process.pid)

    def test_killedWorkerRestarted(self) -> None:
        """
        A worker killed is logged and started again; the port keeps being
        served meanwhile.
        """
        pid = self.pids(1)[0]
        os.kill(pid, signal.SIGKILL)
        self.twistd.waitFor(rf"worker \d \(pid {pid}\) exited .*starting it again", 30)
        self.twistd.waitFor(r"worker \d started \(pid \d+\)", 30)
        self.twistd.waitFor(r"worker \d \(pid \d+\): .*serving ws://", 60)
        deadline = time.monotonic() + 30
        pids: set[int] = set()
        while len(pids) < 2 and time.monotonic() < deadline:
            pids |= set(self.pids(20))
        self.assertEqual(len(pids), 2, pids)
        self.assertNotIn(pid, pids)

    def test_sigtermStopsAll(self) -> None:
        """
        SIGTERM to twistd: every worker closes its clients with 1001 Going
        Away and exits, and then twistd exits (by that signal, as twistd
        does).
        """
        clients = [websocketsConnect(self.url, open_timeout=10) for _ in range(20)]
        workers = set()
        for client in clients:
            client.send("pid?")
            workers.add(int(client.recv(timeout=10)))
        self.twistd.process.send_signal(signal.SIGTERM)
        codes = []
        for client in clients:
            try:
                client.recv(timeout=15)
            except ConnectionClosed as exc:
                codes.append(exc.rcvd.code if exc.rcvd else None)
        self.assertEqual(codes, [1001] * 20)
        # twistd ends by the signal that stopped it, as without workers.
        self.assertEqual(self.twistd.process.wait(30), -signal.SIGTERM)
        self.assertEqual([pid for pid in workers if alive(pid)], [])
        log = self.twistd.stop()
        self.assertEqual(len(re.findall(r"worker \d \(pid \d+\) stopped", log)), 2, log)
        self.assertNotIn("killed", log)

    def test_parentKilled(self) -> None:
        """
        The workers of a twistd killed with SIGKILL notice that their
        parent is gone and exit.
        """
        pids = set(self.pids(30))
        self.twistd.process.kill()
        self.twistd.process.wait(10)
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual([pid for pid in pids if alive(pid)], [])


class TLSWorkersTests(SynchronousTestCase):
    """
    A real C{twistd websocket --workers 2} on an C{ssl:} port: both
    workers answer C{wss://} with the certificate of the description.
    """

    def test_bothWorkersServeTLS(self) -> None:
        import ssl
        import tempfile

        from tests.test_client import makeCertificate

        certificate, key = makeCertificate(tempfile.mkdtemp())
        twistd = Twistd(
            self, "--workers", "2", "--port", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={certificate}",
            "--app", "tests.test_workers.PidApplication", "--shutdown-grace", "5",
        )
        self.addCleanup(stopped, twistd)
        urls = {twistd.waitFor(r"worker \d \(pid \d+\): .*serving (wss://\S+)", 60).group(1) for _ in range(2)}
        self.assertEqual(len(urls), 1)
        url = urls.pop()
        context = ssl.create_default_context(cafile=certificate)
        context.set_alpn_protocols(["h2", "http/1.1"])  # as browsers offer
        pids = asyncio.run(askPids(url, context, 40))
        self.assertEqual(len(pids), 2, pids)
        # A plain-text request to the TLS port is answered, in plain text.
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            answer = b""
            while chunk := plain.recv(4096):
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer)
        self.assertIn(b"connect with wss:// here", answer)


class InheritedUNIXPortTests(TestCase):
    """
    A worker's inherited UNIX listening socket (L{adoptedEndpoints}).
    """

    @inlineCallbacks
    def test_pathAndSocketKept(self) -> Any:
        """
        The worker's port leaves the path in place and the socket
        listening when it stops: both are the parent's, and other workers
        share the socket.
        """
        import shutil
        import tempfile

        from twisted.internet import reactor
        from twisted.internet.protocol import Factory, Protocol

        directory = tempfile.mkdtemp(prefix="wstw")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "ws.sock")
        parent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(parent.close)
        parent.bind(path)
        parent.listen(5)
        [endpoint] = adoptedEndpoints(reactor, {"WSPROTO_TW_WORKER_FDS": f"{os.dup(parent.fileno())}:{socket.AF_UNIX}"})
        os.chmod(path, 0o600)
        port = yield endpoint.listen(Factory.forProtocol(Protocol))
        self.assertEqual(port.getHost().name, path.encode())
        # The mode the parent gave it is kept (Twisted's adopted port sets
        # 0666).
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        yield port.stopListening()
        self.assertTrue(os.path.exists(path))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)  # still listening: the parent's socket takes it
        parent.accept()[0].close()


class UNIXWorkersTests(SynchronousTestCase):
    """
    C{twistd websocket --workers 2} on a C{unix:} port: the parent owns
    the socket's path, the workers share its one listening socket.
    """

    def test_workerStoppedAndRestarted(self) -> None:
        """
        A worker stopped on its own (SIGTERM to it, not to twistd) is
        started again, and the path still leads to the workers; when
        twistd stops, the path goes, with nothing logged as an error.
        """
        import shutil
        import tempfile

        from websockets.sync.client import unix_connect

        directory = tempfile.mkdtemp(prefix="wstw")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "ws.sock")
        twistd = Twistd(
            self, "--workers", "2", "--port", f"unix:{path}",
            "--app", "tests.test_workers.PidApplication", "--shutdown-grace", "5",
        )
        self.addCleanup(stopped, twistd)
        for _ in range(2):
            twistd.waitFor(r"worker \d \(pid \d+\): .*serving", 60)

        def pid() -> int:
            with unix_connect(path, "ws://localhost/", open_timeout=10) as client:
                client.send("pid?")
                return int(client.recv(timeout=10))

        first = pid()
        os.kill(first, signal.SIGTERM)
        twistd.waitFor(rf"worker \d \(pid {first}\) exited .*starting it again", 30)
        twistd.waitFor(r"worker \d started \(pid \d+\)", 30)
        twistd.waitFor(r"worker \d \(pid \d+\): .*serving", 60)
        self.assertTrue(os.path.exists(path))
        pids = {pid() for _ in range(20)}
        self.assertNotIn(first, pids)
        log = twistd.stop()
        self.assertFalse(os.path.exists(path))
        self.assertIn(f"the workers' listening socket starting on '{path}'", log)
        self.assertNotIn("_Refuse", log)
        self.assertNotIn("Traceback", log)
        self.assertNotIn("critical", log)
        self.assertNotIn("No such file", log)

    def test_modeKeptAndPathRemoved(self) -> None:
        """
        With C{mode=600}, the socket keeps that mode as workers start and
        restart, and nothing is changed through a symbolic link put at the
        path; once the path is removed by someone else, a worker stopped on
        its own starts again and the other ports keep being served; twistd
        then stops with nothing logged as an error.
        """
        import shutil
        import tempfile

        directory = tempfile.mkdtemp(prefix="wstw")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "ws.sock")
        victim = os.path.join(directory, "victim")
        with open(victim, "w") as f:
            f.write("x")
        os.chmod(victim, 0o600)
        twistd = Twistd(
            self, "--workers", "2", "--port", f"unix:{path}:mode=600", "--port", "tcp:0:interface=127.0.0.1",
            "--app", "tests.test_workers.PidApplication", "--shutdown-grace", "5",
        )
        self.addCleanup(stopped, twistd)
        urls = [twistd.waitFor(r"worker \d \(pid \d+\): .*serving (ws://127\S+)", 60).group(1) for _ in range(2)]
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        pids = set()
        for _ in range(20):
            with websocketsConnect(urls[0], open_timeout=10) as client:
                client.send("pid?")
                pids.add(int(client.recv(timeout=10)))
        os.remove(path)
        os.symlink(victim, path)
        first = pids.pop()
        os.kill(first, signal.SIGTERM)
        twistd.waitFor(rf"worker \d \(pid {first}\) exited .*starting it again", 30)
        twistd.waitFor(r"worker \d started \(pid \d+\)", 30)
        twistd.waitFor(r"worker \d \(pid \d+\): .*serving ws://127", 60)
        self.assertEqual(os.stat(victim).st_mode & 0o777, 0o600)
        os.remove(path)
        served = set()
        deadline = time.monotonic() + 30
        while len(served) < 2 and time.monotonic() < deadline:
            with websocketsConnect(urls[0], open_timeout=10) as client:
                client.send("pid?")
                served.add(int(client.recv(timeout=10)))
        self.assertEqual(len(served), 2, served)
        self.assertNotIn(first, served)
        log = twistd.stop()
        self.assertNotIn("Traceback", log)
        self.assertNotIn("critical", log)
        self.assertEqual(sorted(os.listdir(directory)), ["victim"])

    def test_samePathTwice(self) -> None:
        """
        The same path twice: one line saying so, exit status 1, no worker
        started and nothing left behind.
        """
        import shutil
        import subprocess
        import tempfile

        from tests.processes import twistdCommand

        directory = tempfile.mkdtemp(prefix="wstw")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "ws.sock")
        result = subprocess.run(
            [*twistdCommand(), "-n", "--pidfile=", "websocket", "--workers", "2", "--port", f"unix:{path}", "--port",
             f"unix:{path}"],
            capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"--port unix:{path}: can't listen", result.stdout)
        self.assertIn("Cannot acquire lock", result.stdout)
        self.assertNotIn("Traceback", result.stdout + result.stderr)
        self.assertNotIn("started (pid", result.stdout)
        self.assertEqual(os.listdir(directory), [])
