"""When the engine reads a prompt's history: once ComfyUI says the entry is written
(`executing` with node null, after `execution_success`), so a prompt costs one `/history`
read, not one that finds nothing first; and a moment after the end event if that marker
never comes."""

from __future__ import annotations

from pathlib import Path

from tests.generation.comfyui.helpers import T2I, service
from tests.support.fake_comfyui import FakeComfyUI


async def test_each_prompt_costs_one_history_read(fake: FakeComfyUI, tmp_path: Path) -> None:
    before = len(fake.prompts)
    async with service(fake, tmp_path, max_queued=1, comfyui_poll_interval=600) as api:
        answer = await api.post("/api/generate", json={**T2I, "steps": 2, "num_images": 3})
    assert answer.status_code == 200, answer.text
    ours = [prompt["prompt_id"] for prompt in fake.prompts[before:]]
    assert len(ours) == 3
    assert sorted(i for i in fake.history_reads if i in ours) == sorted(ours)


async def test_an_ended_prompt_finishes_without_the_done_marker(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    fake.done_marker = False
    async with service(fake, tmp_path, max_queued=1, comfyui_poll_interval=600) as api:
        answer = await api.post("/api/generate", json={**T2I, "steps": 2, "num_images": 2})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["images"]) == 2
