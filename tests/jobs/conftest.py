"""Job store fixtures: every conformance test runs on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from easel.jobs.store.sqlite import SQLiteJobStore

BACKENDS = ["sqlite"]

StoreFactory = Callable[[], Awaitable[object]]


@pytest.fixture(params=BACKENDS)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """A factory of stores sharing one backend (several connections, as several processes)."""
    opened = []

    async def open_one():
        if request.param == "sqlite":
            store = await SQLiteJobStore.open(tmp_path / "jobs.db")
        else:  # pragma: no cover - other backends register here
            raise AssertionError(request.param)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture()
async def store(open_store):
    return await open_store()
