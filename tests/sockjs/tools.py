# -*- test-case-name: tests.sockjs.test_node -*-
"""
The clients the SockJS tests need, installed on first use rather than
skipped when missing: Node.js (as L{tests.interop.tools} installs it) and
the npm packages pinned in this folder's C{package.json}
(C{sockjs-client}, C{@stomp/stompjs}), into C{tests/sockjs/node_modules}.

Run C{python -m tests.sockjs.tools} to install and print the versions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.interop.tools import NPM_TIMEOUT, PROBE_TIMEOUT, ToolError, _aptInstall, _lock, _run

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"

_cached: dict[str, str] | ToolError | None = None


def ensureClients() -> dict[str, str]:
    """
    Install what is missing (once per process).

    @return: C{"node"} to the C{node} executable, and each npm package to
        its version.
    @raise ToolError: an installation failed; the same error on every call.
    """
    global _cached
    if _cached is None:
        try:
            with _lock():
                _cached = _install()
        except ToolError as error:
            _cached = error
        except (OSError, subprocess.SubprocessError) as error:
            _cached = ToolError(f"{type(error).__name__}: {error}")
    if isinstance(_cached, ToolError):
        raise _cached
    return _cached


def _install() -> dict[str, str]:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        _aptInstall("nodejs", "npm")
        node = shutil.which("node")
        if node is None:
            raise ToolError("node is still missing after installing nodejs")
    found = {"node": node, "node-version": _run([node, "--version"], PROBE_TIMEOUT).strip()}
    wanted = json.loads((HERE / "package.json").read_text())["dependencies"]
    if any(_npmVersion(name) != version for name, version in wanted.items()):
        npm = shutil.which("npm")
        assert npm is not None
        _run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--no-save"], NPM_TIMEOUT, cwd=HERE)
    for name, version in wanted.items():
        installed = _npmVersion(name)
        if installed != version:
            raise ToolError(f"npm installed {name} {installed}, not {version}")
        found[name] = installed
    return found


def _npmVersion(name: str) -> str | None:
    try:
        return json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


if __name__ == "__main__":
    try:
        clients = ensureClients()
    except ToolError as error:
        sys.exit(str(error))
    for name, version in clients.items():
        print(f"{name} {version}")
