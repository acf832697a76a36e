"""
STOMP 1.0, 1.1 and 1.2 sessions over TCP written with the C{stomp.py}
package, run as a child process by L{tests.stomp.test_stomppy}. For each
version it subscribes to a queue with client acks, sends, receives, ACKs
as that version requires, and disconnects with a receipt; it prints one
JSON object of what it saw. Every wait is bounded.

Usage: python stomppy_tcp_client.py PORT
"""

from __future__ import annotations

import json
import sys

import stomp
from stomppy_recorder import TIMEOUT, Recorder

PORT = int(sys.argv[1])

result: dict = {}
for version, cls in (("1.0", stomp.Connection10), ("1.1", stomp.Connection11), ("1.2", stomp.Connection12)):
    conn = cls([("127.0.0.1", PORT)], timeout=TIMEOUT, reconnect_attempts_max=1)
    recorder = Recorder()
    conn.set_listener("", recorder)
    conn.connect("ann", "secret", wait=True)
    queue = "/queue/v" + version
    conn.subscribe(queue, id="s", ack="client", receipt="sub")
    recorder.wait("the subscribe receipt", lambda: "sub" in recorder.receipts)
    conn.send(queue, "hello " + version)
    recorder.wait("a message", lambda: recorder.messages)
    headers, body = recorder.messages[0]
    if version == "1.0":
        conn.ack(headers["message-id"], receipt="ack")
    elif version == "1.1":
        conn.ack(headers["message-id"], headers["subscription"], receipt="ack")
    else:
        conn.ack(headers["ack"], receipt="ack")
    recorder.wait("the ack receipt", lambda: "ack" in recorder.receipts)
    conn.disconnect(receipt="bye")  # returns at once; the RECEIPT follows
    recorder.wait("the disconnect receipt", lambda: "bye" in recorder.receipts)
    result[version] = {
        "version": recorder.connected.get("version"),
        "body": body,
        "receipts": recorder.receipts,
        "errors": recorder.errors,
    }
print(json.dumps(result), flush=True)
