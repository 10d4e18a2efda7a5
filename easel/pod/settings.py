"""The pod's settings (`easel up | down | status | logs`): which processes, their ports,
the run directory, start and stop timing, restarts, and the optional ComfyUI command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from easel.core.settings import EaselSettingsBase, env


class PodSettings(EaselSettingsBase):
    run_dir: Path = Field(Path("run"), validation_alias=env("RUN_DIR"))
    # Comma-separated service names as typed (gateway, generation, image-utils, jobs...).
    pod_services: Annotated[tuple[str, ...], NoDecode] = Field(
        ("all",), validation_alias=env("POD_SERVICES")
    )
    pod_ports: dict[str, Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=dict, validation_alias=env("POD_PORTS")
    )
    pod_workers: int = Field(0, ge=0, validation_alias=env("POD_WORKERS"))
    pod_start_timeout: float = Field(120.0, gt=0, validation_alias=env("POD_START_TIMEOUT"))
    pod_stop_grace: float = Field(20.0, ge=0, validation_alias=env("POD_STOP_GRACE"))
    # The watchdog `easel up` leaves: restart a process that exits, after a backoff that
    # doubles with each failure at start-up (an exit within the start-up window), up to its
    # maximum; after that many failures at start-up in a row, stop restarting it.
    pod_restart: bool = Field(True, validation_alias=env("POD_RESTART"))
    pod_restart_backoff: float = Field(1.0, ge=0, validation_alias=env("POD_RESTART_BACKOFF"))
    pod_restart_backoff_max: float = Field(
        60.0, ge=0, validation_alias=env("POD_RESTART_BACKOFF_MAX")
    )
    pod_restart_max_failures: int = Field(5, ge=1, validation_alias=env("POD_RESTART_MAX_FAILURES"))
    pod_startup_window: float = Field(30.0, ge=0, validation_alias=env("POD_STARTUP_WINDOW"))
    comfyui_command: str | None = Field(None, validation_alias=env("COMFYUI_COMMAND"))

    @field_validator("pod_services", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value
