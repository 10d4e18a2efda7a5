"""The service table: which services exist, their names, where their app factories live,
the ports they listen on alone, and the paths the gateway forwards to them.

Adding a service is adding a row here, not code elsewhere. Factories are named by import
path so a process that runs a service remotely never imports its (possibly heavy) modules
except to read its OpenAPI document.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import FastAPI

# (its own settings, **openers of the services it needs: `<key>=ClientOpener`)
AppFactory = Callable[..., FastAPI]


@dataclass(frozen=True)
class ServiceSpec:
    # The service's one name. Machine keys (health keys, logs, metrics, EASEL_<KEY>_URL)
    # spell it snake_case; what people type (CLI, pod processes, log files) kebab-case.
    name: str
    factory_path: str  # "package.module:create_app"
    default_port: int
    prefixes: tuple[str, ...]  # path prefixes the gateway forwards to this service
    # Services whose client this one's factory takes (`<name>=` a ClientOpener).
    needs: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # compat: other names the command line accepts

    @property
    def cli_name(self) -> str:
        return self.name.replace("_", "-")

    def answers_to(self, typed: str) -> bool:
        return typed in (self.name, self.cli_name, *self.aliases)

    def load_factory(self) -> AppFactory:
        module_name, _, attr = self.factory_path.partition(":")
        factory: AppFactory = getattr(importlib.import_module(module_name), attr)
        return factory


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="generation",
        factory_path="easel.generation.app:create_app",
        default_port=8001,
        prefixes=("/api/generate", "/api/workflows", "/api/models"),
    ),
    ServiceSpec(
        name="job_manager",
        factory_path="easel.jobs.app:create_app",
        default_port=8004,
        prefixes=(
            "/api/generate/async",
            "/api/generate/status",
            "/api/generate/result",
            "/api/generate/cancel",
            "/api/generate/events",
            "/api/jobs",
            "/api/images",  # stored images: every producer writes where it serves them
            "/generate",  # compat: the first version's pod API queues a job
        ),
        needs=("generation",),
        aliases=("jobs",),  # compat: the pod's first name for it
    ),
    ServiceSpec(
        name="segmentation",
        factory_path="easel.segmentation.app:create_app",
        default_port=8002,
        prefixes=("/api/smart-mask",),
    ),
    ServiceSpec(
        name="image_utils",
        factory_path="easel.image_utils.app:create_app",
        default_port=8003,
        prefixes=("/api/image-utils",),
    ),
)

GATEWAY = "gateway"
GATEWAY_PORT = 8000


def service_named(typed: str) -> ServiceSpec:
    """The service a person or a setting named, in any accepted spelling."""
    for spec in SERVICES:
        if spec.answers_to(typed):
            return spec
    raise KeyError(typed)


def dependency_order(specs: Iterable[ServiceSpec]) -> list[ServiceSpec]:
    """Each service after those it needs (when they are among `specs`); among the ready
    ones, the lowest default port first, so the order is stable: generation,
    segmentation, image-utils, job-manager."""
    remaining = sorted(specs, key=lambda spec: spec.default_port)
    among = {spec.name for spec in remaining}
    order: list[ServiceSpec] = []
    while remaining:
        placed = {spec.name for spec in order}
        ready = next(
            (s for s in remaining if all(n in placed or n not in among for n in s.needs)),
            None,
        )
        if ready is None:
            raise ValueError(f"services need each other: {[s.name for s in remaining]}")
        order.append(ready)
        remaining.remove(ready)
    return order
