"""The calls of generation and of its jobs: synchronous generation, the stream's request,
job submission, status, result, cancel and the job list."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from easel.client.call import Call, identity, segment
from easel.client.images import encode_image
from easel.client.results import GenerationOutput, JobInfo, JobPage

GENERATE = "/api/generate"
STREAM = "/api/generate/stream"
# The fields sent as images, by the name the SDK takes them under (or the server's own).
_IMAGE_FIELDS = {
    "image": "input_image",
    "mask": "mask_image",
    "input_image": "input_image",
    "mask_image": "mask_image",
}


def generation_body(prompt: str | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A `GenerationRequest` body: the prompt, the fields as given (unknown ones are the
    server's to refuse, with a 422 naming them) and the images encoded."""
    body: dict[str, Any] = {"prompt": prompt}
    for name, value in fields.items():
        if name in _IMAGE_FIELDS:
            body[_IMAGE_FIELDS[name]] = None if value is None else encode_image(value)
        else:
            body[name] = value
    return body


def _output(body: Any) -> GenerationOutput:
    return GenerationOutput(body)


def _job(body: Any) -> JobInfo:
    return JobInfo(body)


def generate(prompt: str | None, fields: Mapping[str, Any]) -> Call[GenerationOutput]:
    return Call("POST", GENERATE, _output, generation_body(prompt, fields))


def stream_body(prompt: str | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    body = generation_body(prompt, fields)
    return {name: value for name, value in body.items() if value is not None}


def submit(prompt: str | None, fields: Mapping[str, Any]) -> Call[str]:
    options = dict(fields)
    key = options.pop("idempotency_key", None)
    headers = {"Idempotency-Key": str(key)} if key is not None else {}
    return Call(
        "POST",
        "/api/generate/async",
        lambda body: str(body["task_id"]),
        generation_body(prompt, options),
        headers=headers,
    )


def status(task_id: str) -> Call[JobInfo]:
    return Call("GET", f"/api/generate/status/{segment(task_id)}", _job)


def result(task_id: str) -> Call[GenerationOutput]:
    return Call("GET", f"/api/generate/result/{segment(task_id)}", _output)


def cancel(task_id: str) -> Call[JobInfo]:
    return Call("POST", f"/api/generate/cancel/{segment(task_id)}", _job)


def events_path(task_id: str) -> str:
    return f"/api/generate/events/{segment(task_id)}"


def image(url: str, base_url: str) -> Call[Any]:
    """An image link of an `output: "url"` result: a path on the server (or a URL under
    `base_url`). Nothing else: the client's key goes to its own server only."""
    path = url.removeprefix(base_url) if url.startswith(base_url + "/") else url
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"not a link of this server ({base_url}): {url}")
    return Call("GET", path, identity)


def _page(body: Any) -> JobPage:
    return JobPage([JobInfo(job) for job in body["jobs"]], body.get("next_cursor"))


def jobs(
    *,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    owner: str | None = None,
) -> Call[JobPage]:
    params = {"status": status, "limit": limit, "cursor": cursor, "owner": owner}
    return Call("GET", "/api/jobs", _page, params=params)
