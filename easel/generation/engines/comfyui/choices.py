"""A request's `scheduler` and `loras` as a ComfyUI workflow's declared parameters.

ComfyUI splits what diffusers calls a scheduler in two KSampler inputs: `sampler_name`
(the method) and `scheduler` (the sigma spacing); a request's name maps to the pair
(A1111's names as ComfyUI spells them), written into the workflow's parameters of those
names. Adapters go into declared slots: `lora` with `lora_weight`, then `lora_2` with
`lora_2_weight`, ... (a LoraLoader's `lora_name` and `strength_model`, say). A request
asking for what its workflow does not declare is refused naming the field; so is
`control`, which no workflow parameter carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from easel.core.errors import InvalidInput
from easel.core.generation_api import GenerationRequest
from easel.generation.engines.comfyui.workflows import Workflow

SAMPLER, SIGMAS = "sampler_name", "scheduler"  # the shipped workflows' parameter names
# request name -> (KSampler sampler_name, KSampler scheduler)
COMFY_SCHEDULERS: dict[str, tuple[str, str]] = {
    "euler": ("euler", "normal"),
    "euler_a": ("euler_ancestral", "normal"),
    "euler_karras": ("euler", "karras"),
    "heun": ("heun", "normal"),
    "dpm2": ("dpm_2", "normal"),
    "dpm2_a": ("dpm_2_ancestral", "normal"),
    "dpmpp_2m": ("dpmpp_2m", "normal"),
    "dpmpp_2m_karras": ("dpmpp_2m", "karras"),
    "dpmpp_2m_sde": ("dpmpp_2m_sde", "normal"),
    "dpmpp_2m_sde_karras": ("dpmpp_2m_sde", "karras"),
    "ddim": ("ddim", "ddim_uniform"),
    "unipc": ("uni_pc", "normal"),
    "deis": ("deis", "normal"),
    "lcm": ("lcm", "normal"),
    "flow_euler": ("euler", "simple"),
    "flow_euler_karras": ("euler", "karras"),
    "flow_unipc": ("uni_pc", "simple"),
}


@dataclass
class Choices:
    """What `scheduler` and `loras` add to a request's workflow parameters."""

    values: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)  # parameter -> request field
    scheduler: str | None = None
    loras: tuple[tuple[str, float], ...] = ()

    def field_of(self, fallback: Callable[[str], str]) -> Callable[[str], str]:
        return lambda name: self.fields.get(name) or fallback(name)


def map_choices(request: GenerationRequest, workflow: Workflow) -> Choices:
    if request.control:
        raise InvalidInput.field(
            "control", f"workflow {workflow.name!r} takes no ControlNet control"
        )
    choices = Choices()
    if request.scheduler is not None:
        _scheduler(request, workflow, choices)
    if request.loras:
        _loras(request, workflow, choices)
    return choices


def _scheduler(request: GenerationRequest, workflow: Workflow, choices: Choices) -> None:
    declared = [name for name in (SAMPLER, SIGMAS) if name in workflow.parameters]
    if not declared:
        raise InvalidInput.field(
            "scheduler",
            f"workflow {workflow.name!r} takes no scheduler (it declares no "
            f"{SAMPLER!r} or {SIGMAS!r} parameter)",
        )
    if any(name in request.extra_params for name in declared):
        raise InvalidInput.field(
            "scheduler", f"give scheduler or extra_params.{'/'.join(declared)}, not both"
        )
    valid = [name for name, pair in COMFY_SCHEDULERS.items() if _allowed(workflow, pair)]
    name = request.scheduler
    if name not in valid:
        message = f"unknown scheduler {name!r} for workflow {workflow.name!r}; valid: "
        raise InvalidInput(
            f"scheduler: {message}{', '.join(valid)}",
            details=[{"field": "scheduler", "message": message + ", ".join(valid), "valid": valid}],
        )
    for parameter, value in zip((SAMPLER, SIGMAS), COMFY_SCHEDULERS[name], strict=True):
        if parameter in declared:
            choices.values[parameter] = value
            choices.fields[parameter] = "scheduler"
    choices.scheduler = name


def _allowed(workflow: Workflow, pair: tuple[str, str]) -> bool:
    for parameter, value in zip((SAMPLER, SIGMAS), pair, strict=True):
        declared = workflow.parameters.get(parameter)
        if declared is not None and declared.choices is not None and value not in declared.choices:
            return False
    return True


def _loras(request: GenerationRequest, workflow: Workflow, choices: Choices) -> None:
    slots: list[str] = []
    while (slot := "lora" if not slots else f"lora_{len(slots) + 1}") in workflow.parameters:
        slots.append(slot)
    if not slots:
        raise InvalidInput.field(
            "loras", f"workflow {workflow.name!r} takes no LoRA (it declares no 'lora' parameter)"
        )
    if len(request.loras) > len(slots):
        raise InvalidInput.field(
            "loras", f"workflow {workflow.name!r} takes at most {len(slots)} LoRA adapter(s)"
        )
    for index, (slot, lora) in enumerate(zip(slots, request.loras, strict=False)):
        weight = f"{slot}_weight"
        choices.values[slot] = lora.name
        choices.fields[slot] = f"loras[{index}].name"
        if weight in workflow.parameters:
            choices.values[weight] = lora.weight
            choices.fields[weight] = f"loras[{index}].weight"
    choices.loras = tuple((lora.name, lora.weight) for lora in request.loras)
