"""
Interoperability with the C{websockets} package (its asyncio
implementation, in another process), both directions, with and without
permessage-deflate.
"""

from __future__ import annotations

from tests.interop.exchange import InteropTestCase, PlanClient, config
from tests.interop.plan import OFFERED, SUBPROTOCOL, messages
from wsproto_tw.client import connect

#: The payload the websockets peer pings with.
WEBSOCKETS_PING = b"ping from websockets"


class WebsocketsTests(InteropTestCase):
    """
    Our server with the C{websockets} client, and our client with the
    C{websockets} server.
    """

    async def ourServer(self, compression: bool) -> None:
        port, apps = self.listen(compression)
        peer = self.spawnPython(
            "websockets_peer", "client", f"ws://127.0.0.1:{port}/echo", SUBPROTOCOL, "1" if compression else "0"
        )
        verdict = await peer.nextLine("the verdict")
        self.assertVerdict(verdict)
        self.assertEqual(verdict["echoed"], len(messages()))
        self.assertEqual(verdict["protocol"], SUBPROTOCOL)
        self.assertExtension(verdict["extensionHeader"], compression)
        self.assertEqual(verdict["closeCode"], 1000)
        await self.serverSaw(apps, compression, WEBSOCKETS_PING)

    async def ourClient(self, compression: bool) -> None:
        peer = self.spawnPython("websockets_peer", "server", SUBPROTOCOL, "1" if compression else "0")
        port = (await peer.nextLine("the listening port"))["listening"]
        app = PlanClient()
        connecting = connect(
            f"ws://127.0.0.1:{port}/echo",
            lambda: app,
            config=config(compression, subprotocols=OFFERED),
        )
        await self.runPlan(connecting, app, compression, WEBSOCKETS_PING)
        verdict = await peer.nextLine("the verdict")
        self.assertVerdict(verdict)
        self.assertEqual(verdict["echoed"], len(messages()))
        self.assertEqual(verdict["protocol"], SUBPROTOCOL)
        self.assertExtension(verdict["offeredExtensions"], compression)
        self.assertExtension(verdict["extensionHeader"], compression)
        self.assertEqual(verdict["closeCode"], 1000)
        self.assertEqual(verdict["pongs"], [WEBSOCKETS_PING.decode()])

    async def test_ourServerWithWebsocketsClient(self) -> None:
        """
        The C{websockets} client runs the plan against our echo server,
        without compression.
        """
        await self.ourServer(False)

    async def test_ourServerWithWebsocketsClientDeflate(self) -> None:
        """
        The C{websockets} client runs the plan against our echo server, with
        permessage-deflate negotiated.
        """
        await self.ourServer(True)

    async def test_ourClientWithWebsocketsServer(self) -> None:
        """
        Our client runs the plan against the C{websockets} echo server,
        without compression.
        """
        await self.ourClient(False)

    async def test_ourClientWithWebsocketsServerDeflate(self) -> None:
        """
        Our client runs the plan against the C{websockets} echo server, with
        permessage-deflate negotiated.
        """
        await self.ourClient(True)
