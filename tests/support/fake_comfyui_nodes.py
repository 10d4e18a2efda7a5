"""The node classes the fake ComfyUI knows: their input specs, validation with ComfyUI's
error shapes (../shared/comfyui-protocol.md), and weight-free stand-in behaviour.

The stand-ins are deterministic: KSampler paints a colour derived from its seed, prompt
and settings, so tests can check reproducibility and that values reached the right node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageChops

SAMPLERS = [
    "euler",
    "euler_ancestral",
    "heun",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_sde",
    "ddim",
    "uni_pc",
    "lcm",
]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"]
UINT64 = 0xFFFFFFFFFFFFFFFF

INT = "INT"
FLOAT = "FLOAT"
STRING = "STRING"


@dataclass
class NodeClass:
    inputs: Callable[[Any], dict[str, tuple[Any, ...]]]  # fake -> {name: (type, options)}
    outputs: tuple[str, ...]
    output_node: bool = False
    files_input: str | None = None  # an input naming an uploaded file (custom validation)


def _int(default: int, lo: int, hi: int) -> tuple[str, dict[str, int]]:
    return (INT, {"default": default, "min": lo, "max": hi})


def _float(default: float, lo: float, hi: float) -> tuple[str, dict[str, float]]:
    return (FLOAT, {"default": default, "min": lo, "max": hi})


CLASSES: dict[str, NodeClass] = {
    "CheckpointLoaderSimple": NodeClass(
        lambda fake: {"ckpt_name": (list(fake.checkpoints),)}, ("MODEL", "CLIP", "VAE")
    ),
    "LoraLoader": NodeClass(
        lambda fake: {
            "model": ("MODEL",),
            "clip": ("CLIP",),
            "lora_name": (list(fake.loras),),
            "strength_model": _float(1.0, -100.0, 100.0),
            "strength_clip": _float(1.0, -100.0, 100.0),
        },
        ("MODEL", "CLIP"),
    ),
    "CLIPTextEncode": NodeClass(
        lambda fake: {"text": (STRING, {"multiline": True}), "clip": ("CLIP",)}, ("CONDITIONING",)
    ),
    "EmptyLatentImage": NodeClass(
        lambda fake: {
            "width": _int(512, 16, 16384),
            "height": _int(512, 16, 16384),
            "batch_size": _int(1, 1, 4096),
        },
        ("LATENT",),
    ),
    "KSampler": NodeClass(
        lambda fake: {
            "model": ("MODEL",),
            "seed": _int(0, 0, UINT64),
            "steps": _int(20, 1, 10000),
            "cfg": _float(8.0, 0.0, 100.0),
            "sampler_name": (SAMPLERS,),
            "scheduler": (SCHEDULERS,),
            "positive": ("CONDITIONING",),
            "negative": ("CONDITIONING",),
            "latent_image": ("LATENT",),
            "denoise": _float(1.0, 0.0, 1.0),
        },
        ("LATENT",),
    ),
    "VAEDecode": NodeClass(lambda fake: {"samples": ("LATENT",), "vae": ("VAE",)}, ("IMAGE",)),
    "VAEEncode": NodeClass(lambda fake: {"pixels": ("IMAGE",), "vae": ("VAE",)}, ("LATENT",)),
    "VAEEncodeForInpaint": NodeClass(
        lambda fake: {
            "pixels": ("IMAGE",),
            "vae": ("VAE",),
            "mask": ("MASK",),
            "grow_mask_by": _int(6, 0, 64),
        },
        ("LATENT",),
    ),
    "LoadImage": NodeClass(
        lambda fake: {"image": (fake.input_names(), {"image_upload": True})},
        ("IMAGE", "MASK"),
        files_input="image",
    ),
    "LoadImageMask": NodeClass(
        lambda fake: {
            "image": (fake.input_names(), {"image_upload": True}),
            "channel": (["alpha", "red", "green", "blue"],),
        },
        ("MASK",),
        files_input="image",
    ),
    "EmptyImage": NodeClass(
        lambda fake: {
            "width": _int(512, 1, 16384),
            "height": _int(512, 1, 16384),
            "batch_size": _int(1, 1, 4096),
            "color": _int(0, 0, 16777215),
        },
        ("IMAGE",),
    ),
    "ImageInvert": NodeClass(lambda fake: {"image": ("IMAGE",)}, ("IMAGE",)),
    "SaveImage": NodeClass(
        lambda fake: {"images": ("IMAGE",), "filename_prefix": (STRING, {"default": "ComfyUI"})},
        (),
        output_node=True,
    ),
}


def _error(kind: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def validate_input(
    fake: Any,
    graph: dict[str, Any],
    node: dict[str, Any],
    name: str,
    spec: tuple[Any, ...],
    cls: NodeClass,
) -> dict[str, Any] | None:
    """One input's first error, in ComfyUI's shape, or None."""
    inputs = node["inputs"]
    if name not in inputs:
        return _error("required_input_missing", "Required input is missing", name, input_name=name)
    value = inputs[name]
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        if value[0] not in graph:
            return _error(
                "exception_during_inner_validation",
                "Exception when validating inner node",
                f"'{value[0]}'",
                input_name=name,
                exception_type="KeyError",
                traceback=["KeyError: '" + value[0] + "'\n"],
                linked_node=value,
            )
        return None
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    config = list(spec)
    if name == cls.files_input:
        if value not in fake.input_names():
            return _error(
                "custom_validation_failed",
                "Custom validation failed for node",
                f"{name} - Invalid image file: {value}",
                input_name=name,
                input_config=config,
                received_value=value,
            )
        return None
    if isinstance(kind, list):
        if value not in kind:
            return _error(
                "value_not_in_list",
                "Value not in list",
                f"{name}: '{value}' not in {kind}",
                input_name=name,
                input_config=config,
                received_value=value,
            )
        return None
    if kind in (INT, FLOAT):
        try:
            number = int(value) if kind == INT else float(value)
        except (TypeError, ValueError) as exc:
            return _error(
                "invalid_input_type",
                f"Failed to convert an input value to a {kind} value",
                f"{name}, {value}, {exc}",
                input_name=name,
                input_config=config,
                received_value=value,
                exception_message=str(exc),
            )
        if "min" in options and number < options["min"]:
            return _error(
                "value_smaller_than_min",
                f"Value {number} smaller than min of {options['min']}",
                name,
                input_name=name,
                input_config=config,
                received_value=value,
            )
        if "max" in options and number > options["max"]:
            return _error(
                "value_bigger_than_max",
                f"Value {number} bigger than max of {options['max']}",
                name,
                input_name=name,
                input_config=config,
                received_value=value,
            )
    return None


def colour(*parts: Any) -> tuple[int, int, int]:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return digest[0], digest[1], digest[2]


def sample(latent: dict[str, Any], inputs: dict[str, Any]) -> list[Image.Image]:
    """KSampler's stand-in: a flat colour per image, from everything that should matter."""
    images = []
    for index in range(latent["batch"]):
        fill = colour(
            inputs["seed"] + index,
            inputs["positive"]["text"],
            inputs["negative"]["text"],
            inputs["steps"],
            float(inputs["cfg"]),
            inputs["sampler_name"],
            inputs["scheduler"],
            inputs["model"]["ckpt"],
        )
        painted = Image.new("RGB", (latent["width"], latent["height"]), fill)
        source = latent.get("image")
        if source is not None:
            painted = Image.blend(source.convert("RGB"), painted, float(inputs["denoise"]))
            mask = latent.get("mask")
            if mask is not None:
                painted = Image.composite(painted, source.convert("RGB"), mask.convert("L"))
        images.append(painted)
    return images


def run_simple(class_type: str, inputs: dict[str, Any], fake: Any) -> tuple[Any, ...]:
    """Every node but KSampler and SaveImage (the server runs those: progress, files)."""
    if class_type == "CheckpointLoaderSimple":
        name = inputs["ckpt_name"]
        return {"ckpt": name}, {"clip": name}, {"vae": name}
    if class_type == "LoraLoader":
        # The adapter is part of the model the sampler paints from.
        adapted = f"{inputs['model']['ckpt']}+{inputs['lora_name']}@{inputs['strength_model']}"
        return {"ckpt": adapted}, inputs["clip"]
    if class_type == "CLIPTextEncode":
        return ({"text": inputs["text"]},)
    if class_type == "EmptyLatentImage":
        return (
            {"width": inputs["width"], "height": inputs["height"], "batch": inputs["batch_size"]},
        )
    if class_type == "VAEDecode":
        return (inputs["samples"]["images"],)
    if class_type in ("VAEEncode", "VAEEncodeForInpaint"):
        image = inputs["pixels"][0]
        latent = {"width": image.width, "height": image.height, "batch": 1, "image": image}
        if class_type == "VAEEncodeForInpaint":
            latent["mask"] = inputs["mask"]
        return (latent,)
    if class_type == "LoadImage":
        image = fake.open_input(inputs["image"])
        return [image.convert("RGB")], Image.new("L", image.size, 0)
    if class_type == "LoadImageMask":
        image = fake.open_input(inputs["image"]).convert("RGBA")
        channel = {"alpha": 3, "red": 0, "green": 1, "blue": 2}[inputs["channel"]]
        return (image.split()[channel],)
    if class_type == "EmptyImage":
        rgb = inputs["color"]
        fill = ((rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255)
        return (
            [
                Image.new("RGB", (inputs["width"], inputs["height"]), fill)
                for _ in range(inputs["batch_size"])
            ],
        )
    if class_type == "ImageInvert":
        return ([ImageChops.invert(image) for image in inputs["image"]],)
    raise KeyError(class_type)
