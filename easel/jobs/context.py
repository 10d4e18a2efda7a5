"""A job's place in its trace: the submitting request's span, kept on the job, continued
by whoever works on it later (the worker, a webhook delivery), so that every log line
and call of the job names the trace of the request that submitted it, and the job."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from easel.core.request_context import task_scope
from easel.core.tracing import TraceContext, continued, current_trace, traced
from easel.jobs.models import Job


def submitted_trace() -> dict[str, str | None]:
    """The `Job` fields that keep the current span (the submit request's) as the parent of
    the job's work."""
    trace = current_trace()
    if trace is None:
        return {"traceparent": None, "tracestate": None}
    return {"traceparent": trace.traceparent, "tracestate": trace.tracestate}


@contextmanager
def job_context(job: Job) -> Iterator[TraceContext]:
    """Run the block as a new span of the job's trace, its log lines naming the job: a
    child of the current span when that is in the job's trace already (a webhook the
    worker's run sends), else of the span that submitted the job (a cancel request has a
    trace of its own), else of a new trace (a job submitted before traces were kept)."""
    current = current_trace()
    job_span = continued(job.traceparent, job.tracestate)
    if current is not None and (job_span is None or current.trace_id == job_span.trace_id):
        span = current.child()
    else:
        span = job_span or TraceContext.new()
    with traced(span), task_scope(job.id):
        yield span
