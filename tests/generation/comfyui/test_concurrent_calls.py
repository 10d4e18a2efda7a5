"""Several calls in ComfyUI at once (`comfyui_max_queued`): requests that cannot share a
call (here: different `steps`) are in ComfyUI's queue together, so it never idles between
them; each call follows, reports and stops only its own prompts. With 1, one call at a time.

What is asserted is what the fake's queue holds, never how long anything took: a KSampler
held mid-run keeps the first call running while the others are observed queued.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.generation.comfyui.helpers import (
    T2I,
    held_with_pending,
    post,
    prompt_of,
    service,
    steps_of,
    until,
    until_waiting,
)
from tests.generation.helpers import sse_events
from tests.support.fake_comfyui import FakeComfyUI


async def test_calls_that_cannot_share_are_queued_in_comfyui_together(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    async with service(fake, tmp_path, max_queued=3) as api:
        fake.hold(step=1)
        answers = [post(api, steps) for steps in (2, 3, 4)]
        running, pending = await held_with_pending(fake, 2)
        # Three calls, three prompts in ComfyUI at once: one running, two queued behind it.
        in_comfyui = {steps_of(running), *(steps_of(prompt_of(fake, i)) for i in pending)}
        assert in_comfyui == {2, 3, 4}
        fake.release()
        results = [await answer for answer in answers]
    for steps, answer in zip((2, 3, 4), results, strict=True):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["batch_requests"] == 1 and len(body["images"]) == 1
        assert body["steps"] == steps, body


async def test_one_call_at_a_time_with_max_queued_1(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with service(fake, tmp_path, max_queued=1) as api:
        fake.hold(step=1)
        first = post(api, 2)
        await until(fake.is_held, "the first call at the hold")
        second = post(api, 3)
        await until_waiting(api, 1)
        # It waits in easel's queue, not ComfyUI's, while the first call runs.
        assert fake.pending_ids() == []
        fake.release()
        for answer in (await first, await second):
            assert answer.status_code == 200, answer.text


async def test_cancelling_a_pending_call_deletes_only_its_prompt(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    deletes, interrupts = len(fake.deletes), len(fake.interrupts)
    async with service(fake, tmp_path, max_queued=3) as api:
        fake.hold(step=2)
        answers = {steps: post(api, steps) for steps in (4, 5)}
        running, (pending_id,) = await held_with_pending(fake, 1)
        pending_steps = steps_of(prompt_of(fake, pending_id))
        cancel = await api.post(f"/api/generate/requests/steps-{pending_steps}/cancel")
        assert cancel.status_code == 200, cancel.text
        await until(lambda: [pending_id] in fake.deletes, "the queue delete of its prompt")
        fake.release()
        cancelled = await answers[pending_steps]
        kept = await answers[steps_of(running)]
    assert cancelled.status_code != 200 and cancelled.json()["error"]["code"] == "cancelled"
    assert kept.status_code == 200, kept.text
    assert fake.deletes[deletes:] == [[pending_id]]
    assert all(body.get("prompt_id") == pending_id for body in fake.interrupts[interrupts:])
    assert fake.entry(running.prompt_id)["status"]["status_str"] == "success"
    assert pending_id not in fake.history  # it never ran


async def test_cancelling_the_running_call_interrupts_only_its_prompt(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    deletes, interrupts = len(fake.deletes), len(fake.interrupts)
    async with service(fake, tmp_path, max_queued=3) as api:
        fake.hold(step=2)
        answers = {steps: post(api, steps) for steps in (4, 5)}
        running, (pending_id,) = await held_with_pending(fake, 1)
        cancel = await api.post(f"/api/generate/requests/steps-{steps_of(running)}/cancel")
        assert cancel.status_code == 200, cancel.text
        await until(lambda: {"prompt_id": running.prompt_id} in fake.interrupts, "interrupt")
        fake.release()
        cancelled = await answers[steps_of(running)]
        kept = await answers[steps_of(prompt_of(fake, pending_id))]
    assert cancelled.status_code != 200 and cancelled.json()["error"]["code"] == "cancelled"
    assert kept.status_code == 200, kept.text
    assert fake.interrupts[interrupts:] == [{"prompt_id": running.prompt_id}]
    assert all(pending_id not in ids for ids in fake.deletes[deletes:])
    messages = fake.entry(running.prompt_id)["status"]["messages"]
    assert messages[-1][0] == "execution_interrupted"
    assert fake.entry(pending_id)["status"]["status_str"] == "success"


async def test_concurrent_calls_each_see_their_own_progress(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    async with service(fake, tmp_path, max_queued=3) as api:
        fake.hold(step=1)
        streams = {
            steps: asyncio.create_task(
                api.post("/api/generate/stream", json={**T2I, "steps": steps, "num_images": 2})
            )
            for steps in (3, 6)
        }
        # Both calls' prompts (two each) are in ComfyUI together: one runs, three wait.
        await held_with_pending(fake, 3)
        fake.release()
        answers = {steps: await stream for steps, stream in streams.items()}
    for steps, answer in answers.items():
        events = list(sse_events(answer))
        assert events[-1][0] == "result", events[-1]
        started = next(data for name, data in events if name == "started")
        assert started["batch_requests"] == 1
        progress = [(data["step"], data["total"]) for name, data in events if name == "progress"]
        # Its own two prompts of `steps` each, never the other call's.
        assert progress and all(total == 2 * steps for _, total in progress), progress
        assert progress[-1] == (2 * steps, 2 * steps)
        assert [step for step, _ in progress] == sorted(step for step, _ in progress)
