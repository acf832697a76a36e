"""
A RabbitMQ node with its STOMP plugin, started by a test on loopback and
stopped when the test ends: Debian's C{rabbitmq-server}, installed when it
is missing, run as a fresh node in the test's temporary directory on ports
of its own (its own C{epmd} too, so nothing outlives the test).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from typing import Any


__all__ = ["RabbitMQ", "ensureRabbitMQ"]

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def ensureRabbitMQ() -> None:
    """
    Install Debian's C{rabbitmq-server} (as root) if it is missing.

    @raise AssertionError: it can't be installed.
    """
    if os.path.exists(SERVER):
        return
    if os.geteuid() != 0:
        raise AssertionError("rabbitmq-server is missing, and only root may install it")
    result = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "rabbitmq-server"],
        capture_output=True, text=True, timeout=900, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )
    if result.returncode != 0 or not os.path.exists(SERVER):
        raise AssertionError("can't install rabbitmq-server:\n" + result.stdout + result.stderr)


def _freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _waitForPort(port: int, timeout: float, process: subprocess.Popen, log: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("rabbitmq-server exited:\n" + _tail(log))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"rabbitmq-server did not listen on {port} in {timeout} s:\n" + _tail(log))


def _tail(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()[-4000:]


def _stop(process: subprocess.Popen) -> None:
    # Each program runs in a process group of its own (the node's script,
    # beam and its helpers): end the group, by its id.
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(20)
        except ProcessLookupError:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # helpers left behind
    except ProcessLookupError:
        pass


class RabbitMQ:
    """
    A running RabbitMQ node.

    @ivar stompPort: the port of its STOMP-over-TCP listener.
    @ivar webStompPort: the port of its Web-STOMP listener (STOMP over
        WebSocket at C{/ws}), or L{None}.
    @ivar process: the node's C{Popen}; its process group is the node.
    """

    def __init__(self, testCase: Any, webStomp: bool = False, cpus: str | None = None) -> None:
        """
        @param testCase: gives C{mktemp} and C{addCleanup}.
        @param webStomp: also enable C{rabbitmq_web_stomp}.
        @param cpus: pin the node to these CPUs (C{taskset -c}), e.g. C{"0"}.
        """
        ensureRabbitMQ()
        base = os.path.abspath(testCase.mktemp())
        os.makedirs(base)
        epmd, amqp, dist = _freePort(), _freePort(), _freePort()
        self.stompPort = _freePort()
        self.webStompPort = _freePort() if webStomp else None
        with open(os.path.join(base, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_stomp,rabbitmq_web_stomp].\n" if webStomp else "[rabbitmq_stomp].\n")
        with open(os.path.join(base, "rabbitmq.conf"), "w") as f:
            f.write(
                f"listeners.tcp.1 = 127.0.0.1:{amqp}\n"
                f"stomp.listeners.tcp.1 = 127.0.0.1:{self.stompPort}\n"
                "loopback_users = none\n"
            )
            if webStomp:
                f.write(f"web_stomp.tcp.port = {self.webStompPort}\nweb_stomp.tcp.ip = 127.0.0.1\n")
        self._env = dict(
            os.environ,
            HOME=base,
            ERL_EPMD_PORT=str(epmd),
            RABBITMQ_NODENAME=f"wsprototw{os.getpid()}@localhost",
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(amqp),
            RABBITMQ_DIST_PORT=str(dist),
            RABBITMQ_MNESIA_BASE=os.path.join(base, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(base, "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(base, "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=os.path.join(base, "rabbitmq.conf"),
            RABBITMQ_PID_FILE=os.path.join(base, "rabbitmq.pid"),
            RABBITMQ_LOGS="-",
        )
        epmdProgram = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        log = os.path.join(base, "server.log")
        self._epmd = subprocess.Popen(
            [epmdProgram, "-port", str(epmd)], env=self._env, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        testCase.addCleanup(_stop, self._epmd)
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                (["taskset", "-c", cpus] if cpus else []) + [SERVER], env=self._env, cwd=base, start_new_session=True,
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            )
        testCase.addCleanup(_stop, self.process)
        _waitForPort(self.stompPort, 120, self.process, log)
        if self.webStompPort is not None:
            _waitForPort(self.webStompPort, 60, self.process, log)
