# -*- test-case-name: tests.test_cli -*-
"""
C{python -m wsproto_tw URL} (installed as C{wsproto-tw}): a command-line
WebSocket client in the manner of C{wscat}.

Each line read from standard input is sent as a text message; each message
received is printed on standard output, text as it is, binary as
C{<binary N bytes: HEX...>}. On a terminal (or with C{--commands}) lines
starting with C{/} are commands (L{COMMANDS}): C{/binary HEX}, C{/ping},
C{/close CODE REASON}. At the end of input the client waits for the server
to catch up (it sends a ping and waits for the pong, then until no message
has arrived for C{--wait} seconds), closes with 1000, and prints the close
code and reason on standard error. Ctrl-C and SIGTERM close with 1000 too.

Standard input is read by the reactor (L{StandardIO
<twisted.internet.stdio.StandardIO>}), never by a thread, so the process
can end whenever the session does, with its input still open.

Exit status: 0 after a clean close with 1000, 1001 or no code, or with the
code of the user's own C{/close}; 1 after any other close or a failed
connection (with a one-line C{error: ...} on standard error); 2 for bad
arguments.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.python import usage
from zope.interface import implementer

from wsproto_tw.server import WebSocketApplication
from wsproto_tw.core.handshake import split_url
from wsproto_tw.options import ConfigOptions, seconds

__all__ = ["Options", "describeError", "escapeControl", "main"]

# The ping payload that marks the end of input.
_EOF_PING = b"wsproto-tw eof"
# Bytes of a binary message shown in hex.
_HEX_SHOWN = 32


# C0 controls, DEL and C1 controls: what a terminal may act on (ECMA-48).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def escapeControl(text: str) -> str:
    """
    Make what a server sent safe to print on a terminal.

    @param text: a string the server chose (a reason phrase, a response
        body, a close reason, a text message).
    @return: C{text} with each C0 control, DEL and C1 control written as
        a C{\\xNN} escape, so that no escape sequence reaches the terminal.
    """
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def formatBinary(data: bytes) -> str:
    """
    @return: the one-line summary printed for a binary message.
    """
    shown = data[:_HEX_SHOWN].hex()
    more = "..." if len(data) > _HEX_SHOWN else ""
    return f"<binary {len(data)} bytes: {shown}{more}>" if data else "<binary 0 bytes>"


def describeError(
    error: BaseException, host: str = "", port: int = 0, secure: bool = False, certificateNames: list[str] | None = None
) -> str:
    """
    Say in one line why a connection could not be opened, and what to do
    about it where we can tell.

    @param error: the exception the connection's L{Deferred} failed with.
    @param host: the server's host name, for the message.
    @param port: the server's port, for the message.
    @param secure: whether the URL was C{wss://}.
    @param certificateNames: the names the server's certificate is for,
        if known, for a certificate that is not for C{host}.
    """
    from twisted.internet import error as neterror

    from wsproto_tw.core.errors import NotWebSocketServer
    from wsproto_tw.errors import HandshakeRejected, HandshakeTimeout
    from wsproto_tw.proxy import ProxyUnreachable

    if isinstance(error, ProxyUnreachable):
        proxyHost, _, proxyPort = error.proxy.rpartition(":")
        return "proxy: " + describeError(error.reason, proxyHost.strip("[]"), int(proxyPort) if proxyPort.isdigit() else 0)
    where = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") if host else "the server"
    if isinstance(error, NotWebSocketServer):
        text = error.reason
    elif isinstance(error, HandshakeRejected):
        text = _describeRejection(error)
        if not secure and not error.status and error.reason == _CLOSED_EARLY:
            text += " (if the port speaks TLS, use wss://)"
    elif isinstance(error, HandshakeTimeout):
        text = f"{error}"
        if secure and "while connecting" not in text and "server's settings" not in text:
            # (Timed out while connecting, TLS had not begun; or waiting
            # for HTTP/2's settings, TLS had finished.)
            text += " (if the port does not speak TLS, the TLS handshake never ends: try ws://)"
    elif isinstance(error, ImportError) and _TLS_MODULES.intersection((error.name or "").split(".")[:1]):
        text = TLS_MISSING
    elif isinstance(error, neterror.ConnectionRefusedError):
        text = f"connection refused by {where}"
    elif isinstance(error, neterror.DNSLookupError):
        text = f"can't resolve {host or 'the host name'}"
    elif isinstance(error, neterror.TimeoutError):
        text = f"connecting to {where} timed out"
    elif isinstance(error, neterror.ConnectionDone):
        text = f"{where} closed the connection"
    elif type(error).__name__ == "VerificationError" and _isTLSError(error):
        text = f"TLS failure: the certificate is not for {host or 'this host'}"
        if certificateNames:
            text += f" but for {', '.join(certificateNames)}"
    elif type(error).__name__ == "CertificateError" and _isTLSError(error):
        # service_identity's: the certificate names no host at all (no
        # subjectAltName), or is malformed; or the client's own: its
        # subjectAltName names no host that can be matched.
        said = str(error)
        if said.startswith(_CERTIFICATES):
            why = "its " + said[len(_CERTIFICATES) :]
        elif "subjectAltName" in said:
            why = "it names no host (no subjectAltName; a certificate's common name is not used)"
        else:
            why = said or "it is malformed"
        text = f"TLS failure: the certificate is not for {host or 'this host'}: {why}"
    elif _isTLSError(error):
        reason = _tlsReason(error)
        text = f"TLS failure: {reason}"
        if reason == "certificate verify failed":
            text += f" ({_UNVERIFIED})"
        else:
            hint = _verifyHint(reason)
            if hint:
                text += f" ({hint})"
        if any(sign in reason for sign in _NOT_TLS):
            text += f" (the server does not speak TLS on port {port}: try ws://)" if port else " (try ws://)"
    else:
        text = str(error) or type(error).__name__
    # The server chose much of this (reason phrase, body, Location).
    return escapeControl(" ".join(text.split()))


#: What C{wss://} needs without the C{tls} extra.
TLS_MISSING = "wss:// needs TLS support, which is not installed: pip install 'wsproto_tw[tls]' (from a checkout: pip install '.[tls]')"
# The top-level modules of the tls extra.
_TLS_MODULES = frozenset(("OpenSSL", "service_identity", "idna", "cryptography"))
# What OpenSSL says when the server answers a ClientHello with plain text.
_NOT_TLS = ("wrong version number", "packet length too long", "unknown protocol", "record layer failure", "http request")
# What the client core says when the server closes without answering.
_CLOSED_EARLY = "connection closed before the handshake response"
# Characters of the server's reason shown.
_REASON_SHOWN = 200


def _describeRejection(error: Any) -> str:
    """
    @return: what a refused handshake says: its status line and the first
        line of its body for an error, a redirect's target, or that the
        server is not a WebSocket server at all.
    """
    if not error.status or error.status == 101:
        return f"invalid handshake response: {error.reason}"
    status = f"{error.status} {error.reason}".strip()
    headers = {name.lower(): value for name, value in error.headers}
    if 300 <= error.status < 400 and "location" in headers:
        return f"{status}: redirected to {headers['location']} (not followed)"
    if error.status < 400:
        return f"{status}: not a websocket server (it answered as to a plain web request, not with 101)"
    said = _firstLine(error.body, headers.get("content-type", ""))
    if said and said.lower() != error.reason.lower():
        return f"{status}: {said}"
    return status


def _firstLine(body: bytes, contentType: str) -> str:
    """
    @return: the first line of text in a response body (of an HTML page,
        its title or first heading), at most L{_REASON_SHOWN} characters.
    """
    import html
    import re

    text = body.decode("utf-8", "replace")
    if "html" in contentType.lower() or text.lstrip().startswith("<"):
        found = re.search(r"<(title|h1)[^>]*>(.*?)</\1\s*>", text, re.IGNORECASE | re.DOTALL)
        text = html.unescape(re.sub(r"<[^>]*>", " ", found.group(2) if found else text))
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= _REASON_SHOWN else line[:_REASON_SHOWN] + "..."
    return ""


def certificateNames(host: str, port: int, timeout: float = 5.0) -> list[str]:
    """
    Ask the server directly which names its certificate is for, without
    verifying it (to explain a certificate that is for another name).

    @return: the certificate's DNS names and IP addresses (its common name
        if it has neither), or nothing if they can't be had.
    """
    import ipaddress
    import socket
    import ssl

    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            ipaddress.ip_address(host)
            serverName = None
        except ValueError:
            serverName = host
        with socket.create_connection((host, port), timeout) as sock:
            with context.wrap_socket(sock, server_hostname=serverName) as tls:
                der = tls.getpeercert(binary_form=True)
        certificate = x509.load_der_x509_certificate(der)
        try:
            alternatives = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = alternatives.get_values_for_type(x509.DNSName)
            names += [str(a) for a in alternatives.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            names = []
        if not names:
            names = [str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        return names
    except Exception:
        return []


def _isTLSError(error: BaseException) -> bool:
    module = type(error).__module__
    return module.startswith("OpenSSL") or module.startswith("service_identity")


# What OpenSSL's "certificate verify failed" can mean, for the one line,
# when it does not say (our client's own check says which failed).
_UNVERIFIED = "not signed by a CA this client trusts (--cafile names one), expired or not yet valid"

# What the client's CertificateError about a subjectAltName starts with.
_CERTIFICATES = "the certificate's "

# The hints for a certificate that fails verification, by OpenSSL's verify
# error code (X509_V_ERR_*): the chain leads to no CA this client trusts
# (no issuer found, a self-signed certificate, "certificate not trusted");
# or it leads to a trusted certificate that is not self-signed, which
# OpenSSL does not accept as a trust anchor ("unable to get issuer
# certificate", e.g. of an intermediate CA named by --cafile).
_NOT_TRUSTED = "not signed by a CA this client trusts: --cafile names one"
_NOT_ROOT = (
    "the chain reaches a certificate this client trusts that is not a root CA: --cafile must name the root CA"
    " (self-signed) the chain ends at, not an intermediate CA"
)
_VERIFY_HINTS = {
    2: _NOT_ROOT,  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    18: _NOT_TRUSTED,  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19: _NOT_TRUSTED,  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    20: _NOT_TRUSTED,  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: _NOT_TRUSTED,  # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
    27: _NOT_TRUSTED,  # X509_V_ERR_CERT_UNTRUSTED
}


def _verifyHint(reason: str) -> str:
    """
    @param reason: a TLS failure's reason, e.g. C{"certificate verify
        failed: self-signed certificate"}, perhaps followed by which
        certificate of the chain failed, in parentheses.
    @return: the hint for it, or C{""}.
    """
    from wsproto_tw.client import _VERIFY_FAILED, _verifyReason

    if not reason.startswith(_VERIFY_FAILED):
        return ""
    why = reason[len(_VERIFY_FAILED) :]
    for errno, hint in _VERIFY_HINTS.items():
        text = _verifyReason(errno)
        if why == text or why.startswith(text + " ("):
            return hint
    return ""


def _tlsReason(error: BaseException) -> str:
    args = error.args[0] if error.args else None
    if isinstance(args, list) and args and all(isinstance(a, tuple) for a in args):
        # OpenSSL's error queue: (library, function, reason) triples.
        return "; ".join(str(a[-1]) for a in args if a and a[-1]) or str(error)
    return str(error) or type(error).__name__


class _Printer(WebSocketApplication):
    """
    Prints what arrives and, after the end of input, closes once the server
    has caught up.
    """

    def __init__(self, session: _Session) -> None:
        self._session = session

    def textMessageReceived(self, text: str) -> None:
        self._session.show(escapeControl(text) if self._session.escapeText else text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self._session.show(formatBinary(data))

    def pongReceived(self, payload: bytes) -> None:
        self._session.pongReceived(payload)

    def connectionLost(self, reason: Any) -> None:
        self._session.closed(reason.value)


class _Output:
    """
    Writes whole lines to standard output and standard error.

    L{StandardIO} makes standard input non-blocking, and on a terminal
    standard output and error share its mode; so each line is written with
    C{os.write}, waiting for room whenever the descriptor is full, and in
    order with everything written before it.
    """

    def __init__(self, stdout: int, stderr: int, encoding: str) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._encoding = encoding

    def out(self, line: str) -> None:
        self._write(self._stdout, line)

    def err(self, line: str) -> None:
        self._write(self._stderr, line)

    def _write(self, fd: int, line: str) -> None:
        # A terminal that can't show some characters gets escapes.
        view = memoryview((line + "\n").encode(self._encoding, "backslashreplace"))
        try:
            while view:
                try:
                    view = view[os.write(fd, view):]
                except BlockingIOError:
                    select.select([], [fd], [])
        except OSError:
            pass  # the reader went away


@implementer(IHalfCloseableProtocol)
class _StandardInput(Protocol):
    """
    Standard input, read by the reactor through L{StandardIO} (no thread):
    hands each line to the session, and the end of input once it is closed.
    """

    def __init__(self, session: _Session) -> None:
        self._session = session
        self._partial = b""

    def dataReceived(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._session.lineReceived(line)

    def readConnectionLost(self) -> None:
        if self._partial:
            line, self._partial = self._partial, b""
            self._session.lineReceived(line)
        self._session.inputEnded()

    def writeConnectionLost(self) -> None:
        pass  # standard output is written by _Output

    def connectionLost(self, reason: Any = None) -> None:
        pass  # the reactor is stopping


#: The commands understood in interactive mode (or with C{--commands}).
COMMANDS = """\
/binary HEX            send a binary message, e.g. /binary 00ff10 (spaces allowed)
/ping [TEXT]           send a ping; the pong is shown on standard error
/close [CODE [REASON]] close with CODE (default 1000), e.g. /close 4000 bye
/help                  show this list
//TEXT                 send /TEXT as a text message"""


class _Session:
    """
    One run of the command: connect, pump lines, report the end.

    @ivar status: the exit status once the reactor has stopped.
    @ivar secure: whether the URL is C{wss://}.
    @ivar escapeText: whether text messages are printed with their control
        characters escaped (L{escapeControl}): when standard output is a
        terminal.
    @ivar lookUpNames: asks a server directly which names its certificate
        is for (L{certificateNames}), or L{None} when it can't be reached
        directly (through a proxy).
    """

    secure = False
    lookUpNames: Callable[[str, int], list[str]] | None = None
    escapeText = False

    def __init__(
        self,
        reactor: Any,
        output: _Output,
        wait: float,
        interactive: bool,
        commands: bool,
        standardIO: Callable[[Any], Any],
    ) -> None:
        self._reactor = reactor
        self._output = output
        self._wait = wait
        self._interactive = interactive
        self._commands = commands
        self._standardIO = standardIO
        self._transport: Any = None
        self._open = False
        self._ended = False
        self._caughtUp = False
        self._closeSent: int | None = None
        self._quiet: Any = None
        self._giveUp: Any = None
        self._lost: Any = None
        self.status = 1

    # -- output ------------------------------------------------------------

    def show(self, line: str) -> None:
        prefix = "< " if self._interactive else ""
        self._output.out(prefix + line)
        if self._caughtUp:
            self._armQuiet()

    def _say(self, line: str) -> None:
        self._output.err(line)

    # -- the connection ----------------------------------------------------

    def opened(self, transport: Any) -> None:
        self._transport = transport
        self._open = True
        if self._interactive:
            chosen = f" (subprotocol {transport.subprotocol})" if transport.subprotocol else ""
            self._say(f"connected{chosen}; type lines to send, /help for commands, Ctrl-D to close")
        self._standardIO(_StandardInput(self))

    def failed(self, error: BaseException, host: str, port: int) -> None:
        names = None
        if self.lookUpNames is not None and type(error).__name__ == "VerificationError":
            names = self.lookUpNames(host, port)
        self._say(f"error: {describeError(error, host, port, self.secure, names)}")
        self.status = 1
        self._stop()

    def closed(self, closed: Any) -> None:
        self._open = False
        self._cancelTimers()
        if self._lost is not None:
            lost, self._lost = self._lost, None
            lost.callback(None)
        reason = f" {escapeControl(closed.reason)}" if closed.reason else ""
        self._say(f"closed: {closed.code}{reason}{'' if closed.wasClean else ' (not clean)'}")
        expected = (1000, 1001, 1005) if self._closeSent is None else (self._closeSent, 1005)
        self.status = 0 if closed.wasClean and closed.code in expected else 1
        self._stop()

    def _stop(self) -> None:
        from twisted.internet.error import ReactorNotRunning

        try:
            self._reactor.stop()
        except ReactorNotRunning:
            pass  # already stopping (Ctrl-C, SIGTERM)

    def _close(self, code: int = 1000, reason: str = "") -> None:
        if self._transport is not None and self._open and self._closeSent is None:
            self._transport.close(code, reason)
            self._closeSent = code
        self._cancelTimers()

    # -- input ---------------------------------------------------------------

    def lineReceived(self, line: bytes) -> None:
        if self._transport is None or self._ended or not self._open:
            return
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        if self._commands and text.startswith("/"):
            if text.startswith("//"):
                text = text[1:]
            else:
                self._command(text)
                return
        self._transport.sendText(text)

    def _command(self, line: str) -> None:
        """
        Carry out one of L{COMMANDS}; a wrong one is reported on standard
        error and changes nothing.
        """
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name == "/binary":
            try:
                data = bytes.fromhex(argument)
            except ValueError:
                self._say(f"error: /binary takes hex digits, e.g. /binary 00ff10, not {argument!r}")
                return
            self._transport.sendBinary(data)
        elif name == "/ping":
            payload = argument.encode("utf-8")
            if len(payload) > 125:
                self._say("error: /ping takes at most 125 bytes (RFC 6455 §5.5)")
                return
            self._transport.ping(payload)
        elif name == "/close":
            code, _, reason = argument.partition(" ")
            try:
                self._close(int(code) if code else 1000, reason.strip())
            except ValueError as exc:
                self._say(f"error: /close {argument}: {exc}")
        elif name == "/help":
            self._say(COMMANDS)
        else:
            self._say(f"error: unknown command {name}; /help lists them, //TEXT sends /TEXT")

    def pongReceived(self, payload: bytes) -> None:
        if payload == _EOF_PING:
            if self._ended:
                self._caughtUp = True
                self._armQuiet()
            return
        shown = escapeControl(payload.decode("utf-8", "replace"))
        self._say(f"pong: {shown}" if shown else "pong")

    def inputEnded(self) -> None:
        if self._transport is None or self._ended or not self._open:
            return
        self._ended = True
        # The pong comes after the server has handled every earlier message.
        self._transport.ping(_EOF_PING)
        self._giveUp = self._reactor.callLater(max(10.0, self._wait), self._close)

    def _armQuiet(self) -> None:
        if self._quiet is not None and self._quiet.active():
            self._quiet.cancel()
        self._quiet = self._reactor.callLater(self._wait, self._close)

    def _cancelTimers(self) -> None:
        for call in (self._quiet, self._giveUp):
            if call is not None and call.active():
                call.cancel()
        self._quiet = self._giveUp = None

    def shutdown(self) -> Any:
        """
        Before the reactor stops (Ctrl-C, SIGTERM): close the connection,
        waiting a little for the closing handshake.
        """
        from twisted.internet.defer import Deferred

        if not self._open or self._lost is not None:
            return None
        self._lost = Deferred()
        if self._closeSent is None:
            self._close(1000)
        self._lost.addTimeout(2, self._reactor)
        self._lost.addErrback(lambda f: None)
        return self._lost


class _ReconnectingSession(_Session):
    """
    A L{_Session} for C{--reconnect}: a connection lost before the end of
    input (and not closed with C{/close}) is replaced by L{service}; lines
    read meanwhile, and the end of input, wait for the next connection.

    @ivar service: the L{ReconnectingClientService
        <wsproto_tw.reconnect.ReconnectingClientService>} keeping the
        connection.
    """

    service: Any = None
    #: The server's host and port, for error messages.
    where: tuple[str, int] = ("", 0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading = False
        self._waiting: list[bytes] = []
        self._inputDone = False

    def opened(self, transport: Any) -> None:
        if not self._reading:
            self._reading = True
            super().opened(transport)
            return
        self._transport = transport
        self._open = True
        self._say("reconnected")
        waiting, self._waiting = self._waiting, []
        for line in waiting:
            super().lineReceived(line)
        if self._inputDone:
            super().inputEnded()

    def lineReceived(self, line: bytes) -> None:
        if not self._open:
            self._waiting.append(line)
            return
        super().lineReceived(line)

    def inputEnded(self) -> None:
        self._inputDone = True
        if self._open:
            super().inputEnded()

    def closed(self, closed: Any) -> None:
        if self._ended or self._closeSent is not None or not self.service.running:
            self.service.stopService()
            super().closed(closed)
            return
        self._open = False
        self._transport = None
        reason = f" {escapeControl(closed.reason)}" if closed.reason else ""
        self._say(f"closed: {closed.code}{reason}{'' if closed.wasClean else ' (not clean)'}; reconnecting")
        self.service.whenConnected().addCallbacks(self.opened, self._gaveUp)

    def _gaveUp(self, failure: Any) -> None:
        from twisted.internet.defer import CancelledError

        if not failure.check(CancelledError):
            self.failed(failure.value, *self.where)

    def failed(self, error: BaseException, host: str, port: int) -> None:
        if self.service is not None and self.service.running:
            self.service.stopService()
        super().failed(error, host, port)

    def shutdown(self) -> Any:
        """
        Before the reactor stops (Ctrl-C, SIGTERM): stop the service, which
        closes the connection with 1001, waiting a little for the closing
        handshake.
        """
        if self.service is None or not self.service.running:
            return None
        stopped = self.service.stopService()
        stopped.addTimeout(2, self._reactor)
        stopped.addErrback(lambda f: None)
        return stopped


def _header(value: str) -> tuple[str, str]:
    name, colon, content = value.partition(":")
    name = name.strip()
    if not colon or not name:
        raise usage.UsageError(f"--header: expected 'Name: value', got {value!r}")
    return name, content.strip()


class Options(ConfigOptions):
    """
    The options of C{wsproto-tw}: the shared limits, timeouts, keepalive,
    subprotocol and compression options of L{ConfigOptions}, and the
    client's own.
    """

    synopsis = "Usage: wsproto-tw [options] URL  (or: python -m wsproto_tw [options] URL)"
    longdesc = (
        "Connect to a WebSocket server (URL: ws://host[:port]/path or wss://...), send each line of "
        "standard input as a text message and print each message received. "
        "0 turns a limit or timeout off (--close-timeout and --max-write-buffer must be positive). "
        "Ctrl-D (end of input), Ctrl-C or SIGTERM closes with 1000. "
        "Exit status: 0 after a clean close with 1000, 1001 or no code (or with the code of your own "
        "/close); 1 after any other close or a failed connection; 2 for bad arguments."
    )
    optFlags = [
        ["insecure", None, "wss: don't verify the server's certificate."],
        ["commands", None, "Understand /binary, /ping, /close and /help lines when standard input is not a "
         "terminal too (on a terminal they always are)."],
        ["no-proxy", None, "Connect directly, whatever https_proxy, http_proxy and no_proxy say."],
        ["reconnect", None, "Reconnect when the connection is lost or can't be opened, with backoff (1 s "
         "doubling up to 60 s, with jitter); give up on a 4xx refusal. Lines read meanwhile wait for the "
         "next connection."],
    ]
    optParameters = [
        ["origin", "o", None, "Send this Origin header."],
        ["cafile", None, None, "wss: trust the CA certificates in this PEM file instead of the system's."],
        ["proxy", None, None, "Go through this HTTP proxy with CONNECT: http://[user:password@]host[:port]. "
         "Default: https_proxy (wss) or http_proxy (ws), unless the host is in no_proxy or loopback."],
        ["wait", None, 0.5, "At end of input, close once no message arrived for this many seconds.", seconds("wait")],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["header"] = []

    opt_s = ConfigOptions.opt_subprotocol

    def opt_header(self, value: str) -> None:
        """
        Add a request header, 'Name: value' (repeatable).
        """
        self["header"].append(_header(value))

    opt_H = opt_header

    def opt_help(self) -> None:
        """
        Display this help and exit.
        """
        super().opt_help()

    opt_h = opt_help

    def getUsage(self, width: int | None = None) -> str:
        """
        @return: the help text: the options, then the commands.
        """
        return f"{super().getUsage(width)}\nCommands (on a terminal, or with --commands):\n{COMMANDS}\n"

    def parseArgs(self, url: str) -> None:
        self["url"] = url

    def postOptions(self) -> None:
        try:
            self["server"] = split_url(self["url"])
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None
        if self["insecure"] and self["cafile"]:
            raise usage.UsageError("--insecure and --cafile exclude each other")
        if self["proxy"] is not None:
            from wsproto_tw.proxy import parseProxyURL

            if self["no-proxy"]:
                raise usage.UsageError("--proxy and --no-proxy exclude each other")
            try:
                parseProxyURL(self["proxy"])
            except ValueError as exc:
                raise usage.UsageError(f"--proxy: {exc}") from None
        super().postOptions()


def main(argv: list[str] | None = None) -> int:
    """
    Run the command-line client.

    @param argv: the arguments, without the program name; C{sys.argv[1:]}
        by default.
    @return: the exit status.
    """
    options = Options()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
        config = options.config()
    except usage.UsageError as exc:
        print(f"{options.synopsis}\nwsproto-tw: error: {exc}", file=sys.stderr)
        return 2
    secure, host, port, _hostHeader, _target = options["server"]
    if secure and not _tlsInstalled():
        print(f"error: {TLS_MISSING}", file=sys.stderr)
        return 1
    trustRoot = None
    if options["cafile"]:
        from wsproto_tw.client import loadTrustRoot

        try:
            trustRoot = loadTrustRoot(options["cafile"])
        except OSError as exc:
            print(f"error: --cafile {options['cafile']}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"error: --cafile: {exc}", file=sys.stderr)
            return 2

    from twisted.internet import reactor

    from wsproto_tw.client import connect

    from twisted.internet.stdio import StandardIO

    interactive = sys.stdin.isatty()
    proxy = False if options["no-proxy"] else options["proxy"]
    sessionClass = _ReconnectingSession if options["reconnect"] else _Session
    session = sessionClass(
        reactor,
        _Output(sys.stdout.fileno(), sys.stderr.fileno(), sys.stdout.encoding or "utf-8"),
        wait=options["wait"],
        interactive=interactive,
        commands=interactive or options["commands"],
        standardIO=lambda protocol: StandardIO(protocol, reactor=reactor),
    )
    session.secure = secure
    # On a terminal a text message can't carry escape sequences to it;
    # piped, it stays byte-exact for scripts.
    session.escapeText = sys.stdout.isatty()
    if secure and proxy is not False:
        from wsproto_tw.proxy import proxyFor

        try:
            direct = proxyFor(secure, host, port, proxy, None) is None
        except ValueError:
            direct = False
    else:
        direct = secure
    if direct:
        session.lookUpNames = certificateNames

    # What connect() and the reconnecting service are both given.
    connectOptions: dict[str, Any] = dict(
        config=config,
        origin=options["origin"],
        headers=options["header"],
        reactor=reactor,
        trustRoot=trustRoot,
        insecure=options["insecure"],
        proxy=proxy,
    )

    def start() -> None:
        if options["reconnect"]:
            from wsproto_tw.reconnect import ReconnectingClientService

            try:
                session.service = ReconnectingClientService(
                    options["url"], lambda: _Printer(session), **connectOptions
                )
            except Exception as exc:
                session.failed(exc, host, port)
                return
            session.where = (host, port)
            session.service.startService()
            d = session.service.whenConnected()
            # Stopped before it ever connected (Ctrl-C, SIGTERM): not an error.
            d.addCallbacks(session.opened, session._gaveUp)
            return
        try:
            d = connect(options["url"], lambda: _Printer(session), **connectOptions)
        except Exception as exc:
            session.failed(exc, host, port)
            return
        d.addCallbacks(session.opened, lambda f: session.failed(f.value, host, port))

    reactor.addSystemEventTrigger("before", "shutdown", session.shutdown)
    reactor.callWhenRunning(start)
    flags = _descriptorFlags()
    try:
        reactor.run()
    finally:
        # StandardIO leaves standard input non-blocking (and with it a
        # terminal's output): give the shell back what it had.
        _restoreFlags(flags)
    return session.status


def _tlsInstalled() -> bool:
    """
    @return: whether the C{tls} extra (pyOpenSSL, service_identity) can be
        imported.
    """
    try:
        import OpenSSL  # noqa: F401
        import service_identity  # noqa: F401
    except ImportError:
        return False
    return True


def _descriptorFlags() -> dict[int, int]:
    """
    @return: the file status flags of standard input, output and error.
    """
    flags = {}
    for fd in (0, 1, 2):
        try:
            flags[fd] = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            pass  # closed
    return flags


def _restoreFlags(flags: dict[int, int]) -> None:
    """
    Set the file status flags saved by L{_descriptorFlags} back.
    """
    for fd, value in flags.items():
        try:
            fcntl.fcntl(fd, fcntl.F_SETFL, value)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
