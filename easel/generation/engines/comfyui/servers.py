"""The ComfyUI servers an engine runs calls on: one client each, and the choice of server
for a call (a connected one with the fewest of our calls on it, the first listed on a tie).

A call stays on the server it started on (its prompts, uploads and history live there);
each server holds up to `COMFYUI_MAX_QUEUED` calls, so the engine runs that many per server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from easel.core.errors import ServiceUnavailable
from easel.generation.engines.comfyui.client import ComfyUIClient


class ComfyUIServers:
    def __init__(self, clients: list[ComfyUIClient]) -> None:
        assert clients, "at least one ComfyUI server"
        self.clients = clients
        self.calls = {id(client): 0 for client in clients}  # our calls on each, now

    @property
    def first(self) -> ComfyUIClient:
        return self.clients[0]

    @property
    def connected(self) -> bool:
        return any(client.connected for client in self.clients)

    async def start(self) -> None:
        await asyncio.gather(*(client.start() for client in self.clients))

    async def close(self) -> None:
        await asyncio.gather(*(client.close() for client in self.clients))

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[ComfyUIClient]:
        """The least-loaded connected server, held for one call; 503 while none is up."""
        if not self.connected:
            await self._wait_for_any()
        up = [client for client in self.clients if client.connected]
        if not up:
            unreachable = ", ".join(client.base_url for client in self.clients)
            raise ServiceUnavailable(
                self.first.last_error or f"ComfyUI at {unreachable} is unreachable",
                headers={"Retry-After": "5"},
            )
        client = min(up, key=lambda c: self.calls[id(c)])  # min keeps the first on a tie
        self.calls[id(client)] += 1
        try:
            yield client
        finally:
            self.calls[id(client)] -= 1

    async def _wait_for_any(self) -> None:
        """Until one server's websocket is open, or each has had connect_timeout to open."""
        waits = {
            asyncio.create_task(client.wait_connected(client.connect_timeout))
            for client in self.clients
        }
        try:
            while waits:
                done, waits = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if any(task.result() for task in done):
                    return
        finally:
            for task in waits:
                task.cancel()
