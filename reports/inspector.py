"""What ``teachloop inspect`` shows of a run, drawn for a terminal or shaped as JSON.

One function per view and form: ``rounds`` (per-skill dev and test accuracy by round with counts and
95% intervals, data and time by round), ``plan`` (the weakness report a round's data was planned
from, and the plan), ``samples`` (candidates with scores and checks, revised ones as a word diff)
and ``trace`` (the span tree with timings and token counts). They take what
:class:`~teachloop.reports.rundata.RunData` read and draw it on the console they are given;
choosing what to show from the command line is :mod:`teachloop.cli.inspect`'s part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

if TYPE_CHECKING:
    from teachloop.reports.rundata import RoundData, RunData, Sample, TraceNode
    from teachloop.reports.textdiff import DiffPiece
    from teachloop.tracing.spans import Span


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


# -- rounds -------------------------------------------------------------------------------------


def rounds_json(run: RunData) -> dict[str, Any]:
    return {
        "run": str(run.root),
        "status": run.summary.get("status"),
        "stop_reason": run.summary.get("stop_reason"),
        "rounds": [
            {
                "round": r.round,
                **{split: summary.model_dump() for split, summary in r.evals.items()},
                "samples": r.counts,
                "seconds": r.seconds,
                "train": r.train_metrics,
            }
            for r in run.rounds()
        ],
    }


def _metrics_table(rounds: list[RoundData], split: str) -> Table:
    shown = [r for r in rounds if split in r.evals]
    table = Table(title=f"{split} accuracy by round: solved/n [95% interval]", title_justify="left")
    table.add_column("skill")
    for r in shown:
        table.add_column(f"round {r.round}", justify="right")
    skills = sorted({s for r in shown for s in r.evals[split].skills})
    for skill in skills:
        cells = []
        for r in shown:
            m = r.evals[split].skills.get(skill)
            cells.append(
                f"{_pct(m.accuracy)} {m.solved}/{m.n} [{_pct(m.ci_low)}-{_pct(m.ci_high)}]" if m else "-"
            )
        table.add_row(skill, *cells)
    overall = [r.evals[split].overall for r in shown]
    table.add_row(
        "all",
        *[f"{_pct(m.accuracy)} {m.solved}/{m.n} [{_pct(m.ci_low)}-{_pct(m.ci_high)}]" for m in overall],
        style="bold",
    )
    return table


def print_rounds(out: Console, run: RunData) -> None:
    """Dev and test accuracy tables by round, then data and time by round, then the run's status."""
    data = run.rounds()
    if not any(r.evals for r in data):
        out.print(f"{run.root}: no round has been evaluated yet")
        return
    for split in ("dev", "test"):
        out.print(_metrics_table(data, split))
    table = Table(title="data and time by round", title_justify="left")
    for col in ("round", "planned", "generated", "usable", "kept", "replayed", "train loss", "seconds"):
        table.add_column(col, justify="right")
    for r in data:
        c = r.counts
        loss = r.train_metrics.get("train_loss") if r.train_metrics else None
        table.add_row(
            str(r.round),
            *[str(c.get(k, "-")) for k in ("planned", "generated", "usable", "selected", "replayed")],
            f"{loss:.3f}" if loss is not None else "-",
            f"{sum(r.seconds.values()):.1f}",
        )
    out.print(table)
    status = run.summary.get("status", "unknown")
    reason = run.summary.get("stop_reason")
    out.print(f"{status}{f': {reason}' if reason else ''} · {run.root}")


# -- plan ---------------------------------------------------------------------------------------


def plan_json(run: RunData, round_: int) -> dict[str, Any]:
    before, this = run.round(round_ - 1), run.round(round_)
    return {
        "round": round_,
        "weakness": before.weakness.model_dump() if before.weakness else None,
        "plan": this.plan.model_dump() if this.plan else None,
        "plan_total": this.plan.total if this.plan else None,
    }


def print_plan(out: Console, run: RunData, k: int) -> None:
    """The weakness report after round ``k - 1`` (a failure example per skill), then round ``k``'s plan."""
    weakness, plan_ = run.round(k - 1).weakness, run.round(k).plan
    if weakness:
        table = Table(title=f"weakness report after round {k - 1}: {weakness.summary}", title_justify="left")
        for col in ("skill", "dev accuracy", "change", "severity", "example failure (expected → got)"):
            table.add_column(col)
        for w in weakness.skills:
            ex = w.evidence[0] if w.evidence else None
            table.add_row(
                w.skill,
                f"{_pct(w.accuracy)} of {w.n}",
                f"{100 * w.change:+.0f} pts" if w.change is not None else "-",
                w.severity,
                escape(f"{ex.expected!r} → {ex.got!r}") if ex else "",
            )
        out.print(table)
    if plan_:
        table = Table(
            title=f"plan for round {k}: policy {plan_.policy}, {plan_.total} of {plan_.budget} samples",
            title_justify="left",
        )
        for col in ("skill", "samples", "difficulty", "trainer", "why"):
            table.add_column(col)
        for a in plan_.allocations:
            table.add_row(a.skill, str(a.n), str(a.difficulty), a.trainer, escape(a.reason))
        out.print(table)


# -- samples ------------------------------------------------------------------------------------


def filter_samples(
    samples: list[Sample],
    skills: list[str],
    min_score: float | None,
    max_score: float | None,
    kept: bool | None,
    origin: str | None,
    source: str | None,
    revised: bool | None,
    review: str | None = None,
) -> list[Sample]:
    """``origin`` is new or replay (how the selector took it) or what made it: engine, llm, revision;
    ``review`` a review outcome (approved, edited, rejected, not_reviewed)."""

    def keep(s: Sample) -> bool:
        return (
            (not skills or s.skill in skills)
            and (min_score is None or (s.score is not None and s.score >= min_score))
            and (max_score is None or (s.score is not None and s.score <= max_score))
            and (kept is None or s.kept == kept)
            and (origin is None or origin in (s.origin, s.made_by))
            and (review is None or s.review == review)
            and (source is None or s.source == source)
            and (revised is None or s.revised == revised)
        )

    return [s for s in samples if keep(s)]


def _clip(text: str, width: int | None) -> str:
    text = " ".join(text.split()) if width else text
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def _diff_text(pieces: list[DiffPiece]) -> Text:
    text = Text()
    for p in pieces:
        style = {"equal": "", "delete": "red strike", "insert": "green underline"}[p.op]
        text.append(p.text, style=style)
    return text


def _flags(s: Sample) -> str:
    flags = [
        name
        for name, value in (
            ("unverified", s.verified is False),
            ("dup", s.duplicate),
            ("contam", s.contaminated),
        )
        if value
    ]
    return ",".join(flags) or ("ok" if s.verified else "-")


def samples_json(everything: list[Sample], chosen: list[Sample], shown: list[Sample]) -> dict[str, Any]:
    return {"total": len(everything), "matched": len(chosen), "samples": [s.as_json() for s in shown]}


def print_samples(
    out: Console, everything: list[Sample], chosen: list[Sample], shown: list[Sample], full: bool
) -> None:
    """``shown`` of the ``chosen`` samples as a table, texts clipped to a line unless ``full``; then
    each revised one as a diff (when clipped) and how many more matched."""
    width = None if full else 60
    table = Table(title=f"samples: {len(chosen)} of {len(everything)} match", title_justify="left")
    reviewed = any(s.review != "not_reviewed" for s in everything)
    columns = (
        "round",
        "skill",
        "score",
        "checks",
        "kept",
        *(("review",) if reviewed else ()),
        "question",
        "answer",
    )
    for col in columns:
        table.add_column(col, overflow="fold")
    for s in shown:
        diff = s.diff()
        table.add_row(
            str(s.round),
            s.skill,
            "-" if s.score is None else f"{s.score:g}",
            _flags(s),
            (s.origin or "yes") if s.kept else "no",
            *((s.review,) if reviewed else ()),
            _diff_text(diff["question"]) if diff and full else Text(_clip(s.question, width)),
            _diff_text(diff["answer"]) if diff and full else Text(_clip(s.answer, width)),
        )
    out.print(table)
    revised_shown = [s for s in shown if s.revised]
    if revised_shown and not full:
        out.print(
            f"revised samples ({len(revised_shown)}): red struck = original, green underlined = revision"
        )
        for s in revised_shown:
            diff = s.diff() or {}
            out.print(Text(f"round {s.round} · {s.skill} · {s.task_id}", style="bold"))
            out.print(Text("  question: ") + _diff_text(diff["question"]))
            out.print(Text("  answer:   ") + _diff_text(diff["answer"]))
    if len(chosen) > len(shown):
        out.print(f"{len(chosen) - len(shown)} more; use --limit 0 to see all")


# -- trace --------------------------------------------------------------------------------------


def _span_label(span: Span, origin: float) -> Text:
    label = Text()
    label.append(f"{span.kind} ", style="dim")
    label.append(span.name, style="bold red" if span.status != "ok" else "bold")
    label.append(f"  {span.seconds:.2f}s", style="cyan")
    label.append(f"  at +{span.start - origin:.1f}s", style="dim")
    if span.prompt_tokens is not None or span.completion_tokens is not None:
        label.append(f"  tokens {span.prompt_tokens or 0}→{span.completion_tokens or 0}", style="magenta")
    if span.error:
        label.append(f"  {span.error}", style="red")
    elif span.outputs and span.kind != "node":
        label.append(f"  {_clip(span.outputs, 100)}", style="dim")
    return label


def trace_json(round_: int | None, roots: list[TraceNode], origin: float) -> dict[str, Any]:
    return {"round": round_, "spans": [r.as_json(origin) for r in roots]}


def print_trace(
    out: Console, run: RunData, spans: list[Span], roots: list[TraceNode], round_: int | None
) -> None:
    """The span tree from ``roots`` (offsets from the run's first span), then span, time and error counts."""
    origin = min(s.start for s in spans)
    tree = Tree(f"trace of {run.root}" + (f", round {round_}" if round_ is not None else ""))

    def add(branch: Tree, node: TraceNode) -> None:
        child = branch.add(_span_label(node.span, origin))
        for c in node.children:
            add(child, c)

    for r in roots:
        add(tree, r)
    out.print(tree)
    errors = sum(s.status != "ok" for s in spans if round_ is None or s.round == round_)
    total = sum(r.span.seconds for r in roots)
    out.print(
        f"{sum(1 for r in roots for _ in r.walk())} spans, {total:.1f}s in top-level spans, {errors} errors"
    )
