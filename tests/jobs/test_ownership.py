"""Jobs belong to their owner, through the job manager's HTTP routes on each store: another
key gets 404 in every job route, lists show the caller's own jobs, an admin sees (and is
audited seeing) every job, idempotency keys are per key, and a key's concurrent jobs are
capped. Task ids are 128 random bits.

The caller arrives as the gateway sends it, in `X-Easel-Caller`; here a test middleware
stands in for the services' own edge (easel.core), which trusts that header only beside a
valid internal credential.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.identity import ALL_SCOPES, CALLER_HEADER, USER_SCOPES, Caller, caller_var
from easel.jobs.app import create_app
from easel.jobs.manager import new_task_id
from easel.jobs.settings import JobsSettings
from tests.jobs.conftest import BACKENDS, delete_prefix

ALICE = Caller("alice", USER_SCOPES)
BOB = Caller("bob", USER_SCOPES)
ADMIN = Caller("root", ALL_SCOPES)
BODY = {"prompt": "a lighthouse", "steps": 2, "seed": 1}
POD_BODY = {"mode": "text-to-image", "prompt": "a barn"}  # compat: the first version's
TASK_ID = re.compile(r"^[0-9a-f]{32}$")


class CallerFromHeader:
    """Sets `caller_var` from `X-Easel-Caller` around each request (the test's edge)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = dict(scope.get("headers", ())).get(CALLER_HEADER.encode())
        if scope["type"] != "http" or raw is None:
            await self.app(scope, receive, send)
            return
        token = caller_var.set(Caller.from_header(raw.decode()))
        try:
            await self.app(scope, receive, send)
        finally:
            caller_var.reset(token)


def as_(caller: Caller, **headers: str) -> dict[str, str]:
    return {CALLER_HEADER: caller.to_header(), **headers}


@asynccontextmanager
async def job_manager(settings: JobsSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=CallerFromHeader(app), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobs") as client:
            yield client


@pytest.fixture(params=BACKENDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The job manager (no worker: jobs stay queued) on each store."""
    prefix = f"easel-test-{uuid.uuid4().hex}"
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    settings = JobsSettings(
        data_dir=tmp_path / "data",
        jobs_backend=request.param,
        redis_url=url or "redis://127.0.0.1:1/0",
        jobs_redis_prefix=prefix,
        jobs_in_process_worker=False,
    )
    try:
        async with job_manager(settings) as client:
            yield client
    finally:
        if url:
            await delete_prefix(url, prefix)


async def submit(api: httpx.AsyncClient, caller: Caller, **headers: str) -> str:
    answer = await api.post("/api/generate/async", json=BODY, headers=as_(caller, **headers))
    assert answer.status_code == 202, answer.text
    task_id = str(answer.json()["task_id"])
    assert TASK_ID.match(task_id)
    return task_id


ROUTES: list[tuple[str, Callable[[str], str]]] = [
    ("GET", lambda task_id: f"/api/generate/status/{task_id}"),
    ("GET", lambda task_id: f"/api/generate/result/{task_id}"),
    ("GET", lambda task_id: f"/api/generate/events/{task_id}"),
    ("POST", lambda task_id: f"/api/generate/cancel/{task_id}"),
]


async def test_another_key_gets_404_in_every_job_route(api: httpx.AsyncClient) -> None:
    task_id = await submit(api, ALICE)
    unknown = new_task_id()
    for method, path in ROUTES:
        theirs = await api.request(method, path(task_id), headers=as_(BOB))
        missing = await api.request(method, path(unknown), headers=as_(BOB))
        assert theirs.status_code == missing.status_code == 404, (path, theirs.text)
        # Nothing tells another key's job from no job at all.
        assert theirs.json()["error"] == {
            **missing.json()["error"],
            "message": missing.json()["error"]["message"].replace(unknown, task_id),
        }
    # Bob's cancel did nothing; alice still sees and reads her job.
    status = await api.get(f"/api/generate/status/{task_id}", headers=as_(ALICE))
    assert status.status_code == 200
    assert status.json()["status"] == "queued" and status.json()["owner"] == "alice"
    early = await api.get(f"/api/generate/result/{task_id}", headers=as_(ALICE))
    assert early.status_code == 409  # hers, not done yet
    cancelled = await api.post(f"/api/generate/cancel/{task_id}", headers=as_(ALICE))
    assert cancelled.json()["status"] == "cancelled"
    events = await api.get(f"/api/generate/events/{task_id}", headers=as_(ALICE))
    assert events.status_code == 200 and "event: cancelled" in events.text


async def test_lists_show_the_callers_own_jobs_and_an_admin_every_job(
    api: httpx.AsyncClient,
) -> None:
    alices = [await submit(api, ALICE) for _ in range(3)]
    bobs = [await submit(api, BOB) for _ in range(2)]

    async def listed(caller: Caller, **params: str | int) -> list[str]:
        ids, cursor = [], None
        while True:
            query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
            answer = await api.get("/api/jobs", params=query, headers=as_(caller))
            assert answer.status_code == 200, answer.text
            page = answer.json()
            assert len(page["jobs"]) <= 2
            ids += [job["task_id"] for job in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return ids

    assert await listed(ALICE) == alices[::-1]
    assert await listed(BOB) == bobs[::-1]
    assert await listed(ADMIN) == (alices + bobs)[::-1]
    assert await listed(ADMIN, owner="bob") == bobs[::-1]
    assert await listed(ALICE, owner="alice") == alices[::-1]
    await api.post(f"/api/generate/cancel/{alices[1]}", headers=as_(ALICE))
    assert await listed(ALICE, status="cancelled") == [alices[1]]
    assert await listed(BOB, status="cancelled") == []
    refused = await api.get("/api/jobs", params={"owner": "bob"}, headers=as_(ALICE))
    assert refused.status_code == 403
    assert refused.json()["error"]["details"][0]["field"] == "owner"


async def test_admin_actions_across_owners_are_audited(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = await submit(api, ALICE)
    await submit(api, ADMIN)
    with caplog.at_level(logging.INFO, logger="easel.audit"):
        await api.get(f"/api/generate/status/{task_id}", headers=as_(ALICE))
        await api.get("/api/jobs", params={"owner": "root"}, headers=as_(ADMIN))
        assert [r for r in caplog.records if r.name == "easel.audit"] == []  # own jobs only
        read = await api.get(f"/api/generate/status/{task_id}", headers=as_(ADMIN))
        cancel = await api.post(f"/api/generate/cancel/{task_id}", headers=as_(ADMIN))
        listing = await api.get("/api/jobs", headers=as_(ADMIN))
    assert read.status_code == cancel.status_code == listing.status_code == 200
    assert cancel.json()["status"] == "cancelled"
    audits = [r for r in caplog.records if r.name == "easel.audit"]
    assert [(r.audit, r.key_name, r.outcome) for r in audits] == [  # type: ignore[attr-defined]
        ("read_job", "root", "allowed"),
        ("cancel_job", "root", "allowed"),
        ("list_jobs", "root", "allowed"),
    ]
    assert audits[0].task_id == task_id and audits[0].owner == "alice"  # type: ignore[attr-defined]
    assert audits[2].owners == "alice"  # type: ignore[attr-defined]


async def test_idempotency_keys_do_not_collide_across_owners(api: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "order-42"}
    alices = await submit(api, ALICE, **key)
    other = {**BODY, "seed": 2}
    bobs = await api.post("/api/generate/async", json=other, headers=as_(BOB, **key))
    assert bobs.status_code == 202, bobs.text  # no 409 for a body bob never sent
    assert bobs.json()["task_id"] != alices
    replay = await api.post("/api/generate/async", json=other, headers=as_(BOB, **key))
    assert replay.json()["task_id"] == bobs.json()["task_id"]
    assert await submit(api, ALICE, **key) == alices
    conflict = await api.post("/api/generate/async", json=other, headers=as_(ALICE, **key))
    assert conflict.status_code == 409


async def test_a_key_at_its_concurrent_jobs_limit_gets_429(api: httpx.AsyncClient) -> None:
    carol = Caller("carol", USER_SCOPES, max_concurrent_jobs=2)
    first, _ = await submit(api, carol), await submit(api, carol)
    for path, body in (("/api/generate/async", BODY), ("/generate", POD_BODY)):
        refused = await api.post(path, json=body, headers=as_(carol))
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "too_many_requests"
        assert error["details"] == {"key": "carol", "active": 2, "max_concurrent_jobs": 2}
        assert int(refused.headers["retry-after"]) >= 1
    await submit(api, BOB)  # other keys are not held up
    await api.post(f"/api/generate/cancel/{first}", headers=as_(carol))
    await submit(api, carol)  # room again


async def test_the_first_version_generate_records_its_owner(api: httpx.AsyncClient) -> None:
    answer = await api.post("/generate", json=POD_BODY, headers=as_(BOB))
    task_id = answer.json()["task_id"]
    assert TASK_ID.match(task_id)
    mine = await api.get(f"/api/generate/status/{task_id}", headers=as_(BOB))
    assert mine.json()["owner"] == "bob"
    theirs = await api.get(f"/api/generate/status/{task_id}", headers=as_(ALICE))
    assert theirs.status_code == 404


def test_task_ids_are_128_random_bits_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    token_hex = secrets.token_hex

    def spy(nbytes: int | None = None) -> str:
        asked.append(nbytes or 0)
        return token_hex(nbytes)

    monkeypatch.setattr(secrets, "token_hex", spy)
    ids = {new_task_id() for _ in range(2000)}
    assert asked and min(asked) * 8 >= 128
    assert len(ids) == 2000 and all(TASK_ID.match(task_id) for task_id in ids)
    # Every digit varies (a uuid4 fixes its version digit and part of another).
    assert all(len({task_id[i] for task_id in ids}) == 16 for i in range(32))
