"""Every method of `AsyncClient` once, through the gateway of both topologies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from easel.client import AsyncClient, Conflict, InvalidRequest, JobCancelled, NotFound
from easel.core.events import Progress, Succeeded
from tests.segmentation.scenes import make_scene
from tests.support.servers import Stack

QUICK = {"steps": 2, "seed": 7}
SCENE = make_scene(7, 128)


@pytest.fixture()
async def client(stack: Stack) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(stack.url, timeout=120) as easel:
        yield easel


async def test_generate_and_stream(client: AsyncClient) -> None:
    out = await client.generate("a quiet lake", **QUICK)
    assert out.seed == 7 and out.image.size == (64, 64)
    events = [event async for event in client.stream("a quiet lake", **QUICK)]
    assert [(e.step, e.total) for e in events if isinstance(e, Progress)] == [(1, 2), (2, 2)]
    assert isinstance(events[-1], Succeeded)
    assert events[-1].result["images"][0]["image"] == out.raw["images"][0]["image"]
    with pytest.raises(InvalidRequest) as caught:
        await client.generate("x", steps=0)
    assert caught.value.code and caught.value.request_id


async def test_jobs(client: AsyncClient) -> None:
    progress: list[object] = []
    task_id = await client.submit("a quiet lake", **QUICK)
    out = await client.wait(task_id, timeout=300, on_progress=progress.append)
    assert out.task_id == task_id and any(isinstance(e, Progress) for e in progress)
    assert (await client.status(task_id)).status == "done"
    assert (await client.result(task_id)).seed == 7
    assert [event.type async for event in client.events(task_id)][-1] == "result"
    assert task_id in [job.task_id for job in (await client.jobs()).jobs]
    long = await client.submit("a long one", steps=150, width=512, height=512, seed=1)
    assert (await client.cancel(long)).task_id == long
    with pytest.raises(JobCancelled):
        await client.wait(long, timeout=300)
    with pytest.raises(Conflict):
        await client.result(long)
    with pytest.raises(NotFound):
        await client.status("0" * 32)


async def test_images(client: AsyncClient) -> None:
    image = SCENE.image
    mask = (await client.smart_mask(image, points=[SCENE.click])).mask
    assert mask.mode == "L" and mask.size == image.size
    prepared = await client.prepare(image)
    by_id = await client.smart_mask(prepared, points=[SCENE.click])
    assert by_id.raw["cached"] is True and by_id.mask.size == image.size
    assert (await client.resize(image, scale=0.5)).size == (64, 64)
    assert (await client.crop(image, 0, 0, 8, 8)).size == (8, 8)
    assert (await client.convert(image, "webp", quality=80)).format == "WEBP"
    assert (await client.extract_object(image, mask)).mode == "RGBA"
    assert (await client.diff(image, image)).mae == 0
    assert (await client.canny(image)).size == image.size
    assert (await client.refine_mask(mask, invert=True)).size == mask.size


async def test_system(client: AsyncClient) -> None:
    assert (await client.health())["status"] in ("healthy", "degraded")
    assert isinstance(await client.styles(), list)
    assert (await client.workflows())["engine"]
    try:
        assert "models" in await client.models()
    except NotFound:  # a server from before the model catalogue
        pass
