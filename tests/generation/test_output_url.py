"""`output: "url"` on synchronous generation, through the gateway of both topologies: the
images stored once by content and served at `GET /api/images/{sha256}.{ext}` (the job
manager's route), the same bytes as `output: "base64"` gives for the same seed."""

from __future__ import annotations

import base64
import hashlib

import httpx

from tests.generation.helpers import sse_events

QUICK = {"prompt": "a quiet lake", "steps": 2, "seed": 11}
MISSING = "0" * 64


def assert_not_found(answer: httpx.Response) -> dict[str, object]:
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/json"
    error: dict[str, object] = answer.json()["error"]
    assert error["code"] == "not_found"
    return error


def test_a_url_gives_the_bytes_base64_gives_for_the_same_seed(api: httpx.Client) -> None:
    inline = api.post("/api/generate", json={**QUICK, "num_images": 2})
    linked = api.post("/api/generate", json={**QUICK, "num_images": 2, "output": "url"})
    assert inline.status_code == linked.status_code == 200, linked.text
    pairs = zip(inline.json()["images"], linked.json()["images"], strict=True)
    for shown, stored in pairs:
        data = base64.b64decode(shown["image"])
        digest = hashlib.sha256(data).hexdigest()
        # No keys and no secret on this stack: the link is the plain public path.
        assert stored["image"] is None and stored["sha256"] == digest
        assert stored["url"] == f"/api/images/{digest}.png"
        assert stored["seed"] == shown["seed"] and stored["width"] == shown["width"]
        fetched = api.get(stored["url"])
        assert fetched.status_code == 200 and fetched.content == data
        assert fetched.headers["content-type"] == "image/png"
        assert fetched.headers["etag"] == f'"{digest}"'
        assert "immutable" in fetched.headers["cache-control"]
        again = api.get(stored["url"], headers={"If-None-Match": fetched.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_the_extension_is_the_format_and_must_match(api: httpx.Client) -> None:
    body = {**QUICK, "output": "url", "output_format": "jpeg"}
    image = api.post("/api/generate", json=body).json()["images"][0]
    assert image["url"].endswith(".jpeg") and image["media_type"] == "image/jpeg"
    fetched = api.get(image["url"])
    assert fetched.headers["content-type"] == "image/jpeg"
    assert fetched.content.startswith(b"\xff\xd8\xff")
    wrong = assert_not_found(api.get(f"/api/images/{image['sha256']}.png"))
    assert "jpeg" in str(wrong["message"]) and wrong["details"] == {"field": "ext"}


def test_an_unknown_or_malformed_name_is_a_404_in_the_envelope(api: httpx.Client) -> None:
    assert "no image" in str(assert_not_found(api.get(f"/api/images/{MISSING}.png"))["message"])
    for name in ("abc.png", f"{MISSING.upper()}.png", f"{MISSING}0.webp", f"{MISSING}"):
        assert_not_found(api.get(f"/api/images/{name}"))


def test_the_streams_result_carries_links_too(api: httpx.Client) -> None:
    body = {**QUICK, "output": "url", "output_format": "webp"}
    with api.stream("POST", "/api/generate/stream", json=body) as response:
        assert response.status_code == 200
        events = list(sse_events(response))
    name, last = events[-1]
    assert name == "result"
    image = last["result"]["images"][0]
    assert image.get("image") is None and image["url"].endswith(".webp")
    assert api.get(image["url"]).content.startswith(b"RIFF")
