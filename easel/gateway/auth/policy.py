"""What a path needs when API keys are on: nothing (public), any valid key, or a key with
one scope. The scope of each API route comes from `route_classes`, the table the rate
limits read too; the gateway's own system routes are public or keyed by configuration."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from easel.core.identity import ApiScope
from easel.core.image_links import IMAGES_PREFIX
from easel.gateway.route_classes import REQUIRED_SCOPE, RouteClass, classify


@dataclass(frozen=True)
class Need:
    """A key is needed; with `scope` set, one that has it. `scrape_token`: the metrics
    token (EASEL_METRICS_TOKEN) will do instead; `signed_link`: so will a valid signature
    of the link itself (`easel.core.image_links`)."""

    scope: ApiScope | None = None
    scrape_token: bool = False
    signed_link: bool = False


ANY_KEY = Need()


class AccessPolicy:
    """Liveness and the pages' static files are always public. With keys on: the docs
    (`/docs`, `/redoc`, `/openapi.json`) are public unless EASEL_PUBLIC_DOCS=false, then any
    key reads them;
    deep health and `/metrics` need an admin key (or, for metrics, the scrape token)
    unless EASEL_PUBLIC_HEALTH / EASEL_PUBLIC_METRICS; a stored image (`/api/images/`)
    needs a key with `jobs` or its link's valid signature; any other path needs a key."""

    def __init__(
        self,
        *,
        public_docs: bool = True,
        public_metrics: bool = False,
        public_health: bool = False,
        metrics_token: str | None = None,
    ) -> None:
        self.public_docs = public_docs
        self.public_metrics = public_metrics
        self.public_health = public_health
        self._metrics_token = metrics_token.encode() if metrics_token else None

    def need(self, path: str) -> Need | None:
        """None: public."""
        route_class = classify(path)
        if route_class in (RouteClass.HEALTH, RouteClass.PAGE):
            return None
        if route_class is RouteClass.SYSTEM:
            return self._system_need(path)
        scope = REQUIRED_SCOPE[route_class]
        if path.startswith(IMAGES_PREFIX):
            return Need(scope, signed_link=True)
        return Need(scope) if scope is not None else ANY_KEY

    def _system_need(self, path: str) -> Need | None:
        if path.startswith("/metrics"):
            if self.public_metrics:
                return None
            return Need(ApiScope.ADMIN, scrape_token=self._metrics_token is not None)
        if path.startswith("/api/system/health"):
            return None if self.public_health else Need(ApiScope.ADMIN)
        return None if self.public_docs else ANY_KEY  # the API documents

    def is_scrape_token(self, presented: str) -> bool:
        token = self._metrics_token
        return token is not None and hmac.compare_digest(token, presented.encode())
