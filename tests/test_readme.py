"""The README is the settings reference: every setting must be documented there."""

from __future__ import annotations

import re
from pathlib import Path

from easel.core.settings import SERVICE_NAMES, Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def documented_name(field: str) -> str:
    alias = Settings.model_fields[field].validation_alias
    name = getattr(alias, "choices", [f"EASEL_{field.upper()}"])[0]
    for service in SERVICE_NAMES:
        # Per-service settings share one row: EASEL_<SERVICE>_TIMEOUT, ..._HEALTH_MODE.
        name = re.sub(
            rf"^EASEL_{service.upper()}_(TIMEOUT|HEALTH_MODE)$", r"EASEL_<SERVICE>_\1", name
        )
    return str(name)


def test_every_setting_is_documented() -> None:
    text = README.read_text()
    missing = [f for f in Settings.model_fields if f"`{documented_name(f)}`" not in text]
    assert not missing, f"settings missing from README: {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text()
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make serve", "make test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
