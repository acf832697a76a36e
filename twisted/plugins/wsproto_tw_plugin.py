"""
The C{twistd websocket} plugin: a pointer to L{wsproto_tw.tap}.
"""

from twisted.application.service import ServiceMaker

websocket = ServiceMaker(
    "wsproto_tw", "wsproto_tw.tap", "WebSocket server (RFC 6455/7692), echo by default.", "websocket"
)
