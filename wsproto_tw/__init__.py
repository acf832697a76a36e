"""
wsproto_tw: WebSocket (RFC 6455, RFC 7692) for Twisted.

Importing this package pulls in nothing else: the sans-I/O core lives in
L{wsproto_tw.core}, the Twisted layer in L{wsproto_tw.server},
L{wsproto_tw.client} and L{wsproto_tw.resource}.
"""

__version__ = "0.1.0"
