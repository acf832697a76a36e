"""
Interoperability with the Node.js C{ws} package, both directions, with and
without permessage-deflate.
"""

from __future__ import annotations

from tests.interop.exchange import InteropTestCase, PlanClient, config
from tests.interop.plan import OFFERED, SUBPROTOCOL, messages
from wsproto_tw.client import connect

#: The payload the ws peer pings with.
WS_PING = b"ping from ws"


class NodeWsTests(InteropTestCase):
    """
    Our server with the C{ws} client, and our client with the C{ws} server.
    """

    async def ourServer(self, compression: bool) -> None:
        port, apps = self.listen(compression)
        peer = self.spawnNode(
            "ws_peer.js", "client", f"ws://127.0.0.1:{port}/echo", SUBPROTOCOL, "1" if compression else "0"
        )
        verdict = await peer.nextLine("the verdict")
        self.assertVerdict(verdict)
        self.assertEqual(verdict["echoed"], len(messages()))
        self.assertEqual(verdict["protocol"], SUBPROTOCOL)
        self.assertExtension(verdict["extensionHeader"], compression)
        self.assertEqual(verdict["extensions"], "permessage-deflate" if compression else "")
        self.assertEqual((verdict["closeCode"], verdict["wasClean"]), (1000, True))
        self.assertEqual(verdict["pingsReceived"], ["ping from wsproto_tw"])
        await self.serverSaw(apps, compression, WS_PING)

    async def ourClient(self, compression: bool) -> None:
        peer = self.spawnNode("ws_peer.js", "server", SUBPROTOCOL, "1" if compression else "0")
        port = (await peer.nextLine("the listening port"))["listening"]
        app = PlanClient()
        connecting = connect(
            f"ws://127.0.0.1:{port}/echo",
            lambda: app,
            config=config(compression, subprotocols=OFFERED),
        )
        await self.runPlan(connecting, app, compression, WS_PING)
        verdict = await peer.nextLine("the verdict")
        self.assertVerdict(verdict)
        self.assertEqual(verdict["echoed"], len(messages()))
        self.assertEqual(verdict["protocol"], SUBPROTOCOL)
        self.assertExtension(verdict["extensionHeader"], compression)
        self.assertEqual(verdict["extensions"], "permessage-deflate" if compression else "")
        self.assertEqual(verdict["closeCode"], 1000)
        self.assertEqual(verdict["pongs"], [WS_PING.decode()])

    async def test_ourServerWithWsClient(self) -> None:
        """
        The C{ws} client runs the plan against our echo server, without
        compression.
        """
        await self.ourServer(False)

    async def test_ourServerWithWsClientDeflate(self) -> None:
        """
        The C{ws} client runs the plan against our echo server, with
        permessage-deflate negotiated.
        """
        await self.ourServer(True)

    async def test_ourClientWithWsServer(self) -> None:
        """
        Our client runs the plan against the C{ws} echo server, without
        compression.
        """
        await self.ourClient(False)

    async def test_ourClientWithWsServerDeflate(self) -> None:
        """
        Our client runs the plan against the C{ws} echo server, with
        permessage-deflate negotiated.
        """
        await self.ourClient(True)
