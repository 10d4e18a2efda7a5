"""The current request's id, readable anywhere below the edge middleware."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
_MAX_ID_LENGTH = 128

_request_id: ContextVar[str | None] = ContextVar("easel_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def accept_or_create(incoming: str | None) -> str:
    """Keep a caller's id if it is sane (printable, bounded), else make one."""
    if incoming and len(incoming) <= _MAX_ID_LENGTH and incoming.isprintable():
        return incoming
    return uuid.uuid4().hex


request_id_var = _request_id
