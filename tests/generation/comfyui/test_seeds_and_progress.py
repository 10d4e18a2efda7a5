"""The ComfyUI engine against the protocol-faithful fake: a workflow's declared seed bounds
hold (random seeds drawn inside them, an out-of-range seed refused before anything is
sent), and requests sharing a call each see their own progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from easel.generation.app import create_app
from easel.generation.engines.comfyui.workflows import EXAMPLES
from easel.generation.settings import GenerationSettings
from tests.generation.comfyui.helpers import until, until_waiting
from tests.generation.helpers import sse_events
from tests.support.fake_comfyui import FakeComfyUI

LOW, HIGH = 10, 20
T2I = {"model": "low-seed", "prompt": "a boat", "steps": 3, "width": 64, "height": 64}


def low_seed_workflow(folder: Path) -> Path:
    """The shipped text-to-image workflow, its seed declared as LOW..HIGH."""
    raw = json.loads((EXAMPLES / "text-to-image.json").read_text())
    raw["easel"]["parameters"]["seed"].update(min=LOW, max=HIGH, default=LOW)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "low-seed.json").write_text(json.dumps(raw))
    return folder


@asynccontextmanager
async def service(
    fake: FakeComfyUI, tmp: Path, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        GenerationSettings(
            generation_engine="comfyui",
            comfyui_api_url=fake.url,
            workflows_path=low_seed_workflow(tmp / "workflows"),
            comfyui_poll_interval=0.1,
            comfyui_reconnect_backoff=0.05,
            connect_timeout=2,
            data_dir=tmp / "data",
            **{"batch_window_ms": 0, **settings},
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://generation", timeout=60
        ) as client:
            yield client


def sent_seeds(fake: FakeComfyUI, since: int) -> list[int]:
    return [prompt["prompt"]["3"]["inputs"]["seed"] for prompt in fake.prompts[since:]]


async def test_random_seeds_are_drawn_within_the_declared_bounds(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    before = len(fake.prompts)
    async with service(fake, tmp_path) as api:
        for _ in range(4):
            answer = await api.post("/api/generate", json={**T2I, "num_images": 2})
            assert answer.status_code == 200, answer.text
            assert all(LOW <= image["seed"] <= HIGH for image in answer.json()["images"])
    seeds = sent_seeds(fake, before)
    assert len(seeds) == 8 and all(LOW <= seed <= HIGH for seed in seeds), seeds


async def test_the_seeds_of_several_images_wrap_within_the_bounds(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    before = len(fake.prompts)
    async with service(fake, tmp_path) as api:
        answer = await api.post("/api/generate", json={**T2I, "num_images": 3, "seed": HIGH - 1})
    assert answer.status_code == 200, answer.text
    assert [image["seed"] for image in answer.json()["images"]] == [HIGH - 1, HIGH, LOW]
    assert sent_seeds(fake, before) == [HIGH - 1, HIGH, LOW]


async def test_an_out_of_range_seed_is_422_before_anything_is_sent(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    before = (len(fake.prompts), fake.number, len(fake.uploads))
    async with service(fake, tmp_path) as api:
        for seed in (HIGH + 1, LOW - 1):
            answer = await api.post("/api/generate", json={**T2I, "seed": seed})
            assert answer.status_code == 422, answer.text
            details = answer.json()["error"]["details"]
            assert [d["field"] for d in details] == ["seed"]
            assert f"{LOW}" in details[0]["message"] and f"{HIGH}" in details[0]["message"]
    assert (len(fake.prompts), fake.number, len(fake.uploads)) == before


async def test_requests_sharing_a_call_each_see_their_own_progress(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    # A request finding a free call slot starts at once, so the two are made to gather: a
    # blocker holds the only slot (max_queued 1) until both wait, then is cancelled; the
    # window closes as soon as both are in (batch_max_images 2).
    settings = {"batch_window_ms": 30_000, "batch_max_images": 2, "comfyui_max_queued": 1}
    async with service(fake, tmp_path, **settings) as api:
        fake.hold(step=1)
        blocker = asyncio.create_task(
            api.post("/api/generate", json=T2I, headers={"X-Request-ID": "blocker"})
        )
        await until(fake.is_held, "the blocker at the hold")
        streams = [
            asyncio.create_task(
                api.post("/api/generate/stream", json={**T2I, "prompt": prompt, "seed": LOW})
            )
            for prompt in ("one", "two")
        ]
        await until_waiting(api, 2)
        assert (await api.post("/api/generate/requests/blocker/cancel")).status_code == 200
        assert (await blocker).json()["error"]["code"] == "cancelled"
        fake.release()
        answers = [await stream for stream in streams]
    for answer in answers:
        events = list(sse_events(answer))
        started = next(data for name, data in events if name == "started")
        assert started["batch_requests"] == 2
        progress = [(data["step"], data["total"]) for name, data in events if name == "progress"]
        assert progress and all(total == T2I["steps"] for _, total in progress), progress
        assert progress[-1] == (T2I["steps"], T2I["steps"])
        assert [step for step, _ in progress] == sorted(step for step, _ in progress)
        assert events[-1][0] == "result"
