"""
SockJS in a real browser: Debian's Chromium, headless, driven by
Playwright, loads a page from our site that uses C{sockjs-client} (and
C{@stomp/stompjs} over it), and runs an echo plan or a STOMP exchange:

  - through C{tinyproxy}, started by the test, which forwards plain HTTP
    but refuses the C{CONNECT} tunnels Chromium opens a WebSocket through:
    the client falls back to an HTTP transport, and echo and STOMP work;
  - without a proxy, forced to each transport the browser offers,
    iframe-based ones included.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Protocol, ProcessProtocol
from twisted.internet.task import deferLater
from twisted.internet.protocol import Factory
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.static import File

from tests.interop.exchange import PeerProcess
from tests.interop.tools import CHROMIUM_FLAGS, _aptInstall, ensureTools
from tests.sockjs.helpers import RecordingApplication
from tests.stomp.helpers import annServer
from tests.sockjs.tools import HERE, NODE_MODULES, ensureClients
from wsproto_tw.resource import WebSocketSite
from wsproto_tw.sockjs.config import SockJSConfig
from wsproto_tw.sockjs.resource import SockJSResource

#: Messages in the page's echo plan.
PLAN = 25


class _Daemon(ProcessProtocol):
    """
    A background process whose output is kept for failure messages.
    """

    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred = Deferred()
        self.done = False

    def outReceived(self, data: bytes) -> None:
        self.output = (self.output + data)[-8000:]

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.done = True
        self.ended.callback(None)

    def stop(self) -> Deferred:
        if not self.done:
            self.transport.signalProcess("KILL")
        return self.ended


def _freePort() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ChromiumSockJSTests(TestCase):
    """
    C{sockjs-client} in Chromium against L{SockJSResource}.
    """

    timeout = 180

    def setUp(self) -> None:
        self.tools = ensureTools()
        ensureClients()
        RecordingApplication.instances.clear()
        self.origin = self.serve()

    def serve(self) -> str:
        """
        Serve the page, the client libraries, SockJS echo at C{/echo} and
        STOMP over SockJS at C{/stomp}, on a free loopback port.

        @return: the site's origin.
        """
        server = annServer(shout=True)

        config = SockJSConfig(sockjs_url="/lib/sockjs.min.js")
        root = Resource()
        root.putChild(b"page.html", File(str(HERE / "page.html")))
        lib = Resource()
        lib.putChild(b"sockjs.min.js", File(str(NODE_MODULES / "sockjs-client" / "dist" / "sockjs.min.js")))
        lib.putChild(b"stomp.umd.min.js", File(str(NODE_MODULES / "@stomp" / "stompjs" / "bundles" / "stomp.umd.min.js")))
        root.putChild(b"lib", lib)
        self.resources = [SockJSResource(RecordingApplication, config, reactor=reactor),
                          SockJSResource(server.buildApplication, config, reactor=reactor)]
        root.putChild(b"echo", self.resources[0])
        root.putChild(b"stomp", self.resources[1])
        site = WebSocketSite(root, reactor=reactor)
        site.noisy = False
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(self.endSessions)
        return f"http://127.0.0.1:{port.getHost().port}"

    def endSessions(self) -> None:
        for resource in self.resources:
            for session in list(resource.sessions.values()):
                session.abortConnection()

    async def startProxy(self) -> str:
        """
        Start C{tinyproxy} (installed if missing) on a free port, allowing
        C{CONNECT} to port 443 only: Chromium's WebSocket tunnels to our
        port are refused, plain HTTP is forwarded.

        @return: the proxy's URL.
        """
        if shutil.which("tinyproxy") is None:
            _aptInstall("tinyproxy")
        tinyproxy = shutil.which("tinyproxy")
        self.assertIsNotNone(tinyproxy, "tinyproxy is still missing after installing it")
        port = _freePort()
        conf = Path(self.mktemp())
        conf.write_text(
            f"Port {port}\nListen 127.0.0.1\nTimeout 600\nAllow 127.0.0.1\nConnectPort 443\n"
            "MaxClients 100\nLogLevel Info\n"
        )
        daemon = _Daemon()
        reactor.spawnProcess(daemon, tinyproxy, [tinyproxy, "-d", "-c", str(conf)], env=None)
        self.addCleanup(daemon.stop)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        for _ in range(100):
            try:
                connected = await endpoint.connect(Factory.forProtocol(Protocol))
            except Exception:
                if daemon.done:
                    break
                await deferLater(reactor, 0.1, lambda: None)
            else:
                connected.transport.loseConnection()
                self.daemon = daemon
                return f"http://127.0.0.1:{port}"
        self.fail(f"tinyproxy did not listen on {port}:\n{daemon.output.decode(errors='replace')}")

    async def load(self, query: str, proxy: str = "-") -> dict[str, Any]:
        """
        Load the page with C{query} in Chromium.

        @return: the page's verdict.
        """
        url = f"{self.origin}/page.html?{query}"
        browser = PeerProcess("browser.js")
        argv = [self.tools.node, str(HERE / "browser.js"), self.tools.chromium, url, proxy, *CHROMIUM_FLAGS]
        reactor.spawnProcess(browser, argv[0], argv, path=str(HERE))
        self.addCleanup(browser.stop)
        verdict: dict[str, Any] = await browser.nextLine("the page's verdict", 120)
        self.assertEqual(verdict.get("errors"), [], verdict)
        return verdict

    async def echo(self, transport: str) -> None:
        verdict = await self.load(f"url={self.origin}/echo&mode=echo&transport={transport}")
        self.assertEqual((verdict["transport"], verdict["echoed"], verdict["closeCode"]), (transport, PLAN, 1000))
        self.assertEqual(len(RecordingApplication.instances), 1)

    async def test_proxyBlocksUpgradeEcho(self) -> None:
        """
        Through a proxy that refuses the WebSocket's tunnel, sockjs-client
        falls back to an HTTP transport, and the echo plan passes; the
        session's requests came through the proxy (its C{Via} header).
        """
        proxy = await self.startProxy()
        verdict = await self.load(f"url={self.origin}/echo&mode=echo", proxy)
        self.assertNotEqual(verdict["transport"], "websocket")
        self.assertIn(verdict["transport"], ("xhr-streaming", "xhr-polling", "eventsource"))
        self.assertEqual((verdict["echoed"], verdict["closeCode"]), (PLAN, 1000))
        application = RecordingApplication.instances[-1]
        self.assertIn("tinyproxy", application.transport.request.get("via") or "")

    async def test_proxyBlocksUpgradeStomp(self) -> None:
        """
        Through the same proxy, C{@stomp/stompjs} over SockJS logs in,
        subscribes, sends and receives.
        """
        proxy = await self.startProxy()
        verdict = await self.load(f"url={self.origin}/stomp&mode=stomp", proxy)
        self.assertNotEqual(verdict["transport"], "websocket")
        self.assertEqual(verdict["version"], "1.2")
        self.assertEqual(
            sorted(verdict["received"]),
            [["/topic/greetings", "hello from chromium"], ["/user/queue/replies", "HEY"]],
        )

    async def test_websocket(self) -> None:
        """
        Chromium's own WebSocket, with SockJS framing.
        """
        await self.echo("websocket")

    async def test_xhrStreaming(self) -> None:
        """
        C{xhr-streaming} in Chromium.
        """
        await self.echo("xhr-streaming")

    async def test_xhrPolling(self) -> None:
        """
        C{xhr-polling} in Chromium.
        """
        await self.echo("xhr-polling")

    async def test_eventsource(self) -> None:
        """
        C{eventsource} in Chromium.
        """
        await self.echo("eventsource")

    async def test_jsonpPolling(self) -> None:
        """
        C{jsonp-polling} (script tags and a form post) in Chromium.
        """
        await self.echo("jsonp-polling")

    async def test_htmlfile(self) -> None:
        """
        C{htmlfile} (a hidden iframe streaming script tags) in Chromium.
        """
        await self.echo("htmlfile")

    async def test_iframeEventsource(self) -> None:
        """
        C{iframe-eventsource}: the iframe page loads sockjs-client from
        C{sockjs_url} and runs EventSource inside.
        """
        await self.echo("iframe-eventsource")

    async def test_iframeHtmlfile(self) -> None:
        """
        C{iframe-htmlfile}: the C{htmlfile} transport inside the iframe.
        """
        await self.echo("iframe-htmlfile")

    async def test_iframeXhrPolling(self) -> None:
        """
        C{iframe-xhr-polling} in Chromium.
        """
        await self.echo("iframe-xhr-polling")
