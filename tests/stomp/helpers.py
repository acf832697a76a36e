"""
Helpers for the STOMP tests: sessions opened on a broker, exact frames.
"""

from __future__ import annotations

from typing import Any

from wsproto_tw.stomp.broker import EmbeddedBroker
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.session import StompSession

CONFIG = StompConfig(server="test", heart_beat=(0, 0))


def frame(command: str, *headers: str, body: bytes = b"") -> bytes:
    """
    The octets of a frame whose header lines are given as C{"name:value"}
    strings, written as they are (no escaping).
    """
    return ("\n".join((command, *headers)) + "\n\n").encode("utf-8") + body + b"\x00"


def connected(
    broker: EmbeddedBroker | None = None,
    version: str = "1.2",
    principal: str | None = None,
    config: StompConfig = CONFIG,
    session_id: str = "s1",
    **kwargs,
) -> StompSession:
    """
    A session that received C{CONNECT} for C{version} and was accepted;
    its C{CONNECTED} has been taken out.
    """
    session = StompSession(config, broker or EmbeddedBroker(), session_id=session_id, **kwargs)
    session.receive_data(frame("CONNECT", f"accept-version:{version}", "host:h"), now=0)
    session.events()
    session.accept_connect(principal, now=0)
    out = session.messages_to_send()
    assert len(out) == 1 and out[0].startswith("CONNECTED\n"), out
    return session


def sent(session: StompSession) -> list[str | bytes]:
    """
    The messages C{session} wants sent, taken out.
    """
    return session.messages_to_send()


def sessionsGone(server: Any, reactor: Any, timeout: float = 10) -> Any:
    """
    For the tests on a real reactor: a Deferred that fires once C{server}
    (a L{wsproto_tw.stomp.server.StompServer}) has no session left, so
    that no connection outlives the test; it fails after C{timeout}
    seconds.
    """
    from twisted.internet.task import deferLater

    deadline = reactor.seconds() + timeout

    def check(_: object = None) -> Any:
        if not server.sessions:
            return None
        if reactor.seconds() > deadline:
            raise AssertionError(f"{len(server.sessions)} sessions still open after {timeout} s")
        return deferLater(reactor, 0.02, lambda: None).addCallback(check)

    return check()


def annServer(heart_beat: tuple[int, int] = (0, 0), shout: bool = False) -> Any:
    """
    A L{wsproto_tw.stomp.server.StompServer} on the global reactor where
    ann (passcode secret) may log in, for the tests on a real reactor.

    @param heart_beat: the server's heart-beat setting, in milliseconds.
    @param shout: route C{/app/shout} as the seed scenario's clients
        expect: its handler replies on C{/user/queue/replies} with the
        text upper-cased.
    """
    from twisted.cred import strcred
    from twisted.internet import reactor

    from wsproto_tw.stomp.server import StompServer, portalFor

    server = StompServer(
        StompConfig(server="test", heart_beat=heart_beat),
        portal=portalFor(strcred.makeChecker("memory:ann:secret")),
        reactor=reactor,
    )
    if shout:

        @server.route("/app/shout")
        def shoutBack(request: Any) -> None:
            request.reply("/user/queue/replies", request.text.upper())

    return server


def registerShout(server: Any) -> None:
    """
    An C{--app} for C{twistd websocket --mode stomp}: C{/app/shout}
    publishes the upper-cased text to C{/topic/news}.
    """

    @server.route("/app/shout")
    def shout(request: Any) -> None:
        request.publish("/topic/news", request.text.upper())
