# -*- test-case-name: tests.test_cli -*-
"""
C{python -m wsproto_tw URL} (installed as C{wsproto-tw}): a command-line
WebSocket client in the manner of C{wscat}.

Each line read from standard input is sent as a text message; each message
received is printed on standard output, text as it is, binary as
C{<binary N bytes: HEX...>}. At the end of input the client waits for the
server to catch up (it sends a ping and waits for the pong, then until no
message has arrived for C{--wait} seconds), closes with 1000, and prints the
close code and reason on standard error.

Exit status: 0 after a clean close with 1000, 1001 or no code; 1 after any
other close or a failed connection (with a one-line C{error: ...} on
standard error); 2 for bad arguments.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from twisted.python import usage

from wsproto_tw.server import WebSocketApplication
from wsproto_tw.core.handshake import split_url
from wsproto_tw.options import ConfigOptions, seconds

__all__ = ["Options", "describeError", "main"]

# The ping payload that marks the end of input.
_EOF_PING = b"wsproto-tw eof"
# Bytes of a binary message shown in hex.
_HEX_SHOWN = 32


def formatBinary(data: bytes) -> str:
    """
    @return: the one-line summary printed for a binary message.
    """
    shown = data[:_HEX_SHOWN].hex()
    more = "..." if len(data) > _HEX_SHOWN else ""
    return f"<binary {len(data)} bytes: {shown}{more}>" if data else "<binary 0 bytes>"


def describeError(error: BaseException, host: str = "", port: int = 0) -> str:
    """
    Say in one line why a connection could not be opened.

    @param error: the exception the connection's L{Deferred} failed with.
    @param host: the server's host name, for the message.
    @param port: the server's port, for the message.
    """
    from twisted.internet import error as neterror

    from wsproto_tw.errors import HandshakeRejected, HandshakeTimeout

    where = f"{host}:{port}" if host else "the server"
    if isinstance(error, HandshakeRejected):
        if error.status and error.status != 101:
            text = f"{error.status} {error.reason}"
        else:
            text = f"invalid handshake response: {error.reason}"
    elif isinstance(error, HandshakeTimeout):
        text = f"{error}"
    elif isinstance(error, neterror.ConnectionRefusedError):
        text = f"connection refused by {where}"
    elif isinstance(error, neterror.DNSLookupError):
        text = f"can't resolve {host or 'the host name'}"
    elif isinstance(error, neterror.TimeoutError):
        text = f"connecting to {where} timed out"
    elif isinstance(error, neterror.ConnectionDone):
        text = f"{where} closed the connection"
    elif _isTLSError(error):
        text = f"TLS failure: {_tlsReason(error)}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def _isTLSError(error: BaseException) -> bool:
    module = type(error).__module__
    return module.startswith("OpenSSL") or module.startswith("service_identity")


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
        self._session.show(text)

    def binaryMessageReceived(self, data: bytes) -> None:
        self._session.show(formatBinary(data))

    def pongReceived(self, payload: bytes) -> None:
        if payload == _EOF_PING:
            self._session.caughtUp()

    def connectionLost(self, reason: Any) -> None:
        self._session.closed(reason.value)


class _Session:
    """
    One run of the command: connect, pump lines, report the end.

    @ivar status: the exit status once the reactor has stopped.
    """

    def __init__(
        self,
        reactor: Any,
        stdin: Any,
        stdout: TextIO,
        stderr: TextIO,
        wait: float,
        interactive: bool,
    ) -> None:
        self._reactor = reactor
        self._stdin = stdin
        self._stdout = stdout
        self._stderr = stderr
        self._wait = wait
        self._interactive = interactive
        self._transport: Any = None
        self._open = False
        self._ended = False
        self._caughtUp = False
        self._quiet: Any = None
        self._giveUp: Any = None
        self._lost: Any = None
        self.status = 1

    # -- output ------------------------------------------------------------

    def show(self, line: str) -> None:
        prefix = "< " if self._interactive else ""
        self._write(self._stdout, prefix + line)
        if self._caughtUp:
            self._armQuiet()

    def _say(self, line: str) -> None:
        self._write(self._stderr, line)

    @staticmethod
    def _write(stream: TextIO, line: str) -> None:
        try:
            try:
                stream.write(line + "\n")
            except UnicodeEncodeError:
                # A terminal that can't show some characters gets escapes.
                encoding = stream.encoding or "ascii"
                stream.write(line.encode(encoding, "backslashreplace").decode(encoding) + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass  # the reader went away

    # -- the connection ----------------------------------------------------

    def opened(self, transport: Any) -> None:
        self._transport = transport
        self._open = True
        if self._interactive:
            chosen = f" (subprotocol {transport.subprotocol})" if transport.subprotocol else ""
            self._say(f"connected{chosen}; type lines to send, Ctrl-D to close")
        reader = threading.Thread(target=self._read, name="wsproto-tw stdin", daemon=True)
        reader.start()

    def failed(self, error: BaseException, host: str, port: int) -> None:
        self._say(f"error: {describeError(error, host, port)}")
        self.status = 1
        self._stop()

    def closed(self, closed: Any) -> None:
        self._open = False
        self._cancelTimers()
        if self._lost is not None:
            lost, self._lost = self._lost, None
            lost.callback(None)
        reason = f" {closed.reason}" if closed.reason else ""
        self._say(f"closed: {closed.code}{reason}{'' if closed.wasClean else ' (not clean)'}")
        self.status = 0 if closed.wasClean and closed.code in (1000, 1001, 1005) else 1
        self._stop()

    def _stop(self) -> None:
        from twisted.internet.error import ReactorNotRunning

        try:
            self._reactor.stop()
        except ReactorNotRunning:
            pass  # already stopping (Ctrl-C)

    # -- input ---------------------------------------------------------------

    def _read(self) -> None:
        """
        Runs in a thread: blocking reads from standard input, each handed to
        the reactor.
        """
        callFromThread = self._reactor.callFromThread
        try:
            for line in iter(self._stdin.readline, b""):
                callFromThread(self.lineReceived, line)
        except (OSError, ValueError):
            pass
        callFromThread(self.inputEnded)

    def lineReceived(self, line: bytes) -> None:
        if self._transport is None or self._ended:
            return
        text = line.rstrip(b"\n").rstrip(b"\r").decode("utf-8", "replace")
        self._transport.sendText(text)

    def inputEnded(self) -> None:
        if self._transport is None or self._ended:
            return
        self._ended = True
        # The pong comes after the server has handled every earlier message.
        self._transport.ping(_EOF_PING)
        self._giveUp = self._reactor.callLater(max(10.0, self._wait), self._close)

    def caughtUp(self) -> None:
        if self._ended:
            self._caughtUp = True
            self._armQuiet()

    def _armQuiet(self) -> None:
        if self._quiet is not None and self._quiet.active():
            self._quiet.cancel()
        self._quiet = self._reactor.callLater(self._wait, self._close)

    def _close(self) -> None:
        self._cancelTimers()
        if self._transport is not None:
            self._transport.close(1000)

    def _cancelTimers(self) -> None:
        for call in (self._quiet, self._giveUp):
            if call is not None and call.active():
                call.cancel()
        self._quiet = self._giveUp = None

    def shutdown(self) -> Any:
        """
        Before the reactor stops (Ctrl-C): close the connection, waiting a
        little for the closing handshake.
        """
        from twisted.internet.defer import Deferred

        if not self._open or self._lost is not None:
            return None
        self._lost = Deferred()
        self._transport.close(1000)
        self._lost.addTimeout(2, self._reactor)
        self._lost.addErrback(lambda f: None)
        return self._lost


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
        "Exit status: 0 after a clean close with 1000, 1001 or no code; 1 after any other close or "
        "a failed connection; 2 for bad arguments."
    )
    optFlags = [
        ["insecure", None, "wss: don't verify the server's certificate."],
    ]
    optParameters = [
        ["origin", "o", None, "Send this Origin header."],
        ["cafile", None, None, "wss: trust the CA certificates in this PEM file instead of the system's."],
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

    def parseArgs(self, url: str) -> None:
        self["url"] = url

    def postOptions(self) -> None:
        try:
            self["server"] = split_url(self["url"])
        except ValueError as exc:
            raise usage.UsageError(str(exc)) from None
        if self["insecure"] and self["cafile"]:
            raise usage.UsageError("--insecure and --cafile exclude each other")
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
    _secure, host, port, _hostHeader, _target = options["server"]
    trustRoot = None
    if options["cafile"]:
        from wsproto_tw.client import loadTrustRoot

        try:
            trustRoot = loadTrustRoot(options["cafile"])
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    from twisted.internet import reactor

    from wsproto_tw.client import connect

    session = _Session(
        reactor,
        sys.stdin.buffer,
        sys.stdout,
        sys.stderr,
        wait=options["wait"],
        interactive=sys.stdin.isatty(),
    )

    def start() -> None:
        try:
            d = connect(
                options["url"],
                lambda: _Printer(session),
                config=config,
                origin=options["origin"],
                headers=options["header"],
                reactor=reactor,
                trustRoot=trustRoot,
                insecure=options["insecure"],
            )
        except Exception as exc:
            session.failed(exc, host, port)
            return
        d.addCallbacks(session.opened, lambda f: session.failed(f.value, host, port))

    reactor.addSystemEventTrigger("before", "shutdown", session.shutdown)
    reactor.callWhenRunning(start)
    reactor.run()
    return session.status


if __name__ == "__main__":
    sys.exit(main())
