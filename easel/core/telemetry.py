"""Optional OpenTelemetry tracing: with `EASEL_OTEL_ENDPOINT` set, spans of every request
(the FastAPI app), every outgoing httpx call and every Redis command go to that OTLP/HTTP
collector. Needs the `otel` extra (`pip install 'easel[otel]'`), imported only then.

OpenTelemetry keeps its own current span; a bridge (`easel.core.tracing.SpanBridge`)
keeps it and easel's trace context one trace: the edge adopts OpenTelemetry's server span
(so log lines name its ids), and a worker running a job makes the job's context
OpenTelemetry's parent (so its calls join the trace that submitted the job).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from easel.core import tracing
from easel.core.tracing import TraceContext

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

EXTRA_HINT = (
    "EASEL_OTEL_ENDPOINT is set but OpenTelemetry is not installed: pip install 'easel[otel]'"
)


class TelemetryUnavailable(RuntimeError):
    """EASEL_OTEL_ENDPOINT is set without the `otel` extra installed."""


class OtelBridge:
    """`SpanBridge` over OpenTelemetry's API."""

    def current(self) -> TraceContext | None:
        from opentelemetry import trace

        span = trace.get_current_span().get_span_context()
        if not span.is_valid:
            return None
        return TraceContext(
            trace_id=f"{span.trace_id:032x}",
            span_id=f"{span.span_id:016x}",
            flags=f"{int(span.trace_flags):02x}",
            tracestate=span.trace_state.to_header() or None,
        )

    def attach(self, context: TraceContext) -> object:
        # The block's span as OpenTelemetry's (remote) parent: spans made in it (httpx,
        # Redis) belong to the job's trace. easel's own span is not exported itself.
        from opentelemetry import context as otel_context
        from opentelemetry import trace

        span = trace.SpanContext(
            trace_id=int(context.trace_id, 16),
            span_id=int(context.span_id, 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(int(context.flags, 16)),
            trace_state=trace.TraceState.from_header([context.tracestate or ""]),
        )
        return otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(span)))

    def detach(self, token: object) -> None:
        from opentelemetry import context as otel_context

        otel_context.detach(token)  # type: ignore[arg-type]


class Telemetry:
    """The tracer provider of this process, once set up (`setup`)."""

    def __init__(self, provider: TracerProvider, exporter: SpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter

    def instrument_app(self, app: Any) -> None:
        """Spans for every request `app` (a FastAPI app) serves."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Send what is buffered, and stop (tests; a process's exit does it too)."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        HTTPXClientInstrumentor().uninstrument()
        RedisInstrumentor().uninstrument()
        tracing.set_bridge(None)
        self.provider.shutdown()


def setup(
    endpoint: str | None,
    *,
    service: str,
    exporter: SpanExporter | None = None,
    set_global: bool = True,
) -> Telemetry | None:
    """Trace to `endpoint` (OTLP over HTTP) as `service`; None when `endpoint` is unset
    (and no `exporter` given: tests pass one, exporting in memory, synchronously).
    Instruments httpx and Redis for the whole process; apps with `instrument_app`."""
    if not endpoint and exporter is None:
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise TelemetryUnavailable(EXTRA_HINT) from exc
    provider = TracerProvider(resource=Resource.create({"service.name": f"easel-{service}"}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)
    tracing.set_bridge(OtelBridge())
    return Telemetry(provider, exporter)
