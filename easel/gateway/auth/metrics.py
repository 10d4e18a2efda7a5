"""The auth counter on the gateway's registry. Its `key` label is bounded: the names of
configured keys, `anonymous` (no key sent), `unknown` (a key that matched none) and
`metrics-scraper` (the scrape token)."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter

ANONYMOUS_LABEL = "anonymous"
UNKNOWN_LABEL = "unknown"
SCRAPER_LABEL = "metrics-scraper"


class AuthOutcome(StrEnum):
    ALLOWED = "allowed"
    UNAUTHORIZED = "unauthorized"  # 401: no key, or one that matched none
    FORBIDDEN = "forbidden"  # 403: a key without the route's scope


class AuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "easel_auth_requests",
            "Requests that needed a key, by key name and outcome.",
            ["key", "outcome"],
            registry=registry,
        )

    def count(self, key: str, outcome: AuthOutcome) -> None:
        self.requests.labels(key, outcome.value).inc()
