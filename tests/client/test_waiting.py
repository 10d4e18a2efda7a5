"""`wait`'s deadline holds while a job keeps reporting steps: every event checks it, not
only a silent stream (an injected clock, no sleeping)."""

from __future__ import annotations

import json

import pytest
from httpx_sse import ServerSentEvent

from easel.client.errors import WaitTimeout
from easel.client.waiting import JobWatch


def progress(step: int, event_id: int) -> ServerSentEvent:
    data = json.dumps({"type": "progress", "step": step, "total": 100})
    return ServerSentEvent(event="progress", data=data, id=str(event_id))


def test_a_job_that_keeps_stepping_still_times_out() -> None:
    now = [0.0]
    seen: list[object] = []
    watch = JobWatch("job-1", timeout=5.0, on_progress=seen.append, clock=lambda: now[0])
    for step in range(1, 5):
        now[0] = step  # within the five seconds
        assert watch.see(progress(step, step)) is None
    assert len(seen) == 4 and watch.last_event_id == 4
    now[0] = 5.5
    with pytest.raises(WaitTimeout, match="job-1"):
        watch.see(progress(5, 5))
    assert len(seen) == 4  # not reported after the deadline


def test_without_a_timeout_it_never_gives_up() -> None:
    now = [0.0]
    watch = JobWatch("job-2", timeout=None, on_progress=None, clock=lambda: now[0])
    now[0] = 1e9
    assert watch.see(progress(1, 1)) is None and watch.remaining() is None
