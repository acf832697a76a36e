"""
Interoperability with C{@stomp/stompjs} under Node.js (the C{ws} package as
its WebSocket) and in headless Chromium, in a child process against a
L{StompServer} on loopback: the scenario the project started from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data, File

from tests.stomp.helpers import annServer, sessionsGone
from tests.stomp.test_stomppy import runChild
from wsproto_tw.stomp.server import StompServer

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


def ensureChromium() -> str:
    """
    Install Debian's C{chromium} (as root) if it is missing.

    @return: its path.
    @raise AssertionError: it can't be installed.
    """
    path = shutil.which("chromium")
    if path is None:
        if os.geteuid() != 0:
            raise AssertionError("chromium is missing, and only root may install it")
        result = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, timeout=900)
        path = shutil.which("chromium")
        if result.returncode != 0 or path is None:
            raise AssertionError("can't install chromium:\n" + result.stdout + result.stderr)
    return path


def ensureNodePeers() -> str:
    """
    Install Node.js (Debian's C{nodejs} and C{npm}, as root) and the npm
    packages of C{tests/stomp/node/package.json} if they are missing.

    @return: the path of C{node}.
    @raise AssertionError: something can't be installed.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.geteuid() != 0:
            raise AssertionError("node and npm are missing, and only root may install them")
        result = subprocess.run(
            ["apt-get", "install", "-y", "nodejs", "npm"], capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise AssertionError("can't install nodejs and npm:\n" + result.stdout + result.stderr)
    modules = os.path.join(NODE_DIR, "node_modules")
    if not all(os.path.isdir(os.path.join(modules, name)) for name in ("@stomp/stompjs", "ws", "playwright-core")):
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            raise AssertionError("npm install failed:\n" + result.stdout + result.stderr)
    node = shutil.which("node")
    assert node is not None
    return node


class StompJsTests(TestCase):
    """
    Tests with C{@stomp/stompjs}.
    """

    timeout = 120

    def listen(self, factory: Any, server: StompServer | None = None) -> int:
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        if server is not None:
            self.addCleanup(sessionsGone, server, reactor)
        return port.getHost().port

    @inlineCallbacks
    def test_seedScenario(self) -> Any:
        """
        stompjs offering C{v10.stomp, v11.stomp} gets C{v10.stomp} and a
        STOMP 1.0 session as user ann; it subscribes to a topic and to its
        user queue, sends to the topic and to C{/app/shout}, whose handler
        replies on the user queue, receives both, and disconnects.
        """
        node = ensureNodePeers()
        server = annServer(shout=True)

        url = f"ws://127.0.0.1:{self.listen(server.webSocketFactory(), server)}/stomp"
        code, output = yield runChild([node, os.path.join(NODE_DIR, "stompjs_client.cjs"), url], 60)
        self.assertEqual(code, 0, output)
        result = json.loads(output.strip().splitlines()[-1])
        self.assertEqual(result["subprotocol"], "v10.stomp")
        self.assertEqual(result["version"], "1.0")
        self.assertEqual(result["user"], "ann")
        self.assertEqual(
            sorted(result["received"]),
            [["/topic/greetings", "hello from stompjs"], ["/user/queue/replies", "HEY"]],
        )
        self.assertTrue(result["closed"])

    @inlineCallbacks
    def test_browser(self) -> Any:
        """
        In headless Chromium, a page using stompjs with versions 1.0 and
        1.1 offers C{v10.stomp, v11.stomp}, gets C{v10.stomp} and STOMP
        1.0, logs in, subscribes, sends and receives its message.
        """
        node = ensureNodePeers()
        chromium = ensureChromium()
        server = annServer()
        wsPort = self.listen(server.webSocketFactory(), server)
        root = Resource()
        with open(os.path.join(NODE_DIR, "page.html"), "rb") as page:
            root.putChild(b"", Data(page.read(), "text/html; charset=utf-8"))
        root.putChild(b"stomp.umd.js", File(os.path.join(NODE_DIR, "node_modules", "@stomp", "stompjs", "bundles", "stomp.umd.js")))
        site = Site(root)
        site.noisy = False
        pagePort = self.listen(site)
        pageURL = f"http://127.0.0.1:{pagePort}/?ws://127.0.0.1:{wsPort}/stomp"
        code, output = yield runChild([node, os.path.join(NODE_DIR, "browser.cjs"), chromium, pageURL], 90)
        self.assertEqual(code, 0, output)
        verdict = json.loads(output.strip().splitlines()[-1])
        self.assertNotIn("error", verdict, output)
        self.assertEqual(
            {key: verdict[key] for key in ("subprotocol", "version", "user", "received")},
            {"subprotocol": "v10.stomp", "version": "1.0", "user": "ann", "received": ["hello from the browser"]},
        )
