"""Gateway health: its own liveness, every service's health, and the first-version `/health`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from easel.core.health import HealthStatus, ServiceHealth
from easel.gateway.container import Gateway
from easel.gateway.health import ServiceState, SystemHealth, overall

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=ServiceHealth)
async def gateway_health(gateway: Gateway) -> ServiceHealth:
    """The gateway's own liveness; says nothing about the services behind it."""
    return ServiceHealth(
        status=HealthStatus.HEALTHY, service="gateway", version=gateway.settings.version
    )


@router.get("/api/system/health", response_model=SystemHealth)
async def system_health(
    gateway: Gateway,
    deep: Annotated[bool, Query(description="Probe passive services too (may wake them).")] = False,
) -> SystemHealth:
    """Every service's health at once. Always 200; `status` is healthy, degraded or
    unhealthy. Services in passive mode are judged from recent traffic unless `deep`."""
    reports = await gateway.health.check_all(list(gateway.upstreams.values()), deep=deep)
    return SystemHealth(status=overall(reports), version=gateway.settings.version, services=reports)


class LegacyHealth(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "healthy", "gpu_available": True, "version": "0.1.0"}]
        }
    )

    status: HealthStatus
    gpu_available: bool
    version: str


@router.get("/health", response_model=LegacyHealth)
async def legacy_health(gateway: Gateway) -> LegacyHealth:
    """compat: the first version's pod health. Always 200; `degraded` when the generation
    service is unreachable or unhealthy."""
    generation = gateway.upstreams.get("generation")
    if generation is None:
        return LegacyHealth(
            status=HealthStatus.DEGRADED, gpu_available=False, version=gateway.settings.version
        )
    report = await gateway.health.check(generation, deep=False)
    healthy = report.status in (ServiceState.HEALTHY, ServiceState.UNKNOWN)
    return LegacyHealth(
        status=HealthStatus.HEALTHY if healthy else HealthStatus.DEGRADED,
        gpu_available=bool(report.detail.get("gpu_available", False)),
        version=gateway.settings.version,
    )
