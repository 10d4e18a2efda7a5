"""The LoRA adapters a request may name: the .safetensors files under MODELS_PATH/loras
(a file `x.safetensors`, or a folder `x/` holding one, is adapter `x`) and those configured
by EASEL_GENERATION_LORAS (hub ids too). Each has the model family it was made for,
declared or read from its file's header (lora_files.py); a request's adapters are checked
against its model's family before it is queued, so a mismatch is a 422, not a failed call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from easel.core.errors import InvalidInput
from easel.core.generation_api import LoraChoice
from easel.generation.engines.diffusers.lora_files import NotALoraFile, lora_family
from easel.generation.settings import LoraSpec

LORA_FOLDER = "loras"  # under MODELS_PATH
DIFFUSERS_WEIGHT_NAME = "pytorch_lora_weights.safetensors"  # what save_lora_weights writes

# The Qwen-Image models share one transformer architecture, so one adapter fits them all.
_ARCHITECTURE = {"qwen-image-edit": "qwen-image", "qwen-image-edit-plus": "qwen-image"}


def architecture(family: str) -> str:
    return _ARCHITECTURE.get(family, family)


@dataclass(frozen=True)
class Adapter:
    """One adapter: where `load_lora_weights` reads it, and the family it fits."""

    name: str
    family: str | None  # None: neither declared nor told by its file
    source: str  # a folder, or a hub id
    weight_name: str | None  # the file in it
    shown: str  # the source as a client may see it: `loras/x.safetensors`, or the hub id

    def fits(self, family: str) -> bool:
        return self.family is not None and architecture(self.family) == architecture(family)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "source": self.shown}


class AdapterCatalogue:
    """The adapters on disk (looked at again on each use: dropping a file in the folder
    makes it available) and the configured ones, which win on a name clash."""

    def __init__(
        self,
        models_path: Path | None = None,  # None: only the configured ones
        configured: Mapping[str, LoraSpec] | None = None,
        max_per_request: int = 4,
    ) -> None:
        self.models_path = models_path
        self.configured = dict(configured or {})
        self.max_per_request = max_per_request

    def adapters(self) -> dict[str, Adapter]:
        found = {adapter.name: adapter for adapter in self._on_disk()}
        for name, spec in self.configured.items():
            found[name] = self._configured(name, spec)
        return dict(sorted(found.items()))

    def for_family(self, family: str) -> list[dict[str, Any]]:
        """What `GET /api/models` lists for a model of `family`."""
        return [a.describe() for a in self.adapters().values() if a.fits(family)]

    def resolve(
        self, choices: Sequence[LoraChoice], family: str, model: str
    ) -> tuple[tuple[str, float], ...]:
        """A request's adapters as its CallKey holds them: (name, weight) in request order,
        those at weight 0 left out (the model without them: they batch with none)."""
        if not choices:
            return ()
        if len(choices) > self.max_per_request:
            raise InvalidInput.field("loras", f"at most {self.max_per_request} adapters")
        known = self.adapters()
        seen: set[str] = set()
        for index, choice in enumerate(choices):
            field = f"loras[{index}].name"
            adapter = known.get(choice.name)
            if adapter is None:
                fitting = [a.name for a in known.values() if a.fits(family)]
                listed = ", ".join(fitting) if fitting else "none"
                raise InvalidInput.field(
                    field, f"unknown adapter {choice.name!r}; known for {model!r}: {listed}"
                )
            if choice.name in seen:
                raise InvalidInput.field(field, f"adapter {choice.name!r} is given twice")
            seen.add(choice.name)
            if adapter.family is None:
                raise InvalidInput.field(
                    field,
                    f"the model family of adapter {choice.name!r} is unknown; declare it "
                    "in EASEL_GENERATION_LORAS",
                )
            if not adapter.fits(family):
                raise InvalidInput.field(
                    field,
                    f"adapter {choice.name!r} is made for {adapter.family} models; "
                    f"model {model!r} is {family}",
                )
        return tuple((c.name, c.weight) for c in choices if c.weight != 0)

    def _on_disk(self) -> list[Adapter]:
        if self.models_path is None:
            return []
        folder = self.models_path / LORA_FOLDER
        if not folder.is_dir():
            return []
        adapters = []
        for entry in sorted(folder.iterdir()):
            if entry.is_file() and entry.suffix == ".safetensors":
                adapters.append(self._file(entry.stem, entry))
            elif entry.is_dir():
                weights = _weights_in(entry)
                if weights is not None:
                    adapters.append(self._file(entry.name, weights))
        return adapters

    def _file(self, name: str, path: Path, family: str | None = None) -> Adapter:
        if family is None:
            try:
                family = lora_family(path)
            except (OSError, NotALoraFile):
                family = None  # listed, and refused with the reason to declare it
        # Configured outside MODELS_PATH: by its name alone, never where it lies.
        shown = path.name
        if self.models_path is not None and path.is_relative_to(self.models_path):
            shown = path.relative_to(self.models_path).as_posix()
        return Adapter(name, family, str(path.parent), path.name, shown)

    def _configured(self, name: str, spec: LoraSpec) -> Adapter:
        path = Path(spec.source).expanduser()
        local = path if path.is_absolute() or self.models_path is None else self.models_path / path
        if local.is_file():
            return self._file(name, local, spec.family)
        if local.is_dir():
            weights = local / spec.weight_name if spec.weight_name else _weights_in(local)
            if weights is not None and weights.is_file():
                return self._file(name, weights, spec.family)
        # A hub id: read on first use (into the hub cache); its family must be declared.
        return Adapter(name, spec.family, spec.source, spec.weight_name, spec.source)


def _weights_in(folder: Path) -> Path | None:
    """The adapter file of a folder: diffusers' name, or its only .safetensors file."""
    if (folder / DIFFUSERS_WEIGHT_NAME).is_file():
        return folder / DIFFUSERS_WEIGHT_NAME
    files = sorted(folder.glob("*.safetensors"))
    return files[0] if len(files) == 1 else None
