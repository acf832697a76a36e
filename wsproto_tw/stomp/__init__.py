# -*- test-case-name: tests.stomp -*-
"""
STOMP 1.0, 1.1 and 1.2 over WebSocket.

The modules of this package, except L{wsproto_tw.stomp.twisted}, are
sans-I/O and import neither Twisted nor zope: L{frames} (the codec),
L{session} (one client's protocol state), L{broker} (destinations,
subscriptions and acknowledgements) and L{routing} (application
destinations).
"""
