"""Jobs belong to the key that made them, end to end (issue 17, items 1, 2 and 4): the
real key check at the gateway, the caller it forwards (signed, when an internal token is
set) and the job manager's ownership, in the all-in-one app."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from easel.core.identity import ApiScope
from tests.gateway.keys_support import (
    bearer,
    clear_easel_env,
    gateway_client,
    make_key,
    settings_for,
)

USER = [ApiScope.GENERATE, ApiScope.JOBS]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_easel_env(monkeypatch, tmp_path)


async def submit(client: httpx.AsyncClient, key: str, **headers: str) -> httpx.Response:
    return await client.post(
        "/api/generate/async", json={"prompt": "a fox"}, headers={**bearer(key), **headers}
    )


@pytest.mark.parametrize("token", [None, "internal-secret"], ids=["no-token", "token"])
async def test_another_key_cannot_see_or_cancel_a_job(tmp_path: Path, token: str | None) -> None:
    settings = settings_for(tmp_path, jobs_submit_check=False, internal_token=token)
    alice, bob = make_key(settings, "alice", USER), make_key(settings, "bob", USER)
    root = make_key(settings, "root", [ApiScope.JOBS, ApiScope.ADMIN])
    async with gateway_client(settings) as client:
        queued = await submit(client, alice)
        assert queued.status_code == 202, queued.text
        task_id = queued.json()["task_id"]
        assert len(task_id) == 32

        own = await client.get(f"/api/generate/status/{task_id}", headers=bearer(alice))
        assert own.status_code == 200 and own.json()["owner"] == "alice", own.text
        for method, path in (
            ("GET", f"/api/generate/status/{task_id}"),
            ("GET", f"/api/generate/result/{task_id}"),
            ("GET", f"/api/generate/events/{task_id}"),
            ("POST", f"/api/generate/cancel/{task_id}"),
        ):
            answer = await client.request(method, path, headers=bearer(bob))
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"]["code"] == "not_found"

        listed = await client.get("/api/jobs", headers=bearer(bob))
        assert listed.status_code == 200 and listed.json()["jobs"] == []
        mine = await client.get("/api/jobs", headers=bearer(alice))
        assert [job["task_id"] for job in mine.json()["jobs"]] == [task_id]
        every = await client.get("/api/jobs", headers=bearer(root))
        assert [job["task_id"] for job in every.json()["jobs"]] == [task_id]

        # Still queued, and cancellable by its owner.
        cancelled = await client.post(f"/api/generate/cancel/{task_id}", headers=bearer(alice))
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


async def test_idempotency_keys_are_the_owners_own(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, jobs_submit_check=False)
    alice, bob = make_key(settings, "alice", USER), make_key(settings, "bob", USER)
    async with gateway_client(settings) as client:
        first = await submit(client, alice, **{"Idempotency-Key": "order-1"})
        again = await submit(client, alice, **{"Idempotency-Key": "order-1"})
        other = await submit(client, bob, **{"Idempotency-Key": "order-1"})
    assert first.json()["task_id"] == again.json()["task_id"]
    assert other.status_code == 202 and other.json()["task_id"] != first.json()["task_id"]


async def test_a_keys_concurrent_jobs_limit_is_kept(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, jobs_submit_check=False, max_concurrent_jobs=2)
    one = make_key(settings, "one", USER, max_concurrent_jobs=1)
    default = make_key(settings, "default", USER)
    async with gateway_client(settings) as client:
        assert (await submit(client, one)).status_code == 202
        refused = await submit(client, one)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["details"]["max_concurrent_jobs"] == 1
        assert int(refused.headers["retry-after"]) >= 1
        # A key without a limit of its own has the server's (EASEL_MAX_CONCURRENT_JOBS).
        assert [(await submit(client, default)).status_code for _ in range(3)] == [202, 202, 429]
