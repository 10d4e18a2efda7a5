"""A worker asked to stop stops, whatever the libraries under it do with the request."""

from __future__ import annotations

import asyncio

import httpx

from easel.core.image_store import ImageStore
from easel.jobs.store.sqlite import SQLiteJobStore
from easel.jobs.worker import Worker, WorkerConfig


class SwallowingStore(SQLiteJobStore):
    """Swallows the first cancellation while idle, as Python 3.11's wait_for can under
    redis-py (later ones pass, so a failing test can still clean up)."""

    swallowed = False

    async def wait_for_work(self, timeout: float) -> None:
        try:
            await asyncio.sleep(timeout)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed = True


async def test_a_worker_stops_even_when_its_cancellation_is_swallowed(tmp_path) -> None:
    plain = await SQLiteJobStore.open(tmp_path / "jobs.db")
    store = SwallowingStore(plain.db, plain._thread)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as generation:
        worker = Worker(
            store=store,
            results=ImageStore(tmp_path / "results"),
            generation=generation,
            config=WorkerConfig(poll_interval_s=0.05),
        )
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(0.3)  # idle, in wait_for_work
        running.cancel()
        done, _ = await asyncio.wait({running}, timeout=10)
        if not done:
            running.cancel()
        assert store.swallowed and done == {running} and running.cancelled()
    await store.close()
