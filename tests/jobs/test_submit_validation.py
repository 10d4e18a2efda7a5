"""One validation for every way in: what `POST /api/generate` refuses, `POST
/api/generate/async` and the first-version `POST /generate` refuse at submit, with the
same 422 naming the field, and queue nothing."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.errors import InvalidInput
from easel.core.image_store import ImageStore
from easel.jobs.manager import JobLimits, JobManager
from easel.jobs.models import JobStatus
from easel.jobs.store.sqlite import SQLiteJobStore
from easel.jobs.validation import GenerationCheck
from easel.jobs.worker import Worker, WorkerConfig
from tests.support.images import b64, noise_image
from tests.support.servers import free_port

IMAGE = b64(noise_image(64, 64))

REFUSED = [
    ({}, "prompt"),
    ({"prompt": "x", "style": "no-such-style"}, "style"),
    ({"prompt": "x", "model": "no-such-model"}, "model"),
    ({"prompt": "x", "extra_params": {"strength": {"nested": 1}}}, "extra_params.strength"),
    ({"prompt": "x", "extra_params": {"bogus": {"nested": 1}}}, "extra_params.bogus"),
    ({"prompt": "x", "mask_image": IMAGE}, "input_image"),
    ({"prompt": "x", "model": "tiny-random-qwen-edit"}, "mode"),
    ({"prompt": "x", "input_image": IMAGE, "steps": 1}, "steps"),  # int(1 x 0.75) = 0
    ({"prompt": "x", "face_images": [IMAGE]}, "face_images"),
]


def _fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    return [detail["field"] for detail in error["details"]]


def _jobs(api: httpx.Client) -> int:
    return len(api.get("/api/jobs", params={"limit": 500}).json()["jobs"])


@pytest.mark.parametrize(("body", "field"), REFUSED)
def test_async_refuses_at_submit_what_sync_refuses(
    api: httpx.Client, body: dict, field: str
) -> None:
    before = _jobs(api)
    sync = api.post("/api/generate", json=body)
    queued = api.post("/api/generate/async", json=body)
    assert field in _fields(sync)
    assert field in _fields(queued)
    assert queued.json()["error"]["details"] == sync.json()["error"]["details"]
    assert _jobs(api) == before  # nothing was queued


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "text-to-image", "prompt": "x", "face_images": [IMAGE]}, "face_images"),
        ({"mode": "text-to-image", "prompt": "x", "bogus": 1}, "bogus"),
        ({"mode": "text-to-image", "prompt": "x", "style": "no-such-style"}, "style"),
        ({"mode": "text-to-image"}, "prompt"),
        ({"mode": "edit", "prompt": "x"}, "target_image"),
        ({"mode": "text-to-image", "prompt": "x", "extra_params": {"a": {"b": 1}}},
         "extra_params.a"),
        ({"mode": "edit", "prompt": "x", "target_image": IMAGE,
          "extra_params": {"strength": 0.01}}, "extra_params.strength"),
    ],
)  # fmt: skip
def test_the_first_version_generate_refuses_at_submit(
    api: httpx.Client, body: dict, field: str
) -> None:
    before = _jobs(api)
    assert field in _fields(api.post("/generate", json=body))
    assert _jobs(api) == before


def test_face_images_is_refused_as_a_non_goal(api: httpx.Client) -> None:
    body = {"mode": "edit", "prompt": "x", "target_image": IMAGE, "face_images": [IMAGE]}
    response = api.post("/generate", json=body)
    assert _fields(response) == ["face_images"]
    assert "face" in response.json()["error"]["message"]


# ---- the job manager's check itself: generation judges, or is not waited for ------------


class Generation:
    """A generation service stand-in: `/api/generate/validate` answers `status` with
    `error`; the stream refuses every request with the same 422 (a job accepted
    unchecked, refused when it runs)."""

    def __init__(self, status: int, error: dict | None = None) -> None:
        self.status = status
        self.error = error or {"code": "invalid_input", "message": "style: unknown style"}
        self.checked: list[dict] = []
        self.streamed = 0

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope, receive)
        if scope["path"] == "/api/generate/validate":
            self.checked.append(json.loads(await request.body()))
            status, body = self.status, {"error": self.error, "request_id": None}
        else:
            self.streamed += 1
            status = 422
            body = {"error": self.error, "request_id": None}
        await JSONResponse(body, status_code=status)(scope, receive, send)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=StreamingASGITransport(self), base_url="http://generation"
        )


def manager_of(store, tmp_path, client: httpx.AsyncClient) -> JobManager:
    return JobManager(
        store=store,
        results=ImageStore(tmp_path / "results"),
        limits=JobLimits(max_queued=10, max_attempts=3, timeout_s=30, concurrency=1),
        check=GenerationCheck(client, timeout=5),
    )


async def test_generations_refusal_at_submit_is_the_submits(tmp_path) -> None:
    error = {
        "code": "invalid_input",
        "message": "style: unknown style 'x'",
        "details": [{"field": "style", "message": "unknown style 'x'"}],
    }
    generation = Generation(422, error)
    store = await SQLiteJobStore.open(tmp_path / "jobs.db")
    try:
        async with generation.client() as client:
            with pytest.raises(InvalidInput) as refused:
                await manager_of(store, tmp_path, client).submit(
                    {"prompt": "x", "style": "x", "timeout": 5}, idempotency_key=None
                )
        assert refused.value.details == error["details"]
        assert generation.checked == [{"prompt": "x", "mode": "text-to-image", "style": "x"}]
        assert (await store.counts())[JobStatus.QUEUED] == 0
    finally:
        await store.close()


@pytest.mark.parametrize("reachable", [False, True])
async def test_a_job_is_accepted_unchecked_when_generation_cannot_judge_and_then_fails_once(
    tmp_path, reachable: bool
) -> None:
    # Unreachable (nothing listens on the port), or answering 503: accepted on the schema.
    generation = Generation(503, {"code": "service_unavailable", "message": "loading"})
    down = httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}")
    store = await SQLiteJobStore.open(tmp_path / "jobs.db")
    try:
        async with generation.client() as up, down:
            client = up if reachable else down
            job = await manager_of(store, tmp_path, client).submit(
                {"prompt": "x", "style": "x"}, idempotency_key=None
            )
            # The schema is still checked without generation.
            with pytest.raises(InvalidInput) as nested:
                await manager_of(store, tmp_path, client).submit(
                    {"prompt": "x", "extra_params": {"a": {"b": 1}}}, idempotency_key=None
                )
            assert [d["field"] for d in nested.value.details] == ["extra_params.a"]
            # It runs; generation refuses it: failed as invalid input, not tried again.
            worker = Worker(
                store=store,
                results=ImageStore(tmp_path / "results"),
                generation=generation.client(),
                config=WorkerConfig(retry_backoff_s=0),
            )
            await worker.run_until_idle()
        done = await store.get(job.id)
        assert done is not None and done.status is JobStatus.FAILED
        assert done.attempts == 1 and generation.streamed == 1
        assert done.error is not None and done.error["status"] == 422
    finally:
        await store.close()
