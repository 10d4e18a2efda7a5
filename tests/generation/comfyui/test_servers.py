"""Several ComfyUI servers (`EASEL_COMFYUI_API_URL=a,b`): each call runs on the connected
server with the fewest of easel's calls, so calls that cannot share spread over them, and a
server that is down takes none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from easel.generation.settings import GenerationSettings
from tests.generation.comfyui.conftest import running_fake
from tests.generation.comfyui.helpers import T2I, held_with_pending, post, service
from tests.support.fake_comfyui import FakeComfyUI
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def other() -> Iterator[FakeComfyUI]:
    """A second ComfyUI beside the conftest's `fake`."""
    with running_fake() as server:
        yield server


def test_the_servers_are_a_comma_separated_list() -> None:
    settings = GenerationSettings(comfyui_api_url=" http://a:8188, http://b:8188 ,")
    assert settings.comfyui_urls == ["http://a:8188", "http://b:8188"]
    with pytest.raises(ValueError, match="at least one ComfyUI server"):
        GenerationSettings(comfyui_api_url=" , ")


async def test_calls_spread_over_the_servers(
    fake: FakeComfyUI, other: FakeComfyUI, tmp_path: Path
) -> None:
    before = (len(fake.prompts), len(other.prompts))
    urls = f"{fake.url},{other.url}"
    async with service(fake, tmp_path, max_queued=1, comfyui_api_url=urls) as api:
        health = (await api.get("/api/health")).json()["detail"]
        assert [s["url"] for s in health["servers"]] == [fake.url, other.url]
        fake.hold(step=1)
        other.hold(step=1)
        answers = [post(api, steps) for steps in (2, 3)]
        # One call on each server, both running at once (max_queued 1 per server).
        await held_with_pending(fake, 0)
        await held_with_pending(other, 0)
        fake.release()
        other.release()
        for answer in answers:
            assert (await answer).status_code == 200
    assert (len(fake.prompts) - before[0], len(other.prompts) - before[1]) == (1, 1)


async def test_a_server_that_is_down_takes_no_call(fake: FakeComfyUI, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    before = len(fake.prompts)
    async with service(fake, tmp_path, max_queued=1, comfyui_api_url=f"{down},{fake.url}") as api:
        health = (await api.get("/api/health")).json()
        assert health["status"] == "healthy", health
        servers = health["detail"]["servers"]
        assert [s["available"] for s in servers] == [False, True]
        assert "unreachable" in servers[0]["error"]
        assert health["detail"]["comfyui_url"] == fake.url
        for steps in (2, 3):
            answer = await api.post("/api/generate", json={**T2I, "steps": steps})
            assert answer.status_code == 200, answer.text
    assert len(fake.prompts) - before == 2
