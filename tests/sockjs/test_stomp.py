"""
STOMP over SockJS in memory: the STOMP server's application runs over a
SockJS session unchanged, frames split or packed freely across SockJS
messages, and its heart-beats stand in for SockJS heartbeats.
"""

from __future__ import annotations

import json

from twisted.trial.unittest import SynchronousTestCase

from tests.sockjs.helpers import PRELUDE, SockJSSite
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.server import StompServer


def _send(site: SockJSSite, *messages: str) -> None:
    body = json.dumps(list(messages)).encode("utf-8")
    assert site.fetch("POST", "/000/s/xhr_send", body).status == 204


def _messages(stream_body: bytes) -> list[str]:
    """
    @return: the messages of the C{a} frames of an xhr_streaming body.
    """
    found: list[str] = []
    for line in stream_body[len(PRELUDE):].split(b"\n"):
        if line.startswith(b"a"):
            found.extend(json.loads(line[1:]))
    return found


class StompOverSockJSTests(SynchronousTestCase):
    """
    Tests for the STOMP application over a SockJS session.
    """

    def site(self, config: StompConfig) -> SockJSSite:
        site = SockJSSite()
        server = StompServer(config, reactor=site.clock)
        site.resource.applicationFactory = server.buildApplication
        return site

    def test_splitAndPacked(self):
        """
        A CONNECT split over two SockJS messages, then a SUBSCRIBE and a
        SEND packed into one, get CONNECTED and the MESSAGE.
        """
        site = self.site(StompConfig(server="test", heart_beat=(0, 0)))
        stream = site.send("POST", "/000/s/xhr_streaming")
        _send(site, "CONNECT\naccept-version:1.2\nho", "st:test\n\n\x00")
        _send(site, "SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\x00SEND\ndestination:/topic/a\n\nhi\x00")
        frames = "".join(_messages(stream.response().body))
        self.assertTrue(frames.startswith("CONNECTED\n"), frames)
        self.assertIn("version:1.2\n", frames)
        self.assertIn("MESSAGE\n", frames)
        self.assertTrue(frames.endswith("\n\nhi\x00"), frames)

    def test_heartBeatsReplaceSockJS(self):
        """
        With STOMP heart-beats every 10 seconds, the stream carries them
        and no SockJS heartbeat is needed: none is sent in 60 seconds.
        """
        site = self.site(StompConfig(server="test", heart_beat=(10000, 10000)))
        stream = site.send("POST", "/000/s/xhr_streaming")
        _send(site, "CONNECT\naccept-version:1.2\nhost:test\nheart-beat:10000,10000\n\n\x00")
        for _ in range(60):
            site.clock.advance(1)
            _send(site, "\n")  # the client's heart-beats
        body = stream.response().body
        self.assertNotIn(b"\nh\n", body[len(PRELUDE):])
        self.assertGreaterEqual(_messages(body).count("\n"), 5)
