"""Log set-up: one line per event, text for people or JSON for collectors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import IO, Any

from easel.core.images import quiet_pillow
from easel.core.request_context import current_request_id

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            payload["request_id"] = request_id
        payload.update(
            {k: v for k, v in vars(record).items() if k not in _RESERVED and k != "request_tag"}
        )
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id current where it was logged (in the
    request's context, before any handler or queue can move it elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
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
