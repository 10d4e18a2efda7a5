"""Style presets: a name rewrites the prompt through a template and adds a negative prompt."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter, field_validator

from easel.core.errors import InvalidInput


class Style(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str  # contains {prompt}
    negative_prompt: str = ""

    @field_validator("prompt")
    @classmethod
    def _has_slot(cls, value: str) -> str:
        if "{prompt}" not in value:
            raise ValueError("a style's prompt template must contain {prompt}")
        return value


_STYLES = TypeAdapter(dict[str, Style])


class Styles:
    def __init__(self, styles: dict[str, Style]) -> None:
        self.styles = styles

    @classmethod
    def load(cls, path: Path | None) -> Styles:
        """The given file, or the presets shipped with easel."""
        if path is None:
            text = resources.files("easel.generation").joinpath("styles.json").read_text()
        else:
            text = path.read_text()
        return cls(_STYLES.validate_python(json.loads(text)))

    def names(self) -> list[str]:
        return sorted(self.styles)

    def apply(self, name: str | None, prompt: str, negative: str | None) -> tuple[str, str | None]:
        if name is None:
            return prompt, negative
        style = self.styles.get(name)
        if style is None:
            raise InvalidInput.field("style", f"unknown style; known: {', '.join(self.names())}")
        styled = style.prompt.replace("{prompt}", prompt)
        negatives = [n for n in (style.negative_prompt, negative) if n]
        return styled, ", ".join(negatives) or None
