"""What clients receive of a job's events, byte for byte as before the events were typed:
the events endpoint's `id:`/`event:`/`data:` lines and webhook bodies.

The job manager app runs in-process (its lifespan run here) on a SQLite store; a worker
runs the jobs here against a scripted generation stream, as a real one would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from easel.core.events import JobCancelled, JobFailed, JobStarted, JobSucceeded, Progress
from easel.core.image_store import ImageStore
from easel.jobs.app import create_app
from easel.jobs.models import Job, WebhookSpec
from easel.jobs.settings import JobsSettings
from easel.jobs.store.sqlite import SQLiteJobStore
from easel.jobs.webhooks import message
from easel.jobs.worker import Worker, WorkerConfig
from tests.jobs.scripted_generation import IMAGE_B64, ScriptedGeneration, result, sse
from tests.jobs.test_worker_stream import DIGEST

SCRIPTS = {
    # A transient failure (503) after some progress, then a run to the end.
    "fox": [
        [
            sse({"type": "queued", "position": 1, "request_id": "r1"}, event_id=1),
            sse({"type": "started", "batch_size": 2, "batch_requests": 2}, event_id=2),
            sse({"type": "progress", "step": 1, "total": 2, "preview": "iVBOR"}, event_id=3),
            sse(
                {
                    "type": "error",
                    "error": {"code": "unavailable", "message": "GPU gone"},
                    "status": 503,
                },
                event_id=4,
            ),  # fmt: skip
        ],
        [
            sse({"type": "queued", "position": 0, "request_id": "r2"}),
            sse({"type": "started", "batch_size": 1, "batch_requests": 1}),
            sse({"type": "progress", "step": 1, "total": 2, "preview": None}),
            sse({"type": "progress", "step": 2, "total": 2, "preview": None}),
            sse(result(7)),
        ],
    ],
    "refused": [
        [
            sse(
                {
                    "type": "error",
                    "status": 422,
                    "error": {
                        "code": "invalid_input",
                        "message": "no",
                        "details": {"field": "width"},
                    },
                }
            )
        ]
    ],  # fmt: skip
    "stopped": [[sse({"type": "cancelled", "reason": "the request was cancelled"})]],
}

FOX = (
    "id: 1\r\nevent: queued\r\n"
    'data: {"type": "queued", "status": "queued"}\r\n\r\n'
    "id: 2\r\nevent: started\r\n"
    'data: {"type": "started", "attempt": 1}\r\n\r\n'
    "id: 3\r\nevent: generation_queued\r\n"
    'data: {"type": "generation_queued", "position": 1, "request_id": "r1"}\r\n\r\n'
    "id: 4\r\nevent: generation_started\r\n"
    'data: {"type": "generation_started", "batch_size": 2, "batch_requests": 2}\r\n\r\n'
    "id: 5\r\nevent: progress\r\n"
    'data: {"type": "progress", "step": 1, "total": 2, "preview": "iVBOR"}\r\n\r\n'
    "id: 6\r\nevent: queued\r\n"
    'data: {"type": "queued", "status": "queued", "retry": true, "error": {"code":'
    ' "upstream_failed", "message": "generation failed: {\'code\': \'unavailable\','
    " 'message': 'GPU gone'}\"}}\r\n\r\n"
    "id: 7\r\nevent: started\r\n"
    'data: {"type": "started", "attempt": 2}\r\n\r\n'
    "id: 8\r\nevent: generation_queued\r\n"
    'data: {"type": "generation_queued", "position": 0, "request_id": "r2"}\r\n\r\n'
    "id: 9\r\nevent: generation_started\r\n"
    'data: {"type": "generation_started", "batch_size": 1, "batch_requests": 1}\r\n\r\n'
    "id: 10\r\nevent: progress\r\n"
    'data: {"type": "progress", "step": 1, "total": 2}\r\n\r\n'
    "id: 11\r\nevent: progress\r\n"
    'data: {"type": "progress", "step": 2, "total": 2}\r\n\r\n'
    "id: 12\r\nevent: result\r\n"
    'data: {"type": "result", "status": "done", "result": {"images": [{"seed": 7, "format":'
    f' "png", "sha256": "{DIGEST}", "image": "{IMAGE_B64}"}}], "seed": 7}}}}\r\n\r\n'
)
START = (
    "id: 1\r\nevent: queued\r\n"
    'data: {"type": "queued", "status": "queued"}\r\n\r\n'
    "id: 2\r\nevent: started\r\n"
    'data: {"type": "started", "attempt": 1}\r\n\r\n'
)
REFUSED = START + (
    "id: 3\r\nevent: error\r\n"
    'data: {"type": "error", "status": "failed", "error": {"code": "invalid_input",'
    ' "message": "no", "details": {"field": "width"}, "status": 422}}\r\n\r\n'
)
STOPPED = START + (
    'id: 3\r\nevent: cancelled\r\ndata: {"type": "cancelled", "status": "cancelled"}\r\n\r\n'
)
NEVER_RUN = (
    "id: 1\r\nevent: queued\r\n"
    'data: {"type": "queued", "status": "queued"}\r\n\r\n'
    'id: 2\r\nevent: cancelled\r\ndata: {"type": "cancelled", "status": "cancelled"}\r\n\r\n'
)


@asynccontextmanager
async def job_manager(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, JobsSettings]]:
    settings = JobsSettings(
        data_dir=tmp_path / "data", jobs_backend="sqlite", jobs_in_process_worker=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobs") as client:
            yield client, settings


async def run_worker(settings: JobsSettings) -> None:
    store = await SQLiteJobStore.open(settings.data_dir / "jobs.db")
    try:
        async with ScriptedGeneration(SCRIPTS).client() as generation:
            worker = Worker(
                store=store,
                results=ImageStore(settings.images_path),
                generation=generation,
                config=WorkerConfig(retry_backoff_s=0),
            )
            await worker.run_until_idle()
    finally:
        await store.close()


async def test_the_events_endpoint_writes_what_it_always_wrote(tmp_path) -> None:
    async with job_manager(tmp_path) as (api, settings):
        submitted = {}
        for prompt in ("fox", "refused", "stopped", "never run"):
            answer = await api.post("/api/generate/async", json={"prompt": prompt, "seed": 7})
            submitted[prompt] = answer.json()["task_id"]
        cancel = await api.post(f"/api/generate/cancel/{submitted['never run']}")
        assert cancel.json()["status"] == "cancelled"
        await run_worker(settings)
        for prompt, expected in (
            ("fox", FOX),
            ("refused", REFUSED),
            ("stopped", STOPPED),
            ("never run", NEVER_RUN),
        ):
            response = await api.get(f"/api/generate/events/{submitted[prompt]}")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.text == expected, prompt
        replay = await api.get(
            f"/api/generate/events/{submitted['fox']}", headers={"Last-Event-ID": "10"}
        )
        assert replay.text == FOX[FOX.index("id: 11\r\n") :]


def test_webhook_bodies_keep_their_keys() -> None:
    job = Job(
        id="job1",
        request={"prompt": "x"},
        created_at=0,
        updated_at=0,
        webhook=WebhookSpec(url="https://hooks.example/x"),
    )
    events = (
        JobStarted(attempt=1),
        Progress(step=1, total=2, preview="iVBOR"),
        JobSucceeded(result={"images": [{"seed": 7, "sha256": DIGEST}], "seed": 7}),
        JobFailed(error={"code": "timeout", "message": "late"}),
        JobCancelled(),
    )
    stamp = '"timestamp": "1970-01-01T00:00:00+00:00"'
    assert [json.dumps(message(job, event, now=0)) for event in events] == [
        f'{{"type": "job.started", {stamp}, "data": {{"task_id": "job1", "attempt": 1,'
        ' "status": "running"}}',
        f'{{"type": "job.progress", {stamp}, "data": {{"task_id": "job1", "step": 1,'
        ' "total": 2, "status": "running"}}',
        f'{{"type": "job.done", {stamp}, "data": {{"task_id": "job1", "status": "done",'
        f' "result": {{"images": [{{"seed": 7, "sha256": "{DIGEST}"}}], "seed": 7}}}}}}',
        f'{{"type": "job.failed", {stamp}, "data": {{"task_id": "job1", "status": "failed",'
        ' "error": {"code": "timeout", "message": "late"}}}',
        f'{{"type": "job.cancelled", {stamp}, "data": {{"task_id": "job1",'
        ' "status": "cancelled"}}',
    ]
