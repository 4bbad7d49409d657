"""A small TCP load balancer for tests: each new connection goes to the next backend in turn.

Stands in for nginx (docs/deploy/nginx.conf) where the deployment tests start the documented
topology without Docker. It relays bytes both ways and knows nothing of HTTP, so whatever a
client and a replica say to each other passes unchanged.

    with Balancer([("127.0.0.1", 4001), ("127.0.0.1", 4002)]) as lb:
        client = OpenAI(base_url=f"http://127.0.0.1:{lb.port}/v1", ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import Counter


class Balancer:
    """Round-robin over `backends` ((host, port) pairs), on a free port of 127.0.0.1."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.connections: Counter[tuple[str, int]] = Counter()
        self.port = 0
        self._turn = itertools.cycle(backends)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> Balancer:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        started.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backend = next(self._turn)
        self.connections[backend] += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*backend)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
