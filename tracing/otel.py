"""Optional export of a run's spans to OpenTelemetry (any OTLP/HTTP collector, or LangSmith).

Spans are first written to ``traces.sqlite`` as always; with ``tracing.otlp_endpoint`` set,
each finished span is also handed to an OpenTelemetry ``BatchSpanProcessor`` and sent in the
background, so a slow or absent collector never slows the loop. teachloop's span ids become
OpenTelemetry span ids, and the trace id is derived from the run directory, so every span of a
run (a resumed one included) lands in one trace with its parent links intact.

Attributes follow the conventions LangSmith and other LLM observability tools read:
``langsmith.span.kind`` (llm / tool / chain), ``gen_ai.prompt`` / ``gen_ai.completion`` (the
span's inputs and outputs as JSON) and ``gen_ai.usage.input_tokens`` / ``output_tokens``, beside
``teachloop.*`` attributes with everything else. Headers (an API key) come from the exporter's
standard ``OTEL_EXPORTER_OTLP_HEADERS`` environment variable, never from the run config.

Needs ``pip install 'teachloop[otel]'`` (opentelemetry-sdk and the OTLP/HTTP exporter).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teachloop.foundation.errors import ConfigError
from teachloop.tracing.spans import Span, SpanSink

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

_LANGSMITH_KIND = {"llm": "llm", "tool": "tool", "agent": "chain", "node": "chain", "run": "chain"}
INSTALL_HINT = "pip install 'teachloop[otel]'"


def trace_id_for(run_root: Path) -> int:
    """A 128-bit OpenTelemetry trace id, the same for every process that works on this run."""
    return int(hashlib.sha256(str(run_root.resolve()).encode()).hexdigest()[:32], 16) or 1


def span_id_for(span_id: str) -> int:
    return int(span_id[:16], 16) or 1


def attributes(span: Span) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "teachloop.kind": span.kind,
        "langsmith.span.kind": _LANGSMITH_KIND.get(span.kind, "chain"),
    }
    if span.round is not None:
        attrs["teachloop.round"] = span.round
    if span.inputs is not None:
        attrs["gen_ai.prompt"] = attrs["teachloop.inputs"] = span.inputs
    if span.outputs is not None:
        attrs["gen_ai.completion"] = attrs["teachloop.outputs"] = span.outputs
    if span.attrs is not None:
        attrs["teachloop.attrs"] = span.attrs
    if span.prompt_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = span.prompt_tokens
    if span.completion_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = span.completion_tokens
    if span.error is not None:
        attrs["teachloop.error"] = span.error
    return attrs


class OtelSink(SpanSink):
    """Converts each finished span into an OpenTelemetry span and hands it to ``processor``."""

    def __init__(self, processor: SpanProcessor, trace_id: int, service_name: str = "teachloop") -> None:
        from opentelemetry.sdk.resources import Resource

        self.processor = processor
        self.trace_id = trace_id
        self.resource = Resource.create({"service.name": service_name})

    def export(self, span: Span) -> None:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

        def context(span_id: str) -> SpanContext:
            return SpanContext(
                trace_id=self.trace_id,
                span_id=span_id_for(span_id),
                is_remote=False,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )

        status = Status(StatusCode.ERROR, span.error) if span.status != "ok" else Status(StatusCode.OK)
        self.processor.on_end(
            ReadableSpan(
                name=span.name,
                context=context(span.id),
                parent=context(span.parent_id) if span.parent_id else None,
                resource=self.resource,
                attributes=attributes(span),
                status=status,
                start_time=int(span.start * 1e9),
                end_time=int(span.end * 1e9),
            )
        )

    def shutdown(self) -> None:
        self.processor.shutdown()  # flushes what is still queued


def check_installed() -> None:
    """Fail before a run starts if export is configured but OpenTelemetry is missing."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"tracing.otlp_endpoint is set but OpenTelemetry is not installed: {INSTALL_HINT}"
        ) from None


def otlp_sink(endpoint: str, run_root: Path, service_name: str = "teachloop") -> OtelSink:
    """A sink sending spans to an OTLP/HTTP traces endpoint (e.g. ``http://localhost:4318/v1/traces``)."""
    check_installed()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return OtelSink(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)), trace_id_for(run_root), service_name
    )
