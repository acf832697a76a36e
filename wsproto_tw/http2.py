# -*- test-case-name: tests.test_http2 -*-
"""
WebSocket over HTTP/2 (RFC 8441): the server side, and a client
(L{connectHTTP2}, which C{wsproto_tw.client.connect(..., http2=True)}
calls).

L{HTTP2Channel} is the HTTP/2 connection of a L{WebSocketSite
<wsproto_tw.resource.WebSocketSite>} built with C{http2=True}, over the
C{h2} package. It advertises C{SETTINGS_ENABLE_CONNECT_PROTOCOL} (RFC 8441
§3), serves every ordinary request through the site's C{twisted.web}
resource tree, and dispatches an extended CONNECT (C{:method CONNECT},
C{:protocol websocket}) at once, without waiting for its stream to end, to
the resource at its C{:path}. A L{WebSocketResource
<wsproto_tw.resource.WebSocketResource>} there takes the stream over: an
L{H2StreamWire} carries its frames, below the same L{WebSocketConnection
<wsproto_tw.connection.WebSocketConnection>} and the same application
contract as over HTTP/1.1, and many WebSockets share one connection.

The one place relying on Twisted's private HTTP/2 code: the streams that
carry ordinary requests are Twisted's own C{twisted.web._http2.H2Stream}
(tested with Twisted 26.10), which talks to L{HTTP2Channel} through the
methods Twisted's C{H2Connection} offers it (C{writeHeaders},
C{writeDataToStream}, C{endRequest}, ...). The wire implements the same
stream-side methods, so the channel treats both kinds of stream alike.

Limits (RFC 9113): C{maxStreams} concurrent streams, advertised as
C{SETTINGS_MAX_CONCURRENT_STREAMS} (a peer that opens more gets a
connection error, C{PROTOCOL_ERROR}); flow control both ways, a peer that
sends past its window gets C{FLOW_CONTROL_ERROR}; an idle connection (no
stream open) is closed with C{GOAWAY} after the site's C{timeOut}; a
peer that does not read while it keeps the connection answering (PINGs,
SETTINGS, data to acknowledge: the control-frame floods of CVE-2019-9512
and CVE-2019-9515) gets C{GOAWAY} C{ENHANCE_YOUR_CALM} and the connection
is aborted once more than C{Config.max_write_buffer} bytes have been
written while the transport's buffer was full; a closing connection
(C{GOAWAY} sent) parses nothing more and is aborted if it has not closed
within C{Config.close_timeout} (a peer that neither reads nor ends TLS
would keep it open). A stream's WebSocket has the core's own deadlines
(C{open_timeout}, keepalive, idle). A CONNECT without C{:protocol} (a
tunnel, RFC 9113 §8.5) or with another protocol than C{websocket} gets
C{501 Not Implemented}.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from io import BytesIO
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from twisted.internet.error import ConnectionAborted, ConnectionLost
from twisted.internet.interfaces import (
    IHandshakeListener,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
)
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web._http2 import H2Stream
from zope.interface import implementer

from wsproto_tw.core.config import Config
from wsproto_tw.core.handshake import parse_response
from wsproto_tw.errors import HandshakeTimeout
from wsproto_tw.interfaces import IWire
from wsproto_tw.wire import addressName, setNoDelay

__all__ = ["H2StreamWire", "HTTP2Channel", "connectHTTP2", "http2Switch", "webSocketStream"]

_log = Logger(namespace="wsproto_tw")

#: Header fields HTTP/2 does not carry (RFC 9113 §8.2.2).
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
#: The default stream window (RFC 9113 §6.9.2).
_STREAM_WINDOW = 65535


class _Outbox:
    """
    What a stream has to send that its flow-control window does not let out
    yet, and whether its end follows.
    """

    __slots__ = ("chunks", "queued", "end")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.queued = 0
        self.end = False


@implementer(IPushProducer)
class HTTP2Channel(Protocol):
    """
    One HTTP/2 connection (RFC 9113) of a site that serves WebSocket over
    HTTP/2 (RFC 8441); see the module's docstring.

    @ivar site: the L{twisted.web.server.Site} whose resources answer.
    @ivar clock: the L{IReactorTime} of every timer.
    @ivar streams: stream id to the object serving it: an L{H2Stream} of
        Twisted's for an ordinary request, an L{H2StreamWire} for a
        WebSocket.
    """

    _log = _log

    #: Stream resets by the peer allowed in a burst, and per second after
    #: it; past them the connection ends with C{ENHANCE_YOUR_CALM}.
    resetBurst = 1000
    resetRate = 33.0

    #: Whether this end is the client (L{_HTTP2Client}).
    _clientSide = False

    def __init__(
        self,
        site: Any,
        config: Config,
        clock: IReactorTime,
        maxStreams: int = 100,
        requestFactory: Any = None,
        factory: Any = None,
        timeOut: float | None = None,
    ) -> None:
        """
        @param site: the L{twisted.web.server.Site}.
        @param config: the L{Config} of the site's WebSockets (its
            C{max_head_size} bounds a request's header list).
        @param clock: the L{IReactorTime} for timers.
        @param maxStreams: the most streams open at once.
        @param requestFactory: builds the C{twisted.web} requests; the
            site's if L{None}.
        @param factory: the C{HTTPFactory} (for request logging); C{site}
            if L{None}.
        @param timeOut: seconds a connection may stay without an open
            stream, or L{None} for ever.
        """
        self.site = site
        self.requestFactory = requestFactory if requestFactory is not None else getattr(site, "requestFactory", None)
        self.factory = factory if factory is not None else site
        self.clock = clock
        self.maxStreams = maxStreams
        self.timeOut = timeOut
        self._config = config
        self.streams: dict[int, Any] = {}
        self._outboxes: dict[int, _Outbox] = {}
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=self._clientSide, header_encoding=None)
        )
        self._writesBlocked = False
        # Bytes written while the transport's buffer is full (its
        # pauseProducing): bounded by the config's max_write_buffer.
        self._writtenWhilePaused = 0
        self._idleCall: Any = None
        self._abortCall: Any = None
        self._lost = False
        self._closing = False
        # Resets by the peer: a token bucket (the HTTP/2 Rapid Reset flood,
        # CVE-2023-44487), full at first.
        self._resetTokens = float(self.resetBurst)
        self._resetCheckedAt = clock.seconds()

    # -- Protocol ----------------------------------------------------------

    def connectionMade(self) -> None:
        transport = self.transport
        setNoDelay(transport)
        transport.registerProducer(self, True)
        conn = self._h2
        # RFC 8441 §3: the server allows extended CONNECT; RFC 9113 §6.5.2.
        # Set before the preface, so that the first SETTINGS frame says so.
        headerListSize = self._config.max_head_size or 16384
        conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
                SettingCodes.MAX_CONCURRENT_STREAMS: self.maxStreams,
                SettingCodes.MAX_HEADER_LIST_SIZE: headerListSize,
            },
        )
        # What h2 checks a header block against (RFC 9113 §6.5.2; RFC 7541
        # §4.1 sizes): a larger one is a connection error.
        conn.decoder.max_header_list_size = headerListSize
        conn.initiate_connection()
        # The connection's window covers every stream's: a WebSocket whose
        # application paused reading holds back only its own stream.
        conn.increment_flow_control_window(self.maxStreams * _STREAM_WINDOW)
        self._flush()
        self._armIdle()

    def dataReceived(self, data: bytes) -> None:
        if self._lost or self._closing:
            # After a connection error, or while the transport closes (the
            # abort timer bounds how long): dropped unparsed.
            return
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 queued a GOAWAY with the error's code (a FLOW_CONTROL_ERROR
            # for a peer sending past its window, RFC 9113 §5.2).
            self._log.info(
                "http/2 connection error from {peer}: {error}", peer=self._peerName(), error=exc
            )
            self._flush()
            self._close()
            self._dropStreams(Failure(ConnectionLost(f"http/2 connection error: {exc}")))
            return
        for event in events:
            if self._lost:
                return  # aborted meanwhile (a peer that does not read)
            kind = type(event)
            if kind is h2.events.DataReceived:
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.receiveDataChunk(event.data, event.flow_controlled_length)
                else:
                    self.openStreamWindow(event.stream_id, event.flow_controlled_length)
            elif kind is h2.events.RequestReceived:
                self._requestReceived(event)
            elif kind is h2.events.StreamEnded:
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.requestComplete()
            elif kind is h2.events.StreamReset:
                stream = self.streams.get(event.stream_id)
                self._forget(event.stream_id)
                if stream is not None:
                    stream.connectionLost(Failure(ConnectionLost(f"stream reset with code {event.error_code}")))
                if event.remote_reset and not self._resetAllowed():
                    self._log.info("too many stream resets from {peer}", peer=self._peerName())
                    self._h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
                    self._flush()
                    self._close()
                    self._dropStreams(Failure(ConnectionLost("too many stream resets")))
                    return
            elif kind is h2.events.WindowUpdated:
                if event.stream_id:
                    self._windowOpened(event.stream_id)
                else:
                    for streamID in list(self._outboxes):
                        self._windowOpened(streamID)
            elif kind is h2.events.RemoteSettingsChanged:
                if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    for streamID in list(self._outboxes):
                        self._windowOpened(streamID)
                self._settingsReceived()
            elif kind is h2.events.ResponseReceived:
                self._responseReceived(event)
            elif kind is h2.events.ConnectionTerminated:
                self._flush()
                self._close()
                self._dropStreams(Failure(ConnectionLost(f"peer sent goaway with code {event.error_code}")))
                return
        self._flush()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._abortCall is not None:
            if self._abortCall.active():
                self._abortCall.cancel()
            self._abortCall = None
        self._dropStreams(reason)

    def _settingsReceived(self) -> None:
        """
        The peer's SETTINGS arrived; the client acts on them.
        """

    def _responseReceived(self, event: h2.events.ResponseReceived) -> None:
        """
        A response's HEADERS arrived: only a client gets them.
        """

    def _resetAllowed(self) -> bool:
        """
        Spend a token for a reset by the peer.

        @return: whether one was left.
        """
        now = self.clock.seconds()
        elapsed = max(0.0, now - self._resetCheckedAt)
        self._resetCheckedAt = now
        self._resetTokens = min(float(self.resetBurst), self._resetTokens + elapsed * self.resetRate)
        if self._resetTokens < 1:
            return False
        self._resetTokens -= 1
        return True

    def _dropStreams(self, reason: Failure) -> None:
        """
        The connection is gone, or going after a connection error: send
        nothing more, and tell every stream.
        """
        self._lost = True
        if self._idleCall is not None and self._idleCall.active():
            self._idleCall.cancel()
        self._idleCall = None
        streams = list(self.streams.values())
        self.streams.clear()
        self._outboxes.clear()
        for stream in streams:
            stream.connectionLost(reason)

    # -- IPushProducer: the transport's write buffer -----------------------

    def pauseProducing(self) -> None:
        if not self._writesBlocked:
            self._writesBlocked = True
            self._writtenWhilePaused = 0

    def resumeProducing(self) -> None:
        self._writesBlocked = False
        self._writtenWhilePaused = 0
        for streamID in list(self._outboxes):
            self._windowOpened(streamID)
        self._flush()

    def stopProducing(self) -> None:
        pass  # connectionLost follows

    # -- the streams -------------------------------------------------------

    def _requestReceived(self, event: h2.events.RequestReceived) -> None:
        streamID = event.stream_id
        method = protocol = None
        for name, value in event.headers:
            if name == b":method":
                method = value
            elif name == b":protocol":
                protocol = value
        fields = len(event.headers) - sum(1 for name, _ in event.headers if name.startswith(b":"))
        if fields > self._config.max_headers:
            self._refuse(streamID, 431, f"more than {self._config.max_headers} header fields")
            return
        if method == b"CONNECT":
            # RFC 9113 §8.5: a CONNECT without :protocol asks for a tunnel;
            # RFC 8441 §4: with one, for that protocol over the stream.
            if protocol is None:
                self._refuse(streamID, 501, "connect without :protocol opens a tunnel; this server is not a proxy")
                return
            if protocol.lower() != b"websocket":
                self._refuse(
                    streamID, 501, f"protocol {protocol.decode('latin-1')} is not supported here; websocket is"
                )
                return
        self._disarmIdle()
        stream = _HTTPStream(streamID, self, event.headers, self.requestFactory, self.site, self.factory)
        self.streams[streamID] = stream
        self._outboxes[streamID] = _Outbox()
        if method == b"CONNECT":
            # RFC 8441 §4: the stream stays open for the protocol's data;
            # the request can't wait for its end.
            stream.requestComplete()

    def _refuse(self, streamID: int, status: int, reason: str) -> None:
        body = (reason + "\n").encode("utf-8")
        self._outboxes[streamID] = _Outbox()
        self.sendHeaders(
            streamID,
            [
                (b":status", str(status).encode("ascii")),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        )
        self.writeDataToStream(streamID, body)
        self.endRequest(streamID)

    def takeOver(self, streamID: int, connection: Any) -> H2StreamWire:
        """
        Carry a WebSocket on stream C{streamID}, from now on.

        @param connection: the L{IWireReceiver
            <wsproto_tw.interfaces.IWireReceiver>} (a server
            L{WebSocketConnection
            <wsproto_tw.connection.WebSocketConnection>} whose core was
            built from the stream's request).
        @return: the stream's L{H2StreamWire}.
        """
        wire = H2StreamWire(self, streamID, connection)
        if self._lost or streamID not in self._outboxes:
            # The connection or the stream went away while the resource
            # was being found.
            connection.wireConnected(wire)
            wire.connectionLost(Failure(ConnectionLost("stream gone before the websocket took it over")))
            return wire
        self.streams[streamID] = wire
        connection.wireConnected(wire)
        # The request is in the core already: this delivers it.
        connection.bytesReceived(b"")
        return wire

    def _windowOpened(self, streamID: int) -> None:
        self._send(streamID)
        stream = self.streams.get(streamID)
        if stream is not None:
            stream.windowUpdated()

    def _send(self, streamID: int) -> None:
        """
        Send what stream C{streamID} has queued, as far as its flow-control
        window and the transport allow, then its end if it is due.
        """
        box = self._outboxes.get(streamID)
        if box is None or self._lost:
            return
        try:
            self._sendData(streamID, box)
        except h2.exceptions.ProtocolError:
            # Closed under us (h2 knew before we did).
            self._streamGone(streamID)

    def _streamGone(self, streamID: int) -> None:
        """
        Stream C{streamID} turned out to be closed: forget it and tell it.
        """
        stream = self.streams.get(streamID)
        self._forget(streamID)
        if stream is not None:
            stream.connectionLost(Failure(ConnectionLost("stream closed")))

    def _sendData(self, streamID: int, box: _Outbox) -> None:
        conn = self._h2
        chunks = box.chunks
        while chunks and not self._writesBlocked:
            window = conn.local_flow_control_window(streamID)
            if window <= 0:
                return
            size = min(window, conn.max_outbound_frame_size)
            chunk = chunks[0]
            if len(chunk) > size:
                conn.send_data(streamID, chunk[:size])
                chunks[0] = chunk[size:]
                box.queued -= size
            else:
                conn.send_data(streamID, chunk)
                chunks.popleft()
                box.queued -= len(chunk)
        if box.end and not chunks:
            conn.end_stream(streamID)
            self._ended(streamID)

    def _ended(self, streamID: int) -> None:
        """
        Our side of stream C{streamID} has ended: forget the stream (what
        the peer still sends on it is acknowledged and dropped).
        """
        stream = self.streams.get(streamID)
        self._forget(streamID)
        if isinstance(stream, H2StreamWire):
            stream.connectionLost(Failure(ConnectionLost("stream ended")))

    def _forget(self, streamID: int) -> None:
        self.streams.pop(streamID, None)
        self._outboxes.pop(streamID, None)
        if not self.streams:
            self._armIdle()

    def pendingBytes(self, streamID: int) -> int:
        """
        @return: how many bytes stream C{streamID} has queued, unsent.
        """
        box = self._outboxes.get(streamID)
        return 0 if box is None else box.queued

    def _close(self) -> None:
        """
        Close the transport once what was written has gone out; from now
        on what arrives is dropped unparsed. If it has not closed after
        C{Config.close_timeout} seconds, abort it: TLS waits for the peer's
        C{close_notify} (and a full buffer for the peer to read), which a
        hostile peer never sends while it keeps us reading.
        """
        if self._closing:
            return
        self._closing = True
        # Armed first: the transport may report its loss at once.
        self._abortCall = self.clock.callLater(self._config.close_timeout, self._closeTimedOut)
        # A registered producer would keep it open once its buffer drains.
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def _closeTimedOut(self) -> None:
        self._abortCall = None
        self._log.info(
            "http/2 connection to {peer} not closed after {timeout} s; aborting it",
            peer=self._peerName(),
            timeout=self._config.close_timeout,
        )
        self._lost = True
        self.transport.abortConnection()

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if not data or self._lost:
            return
        if self._writesBlocked:
            # RFC 9113 §10.5: what the peer makes us answer (PING and
            # SETTINGS ACKs, WINDOW_UPDATEs, resets) still goes out while
            # the transport's buffer is full; a peer that does not read
            # would make it grow without bound (CVE-2019-9512, -9515).
            self._writtenWhilePaused += len(data)
            if self._writtenWhilePaused > self._config.max_write_buffer:
                self._calmDown()
                return
        self.transport.write(data)

    def _calmDown(self) -> None:
        """
        More than C{Config.max_write_buffer} bytes were written while the
        transport's buffer was full: end the connection with C{GOAWAY}
        C{ENHANCE_YOUR_CALM} (RFC 9113 §5.4.1; a courtesy, as the peer does
        not read), abort it, and tell every stream.
        """
        self._log.info(
            "aborting http/2 connection to {peer}: more than {limit} bytes written while it does not read",
            peer=self._peerName(),
            limit=self._config.max_write_buffer,
        )
        self._closing = True
        self._h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM)
        self.transport.write(self._h2.data_to_send())
        self._dropStreams(Failure(ConnectionLost("http/2 peer is not reading")))
        self.transport.unregisterProducer()
        self.transport.abortConnection()

    # -- idle --------------------------------------------------------------

    def _armIdle(self) -> None:
        if self.timeOut is None or self._lost or self._idleCall is not None:
            return
        self._idleCall = self.clock.callLater(self.timeOut, self._idleTimedOut)

    def _disarmIdle(self) -> None:
        if self._idleCall is not None:
            if self._idleCall.active():
                self._idleCall.cancel()
            self._idleCall = None

    def _idleTimedOut(self) -> None:
        self._idleCall = None
        if self._lost:
            return
        self._h2.close_connection(ErrorCodes.NO_ERROR)
        self._flush()
        self._close()

    # -- what Twisted's H2Stream (and H2StreamWire) call -------------------

    def sendHeaders(self, streamID: int, headers: list[tuple[bytes, bytes]]) -> None:
        """
        Send a response's HEADERS frame on stream C{streamID}.
        """
        if self._lost:
            return
        try:
            self._h2.send_headers(streamID, headers)
        except h2.exceptions.ProtocolError:
            # The peer reset it meanwhile (perhaps in the same read as its
            # request, so that h2 has forgotten it already).
            self._streamGone(streamID)
            return
        self._flush()

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any, streamID: int) -> None:
        fields = [(b":status", code)]
        fields.extend((name.lower(), value) for name, value in headers if name.lower() not in _CONNECTION_SPECIFIC)
        self.sendHeaders(streamID, fields)

    def writeDataToStream(self, streamID: int, data: bytes) -> None:
        box = self._outboxes.get(streamID)
        if box is None or not data:
            return
        box.chunks.append(bytes(data))
        box.queued += len(data)
        self._send(streamID)
        self._flush()
        if box.chunks:
            stream = self.streams.get(streamID)
            if stream is not None:
                stream.flowControlBlocked()

    def endRequest(self, streamID: int) -> None:
        box = self._outboxes.get(streamID)
        if box is None:
            return
        box.end = True
        self._send(streamID)
        self._flush()

    def abortRequest(self, streamID: int) -> None:
        if streamID not in self._outboxes or self._lost:
            return
        # Reset before forgetting: a client forgetting its last stream
        # closes the connection (GOAWAY), after which h2 refuses the reset.
        try:
            self._h2.reset_stream(streamID, ErrorCodes.CANCEL)
        except h2.exceptions.ProtocolError:
            pass  # the stream, or the whole connection, is closed already
        self._forget(streamID)
        self._flush()

    def openStreamWindow(self, streamID: int, increment: int) -> None:
        if not increment or self._lost:
            return
        try:
            self._h2.acknowledge_received_data(increment, streamID)
        except h2.exceptions.StreamClosedError:
            pass
        self._flush()

    def remainingOutboundWindow(self, streamID: int) -> int:
        try:
            window = self._h2.local_flow_control_window(streamID)
        except h2.exceptions.StreamClosedError:
            return 0
        return window - self.pendingBytes(streamID)

    def getPeer(self) -> Any:
        return self.transport.getPeer()

    def getHost(self) -> Any:
        return self.transport.getHost()

    def _isSecure(self) -> bool:
        return ISSLTransport(self.transport, None) is not None

    def _send100Continue(self, streamID: int) -> None:
        if self._lost:
            return
        self.sendHeaders(streamID, [(b":status", b"100")])

    def _respondToBadRequestAndDisconnect(self, streamID: int) -> None:
        if self._lost:
            return
        stream = self.streams.get(streamID)
        self._forget(streamID)
        try:
            self._h2.send_headers(streamID, [(b":status", b"400")], end_stream=True)
        except h2.exceptions.StreamClosedError:
            pass
        self._flush()
        if stream is not None:
            stream.connectionLost(Failure(ConnectionLost("invalid request")))

    def _peerName(self) -> str:
        try:
            peer = self.transport.getPeer()
        except Exception:
            return "?"
        return addressName(peer)


class _HTTPStream(H2Stream):
    """
    Twisted's HTTP/2 stream, serving one request through C{twisted.web}
    for an L{HTTP2Channel}; an extended CONNECT's can be taken over by a
    WebSocket (L{takeOver}).
    """

    _dispatched = False

    def _convertHeaders(self, headers: Any) -> None:
        super()._convertHeaders(headers)
        if self.command == b"CONNECT":
            # Its data is the protocol's, not a body: no temporary file.
            self._request.content.close()
            self._request.content = BytesIO()

    def requestComplete(self) -> None:
        # An extended CONNECT is dispatched before its stream ends.
        if self._dispatched:
            return
        if self.producing:
            self._dispatched = True
        super().requestComplete()

    def takeOver(self, connection: Any) -> H2StreamWire:
        """
        Carry a WebSocket on this stream instead of the request.

        @return: the stream's L{H2StreamWire}.
        """
        return self._conn.takeOver(self.streamID, connection)


def webSocketStream(request: Any) -> _HTTPStream | None:
    """
    @param request: a L{twisted.web.server.Request}.
    @return: the stream of C{request} if it arrived over an
        L{HTTP2Channel} (a WebSocketResource then takes an extended CONNECT
        over with its C{takeOver(connection)}), else L{None}.
    """
    channel = getattr(request, "channel", None)
    return channel if isinstance(channel, _HTTPStream) else None


@implementer(IWire)
class H2StreamWire:
    """
    The L{IWire} of a WebSocket over one HTTP/2 stream (RFC 8441) of an
    L{HTTP2Channel}.

      - The connection's first write is the core's answer head (C{200}, or
        an error status and its body): it leaves as the stream's HEADERS
        frame, without the fields HTTP/2 does not carry (RFC 9113 §8.2.2);
        everything after it is DATA.
      - Writes are sent as far as the stream's flow-control window allows;
        the rest waits in the channel and the connection is told
        C{writesPaused} until the peer opens the window and it drains
        (C{writesResumed}).
      - L{pauseReading} withholds the WINDOW_UPDATEs of what arrives (held
        here, at most a window's worth) until L{resumeReading}. A client's
        stream is not paused for its own blocked writes
        (C{readsWhileWritesWait}): a server that stops reading while its
        writes wait (ours does) waits for the WINDOW_UPDATEs of what it
        sent, and a client withholding them while waiting for the server's
        would deadlock (RFC 9113 §5.2.2).
      - L{loseConnection} ends the stream (END_STREAM) after what is queued;
        L{abortConnection} resets it (RST_STREAM, C{CANCEL}). The peer's
        END_STREAM is a half-close (C{readLost}).

    @ivar channel: the L{HTTP2Channel}.
    @ivar streamID: the stream's id.
    @ivar connection: the L{IWireReceiver
        <wsproto_tw.interfaces.IWireReceiver>}.
    @ivar transport: the channel's transport (TLS details live there).
    @ivar readsWhileWritesWait: whether the connection keeps reading while
        the stream's writes wait for the window (a client's stream).
    """

    #: The C{wire} label of its connections in L{wsproto_tw.metrics}.
    wireName = "http2"

    def __init__(self, channel: HTTP2Channel, streamID: int, connection: Any, answered: bool = False) -> None:
        """
        @param answered: the response's HEADERS are not the connection's to
            write (a client's stream).
        """
        self.channel = channel
        self.streamID = streamID
        self.connection = connection
        self.transport = channel.transport
        self.readsWhileWritesWait = channel._clientSide
        self._answered = answered
        self._paused = False
        self._held: deque[tuple[bytes | None, int]] = deque()
        self._draining: Any = None
        self._writesBlocked = False
        self._gone = False

    def __repr__(self) -> str:
        return f"<H2StreamWire stream {self.streamID}>"

    # -- what the channel calls --------------------------------------------

    def receiveDataChunk(self, data: bytes, flowControlledLength: int) -> None:
        if self._paused or self._held:
            self._held.append((data, flowControlledLength))
            return
        self.connection.bytesReceived(data)
        self.channel.openStreamWindow(self.streamID, flowControlledLength)

    def requestComplete(self) -> None:
        if self._paused or self._held:
            self._held.append((None, 0))
            return
        self.connection.readLost()

    def connectionLost(self, reason: Failure) -> None:
        if self._gone:
            return
        self._gone = True
        if self._draining is not None and self._draining.active():
            self._draining.cancel()
        # Reported from the reactor, as a TCP transport does: never from
        # inside a write or a close the connection is making.
        self.channel.clock.callLater(0, self.connection.wireLost, reason)

    def windowUpdated(self) -> None:
        if self._writesBlocked and not self.channel.pendingBytes(self.streamID):
            self._writesBlocked = False
            self.connection.writesResumed()

    def flowControlBlocked(self) -> None:
        if not self._writesBlocked:
            self._writesBlocked = True
            self.connection.writesPaused()

    # -- IWire -------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._gone:
            return
        if not self._answered:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                raise ValueError("the first write on an http/2 stream must hold the answer head")
            response = parse_response(data[:end])
            self._answered = True
            fields = [(b":status", str(response.status).encode("ascii"))]
            for name, value in response.headers:
                name_bytes = name.lower().encode("ascii")
                if name_bytes not in _CONNECTION_SPECIFIC:
                    fields.append((name_bytes, value.encode("latin-1")))
            self.channel.sendHeaders(self.streamID, fields)
            data = data[end + 4 :]
            if not data:
                return
        self.channel.writeDataToStream(self.streamID, data)

    def loseConnection(self) -> None:
        if self._gone:
            return
        if not self._answered:
            self.abortConnection()
            return
        self.channel.endRequest(self.streamID)

    def abortConnection(self) -> None:
        if self._gone:
            return
        self.channel.abortRequest(self.streamID)
        self.connectionLost(Failure(ConnectionAborted()))

    def pauseReading(self) -> None:
        self._paused = True

    def resumeReading(self) -> None:
        self._paused = False
        if self._held and self._draining is None and not self._gone:
            # Delivered from the reactor, as a TCP transport delivers what
            # it reads after resumeProducing.
            self._draining = self.channel.clock.callLater(0, self._drain)

    def _drain(self) -> None:
        self._draining = None
        held = self._held
        consumed = 0
        while held and not self._paused and not self._gone:
            data, length = held.popleft()
            if data is None:
                self.connection.readLost()
            else:
                self.connection.bytesReceived(data)
                consumed += length
        self.channel.openStreamWindow(self.streamID, consumed)

    def getPeer(self) -> Any:
        return self.channel.getPeer()

    def getHost(self) -> Any:
        return self.channel.getHost()


_switchClass: Any = None


def http2Switch(config: Config, clock: IReactorTime, maxStreams: int = 100) -> Callable[[Any], Any] | None:
    """
    The wrapper that serves a connection with an L{HTTP2Channel} instead of
    the HTTP/1.1 channel it wraps when TLS negotiated C{h2} by ALPN, or
    L{None} if this Twisted has no such wrapper.

    Like L{wsproto_tw.resource._http2Switch}, it relies on the private
    class C{twisted.web.http._GenericHTTPChannelProtocol} (what
    L{twisted.web.server.Site.buildProtocol} returns; tested with Twisted
    26.10), subclassed so that the switch builds our channel.

    @return: called with the HTTP/1.1 channel, returns the protocol.
    """
    global _switchClass
    generic = getattr(http, "_GenericHTTPChannelProtocol", None)
    if generic is None:
        return None
    if _switchClass is None:

        class _ALPNSwitch(generic):  # type: ignore[misc, valid-type]
            _http2: tuple[Config, IReactorTime, int]

            def dataReceived(self, data: bytes) -> None:
                if self._negotiatedProtocol is None:
                    channel = self._channel
                    transport = channel.transport
                    negotiated = getattr(transport, "negotiatedProtocol", None) or b"http/1.1"
                    if negotiated == b"h2":
                        transport.unregisterProducer()
                        channel.setTimeout(None)
                        config, clock, maxStreams = self._http2
                        self._channel = HTTP2Channel(
                            self._site,
                            config,
                            clock,
                            maxStreams,
                            requestFactory=self._requestFactory,
                            factory=self._factory,
                            timeOut=self._timeOut,
                        )
                        self._channel.makeConnection(transport)
                    self._negotiatedProtocol = negotiated
                self._channel.dataReceived(data)

        _switchClass = _ALPNSwitch

    def wrap(channel: Any) -> Any:
        switch = _switchClass(channel)
        switch._http2 = (config, clock, maxStreams)
        return switch

    return wrap


# -- the client side ----------------------------------------------------------


@implementer(IHandshakeListener)
class _HTTP2Client(HTTP2Channel):
    """
    The client's HTTP/2 connection: one WebSocket over an extended CONNECT
    (RFC 8441) on stream 1, carried by an L{H2StreamWire} as on the server
    (this reuses L{HTTP2Channel}'s streams and flow control). The
    connection ends with the WebSocket.

    Before opening the stream it checks what the server offers: TLS must
    have negotiated C{h2} by ALPN, and the server's first SETTINGS must
    hold C{SETTINGS_ENABLE_CONNECT_PROTOCOL = 1} (RFC 8441 §3); otherwise
    the opening falls back to HTTP/1.1 (L{_HTTP2Opening.fallBack}).

    @ivar tlsFinished: whether the TLS handshake has finished (for what a
        timeout says).
    """

    _clientSide = True

    def __init__(self, opening: _HTTP2Opening, authority: str, path: str) -> None:
        super().__init__(None, opening._config, opening._reactor, maxStreams=1)
        self._opening = opening
        self._authority = authority
        self._path = path
        self._started = False
        self.tlsFinished = False

    def connectionMade(self) -> None:
        transport = self.transport
        setNoDelay(transport)
        transport.registerProducer(self, True)
        self._h2.initiate_connection()
        self._flush()

    def handshakeCompleted(self) -> None:
        self.tlsFinished = True
        if getattr(self.transport, "negotiatedProtocol", None) != b"h2":
            self._fallBack("the server does not speak http/2 (alpn)")

    def _settingsReceived(self) -> None:
        if self._started or self._lost:
            return
        self._started = True
        if self._h2.remote_settings.enable_connect_protocol != 1:
            self._fallBack("the server does not allow extended connect (rfc 8441)")
            return
        connection, core = self._opening.buildConnection()
        streamID = self._h2.get_next_available_stream_id()
        fields = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"https"),
            (b":path", self._path.encode("ascii")),
            (b":authority", self._authority.encode("ascii")),
        ]
        fields.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in core.stream_fields)
        self._outboxes[streamID] = _Outbox()
        wire = H2StreamWire(self, streamID, connection, answered=True)
        self.streams[streamID] = wire
        self._h2.send_headers(streamID, fields)
        self._flush()
        connection.wireConnected(wire)

    def _responseReceived(self, event: h2.events.ResponseReceived) -> None:
        wire = self.streams.get(event.stream_id)
        if wire is None:
            return
        status = b""
        lines = []
        for name, value in event.headers:
            if name == b":status":
                status = value
            elif not name.startswith(b":"):
                if any(c in value for c in b"\r\n\x00"):
                    self.abortRequest(event.stream_id)
                    wire.connectionLost(Failure(ConnectionLost("line break in a response field")))
                    return
                lines.append(name + b": " + value)
        # The core reads the answer as a head (status line and fields).
        wire.receiveDataChunk(b"\r\n".join([b"HTTP/1.1 " + status, *lines]) + b"\r\n\r\n", 0)

    def _forget(self, streamID: int) -> None:
        super()._forget(streamID)
        if not self.streams and self._started and not self._lost:
            # The WebSocket is gone: so is its connection.
            self._h2.close_connection(ErrorCodes.NO_ERROR)
            self._flush()
            self._close()

    def _fallBack(self, why: str) -> None:
        self._started = True
        self._lost = True
        self._close()
        self._opening.fallBack(why)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        started = self._started
        super().connectionLost(reason)
        if not started:
            self._opening.lostBeforeSettings(reason)


def _openingClass() -> type:
    """
    L{wsproto_tw.client._Opening}, imported late (the client module imports
    nothing of this one).
    """
    from wsproto_tw.client import _Opening

    return _Opening


class _HTTP2Opening(_openingClass()):  # type: ignore[misc]
    """
    One L{connectHTTP2} call: probes the server over HTTP/2, builds the
    WebSocket connection once the server allows extended CONNECT, or falls
    back to HTTP/1.1 (a new connection, through L{wsproto_tw.client.connect}).
    """

    def __init__(
        self,
        applicationFactory: Callable[[], Any],
        config: Config,
        reactor: IReactorTime,
        core: Any,
        authority: str,
        path: str,
        fallback: Callable[[], Any],
    ) -> None:
        super().__init__(applicationFactory, config, reactor, lambda now: core)
        self._core = core
        self._authority = authority
        self._path = path
        self._fallback = fallback
        self._protocol: _HTTP2Client | None = None
        self.fellBack: str | None = None

    def start(self, endpoint: Any) -> None:
        # Connected is not opened: the timer runs until the server's
        # SETTINGS, then the core's deadline (the same instant) takes over.
        self._connect(endpoint).addErrback(self._connectFailed)

    def buildProtocol(self, addr: Any) -> _HTTP2Client:
        self._protocol = _HTTP2Client(self, self._authority, self._path)
        return self._protocol

    def buildConnection(self) -> tuple[Any, Any]:
        """
        @return: the client L{WebSocketConnection
            <wsproto_tw.connection.WebSocketConnection>} and its core.
        """
        self._stopTimer()
        return self._buildConnection(), self._core

    def fallBack(self, why: str) -> None:
        """
        The server can't carry a WebSocket over HTTP/2: open it over
        HTTP/1.1.
        """
        self._stopTimer()
        self.fellBack = why
        _log.info("websocket over http/2 not possible ({why}); falling back to http/1.1", why=why)
        if not self.result.called:
            self._fallback().addBoth(self._done)

    def lostBeforeSettings(self, reason: Failure) -> None:
        self._done(reason)

    def _timedOut(self) -> None:
        self._timer = None
        if self._protocol is not None and self._connection is None:
            self._protocol.transport.abortConnection()
            if self._protocol.tlsFinished:
                why = "opening handshake timed out waiting for the server's settings"
            else:
                why = "opening handshake timed out: the TLS handshake did not finish"
            self._done(Failure(HandshakeTimeout(why)))
            return
        super()._timedOut()

    def _cancel(self, result: Any) -> None:
        if self._protocol is not None and self._connection is None:
            self._protocol.transport.abortConnection()
            return
        super()._cancel(result)


def connectHTTP2(
    url: str,
    applicationFactory: Callable[[], Any],
    *,
    config: Config | None = None,
    origin: str | None = None,
    headers: Any = (),
    reactor: Any = None,
    trustRoot: Any = None,
    insecure: bool = False,
    connectTimeout: float = 30,
) -> Any:
    """
    Open a WebSocket to a C{wss://} URL as a stream of an HTTP/2
    connection (RFC 8441), falling back to HTTP/1.1 (L{connect
    <wsproto_tw.client.connect>}, a new connection) when the server does not
    negotiate C{h2} by ALPN or does not allow extended CONNECT. The
    arguments are L{connect <wsproto_tw.client.connect>}'s; there is no
    proxy over HTTP/2 (the fallback connects directly).

    @return: a L{Deferred} as for L{connect <wsproto_tw.client.connect>}.
    @raise ValueError: as for L{connect <wsproto_tw.client.connect>}, or
        the URL is C{ws://} (HTTP/2 here needs TLS).
    """
    from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS

    from wsproto_tw.client import _clientCore, connect, parseURL

    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    parsed = parseURL(url)
    if not parsed.secure:
        raise ValueError(f"websocket over http/2 needs a wss:// url: {url!r}")
    if insecure and trustRoot is not None:
        raise ValueError("trustRoot and insecure exclude each other")
    config = config if config is not None else Config()
    core = _clientCore(parsed, config, origin, headers, reactor.seconds(), stream=True)
    endpoint = wrapClientTLS(
        _alpnTLS(parsed.host, trustRoot, insecure),
        HostnameEndpoint(reactor, parsed.host, parsed.port, timeout=connectTimeout),
    )

    def fallback() -> Any:
        return connect(
            url,
            applicationFactory,
            config=config,
            origin=origin,
            headers=headers,
            reactor=reactor,
            trustRoot=trustRoot,
            insecure=insecure,
            connectTimeout=connectTimeout,
            proxy=False,
        )

    opening = _HTTP2Opening(applicationFactory, config, reactor, core, parsed.hostHeader, parsed.target, fallback)
    opening.start(endpoint)
    return opening.result


def _alpnTLS(hostname: str, trustRoot: Any, insecure: bool) -> Any:
    """
    The TLS client settings of L{wsproto_tw.client.tlsOptions}, offering
    C{h2} and C{http/1.1} by ALPN.
    """
    from twisted.internet import ssl

    from wsproto_tw.client import _HostVerifiedTLS, _UnverifiedTLS, loadTrustRoot

    protocols = [b"h2", b"http/1.1"]
    if insecure:
        unverified = _UnverifiedTLS(hostname)
        unverified._options = ssl.CertificateOptions(acceptableProtocols=protocols)
        return unverified
    if isinstance(trustRoot, str):
        trustRoot = loadTrustRoot(trustRoot)
    return _HostVerifiedTLS(hostname, ssl.optionsForClientTLS(hostname, trustRoot=trustRoot, acceptableProtocols=protocols))
