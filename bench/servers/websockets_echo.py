"""
Benchmark peer: the websockets library's asyncio echo server (its default
permessage-deflate support answers a client that offers it).

Usage: python websockets_echo.py PORT
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main():
    port = int(sys.argv[1])
    # No size limit: the benchmark sends messages of up to 16 MiB.
    async with serve(echo, "127.0.0.1", port, max_size=None) as server:
        bound = server.sockets[0].getsockname()[1]
        print(f"listening on {bound}", flush=True)
        await asyncio.get_running_loop().create_future()


asyncio.run(main())
