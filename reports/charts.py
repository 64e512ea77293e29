"""Chart geometry for the HTML report: accuracy-by-round line charts and the trace timeline.

Only coordinates are computed here; the template draws them as inline SVG, so the report needs
no script, no plotting library and no network, and every label goes through the template's
escaping like any other text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from teachloop.reports.rundata import TraceNode
from teachloop.tracing.spans import Span

#: Series colours (dev, test, then more), readable on white and by most colour-blind readers.
PALETTE = ("#1f77b4", "#d95f02", "#7570b3", "#1b9e77", "#e7298a")
KIND_COLOURS = {
    "run": "#999999",
    "node": "#1f77b4",
    "agent": "#7570b3",
    "llm": "#e7298a",
    "tool": "#1b9e77",
}


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    y_low: float
    y_high: float
    label: str


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    points: list[Point]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class LineChart:
    title: str
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    series: list[Series]


@dataclass(frozen=True)
class Measure:
    """One series' value at one round: accuracy with its 95% interval and counts."""

    round: int
    value: float
    low: float
    high: float
    solved: int
    n: int


def accuracy_chart(
    title: str, rounds: list[int], series: dict[str, list[Measure]], width: int = 340, height: int = 190
) -> LineChart:
    """Accuracy (0-100%) by round, one line per series, with 95% interval whiskers."""
    left, right, top, bottom = 40, width - 12, 26, height - 30
    span = max(1, len(rounds) - 1)
    xs = {r: left + (right - left) * (i / span if len(rounds) > 1 else 0.5) for i, r in enumerate(rounds)}

    def y(v: float) -> float:
        return bottom - (bottom - top) * max(0.0, min(1.0, v))

    drawn = []
    offsets = [(i - (len(series) - 1) / 2) * 4 for i in range(len(series))]
    for (name, measures), colour, dx in zip(series.items(), PALETTE, offsets, strict=False):
        points = [
            Point(
                x=xs[m.round] + dx,
                y=y(m.value),
                y_low=y(m.low),
                y_high=y(m.high),
                label=f"{name} round {m.round}: {100 * m.value:.0f}% ({m.solved}/{m.n}), "
                f"95% interval {100 * m.low:.0f}-{100 * m.high:.0f}%",
            )
            for m in measures
            if m.round in xs
        ]
        drawn.append(Series(name=name, colour=colour, points=points))
    return LineChart(
        title=title,
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        x_ticks=[Tick(at=xs[r], label=str(r)) for r in rounds],
        y_ticks=[Tick(at=y(v / 100), label=f"{v}%") for v in (0, 25, 50, 75, 100)],
        series=drawn,
    )


@dataclass(frozen=True)
class Bar:
    depth: int
    label: str
    kind: str
    colour: str
    y: float
    x: float
    width: float
    seconds: float
    tooltip: str
    error: bool


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    label_width: int
    row_height: int
    bars: list[Bar]
    ticks: list[Tick]
    hidden: int = 0
    total_seconds: float = 0.0
    kinds: dict[str, str] = field(default_factory=lambda: dict(KIND_COLOURS))


MAX_TIMELINE_ROWS = 400


def _nice_step(total: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600):
        if total / step <= 10:
            return step
    return 7200.0


def _tooltip(span: Span) -> str:
    parts = [f"{span.kind} {span.name}", f"{span.seconds:.3f}s", span.status]
    if span.prompt_tokens is not None or span.completion_tokens is not None:
        parts.append(f"tokens {span.prompt_tokens or 0} in, {span.completion_tokens or 0} out")
    if span.error:
        parts.append(span.error)
    elif span.outputs:
        parts.append(span.outputs[:300])
    return " · ".join(parts)


def timeline(roots: list[TraceNode], width: int = 1100, row_height: int = 16) -> Timeline:
    """A Gantt chart of spans: one row per span, depth-first, indented by nesting."""
    rows = [(d, s) for r in roots for d, s in r.walk()]
    hidden = max(0, len(rows) - MAX_TIMELINE_ROWS)
    rows = rows[:MAX_TIMELINE_ROWS]
    label_width = 300
    if not rows:
        return Timeline(width, 40, label_width, row_height, [], [], 0, 0.0)
    t0 = min(s.start for _, s in rows)
    total = max(max(s.end for _, s in rows) - t0, 1e-3)
    plot = width - label_width - 10
    bars = [
        Bar(
            depth=d,
            label=s.name if s.round is None or d > 1 else f"{s.name} (round {s.round})",
            kind=s.kind,
            colour=KIND_COLOURS.get(s.kind, "#555555"),
            y=24 + i * row_height,
            x=label_width + plot * (s.start - t0) / total,
            width=max(1.0, plot * s.seconds / total),
            seconds=s.seconds,
            tooltip=_tooltip(s),
            error=s.status != "ok",
        )
        for i, (d, s) in enumerate(rows)
    ]
    step = _nice_step(total)
    ticks = [
        Tick(at=label_width + plot * (k * step) / total, label=f"{k * step:g}s")
        for k in range(int(total / step) + 1)
    ]
    return Timeline(
        width=width,
        height=24 + len(rows) * row_height + 8,
        label_width=label_width,
        row_height=row_height,
        bars=bars,
        ticks=ticks,
        hidden=hidden,
        total_seconds=total,
    )
