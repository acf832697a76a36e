"""
A peer built on the C{websockets} package (its asyncio implementation), run
in its own process by the interoperability tests:

    python -m tests.interop.websockets_peer client URL SUBPROTOCOL DEFLATE
        connects to a wsproto_tw echo server offering SUBPROTOCOL (after one
        the server does not speak) and, when DEFLATE is 1,
        permessage-deflate; runs the plan of L{tests.interop.exchange},
        pings, closes with 1000.
    python -m tests.interop.websockets_peer server SUBPROTOCOL DEFLATE
        listens on a free loopback port (printed first, as
        {"listening": PORT}), accepts one connection choosing SUBPROTOCOL,
        echoes every message, pings once and reports after the close.

Both print their verdict as one JSON line and exit; its "errors" list is
empty when everything went as planned.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from tests.interop.plan import OFFERED, STEP, messages, mismatch

LIFETIME = 60.0
MAX_SIZE = 64 << 20
PING = b"ping from websockets"


def report(verdict: dict[str, Any]) -> None:
    verdict["peer"] = f"websockets {websockets.__version__}"
    sys.stdout.write(json.dumps(verdict) + "\n")
    sys.stdout.flush()


def closeOf(ws: Any) -> tuple[int | None, str | None]:
    """
    The code and reason of the Close frame received, if one was.
    """
    received = ws.protocol.close_rcvd
    return (None, None) if received is None else (received.code, received.reason)


async def client(url: str, subprotocol: str, deflate: bool) -> dict[str, Any]:
    errors: list[str] = []
    verdict: dict[str, Any] = {"errors": errors, "echoed": 0}
    async with connect(
        url,
        subprotocols=list(OFFERED),
        compression="deflate" if deflate else None,
        max_size=MAX_SIZE,
        ping_interval=None,
        open_timeout=STEP,
        close_timeout=STEP,
    ) as ws:
        verdict["protocol"] = ws.subprotocol
        verdict["extensionHeader"] = ws.response.headers.get("Sec-WebSocket-Extensions")
        try:
            for message in messages():
                await ws.send(message)
                problem = mismatch(message, await asyncio.wait_for(ws.recv(), STEP))
                if problem:
                    errors.append(problem)
                else:
                    verdict["echoed"] += 1
            # The waiter resolves on the pong that carries this payload.
            pong = await ws.ping(PING)
            await asyncio.wait_for(pong, STEP)
        except (ConnectionClosed, asyncio.TimeoutError) as error:
            errors.append(f"{type(error).__name__}: {error}")
        await ws.close(1000, "done")
    verdict["closeCode"], verdict["closeReason"] = closeOf(ws)
    return verdict


async def server(subprotocol: str, deflate: bool) -> dict[str, Any]:
    errors: list[str] = []
    verdict: dict[str, Any] = {"errors": errors, "echoed": 0, "pongs": []}
    done = asyncio.get_running_loop().create_future()

    async def echo(ws: Any) -> None:
        verdict["protocol"] = ws.subprotocol
        verdict["offeredExtensions"] = ws.request.headers.get("Sec-WebSocket-Extensions")
        verdict["extensionHeader"] = ws.response.headers.get("Sec-WebSocket-Extensions")

        async def ping() -> None:
            await asyncio.wait_for(await ws.ping(PING), STEP)
            verdict["pongs"].append(PING.decode())

        pinging = asyncio.ensure_future(ping())
        try:
            async for message in ws:
                verdict["echoed"] += 1
                await ws.send(message)
        except ConnectionClosed as error:
            errors.append(f"{type(error).__name__}: {error}")
        await ws.wait_closed()
        if not pinging.done():
            pinging.cancel()
            errors.append("no pong to our ping")
        verdict["closeCode"], verdict["closeReason"] = closeOf(ws)
        if not done.done():
            done.set_result(None)

    async with serve(
        echo,
        "127.0.0.1",
        0,
        subprotocols=[subprotocol],
        compression="deflate" if deflate else None,
        max_size=MAX_SIZE,
        ping_interval=None,
        close_timeout=STEP,
    ) as listening:
        port = listening.sockets[0].getsockname()[1]
        sys.stdout.write(json.dumps({"listening": port}) + "\n")
        sys.stdout.flush()
        await done
    return verdict


def main(argv: list[str]) -> int:
    if argv[:1] == ["client"] and len(argv) == 4:
        run = client(argv[1], argv[2], argv[3] == "1")
    elif argv[:1] == ["server"] and len(argv) == 3:
        run = server(argv[1], argv[2] == "1")
    else:
        sys.stderr.write(__doc__ or "")
        return 2

    async def bounded() -> dict[str, Any]:
        try:
            return await asyncio.wait_for(run, LIFETIME)
        except Exception as error:
            return {"errors": [f"{type(error).__name__}: {error}"]}

    report(asyncio.run(bounded()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
