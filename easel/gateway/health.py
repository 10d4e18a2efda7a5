"""Aggregated health: every service at once, probing only where that is allowed.

`active` services are probed on `GET /api/health`, concurrently, each with its own timeout.
`passive` services are judged by the outcome and age of their last real request, so a
scaled-to-zero service is never woken by a health check; `deep=True` probes them anyway.
"""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from easel.core.health import HealthStatus
from easel.gateway.settings import HealthMode
from easel.gateway.upstream import Upstream


class ServiceState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    LOADING = "loading"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"  # passive, and no recent traffic to judge by


class ServiceReport(BaseModel):
    status: ServiceState
    latency_ms: float | None = None
    mode: HealthMode
    probed: bool
    location: str
    detail: dict[str, Any] = Field(default_factory=dict)


class SystemHealth(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "degraded",
                    "version": "0.1.0",
                    "services": {
                        "generation": {
                            "status": "healthy",
                            "latency_ms": 2.4,
                            "mode": "active",
                            "probed": True,
                            "location": "in-process",
                            "detail": {"engine": "diffusers", "ready": True},
                        },
                        "segmentation": {
                            "status": "unhealthy",
                            "latency_ms": None,
                            "mode": "active",
                            "probed": True,
                            "location": "http://127.0.0.1:8002",
                            "detail": {"error": "connection refused"},
                        },
                    },
                }
            ]
        }
    )

    status: HealthStatus
    version: str
    services: dict[str, ServiceReport]


def overall(reports: dict[str, ServiceReport]) -> HealthStatus:
    states = [report.status for report in reports.values()]
    if states and all(state is ServiceState.UNHEALTHY for state in states):
        return HealthStatus.UNHEALTHY
    not_ready = (ServiceState.UNHEALTHY, ServiceState.DEGRADED, ServiceState.LOADING)
    if any(state in not_ready for state in states):
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY


class HealthChecker:
    def __init__(self, *, timeout: float, passive_window: float) -> None:
        self.timeout = timeout
        self.passive_window = passive_window

    async def check_all(self, upstreams: list[Upstream], *, deep: bool) -> dict[str, ServiceReport]:
        reports = await asyncio.gather(*(self.check(up, deep=deep) for up in upstreams))
        return {up.name: report for up, report in zip(upstreams, reports, strict=True)}

    async def check(self, upstream: Upstream, *, deep: bool) -> ServiceReport:
        if upstream.endpoint.health_mode is HealthMode.PASSIVE and not deep:
            return self.passive(upstream)
        return await self.probe(upstream)

    async def probe(self, upstream: Upstream) -> ServiceReport:
        started = time.perf_counter()
        base = {
            "mode": upstream.endpoint.health_mode,
            "probed": True,
            "location": upstream.location,
        }
        try:
            response = await upstream.client.get("/api/health", timeout=self.timeout)
        except httpx.TimeoutException:
            return ServiceReport(
                status=ServiceState.UNHEALTHY,
                latency_ms=self.timeout * 1000,
                detail={"error": f"no answer within {self.timeout:g} s"},
                **base,
            )
        except httpx.HTTPError as exc:
            return ServiceReport(
                status=ServiceState.UNHEALTHY,
                detail={"error": f"unreachable ({type(exc).__name__})"},
                **base,
            )
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        return ServiceReport(latency_ms=latency_ms, **self._from_answer(response), **base)

    @staticmethod
    def _from_answer(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
        try:
            state = ServiceState(str(body.get("status")))
        except ValueError:
            state = ServiceState.UNHEALTHY
        if response.status_code != 200 and state is ServiceState.HEALTHY:
            state = ServiceState.UNHEALTHY
        if response.status_code != 200 and not detail:
            detail = {"error": f"HTTP {response.status_code}"}
        return {"status": state, "detail": detail}

    def passive(self, upstream: Upstream) -> ServiceReport:
        base = {"mode": HealthMode.PASSIVE, "probed": False, "location": upstream.location}
        last = upstream.last
        age = time.monotonic() - last.at if last else None
        if last is None or age is None or age > self.passive_window:
            return ServiceReport(
                status=ServiceState.UNKNOWN,
                detail={
                    "reason": f"no request in the last {self.passive_window:g} s; not probed "
                    "(passive mode); ask with ?deep=true to probe"
                },
                **base,
            )
        detail: dict[str, Any] = {"last_request_age_s": round(age, 1)}
        if last.detail:
            detail["last_error"] = last.detail
        return ServiceReport(
            status=ServiceState.HEALTHY if last.ok else ServiceState.UNHEALTHY,
            latency_ms=round(last.latency_ms, 2),
            detail=detail,
            **base,
        )
