# -*- test-case-name: tests.sockjs -*-
"""
SockJS 0.3 (what C{sockjs-client} 1.x speaks): the same applications,
reached over HTTP streaming and polling when a proxy blocks the WebSocket
upgrade.

L{frames} (framing, JSON, transports) and L{session} (one session's state
and deadlines) are sans-I/O and import neither Twisted nor zope;
L{resource} is the C{twisted.web} resource, L{transport} the session as
the applications' L{IWebSocketTransport
<wsproto_tw.interfaces.IWebSocketTransport>}.
"""
