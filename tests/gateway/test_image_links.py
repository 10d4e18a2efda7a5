"""Signed image links with API keys on, through the all-in-one app in this process: a
link the server made works without a key (an `<img src>`), an expired or altered one is
refused in the envelope, a key with `jobs` still reads any image; the secret is
EASEL_IMAGE_LINK_SECRET or one derived from the internal token."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.compose.settings import EaselSettings
from easel.core.identity import ApiScope
from easel.core.image_links import ImageLinks, link_secret
from easel.core.images import OutputFormat
from tests.gateway.keys_support import (
    bearer,
    clear_easel_env,
    gateway_client,
    make_key,
    settings_for,
)
from tests.support.waiting import ProgressDeadline

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
QUICK = {"prompt": "a lighthouse", "steps": 2, "seed": 3, "output": "url"}
SECRETS = {
    "link secret": {"image_link_secret": "a-link-secret-of-this-test"},
    "internal token": {"internal_token": "an-internal-token-of-this-test-0123456789"},
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_easel_env(monkeypatch, tmp_path)


def refused(answer: httpx.Response, status: int, reason: str) -> None:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["details"]["reason"] == reason, error


async def generated(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    answer = await client.post("/api/generate", json=QUICK, headers=bearer(key), timeout=120)
    assert answer.status_code == 200, answer.text
    image: dict[str, Any] = answer.json()["images"][0]
    return image


@pytest.mark.parametrize("secret", SECRETS.values(), ids=list(SECRETS))
async def test_a_signed_link_works_without_a_key_until_it_expires(
    tmp_path: Path, secret: dict[str, str]
) -> None:
    settings = settings_for(tmp_path, **secret)
    key = make_key(settings, "maker", [ApiScope.GENERATE])
    async with gateway_client(settings) as client:
        image = await generated(client, key)
        path, _, query = image["url"].partition("?")
        assert path == f"/api/images/{image['sha256']}.png" and "sig=" in query
        shown = await client.get(image["url"])  # no key: the signature is the permission
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"

        # The same image, signed by the same secret, at a moment an hour and more ago.
        past = ImageLinks(link_secret(settings.gateway), ttl_s=60, clock=lambda: 1_000_000.0)
        expired = past.link(image["sha256"], OutputFormat.PNG)
        refused(await client.get(expired), 403, "expired")
        altered = image["url"][:-1] + ("0" if image["url"][-1] != "0" else "1")
        refused(await client.get(altered), 403, "forged")
        later = image["url"].replace("expires=", "expires=9")  # a longer life, same sig
        refused(await client.get(later), 403, "forged")
        # A signature names one image: another's path with it is refused.
        other = image["url"].replace(image["sha256"], "f" * 64)
        refused(await client.get(other), 403, "forged")
        bare = await client.get(path)  # no signature, no key: a key is needed
        assert bare.status_code == 401 and bare.json()["error"]["code"] == "unauthorized"


async def test_a_key_with_jobs_reads_any_image_and_one_without_it_is_refused(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, **SECRETS["link secret"])
    maker = make_key(settings, "maker", [ApiScope.GENERATE])
    reader = make_key(settings, "reader", [ApiScope.JOBS])
    async with gateway_client(settings) as client:
        image = await generated(client, maker)
        path = image["url"].partition("?")[0]
        assert (await client.get(path, headers=bearer(reader))).status_code == 200
        # An expired link with a good key: the key decides.
        past = ImageLinks(link_secret(settings.gateway), ttl_s=60, clock=lambda: 1_000_000.0)
        expired = past.link(image["sha256"], OutputFormat.PNG)
        assert (await client.get(expired, headers=bearer(reader))).status_code == 200
        scoped = await client.get(path, headers=bearer(maker))
        assert scoped.status_code == 403 and scoped.json()["error"]["details"]["scope"] == "jobs"


async def test_without_a_secret_links_are_plain_and_need_a_key(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    key = make_key(settings, "both", [ApiScope.GENERATE, ApiScope.JOBS])
    async with gateway_client(settings) as client:
        image = await generated(client, key)
        assert image["url"] == f"/api/images/{image['sha256']}.png"
        assert (await client.get(image["url"])).status_code == 401
        assert (await client.get(image["url"], headers=bearer(key))).status_code == 200
        # A signature this server cannot check is no permission.
        refused(await client.get(image["url"] + "?expires=9999999999&sig=00"), 403, "forged")


async def test_a_jobs_links_are_signed_by_the_job_manager(tmp_path: Path) -> None:
    settings = EaselSettings.load(
        data_dir=tmp_path / "data",
        generation_model="tiny-random",
        generation_load="lazy",
        **SECRETS["link secret"],
    )
    key = make_key(settings, "maker", [ApiScope.GENERATE, ApiScope.JOBS])
    async with gateway_client(settings) as client:
        queued = await client.post("/api/generate/async", json=QUICK, headers=bearer(key))
        assert queued.status_code == 202, queued.text
        task_id = queued.json()["task_id"]
        deadline = ProgressDeadline(30.0)  # the in-process worker runs it
        while not deadline.expired():
            view = (await client.get(f"/api/generate/status/{task_id}", headers=bearer(key))).json()
            if view["status"] == "done":
                break
            deadline.observe((view["status"], str(view["progress"])))
            await asyncio.sleep(0.05)
        result = await client.get(f"/api/generate/result/{task_id}", headers=bearer(key))
        (image,) = result.json()["images"]
        assert "sig=" in image["url"]
        assert (await client.get(image["url"])).status_code == 200
