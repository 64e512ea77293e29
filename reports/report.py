"""``teachloop report RUN_DIR``: one self-contained HTML page about a run.

The page holds per-skill accuracy by round (inline SVG charts with 95% intervals), each round's
plan, the data it made and kept with scores and revision diffs, the training metrics, the
evaluation answers, the diagnoser's weakness report, a timeline of the trace, and the config.
It loads nothing from anywhere (no script, no stylesheet, no font, no server), so it can be
mailed or archived as it is.

Everything a model or a data generator wrote is text to the page, never markup: the template
is rendered with autoescaping on, and a Content-Security-Policy forbids scripts besides, so a
sample that contains ``<script>`` is shown as those characters and runs nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from teachloop.agents.review import GATES, ReviewRecord
from teachloop.evals.metrics import EvalSummary, ItemResult
from teachloop.foundation.files import atomic_write_text
from teachloop.foundation.types import SPLITS
from teachloop.reports.charts import LineChart, Measure, Timeline, accuracy_chart, timeline
from teachloop.reports.rundata import RoundData, RunData, Sample, trace_tree

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class RoundView:
    data: RoundData
    samples: list[Sample]
    evals: dict[str, list[ItemResult]]
    reviews: list[ReviewRecord]

    @property
    def round(self) -> int:
        return self.data.round

    @property
    def kept(self) -> list[Sample]:
        return [s for s in self.samples if s.kept]

    @property
    def revised(self) -> list[Sample]:
        return [s for s in self.samples if s.revised]

    @property
    def score_columns(self) -> list[str]:
        """Extra score columns some sample of this round carries (a judge's, a pass rate)."""
        return sorted({k for s in self.samples for k in s.extra_scores})


def _measures(evals: dict[int, EvalSummary], skill: str | None) -> list[Measure]:
    out = []
    for k, summary in sorted(evals.items()):
        m = summary.overall if skill is None else summary.skills.get(skill)
        if m is not None:
            out.append(Measure(k, m.accuracy, m.ci_low, m.ci_high, m.solved, m.n))
    return out


def charts(rounds: list[RoundData]) -> tuple[LineChart, list[LineChart]]:
    """The all-skills chart and one chart per skill, each with a dev and a test line."""
    numbers = [r.round for r in rounds if r.evals]
    by_split = {split: {r.round: r.evals[split] for r in rounds if split in r.evals} for split in SPLITS}
    overall = accuracy_chart(
        "all skills", numbers, {split: _measures(by_split[split], None) for split in SPLITS}, width=460
    )
    skills = sorted({s for e in by_split["dev"].values() for s in e.skills})
    per_skill = [
        accuracy_chart(skill, numbers, {split: _measures(by_split[split], skill) for split in SPLITS})
        for skill in skills
    ]
    return overall, per_skill


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f}s"
    return f"{int(value // 60)}m {value % 60:02.0f}s"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _visible(text: str, limit: int = 400) -> str:
    """Model output on one line: line breaks and tabs shown as marks, long output clipped."""
    shown = text.replace("\r", "").replace("\n", "⏎ ").replace("\t", "⇥ ")
    return shown if len(shown) <= limit else shown[:limit] + f"… ({len(shown) - limit} more chars)"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["secs"] = _seconds
    env.filters["visible"] = _visible
    return env


def context(run: RunData) -> dict[str, Any]:
    rounds = run.rounds()
    overall, per_skill = charts(rounds)
    spans = run.spans
    roots = trace_tree(spans)
    chart: Timeline = timeline(roots)
    summary = run.summary
    return {
        "run_id": run.root.name,
        "config": run.config,
        "config_yaml": yaml.safe_dump(run.config, sort_keys=False),
        "summary": summary,
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "overall_chart": overall,
        "skill_charts": per_skill,
        "rounds": [
            RoundView(
                data=r,
                samples=run.samples(r.round),
                evals={split: run.eval_items(r.round, split) for split in SPLITS},
                reviews=[v for g in GATES if (v := run.review(r.round, g))],
            )
            for r in rounds
        ],
        "weakness_before": {r.round + 1: r.weakness for r in rounds if r.weakness},
        "timeline": chart,
        "span_count": len(spans),
        "span_errors": [s for s in spans if s.status != "ok"],
        "tokens": {
            "prompt": sum(s.prompt_tokens or 0 for s in spans),
            "completion": sum(s.completion_tokens or 0 for s in spans),
        },
    }


def render_report(run: RunData) -> str:
    return _environment().get_template("report.html.jinja").render(**context(run))


def write_report(run: RunData, path: Path) -> Path:
    atomic_write_text(path, render_report(run))
    return path
