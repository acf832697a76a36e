#!/usr/bin/env python3
"""
The wsproto_tw benchmark: one command that sets itself up and runs
wsproto_tw beside its peers on loopback, interleaved, and writes a table, a
JSON file and a chart of the ratios.

    python3 bench/run.py            # the full run (about 40 minutes)
    python3 bench/run.py --quick    # a smoke run (about 5 minutes)
    python3 bench/run.py --only broadcast_1k --rounds 1

It makes its own virtualenv under bench/out/venv (the project from this
checkout, autobahn, websockets, Twisted with its websocket extra, kosoku,
matplotlib, prometheus_client), installs Node's ws (with bufferutil) with
npm under bench/out/node, compiles bench/loadgen.c with the system C
compiler, then, for every scenario, starts each server pinned to one core
(taskset) and drives it from the load generator pinned to the other.
Servers take turns in the order A B C ..., then ... C B A, and so on, one
fresh process per measurement; each cell of the table is the median over
the rounds.

The servers: wsproto_tw (twistd websocket, its log at warn level like the
peers), wsproto_tw+log (twistd's default log) and wsproto_tw+metrics
(--metrics on), both for handshakes only; autobahn, twisted.web's
websocket, websockets, Node's ws (node-ws), a plain Twisted TCP echo
(tcp-echo, the ceiling) and, for handshakes only, the least a Twisted
server can do for one (twisted-floor: accept, a read and a fixed answer
each way, close). The scenarios:

  - text32_c{1,100}_f{1,16}: 32 B text echo, connections x messages in
    flight (closed loop), messages per server CPU-second and latency;
  - binary_16KiB, binary_1MiB, binary_16MiB (1 connection x 2 in flight)
    and binary_16MiB_f1 (1 in flight): MB per server CPU-second;
  - text32_rate2000: open loop, 32 B at 2,000 msg/s in all over 50
    connections, sent on a timer whatever the replies; p50 and p99 latency
    from each message's scheduled send time (see bench/loadgen.c); at
    least 8 rounds (its p50 varies by about 8 us from round to round);
  - handshake: open and close, 32 in parallel, handshakes per CPU-second;
  - compressed: 4 KiB JSON with permessage-deflate, 10 x 4 in flight;
  - idle, idle_deflate: the server's memory per idle connection at 10,000
    connections, without and with permessage-deflate offered (a
    browser's offer);
  - broadcast_1k, broadcast_10k: one sender and 1,000 or 10,000 receivers
    on a server that sends every message to all its clients (the sender
    included); one message a round, the next once all have it; deliveries
    per server CPU-second and the time until the last connection has it;
  - the Autobahn TestSuite's wall time against wsproto_tw and autobahn.

Then the targets (TARGETS), each a ratio to a reference server in the same
run or an absolute figure.

Only the Python standard library is needed to start it (and cc, zlib's
headers, taskset, Node and npm, which it installs with apt-get when run as
root on Debian).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
VENV = OUT / "venv"
PY = VENV / "bin" / "python"
LOADGEN = OUT / "loadgen"
LOGS = OUT / "logs"
NODE = OUT / "node"
NODE_MODULES = NODE / "node_modules"

#: What the benchmark venv installs besides the project itself
#: (prometheus_client: the metrics extra, for wsproto_tw+metrics).
PEERS = [
    "autobahn", "websockets", "twisted[websocket]", "kosoku", "matplotlib", "prometheus_client", "setuptools", "wheel",
]

#: What npm installs under bench/out/node: Node's ws, and the native
#: masking that ws's README recommends beside it.
NODE_PEERS = ["ws", "bufferutil"]

SERVER_CORE = "0"
CLIENT_CORE = "1"

MiB = 1 << 20

# -- servers ------------------------------------------------------------------


class Server:
    """
    One server under test.

    @ivar name: the column name.
    @ivar raw: it speaks plain TCP (the load generator's --raw mode).
    @ivar websocket: it can do handshakes.
    @ivar compression: it negotiates permessage-deflate.
    @ivar suite: the Autobahn suite's wall time is measured against it.
    @ivar only: the keys of the only scenarios it runs, or L{None} for all.
    @ivar env: environment variables to set for it.
    @ivar broadcast: its command line for the broadcast scenarios (every
        message from one client to all clients), or L{None} if it has none.
    @ivar deflateArgs: arguments added to its command line for the
        scenarios whose clients offer permessage-deflate.
    @ivar node: it runs on Node.
    """

    def __init__(self, name: str, argv, raw=False, compression=True, suite=False, only=None, env=None,
                 broadcast=None, deflateArgs=(), node=False):
        self.name = name
        self._argv = argv
        self.raw = raw
        self.websocket = not raw
        self.compression = compression and not raw
        self.suite = suite
        self.only = only
        self.env = env or {}
        self.broadcast = broadcast
        self.deflateArgs = list(deflateArgs)
        self.node = node

    def argv(self, port: int, scenario: Scenario | None = None) -> list[str]:
        argv = list(self._argv)
        if scenario is not None and scenario.kind == "broadcast":
            argv = list(self.broadcast)
        if scenario is not None and scenario.deflate:
            argv += self.deflateArgs
        return [str(a).replace("{port}", str(port)) for a in argv]


def servers(wsprotoCompression: bool) -> list[Server]:
    twistd = VENV / "bin" / "twistd"
    scripts = BENCH / "servers"
    websocket = ["websocket", "--port", "tcp:{port}:interface=127.0.0.1", "--max-message-size", "0"]
    quiet = [PY, twistd, "-n", "--pidfile=", "--logger=quiet_log.observer", *websocket]
    autobahn = [PY, scripts / "autobahn_echo.py", "{port}", "--compression"]
    websockets = [PY, scripts / "websockets_echo.py", "{port}"]
    ws = ["node", scripts / "ws_echo.js", "{port}"]
    return [
        # twistd's log at warn level, like the peers, which log nothing per
        # connection (see servers/quiet_log.py) ...
        Server(
            "wsproto_tw",
            quiet,
            compression=wsprotoCompression,
            suite=True,
            env={"PYTHONPATH": str(scripts)},
            broadcast=[*quiet, "--mode", "broadcast"],
        ),
        # ... and with twistd's default log (an info line per connection
        # opened and closed), where that costs: handshakes ...
        Server(
            "wsproto_tw+log",
            [PY, twistd, "-n", "--pidfile=", *websocket],
            compression=wsprotoCompression,
            only=("handshake",),
        ),
        # ... and with the log at warn level but --metrics on (Prometheus
        # counters updated per connection), handshakes too.
        Server(
            "wsproto_tw+metrics",
            [*quiet, "--metrics", "tcp:0:interface=127.0.0.1"],
            compression=wsprotoCompression,
            only=("handshake",),
            env={"PYTHONPATH": str(scripts)},
        ),
        Server("autobahn", autobahn, suite=True, broadcast=[*autobahn, "--broadcast"]),
        Server("twisted.web", [PY, scripts / "twisted_web_echo.py", "{port}"], compression=False),
        Server("websockets", websockets, broadcast=[*websockets, "--broadcast"]),
        # Node's ws: perMessageDeflate (off by default in ws) only where the
        # clients offer permessage-deflate.
        Server(
            "node-ws",
            ws,
            env={"NODE_PATH": str(NODE_MODULES)},
            broadcast=[*ws, "--broadcast"],
            deflateArgs=["--compression"],
            node=True,
        ),
        Server("tcp-echo", [PY, scripts / "tcp_echo.py", "{port}"], raw=True),
        # The floor of a handshake in CPython and Twisted: accept, a read
        # and a write each way, close; no parsing, no log.
        Server("twisted-floor", [PY, scripts / "handshake_floor.py", "{port}"], compression=False,
               only=("handshake",)),
    ]


# -- scenarios ----------------------------------------------------------------


class Scenario:
    """
    One load shape.

    @ivar kind: C{"messages"}, C{"bulk"}, C{"openloop"}, C{"handshake"},
        C{"idle"}, C{"compressed"} or C{"broadcast"}.
    @ivar args: the load generator's arguments.
    @ivar conns: the connections it holds open at once (for the open-file
        limit), if many.
    @ivar deflate: its clients offer permessage-deflate.
    @ivar minRounds: the fewest rounds it runs (more than C{--rounds} asks
        for) when one round's figure varies too much for a few to tell
        the servers apart.
    """

    def __init__(
        self, key: str, title: str, kind: str, args: list[str], size: int = 0, conns: int = 0, minRounds: int = 1
    ):
        self.key = key
        self.title = title
        self.kind = kind
        self.args = args
        self.size = size
        self.conns = conns
        self.deflate = "--deflate" in args
        self.minRounds = minRounds

    def applies(self, server: Server) -> bool:
        if server.only is not None and self.key not in server.only:
            return False
        if self.deflate and not server.compression:
            return False
        if self.kind == "broadcast":
            return server.broadcast is not None
        if self.kind in ("handshake", "idle", "compressed"):
            return server.websocket
        return True


def scenarios(quick: bool) -> list[Scenario]:
    idle = 1000 if quick else 10_000
    result: list[Scenario] = []
    for conns, inflight in ((1, 1), (1, 16), (100, 1), (100, 16)):
        result.append(
            Scenario(
                f"text32_c{conns}_f{inflight}",
                f"32 B text, {conns} conn x {inflight} in flight",
                "messages",
                ["--mode", "echo", "--size", "32", "--conns", str(conns), "--inflight", str(inflight)],
                32,
            )
        )
    for label, size in (("16KiB", 16 * 1024), ("1MiB", MiB), ("16MiB", 16 * MiB)):
        result.append(
            Scenario(
                f"binary_{label}",
                f"{label.replace('KiB', ' KiB').replace('MiB', ' MiB')} binary, 1 conn x 2 in flight",
                "bulk",
                ["--mode", "echo", "--binary", "--size", str(size), "--conns", "1", "--inflight", "2"],
                size,
            )
        )
    result.append(
        Scenario(
            "binary_16MiB_f1",
            "16 MiB binary, 1 conn x 1 in flight",
            "bulk",
            ["--mode", "echo", "--binary", "--size", str(16 * MiB), "--conns", "1", "--inflight", "1"],
            16 * MiB,
        )
    )
    # Open loop: sends on a fixed schedule whatever the replies, latency
    # from each message's scheduled time (no coordinated omission). On a
    # shared two-core machine one round's p50 varies by about 8 us (one
    # standard deviation) for the same server: the median of at least 8
    # interleaved rounds is shown (not with --quick).
    result.append(
        Scenario(
            "text32_rate2000",
            "32 B text, open loop at 2,000 msg/s over 50 conns",
            "openloop",
            ["--mode", "echo", "--size", "32", "--conns", "50", "--rate", "2000"],
            32,
            minRounds=1 if quick else 8,
        )
    )
    result.append(
        Scenario("handshake", "handshakes (open + close), 32 in parallel", "handshake",
                 ["--mode", "handshake", "--parallel", "32"])
    )
    result.append(
        Scenario(
            "compressed",
            "4 KiB JSON text, permessage-deflate, 10 conn x 4 in flight",
            "compressed",
            ["--mode", "echo", "--deflate", "--json", "--size", "4096", "--conns", "10", "--inflight", "4"],
            4096,
        )
    )
    result.append(
        Scenario("idle", f"memory per idle connection, {idle:,} connections", "idle",
                 ["--mode", "idle", "--conns", str(idle), "--parallel", "32", "--settle", "2"], conns=idle)
    )
    # A browser's offer (what Chrome and Firefox send): the server may keep
    # a compression context per connection.
    result.append(
        Scenario("idle_deflate", f"memory per idle connection, {idle:,} connections offering permessage-deflate",
                 "idle",
                 ["--mode", "idle", "--deflate", "--offer", "client_max_window_bits", "--conns", str(idle),
                  "--parallel", "32", "--settle", "2"], conns=idle)
    )
    # One sender and N receivers; the server sends every message to all of
    # them, the sender included: N + 1 deliveries a round. At least 20
    # rounds are measured (a slow server's rounds at 10,000 take a second).
    for label, receivers in (("1k", 1000), ("10k", 10_000)):
        result.append(
            Scenario(
                f"broadcast_{label}",
                f"broadcast: 128 B text to {receivers:,} receivers + the sender, one message a round",
                "broadcast",
                ["--mode", "broadcast", "--path", "/ws", "--size", "128", "--conns", str(receivers),
                 "--parallel", "32", "--settle", "1", "--min-rounds", "5" if quick else "20"],
                128,
                conns=receivers + 1,
            )
        )
    return result


#: The targets: (scenario, metric, comparison, wanted, label, server,
#: reference). With a reference server, C{wanted} is a ratio: the server's
#: result over the reference's in the same run; with L{None}, it is the
#: server's result itself (in the metric's unit).
TARGETS = [
    # Issue #19: against the ceiling and the fastest peers.
    ("text32_c1_f1", "per_cpu", ">=", 0.85, "32 B x 1 conn x 1 in flight, messages per CPU-s", "wsproto_tw",
     "tcp-echo"),
    ("binary_16MiB_f1", "per_cpu", ">=", 0.75, "16 MiB x 1 in flight, MB per CPU-s", "wsproto_tw", "tcp-echo"),
    ("binary_16MiB_f1", "per_cpu", ">", 1.0, "16 MiB x 1 in flight, MB per CPU-s", "wsproto_tw", "websockets"),
    ("binary_16MiB", "per_cpu", ">=", 0.75, "16 MiB x 2 in flight, MB per CPU-s", "wsproto_tw", "tcp-echo"),
    ("binary_16MiB", "per_cpu", ">", 1.0, "16 MiB x 2 in flight, MB per CPU-s", "wsproto_tw", "websockets"),
    ("text32_rate2000", "p50_us", "<=", 1.0, "p50 latency at 2,000 msg/s, open loop", "wsproto_tw", "node-ws"),
    ("handshake", "per_cpu", ">=", 1.5, "handshakes per CPU-s, twistd's default info log", "wsproto_tw+log",
     "node-ws"),
    ("broadcast_1k", "per_cpu", ">", 1.0, "broadcast to 1,000, deliveries per CPU-s", "wsproto_tw", "node-ws"),
    ("broadcast_10k", "per_cpu", ">", 1.0, "broadcast to 10,000, deliveries per CPU-s", "wsproto_tw", "node-ws"),
    ("idle_deflate", "bytes_per_conn", "<=", 2560, "memory per idle connection, permessage-deflate offered (B)",
     "wsproto_tw", None),
    # Earlier, against autobahn.
    ("text32_c100_f16", "per_cpu", ">=", 2.5, "32 B x 100 conns x 16 in flight, messages per CPU-s", "wsproto_tw",
     "autobahn"),
    ("text32_c1_f1", "per_cpu", ">=", 1.5, "32 B x 1 conn x 1 in flight, messages per CPU-s", "wsproto_tw",
     "autobahn"),
    ("binary_16MiB", "per_cpu", ">=", 3.0, "16 MiB x 2 in flight, MB per CPU-s", "wsproto_tw", "autobahn"),
    ("handshake", "per_cpu", ">=", 2.0, "handshakes per CPU-s", "wsproto_tw", "autobahn"),
    ("handshake", "per_cpu", ">=", 2.0, "handshakes per CPU-s, twistd's default info log", "wsproto_tw+log",
     "autobahn"),
    ("idle", "bytes_per_conn", "<=", 0.5, "memory per idle connection", "wsproto_tw", "autobahn"),
    ("suite", "seconds", "<=", 0.6, "Autobahn suite wall time, server mode", "wsproto_tw", "autobahn"),
]

#: How a comparison in L{TARGETS} is made.
COMPARE = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


# -- setup ----------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=True, **kwargs)


def setup(reinstall: bool, node: bool = True) -> None:
    """
    Make the venv, install the peers and this checkout, compile the load
    generator; with C{node}, install Node's ws under bench/out/node.
    """
    OUT.mkdir(exist_ok=True)
    LOGS.mkdir(exist_ok=True)
    stamp = VENV / ".peers-installed"
    if not PY.exists():
        log(f"creating {VENV}")
        run([sys.executable, "-m", "venv", VENV])
    # A venv made for another list of peers (an older checkout's) gets this one's.
    if reinstall or not stamp.exists() or stamp.read_text().split() != PEERS:
        log("installing " + ", ".join(PEERS))
        run([PY, "-m", "pip", "install", "-q", "--upgrade", "pip"])
        run([PY, "-m", "pip", "install", "-q", "--upgrade", *PEERS])
        stamp.write_text("\n".join(PEERS) + "\n")
    # Always this checkout as it is now, built like a user's install (with
    # the C accelerator, if a compiler is there).
    log(f"installing wsproto_tw from {ROOT}")
    run([PY, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--force-reinstall", ROOT],
        stdout=subprocess.DEVNULL)
    # Twisted finds the twistd plugin through its cache.
    run([PY, "-c", "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"])
    installTools()
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("bench: no C compiler (cc) found; install gcc and zlib's headers (zlib1g-dev)")
    log(f"compiling {LOADGEN.name} with {cc}")
    run([cc, "-O2", "-o", LOADGEN, BENCH / "loadgen.c", "-lz"])
    if shutil.which("taskset") is None:
        sys.exit("bench: taskset not found (util-linux)")
    if node:
        setupNode(reinstall)


def setupNode(reinstall: bool) -> None:
    """
    Install Node's ws (and bufferutil) with npm under bench/out/node. Node
    and npm come from the system: as root on Debian, apt-get installs them
    if missing; elsewhere a missing one ends the run with a message.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.geteuid() == 0 and shutil.which("apt-get") is not None:
            log("installing nodejs and npm with apt-get")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
            run(["apt-get", "install", "-q", "-y", "nodejs", "npm"], env=env, stdout=subprocess.DEVNULL)
        else:
            sys.exit("bench: node and npm are needed for the node-ws peer (Debian: apt-get install nodejs npm); "
                     "or leave it out with --servers")
    stamp = NODE / ".peers-installed"
    if not reinstall and stamp.exists() and stamp.read_text().split() == NODE_PEERS:
        return
    log("installing " + ", ".join(NODE_PEERS) + f" with npm under {NODE}")
    NODE.mkdir(exist_ok=True)
    run(["npm", "install", "--prefix", NODE, "--no-audit", "--no-fund", "--loglevel=error", *NODE_PEERS],
        stdout=subprocess.DEVNULL)
    stamp.write_text("\n".join(NODE_PEERS) + "\n")


def installTools() -> None:
    """
    On a fresh Debian machine, as root, install what the load generator
    needs (a C compiler and zlib's headers) with apt-get; elsewhere, say
    what is missing later.
    """
    haveCC = bool(os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc"))
    haveZlib = Path("/usr/include/zlib.h").exists()
    if haveCC and haveZlib:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    log("installing gcc and zlib1g-dev with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    run(["apt-get", "install", "-q", "-y", "gcc", "libc6-dev", "zlib1g-dev", "util-linux"], env=env,
        stdout=subprocess.DEVNULL)


def environment() -> dict:
    """
    @return: what the report says about the machine and the software.
    """
    probe = r"""
import json, sys, importlib.metadata as md
out = {"python": sys.version.split()[0]}
for name in ("wsproto_tw", "autobahn", "websockets", "Twisted", "wsproto", "kosoku"):
    try:
        out[name] = md.version(name)
    except md.PackageNotFoundError:
        out[name] = None
from wsproto_tw.core import frames
out["wsproto_tw_speedups"] = frames.apply_mask.__module__ != "wsproto_tw.core.frames"
from autobahn.websocket import USES_NVX
out["autobahn_nvx"] = USES_NVX
print(json.dumps(out))
"""
    # -P and another directory: the installed package (as twistd imports
    # it), not the checkout's sources without their C accelerator.
    env = json.loads(run([PY, "-P", "-c", probe], capture_output=True, text=True, cwd=str(OUT)).stdout)
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    env.update(nodeEnvironment())
    env.update(
        date=time.strftime("%Y-%m-%d %H:%M %Z"),
        machine=f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        loadgen=f"bench/loadgen.c, cc -O2, pinned to core {CLIENT_CORE}; servers pinned to core {SERVER_CORE}",
    )
    return env


def nodeEnvironment() -> dict:
    """
    @return: the versions of Node and ws, and whether ws masks with
        bufferutil's native code; nothing if ws is not installed.
    """
    if not (NODE_MODULES / "ws").is_dir() or shutil.which("node") is None:
        return {}
    probe = (
        "let b = false; try { b = !!require('node-gyp-build')(require('path').dirname(require.resolve('bufferutil'))) }"
        " catch (e) {} console.log(JSON.stringify({node: process.version, ws: require('ws/package.json').version,"
        " ws_bufferutil: b}))"
    )
    proc = subprocess.run(["node", "-e", probe], capture_output=True, text=True,
                          env=dict(os.environ, NODE_PATH=str(NODE_MODULES)))
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def wsprotoHasCompression() -> bool:
    help_ = subprocess.run(
        [str(PY), str(VENV / "bin" / "twistd"), "websocket", "--help"], capture_output=True, text=True
    ).stdout
    return "--compression" in help_


def raiseFileLimit(wanted: int) -> int:
    """
    Raise this process's open-file limit (which the servers and the load
    generator inherit) to C{wanted}, or as far as allowed.

    @return: the limit now.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        # Only a privileged process may raise the hard limit.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            soft, hard = wanted, wanted
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- measuring --------------------------------------------------------------------


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def started(server: Server, tag: str, scenario: Scenario | None = None):
    """
    Start C{server} (as C{scenario} wants it) pinned to the server core;
    yield its (port, pid).
    """
    port = freePort()
    logPath = LOGS / f"{server.name}-{tag}.log"
    logFile = open(logPath, "wb")
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CORE, *server.argv(port, scenario)],
        stdin=subprocess.DEVNULL,
        stdout=logFile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1", **server.env),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited at start; see {logPath}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.name} did not start listening; see {logPath}")
            time.sleep(0.05)
        time.sleep(0.2)
        yield port, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        logFile.close()


def measure(server: Server, scenario: Scenario, timing: list[str], tag: str) -> dict:
    """
    One measurement: a fresh server, one load generator run.
    """
    with started(server, tag, scenario) as (port, pid):
        argv = ["taskset", "-c", CLIENT_CORE, LOADGEN, "--port", port, "--server-pid", pid, *scenario.args]
        if scenario.kind != "idle":
            argv += timing
        if server.raw:
            argv.append("--raw")
        proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"loadgen failed against {server.name} ({scenario.key}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def derive(scenario: Scenario, raw: dict) -> dict:
    """
    @return: the metrics of one measurement.
    """
    secs = raw["seconds"] or 1e-9
    cpu = raw["server_cpu_s"]
    m: dict = {"client_cpu_share": raw["client_cpu_share"], "server_cpu_s": cpu}
    if scenario.kind in ("messages", "bulk", "compressed", "openloop"):
        m["rate"] = raw["messages"] / secs
        m["per_cpu"] = raw["messages"] / cpu if cpu > 0 else None
        m["mb_s"] = raw["bytes"] / secs / 1e6
        m["mb_per_cpu"] = raw["bytes"] / cpu / 1e6 if cpu > 0 else None
        m["p50_us"] = raw["p50_us"]
        m["p99_us"] = raw["p99_us"]
        if scenario.kind == "bulk":
            m["rate"], m["per_cpu"] = m["mb_s"], m["mb_per_cpu"]
        if scenario.kind == "openloop":
            m["send_lag_us"] = raw["send_lag_mean_us"]
    elif scenario.kind == "broadcast":
        m["rate"] = raw["deliveries"] / secs
        m["per_cpu"] = raw["deliveries"] / cpu if cpu > 0 else None
        m["ttl_p50_ms"] = raw["p50_us"] / 1e3
        m["ttl_p99_ms"] = raw["p99_us"] / 1e3
        m["rounds"] = raw["rounds"]
    elif scenario.kind == "handshake":
        m["rate"] = raw["handshakes"] / secs
        m["per_cpu"] = raw["handshakes"] / cpu if cpu > 0 else None
    elif scenario.kind == "idle":
        m["bytes_per_conn"] = (raw["rss_after"] - raw["rss_before"]) / raw["idle_conns"]
    return m


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cpuSeconds(pid: int) -> float:
    """
    @return: the CPU time (user and system) process C{pid} has used.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def suiteRun(server: Server, tag: str) -> dict:
    """
    Run the Autobahn TestSuite cases (kosoku's fuzzing client, pinned to the
    client core) against C{server}; return the wall time, the server's CPU
    time meanwhile and the verdicts.
    """
    with started(server, tag) as (port, pid):
        before = cpuSeconds(pid)
        argv = ["taskset", "-c", CLIENT_CORE, PY, BENCH / "suite.py", f"ws://127.0.0.1:{port}"]
        proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=1800)
        serverCpu = cpuSeconds(pid) - before
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"suite failed against {server.name}: {proc.stderr.strip()[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]), server_cpu_s=serverCpu)


# -- reporting -----------------------------------------------------------------------


def fmt(value, digits=0) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if abs(value) >= 100 or digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def tableRows(results: dict, names: list[str]) -> list[list[str]]:
    """
    @return: the rows of the main table: a header, then one row per
        scenario and metric.
    """
    rows = [["scenario", "metric", *names]]
    for key, entry in results["scenarios"].items():
        kind = entry["kind"]
        cells = entry["servers"]
        first = [True]

        def row(metric, label, digits=0):
            out = [entry["title"] if first[0] else "", label]
            first[0] = False
            for name in names:
                out.append(fmt(cells.get(name, {}).get(metric), digits))
            rows.append(out)

        if kind in ("messages", "compressed"):
            row("rate", "messages/s")
            row("per_cpu", "messages per CPU-s")
            if kind == "compressed":
                row("mb_per_cpu", "MB (inflated) per CPU-s", 1)
            row("p50_us", "p50 latency (us)")
            row("p99_us", "p99 latency (us)")
        elif kind == "openloop":
            row("rate", "messages/s")
            row("per_cpu", "messages per CPU-s")
            row("p50_us", "p50 latency from scheduled send (us)")
            row("p99_us", "p99 latency from scheduled send (us)")
            row("send_lag_us", "load generator's mean send lag (us)", 1)
        elif kind == "broadcast":
            row("rate", "deliveries/s")
            row("per_cpu", "deliveries per CPU-s")
            row("ttl_p50_ms", "time to last delivery, p50 (ms)", 1)
            row("ttl_p99_ms", "time to last delivery, p99 (ms)", 1)
            row("rounds", "rounds measured")
        elif kind == "bulk":
            row("rate", "MB/s", 1)
            row("per_cpu", "MB per CPU-s", 1)
        elif kind == "handshake":
            row("rate", "handshakes/s")
            row("per_cpu", "handshakes per CPU-s")
        elif kind == "idle":
            row("bytes_per_conn", "bytes per connection")
        if kind != "idle":
            row("client_cpu_share", "load generator CPU share", 2)
    suite = results.get("suite")
    if suite:
        out = ["Autobahn suite, server mode", "wall time (s)"]
        for name in names:
            out.append(fmt(suite.get(name, {}).get("seconds"), 1))
        rows.append(out)
        out = ["", "server CPU (s)"]
        for name in names:
            out.append(fmt(suite.get(name, {}).get("server_cpu_s"), 1))
        rows.append(out)
        out = ["", "cases OK / run"]
        for name in names:
            s = suite.get(name)
            out.append(f"{s['ok']}/{s['cases']}" if s else "-")
        rows.append(out)
    return rows


def textTable(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [c.rjust(w) for c, w in zip(r[2:], widths[2:])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rstTable(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule]
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            lines.append(rule)
    lines.append(rule)
    return "\n".join(lines)


def targetRows(results: dict) -> list[list[str]]:
    """
    @return: the rows of the targets table: a header, then one row per
        entry of L{TARGETS}.
    """
    rows = [["target", "server", "wanted", "result", "reference", "ratio", "met"]]
    for key, metric, op, wanted, label, server, reference in TARGETS:
        if key == "suite":
            cells = results.get("suite") or {}
        else:
            cells = results["scenarios"].get(key, {}).get("servers", {})
        ours = cells.get(server, {}).get(metric)
        if reference is None:
            theirs = ratio = None
            met = None if ours is None else COMPARE[op](ours, wanted)
            wantedText = f"{op} {fmt(wanted)}"
        else:
            theirs = cells.get(reference, {}).get(metric)
            ratio = ours / theirs if ours is not None and theirs else None
            met = None if ratio is None else COMPARE[op](ratio, wanted)
            wantedText = f"{op} {wanted:g}x {reference}"
        rows.append([label, server, wantedText, fmt(ours, 1), fmt(theirs, 1),
                     "-" if ratio is None else f"{ratio:.2f}x", "-" if met is None else ("yes" if met else "NO")])
    return rows


# -- main ----------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description="Benchmark wsproto_tw against its peers, interleaved.")
    p.add_argument("--quick", action="store_true", help="a short smoke run: 1 round, short windows, 1,000 idle connections "
                   "(the broadcast scenarios keep theirs), no suite")
    p.add_argument("--rounds", type=int, help="rounds per scenario (default 3; --quick: 1)")
    p.add_argument("--duration", type=float, help="seconds measured per run (default 4; --quick: 1)")
    p.add_argument("--warmup", type=float, help="seconds of load before measuring (default 1; --quick: 0.3)")
    p.add_argument("--only", action="append", default=[], help="scenario key to run (repeatable): "
                   + ", ".join(s.key for s in scenarios(False)) + ", suite")
    p.add_argument("--servers", help="comma-separated server names (default: all)")
    p.add_argument("--suite", action=argparse.BooleanOptionalAction, default=None,
                   help="time the Autobahn suite against wsproto_tw and autobahn (default: on, off with --quick)")
    p.add_argument("--reinstall", action="store_true", help="upgrade the peers in the venv")
    p.add_argument("--output", default=str(OUT / "results.json"), help="the JSON file (default: %(default)s)")
    args = p.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (1.0 if args.quick else 4.0)
    warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 1.0)
    doSuite = args.suite
    if doSuite is None:
        doSuite = not args.quick and (not args.only or "suite" in args.only)

    if (os.cpu_count() or 1) < 2:
        log("bench: warning: fewer than 2 cores; server and load generator share one")
        global CLIENT_CORE
        CLIENT_CORE = SERVER_CORE
    known = {s.key for s in scenarios(args.quick)} | {"suite"}
    if set(args.only) - known:
        sys.exit(f"bench: no scenario {', '.join(sorted(set(args.only) - known))}; "
                 f"the scenarios are {', '.join(s.key for s in scenarios(False))}, suite")
    wanted = args.servers.split(",") if args.servers else None
    setup(args.reinstall, node=wanted is None or "node-ws" in wanted)
    allScenarios = [s for s in scenarios(args.quick) if not args.only or s.key in args.only]
    idleConns = max((s.conns for s in allScenarios), default=0)
    # The idle (or broadcast) connections, the load generator's warm-up
    # connections, and room for everything else a process has open.
    limit = raiseFileLimit(idleConns + 1024)
    env = environment()
    log(f"wsproto_tw speedups: {env['wsproto_tw_speedups']}; autobahn NVX: {env['autobahn_nvx']}; fd limit {limit}")
    allServers = servers(wsprotoHasCompression())
    if wanted is not None:
        unknown = set(wanted) - {s.name for s in allServers}
        if unknown:
            sys.exit(f"bench: no server named {', '.join(sorted(unknown))}; "
                     f"the servers are {', '.join(s.name for s in allServers)}")
        allServers = [s for s in allServers if s.name in wanted]
    names = [s.name for s in allServers]
    if limit < idleConns + 200:
        log(f"bench: warning: the open-file limit is {limit}; {idleConns:,} idle connections may fail")
    timing = ["--warmup", str(warmup), "--duration", str(duration)]

    results: dict = {"environment": env, "rounds": rounds, "duration": duration, "warmup": warmup,
                     "scenarios": {}, "raw": {}}
    failures = []
    for scenario in allScenarios:
        applicable = [s for s in allServers if scenario.applies(s)]
        samples: dict[str, list[dict]] = {s.name: [] for s in applicable}
        scenarioRounds = max(rounds, scenario.minRounds)
        for r in range(scenarioRounds):
            order = applicable if r % 2 == 0 else list(reversed(applicable))
            for server in order:
                log(f"[{scenario.key}] round {r + 1}/{scenarioRounds}: {server.name}")
                try:
                    raw = measure(server, scenario, timing, f"{scenario.key}-{r}")
                except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                    failures.append(str(exc))
                    log(f"  FAILED: {exc}")
                    continue
                results["raw"].setdefault(scenario.key, {}).setdefault(server.name, []).append(raw)
                samples[server.name].append(derive(scenario, raw))
                if raw["client_cpu_share"] > 0.9:
                    log(f"  note: the load generator used {raw['client_cpu_share']:.0%} of its core")
        cells = {}
        for name, ms in samples.items():
            if ms:
                cells[name] = {k: median([m.get(k) for m in ms]) for k in ms[0]}
        results["scenarios"][scenario.key] = {"title": scenario.title, "kind": scenario.kind, "servers": cells}

    if doSuite:
        suiteServers = [s for s in allServers if s.suite]
        results["suite"] = {}
        for r, server in enumerate(suiteServers):
            log(f"[suite] {server.name}")
            try:
                results["suite"][server.name] = suiteRun(server, f"suite-{r}")
            except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                failures.append(str(exc))
                log(f"  FAILED: {exc}")

    rows = tableRows(results, names)
    targets = targetRows(results)
    results["table"] = rows
    results["targets"] = targets
    results["failures"] = failures
    output = Path(args.output)
    output.write_text(json.dumps(results, indent=2) + "\n")
    (output.with_suffix(".rst")).write_text(rstTable(rows) + "\n\n" + rstTable(targets) + "\n")
    chart = output.with_name("ratios.png")
    with contextlib.suppress(subprocess.CalledProcessError):
        run([PY, BENCH / "chart.py", output, chart])

    env = results["environment"]
    print(f"wsproto_tw benchmark, {env['date']}; {env['machine']}")
    print(f"Python {env['python']}; wsproto_tw {env['wsproto_tw']} (C speedups: {env['wsproto_tw_speedups']}), "
          f"autobahn {env['autobahn']} (NVX: {env['autobahn_nvx']}), websockets {env['websockets']}, "
          f"Twisted {env['Twisted']}; Node {env.get('node')}, ws {env.get('ws')} "
          f"(bufferutil: {env.get('ws_bufferutil')}); {rounds} round(s) of {duration:g} s (open loop: at least "
          f"{max((s.minRounds for s in allScenarios), default=rounds)}), median shown")
    print()
    print(textTable(rows))
    print()
    print(textTable(targets))
    print()
    print(f"JSON: {output}\nRST:  {output.with_suffix('.rst')}\nchart: {chart}")
    for failure in failures:
        print(f"FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
