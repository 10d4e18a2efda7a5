"""Async jobs with `output: "url"`, through the gateway of both topologies: the result and
the `result` event carry links to the images the worker stored, fetchable, the same bytes
as a synchronous base64 answer for the same seed."""

from __future__ import annotations

import base64
import hashlib

import httpx

from tests.generation.helpers import sse_events
from tests.jobs.helpers import submit, wait_for

QUICK = {"prompt": "a harbour at dawn", "steps": 2, "seed": 5}


def test_a_jobs_result_and_its_event_carry_links(api: httpx.Client) -> None:
    task_id = submit(api, {**QUICK, "num_images": 2, "output": "url"})
    wait_for(api, task_id, "done")
    result = api.get(f"/api/generate/result/{task_id}").json()
    sync = api.post("/api/generate", json={**QUICK, "num_images": 2}).json()
    for linked, shown in zip(result["images"], sync["images"], strict=True):
        data = base64.b64decode(shown["image"])
        assert linked.get("image") is None
        assert linked["sha256"] == hashlib.sha256(data).hexdigest()
        assert linked["url"] == f"/api/images/{linked['sha256']}.png"
        assert api.get(linked["url"]).content == data
    with api.stream("GET", f"/api/generate/events/{task_id}") as response:
        name, last = list(sse_events(response))[-1]
    assert name == "result"
    assert [i["url"] for i in last["result"]["images"]] == [i["url"] for i in result["images"]]
    assert all(i.get("image") is None for i in last["result"]["images"])


def test_a_job_without_output_still_gets_its_bytes(api: httpx.Client) -> None:
    task_id = submit(api, QUICK)
    wait_for(api, task_id, "done")
    (image,) = api.get(f"/api/generate/result/{task_id}").json()["images"]
    assert image["image"] and image.get("url") is None
