"""
The sans-I/O core of wsproto_tw: bytes in, events out; commands in, bytes
out. It imports neither Twisted nor zope, reads no clock and does no I/O.
"""

from wsproto_tw.core.codes import CloseCode, Opcode
from wsproto_tw.core.config import Config
from wsproto_tw.core.connection import ClientConnection, Role, ServerConnection, State
from wsproto_tw.core.handshake import HandshakeRequest, HandshakeResponse, compute_accept

__all__ = [
    "ClientConnection",
    "CloseCode",
    "Config",
    "HandshakeRequest",
    "HandshakeResponse",
    "Opcode",
    "Role",
    "ServerConnection",
    "State",
    "compute_accept",
]
