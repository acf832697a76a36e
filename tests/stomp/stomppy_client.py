"""
A STOMP 1.2 client session over WebSocket written with the C{stomp.py}
package, run as a child process by L{tests.stomp.test_stomppy}. It prints
one JSON object of what it saw. Every wait is bounded.

Usage: python stomppy_client.py PORT
"""

from __future__ import annotations

import json
import sys

import stomp
from stomp.exception import ConnectFailedException
from stomppy_recorder import TIMEOUT, Recorder

PORT = int(sys.argv[1])


def open_connection(login: str, passcode: str, heartbeats=(0, 0)):
    conn = stomp.WSStompConnection(
        [("127.0.0.1", PORT)], ws_path="/stomp", heartbeats=heartbeats, timeout=TIMEOUT,
        reconnect_attempts_max=1,
    )
    recorder = Recorder()
    conn.set_listener("", recorder)
    conn.connect(login, passcode, wait=True, headers={"host": "localhost"})
    return conn, recorder


result: dict = {}

# A wrong passcode is refused.
try:
    conn, recorder = open_connection("ann", "wrong")
    result["badLogin"] = "connected"
except ConnectFailedException:
    result["badLogin"] = "refused"

one, first = open_connection("ann", "secret", heartbeats=(1000, 1000))
two, second = open_connection("ann", "secret")
result["connected"] = {k: first.connected[k] for k in ("version", "user-name", "heart-beat", "server")}

# Heart-beats from the server.
first.wait("a heart-beat", lambda: first.heartbeats > 0)
result["heartbeat"] = True

# A queue with client-individual acks: ACK one, NACK the other, which comes back.
one.subscribe("/queue/jobs", id="q", ack="client-individual")
one.send("/queue/jobs", "a")
one.send("/queue/jobs", "b")
(ha, a), (hb, b) = first.take(2)
one.ack(ha["ack"])
one.nack(hb["ack"])
[(again, b2)] = first.take(1)
one.ack(again["ack"], receipt="acked")
first.wait("the ack receipt", lambda: "acked" in first.receipts)
result["queue"] = [a, b, b2, hb["message-id"] != again["message-id"]]

# A topic reaches both connections; a transaction delivers at commit only;
# an aborted one never.
for conn, recorder in ((one, first), (two, second)):
    conn.subscribe("/topic/news", id="t", receipt="sub")
    recorder.wait("the subscribe receipt", lambda r=recorder: "sub" in r.receipts)
two.begin("tx1")
two.send("/topic/news", "in tx1", transaction="tx1")
two.begin("tx2")
two.send("/topic/news", "in tx2", transaction="tx2")
two.abort("tx2")
two.send("/topic/news", "plain", headers={"x-kind": "demo"})
two.commit("tx1")
result["topic"] = [[body for _, body in recorder.take(2)] for recorder in (first, second)]

# A user queue reaches every session of the user.
for conn, recorder in ((one, first), (two, second)):
    conn.subscribe("/user/queue/inbox", id="u", receipt="inbox")
    recorder.wait("the inbox receipt", lambda r=recorder: "inbox" in r.receipts)
two.send("/user/ann/queue/inbox", "for ann")
result["user"] = [recorder.take(1)[0][1] for recorder in (first, second)]

# An application destination: its handler publishes to the topic.
one.send("/app/shout", "hey")
result["app"] = [recorder.take(1)[0][1] for recorder in (first, second)]

two.disconnect(receipt="bye")  # returns at once; the RECEIPT follows
one.disconnect(receipt="bye")
for recorder in (first, second):
    recorder.wait("the disconnect receipt", lambda r=recorder: "bye" in r.receipts)
result["receipts"] = ["bye" in first.receipts, "bye" in second.receipts]
result["errors"] = first.errors + second.errors
print(json.dumps(result), flush=True)
