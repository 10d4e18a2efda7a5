"""Reading server-sent events from an httpx response (the writing side is sse-starlette)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


async def iter_sse(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) per event; comments and pings are skipped."""
    name: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "":
            if name is not None and data:
                yield name, json.loads("\n".join(data))
            name, data = None, []
