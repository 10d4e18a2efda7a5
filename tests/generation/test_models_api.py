"""`GET /api/models` through the gateway, in both topologies: the configured models, the
modes each runs, which one is the default and whether it is loaded."""

from __future__ import annotations

import httpx


def test_the_models_are_listed_with_their_modes(api: httpx.Client) -> None:
    answer = api.get("/api/models")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["engine"] == "diffusers"
    by_name = {model["name"]: model for model in body["models"]}
    assert body["default_model"] in by_name
    default = by_name[body["default_model"]]
    assert default["default"] is True
    assert sum(model["default"] for model in body["models"]) == 1
    assert {"text-to-image", "edit", "inpaint"} <= set(default["modes"])
    assert {"sd-turbo", "sdxl-turbo", "qwen-image-edit"} <= set(by_name)  # built in
    assert by_name["qwen-image-edit"]["modes"] == ["edit", "inpaint"]
    assert by_name["qwen-image-edit-plus"]["modes"] == ["edit"]
    assert [model["name"] for model in body["models"]] == sorted(by_name)
    assert all(isinstance(model["loaded"], bool) for model in body["models"])
