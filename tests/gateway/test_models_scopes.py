"""The models API behind API keys: listing needs `generate`, loading and unloading a
model needs `admin` (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from easel.core.identity import ApiScope
from tests.gateway.keys_support import bearer, clear_easel_env, gateway_client, settings_for


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_easel_env(monkeypatch, tmp_path)


async def test_listing_needs_generate_and_load_or_unload_needs_admin(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, api_keys="user-key", admin_api_keys="admin-key")
    async with gateway_client(settings) as client:
        user, admin = bearer("user-key"), bearer("admin-key")
        assert (await client.get("/api/models", headers=user)).status_code == 200
        for verb in ("load", "unload"):
            path = f"/api/models/tiny-random/{verb}"
            assert (await client.post(path)).status_code == 401
            refused = await client.post(path, headers=user)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["details"]["scope"] == ApiScope.ADMIN
        # Unloading a model that is not loaded: the admin key gets through, nothing loads.
        answer = await client.post("/api/models/tiny-random/unload", headers=admin)
        assert answer.status_code == 200, answer.text
        assert answer.json()["message"] == "was not loaded"
        unknown = await client.post("/api/models/no-such-model/load", headers=admin)
        assert unknown.status_code == 404, unknown.text
