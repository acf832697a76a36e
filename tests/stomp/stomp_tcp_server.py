"""
A L{StompServer} with STOMP over TCP on a loopback port, as a program, for
the tests that drive it with blocking clients (the differential tests
against RabbitMQ). Prints C{listening on PORT}, then serves until killed.

Usage: python stomp_tcp_server.py
"""

from __future__ import annotations

from twisted.internet import reactor

from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.server import StompServer

server = StompServer(StompConfig(heart_beat=(0, 0)), reactor=reactor)
port = reactor.listenTCP(0, server.streamFactory(), interface="127.0.0.1")
print(f"listening on {port.getHost().port}", flush=True)
reactor.run()
