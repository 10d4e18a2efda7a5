"""The job endpoints through the gateway, in both topologies (SQLite store, one worker)."""

from __future__ import annotations

import httpx

from tests.generation.helpers import sse_events, wait_until_idle
from tests.jobs.helpers import submit, wait_for
from tests.support.images import decode_b64

QUICK = {"prompt": "a quiet lake", "steps": 2, "seed": 7}
# Long enough (seconds) that a cancel or a kill always lands mid-run.
LONG = {"prompt": "a long one", "steps": 150, "width": 512, "height": 512, "seed": 1}


def test_job_runs_to_done_with_result(api: httpx.Client) -> None:
    task_id = submit(api, {**QUICK, "num_images": 2})
    view = wait_for(api, task_id, "done")
    assert view["progress"] == {"step": 2, "total": 2}
    assert view["attempts"] == 1 and view["queue_position"] is None
    stamps = view["timestamps"]
    assert stamps["created_at"] <= stamps["started_at"] <= stamps["finished_at"]
    result = api.get(f"/api/generate/result/{task_id}").json()
    assert result["task_id"] == task_id and result["seed"] == 7
    assert [decode_b64(image["image"]).size for image in result["images"]] == [(64, 64)] * 2
    assert [image["seed"] for image in result["images"]] == [7, 8]
    # The same request synchronously gives the same image.
    sync = api.post("/api/generate", json={**QUICK, "num_images": 2}).json()
    assert sync["images"][0]["image"] == result["images"][0]["image"]


def test_events_replay_and_end_with_the_result(api: httpx.Client) -> None:
    task_id = submit(api, QUICK)
    with api.stream("GET", f"/api/generate/events/{task_id}") as response:
        assert response.status_code == 200
        events = list(sse_events(response))
    names = [name for name, _ in events]
    assert names[0] == "queued" and names[-1] == "result"
    assert "started" in names and names.count("progress") == 2
    assert events[-1][1]["result"]["images"][0]["image"]
    # Reconnect with Last-Event-ID: only what came after.
    with api.stream(
        "GET", f"/api/generate/events/{task_id}", headers={"Last-Event-ID": "2"}
    ) as response:
        replayed = [name for name, _ in sse_events(response)]
    assert replayed == names[2:]


def test_result_is_409_until_done_and_cancel_stops_a_running_job(api: httpx.Client) -> None:
    wait_until_idle(api)
    task_id = submit(api, LONG)
    wait_for(api, task_id, "running")
    early = api.get(f"/api/generate/result/{task_id}")
    assert early.status_code == 409 and early.json()["error"]["code"] == "conflict"
    cancelled = api.post(f"/api/generate/cancel/{task_id}")
    assert cancelled.status_code == 200
    view = wait_for(api, task_id, "cancelled")
    assert view["progress"]["step"] < LONG["steps"]
    assert api.post(f"/api/generate/cancel/{task_id}").json()["status"] == "cancelled"
    state = wait_until_idle(api)
    assert state["queue"]["last_call"]["interrupted"] is True


def test_cancel_a_queued_job_and_queue_positions(api: httpx.Client) -> None:
    wait_until_idle(api)
    running = submit(api, LONG)
    wait_for(api, running, "running")
    first, second = submit(api, QUICK), submit(api, QUICK)
    assert api.get(f"/api/generate/status/{first}").json()["queue_position"] == 0
    assert api.get(f"/api/generate/status/{second}").json()["queue_position"] == 1
    assert api.post(f"/api/generate/cancel/{first}").json()["status"] == "cancelled"
    assert api.get(f"/api/generate/status/{second}").json()["queue_position"] == 0
    api.post(f"/api/generate/cancel/{running}")
    wait_for(api, second, "done")
    assert api.get(f"/api/generate/status/{first}").json()["timestamps"]["started_at"] is None
    with api.stream("GET", f"/api/generate/events/{first}") as response:
        assert [name for name, _ in sse_events(response)] == ["queued", "cancelled"]


def test_a_request_generation_refuses_is_refused_at_submit(api: httpx.Client) -> None:
    # Valid as a schema, refused by the model: refused now, not queued to fail later
    # (a job accepted while generation could not judge it fails once, without retry:
    # tests/jobs/test_submit_validation.py).
    response = api.post(
        "/api/generate/async", json={"prompt": "x", "model": "tiny-random-qwen-edit"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "mode"


def test_invalid_submission_is_422_naming_the_field(api: httpx.Client) -> None:
    for body, field in (
        ({"prompt": "x", "steps": 0}, "steps"),
        ({"prompt": "x", "bogus": 1}, "bogus"),
        ({"prompt": "x", "timeout": -1}, "timeout"),
        ({"prompt": "x", "webhook": {"nope": 1}}, "webhook.url"),
    ):
        response = api.post("/api/generate/async", json=body)
        assert response.status_code == 422, response.text
        fields = [d["field"] for d in response.json()["error"]["details"]]
        assert field in fields or any(f.startswith(field) for f in fields), fields


def test_idempotency_key(api: httpx.Client) -> None:
    key = {"Idempotency-Key": f"k-{id(api)}-{QUICK['seed']}"}
    first = submit(api, QUICK, **key)
    again = api.post("/api/generate/async", json=QUICK, headers=key)
    assert again.status_code == 202 and again.json()["task_id"] == first
    conflict = api.post("/api/generate/async", json={**QUICK, "seed": 8}, headers=key)
    assert conflict.status_code == 409
    wait_for(api, first, "done")


def test_unknown_jobs_are_404(api: httpx.Client) -> None:
    for method, path in (
        ("GET", "/api/generate/status/nope"),
        ("GET", "/api/generate/result/nope"),
        ("GET", "/api/generate/events/nope"),
        ("POST", "/api/generate/cancel/nope"),
    ):
        response = api.request(method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"


def test_list_jobs(api: httpx.Client) -> None:
    ids = [submit(api, QUICK) for _ in range(3)]
    for task_id in ids:
        wait_for(api, task_id, "done")
    page = api.get("/api/jobs", params={"limit": 2}).json()
    assert [job["task_id"] for job in page["jobs"]] == ids[::-1][:2]
    more = api.get("/api/jobs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert more["jobs"][0]["task_id"] == ids[0]
    done = api.get("/api/jobs", params={"status": "done", "limit": 500}).json()
    assert all(job["status"] == "done" for job in done["jobs"])
    assert api.get("/api/jobs", params={"status": "weird"}).status_code == 422


def test_first_version_generate_queues_a_real_job(api: httpx.Client) -> None:
    response = api.post("/generate", json={"mode": "text-to-image", "prompt": "a barn"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "queued" and body["image"] is None and body["error"] is None
    assert wait_for(api, body["task_id"], "done")["status"] == "done"


def test_a_job_past_its_timeout_fails_and_stops_generating(api: httpx.Client) -> None:
    wait_until_idle(api)
    task_id = submit(api, {**LONG, "timeout": 1})
    view = wait_for(api, task_id, "failed")
    assert view["error"]["code"] == "timeout"
    assert view["attempts"] == 1  # a timeout is not retried
    state = wait_until_idle(api)
    assert state["queue"]["last_call"]["interrupted"] is True


def test_a_full_queue_is_429_with_retry_after(tmp_path) -> None:
    from tests.support.servers import start_server

    env = {"EASEL_JOBS_MAX_QUEUED": "2", "EASEL_JOBS_IN_PROCESS_WORKER": "false"}
    server = start_server("all", tmp_path, env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            queued = [submit(client, QUICK), submit(client, QUICK)]
            refused = client.post("/api/generate/async", json=QUICK)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_requests"
            assert int(refused.headers["retry-after"]) >= 1
            client.post(f"/api/generate/cancel/{queued[0]}")  # room again
            assert client.post("/api/generate/async", json=QUICK).status_code == 202
    finally:
        server.stop()
