"""Every settings class of easel, assembled for the command line and tests, and the
topology: where each service runs and how the gateway reaches it.

A service's `create_app` takes only its own section (`EaselSettings.of(name)`); only the
composition sees them all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import Field, ValidationError

from easel.core.settings import EaselSettingsBase, SharedSettings, env, validation_problems
from easel.gateway.settings import GatewaySettings, HealthMode, ServiceEndpoint
from easel.generation.settings import GenerationSettings
from easel.image_utils.settings import ImageUtilsSettings
from easel.jobs.settings import JobsSettings
from easel.pod.settings import PodSettings
from easel.segmentation.settings import SegmentationSettings


class ServiceTopology(EaselSettingsBase):
    """Per service (by its key): its URL, unset meaning "run it in this process"; the
    gateway's timeout for it (default: REQUEST_TIMEOUT); how the gateway learns its health."""

    generation_url: str | None = Field(
        None, validation_alias=env("GENERATION_URL", "GENERATION_SERVICE_URL", "GPU_SERVICE_URL")
    )
    segmentation_url: str | None = Field(
        None, validation_alias=env("SEGMENTATION_URL", "SEGMENTATION_SERVICE_URL")
    )
    image_utils_url: str | None = Field(
        None, validation_alias=env("IMAGE_UTILS_URL", "IMAGE_UTILS_SERVICE_URL")
    )
    job_manager_url: str | None = Field(
        None, validation_alias=env("JOB_MANAGER_URL", "JOB_MANAGER_SERVICE_URL")
    )
    generation_timeout: float | None = Field(None, gt=0)
    segmentation_timeout: float | None = Field(None, gt=0)
    image_utils_timeout: float | None = Field(None, gt=0)
    job_manager_timeout: float | None = Field(None, gt=0)
    generation_health_mode: HealthMode = HealthMode.ACTIVE
    segmentation_health_mode: HealthMode = HealthMode.ACTIVE
    image_utils_health_mode: HealthMode = HealthMode.ACTIVE
    job_manager_health_mode: HealthMode = HealthMode.ACTIVE

    def _row(self, key: str) -> tuple[str | None, float | None, HealthMode]:
        rows = {
            "generation": (
                self.generation_url,
                self.generation_timeout,
                self.generation_health_mode,
            ),
            "segmentation": (
                self.segmentation_url,
                self.segmentation_timeout,
                self.segmentation_health_mode,
            ),
            "image_utils": (
                self.image_utils_url,
                self.image_utils_timeout,
                self.image_utils_health_mode,
            ),
            "job_manager": (
                self.job_manager_url,
                self.job_manager_timeout,
                self.job_manager_health_mode,
            ),
        }
        return rows[key]

    def url(self, key: str) -> str | None:
        return self._row(key)[0]

    def endpoint(self, key: str, *, default_timeout: float) -> ServiceEndpoint:
        """The gateway's view of service `key`."""
        url, timeout, mode = self._row(key)
        return ServiceEndpoint(
            name=key, url=url, health_mode=mode, timeout=timeout or default_timeout
        )

    def in_process(self) -> ServiceTopology:
        """Every service in this process (`easel serve all`)."""
        keys = ("generation", "segmentation", "image_utils", "job_manager")
        return self.model_copy(update={f"{key}_url": None for key in keys})


class SettingsError(ValueError):
    """Settings that do not validate; the message is one line naming each bad variable."""


@dataclass(frozen=True)
class EaselSettings:
    """Each package's settings, read from the same environment."""

    topology: ServiceTopology
    gateway: GatewaySettings
    generation: GenerationSettings
    segmentation: SegmentationSettings
    image_utils: ImageUtilsSettings
    jobs: JobsSettings
    pod: PodSettings

    @classmethod
    def load(cls, **values: Any) -> EaselSettings:
        """Read every section from the environment; `values` (by field name) win over it,
        in every section that has the field. SettingsError names every bad variable of
        all sections at once."""
        unknown = set(values) - {f for kind in _SECTIONS.values() for f in kind.model_fields}
        if unknown:
            raise TypeError(f"no such settings: {', '.join(sorted(unknown))}")
        sections: dict[str, EaselSettingsBase] = {}
        problems: dict[str, None] = {}  # ordered, and a shared field's error only once
        for name, kind in _SECTIONS.items():
            own = {k: v for k, v in values.items() if k in kind.model_fields}
            try:
                sections[name] = kind(**own)
            except ValidationError as exc:
                problems.update(dict.fromkeys(validation_problems(exc)))
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return cls(**sections)  # type: ignore[arg-type]

    @property
    def shared(self) -> SharedSettings:
        """What every service shares (logs, identity): the same in every section."""
        return self.gateway

    def of(self, key: str) -> SharedSettings:
        """The settings service `key`'s create_app takes."""
        sections: dict[str, SharedSettings] = {
            "generation": self.generation,
            "segmentation": self.segmentation,
            "image_utils": self.image_utils,
            "job_manager": self.jobs,
        }
        return sections[key]

    def all_in_process(self) -> EaselSettings:
        return replace(self, topology=self.topology.in_process())


_SECTIONS: dict[str, type[EaselSettingsBase]] = {
    "topology": ServiceTopology,
    "gateway": GatewaySettings,
    "generation": GenerationSettings,
    "segmentation": SegmentationSettings,
    "image_utils": ImageUtilsSettings,
    "jobs": JobsSettings,
    "pod": PodSettings,
}

SETTINGS_CLASSES: tuple[type[EaselSettingsBase], ...] = tuple(_SECTIONS.values())
