"""The schedulers a request may choose by name (`scheduler`), per model family.

Each name is a diffusers scheduler class and the options that make it the sampler users
know by that name (A1111's and ComfyUI's names, as diffusers' docs map them), built with
`Cls.from_config(model's own scheduler config, **options)`: the model's training schedule
(betas, prediction type, timestep spacing) is kept, only the sampling method changes.

Left out on purpose: LMS and the Brownian-tree SDE samplers need scipy / torchsde, which
the generation extra does not install; PNDM fails on short schedules; the stochastic
flow-matching samplers draw their noise outside the request's generators in the FLUX and
Qwen pipelines (a seed would not reproduce); FlowMatchHeun and DPM-Solver take no custom
sigmas, which those pipelines pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from easel.core.errors import InvalidInput


@dataclass(frozen=True)
class SchedulerChoice:
    cls: str  # a diffusers scheduler class
    options: dict[str, Any] = field(default_factory=dict)


_DPMPP_2M = {"algorithm_type": "dpmsolver++", "solver_order": 2}
_DPMPP_2M_SDE = {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}
_KARRAS = {"use_karras_sigmas": True}

UNET_SCHEDULERS: dict[str, SchedulerChoice] = {
    "euler": SchedulerChoice("EulerDiscreteScheduler"),
    "euler_a": SchedulerChoice("EulerAncestralDiscreteScheduler"),
    "euler_karras": SchedulerChoice("EulerDiscreteScheduler", _KARRAS),
    "heun": SchedulerChoice("HeunDiscreteScheduler"),
    "dpm2": SchedulerChoice("KDPM2DiscreteScheduler"),
    "dpm2_a": SchedulerChoice("KDPM2AncestralDiscreteScheduler"),
    "dpmpp_2m": SchedulerChoice("DPMSolverMultistepScheduler", _DPMPP_2M),
    "dpmpp_2m_karras": SchedulerChoice("DPMSolverMultistepScheduler", {**_DPMPP_2M, **_KARRAS}),
    "dpmpp_2m_sde": SchedulerChoice("DPMSolverMultistepScheduler", _DPMPP_2M_SDE),
    "dpmpp_2m_sde_karras": SchedulerChoice(
        "DPMSolverMultistepScheduler", {**_DPMPP_2M_SDE, **_KARRAS}
    ),
    "ddim": SchedulerChoice("DDIMScheduler"),
    "unipc": SchedulerChoice("UniPCMultistepScheduler"),
    "deis": SchedulerChoice("DEISMultistepScheduler"),
    "lcm": SchedulerChoice("LCMScheduler"),  # with an LCM model or LCM-LoRA
}
FLOW_SCHEDULERS: dict[str, SchedulerChoice] = {
    "flow_euler": SchedulerChoice("FlowMatchEulerDiscreteScheduler"),
    "flow_euler_karras": SchedulerChoice("FlowMatchEulerDiscreteScheduler", _KARRAS),
    "flow_unipc": SchedulerChoice(
        "UniPCMultistepScheduler", {"use_flow_sigmas": True, "prediction_type": "flow_prediction"}
    ),
}
_UNET_FAMILIES = ("sd", "sdxl")  # every other family is flow matching


def schedulers_of(family: str) -> dict[str, SchedulerChoice]:
    return UNET_SCHEDULERS if family in _UNET_FAMILIES else FLOW_SCHEDULERS


def check_scheduler(name: str | None, family: str, model: str) -> str | None:
    """`name` if `family` lists it; None (the model's own) when absent."""
    if name is None:
        return None
    valid = schedulers_of(family)
    if name not in valid:
        message = f"unknown scheduler {name!r} for model {model!r}; valid: {', '.join(valid)}"
        raise InvalidInput(
            f"scheduler: {message}",
            details=[{"field": "scheduler", "message": message, "valid": [*valid]}],
        )
    return name


def build_scheduler(name: str, family: str, own: Any) -> Any:
    """Scheduler `name` on the schedule of `own` (the model's scheduler)."""
    import diffusers

    choice = schedulers_of(family)[name]
    return getattr(diffusers, choice.cls).from_config(own.config, **choice.options)


def name_of(scheduler: Any, family: str) -> str:
    """What a request would call `scheduler`: the entry of its class whose options its
    config has (the most specific), else its class name."""
    config = dict(scheduler.config)
    matching = [
        (len(choice.options), name)
        for name, choice in schedulers_of(family).items()
        if choice.cls == type(scheduler).__name__
        and all(config.get(key) == value for key, value in choice.options.items())
    ]
    return max(matching)[1] if matching else type(scheduler).__name__
