"""
Tests for L{wsproto_tw.core.tunnel}: the C{CONNECT} request and the
proxy's answer, as bytes.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from wsproto_tw.core.tunnel import (
    MAX_HEAD,
    ProxyAuthenticationFailed,
    ProxyError,
    ProxyRefused,
    TunnelOpening,
    basic_credentials,
    build_connect,
)


class RequestTests(SynchronousTestCase):
    """
    L{build_connect} writes the RFC 9110 §9.3.6 request.
    """

    def test_request(self) -> None:
        """
        The target and C{Host} are in authority form; an IPv6 host gets
        brackets.
        """
        self.assertEqual(
            build_connect("xn--bcher-kva.example", 443),
            b"CONNECT xn--bcher-kva.example:443 HTTP/1.1\r\nHost: xn--bcher-kva.example:443\r\n\r\n",
        )
        self.assertEqual(build_connect("::1", 80), b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n")

    def test_basicAuthorization(self) -> None:
        """
        Credentials go in C{Proxy-Authorization} as Basic (RFC 7617), the
        user and password encoded as UTF-8.
        """
        self.assertEqual(basic_credentials("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        self.assertEqual(basic_credentials("test", "123\u00a3"), "Basic dGVzdDoxMjPCow==")
        self.assertEqual(
            build_connect("h", 80, basic_credentials("u", "p")),
            b"CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\nProxy-Authorization: Basic dTpw\r\n\r\n",
        )

    def test_refused(self) -> None:
        """
        A host or credentials that would break the request, and a user name
        with a colon, raise L{ValueError}.
        """
        self.assertRaises(ValueError, build_connect, "h\r\nX: y", 80)
        self.assertRaises(ValueError, build_connect, "h h", 80)
        self.assertRaises(ValueError, build_connect, "h", 80, "Basic x\r\nX: y")
        error = self.assertRaises(ValueError, basic_credentials, "a:b", "c")
        self.assertEqual(str(error), "a basic authentication user name has no colon")


class AnswerTests(SynchronousTestCase):
    """
    L{TunnelOpening} reads the proxy's answer.
    """

    def test_established(self) -> None:
        """
        A 2xx answer opens the tunnel, even in pieces; the bytes after the
        head are the first bytes of the tunnel.
        """
        opening = TunnelOpening("h", 443)
        self.assertFalse(opening.receive_data(b"HTTP/1.1 200 Connection established\r\n"))
        self.assertFalse(opening.receive_data(b"Proxy-Agent: x\r\n\r"))
        self.assertTrue(opening.receive_data(b"\n\x16\x03\x01"))
        self.assertEqual(opening.trailing, b"\x16\x03\x01")

    def test_proxyAuthenticationRequired(self) -> None:
        """
        407, or 401 (which only the proxy can send before the tunnel is
        open), raises L{ProxyAuthenticationFailed}, saying whether
        credentials were sent.
        """
        head = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n\r\n"
        error = self.assertRaises(ProxyAuthenticationFailed, TunnelOpening("h", 443).receive_data, head)
        self.assertEqual(error.status, 407)
        self.assertEqual(error.headers, (("Proxy-Authenticate", 'Basic realm="p"'),))
        self.assertEqual(str(error), "proxy authentication failed (proxy needs credentials): 407 Proxy Authentication Required")
        error = self.assertRaises(ProxyAuthenticationFailed, TunnelOpening("h", 443, True).receive_data, head)
        self.assertEqual(str(error), "proxy authentication failed (credentials refused): 407 Proxy Authentication Required")
        error = self.assertRaises(ProxyAuthenticationFailed, TunnelOpening("h", 443, True).receive_data, b"HTTP/1.0 401 Unauthorized\r\n\r\n")
        self.assertEqual(str(error), "proxy authentication failed (credentials refused): 401 Unauthorized")

    def test_refused(self) -> None:
        """
        Another status raises L{ProxyRefused} with it; an empty reason
        phrase is filled in.
        """
        error = self.assertRaises(ProxyRefused, TunnelOpening("h", 443).receive_data, b"HTTP/1.1 403 \r\n\r\n")
        self.assertNotIsInstance(error, ProxyAuthenticationFailed)
        self.assertEqual((error.status, error.reason, error.authority), (403, "Forbidden", "h:443"))
        self.assertEqual(str(error), "proxy refused connect to h:443: 403 Forbidden")

    def test_notHTTP(self) -> None:
        """
        An answer that is not HTTP, or a head longer than L{MAX_HEAD},
        raises L{ProxyError}.
        """
        error = self.assertRaises(ProxyError, TunnelOpening("h", 1).receive_data, b"SSH-2.0-x\r\n\r\n")
        self.assertEqual(str(error), "proxy answered connect with something other than http (malformed response: not an http status line)")
        error = self.assertRaises(ProxyError, TunnelOpening("h", 1).receive_data, b"x" * (MAX_HEAD + 1))
        self.assertEqual(str(error), f"proxy answer head longer than {MAX_HEAD} bytes")

    def test_eof(self) -> None:
        """
        The end of the connection before an answer raises L{ProxyError}.
        """
        opening = TunnelOpening("::1", 8)
        opening.receive_data(b"HTTP/1.1 200")
        error = self.assertRaises(ProxyError, opening.receive_eof)
        self.assertEqual(str(error), "proxy closed the connection before answering connect to [::1]:8")
