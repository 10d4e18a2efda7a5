"""The pulled models' entries (MODELS_PATH/easel-models.json): read over the built-in
catalogue, a broken file or entry skipped rather than stopping the service."""

from __future__ import annotations

from pathlib import Path

from easel.generation.pulled import PULLED_FILE, configured_models, pulled_models, record_pulled
from easel.generation.settings import GenerationSettings, ModelSpec


def test_entries_are_kept_and_merged_under_the_configured_ones(tmp_path: Path) -> None:
    record_pulled(tmp_path, "a", ModelSpec(source="a", family="sdxl", variant="fp16"))
    record_pulled(tmp_path, "sd-turbo", ModelSpec(source="sd-turbo", family="sd"))
    assert set(pulled_models(tmp_path)) == {"a", "sd-turbo"}
    assert pulled_models(tmp_path)["a"].variant == "fp16"
    settings = GenerationSettings(
        models_path=tmp_path, generation_models={"a": ModelSpec(source="elsewhere")}
    )
    models = configured_models(settings)
    assert models["sd-turbo"].source == "sd-turbo"  # the pulled one over the built-in
    assert models["a"].source == "elsewhere"  # EASEL_GENERATION_MODELS over both
    assert "tiny-random" in models


def test_a_broken_file_or_entry_is_skipped(tmp_path: Path) -> None:
    (tmp_path / PULLED_FILE).write_text("{not json")
    assert pulled_models(tmp_path) == {}
    (tmp_path / PULLED_FILE).write_text('{"bad": {"family": "nope"}, "ok": {"source": "ok"}}')
    assert set(pulled_models(tmp_path)) == {"ok"}
