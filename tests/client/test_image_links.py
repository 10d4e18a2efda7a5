"""The SDK takes images by link (`output="url"`) as it takes them inline: fetched through
the client's own session (with its key) on first use, checked against their sha256; through
the gateway of both topologies, and with keys on in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from easel.client import AsyncClient, Client
from easel.core.events import Succeeded
from easel.core.identity import ApiScope
from tests.gateway.keys_support import clear_easel_env, gateway_client, make_key, settings_for
from tests.support.servers import Stack

QUICK = {"steps": 2, "seed": 9}


@pytest.fixture()
def client(stack: Stack) -> Iterator[Client]:
    with Client(stack.url, timeout=120) as easel:
        yield easel


def test_generate_by_url_gives_the_images_base64_gives(client: Client, tmp_path: Path) -> None:
    inline = client.generate("a pier", num_images=2, **QUICK)
    linked = client.generate("a pier", num_images=2, output="url", **QUICK)
    assert all(url and url.startswith("/api/images/") for url in linked.urls())
    assert [i.size for i in linked.images] == [(64, 64)] * 2
    assert [i.tobytes() for i in linked.images] == [i.tobytes() for i in inline.images]
    assert linked.image_bytes(1) == inline.image_bytes(1)
    saved = linked.save(tmp_path / "pier.png", index=1)
    assert saved.read_bytes() == inline.image_bytes(1)


def test_a_jobs_result_and_a_streams_by_url(client: Client) -> None:
    task_id = client.submit("a pier", output="url", **QUICK)
    waited = client.wait(task_id)
    assert waited.urls()[0] and waited.image.size == (64, 64)
    assert client.result(task_id).image_bytes() == waited.image_bytes()
    last = list(client.stream("a pier", output="url", **QUICK))[-1]
    assert isinstance(last, Succeeded)
    assert client.output(last.result).image_bytes() == waited.image_bytes()


def test_a_link_of_another_server_is_never_fetched_with_the_key(client: Client) -> None:
    with pytest.raises(ValueError, match="not a link of this server"):
        client.fetch_image("https://elsewhere.example/api/images/x.png")


@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
async def test_the_async_client_fetches_links_with_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_easel_env(monkeypatch, tmp_path)
    settings = settings_for(tmp_path)  # keys on, no link secret: links need the key
    key = make_key(settings, "sdk", [ApiScope.GENERATE, ApiScope.JOBS])
    async with (
        gateway_client(settings) as http,
        AsyncClient("http://gw", api_key=key, httpx_client=http) as easel,
    ):
        out = await easel.generate("a pier", output="url", **QUICK)
        assert "sig=" not in str(out.urls()[0])
        assert out.image.size == (64, 64)
