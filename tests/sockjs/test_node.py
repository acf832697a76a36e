"""
Interoperability with C{sockjs-client} 1.6 under Node.js, forced to each
transport it offers outside a browser (websocket, xhr-streaming,
xhr-polling, eventsource), against our echo application over loopback.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.interop.exchange import PeerProcess, within
from tests.sockjs.helpers import RecordingApplication
from tests.stomp.helpers import annServer
from tests.sockjs.tools import HERE, ensureClients
from wsproto_tw.sockjs.resource import SockJSResource

#: Messages in client.js's plan.
PLAN = 56


class SockJSClientTests(TestCase):
    """
    C{sockjs-client} echoes its plan through our server on each transport.
    """

    timeout = 120

    def setUp(self) -> None:
        self.clients = ensureClients()
        RecordingApplication.instances.clear()

    def listen(self) -> int:
        """
        Serve SockJS at C{/echo} on a free loopback port until the test
        ends.
        """
        root = Resource()
        resource = SockJSResource(RecordingApplication, reactor=reactor)
        root.putChild(b"echo", resource)
        port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.addCleanup(port.stopListening)

        def endSessions() -> None:
            # A session the test did not see end leaves no timer behind.
            for session in list(resource.sessions.values()):
                session.abortConnection()

        self.addCleanup(endSessions)
        return port.getHost().port

    async def echo(self, transport: str, reported: str) -> None:
        port = self.listen()
        peer = PeerProcess(f"client.js {transport}")
        argv = [self.clients["node"], str(HERE / "client.js"), f"http://127.0.0.1:{port}/echo", transport]
        reactor.spawnProcess(peer, argv[0], argv, path=str(HERE))
        self.addCleanup(peer.stop)
        verdict: dict[str, Any] = await peer.nextLine("the verdict", 90)
        self.assertEqual(verdict["errors"], [])
        self.assertEqual((verdict["transport"], verdict["echoed"], verdict["closeCode"]), (reported, PLAN, 1000))
        self.assertEqual(len(RecordingApplication.instances), 1)
        application = RecordingApplication.instances[0]
        self.assertEqual(application.events[0], "opened")
        self.assertEqual(len([e for e in application.events if isinstance(e, str)]), PLAN + 1)
        if not isinstance(application.events[-1], tuple):
            lost: Deferred = Deferred()
            original = application.connectionLost

            def connectionLost(reason: Any) -> None:
                original(reason)
                lost.callback(None)

            application.connectionLost = connectionLost  # type: ignore[method-assign]
            await within(lost, "the session's end", 10)
        self.assertEqual(application.events[-1][0], "lost")

    async def test_websocket(self) -> None:
        """
        The C{websocket} transport: SockJS frames over a WebSocket.
        """
        await self.echo("websocket", "websocket")

    async def test_xhrStreaming(self) -> None:
        """
        The C{xhr-streaming} transport, whose 128 KiB response limit the
        150 000-character message passes.
        """
        await self.echo("xhr-streaming", "xhr-streaming")

    async def test_xhrPolling(self) -> None:
        """
        The C{xhr-polling} transport.
        """
        await self.echo("xhr-polling", "xhr-polling")

    async def test_eventsource(self) -> None:
        """
        The C{eventsource} transport.
        """
        await self.echo("eventsource", "eventsource")


class StompOverSockJSTests(TestCase):
    """
    C{@stomp/stompjs} over C{sockjs-client} reaches the STOMP application
    (L{wsproto_tw.stomp.server.StompServer}) unchanged.
    """

    timeout = 120

    def setUp(self) -> None:
        self.clients = ensureClients()

    async def stomp(self, transport: str) -> None:
        server = annServer(shout=True)

        root = Resource()
        resource = SockJSResource(server.buildApplication, reactor=reactor)
        root.putChild(b"stomp", resource)
        port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [session.abortConnection() for session in list(resource.sessions.values())])
        peer = PeerProcess(f"stomp_client.js {transport}")
        url = f"http://127.0.0.1:{port.getHost().port}/stomp"
        argv = [self.clients["node"], str(HERE / "stomp_client.js"), url, transport]
        reactor.spawnProcess(peer, argv[0], argv, path=str(HERE))
        self.addCleanup(peer.stop)
        result = await peer.nextLine("the result", 60)
        self.assertNotIn("error", result)
        self.assertEqual((result["version"], result["user"], result["transport"]), ("1.2", "ann", transport))
        self.assertEqual(
            sorted(result["received"]),
            [["/topic/greetings", "hello over sockjs"], ["/user/queue/replies", "HEY"]],
        )
        self.assertTrue(result["closed"])

    async def test_websocket(self) -> None:
        """
        STOMP 1.2 over the C{websocket} transport.
        """
        await self.stomp("websocket")

    async def test_xhrStreaming(self) -> None:
        """
        STOMP 1.2 over C{xhr-streaming}.
        """
        await self.stomp("xhr-streaming")

    async def test_xhrPolling(self) -> None:
        """
        STOMP 1.2 over C{xhr-polling}.
        """
        await self.stomp("xhr-polling")
