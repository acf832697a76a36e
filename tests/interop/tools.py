# -*- test-case-name: tests.interop.test_tools -*-
"""
The tools the interoperability tests need, installed on first use rather
than skipped when missing:

  - Node.js and npm (Debian's C{nodejs} and C{npm} when C{node} is missing);
  - the npm packages C{ws} and C{playwright-core}, at the versions pinned in
    C{package.json}, into C{tests/interop/node_modules};
  - Chromium (Debian's C{chromium}; Playwright never downloads a browser);
  - the Python peers C{websockets} and C{autobahn} (the C{test} extra).

L{ensureTools} does the work once per process, under a file lock so that
parallel test runs on one machine don't install over each other, and every
step is bounded in time. A failed step raises L{ToolError} with the
installer's own output, and every test that needs the tools fails with it.

Run C{python -m tests.interop.tools} to install and print the versions.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
CHROMIUM = "/usr/bin/chromium"

#: Flags for a headless Chromium that talks to nothing but loopback.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

#: The oldest Node.js that playwright-core supports.
MIN_NODE = 20

#: Seconds allowed for each installation step.
APT_TIMEOUT = 900
NPM_TIMEOUT = 300
PIP_TIMEOUT = 300
PROBE_TIMEOUT = 60


_T = TypeVar("_T")


class ToolError(Exception):
    """
    A tool could not be installed or run; the message holds its output.
    """


@dataclass(frozen=True)
class Tools:
    """
    Where the peers are, and their versions.

    @ivar node: the C{node} executable.
    @ivar chromium: the Chromium executable.
    @ivar versions: peer name to version string.
    """

    node: str
    chromium: str
    versions: dict[str, str] = field(default_factory=dict)


_cached: Tools | ToolError | None = None


def ensureTools() -> Tools:
    """
    Install what is missing (once per process) and describe the tools.

    @raise ToolError: an installation failed; the same error on every call.
    """
    global _cached
    _cached = _installOnce(_cached, _install)
    if isinstance(_cached, ToolError):
        raise _cached
    return _cached


def _installOnce(cached: _T | ToolError | None, install: Callable[[], _T]) -> _T | ToolError:
    """
    Run C{install} under L{_lock}, unless an earlier call already did.

    @param cached: what an earlier call returned, or L{None} for none yet.
    @param install: does the installation; may raise L{ToolError}, L{OSError}
        or L{subprocess.SubprocessError}.
    @return: C{cached} if it is not L{None}; otherwise what C{install}
        returned, or the L{ToolError} it failed with (any other failure
        above turned into one). The caller keeps it and raises an error.
    """
    if cached is not None:
        return cached
    try:
        with _lock():
            return install()
    except ToolError as error:
        return error
    except (OSError, subprocess.SubprocessError) as error:
        return ToolError(f"{type(error).__name__}: {error}")


class _lock:
    """
    An exclusive lock on a file shared by every test run on the machine.
    """

    def __enter__(self) -> None:
        path = Path(tempfile.gettempdir()) / "wsproto_tw-interop-tools.lock"
        self._file = open(path, "a")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def _run(argv: list[str], timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """
    Run a command to completion.

    @return: its standard output.
    @raise ToolError: it failed, timed out or could not start; the message
        holds the command and the tail of its output.
    """
    environ = dict(os.environ)
    environ.update(env or {})
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=environ,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as error:
        raise ToolError(f"{' '.join(argv)} took longer than {timeout} s:\n{_tail(error.stdout, error.stderr)}")
    except OSError as error:
        raise ToolError(f"{' '.join(argv)} could not start: {error}")
    if done.returncode != 0:
        raise ToolError(f"{' '.join(argv)} exited with {done.returncode}:\n{_tail(done.stdout, done.stderr)}")
    return done.stdout


def _tail(*outputs: object, limit: int = 4000) -> str:
    text = "\n".join(o.decode(errors="replace") if isinstance(o, bytes) else (o or "") for o in outputs)
    return text.strip()[-limit:]


_aptUpdated = False


def _aptInstall(*packages: str) -> None:
    """
    Install Debian packages (as root, or through sudo).
    """
    global _aptUpdated
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise ToolError(f"installing {', '.join(packages)} needs root (or sudo)")
        prefix = ["sudo", "-n"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    if not _aptUpdated:
        _run(prefix + ["apt-get", *wait, "update"], APT_TIMEOUT, env)
        _aptUpdated = True
    _run(prefix + ["apt-get", *wait, "install", "-y", "--no-install-recommends", *packages], APT_TIMEOUT, env)


def _install() -> Tools:
    versions: dict[str, str] = {}

    # Node.js and npm.
    node, nodeVersion = _installNode()
    versions["node"] = nodeVersion.lstrip("v")
    if int(versions["node"].split(".")[0]) < MIN_NODE:
        raise ToolError(f"playwright-core needs Node.js {MIN_NODE} or later, not {versions['node']} ({node})")

    # The npm packages, at the versions package.json pins. playwright-core
    # downloads nothing, and must not.
    versions.update(_npmInstall(HERE, {"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}))

    # Chromium, from Debian.
    if not os.access(CHROMIUM, os.X_OK):
        _aptInstall("chromium")
    if not os.access(CHROMIUM, os.X_OK):
        raise ToolError(f"{CHROMIUM} is still missing after installing chromium")
    # "Chromium 120.0.6099.224 built on Debian 12.4, running on Debian 12.4"
    words = _run([CHROMIUM, "--version"], PROBE_TIMEOUT).split()
    versions["chromium"] = words[1] if len(words) > 1 else " ".join(words)

    # The Python peers.
    for module, distribution in (("websockets", "websockets"), ("autobahn", "autobahn")):
        try:
            importlib.import_module(module)
        except ImportError:
            _run([sys.executable, "-m", "pip", "install", "-q", distribution], PIP_TIMEOUT)
            importlib.invalidate_caches()
    from importlib.metadata import version

    versions["websockets"] = version("websockets")
    versions["autobahn"] = version("autobahn")
    versions["twisted"] = version("twisted")
    return Tools(node=node, chromium=CHROMIUM, versions=versions)


def _installNode() -> tuple[str, str]:
    """
    Install Debian's C{nodejs} and C{npm} if either is missing.

    @return: the C{node} executable, and what its C{--version} prints
        (C{"v20.19.2"}).
    @raise ToolError: the installation failed, or left no C{node}.
    """
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        _aptInstall("nodejs", "npm")
        node = shutil.which("node")
        if node is None:
            raise ToolError("node is still missing after installing nodejs")
    return node, _run([node, "--version"], PROBE_TIMEOUT).strip()


def _npmInstall(folder: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """
    Install the npm packages that C{folder}'s C{package.json} pins into
    C{folder/node_modules}, unless they are there already (needs C{npm}:
    L{_installNode} first).

    @param env: more environment variables for C{npm install}.
    @return: each pinned package's name to its installed version.
    @raise ToolError: C{npm install} failed, or installed other versions.
    """
    wanted = json.loads((folder / "package.json").read_text())["dependencies"]
    if any(_npmVersion(folder, name) != version for name, version in wanted.items()):
        npm = shutil.which("npm")
        assert npm is not None
        _run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--no-save"], NPM_TIMEOUT, env, cwd=folder)
    versions = {}
    for name, version in wanted.items():
        found = _npmVersion(folder, name)
        if found != version:
            raise ToolError(f"npm installed {name} {found}, not {version}")
        versions[name] = found
    return versions


def _npmVersion(folder: Path, name: str) -> str | None:
    try:
        return json.loads((folder / "node_modules" / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


if __name__ == "__main__":
    try:
        tools = ensureTools()
    except ToolError as error:
        sys.exit(str(error))
    for name, found in tools.versions.items():
        print(f"{name} {found}")
