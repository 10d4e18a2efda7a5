"""Log set-up: one line per event, text for people or JSON for collectors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import IO, Any

from easel.core.images import quiet_pillow
from easel.core.request_context import current_request_id, current_service, current_task_id
from easel.core.tracing import current_trace

_RESERVED = set(vars(logging.makeLogRecord({})))


def context_fields() -> dict[str, str]:
    """Where a line is written now: request id, service, trace and span, job."""
    fields: dict[str, str] = {}
    for name, value in (
        ("request_id", current_request_id()),
        ("service", current_service()),
        ("task_id", current_task_id()),
    ):
        if value:
            fields[name] = value
    trace = current_trace()
    if trace is not None:
        fields["trace_id"] = trace.trace_id
        fields["span_id"] = trace.span_id
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(context_fields())  # a record stamped by the filter overrides these
        payload.update(
            {k: v for k, v in vars(record).items() if k not in _RESERVED and k != "request_tag"}
        )
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the context current where it was logged (in the request's
    or job's context, before any handler or queue can move it elsewhere): request id,
    service, trace and span ids, task id. What the call gave in `extra` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in context_fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] message`; no brackets outside a request."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_tag)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_tag = f" [{request_id}]" if request_id else ""
        return super().format(record)


def build_handler(fmt: str, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(level: str, fmt: str) -> None:
    root = logging.getLogger()
    root.handlers[:] = [build_handler(fmt)]
    root.setLevel(level)
    # Our edge middleware logs every request once; uvicorn's access log would say it twice.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every proxied request at INFO; the edge line already covers it.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    quiet_pillow()
