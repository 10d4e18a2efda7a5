"""Generation metrics, in the service's registry (served on /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class GenerationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.steps = Counter(
            "easel_generation_steps",
            "Denoising steps run (all requests of a batched call share each step).",
            registry=registry,
        )
        self.calls = Counter(
            "easel_generation_calls", "Pipeline calls, by outcome.", ["outcome"], registry=registry
        )
        self.batch_size = Histogram(
            "easel_generation_batch_size",
            "Requests sharing a pipeline call.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16),
            registry=registry,
        )
        self.queue_wait = Histogram(
            "easel_generation_queue_wait_seconds",
            "Time from arrival to the start of the request's pipeline call.",
            registry=registry,
        )
