"""The README is the settings reference: every setting must be documented there."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic_settings import BaseSettings

from easel.compose.modal.settings import ModalDeploySettings
from easel.compose.services import SERVICES
from easel.compose.settings import SETTINGS_CLASSES
from easel.compose.weights import WeightsSettings

# Settings read outside the services: the Modal deployment's layout (where `modal deploy`
# runs) and the weights download.
OTHER_SETTINGS: tuple[type[BaseSettings], ...] = (ModalDeploySettings, WeightsSettings)

README = Path(__file__).resolve().parents[1] / "README.md"


def documented_name(kind: type[BaseSettings], field: str) -> str:
    alias = kind.model_fields[field].validation_alias
    name = getattr(alias, "choices", [f"EASEL_{field.upper()}"])[0]
    for service in (spec.name for spec in SERVICES):
        # Per-service settings share one row: EASEL_<SERVICE>_TIMEOUT, ..._HEALTH_MODE.
        name = re.sub(
            rf"^EASEL_{service.upper()}_(TIMEOUT|HEALTH_MODE)$", r"EASEL_<SERVICE>_\1", name
        )
    return str(name)


def test_every_setting_is_documented() -> None:
    text = README.read_text()
    missing = [
        f"{kind.__name__}.{field}"
        for kind in (*SETTINGS_CLASSES, *OTHER_SETTINGS)
        for field in kind.model_fields
        if f"`{documented_name(kind, field)}`" not in text
    ]
    assert SETTINGS_CLASSES, "no settings classes found"
    assert not missing, f"settings missing from README: {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text()
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make serve", "make test"]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
