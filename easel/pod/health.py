"""One look at a pod process's health endpoint, and whether its port is taken."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import httpx

from easel.core.health import HealthStatus

NOT_ANSWERING = "not answering"


@dataclass(frozen=True)
class Probe:
    answered: bool  # a 2xx: the server is up (generation may still be loading: degraded)
    status: str  # the body's status (healthy, degraded...), "HTTP 503", or NOT_ANSWERING


def probe(url: str, timeout: float) -> Probe:
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return Probe(False, NOT_ANSWERING)
    if not response.is_success:
        return Probe(False, f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    # ComfyUI's /system_stats has no status: answering is its health.
    status = body.get("status") if isinstance(body, dict) else None
    return Probe(True, str(status or HealthStatus.HEALTHY))


def port_in_use(host: str, port: int) -> bool:
    """Something accepts connections there (another server would answer our health check)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
