"""A small service built like every easel service (`create_service_app`: the internal
credential's guard included), from test routes, to see whom it believes a request is from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import SecretStr

from easel.core.app import create_service_app
from easel.core.identity import Caller
from easel.core.settings import SharedSettings


def shown(caller: Caller) -> dict[str, Any]:
    return {"name": caller.name, "scopes": sorted(caller.scopes)}


def guarded_service(tmp_path: Path, token: str | None, router: APIRouter, service: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    settings = SharedSettings(
        data_dir=tmp_path, internal_token=SecretStr(token) if token is not None else None
    )
    return create_service_app(
        settings, service=service, description="test", lifespan=lifespan, routers=[router]
    )
