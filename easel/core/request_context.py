"""What a log line says of where it was written, readable anywhere below the edge
middleware: the request's id, the service handling it, and the job it concerns (the trace
is in `easel.core.tracing`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
_MAX_ID_LENGTH = 128

_request_id: ContextVar[str | None] = ContextVar("easel_request_id", default=None)
_service: ContextVar[str | None] = ContextVar("easel_service", default=None)
_task_id: ContextVar[str | None] = ContextVar("easel_task_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def current_service() -> str | None:
    return _service.get()


def current_task_id() -> str | None:
    return _task_id.get()


def accept_or_create(incoming: str | None) -> str:
    """Keep a caller's id if it is sane (printable, bounded), else make one."""
    if incoming and len(incoming) <= _MAX_ID_LENGTH and incoming.isprintable():
        return incoming
    return uuid.uuid4().hex


@contextmanager
def task_scope(task_id: str | None) -> Iterator[None]:
    """Log lines written in the block concern job `task_id`."""
    token = _task_id.set(task_id)
    try:
        yield
    finally:
        _task_id.reset(token)


@contextmanager
def service_scope(service: str) -> Iterator[None]:
    """Log lines written in the block come from `service` (a worker has no edge)."""
    token = _service.set(service)
    try:
        yield
    finally:
        _service.reset(token)


request_id_var = _request_id
service_var = _service
task_id_var = _task_id
