"""The worker reads the generation service's event stream as the SSE format defines it
(httpx-sse), whatever the writer's choices, and treats a stream it cannot read as a
transient failure: the job is tried again, not crashed."""

from __future__ import annotations

import hashlib

from easel.core.events import (
    GenerationQueued,
    GenerationStarted,
    JobFailed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    Progress,
)
from easel.core.image_store import ImageStore
from easel.jobs.models import JobStatus
from tests.jobs.scripted_generation import (
    IMAGE,
    IMAGE_B64,
    ScriptedGeneration,
    result,
    run_jobs,
    sse,
)
from tests.jobs.test_store_conformance import submit

DIGEST = hashlib.sha256(IMAGE).hexdigest()
STORED = {"images": [{"seed": 7, "format": "png", "sha256": DIGEST}], "seed": 7}

# What the old hand-written parser got wrong or skipped: a comment (ping) line, a block
# with only `retry:`, `id:` lines, one event's JSON over several `data:` lines, an event
# with no `event:` line (SSE's default type, "message": the data names its own type), no
# space after `data:`, LF and CR line ends, and an event cut across two chunks.
LIBERAL_STREAM = [
    b": ping - 2026-01-01 00:00:00.000000\r\n\r\n",
    b"retry: 3000\r\n\r\n",
    b'id: 1\r\nevent: queued\r\ndata: {"type": "queued",\r\ndata:  "position": 0,\r\n'
    b'data: "request_id": "r1"}\r\n\r\n',
    b'id: 2\r\ndata: {"type": "started", "batch_size": 2, "batch_requests": 1}\r\n\r\n',
    b'id: 3\nevent: progress\ndata:{"type":"progress","step":1,',
    b'"total":2,"preview":null}\n\n: keep-alive\n\n',
    b'id: 4\revent: progress\rdata: {"type": "progress", "step": 2, "total": 2}\r\r',
    sse(result(7), event_id=5),
]


async def log_of(store, job_id: str) -> list:
    return [event for _, event in await store.read(job_id, after=0)]


async def test_a_stream_using_the_whole_sse_format_is_read_event_by_event(store, tmp_path) -> None:
    (job,) = await submit(store, request={"prompt": "liberal"})
    await run_jobs(store, tmp_path, ScriptedGeneration({"liberal": [LIBERAL_STREAM]}))
    assert await log_of(store, job.id) == [
        JobQueued(),
        JobStarted(attempt=1),
        GenerationQueued(position=0, request_id="r1"),
        GenerationStarted(batch_size=2, batch_requests=1),
        Progress(step=1, total=2),
        Progress(step=2, total=2),
        JobSucceeded(result=STORED),
    ]
    done = await store.get(job.id)
    assert done.status is JobStatus.DONE and done.attempts == 1
    assert (done.progress_step, done.progress_total) == (2, 2) and done.result == STORED
    assert ImageStore(tmp_path / "results").load(DIGEST) == IMAGE
    assert IMAGE_B64 in LIBERAL_STREAM[-1].decode()


async def test_events_that_are_not_events_make_the_attempt_transient(store, tmp_path) -> None:
    """A field of the wrong type, then data that is not JSON: each attempt is retried (the
    log says why); the third attempt's good stream finishes the job."""
    queued = sse({"type": "queued", "position": 0, "request_id": "r"})
    generation = ScriptedGeneration(
        {
            "flaky": [
                [queued, b'event: progress\r\ndata: {"type": "progress", "step": "one"}\r\n\r\n'],
                [b"event: result\r\ndata: not json\r\n\r\n"],
                [sse({"type": "progress", "step": 1, "total": 1}), sse(result(7))],
            ]
        }
    )
    (job,) = await submit(store, request={"prompt": "flaky"}, max_attempts=3)
    await run_jobs(store, tmp_path, generation)
    assert generation.asked == ["flaky"] * 3
    logged = await log_of(store, job.id)
    assert [event.type for event in logged] == [
        "queued", "started", "generation_queued",
        "queued", "started",
        "queued", "started", "progress", "result",
    ]  # fmt: skip
    for retry in (logged[3], logged[5]):
        assert isinstance(retry, JobQueued) and retry.retry is True
        assert retry.error is not None and retry.error["code"] == "upstream_failed"
        assert "not an event" in retry.error["message"]
    assert "not json" in logged[5].error["message"]
    done = await store.get(job.id)
    assert done.status is JobStatus.DONE and done.attempts == 3 and done.result == STORED


async def test_a_stream_never_readable_fails_the_job_as_upstream_failed(store, tmp_path) -> None:
    generation = ScriptedGeneration({"garbled": [[b"data: {\r\n\r\n"]]})
    (job,) = await submit(store, request={"prompt": "garbled"}, max_attempts=1)
    await run_jobs(store, tmp_path, generation)
    failed = await store.get(job.id)
    assert failed.status is JobStatus.FAILED and failed.error["code"] == "upstream_failed"
    last = (await log_of(store, job.id))[-1]
    assert isinstance(last, JobFailed) and last.error == failed.error
