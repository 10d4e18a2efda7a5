"""The prompt timeout counts from when ComfyUI starts a prompt, not from its post: time
queued behind other prompts is bounded by the queue timeout instead.

Another client's prompt held mid-run keeps ours queued behind it for as long as a test
wants; nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from easel.generation.engines.comfyui.workflows import (
    DEFAULT_MODEL_FILES,
    EXAMPLES,
    WorkflowCatalogue,
)
from tests.generation.comfyui.helpers import post, service, until
from tests.support.fake_comfyui import FakeComfyUI


def theirs() -> dict[str, Any]:
    """A graph as another ComfyUI client would post it."""
    catalogue = WorkflowCatalogue.load([EXAMPLES], DEFAULT_MODEL_FILES)
    values = {"prompt": "not easel's", "steps": 4, "width": 64, "height": 64}
    return catalogue.workflows["text-to-image"].inject(values)


async def hold_another_clients_prompt(fake: FakeComfyUI) -> str:
    fake.hold(step=1)
    other = await asyncio.to_thread(fake.queue_direct, theirs(), "someone-else")
    await until(fake.is_held, "the other client's prompt at the hold")
    return other


async def test_time_queued_behind_another_prompt_is_not_run_time(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    async with service(fake, tmp_path, max_queued=1, comfyui_prompt_timeout=1.0) as api:
        other = await hold_another_clients_prompt(fake)
        answer = post(api, 2)
        await until(lambda: len(fake.pending_ids()) == 1, "our prompt queued behind it")
        # Queued for longer than the prompt timeout: that time is not the prompt's own.
        await asyncio.sleep(1.5)
        assert len(fake.pending_ids()) == 1
        fake.release()
        result = await answer
    assert result.status_code == 200, result.text
    assert len(result.json()["images"]) == 1
    assert fake.entry(other)["status"]["status_str"] == "success"


async def test_a_prompt_that_never_starts_ends_at_the_queue_timeout(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    async with service(fake, tmp_path, max_queued=1, comfyui_queue_timeout=0.5) as api:
        other = await hold_another_clients_prompt(fake)
        answer = await post(api, 2)
        # Taken out of ComfyUI's queue; the other client's prompt runs on untouched.
        assert fake.pending_ids() == []
        assert fake.running is not None and fake.running.prompt_id == other
        fake.release()
        await until(lambda: other in fake.history, "the other client's prompt to end")
    assert answer.status_code == 504, answer.text
    assert "EASEL_COMFYUI_QUEUE_TIMEOUT" in answer.json()["error"]["message"]
    ours = fake.prompts[-1]["prompt_id"]
    assert ours != other and [ours] in fake.deletes
    assert all(body.get("prompt_id") != other for body in fake.interrupts)


async def test_a_prompt_running_past_the_prompt_timeout_is_interrupted(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    async with service(fake, tmp_path, max_queued=1, comfyui_prompt_timeout=0.5) as api:
        fake.hold(step=1)
        answer = await post(api, 2)
    assert answer.status_code == 504, answer.text
    assert "EASEL_COMFYUI_PROMPT_TIMEOUT" in answer.json()["error"]["message"]
    ours = fake.prompts[-1]["prompt_id"]
    assert {"prompt_id": ours} in fake.interrupts
