"""`deploy/modal_app.py` imported as `modal deploy` imports it, and read back: what each
class and image was registered with.

Modal offers no public reading of a class's scaling or its images' commands before
deployment: those are read here from its objects' internals (modal pinned at 1.6.4 in the
dev extra), in this one place, so a modal upgrade that moves them fails here first.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from modal._utils.async_utils import synchronizer

APP_FILE = Path(__file__).resolve().parents[2] / "deploy" / "modal_app.py"


def import_app(name: str = "easel_modal_app_under_test") -> ModuleType:
    """A fresh import of the app, reading the environment as it is now."""
    sys.modules.pop(name, None)
    spec = importlib.util.spec_from_file_location(name, APP_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _closure(function: Any) -> dict[str, Any]:
    cells = function.__closure__ or ()
    return dict(zip(function.__code__.co_freevars, (c.cell_contents for c in cells), strict=True))


@dataclass(frozen=True)
class Registered:
    """One class as Modal would deploy it."""

    gpu: str | None
    cpu: float | None
    min_containers: int | None
    max_containers: int | None
    scaledown_window: int | None
    max_inputs: int | None
    target_inputs: int | None
    memory_snapshot: bool
    timeout: int
    volumes: dict[str, str]  # mount path -> volume name
    secrets: list[str]  # named secrets
    environment: dict[str, str]  # what the class sets in its containers' environment
    label: str
    proxy_auth: bool
    image: Any


def registered(cls: Any) -> Registered:
    function = synchronizer._translate_in(cls._get_class_service_function())
    loader = _closure(function._load)
    spec = function._spec
    named, environment = [], {}
    for secret in spec.secrets:
        secret_loader = _closure(secret._load)
        if "load_env_dict" in secret_loader:  # the class's `env=`: a secret made of a dict
            environment.update(secret_loader["load_env_dict"]())
        else:
            named.append(secret_loader["name"])
    serve = synchronizer._translate_in(cls._get_user_cls().__dict__["serve"])
    webhook = serve.params.webhook_config
    concurrency = loader["max_concurrent_inputs"], loader["target_concurrent_inputs_int"]
    return Registered(
        gpu=spec.gpus or None,
        cpu=spec.cpu,
        min_containers=loader["min_containers"],
        max_containers=loader["max_containers"],
        scaledown_window=loader["scaledown_window"],
        max_inputs=concurrency[0],
        target_inputs=concurrency[1],
        memory_snapshot=loader["enable_memory_snapshot"],
        timeout=loader["timeout"],
        volumes={path: volume._name for path, volume in spec.volumes.items()},
        secrets=named,
        environment=environment,
        label=webhook.requested_suffix,
        proxy_auth=webhook.requires_proxy_auth,
        image=spec.image,
    )


def image_commands(image: Any) -> list[str]:
    """Every Dockerfile command of an image and the images under it, base first."""
    image = synchronizer._translate_in(image)
    layers: list[list[str]] = []
    while image is not None:
        loader = _closure(image._load)
        build = loader.get("dockerfile_function")
        layers.append(build("2025.06").commands if build else [])
        bases = list(loader.get("base_images", {}).values())
        image = bases[0] if bases else None
    return [command for layer in reversed(layers) for command in layer]


def pip_installed(image: Any) -> list[str]:
    """The requirements an image's `pip install` commands name (not its --no-deps ones)."""
    names: list[str] = []
    for command in image_commands(image):
        words = shlex.split(command.removeprefix("RUN "))
        if "install" not in words or "pip" not in " ".join(words[:4]):
            continue
        if "--no-deps" in words:
            continue
        names += [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
    return names
