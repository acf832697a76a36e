"""
Interoperability with a real browser: Debian's Chromium, headless, driven
by Playwright (C{playwright-core}), loads a page from a C{twisted.web} site
that also serves our WebSocket (L{wsproto_tw.resource.WebSocketResource}),
and runs the plan against our echo server.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

from tests.interop.exchange import EchoRecorder, InteropTestCase, config
from tests.interop.plan import SUBPROTOCOL, messages
from tests.interop.tools import CHROMIUM_FLAGS, HERE
from wsproto_tw.resource import WebSocketResource


class ChromiumTests(InteropTestCase):
    """
    Chromium's WebSocket against our server, through a page served on the
    same port.
    """

    async def ourServer(self, compression: bool) -> None:
        apps: list[EchoRecorder] = []

        def build() -> EchoRecorder:
            app = EchoRecorder()
            apps.append(app)
            return app

        root = Resource()
        for name in ("page.html", "plan.js"):
            root.putChild(name.encode(), File(str(HERE / name)))
        site = Site(root)
        site.noisy = False
        listening = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        origin = f"http://127.0.0.1:{listening.getHost().port}"
        # Only the page's own origin may open a WebSocket.
        ours = config(compression, subprotocols=(SUBPROTOCOL,), allowed_origins={origin})
        root.putChild(b"ws", WebSocketResource(build, ours))
        url = f"{origin}/page.html?ws=ws://127.0.0.1:{listening.getHost().port}/ws&protocol={SUBPROTOCOL}"
        browser = self.spawnNode("browser.js", self.tools.chromium, url, *CHROMIUM_FLAGS)
        verdict = await browser.nextLine("the page's verdict", 90)
        self.assertVerdict(verdict)
        self.assertIn("HeadlessChrome/", verdict["peer"])
        self.assertEqual(verdict["echoed"], len(messages()))
        self.assertEqual(verdict["protocol"], SUBPROTOCOL)
        self.assertExtension(verdict["extensions"], compression)
        self.assertEqual((verdict["closeCode"], verdict["wasClean"]), (1000, True))
        await self.serverSaw(apps, compression, None)
        await browser.stop()

    async def test_chromiumDeflate(self) -> None:
        """
        Chromium runs the plan against our server with a subprotocol and
        permessage-deflate negotiated, and closes with 1000.
        """
        await self.ourServer(True)

    async def test_chromium(self) -> None:
        """
        Chromium runs the plan against our server when we do not offer
        compression.
        """
        await self.ourServer(False)
