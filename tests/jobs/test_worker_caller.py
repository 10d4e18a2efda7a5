"""The worker's calls to generation are signed and made for the job's owner: generation
sees whom the job belongs to, with the one scope a job needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.clients import InternalAuth
from easel.core.identity import ApiScope, Caller, current_caller
from easel.core.image_store import ImageStore
from easel.core.internal_guard import InternalAuthMiddleware
from easel.jobs.models import JobStatus
from easel.jobs.worker import Worker, WorkerConfig
from tests.jobs.scripted_generation import ScriptedGeneration, result, sse
from tests.jobs.test_store_conformance import NOW, submit

TOKEN = "worker-and-generation-share-it"


async def test_generation_sees_the_jobs_owner(store: Any, tmp_path: Path) -> None:
    (job,) = await submit(store, request={"prompt": "for alice"}, owner="alice")
    scripted = ScriptedGeneration({"for alice": [[sse(result(1))]]})
    seen: list[Caller] = []

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_caller())
        await scripted(scope, receive, send)

    # Generation as a service with a token is: behind the guard, which refuses unsigned calls.
    generation = InternalAuthMiddleware(recording, service="generation", token=TOKEN, max_age=300)
    transport = StreamingASGITransport(generation)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://generation", auth=InternalAuth(TOKEN)
    ) as client:
        worker = Worker(
            store=store,
            results=ImageStore(tmp_path / "results"),
            generation=client,
            config=WorkerConfig(retry_backoff_s=0),
            clock=lambda: NOW,
        )
        await worker.run_until_idle()
    assert (await store.get(job.id)).status is JobStatus.DONE
    assert seen == [Caller(name="alice", scopes=frozenset({ApiScope.GENERATE}))]
