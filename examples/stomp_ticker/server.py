"""
A stock ticker over STOMP: the page (public/index.html) at /, STOMP over
WebSocket at /stomp, on one port.

    python examples/stomp_ticker/server.py              # open http://localhost:8080/
    python examples/stomp_ticker/server.py tcp:0

Every second the server publishes each symbol's price, as JSON, to
/topic/price.SYMBOL. A page sends a trade ({"symbol": ..., "shares": ...})
to /app/trade; the handler answers that page alone, on /topic/position,
with its holdings. Any STOMP client can do the same (offer v10.stomp,
v11.stomp or v12.stomp, or none).
"""

import json
import os
import random
import sys
import weakref

from twisted.internet import defer, endpoints, task
from twisted.web.server import Site
from twisted.web.static import File

from wsproto_tw.core import Config
from wsproto_tw.resource import WebSocketResource
from wsproto_tw.stomp.config import StompConfig
from wsproto_tw.stomp.errors import StompError
from wsproto_tw.stomp.server import StompServer


class Market:
    """
    Prices that wander a little every tick.
    """

    def __init__(self, prices, seed=None):
        self.prices = dict(prices)
        self.random = random.Random(seed)

    def tick(self):
        for symbol, price in self.prices.items():
            self.prices[symbol] = round(max(1.0, price * (1 + self.random.uniform(-0.01, 0.01))), 2)
        return self.prices


def ticker(reactor, market):
    """
    The STOMP server of the ticker: prices published from a timer, trades
    handled at /app/trade.
    """
    server = StompServer(StompConfig(heart_beat=(10000, 10000)), reactor=reactor)
    holdings = weakref.WeakKeyDictionary()  # session -> {symbol: shares}

    @server.route("/app/trade")
    def trade(request):
        try:
            order = json.loads(request.text)
            symbol, shares = order["symbol"], int(order["shares"])
        except (ValueError, KeyError, TypeError):
            raise StompError("a trade is {\"symbol\": ..., \"shares\": ...}") from None
        if symbol not in market.prices:
            raise StompError(f"no symbol {symbol}")
        mine = holdings.setdefault(request.session, {})
        mine[symbol] = mine.get(symbol, 0) + shares
        request.reply("/topic/position", json.dumps(mine), [("content-type", "application/json")])

    def publishPrices():
        for symbol, price in market.tick().items():
            body = json.dumps({"symbol": symbol, "price": price})
            server.publish(f"/topic/price.{symbol}", body, [("content-type", "application/json")])

    task.LoopingCall(publishPrices).start(1.0, now=False)
    return server


async def main(reactor, description="tcp:8080"):
    market = Market({"ACME": 101.25, "GLOBEX": 48.10, "INITECH": 12.70})
    server = ticker(reactor, market)
    root = File(os.path.join(os.path.dirname(os.path.abspath(__file__)), "public"))
    root.putChild(b"stomp", WebSocketResource(server.buildApplication, Config(max_message_size=65536)))
    try:
        port = await endpoints.serverFromString(reactor, description).listen(Site(root))
    except Exception as exc:  # a bad endpoint string, a port in use, ...
        raise SystemExit(f"stomp_ticker: can't listen on {description}: {exc}")
    address = port.getHost()
    print(f"stomp_ticker listening on http://{address.host}:{address.port}/", flush=True)
    await defer.Deferred()  # serve until interrupted


if __name__ == "__main__":
    task.react(lambda reactor, *args: defer.ensureDeferred(main(reactor, *args)), sys.argv[1:])
