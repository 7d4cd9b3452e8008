"""Run an ASGI app on a real HTTP server on 127.0.0.1 in a background thread."""

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp


class QuickServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as it is told to.

    uvicorn looks at `should_exit` every 0.1 s and then sleeps 0.1 s more before closing its
    connections: 0.15 s per stop, which the suite paid once per test serving an app.
    """

    async def main_loop(self) -> None:
        """Serve until `should_exit`, looking every 10 ms."""
        counter = 0
        while not await self.on_tick(counter):
            counter += 1
            await asyncio.sleep(0.01)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, with the connections given 10 ms (not 100) to close."""
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0.01)
        await self._wait_tasks_to_complete()
        if not self.force_exit:
            await self.lifespan.shutdown()


@contextmanager
def live_server(app: ASGIApp) -> Iterator[str]:
    """Serve `app` on a free loopback port for the duration of the block; yield its base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="on", loop="asyncio", access_log=False)
    server = QuickServer(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not server.started:
            raise RuntimeError("test server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
