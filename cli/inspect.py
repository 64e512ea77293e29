"""``teachloop inspect RUN_DIR [VIEW]`` and ``teachloop report RUN_DIR``: what the agents did in a
run, and what came of it, in the terminal (or as JSON for scripts) or as one HTML page.

Views: ``rounds`` (the default), ``plan``, ``samples`` and ``trace``; every view takes ``--json``.
Only the run directory is read; nothing is loaded or written (``report`` writes its one page). The
commands check what was asked for and pick the data; :mod:`teachloop.reports.inspector` draws it
and :mod:`teachloop.reports.report` writes the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer
from rich.console import Console
from typer.core import TyperGroup

from teachloop.agents.review import ReviewOutcome
from teachloop.foundation.errors import ConfigError
from teachloop.reports import inspector

if TYPE_CHECKING:
    from teachloop.reports.rundata import RunData

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

out = Console(highlight=False)  # the views mark up their own titles, escaping what they quote

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
RoundOption = Annotated[int | None, typer.Option("--round", "-r", help="round number")]


def _run(ctx: typer.Context) -> RunData:
    run: RunData = ctx.obj["run"]
    return run


def _emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@inspect_app.callback()
def main(ctx: typer.Context, run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Look inside a run: RUN_DIR [rounds|plan|samples|trace] [--json]; rounds is the default view."""
    from teachloop.reports.rundata import RunData

    ctx.obj = {"run": RunData(run_dir)}


@inspect_app.command()
def rounds(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Per-skill dev and test accuracy by round, samples made and kept, seconds per round."""
    run = _run(ctx)
    if as_json:
        _emit(inspector.rounds_json(run))
    else:
        inspector.print_rounds(out, run)


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


@inspect_app.command()
def plan(ctx: typer.Context, round_: RoundOption = None, as_json: JsonOption = False) -> None:
    """The weakness report a round's data was planned from (the round before's dev results), and the plan."""
    run = _run(ctx)
    k = _planned_round(run, round_)
    if as_json:
        _emit(inspector.plan_json(run, k))
    else:
        inspector.print_plan(out, run, k)


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
        str | None,
        typer.Option(
            help="only samples of this origin: new or replay (kept), or made by engine, llm, revision"
        ),
    ] = None,
    review: Annotated[
        str | None,
        typer.Option(help="only samples a reviewer approved, edited or rejected (or not_reviewed)"),
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
    origins = ("new", "replay", "engine", "llm", "revision")
    if origin is not None and origin not in origins:
        raise ConfigError(
            f"--origin must be new or replay (how it was kept) or engine, llm, revision (what made it), "
            f"not {origin!r}"
        )
    outcomes = get_args(ReviewOutcome)
    if review is not None and review not in outcomes:
        raise ConfigError(f"--review must be one of {', '.join(outcomes)}, not {review!r}")
    everything = run.all_samples([round_] if round_ is not None else None)
    chosen = inspector.filter_samples(
        everything, skill, min_score, max_score, kept, origin, source, revised, review
    )
    shown = chosen[:limit] if limit > 0 else chosen
    if as_json:
        _emit(inspector.samples_json(everything, chosen, shown))
    else:
        inspector.print_samples(out, everything, chosen, shown, full)


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
    if as_json:
        _emit(inspector.trace_json(round_, roots, min(s.start for s in spans)))
    else:
        inspector.print_trace(out, run, spans, roots, round_)


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
