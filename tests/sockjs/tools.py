# -*- test-case-name: tests.sockjs.test_node -*-
"""
The clients the SockJS tests need, installed on first use rather than
skipped when missing: Node.js (as L{tests.interop.tools} installs it) and
the npm packages pinned in this folder's C{package.json}
(C{sockjs-client}, C{@stomp/stompjs}), into C{tests/sockjs/node_modules}.

Run C{python -m tests.sockjs.tools} to install and print the versions.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.interop.tools import ToolError, _installNode, _installOnce, _npmInstall

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
    _cached = _installOnce(_cached, _install)
    if isinstance(_cached, ToolError):
        raise _cached
    return _cached


def _install() -> dict[str, str]:
    node, nodeVersion = _installNode()
    return {"node": node, "node-version": nodeVersion, **_npmInstall(HERE)}


if __name__ == "__main__":
    try:
        clients = ensureClients()
    except ToolError as error:
        sys.exit(str(error))
    for name, version in clients.items():
        print(f"{name} {version}")
