"""
Interoperability with a real browser: Debian's Chromium, headless, driven
by Playwright (C{playwright-core}), loads a page from a C{twisted.web} site
that also serves our WebSocket (L{wsproto_tw.resource.WebSocketResource}),
and runs the plan against our echo server; and over C{wss://}, with a
certificate made when the test runs, both against that site served over TLS
and against a L{WebSocketServerFactory} listening over TLS on its own.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import File

from tests.interop.exchange import EchoRecorder, InteropTestCase, config
from tests.interop.plan import SUBPROTOCOL, messages
from tests.interop.tools import CHROMIUM_FLAGS, HERE
from tests.tools import serverTLS
from wsproto_tw.resource import WebSocketResource, WebSocketSite
from wsproto_tw.server import WebSocketServerFactory


class ChromiumTests(InteropTestCase):
    """
    Chromium's WebSocket against our server, through a page served on the
    same port.
    """

    def tlsOptions(self) -> Any:
        """
        @return: server TLS options with a fresh self-signed certificate
            and no ALPN protocol of their own, as C{twistd}'s C{ssl:}
            endpoint strings build them.
        """
        from tests.test_tls import selfSignedCertificate

        keyPath, certPath = selfSignedCertificate(os.path.abspath(self.mktemp()))
        return serverTLS(keyPath, certPath)

    async def ourServer(self, compression: bool, tls: str | None = None) -> None:
        """
        Run the plan in Chromium against our echo server.

        @param tls: L{None} for C{ws://} on the page's own C{twisted.web}
            site; C{"site"} for that site (a L{WebSocketSite}) served over
            TLS, page and C{wss://} alike; C{"standalone"} for a page over
            plain HTTP opening C{wss://} to a L{WebSocketServerFactory}
            listening over TLS on a port of its own.
        """
        apps: list[EchoRecorder] = []

        def build() -> EchoRecorder:
            app = EchoRecorder()
            apps.append(app)
            return app

        root = Resource()
        for name in ("page.html", "plan.js"):
            root.putChild(name.encode(), File(str(HERE / name)))
        flags = CHROMIUM_FLAGS
        if tls == "site":
            site: Site = WebSocketSite(root)
            listening = reactor.listenSSL(0, site, self.tlsOptions(), interface="127.0.0.1")
            origin = f"https://127.0.0.1:{listening.getHost().port}"
        else:
            site = Site(root)
            listening = reactor.listenTCP(0, site, interface="127.0.0.1")
            origin = f"http://127.0.0.1:{listening.getHost().port}"
        site.noisy = False
        self.addCleanup(listening.stopListening)
        # Only the page's own origin may open a WebSocket.
        ours = config(compression, subprotocols=(SUBPROTOCOL,), allowed_origins={origin})
        if tls == "standalone":
            secure = reactor.listenSSL(
                0, WebSocketServerFactory(build, ours), self.tlsOptions(), interface="127.0.0.1"
            )
            self.addCleanup(secure.stopListening)
            webSocketURL = f"wss://127.0.0.1:{secure.getHost().port}/ws"
        else:
            root.putChild(b"ws", WebSocketResource(build, ours))
            scheme = "ws" if tls is None else "wss"
            webSocketURL = f"{scheme}://127.0.0.1:{listening.getHost().port}/ws"
        if tls is not None:
            # The certificate is made for this test: no authority vouches
            # for it. ALPN happens either way.
            flags += ("--ignore-certificate-errors",)
        url = f"{origin}/page.html?ws={webSocketURL}&protocol={SUBPROTOCOL}"
        browser = self.spawnNode("browser.js", self.tools.chromium, url, *flags)
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

    async def test_chromiumSecureStandalone(self) -> None:
        """
        Chromium, offering C{h2} and C{http/1.1} by ALPN as it always does,
        opens C{wss://} to a L{WebSocketServerFactory} listening over TLS
        on its own port, as C{twistd websocket --port ssl:...} does, and
        runs the plan with permessage-deflate.
        """
        await self.ourServer(True, tls="standalone")

    async def test_chromiumSecureSite(self) -> None:
        """
        Chromium loads the page over C{https://} from a L{WebSocketSite}
        and opens C{wss://} to the L{WebSocketResource} on the same port,
        and runs the plan with permessage-deflate.
        """
        await self.ourServer(True, tls="site")
