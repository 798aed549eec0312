"""`python -m bench.bare_ws PORT`: the bare websockets baseline for fan-out and memory.

Clients send one first message (as ours send their key) and get a short snapshot; every
message on `/control` is sent to all of them with `websockets.broadcast`, unchanged.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve


async def serve_until_terminated(port: int) -> None:
    clients: set[ServerConnection] = set()

    async def handler(websocket: ServerConnection) -> None:
        if websocket.request is not None and websocket.request.path == "/control":
            async for message in websocket:
                broadcast(clients, message)
            return
        await websocket.recv()
        await websocket.send('{"type":"snapshot"}')
        clients.add(websocket)
        try:
            await websocket.wait_closed()
        finally:
            clients.discard(websocket)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=65_536) as server:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, server.close)
        loop.add_signal_handler(signal.SIGINT, server.close)
        await server.wait_closed()


def main() -> None:
    uvloop.run(serve_until_terminated(int(sys.argv[1])))


if __name__ == "__main__":
    main()
