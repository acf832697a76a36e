"""
Interoperability with C{@stomp/stompjs} under Node.js (the C{ws} package as
its WebSocket), in a child process against a L{StompServer} on loopback:
the scenario the project started from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from twisted.cred import strcred
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from tests.stomp.test_stomppy import runChild
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.server import StompServer, portalFor

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


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
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "@stomp", "stompjs")):
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

    @inlineCallbacks
    def test_seedScenario(self) -> Any:
        """
        stompjs offering C{v10.stomp, v11.stomp} gets C{v10.stomp} and a
        STOMP 1.0 session as user ann; it subscribes to a topic and to its
        user queue, sends to the topic and to C{/app/shout}, whose handler
        replies on the user queue, receives both, and disconnects.
        """
        node = ensureNodePeers()
        server = StompServer(
            StompConfig(server="test", heart_beat=(0, 0)),
            portal=portalFor(strcred.makeChecker("memory:ann:secret")),
            reactor=reactor,
        )

        @server.route("/app/shout")
        def shout(request: Any) -> None:
            request.reply("/user/queue/replies", request.text.upper())

        port = reactor.listenTCP(0, server.webSocketFactory(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"ws://127.0.0.1:{port.getHost().port}/stomp"
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
