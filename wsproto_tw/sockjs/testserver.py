# -*- test-case-name: tests.sockjs.test_testserver -*-
"""
The server that SockJS conformance suites expect, for testing this
implementation:

    python -m wsproto_tw.sockjs.testserver --port tcp:8081

serves, on one port:

  - C{/echo}: echo, with the streaming response limit lowered to 4096
    bytes;
  - C{/disabled_websocket_echo}: echo without the C{websocket} transports;
  - C{/cookie_needed_echo}: echo with C{cookie_needed} (C{JSESSIONID});
  - C{/close}: every session is closed at once with C{3000 "Go away!"}.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import Resource

from wsproto_tw.application import WebSocketApplication
from wsproto_tw.apps import EchoApplication
from wsproto_tw.sockjs.config import SockJSConfig
from wsproto_tw.sockjs.resource import SockJSResource
from wsproto_tw.sockjs.session import SessionConfig

__all__ = ["CloseApplication", "main", "testRoot"]


class CloseApplication(WebSocketApplication):
    """
    Closes its session as soon as it opens, with C{3000 "Go away!"}.
    """

    def connectionOpened(self, transport: Any) -> None:
        transport.close(3000, "Go away!")


def testRoot(reactor: IReactorTime) -> Resource:
    """
    @return: a root resource serving the four test services.
    """
    root = Resource()
    root.putChild(
        b"echo",
        SockJSResource(EchoApplication, SockJSConfig(session=SessionConfig(response_limit=4096)), reactor=reactor),
    )
    root.putChild(b"disabled_websocket_echo", SockJSResource(EchoApplication, SockJSConfig(websocket=False), reactor=reactor))
    root.putChild(b"cookie_needed_echo", SockJSResource(EchoApplication, SockJSConfig(cookie_needed=True), reactor=reactor))
    root.putChild(b"close", SockJSResource(CloseApplication, reactor=reactor))
    return root


def main(argv: list[str] | None = None) -> None:
    """
    Run the test server until interrupted.
    """
    parser = argparse.ArgumentParser(prog="python -m wsproto_tw.sockjs.testserver", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", default="tcp:8081", help="endpoint to listen on (default tcp:8081)")
    arguments = parser.parse_args(argv)
    from twisted.internet import endpoints, reactor

    from wsproto_tw.resource import WebSocketSite

    description = f"tcp:{arguments.port}" if arguments.port.isdigit() else arguments.port
    site = WebSocketSite(testRoot(reactor), reactor=reactor)

    def listening(port: Any) -> None:
        address = port.getHost()
        print(f"sockjs test server on {getattr(address, 'host', '')}:{getattr(address, 'port', '')}", flush=True)

    def failed(failure: Any) -> None:
        print(f"can't listen on {description}: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        reactor.stop()  # type: ignore[attr-defined]

    endpoints.serverFromString(reactor, description).listen(site).addCallbacks(listening, failed)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
