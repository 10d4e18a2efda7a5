"""The all-in-one gateway in this process, with API keys configured, for the auth tests;
and keys made the way `easel keys create` makes them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from easel.compose.access import keys_of
from easel.compose.gateway import create_gateway
from easel.compose.settings import EaselSettings
from easel.core.identity import ApiScope


def clear_easel_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("EASEL_") or key.endswith("_SERVICE_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def settings_for(tmp_path: Path, **values: Any) -> EaselSettings:
    return EaselSettings.load(
        data_dir=tmp_path / "data",
        generation_model="tiny-random",
        generation_load="lazy",
        jobs_in_process_worker=False,
        **values,
    )


def make_key(settings: EaselSettings, name: str, scopes: Iterable[ApiScope], **limits: Any) -> str:
    return keys_of(settings).create(name, scopes, **limits)[1]


@asynccontextmanager
async def gateway_client(settings: EaselSettings) -> AsyncIterator[httpx.AsyncClient]:
    gateway = create_gateway(settings)
    async with gateway.router.lifespan_context(gateway):
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
