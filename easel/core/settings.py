"""What every service's settings share, and how any settings class reads the environment.

Each service package owns a settings class for what it reads (`generation/settings.py`,
`jobs/settings.py`, ...), built on `SharedSettings`; `easel.compose.settings` assembles
them for the command line and tests. Every value has a documented default (README,
"Settings"). New names carry the `EASEL_` prefix; the names of the first deployments keep
working through aliases. Settings modules are the only code that reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from easel.core.outbound import OutboundLimits


def env(name: str, *legacy: str) -> AliasChoices:
    """`EASEL_<name>`, then the first deployments' names for the same value."""
    return AliasChoices(f"EASEL_{name}", *legacy)


class EaselSettingsBase(BaseSettings):
    """How every easel settings class reads: `EASEL_` variables and an optional `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="EASEL_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )


class SharedSettings(EaselSettingsBase):
    """What every service reads: identity, data and model folders, the HTTP edge's body
    limit, the image codec's limits, and logs."""

    # --- identity -------------------------------------------------------------------
    api_title: str = Field("easel", validation_alias=env("API_TITLE", "API_TITLE"))
    api_version: str = Field("", validation_alias=env("API_VERSION", "API_VERSION"))

    # --- storage ----------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), validation_alias=env("DATA_DIR"))
    # Model weights for the services that load models (generation, segmentation): one
    # folder, so a deployment mounts one volume.
    models_path: Path = Field(Path("models"), validation_alias=env("MODELS_PATH", "MODELS_PATH"))

    # --- HTTP ----------------------------------------------------------------------------
    max_body_mb: float = Field(64.0, gt=0, validation_alias=env("MAX_BODY_MB"))
    # Deepest nesting of arrays and objects in a JSON body (or form field) a service reads:
    # refused before parsing, as Python's parser recurses once per level.
    max_json_depth: int = Field(64, ge=1, le=500, validation_alias=env("MAX_JSON_DEPTH"))
    # Every outgoing call's connect timeout (gateway to services, generation to ComfyUI).
    connect_timeout: float = Field(5.0, gt=0, validation_alias=env("CONNECT_TIMEOUT"))

    # --- service to service ----------------------------------------------------------
    # Set: every service refuses a request without a credential derived from it
    # (`easel.core.internal_auth`), and the gateway and workers send one. A service bound
    # to a non-loopback address refuses to start without it unless allow_unauthenticated.
    internal_token: SecretStr | None = Field(None, validation_alias=env("INTERNAL_TOKEN"))
    # How old (either way: clocks differ) a credential may be.
    internal_token_max_age: float = Field(
        300.0, gt=0, validation_alias=env("INTERNAL_TOKEN_MAX_AGE")
    )
    # Modal's proxy auth in front of the services (`requires_proxy_auth`): a proxy token
    # the gateway and workers send with every call to a service (Modal-Key, Modal-Secret).
    modal_proxy_token_id: SecretStr | None = Field(
        None, validation_alias=env("MODAL_PROXY_TOKEN_ID")
    )
    modal_proxy_token_secret: SecretStr | None = Field(
        None, validation_alias=env("MODAL_PROXY_TOKEN_SECRET")
    )
    # Serve on a non-loopback address without API keys (gateway) or without the internal
    # token (services): refused at start-up unless this says so, and then warned about.
    allow_unauthenticated: bool = Field(False, validation_alias=env("ALLOW_UNAUTHENTICATED"))

    # --- images ------------------------------------------------------------------------
    max_image_size_mb: float = Field(
        20.0, gt=0, validation_alias=env("MAX_IMAGE_SIZE_MB", "MAX_IMAGE_SIZE_MB")
    )
    max_image_pixels: int = Field(40_000_000, ge=1, validation_alias=env("MAX_IMAGE_PIXELS"))
    png_compress_level: int = Field(1, ge=0, le=9, validation_alias=env("PNG_COMPRESS_LEVEL"))
    default_quality: int = Field(90, ge=1, le=100, validation_alias=env("DEFAULT_QUALITY"))

    # --- stored images and their links (`output: "url"`) ---------------------------------
    # Job workers and the generation service write images here, the job manager serves
    # them (`easel.core.image_store`): every process of a deployment must see the same
    # folder. One machine (all-in-one, a pod) shares the data dir; across machines it
    # must be a volume they share (the Modal deployment mounts one).
    images_dir: Path | None = Field(None, validation_alias=env("IMAGES_DIR", "EASEL_RESULTS_DIR"))
    # Signs image links (`easel.core.image_links`); unset: derived from the internal
    # token; neither: links are unsigned, and with API keys on they need a key.
    image_link_secret: SecretStr | None = Field(None, validation_alias=env("IMAGE_LINK_SECRET"))
    # Seconds a signed link works.
    image_link_ttl: float = Field(3600.0, gt=0, validation_alias=env("IMAGE_LINK_TTL"))

    # --- logs ----------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", validation_alias=env("LOG_LEVEL", "LOG_LEVEL")
    )
    log_format: Literal["text", "json"] = Field(
        "text", validation_alias=env("LOG_FORMAT", "LOG_FORMAT")
    )
    # Set: traces go to this OTLP/HTTP collector (`easel.core.telemetry`; needs the `otel`
    # extra), e.g. http://127.0.0.1:4318/v1/traces.
    otel_endpoint: str | None = Field(None, validation_alias=env("OTEL_ENDPOINT"))

    @property
    def version(self) -> str:
        from easel import __version__

        return self.api_version or __version__

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def max_image_bytes(self) -> int:
        return int(self.max_image_size_mb * 1024 * 1024)

    @property
    def images_path(self) -> Path:
        return self.images_dir or self.data_dir / "results"


def cpu_cores() -> int:
    """The cores this process may run on (a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class MaskLimitSettings(EaselSettingsBase):
    """How large a mask refinement's radii may be; read by every service that refines
    masks (image-utils' `mask` op, segmentation's `refine`)."""

    # A radius (dilate, erode, feather) at most this times the mask's longer side.
    mask_max_radius_ratio: float = Field(1.0, gt=0, validation_alias=env("MASK_MAX_RADIUS_RATIO"))
    # Dilate and erode of a grey mask cost radius^2 per pixel: their own, smaller bound.
    mask_grey_max_radius: int = Field(8, ge=0, le=64, validation_alias=env("MASK_GREY_MAX_RADIUS"))


class OutboundSettings(EaselSettingsBase):
    """Caps on the calls the server makes to outside URLs (`easel.core.outbound`: webhooks
    today); read by every service that makes them."""

    # Seconds for one whole call: connecting, sending, redirects, reading the answer.
    outbound_timeout: float = Field(30.0, gt=0, validation_alias=env("OUTBOUND_TIMEOUT"))
    # The largest answer read; a larger one fails the call.
    outbound_max_response_mb: float = Field(
        20.0, gt=0, validation_alias=env("OUTBOUND_MAX_RESPONSE_MB")
    )

    @property
    def outbound_limits(self) -> OutboundLimits:
        return OutboundLimits(
            timeout_s=self.outbound_timeout,
            max_response_bytes=int(self.outbound_max_response_mb * 1024 * 1024),
            connect_timeout_s=min(5.0, self.outbound_timeout),
        )


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `overrides`, for a child process (`easel up`):
    the child reads its own settings from it."""
    return {**os.environ, **overrides}


def validation_problems(error: ValidationError) -> list[str]:
    """Each bad setting: its variable, what is wrong, and the value (never a secret's)."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "settings"
        value = item.get("input")
        secret = any(word in loc.lower() for word in ("secret", "token", "key"))  # never echo
        shown = f" (got {value!r})" if isinstance(value, str | int | float) and not secret else ""
        parts.append(f"{loc.upper()}: {item['msg']}{shown}")
    return parts
