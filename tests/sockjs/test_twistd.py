"""
C{twistd websocket --sockjs /sockjs}, run for real: C{sockjs-client} under
Node.js echoes through it, beside a plain WebSocket on the same port.
"""

from __future__ import annotations

import json
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.processes import Twistd
from tests.sockjs.tools import HERE, ensureClients


class TwistdSockJSTests(SynchronousTestCase):
    """
    Tests for C{--sockjs} in a real C{twistd}.
    """

    def test_echo(self):
        """
        Under C{twistd websocket --sockjs /sockjs}, sockjs-client echoes its
        plan over C{xhr-streaming} and C{websocket}; the server stops
        cleanly on SIGTERM.
        """
        node = ensureClients()["node"]
        twistd = Twistd(self, "--port", "tcp:0:interface=127.0.0.1", "--sockjs", "/sockjs")
        [port] = twistd.listening(1)
        for transport in ("xhr-streaming", "websocket"):
            done = subprocess.run(
                [node, str(HERE / "client.js"), f"http://127.0.0.1:{port}/sockjs", transport],
                capture_output=True, text=True, timeout=90, cwd=str(HERE),
            )
            verdict = json.loads(done.stdout.strip().splitlines()[-1])
            self.assertEqual(verdict["errors"], [], done.stderr)
            self.assertEqual((verdict["transport"], verdict["echoed"]), (transport, 56))
        output = twistd.stop()
        self.assertIn("Server Shut Down.", output)
        self.assertNotIn("Traceback", output)
