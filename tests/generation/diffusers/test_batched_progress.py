"""Requests batched into one diffusers pipeline call each see their own progress: the
call's step of the schedule that strength leaves (not counted over the batch)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from easel.generation.app import create_app
from easel.generation.settings import GenerationSettings
from tests.generation.helpers import gathered_responses, sse_events
from tests.support.images import b64, noise_image

IMAGE = b64(noise_image(64, 64))

# As in test_calls.py: a numpy 2 deprecation inside diffusers' scheduler, an error here only.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


async def test_batched_edits_each_report_their_own_steps(tmp_path: Path) -> None:
    settings = GenerationSettings(
        data_dir=tmp_path,
        generation_model="tiny-random",
        generation_load="lazy",
        batch_max_images=2,
    )
    app = create_app(settings)
    body = {"input_image": IMAGE, "steps": 4, "extra_params": {"strength": 0.5}, "seed": 1}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        # Both gather while a long call runs, so they share the next one.
        answers = await gathered_responses(
            "http://generation",
            [{**body, "prompt": prompt} for prompt in ("one", "two")],
            path="/api/generate/stream",
            transport=transport,
        )
    for answer in answers:
        events = list(sse_events(answer))
        assert next(data for name, data in events if name == "started")["batch_requests"] == 2
        progress = [(data["step"], data["total"]) for name, data in events if name == "progress"]
        assert progress == [(1, 2), (2, 2)]  # int(4 x 0.5) steps run, for each request
        assert events[-1][0] == "result"
