"""The event vocabulary: each stream's union parses what its writers send, and a job
event's JSON keeps the keys (and their order) that the job log has always held."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from easel.core.events import (
    GENERATION_EVENT_ADAPTER,
    JOB_EVENT_ADAPTER,
    Cancelled,
    EventType,
    Failed,
    GenerationLoading,
    GenerationQueued,
    GenerationStarted,
    JobCancelled,
    JobFailed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    Loading,
    Progress,
    Queued,
    Started,
    Succeeded,
    is_terminal,
    job_event_data,
    job_sse_fields,
    sse_fields,
)

RESULT = {"seed": 7, "images": [{"seed": 7, "format": "png", "sha256": "ab" * 32}]}
ERROR = {"code": "invalid_input", "message": "bad", "details": {"field": "width"}, "status": 422}

# Each job event as the previous version wrote it into the log (dicts, `json.dumps`).
OLD_JOB_EVENTS = [
    ({"type": "queued", "status": "queued"}, JobQueued()),
    ({"type": "started", "attempt": 2}, JobStarted(attempt=2)),
    (
        {"type": "generation_queued", "position": 3, "request_id": "r1"},
        GenerationQueued(position=3, request_id="r1"),
    ),
    ({"type": "generation_started", "batch_size": 2}, GenerationStarted(batch_size=2)),
    ({"type": "progress", "step": 1, "total": 4}, Progress(step=1, total=4)),
    (
        {"type": "progress", "step": 2, "total": 4, "preview": "iVBOR"},
        Progress(step=2, total=4, preview="iVBOR"),
    ),
    (
        {"type": "queued", "status": "queued", "retry": True, "error": {"code": "worker_lost"}},
        JobQueued(retry=True, error={"code": "worker_lost"}),
    ),
    ({"type": "result", "status": "done", "result": RESULT}, JobSucceeded(result=RESULT)),
    ({"type": "error", "status": "failed", "error": ERROR}, JobFailed(error=ERROR)),
    ({"type": "cancelled", "status": "cancelled"}, JobCancelled()),
]


@pytest.mark.parametrize(("old", "typed"), OLD_JOB_EVENTS, ids=lambda v: str(v)[:40])
def test_old_job_events_parse_and_serialize_to_the_same_keys(old, typed) -> None:
    parsed = JOB_EVENT_ADAPTER.validate_json(json.dumps(old))
    assert parsed == typed and type(parsed) is type(typed)
    # The same dict, key order included: null fields left out, `type` first.
    assert list(job_event_data(parsed).items()) == list(old.items())
    assert JOB_EVENT_ADAPTER.validate_json(parsed.model_dump_json(exclude_none=True)) == typed


def test_the_generation_stream_events_round_trip_with_their_nulls() -> None:
    events = [
        Queued(position=0, request_id="r1"),
        Loading(model="sdxl"),
        Started(batch_size=4, batch_requests=2),
        Progress(step=1, total=2),
        Succeeded(result={"images": []}),
        Failed(error={"code": "bad_gateway", "message": "x"}, status=502),
        Cancelled(reason="the request was cancelled"),
    ]
    for event in events:
        fields = sse_fields(event, 3)
        assert fields["event"] == event.type and fields["id"] == "3"
        assert GENERATION_EVENT_ADAPTER.validate_json(fields["data"]) == event
    progress = json.loads(sse_fields(Progress(step=1, total=2))["data"])
    assert progress == {"type": "progress", "step": 1, "total": 2, "preview": None}


def test_a_models_load_is_relayed_into_a_jobs_log_under_its_own_name() -> None:
    relayed = JOB_EVENT_ADAPTER.validate_python({"type": "generation_loading", "model": "sdxl"})
    assert relayed == GenerationLoading(model="sdxl")
    with pytest.raises(ValidationError):  # the stream's `loading` is not a job event
        JOB_EVENT_ADAPTER.validate_python({"type": "loading", "model": "sdxl"})


def test_a_job_event_on_the_wire_has_no_null_fields() -> None:
    fields = job_sse_fields(Progress(step=1, total=2), 5)
    assert fields == {
        "event": "progress",
        "data": '{"type": "progress", "step": 1, "total": 2}',
        "id": "5",
    }


def test_the_same_type_name_means_a_different_model_per_stream() -> None:
    """`error` of the generation stream carries an HTTP status; a job's, its own status."""
    generation = GENERATION_EVENT_ADAPTER.validate_python(
        {"type": "error", "error": {"code": "x", "message": "m"}, "status": 422}
    )
    assert isinstance(generation, Failed) and generation.status == 422
    job = JOB_EVENT_ADAPTER.validate_python({"type": "error", "status": "failed", "error": ERROR})
    assert isinstance(job, JobFailed) and job.status == "failed"
    with pytest.raises(ValidationError):  # a job's error event is not a generation one
        GENERATION_EVENT_ADAPTER.validate_python(job_event_data(job))


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "{}",
        '{"type": "progress", "step": "one", "total": 2}',
        '{"type": "result"}',
        '{"type": "generation_queued", "position": 0}',  # a job event, not a stream one
    ],
)
def test_what_is_not_a_generation_event_is_refused(data) -> None:
    with pytest.raises(ValidationError):
        GENERATION_EVENT_ADAPTER.validate_json(data)


def test_terminal_events() -> None:
    assert [t.value for t in EventType if t.is_terminal] == ["result", "error", "cancelled"]
    assert is_terminal(JobCancelled()) and is_terminal(Succeeded(result={}))
    assert not is_terminal(JobQueued(retry=True)) and not is_terminal(GenerationStarted())
