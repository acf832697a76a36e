"""
Tests for L{wsproto_tw.sockjs.resource}: every URL and transport of the
SockJS 0.3 protocol, through a real C{twisted.web} site over
C{StringTransport}s and a L{Clock}.
"""

from __future__ import annotations

import json
import re
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from tests.sockjs.helpers import PRELUDE, CloseApplication, RecordingApplication, SockJSSite
from wsproto_tw.errors import Reject
from wsproto_tw.sockjs.config import SockJSConfig
from wsproto_tw.sockjs.session import SessionConfig

_NO_CACHE = "no-store, no-cache, must-revalidate, max-age=0"


def _opened(site: SockJSSite, session: str = "s1") -> str:
    """
    Open a session by an xhr poll; return its URL path.
    """
    path = f"/000/{session}"
    assert site.fetch("POST", path + "/xhr").body == b"o\n"
    return path


class StaticTests(SynchronousTestCase):
    """
    Tests for the greeting, C{/info} and the iframe page.
    """

    def test_greeting(self):
        """
        The prefix, with or without a slash, answers the greeting as plain
        text with a length, and sets no cookie.
        """
        site = SockJSSite()
        for path in ("", "/"):
            response = site.fetch("GET", path)
            self.assertEqual((response.status, response.body), (200, b"Welcome to SockJS!\n"))
            self.assertEqual(response.header("content-type"), "text/plain; charset=UTF-8")
            self.assertEqual(response.header("content-length"), "19")
            self.assertIsNone(response.header("set-cookie"))

    def test_notFound(self):
        """
        Other paths, and session paths with an empty part, a dot or the
        wrong number of parts, get 404.
        """
        site = SockJSSite()
        for path in ("/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a./a/xhr", "/a/a./xhr",
                     "/./././xhr", "//a/xhr", "/a//xhr", "/a/a/unknown", "/a/a/xhr/more"):
            self.assertEqual(site.fetch("POST", path).status, 404, path)

    def test_info(self):
        """
        C{/info} says what the server offers, as uncached JSON with CORS
        headers, and a fresh 32-bit entropy each time.
        """
        site = SockJSSite()
        response = site.fetch("GET", "/info", headers={"Origin": "http://app.example"})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("content-type"), "application/json; charset=UTF-8")
        self.assertEqual(response.header("cache-control"), _NO_CACHE)
        self.assertEqual(response.header("access-control-allow-origin"), "http://app.example")
        self.assertEqual(response.header("access-control-allow-credentials"), "true")
        self.assertIsNone(response.header("set-cookie"))
        info = json.loads(response.body)
        self.assertEqual(
            {k: info[k] for k in ("websocket", "cookie_needed", "origins")},
            {"websocket": True, "cookie_needed": False, "origins": ["*:*"]},
        )
        entropies = {json.loads(site.fetch("GET", "/info").body)["entropy"] for _ in range(5)}
        self.assertEqual(len(entropies), 5)
        self.assertTrue(all(0 <= e < 1 << 32 for e in entropies))

    def test_infoOptions(self):
        """
        C{OPTIONS /info} is a cacheable CORS preflight: 204, a year's
        max-age, C{OPTIONS, GET}; a C{null} origin is answered with C{*}.
        """
        site = SockJSSite()
        for origin, allowed in ((None, "*"), ("test", "test"), ("null", "*")):
            headers = {"Origin": origin} if origin else {}
            response = site.fetch("OPTIONS", "/info", headers=headers)
            self.assertEqual((response.status, response.body), (204, b""))
            self.assertIn("public", response.header("cache-control"))
            self.assertIn("max-age=31536000", response.header("cache-control"))
            self.assertIsNotNone(response.header("expires"))
            self.assertEqual(response.header("access-control-max-age"), "31536000")
            self.assertEqual(response.header("access-control-allow-methods"), "OPTIONS, GET")
            self.assertEqual(response.header("access-control-allow-origin"), allowed)

    def test_infoOptionsOff(self):
        """
        With the WebSocket and cookies options changed, C{/info} says so.
        """
        site = SockJSSite(config=SockJSConfig(websocket=False, cookie_needed=True))
        info = json.loads(site.fetch("GET", "/info").body)
        self.assertEqual((info["websocket"], info["cookie_needed"]), (False, True))
        self.assertEqual(site.fetch("GET", "/000/a/websocket").status, 404)
        self.assertEqual(site.fetch("GET", "/websocket").status, 404)

    def test_iframe(self):
        """
        C{/iframe.html} and its versioned names serve the cacheable page
        that loads C{sockjs_url}, with an ETag honoured by
        C{If-None-Match}; malformed names get 404.
        """
        site = SockJSSite(config=SockJSConfig(sockjs_url="/static/sockjs.js"))
        etags = set()
        for path in ("/iframe.html", "/iframe-a.html", "/iframe-.html", "/iframe-0.1.2abc-dirty.2144.html",
                     "/iframe-0.1.2.html?t=123414"):
            response = site.fetch("GET", path)
            self.assertEqual(response.status, 200, path)
            self.assertEqual(response.header("content-type"), "text/html; charset=UTF-8")
            self.assertIn("max-age=31536000", response.header("cache-control"))
            self.assertIsNone(response.header("last-modified"))
            self.assertIn(b'<script src="/static/sockjs.js"></script>', response.body)
            self.assertIn(b"SockJS.bootstrap_iframe()", response.body)
            etags.add(response.header("etag"))
        self.assertEqual(len(etags), 1)
        response = site.fetch("GET", "/iframe.html", headers={"If-None-Match": etags.pop()})
        self.assertEqual((response.status, response.body, response.header("content-type")), (304, b"", None))
        for path in ("/iframe.htm", "/iframe", "/IFRAME.HTML", "/iframe.HTML", "/iframe.xml", "/iframe-/.html"):
            self.assertEqual(site.fetch("GET", path).status, 404, path)


class XhrTests(SynchronousTestCase):
    """
    Tests for C{xhr} and C{xhr_send}.
    """

    def test_pollingSession(self):
        """
        The first poll opens the session; a send is answered 204 in plain
        text; the next poll gets the echo. Both are uncached, with CORS.
        """
        site = SockJSSite()
        response = site.fetch("POST", "/000/s1/xhr")
        self.assertEqual((response.status, response.body), (200, b"o\n"))
        self.assertEqual(response.header("content-type"), "application/javascript; charset=UTF-8")
        self.assertEqual(response.header("cache-control"), _NO_CACHE)
        self.assertEqual(response.header("access-control-allow-origin"), "*")
        sent = site.fetch("POST", "/000/s1/xhr_send", b'["x"]')
        self.assertEqual((sent.status, sent.body), (204, b""))
        self.assertEqual(sent.header("content-type"), "text/plain; charset=UTF-8")
        self.assertEqual(sent.header("cache-control"), _NO_CACHE)
        self.assertEqual(site.fetch("POST", "/999/s1/xhr").body, b'a["x"]\n')

    def test_options(self):
        """
        The xhr transports answer preflights with C{OPTIONS, POST}.
        """
        site = SockJSSite()
        for transport in ("xhr", "xhr_send", "xhr_streaming"):
            response = site.fetch("OPTIONS", f"/abc/abc/{transport}", headers={"Origin": "http://a"})
            self.assertEqual(response.status, 204)
            self.assertEqual(response.header("access-control-allow-methods"), "OPTIONS, POST")
            self.assertEqual(response.header("access-control-allow-origin"), "http://a")

    def test_requestHeadersEchoed(self):
        """
        C{Access-Control-Request-Headers} is echoed as
        C{Access-Control-Allow-Headers}, unless empty.
        """
        site = SockJSSite()
        response = site.fetch("POST", "/0/a/xhr", headers={"Access-Control-Request-Headers": "a, b, c"})
        self.assertEqual(response.header("access-control-allow-headers"), "a, b, c")
        response = site.fetch("POST", "/0/b/xhr", headers={"Access-Control-Request-Headers": ""})
        self.assertIsNone(response.header("access-control-allow-headers"))

    def test_sendToUnknownSession(self):
        """
        Sending to a session that does not exist gets 404.
        """
        self.assertEqual(SockJSSite().fetch("POST", "/000/nope/xhr_send", b'["x"]').status, 404)

    def test_invalidJSON(self):
        """
        A broken or empty body gets 500 with the protocol's message, and
        delivers nothing.
        """
        site = SockJSSite()
        path = _opened(site)
        response = site.fetch("POST", path + "/xhr_send", b'["x')
        self.assertEqual((response.status, response.body), (500, b"Broken JSON encoding."))
        response = site.fetch("POST", path + "/xhr_send", b"")
        self.assertEqual((response.status, response.body), (500, b"Payload expected."))
        site.fetch("POST", path + "/xhr_send", b'["a"]')
        self.assertEqual(site.fetch("POST", path + "/xhr").body, b'a["a"]\n')

    def test_deeplyNestedJSON(self):
        """
        A body nested too deeply to decode is broken JSON: 500 with the
        protocol's message on C{xhr_send} and C{jsonp_send}.
        """
        site = SockJSSite()
        path = _opened(site)
        response = site.fetch("POST", path + "/xhr_send", b"[" * 100000)
        self.assertEqual((response.status, response.body), (500, b"Broken JSON encoding."))
        response = site.fetch(
            "POST",
            path + "/jsonp_send",
            b"[" * 100000,
            headers={"Content-Type": "text/plain"},
        )
        self.assertEqual((response.status, response.body), (500, b"Broken JSON encoding."))

    def test_bodyLimit(self):
        """
        A body over C{max_request_body} bytes gets 413.
        """
        site = SockJSSite(config=SockJSConfig(max_request_body=10))
        path = _opened(site)
        self.assertEqual(site.fetch("POST", path + "/xhr_send", b'["' + b"x" * 10 + b'"]').status, 413)

    def test_anotherConnection(self):
        """
        A second poll while one waits gets C{c[2010,...]}; the first still
        gets the next message.
        """
        site = SockJSSite()
        path = _opened(site)
        waiting = site.send("POST", path + "/xhr")
        self.assertFalse(waiting.response().complete)
        self.assertEqual(site.fetch("POST", path + "/xhr").body, b'c[2010,"Another connection still open"]\n')
        site.fetch("POST", path + "/xhr_send", b'["m"]')
        self.assertEqual(waiting.response().body, b'a["m"]\n')

    def test_closeSession(self):
        """
        An application that closes gets its close frame to the client, on
        every poll until the session times out.
        """
        site = SockJSSite(CloseApplication)
        self.assertEqual(site.fetch("POST", "/000/c/xhr").body, b"o\n")
        for _ in range(2):
            self.assertEqual(site.fetch("POST", "/000/c/xhr").body, b'c[3000,"Go away!"]\n')
        site.clock.advance(5)
        self.assertEqual(site.resource.sessions, {})
        self.assertEqual(site.fetch("POST", "/000/c/xhr").body, b"o\n")

    def test_abortedPoll(self):
        """
        A poll cut off by the client closes the session: the application
        sees 1002, and the next poll gets C{c[1002,"Connection interrupted"]}.
        """
        RecordingApplication.instances.clear()
        site = SockJSSite(RecordingApplication)
        path = _opened(site)
        site.send("POST", path + "/xhr").drop()
        self.assertEqual(RecordingApplication.instances[0].events, ["opened", ("lost", 1002, "Connection interrupted", False)])
        self.assertEqual(site.fetch("POST", path + "/xhr").body, b'c[1002,"Connection interrupted"]\n')

    def test_sessionTimeout(self):
        """
        A session polled by nobody for 5 seconds is over: 1006, unclean.
        """
        RecordingApplication.instances.clear()
        site = SockJSSite(RecordingApplication)
        _opened(site)
        site.clock.advance(4.9)
        self.assertIn(b"s1", site.resource.sessions)
        site.clock.advance(0.1)
        self.assertEqual(site.resource.sessions, {})
        self.assertEqual(RecordingApplication.instances[0].events[-1], ("lost", 1006, "session timed out", False))

    def test_heartbeat(self):
        """
        A poll that waits 25 seconds gets C{h}.
        """
        site = SockJSSite()
        path = _opened(site)
        waiting = site.send("POST", path + "/xhr")
        site.clock.advance(24.9)
        self.assertFalse(waiting.response().complete)
        site.clock.advance(0.1)
        self.assertEqual(waiting.response().body, b"h\n")
        self.assertTrue(waiting.response().complete)

    def test_rejected(self):
        """
        An application whose C{requestReceived} raises L{Reject} refuses
        the session with that status.
        """

        class Refusing(RecordingApplication):
            def requestReceived(self, request):
                raise Reject(403, "no " + request.path)

        response = SockJSSite(Refusing).fetch("POST", "/000/r/xhr")
        self.assertEqual((response.status, response.body), (403, b"no /echo/000/r/xhr"))

    def test_jsessionid(self):
        """
        With C{cookie_needed}, session requests set C{JSESSIONID}: the
        client's, or C{dummy}, for the path C{/}.
        """
        site = SockJSSite(config=SockJSConfig(cookie_needed=True))
        response = site.fetch("POST", "/000/j/xhr")
        self.assertEqual(response.header("set-cookie"), "JSESSIONID=dummy; Path=/")
        response = site.fetch("POST", "/000/k/xhr", headers={"Cookie": "JSESSIONID=abcdef"})
        self.assertEqual(response.header("set-cookie"), "JSESSIONID=abcdef; Path=/")
        self.assertIsNone(site.fetch("GET", "/info").header("set-cookie"))

    def test_allowedOrigins(self):
        """
        With C{Config.allowed_origins}, a request from another origin gets
        403 on C{/info} and the session URLs; one from an allowed origin,
        or without C{Origin}, is served.
        """
        from wsproto_tw.core.config import Config

        site = SockJSSite()
        site.resource.webSocketConfig = Config(allowed_origins=frozenset({"https://app.example"}))
        for path in ("/info", "/000/o/xhr"):
            method = "GET" if path == "/info" else "POST"
            self.assertEqual(site.fetch(method, path, headers={"Origin": "https://evil.example"}).status, 403)
            self.assertEqual(site.fetch("OPTIONS", path, headers={"Origin": "https://evil.example"}).status, 403)
        self.assertEqual(site.fetch("GET", "/info", headers={"Origin": "https://APP.example"}).status, 200)
        self.assertEqual(site.fetch("POST", "/000/o/xhr").body, b"o\n")

    def test_wrongMethod(self):
        """
        A transport asked with the wrong method gets 405 and C{Allow}.
        """
        site = SockJSSite()
        response = site.fetch("GET", "/0/0/xhr")
        self.assertEqual((response.status, response.header("allow"), response.body), (405, "POST", b""))


class StreamingTests(SynchronousTestCase):
    """
    Tests for C{xhr_streaming}, C{eventsource} and C{htmlfile}.
    """

    def test_xhrStreaming(self):
        """
        C{xhr_streaming} sends the 2 KiB prelude, C{o}, then each message as
        it comes, chunked, uncached, with CORS.
        """
        site = SockJSSite()
        stream = site.send("POST", "/000/x/xhr_streaming")
        response = stream.response()
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("content-type"), "application/javascript; charset=UTF-8")
        self.assertEqual(response.header("transfer-encoding"), "chunked")
        self.assertEqual(response.header("cache-control"), _NO_CACHE)
        self.assertEqual(response.header("access-control-allow-origin"), "*")
        self.assertEqual(response.body, PRELUDE + b"o\n")
        site.fetch("POST", "/000/x/xhr_send", b'["x"]')
        self.assertEqual(stream.response().body, PRELUDE + b'o\na["x"]\n')
        self.assertFalse(stream.response().complete)

    def test_responseLimit(self):
        """
        A streaming response ends once C{response_limit} bytes of frames
        went out; the client reconnects to the same session.
        """
        site = SockJSSite(config=SockJSConfig(session=SessionConfig(response_limit=4096)))
        stream = site.send("POST", "/000/x/xhr_streaming")
        message = b'"' + b"x" * 128 + b'"'
        for _ in range(31):
            site.fetch("POST", "/000/x/xhr_send", b"[" + message + b"]")
        response = stream.response()
        self.assertTrue(response.complete)
        self.assertEqual(response.body, PRELUDE + b"o\n" + (b"a[" + message + b"]\n") * 31)
        self.assertEqual(site.fetch("POST", "/000/x/xhr_send", b'["y"]').status, 204)
        self.assertEqual(site.fetch("POST", "/000/x/xhr").body, b'a["y"]\n')

    def test_closeFrameEndsStreams(self):
        """
        A closed session's streams get the close frame and end, the second
        as well as the first.
        """
        site = SockJSSite(CloseApplication)
        first = site.send("POST", "/000/c/xhr_streaming").response()
        self.assertEqual(first.body, PRELUDE + b'o\nc[3000,"Go away!"]\n')
        self.assertTrue(first.complete)
        second = site.send("POST", "/000/c/xhr_streaming").response()
        self.assertEqual(second.body, PRELUDE + b'c[3000,"Go away!"]\n')
        self.assertTrue(second.complete)

    def test_http10Streaming(self):
        """
        Over HTTP/1.0 a stream is neither chunked nor sized, and the
        connection closes after it.
        """
        site = SockJSSite(CloseApplication)
        exchange = site.send("POST", "/000/c/xhr_streaming", version="HTTP/1.0",
                             headers={"Connection": "Keep-Alive"})
        data = exchange.transport.value()
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertNotIn(b"transfer-encoding", head.lower())
        self.assertNotIn(b"content-length", head.lower())
        self.assertEqual(body, PRELUDE + b'o\nc[3000,"Go away!"]\n')
        self.assertTrue(exchange.transport.disconnecting)

    def test_eventsource(self):
        """
        C{eventsource} sends a blank line, then C{data:} events.
        """
        site = SockJSSite()
        stream = site.send("GET", "/000/e/eventsource")
        response = stream.response()
        self.assertEqual(response.header("content-type"), "text/event-stream; charset=UTF-8")
        self.assertEqual(response.header("cache-control"), _NO_CACHE)
        self.assertEqual(response.body, b"\r\ndata: o\r\n\r\n")
        site.fetch("POST", "/000/e/xhr_send", rb'["  \u0000\n\r "]')
        self.assertEqual(stream.response().body, b'\r\ndata: o\r\n\r\ndata: a["  \\u0000\\n\\r "]\r\n\r\n')

    def test_htmlfile(self):
        """
        C{htmlfile} sends the padded page calling the callback, then a
        script per frame; without a valid callback it gets 500.
        """
        site = SockJSSite()
        stream = site.send("GET", "/000/h/htmlfile?c=%63allback")
        response = stream.response()
        self.assertEqual(response.header("content-type"), "text/html; charset=UTF-8")
        self.assertGreater(len(response.body), 1024)
        self.assertIn(b"var c = parent.callback;", response.body)
        self.assertTrue(response.body.endswith(b'<script>\np("o");\n</script>\r\n'))
        site.fetch("POST", "/000/h/xhr_send", b'["x"]')
        self.assertTrue(stream.response().body.endswith(b'<script>\np("a[\\"x\\"]");\n</script>\r\n'))
        response = site.fetch("GET", "/a/a/htmlfile")
        self.assertEqual((response.status, response.body), (500, b'"callback" parameter required'))
        response = site.fetch("GET", "/a/a/htmlfile?c=alert(1)")
        self.assertEqual((response.status, response.body), (500, b'invalid "callback" parameter'))


class JsonpTests(SynchronousTestCase):
    """
    Tests for C{jsonp} and C{jsonp_send}.
    """

    def test_transport(self):
        """
        C{jsonp} calls the callback with each frame; C{jsonp_send} takes a
        form field C{d} or a raw body and answers C{ok}.
        """
        site = SockJSSite()
        response = site.fetch("GET", "/000/p/jsonp?c=%63allback")
        self.assertEqual(response.body, b'callback("o");\r\n')
        self.assertEqual(response.header("content-type"), "application/javascript; charset=UTF-8")
        self.assertEqual(response.header("cache-control"), _NO_CACHE)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        sent = site.fetch("POST", "/000/p/jsonp_send", b"d=%5B%22x%22%5D", headers=form)
        self.assertEqual((sent.status, sent.body), (200, b"ok"))
        self.assertEqual(sent.header("content-type"), "text/plain; charset=UTF-8")
        sent = site.fetch("POST", "/000/p/jsonp_send", b'["%61bc"]', headers={"Content-Type": "text/plain"})
        self.assertEqual(sent.body, b"ok")
        sent = site.fetch("POST", "/000/p/jsonp_send", b"d=%5B%22caf%C3%A9%22%5D", headers=form)
        self.assertEqual(sent.body, b"ok")
        self.assertEqual(
            site.fetch("GET", "/000/p/jsonp?c=x").body,
            'x("a[\\"x\\",\\"%61bc\\",\\"caf\u00e9\\"]");\r\n'.encode("utf-8"),
        )

    def test_invalid(self):
        """
        A missing callback, an empty or broken payload get 500.
        """
        site = SockJSSite()
        self.assertEqual(site.fetch("GET", "/a/a/jsonp").status, 500)
        site.fetch("GET", "/000/p/jsonp?c=x")
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for body in (b"", b"d=", b"p=p"):
            response = site.fetch("POST", "/000/p/jsonp_send", body, headers=form)
            self.assertEqual((response.status, response.body), (500, b"Payload expected."))
        response = site.fetch("POST", "/000/p/jsonp_send", b"d=%5B%22x", headers=form)
        self.assertEqual((response.status, response.body), (500, b"Broken JSON encoding."))

    def test_close(self):
        """
        A closed session's polls get the close frame as a callback.
        """
        site = SockJSSite(CloseApplication)
        self.assertEqual(site.fetch("GET", "/000/c/jsonp?c=x").body, b'x("o");\r\n')
        self.assertEqual(site.fetch("GET", "/000/c/jsonp?c=x").body, b'x("c[3000,\\"Go away!\\"]");\r\n')


class WebSocketHTTPTests(SynchronousTestCase):
    """
    Tests for what the C{websocket} URLs answer to plain HTTP.
    """

    def test_errors(self):
        """
        A plain GET gets 400 naming the Upgrade; a wrong Connection header
        400; another method 405 with C{Allow} and no body or type.
        """
        site = SockJSSite()
        response = site.fetch("GET", "/0/0/websocket")
        self.assertEqual((response.status, response.body), (400, b'Can "Upgrade" only to "WebSocket".'))
        response = site.fetch("GET", "/0/0/websocket", headers={"Upgrade": "WebSocket", "Connection": "close"})
        self.assertEqual((response.status, response.body), (400, b'"Connection" must be "Upgrade".'))
        for headers in ({"Upgrade": "WebSocket", "Connection": "Upgrade"}, {}):
            response = site.fetch("POST", "/0/0/websocket", headers=headers)
            self.assertEqual((response.status, response.body, response.header("allow")), (405, b"", "GET"))
            self.assertIsNone(response.header("content-type"))

    def test_upgrade(self):
        """
        A WebSocket upgrade of C{/SERVER/SESSION/websocket} and of
        C{/websocket} is answered 101 (the headers of RFC 6455), also with
        C{Connection: keep-alive, Upgrade}.
        """
        site = SockJSSite()
        for path, connection in (("/000/w/websocket", "Upgrade"), ("/websocket", "keep-alive, Upgrade")):
            exchange = site.send("GET", path, headers={
                "Upgrade": "websocket",
                "Connection": connection,
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "x3JJHMbDL1EzLkh9GBhXDw==",
            })
            data = exchange.transport.value()
            self.assertTrue(data.startswith(b"HTTP/1.1 101 "), data)
            self.assertIn(b"Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=", data)
            self.assertNotIn(b"content-length", data.lower())
            if path != "/websocket":
                # The open frame follows as a text message.
                self.assertTrue(data.endswith(b"\x81\x01o"), data[-20:])
            else:
                self.assertTrue(re.search(rb"\r\n\r\n$", data), data[-20:])


class NegotiationTests(SynchronousTestCase):
    """
    Tests for an application's C{requestReceived} answering later.
    """

    def openLater(self) -> tuple[SockJSSite, Any, list[Deferred]]:
        """
        Open a session over C{xhr} on a site whose application's
        C{requestReceived} returns a new L{Deferred} each time.

        @return: the site, the opening poll, and the Deferreds returned.
        """
        answers: list[Deferred] = []

        class Later(RecordingApplication):
            def requestReceived(self, request):
                answers.append(Deferred())
                return answers[-1]

        site = SockJSSite(Later)
        return site, site.send("POST", "/000/d/xhr"), answers

    def test_deferredAccept(self):
        """
        Until the Deferred C{requestReceived} returned fires, the opening
        poll waits; then it gets C{o}.
        """
        site, poll, answers = self.openLater()
        self.assertIsNone(poll.response().status)
        answers[0].callback(None)
        self.assertEqual(poll.response().body, b"o\n")

    def test_deferredReject(self):
        """
        A Deferred failing with L{Reject} refuses the session with its
        status; no session is kept.
        """
        site, poll, answers = self.openLater()
        answers[0].errback(Reject(401, "who are you"))
        response = poll.response()
        self.assertEqual((response.status, response.body), (401, b"who are you"))
        self.assertEqual(site.resource.sessions, {})


class HTTPVersionTests(SynchronousTestCase):
    """
    Tests for the HTTP/1.0 and HTTP/1.1 connection rules.
    """

    def test_http10(self):
        """
        Over HTTP/1.0 the greeting has a length and is not chunked.
        """
        exchange = SockJSSite().send("GET", "", version="HTTP/1.0", headers={"Connection": "Keep-Alive"})
        response = exchange.response()
        self.assertEqual((response.status, response.body), (200, b"Welcome to SockJS!\n"))
        self.assertEqual(response.header("content-length"), "19")
        self.assertIsNone(response.header("transfer-encoding"))

    def test_http11KeepAlive(self):
        """
        Over HTTP/1.1 the connection stays open for the next request.
        """
        site = SockJSSite()
        exchange = site.send("GET", "")
        self.assertFalse(exchange.transport.disconnecting)
        exchange.transport.clear()
        exchange.channel.dataReceived(b"GET /echo/info HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(exchange.response().status, 200)


class ShutdownTests(SynchronousTestCase):
    """
    Tests for L{SockJSResource.shutdown}.
    """

    def setUp(self):
        RecordingApplication.instances.clear()

    def test_streamingToldAtOnce(self):
        """
        A session with a stream attached gets C{c[1001,"going away"]} at
        once, is forgotten, and the shutdown is over.
        """
        site = SockJSSite(RecordingApplication)
        stream = site.send("POST", "/000/s/xhr_streaming")
        done = site.resource.shutdown(grace=10)
        self.assertTrue(stream.response().body.endswith(b'o\nc[1001,"going away"]\n'))
        self.assertEqual(RecordingApplication.instances[0].events[-1], ("lost", 1001, "going away", True))
        self.assertEqual(site.resource.sessions, {})
        self.assertIsNone(self.successResultOf(done))

    def test_pollerToldAtNextPoll(self):
        """
        A polled session gets the close frame at its next poll; the
        shutdown waits for it.
        """
        site = SockJSSite(RecordingApplication)
        _opened(site)
        done = site.resource.shutdown(grace=10)
        self.assertNoResult(done)
        self.assertEqual(site.fetch("POST", "/000/s1/xhr").body, b'c[1001,"going away"]\n')
        self.assertIsNone(self.successResultOf(done))

    def test_graceDrops(self):
        """
        After the grace period, what is left is dropped.
        """
        site = SockJSSite(RecordingApplication)
        _opened(site)
        done = site.resource.shutdown(grace=3)
        site.clock.advance(2.9)
        self.assertNoResult(done)
        site.clock.advance(0.1)
        self.assertIsNone(self.successResultOf(done))
        self.assertEqual(RecordingApplication.instances[0].events[-1], ("lost", 1001, "going away", False))

    def test_nothingOpen(self):
        """
        With no session or connection open, the shutdown is over at once.
        """
        self.assertIsNone(self.successResultOf(SockJSSite().resource.shutdown()))
