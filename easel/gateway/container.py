"""The gateway's shared objects, built by its lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from easel.core.container import container_of
from easel.gateway.client_address import TrustedProxies
from easel.gateway.health import HealthChecker
from easel.gateway.settings import GatewaySettings
from easel.gateway.upstream import Upstream


@dataclass(frozen=True)
class GatewayContainer:
    settings: GatewaySettings
    upstreams: dict[str, Upstream]
    health: HealthChecker
    proxies: TrustedProxies  # whose X-Forwarded-For is believed


Gateway = Annotated[GatewayContainer, Depends(container_of(GatewayContainer))]
