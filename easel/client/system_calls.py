"""The calls that describe the server (health, models, workflows and styles) and load or
unload its models."""

from __future__ import annotations

from typing import Any

from easel.client.call import Call, identity, segment


def health(*, deep: bool = False) -> Call[dict[str, Any]]:
    params = {"deep": "true"} if deep else None
    return Call("GET", "/api/system/health", identity, params=params)


def models() -> Call[dict[str, Any]]:
    return Call("GET", "/api/models", identity)


def load_model(name: str) -> Call[dict[str, Any]]:
    return Call("POST", f"/api/models/{segment(name)}/load", identity)


def unload_model(name: str) -> Call[dict[str, Any]]:
    return Call("POST", f"/api/models/{segment(name)}/unload", identity)


def workflows() -> Call[dict[str, Any]]:
    return Call("GET", "/api/workflows", identity)


def styles() -> Call[list[str]]:
    return Call("GET", "/api/generate/styles", lambda body: list(body["styles"]))
