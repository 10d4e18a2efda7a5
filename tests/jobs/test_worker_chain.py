"""A busy worker claims its next job in the same step as the finish of the last one."""

from __future__ import annotations

import base64
import io
import json

import httpx
from PIL import Image

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.image_store import ImageStore
from easel.jobs.models import JobStatus
from easel.jobs.worker import Worker, WorkerConfig
from tests.jobs.test_store_conformance import NOW, submit


def instant_generation():
    """The generation service's stream protocol, answered at once (queued, one step, a
    1x1 result): the worker's side of the exchange is what these tests are about."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    image = {"image": base64.b64encode(buffer.getvalue()).decode(), "seed": 0, "format": "png"}

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        for name, data in (
            ("queued", {"type": "queued", "position": 0}),
            ("progress", {"type": "progress", "step": 1, "total": 1}),
            ("result", {"type": "result", "result": {"images": [image], "seed": 0}}),
        ):
            body = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://generation")


class CountingStore:
    """The real store, counting separate claims against claims that rode with a finish."""

    def __init__(self, store) -> None:
        self.store = store
        self.claims = self.chained = 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def claim(self, worker_id, *, now):
        job = await self.store.claim(worker_id, now=now)
        self.claims += job is not None
        return job

    async def finish_and_claim(self, job_id, worker_id, **ending):
        owned, job = await self.store.finish_and_claim(job_id, worker_id, **ending)
        self.chained += job is not None
        return owned, job


async def run_worker(store, tmp_path, *, stopping: bool = False) -> CountingStore:
    counting = CountingStore(store)
    async with instant_generation() as generation:
        worker = Worker(
            store=counting,
            results=ImageStore(tmp_path / "results"),
            generation=generation,
            config=WorkerConfig(),
            clock=lambda: NOW,
        )
        worker.stopping = stopping
        await worker.run_until_idle()
    return counting


async def test_a_busy_worker_chains_its_jobs_through_finish(store, tmp_path) -> None:
    jobs = await submit(store, 4)
    counting = await run_worker(store, tmp_path)
    assert (counting.claims, counting.chained) == (1, 3)
    for job in jobs:
        done = await store.get(job.id)
        assert done.status is JobStatus.DONE and done.attempts == 1
        names = [event.type for _, event in await store.read(job.id, after=0)]
        assert names == ["queued", "started", "generation_queued", "progress", "result"]


async def test_a_stopping_worker_claims_nothing_more(store, tmp_path) -> None:
    jobs = await submit(store, 2)
    counting = await run_worker(store, tmp_path, stopping=True)
    # run_until_idle claims each job itself, as nothing rides with a stopping finish.
    assert (counting.claims, counting.chained) == (2, 0)
    assert all([(await store.get(job.id)).status is JobStatus.DONE for job in jobs])
