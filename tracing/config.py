"""Settings of span export (OpenTelemetry)."""

from __future__ import annotations

from pydantic import Field

from teachloop.foundation.settings import Settings


class TracingConfig(Settings):
    otlp_endpoint: str | None = Field(
        None,
        description="also send spans to this OTLP/HTTP traces endpoint (needs teachloop[otel]; "
        "headers such as an API key come from OTEL_EXPORTER_OTLP_HEADERS)",
    )
    service_name: str = Field("teachloop", description="OpenTelemetry service.name of exported spans")
