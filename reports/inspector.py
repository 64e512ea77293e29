"""``teachloop inspect RUN_DIR [VIEW]``: what the agents did in a run, and what came of it.

Views: ``rounds`` (per-skill dev and test accuracy by round with counts and 95% intervals; the
default), ``plan`` (the weakness report a round's data was planned from, and the plan),
``samples`` (each round's candidates with scores, filters, and a diff for revised ones) and
``trace`` (the span tree with timings and token counts). Every view takes ``--json`` for scripts.
Only the run directory is read; nothing is loaded or written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree
from typer.core import TyperGroup

from teachloop.foundation.errors import ConfigError

if TYPE_CHECKING:
    from teachloop.reports.rundata import RoundData, RunData, Sample, TraceNode
    from teachloop.reports.textdiff import DiffPiece
    from teachloop.tracing.spans import Span

# Reading a run needs pyarrow and datasets (a second to import): loaded when a view runs, so the
# rest of the command line stays quick.


class _DefaultView(TyperGroup):
    """``inspect RUN_DIR`` and ``inspect RUN_DIR --json`` mean ``inspect RUN_DIR rounds ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's vendored click Context
        first = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
        if first is not None:
            rest = args[first + 1 :]
            if not rest or (rest[0].startswith("-") and rest[0] not in ctx.help_option_names):
                args = [*args[: first + 1], "rounds", *rest]
        return super().parse_args(ctx, args)


inspect_app = typer.Typer(
    cls=_DefaultView,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Look inside a run: accuracy by round, diagnoses and plans, samples, traces.",
)

out = Console(highlight=False)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
RoundOption = Annotated[int | None, typer.Option("--round", "-r", help="round number")]


def _run(ctx: typer.Context) -> RunData:
    run: RunData = ctx.obj["run"]
    return run


def _emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


@inspect_app.callback()
def main(ctx: typer.Context, run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Look inside a run: RUN_DIR [rounds|plan|samples|trace] [--json]; rounds is the default view."""
    from teachloop.reports.rundata import RunData

    ctx.obj = {"run": RunData(run_dir)}


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


@inspect_app.command()
def rounds(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Per-skill dev and test accuracy by round, samples made and kept, seconds per round."""
    run = _run(ctx)
    if as_json:
        _emit(rounds_json(run))
        return
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


def _planned_round(run: RunData, round_: int | None) -> int:
    planned = [r for r in run.round_numbers() if run.store.round(r).plan.is_file()]
    if round_ is None:
        if not planned:
            raise ConfigError(
                f"{run.root} has no plan yet (the first plan is made after round 0's evaluation)"
            )
        return planned[-1]
    if round_ not in planned:
        have = ", ".join(map(str, planned)) or "none"
        raise ConfigError(f"round {round_} has no plan; rounds with a plan: {have}")
    return round_


def plan_json(run: RunData, round_: int) -> dict[str, Any]:
    before, this = run.round(round_ - 1), run.round(round_)
    return {
        "round": round_,
        "weakness": before.weakness.model_dump() if before.weakness else None,
        "plan": this.plan.model_dump() if this.plan else None,
        "plan_total": this.plan.total if this.plan else None,
    }


@inspect_app.command()
def plan(ctx: typer.Context, round_: RoundOption = None, as_json: JsonOption = False) -> None:
    """The weakness report a round's data was planned from (the round before's dev results), and the plan."""
    run = _run(ctx)
    k = _planned_round(run, round_)
    if as_json:
        _emit(plan_json(run, k))
        return
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
) -> list[Sample]:
    def keep(s: Sample) -> bool:
        return (
            (not skills or s.skill in skills)
            and (min_score is None or (s.score is not None and s.score >= min_score))
            and (max_score is None or (s.score is not None and s.score <= max_score))
            and (kept is None or s.kept == kept)
            and (origin is None or s.origin == origin)
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


@inspect_app.command()
def samples(
    ctx: typer.Context,
    round_: RoundOption = None,
    skill: Annotated[list[str], typer.Option("--skill", "-s", help="only this skill (repeatable)")] = [],  # noqa: B006
    min_score: Annotated[float | None, typer.Option(help="only samples scored at least this")] = None,
    max_score: Annotated[float | None, typer.Option(help="only samples scored at most this")] = None,
    kept: Annotated[
        bool | None, typer.Option("--kept/--dropped", help="only samples kept for training, or only dropped")
    ] = None,
    origin: Annotated[
        str | None, typer.Option(help="only kept samples of this origin: new or replay")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="only samples made by this source, e.g. environment")
    ] = None,
    revised: Annotated[
        bool | None, typer.Option("--revised/--unrevised", help="only revised samples, or only unrevised")
    ] = None,
    limit: Annotated[int, typer.Option(help="show at most this many (0: all)")] = 50,
    full: Annotated[bool, typer.Option(help="show whole texts instead of one clipped line each")] = False,
    as_json: JsonOption = False,
) -> None:
    """Training candidates with their scores; revised ones as a diff against their original text."""
    run = _run(ctx)
    if round_ is not None and round_ not in run.round_numbers():
        raise ConfigError(
            f"{run.root} has no round {round_}; rounds: {', '.join(map(str, run.round_numbers()))}"
        )
    if origin is not None and origin not in ("new", "replay"):
        raise ConfigError(f"--origin must be new or replay, not {origin!r}")
    everything = run.all_samples([round_] if round_ is not None else None)
    chosen = filter_samples(everything, skill, min_score, max_score, kept, origin, source, revised)
    shown = chosen[:limit] if limit > 0 else chosen
    if as_json:
        _emit({"total": len(everything), "matched": len(chosen), "samples": [s.as_json() for s in shown]})
        return
    width = None if full else 60
    table = Table(title=f"samples: {len(chosen)} of {len(everything)} match", title_justify="left")
    for col in ("round", "skill", "score", "checks", "kept", "question", "answer"):
        table.add_column(col, overflow="fold")
    for s in shown:
        diff = s.diff()
        table.add_row(
            str(s.round),
            s.skill,
            "-" if s.score is None else f"{s.score:g}",
            _flags(s),
            (s.origin or "yes") if s.kept else "no",
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


@inspect_app.command()
def trace(
    ctx: typer.Context,
    round_: Annotated[
        int | None, typer.Option("--round", "-r", help="one round's spans (default: the whole run)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The span tree (nodes, agents, LLM and tool calls) with durations, offsets and token counts."""
    from teachloop.reports.rundata import trace_tree

    run = _run(ctx)
    spans = run.spans
    if not spans:
        raise ConfigError(f"{run.root} has no spans yet (traces.sqlite is missing or empty)")
    roots = trace_tree(spans, round_)
    if round_ is not None and not roots:
        have = sorted({s.round for s in spans if s.round is not None})
        raise ConfigError(f"no spans for round {round_}; rounds with spans: {', '.join(map(str, have))}")
    origin = min(s.start for s in spans)
    if as_json:
        _emit({"round": round_, "spans": [r.as_json(origin) for r in roots]})
        return
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


# -- report -------------------------------------------------------------------------------------


def report_command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="where to write (default RUN_DIR/report.html)")
    ] = None,
) -> None:
    """Write one self-contained HTML page about a run: accuracy charts, data, diffs, plans, trace."""
    from teachloop.reports.report import write_report
    from teachloop.reports.rundata import RunData

    path = write_report(RunData(run_dir), output or run_dir / "report.html")
    out.print(f"wrote {path}")
