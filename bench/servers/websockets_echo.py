"""
Benchmark peer: the websockets library's asyncio echo server (its default
permessage-deflate support answers a client that offers it). With
--broadcast, its broadcast pattern instead: every message from one client
goes to every open client, the sender included, with websockets'
broadcast() (a frame written to each connection at once, without a
coroutine per client).

Usage: python websockets_echo.py PORT [--broadcast]
"""

import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def fanout(websocket):
    CLIENTS.add(websocket)
    try:
        async for message in websocket:
            broadcast(CLIENTS, message)
    finally:
        CLIENTS.discard(websocket)


async def main():
    port = int(sys.argv[1])
    handler = fanout if "--broadcast" in sys.argv else echo
    # No size limit: the benchmark sends messages of up to 16 MiB.
    async with serve(handler, "127.0.0.1", port, max_size=None) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on {bound}", flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
