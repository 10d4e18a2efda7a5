"""What runs inside the Modal containers: each service's app, built from the environment
the deployment gives it (`easel.compose.modal.settings`), with the services it calls found
by their Modal URLs.

No `modal` import here: the classes of `deploy/modal_app.py` call these from their enter
hooks and ASGI factories, and tests call them the same way, locally.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI

from easel.compose.access import KeyFileError, check_serving
from easel.compose.apps import service_app
from easel.compose.gateway import create_gateway
from easel.compose.services import SERVICES
from easel.compose.settings import EaselSettings, SettingsError
from easel.core.binding import UnsafeBinding
from easel.core.internal_guard import bind_refusal
from easel.core.logging import configure_logging

log = logging.getLogger("easel.modal")

# Every Modal web endpoint is a public URL: each server is held to the rules of one bound
# to every interface (API keys at the gateway, the internal token at every service).
PUBLIC_HOST = "0.0.0.0"

# A service's key -> its URL, asked of Modal (the classes' `serve` endpoints).
Discover = Callable[[str], str]


class DeploymentRefused(SystemExit):
    """A container that must not serve: exits with one line (SystemExit prints it)."""

    def __init__(self, service: str, reason: str) -> None:
        # Modal shows the exit message as the container's error: one line, whatever the
        # cause's own text (a lookup's may span several).
        super().__init__(f"easel {service} on Modal: {' '.join(reason.split())}")


def load_settings(service: str, **values: Any) -> EaselSettings:
    try:
        settings = EaselSettings.load(**values)
    except SettingsError as exc:
        raise DeploymentRefused(service, str(exc)) from None
    configure_logging(settings.shared.log_level, settings.shared.log_format)
    return settings


def linked(
    service: str, keys: Iterable[str], discover: Discover | None, **values: Any
) -> EaselSettings:
    """The settings of `service`, whose calls to the services `keys` go to their URLs:
    as configured (EASEL_<KEY>_URL), else as Modal says."""
    settings = load_settings(service, **values)
    urls: dict[str, str] = {}
    for key in keys:
        url = settings.topology.url(key)
        if url is None and discover is None:
            raise DeploymentRefused(service, f"no URL for {key}: set EASEL_{key.upper()}_URL")
        if url is None:
            assert discover is not None
            try:
                url = discover(key)
            except Exception as exc:  # Modal's lookup: any failure is the same refusal
                raise DeploymentRefused(
                    service, f"cannot find {key}'s URL ({type(exc).__name__}: {exc})"
                ) from None
            log.info("%s is at %s", key, url)
        urls[f"{key}_url"] = url
    return load_settings(service, **values, **urls) if urls else settings


def refuse_unprotected(settings: EaselSettings, service: str) -> None:
    """A service's URL is public: without EASEL_INTERNAL_TOKEN it would answer anyone."""
    problem = bind_refusal(settings.shared, service, PUBLIC_HOST)
    if problem is not None:
        raise DeploymentRefused(service, problem)


def gateway_app(discover: Discover | None) -> FastAPI:
    """The gateway, every service remote at its URL; without API keys it refuses to start
    (unless EASEL_ALLOW_UNAUTHENTICATED=true)."""
    settings = linked("gateway", (spec.name for spec in SERVICES), discover)
    try:
        warning = check_serving(settings, PUBLIC_HOST)
    except (UnsafeBinding, KeyFileError) as exc:
        raise DeploymentRefused("gateway", str(exc)) from None
    if warning is not None:
        log.warning("%s", warning)
    return create_gateway(settings)


def job_manager_app(discover: Discover | None) -> FastAPI:
    """The job manager with its workers, jobs in Redis, generation called at its URL."""
    settings = linked("job-manager", ("generation",), discover)
    jobs = settings.jobs
    if jobs.jobs_backend != "redis" or "redis_url" not in jobs.model_fields_set:
        raise DeploymentRefused(
            "job-manager",
            "EASEL_REDIS_URL is not set: put it in the deployment's modal.Secret; jobs in "
            "the container's own SQLite would be lost at every redeploy",
        )
    refuse_unprotected(settings, "job-manager")
    return service_app("job_manager", settings)


def image_utils_app() -> FastAPI:
    settings = load_settings("image-utils")
    refuse_unprotected(settings, "image-utils")
    return service_app("image_utils", settings)


def warm_imports(modules: Iterable[str]) -> None:
    """Import what a service will load, so a memory snapshot holds it already imported
    (torch and its kin take seconds to import)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:  # the service reports what is missing when it loads
            log.warning("not preloaded: %s (%s)", name, exc)
