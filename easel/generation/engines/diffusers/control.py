"""ControlNets per request: which exist for each model family (hub defaults merged under
EASEL_GENERATION_CONTROLNETS), a request's `control` checked against them, and which
ControlNets a call's control types run on.

Pure configuration: nothing here imports torch (control_pipelines.py loads the weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from easel.core.errors import InvalidInput
from easel.core.generation_api import ControlChoice, Mode
from easel.core.paths import public_text
from easel.generation.engines.base import ControlKey
from easel.generation.settings import ControlNetSpec, GenerationSettings

# The control_mode index of each type on an SDXL ControlNet-Union (xinsir's numbering,
# which diffusers' ControlNetUnionModel examples use; `tile` is the ProMax weights' own).
UNION_MODES = {
    "openpose": 0,
    "depth": 1,
    "softedge": 2,
    "scribble": 2,
    "canny": 3,
    "lineart": 3,
    "mlsd": 3,
    "normal": 4,
    "segment": 5,
    "tile": 6,
}

# (family, union) -> mode -> the diffusers pipeline that runs a model with ControlNets.
# Qwen-Image's ControlNet pipelines run text-to-image only (its "inpaint" one is an
# inpainting ControlNet, a different kind of model).
PIPELINES: dict[tuple[str, bool], dict[Mode, str]] = {
    ("sd", False): {
        Mode.TEXT_TO_IMAGE: "StableDiffusionControlNetPipeline",
        Mode.EDIT: "StableDiffusionControlNetImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionControlNetInpaintPipeline",
    },
    ("sdxl", False): {
        Mode.TEXT_TO_IMAGE: "StableDiffusionXLControlNetPipeline",
        Mode.EDIT: "StableDiffusionXLControlNetImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionXLControlNetInpaintPipeline",
    },
    ("sdxl", True): {
        Mode.TEXT_TO_IMAGE: "StableDiffusionXLControlNetUnionPipeline",
        Mode.EDIT: "StableDiffusionXLControlNetUnionImg2ImgPipeline",
        Mode.INPAINT: "StableDiffusionXLControlNetUnionInpaintPipeline",
    },
    ("qwen-image", False): {Mode.TEXT_TO_IMAGE: "QwenImageControlNetPipeline"},
}

# Families whose pipelines combine several controls on one ControlNet only (diffusers'
# QwenImageMultiControlNetModel: a ControlNet-Union given several condition images).
ONE_NET_FAMILIES = {"qwen-image"}


def _hub(source: str, family: Any, types: list[str], **more: Any) -> ControlNetSpec:
    return ControlNetSpec(source=source, family=family, types=types, **more)


# Downloaded from the hub on first use (as models are); EASEL_GENERATION_CONTROLNETS adds
# to these or replaces one by its name. The SD ones are SD 1.5's: they do not fit SD 2.x
# models (sd-turbo).
CATALOGUE: dict[str, ControlNetSpec] = {
    "canny-sd15": _hub("lllyasviel/control_v11p_sd15_canny", "sd", ["canny"]),
    "depth-sd15": _hub("lllyasviel/control_v11f1p_sd15_depth", "sd", ["depth"]),
    "openpose-sd15": _hub("lllyasviel/control_v11p_sd15_openpose", "sd", ["openpose"]),
    "lineart-sd15": _hub("lllyasviel/control_v11p_sd15_lineart", "sd", ["lineart"]),
    "scribble-sd15": _hub("lllyasviel/control_v11p_sd15_scribble", "sd", ["scribble"]),
    "canny-sdxl": _hub("diffusers/controlnet-canny-sdxl-1.0", "sdxl", ["canny"]),
    "depth-sdxl": _hub("diffusers/controlnet-depth-sdxl-1.0", "sdxl", ["depth"]),
    "union-sdxl": _hub(
        "xinsir/controlnet-union-sdxl-1.0",
        "sdxl",
        [t for t in UNION_MODES if t != "tile"],
        union=True,
        description="SDXL ControlNet-Union: one net for every type it lists.",
    ),
    "union-qwen-image": _hub(
        "InstantX/Qwen-Image-ControlNet-Union",
        "qwen-image",
        ["canny", "softedge", "depth", "openpose"],
        description="Qwen-Image ControlNet-Union: it tells the type from the image.",
    ),
}


class ControlNets:
    """The ControlNets a request's `control` may use, in order of preference (configured
    ones before the hub defaults), and the most controls one request may have."""

    def __init__(
        self,
        specs: Mapping[str, ControlNetSpec] | None = None,
        max_controls: int = 3,
        configured: frozenset[str] = frozenset(),
    ) -> None:
        self.specs = dict(CATALOGUE if specs is None else specs)
        self.max_controls = max_controls
        self.configured = configured  # the names a user configured: chosen before defaults
        for name, spec in self.specs.items():
            unknown = [t for t in spec.types if t not in UNION_MODES]
            if spec.union and unknown:
                raise ValueError(f"ControlNet {name!r}: a union net takes no type {unknown}")
            if spec.union and spec.family != "sdxl":
                raise ValueError(f"ControlNet {name!r}: union nets are SDXL's")

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> ControlNets:
        configured = settings.generation_controlnets
        defaults = {k: v for k, v in CATALOGUE.items() if k not in configured}
        return cls(
            {**configured, **defaults}, settings.generation_max_controls, frozenset(configured)
        )

    def of_family(self, family: str) -> dict[str, ControlNetSpec]:
        return {name: spec for name, spec in self.specs.items() if spec.family == family}

    def types_of(self, family: str) -> list[str]:
        return sorted({t for spec in self.of_family(family).values() for t in spec.types})

    def select(self, family: str, types: Sequence[str]) -> tuple[str, ...] | None:
        """The ControlNet for each type, all plain or all union (the two kinds run in
        different pipelines): configured ones where they cover every type, else any; of
        those, plain ones, else union ones; None when no such choice covers them all."""
        family_nets = self.of_family(family)
        for tier in ({n: family_nets[n] for n in family_nets if n in self.configured}, family_nets):
            for union in (False, True):
                nets = {n: s for n, s in tier.items() if s.union is union}
                chosen = [next((n for n, s in nets.items() if t in s.types), None) for t in types]
                if all(chosen):
                    return tuple(n for n in chosen if n is not None)
        return None

    def pipeline_class(self, family: str, names: Sequence[str], mode: Mode) -> str:
        return PIPELINES[(family, self.specs[names[0]].union)][mode]

    def resolve(
        self, controls: Sequence[ControlChoice], family: str, mode: Mode, model: str
    ) -> tuple[ControlKey, ...]:
        """A request's `control` as its call's key; InvalidInput naming the field."""
        if not controls:
            return ()
        if len(controls) > self.max_controls:
            raise InvalidInput.field(
                "control", f"at most {self.max_controls} (EASEL_GENERATION_MAX_CONTROLS)"
            )
        if not self.of_family(family):
            raise InvalidInput.field(
                "control",
                f"no ControlNet is configured for {family} models such as {model!r} "
                "(EASEL_GENERATION_CONTROLNETS)",
            )
        known = self.types_of(family)
        for index, control in enumerate(controls):
            if control.type not in known:
                raise InvalidInput.field(
                    f"control[{index}].type",
                    f"unknown control type {control.type!r} for {family} models; "
                    f"known: {', '.join(known)}",
                )
        names = self.select(family, [c.type for c in controls])
        if names is None:
            raise InvalidInput.field(
                "control",
                "these types have no ControlNets of one kind (plain or union) to combine; "
                "ask for types that one kind covers",
            )
        if family in ONE_NET_FAMILIES and len(set(names)) > 1:
            raise InvalidInput.field(
                "control",
                f"{family} combines controls on one ControlNet only, and these types need "
                f"{', '.join(sorted(set(names)))}",
            )
        modes = PIPELINES[(family, self.specs[names[0]].union)]
        if mode not in modes:
            raise InvalidInput.field(
                "control", f"{family} ControlNets run with: {', '.join(modes)}; not {mode}"
            )
        return tuple(ControlKey(c.type, c.strength, c.start, c.end) for c in controls)

    def describe(self, family: str, folders: Mapping[str, Path]) -> list[dict[str, Any]]:
        """For `GET /api/models`: the ControlNets a model of `family` can use; `folders`
        (label -> path) name local folders by label, not where they lie."""
        return [
            {
                "name": name,
                "family": spec.family,
                "types": spec.types,
                "union": spec.union,
                "source": public_text(spec.source, folders),
                "description": spec.description,
            }
            for name, spec in self.of_family(family).items()
        ]
