"""
What the C{stomp.py} clients run by L{tests.stomp.test_stomppy}
(C{stomppy_client.py} over WebSocket, C{stomppy_tcp_client.py} over TCP)
share: a listener that records what the server sent, and the bound on every
wait. They import it as a sibling module (their own folder is first on
C{sys.path}).
"""

from __future__ import annotations

import threading

import stomp

#: Seconds allowed for each wait and for connecting.
TIMEOUT = 10


class Recorder(stomp.ConnectionListener):
    """
    Records frames and heart-beats; C{wait} blocks until a condition holds.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.connected: dict | None = None
        self.messages: list[tuple[dict, str]] = []
        self.receipts: list[str] = []
        self.errors: list[str] = []
        self.heartbeats = 0

    def _record(self, change) -> None:
        with self.condition:
            change()
            self.condition.notify_all()

    def on_connected(self, frame) -> None:
        self._record(lambda: setattr(self, "connected", dict(frame.headers)))

    def on_message(self, frame) -> None:
        self._record(lambda: self.messages.append((dict(frame.headers), frame.body)))

    def on_receipt(self, frame) -> None:
        self._record(lambda: self.receipts.append(frame.headers["receipt-id"]))

    def on_error(self, frame) -> None:
        self._record(lambda: self.errors.append(frame.headers.get("message")))

    def on_heartbeat(self) -> None:
        self._record(lambda: setattr(self, "heartbeats", self.heartbeats + 1))

    def wait(self, what: str, predicate) -> None:
        with self.condition:
            if not self.condition.wait_for(predicate, TIMEOUT):
                raise SystemExit(f"timed out waiting for {what}")

    def take(self, count: int) -> list[tuple[dict, str]]:
        self.wait(f"{count} messages", lambda: len(self.messages) >= count)
        with self.condition:
            taken, self.messages = self.messages[:count], self.messages[count:]
        return taken
