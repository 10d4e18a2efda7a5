"""When the engine reads a prompt's history: not at all when its websocket saw the whole
run (`execution_start` to `execution_success` on one connection: the `executed` events
between carry the outputs the history entry would); otherwise once ComfyUI says the entry
is written (`executing` with node null, after the end event), so a prompt costs one
`/history` read, not one that finds nothing first; and a moment after the end event if
that marker never comes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.generation.comfyui.helpers import T2I, post, service, until
from tests.support.fake_comfyui import FakeComfyUI


async def test_a_prompt_the_socket_saw_whole_costs_no_history_read(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    before = len(fake.prompts)
    async with service(fake, tmp_path, max_queued=1, comfyui_poll_interval=600) as api:
        answer = await api.post("/api/generate", json={**T2I, "steps": 2, "num_images": 3})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["images"]) == 3
    ours = [prompt["prompt_id"] for prompt in fake.prompts[before:]]
    assert len(ours) == 3
    assert [i for i in fake.history_reads if i in ours] == []


async def test_a_run_seen_across_a_reconnect_is_read_from_history_once(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    # Events sent while the socket was away are lost, `executed` ones among them: the end
    # seen on the new connection says nothing about the outputs, the history entry does.
    async with service(fake, tmp_path, max_queued=1, comfyui_poll_interval=600) as api:
        fake.hold(step=1)
        answer = post(api, 2)
        await until(fake.is_held, "our prompt at the hold")
        ours, connects = fake.prompts[-1]["prompt_id"], fake.ws_connects
        await asyncio.to_thread(fake.drop_sockets)
        await until(lambda: fake.ws_connects > connects, "the engine's reconnect")
        # After a reconnect the engine looks at once (the run might have ended unseen).
        await until(lambda: ours in fake.history_reads, "the look after the reconnect")
        looks = fake.history_reads.count(ours)
        fake.release()
        result = await answer
    assert result.status_code == 200, result.text
    assert len(result.json()["images"]) == 1
    assert fake.history_reads.count(ours) > looks  # the end, read from history


async def test_an_ended_prompt_finishes_without_the_done_marker(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    fake.done_marker = False
    async with service(fake, tmp_path, max_queued=1, comfyui_poll_interval=600) as api:
        answer = await api.post("/api/generate", json={**T2I, "steps": 2, "num_images": 2})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["images"]) == 2
