"""
The STOMP example, C{examples/stomp_ticker}, runs: in a child process, with
a raw STOMP client over the C{websockets} package and with its page in
headless Chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase
from websockets.sync.client import connect as websocketsConnect

from tests.processes import ChildProcess
from tests.stomp.helpers import frame
from tests.stomp.test_stompjs import NODE_DIR, ensureChromium, ensureNodePeers

SERVER = Path(__file__).resolve().parent.parent.parent / "examples" / "stomp_ticker" / "server.py"


def startTicker(testCase: SynchronousTestCase) -> str:
    """
    @return: the base URL of the ticker example, started for C{testCase}.
    """
    program = ChildProcess(testCase, [sys.executable, str(SERVER), "tcp:0:interface=127.0.0.1"])
    return program.waitFor(r"listening on (http://\S+)/").group(1)


def skipPrices(ws, limit: int = 20) -> str:
    """
    @return: the next message that is not a price, among the next
        C{limit}.
    @raise AssertionError: there is none.
    """
    for _ in range(limit):
        message = ws.recv(timeout=10)
        if not message.startswith("MESSAGE\ndestination:/topic/price."):
            return message
    raise AssertionError(f"only prices in {limit} messages")


class TickerTests(SynchronousTestCase):
    """
    Tests for the ticker example.
    """

    def test_pricesAndTrades(self):
        """
        The page is at C{/}; over C{/stomp}, a client offering
        C{v12.stomp} gets prices every second on C{/topic/price.ACME}, its
        trade answered with its holdings on C{/topic/position}, and
        C{ERROR} for a trade of an unknown symbol.
        """
        base = startTicker(self)
        with urllib.request.urlopen(base + "/", timeout=10) as response:
            self.assertIn(b'["v12.stomp"]', response.read())
        url = base.replace("http://", "ws://") + "/stomp"
        with websocketsConnect(url, subprotocols=["v12.stomp"], open_timeout=10) as ws:
            self.assertEqual(ws.subprotocol, "v12.stomp")
            ws.send(frame("CONNECT", "accept-version:1.2", "host:localhost", "heart-beat:0,0").decode())
            self.assertTrue(ws.recv(timeout=10).startswith("CONNECTED\nversion:1.2\n"))
            ws.send(
                (frame("SUBSCRIBE", "id:acme", "destination:/topic/price.ACME")
                 + frame("SUBSCRIBE", "id:position", "destination:/topic/position", "receipt:ready")).decode()
            )
            self.assertEqual(ws.recv(timeout=10), "RECEIPT\nreceipt-id:ready\n\n\x00")
            quote = ws.recv(timeout=10)
            self.assertTrue(quote.startswith("MESSAGE\ndestination:/topic/price.ACME\n"), quote)
            self.assertEqual(json.loads(quote.split("\n\n", 1)[1][:-1])["symbol"], "ACME")
            ws.send(frame("SEND", "destination:/app/trade", body=b'{"symbol": "ACME", "shares": 10}').decode())
            message = skipPrices(ws)
            self.assertTrue(message.startswith("MESSAGE\ndestination:/topic/position\n"), message)
            self.assertEqual(json.loads(message.split("\n\n", 1)[1][:-1]), {"ACME": 10})
            ws.send(frame("SEND", "destination:/app/trade", body=b'{"symbol": "NOPE", "shares": 1}').decode())
            message = skipPrices(ws)
            self.assertEqual(message, "ERROR\nmessage:no symbol NOPE\ncontent-length:0\n\n\x00")

    def test_page(self):
        """
        In headless Chromium, the page shows ACME's price, and its
        "buy 10" button makes the holding show 10.
        """
        node = ensureNodePeers()
        chromium = ensureChromium()
        base = startTicker(self)
        result = subprocess.run(
            [node, os.path.join(NODE_DIR, "ticker.cjs"), chromium, base + "/"],
            capture_output=True, text=True, timeout=90,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertNotIn("error", seen, seen)
        self.assertEqual(seen["status"], "connected, STOMP 1.2")
        self.assertRegex(seen["price"], r"^\d+\.\d\d$")
        self.assertEqual(seen["held"], "10")
