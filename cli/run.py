"""``teachloop run``, ``resume`` and ``status``: start an improvement loop, continue a stopped one,
and see where runs stand.

The commands turn options into a run config and call :mod:`teachloop.loop.runner`; the progress
lines and accuracy tables they print are drawn by :mod:`teachloop.cli.render`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from teachloop.cli import render
from teachloop.cli.common import err, out, parse_pairs, quiet_libraries
from teachloop.cli.progress import ConsoleProgress

if TYPE_CHECKING:
    from teachloop.loop.config import RunConfig
    from teachloop.loop.context import ProgressFn


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="print only warnings and the final table")]


@contextmanager
def _progress(quiet: bool) -> Iterator[ProgressFn | None]:
    """Live progress on stderr while the block runs (cli/progress.py); none with --quiet."""
    if quiet:
        yield None
        return
    from teachloop.tracing.progress import reporting

    console = ConsoleProgress(err)
    with reporting(console):
        yield console.node


def _attach_report(run_dir: Path) -> None:
    """A tracked run's HTML report goes to its tracker run as well (tracking in docs/tracing.md)."""
    from teachloop.loop.config import load_saved_config

    if load_saved_config(run_dir / "config.yaml").tracking.backend == "none":
        return
    from teachloop.loop.runner import track_files
    from teachloop.reports.report import write_report
    from teachloop.reports.rundata import RunData

    track_files(run_dir, [write_report(RunData(run_dir), run_dir / "report.html")])


def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    env: Annotated[str | None, typer.Option(help="environment name (teachloop envs list)")] = None,
    env_option: Annotated[list[str], typer.Option("--env-option", help="environment option key=value")] = [],  # noqa: B006
    student: Annotated[str | None, typer.Option(help="student alias or local model directory")] = None,
    rounds: Annotated[int | None, typer.Option(help="training rounds")] = None,
    policy: Annotated[str | None, typer.Option(help="deficit, uniform, bandit or curriculum")] = None,
    samples_per_round: Annotated[int | None, typer.Option(help="training samples made per round")] = None,
    seed: Annotated[int | None, typer.Option(help="seed for splits, data and training")] = None,
    teacher: Annotated[
        str | None,
        typer.Option(
            help="brain of every agent role a config does not set: heuristic or openai (a policy given "
            "with openai keeps the planner on it); per role: --set teacher.brains.diagnoser=openai"
        ),
    ] = None,
    teacher_base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint of the teacher LLM (default: OpenAI)")
    ] = None,
    teacher_model: Annotated[str | None, typer.Option(help="teacher model name")] = None,
    trainer: Annotated[
        str | None,
        typer.Option(help="sft, dpo, grpo, or auto (per skill, SFT -> DPO -> GRPO when gains stall)"),
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="where the run is written (default runs/<time>-<env>)")
    ] = None,
    set_: Annotated[
        list[str], typer.Option("--set", help="any config value, e.g. train.learning_rate=1e-4")
    ] = [],  # noqa: B006
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="print what the run will do (rounds, samples, LLM calls per role, estimated tokens and "
            "cost) and write nothing",
        ),
    ] = False,
    review: Annotated[
        str | None,
        typer.Option(
            help="pause for 'teachloop review' after planning and/or selection: plan, data or plan,data"
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Run an improvement loop: evaluate, diagnose, plan, generate, revise, score, select, train; repeat."""
    from teachloop.loop import runner
    from teachloop.loop.config import build_config, load_config_file, merge, with_teacher

    base = load_config_file(config) if config else {}
    overrides: dict[str, Any] = parse_pairs(set_, "--set")
    flat = {"env": env, "student": student, "rounds": rounds, "policy": policy, "seed": seed}
    overrides.update({k: v for k, v in flat.items() if v is not None})
    if env_option:
        overrides["env_options"] = parse_pairs(env_option, "--env-option")
    if samples_per_round is not None:
        overrides.setdefault("teacher", {})["samples_per_round"] = samples_per_round
    if trainer is not None:
        overrides.setdefault("train", {})["trainer"] = trainer
    if review is not None:
        overrides["review"] = [g.strip() for g in review.split(",") if g.strip()]
    llm = {"base_url": teacher_base_url, "model": teacher_model}
    if any(v is not None for v in llm.values()):
        overrides.setdefault("teacher", {}).setdefault("llm", {}).update(
            {k: v for k, v in llm.items() if v is not None}
        )
    merged = merge(base, overrides)
    if teacher is not None:
        merged = with_teacher(merged, teacher)
    cfg = build_config(merged)
    if dry_run:
        _dry_run(cfg)
        return
    quiet_libraries()
    prepared = runner.prepare(cfg, run_dir)
    if not quiet:
        err.print(f"run directory: {prepared.store.root}")
    with _progress(quiet) as progress:
        summary = runner.start(prepared, progress)
    _attach_report(prepared.store.root)
    render.print_closing(out, summary, prepared.store.root)


def _dry_run(cfg: RunConfig) -> None:
    """The run's plan and teacher LLM estimate (loop/dryrun.py): no run directory, no model, no request."""
    from teachloop.environments.registry import load_environment
    from teachloop.loop.dryrun import estimate

    render.print_dry_run(out, estimate(cfg, load_environment(cfg.env, cfg.env_options)))


def resume(run_dir: Annotated[Path, typer.Argument(help="a run directory")], quiet: Quiet = False) -> None:
    """Continue a stopped or killed run from its last checkpoint."""
    from teachloop.loop import runner

    quiet_libraries()
    with _progress(quiet) as progress:
        summary = runner.resume(run_dir, progress)
    _attach_report(run_dir)
    render.print_closing(out, summary, run_dir)


def status(
    run_dir: Annotated[Path | None, typer.Argument(help="a run directory (default: list ./runs)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a run's progress and accuracy by round, or list the runs under ./runs."""
    from teachloop.loop import runner

    if run_dir is not None:
        st = runner.status(run_dir)
        if as_json:
            render.print_json(out, render.status_json(st))
        else:
            render.print_status(out, st)
        return
    runs = sorted(p for p in Path("runs").glob("*") if (p / "config.yaml").is_file())
    rows = [runner.status(p) for p in runs]
    if as_json:
        render.print_json(out, [render.status_json(s) for s in rows])
    else:
        render.print_runs(out, rows)
