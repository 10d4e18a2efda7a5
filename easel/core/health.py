"""The health vocabulary shared by services and the gateway."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    LOADING = "loading"  # up, and still loading what it needs (a model): degraded meanwhile
    UNHEALTHY = "unhealthy"


class ServiceHealth(BaseModel):
    """What every service answers on `GET /api/health`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "healthy", "service": "gateway", "version": "0.1.0"}]
        }
    )

    status: HealthStatus
    service: str
    version: str
    detail: dict[str, Any] = Field(default_factory=dict)
