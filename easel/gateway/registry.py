"""Which services exist, where their app factories live, and which paths they own.

This table is the gateway's routing: adding a service is adding rows here, not code.
Factories are named by import path so a gateway talking to remote services never imports
their (possibly heavy) modules except to read their OpenAPI document.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

AppFactory = Callable[..., FastAPI]  # (settings, **clients of the services it needs)


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # as in Settings: generation, segmentation, image_utils, job_manager
    cli_name: str  # as typed on the command line: image-utils
    factory_path: str  # "package.module:create_app"
    default_port: int
    prefixes: tuple[str, ...]  # path prefixes the gateway forwards to this service
    # Services whose client this one's factory takes (`<name>_client=`) when in-process.
    needs: tuple[str, ...] = ()

    def load_factory(self) -> AppFactory:
        module_name, _, attr = self.factory_path.partition(":")
        factory: AppFactory = getattr(importlib.import_module(module_name), attr)
        return factory


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="generation",
        cli_name="generation",
        factory_path="easel.generation.app:create_app",
        default_port=8001,
        prefixes=("/api/generate", "/api/workflows"),
    ),
    ServiceSpec(
        name="job_manager",
        cli_name="jobs",
        factory_path="easel.jobs.app:create_app",
        default_port=8004,
        prefixes=(
            "/api/generate/async",
            "/api/generate/status",
            "/api/generate/result",
            "/api/generate/cancel",
            "/api/generate/events",
            "/api/jobs",
            "/generate",  # compat: the first version's pod API queues a job
        ),
        needs=("generation",),
    ),
    ServiceSpec(
        name="segmentation",
        cli_name="segmentation",
        factory_path="easel.segmentation.app:create_app",
        default_port=8002,
        prefixes=("/api/smart-mask",),
    ),
    ServiceSpec(
        name="image_utils",
        cli_name="image-utils",
        factory_path="easel.image_utils.app:create_app",
        default_port=8003,
        prefixes=("/api/image-utils",),
    ),
)

GATEWAY_PORT = 8000


def service_by_cli_name(cli_name: str) -> ServiceSpec:
    for spec in SERVICES:
        if cli_name in (spec.cli_name, spec.name):
            return spec
    raise KeyError(cli_name)


@dataclass(frozen=True)
class RouteEntry:
    prefix: str
    service: str


def routing_table(specs: tuple[ServiceSpec, ...] = SERVICES) -> list[RouteEntry]:
    """Longest prefix first, so `/api/generate/async` wins over `/api/generate`."""
    entries = [RouteEntry(prefix, spec.name) for spec in specs for prefix in spec.prefixes]
    return sorted(entries, key=lambda entry: len(entry.prefix), reverse=True)
