"""Measure what tracing costs a loop: every span of a real run, replayed through a fresh tracer.

    python bench/tracing_overhead.py RUN_DIR [--repeats 30] [--default-wall-seconds 360]

Each span of ``RUN_DIR/traces.sqlite`` is opened again with the same kind, name, nesting, inputs,
outputs, attributes and token counts, but with an empty body, so what is timed is exactly what
tracing adds to a loop: the context variable, bounding and redacting the fields, JSON encoding,
and the SQLite insert (``Tracer(path)``), against the same replay with ``Tracer(None)`` (no
storage) and, where opentelemetry-sdk is installed, with an OpenTelemetry batch processor too.
The cost per span is then scaled to the span count of the default loop (3 rounds; the replayed
run's spans per round times 4 evaluated rounds) and compared with the default loop's wall time
(about 6 minutes on a 2-core CPU; pass ``--default-wall-seconds`` for yours).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from teachloop.reports.rundata import TraceNode, trace_tree
from teachloop.tracing.spans import SpanSink, Tracer, read_spans

DEFAULT_ROUNDS = 3


def replay(tracer: Tracer, node: TraceNode) -> None:
    s = node.span
    attrs = s.decoded("attrs") or {}
    with tracer.span(s.kind, s.name, round=s.round, inputs=s.decoded("inputs"), **attrs) as sp:  # type: ignore[arg-type]
        sp.outputs = s.decoded("outputs")
        if s.prompt_tokens is not None or s.completion_tokens is not None:
            sp.add_tokens(s.prompt_tokens or 0, s.completion_tokens or 0)
        for child in node.children:
            replay(tracer, child)


def time_replays(
    roots: list[TraceNode], repeats: int, store: bool, sinks: list[SpanSink] | None = None
) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats):
            start = time.perf_counter()
            tracer = Tracer(Path(tmp) / f"traces-{k}.sqlite" if store else None, sinks or [])
            for root in roots:
                replay(tracer, root)
            tracer.close()
            times.append(time.perf_counter() - start)
    return times


def otel_sinks() -> list[SpanSink] | None:
    try:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        return None
    from teachloop.tracing.otel import OtelSink

    return [OtelSink(BatchSpanProcessor(InMemorySpanExporter()), trace_id=1)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--default-wall-seconds", type=float, default=360.0)
    args = parser.parse_args()

    spans = read_spans(args.run_dir / "traces.sqlite")
    if not spans:
        raise SystemExit(f"{args.run_dir} has no spans")
    roots = trace_tree(spans)
    rounds = len({s.round for s in spans if s.round is not None})
    run_wall = sum(s.seconds for s in spans if s.kind == "run")
    default_spans = round(len(spans) * (DEFAULT_ROUNDS + 1) / rounds)

    time_replays(roots, 2, store=True)  # warm up imports and the file system
    rows = [("Tracer(path): SQLite", time_replays(roots, args.repeats, store=True))]
    rows.append(("Tracer(None): no storage", time_replays(roots, args.repeats, store=False)))
    if (sinks := otel_sinks()) is not None:
        rows.append(
            ("Tracer(path) + OpenTelemetry batch export", time_replays(roots, args.repeats, True, sinks))
        )

    print(
        f"replayed run: {args.run_dir}: {len(spans)} spans over {rounds} evaluated rounds, {run_wall:.1f}s wall"
    )
    print(f"default loop estimate: {default_spans} spans, {args.default_wall_seconds:.0f}s wall\n")
    print(
        "| tracer | per span (median) | this run's spans | share of this run | default loop's spans | share of default loop |"
    )
    print("|---|---|---|---|---|---|")
    for name, times in rows:
        per_span = statistics.median(times) / len(spans)
        mine, default = per_span * len(spans), per_span * default_spans
        print(
            f"| {name} | {1e6 * per_span:.0f} µs | {1e3 * mine:.1f} ms | "
            f"{100 * mine / run_wall:.3f}% | {1e3 * default:.1f} ms | {100 * default / args.default_wall_seconds:.4f}% |"
        )


if __name__ == "__main__":
    main()
