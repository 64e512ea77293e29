"""The ``teachloop`` command line.

Errors a user can fix print one line on stderr and exit with code 2; nothing is written first.
A run stopped by a full disk or memory exits with code 3 and one line; it resumes once that is fixed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from teachloop.cli.common import parse_pairs, quiet_libraries
from teachloop.cli.criteria import criteria_app
from teachloop.cli.reviser import reviser_app
from teachloop.foundation.errors import ResourceError, TeachloopError
from teachloop.reports.inspector import inspect_app, report_command

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Teacher agents that find what a small language model is bad at, make data for it, and train it.",
)
envs_app = typer.Typer(no_args_is_help=True, help="List and show environments.")
app.add_typer(envs_app, name="envs")
app.add_typer(inspect_app, name="inspect")
app.command("report")(report_command)
app.add_typer(reviser_app, name="reviser")
app.add_typer(criteria_app, name="criteria")

out = Console(markup=False)  # names and paths from users are text, never markup
err = Console(stderr=True)


def _progress(node: str, round_: int, phase: str, seconds: float | None) -> None:
    if phase == "start":
        err.print(f"[dim]round {round_}[/dim]  {node:<9} …", highlight=False)
    else:
        err.print(
            f"[dim]round {round_}[/dim]  {node:<9} [green]done[/green] in {seconds:.1f}s", highlight=False
        )


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _accuracy_table(summary: dict[str, Any], split: str) -> Table:
    rounds = [r for r in summary["rounds"] if split in r]
    table = Table(title=f"{split} accuracy by round ({summary['run_id']})")
    table.add_column("skill")
    for r in rounds:
        table.add_column(f"round {r['round']}", justify="right")
    skills = sorted({s for r in rounds for s in r[split]["skills"]})
    for skill in skills:
        cells = []
        for r in rounds:
            m = r[split]["skills"].get(skill)
            cells.append(f"{_pct(m['accuracy'])} ({m['solved']}/{m['n']})" if m else "-")
        table.add_row(skill, *cells)
    table.add_row(
        "all (95% CI)",
        *[
            f"{_pct(r[split]['accuracy'])} [{_pct(r[split]['ci95'][0])}-{_pct(r[split]['ci95'][1])}]"
            for r in rounds
        ],
        style="bold",
    )
    return table


def _closing(summary: dict[str, Any], run_dir: Path) -> None:
    if summary["rounds"]:
        out.print(_accuracy_table(summary, "test"))
    status = summary["status"]
    reason = f": {summary['stop_reason']}" if summary.get("stop_reason") else ""
    out.print(f"{status}{reason} · {summary['total_seconds']:.0f}s · {run_dir}")


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    env: Annotated[str | None, typer.Option(help="environment name (teachloop envs list)")] = None,
    env_option: Annotated[list[str], typer.Option("--env-option", help="environment option key=value")] = [],  # noqa: B006
    student: Annotated[str | None, typer.Option(help="student alias or local model directory")] = None,
    rounds: Annotated[int | None, typer.Option(help="training rounds")] = None,
    policy: Annotated[str | None, typer.Option(help="deficit, uniform or bandit")] = None,
    samples_per_round: Annotated[int | None, typer.Option(help="training samples made per round")] = None,
    seed: Annotated[int | None, typer.Option(help="seed for splits, data and training")] = None,
    teacher: Annotated[
        str | None,
        typer.Option(
            help="brain of every agent role: heuristic or openai (openai also makes the policy llm "
            "unless one is given); per role: --set teacher.brains.diagnoser=openai"
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
) -> None:
    """Run an improvement loop: evaluate, diagnose, plan, generate, revise, score, select, train; repeat."""
    from teachloop.loop import runner
    from teachloop.loop.config import build_config, load_config_file, merge

    base = load_config_file(config) if config else {}
    overrides: dict[str, Any] = parse_pairs(set_, "--set")
    flat = {"env": env, "student": student, "rounds": rounds, "policy": policy, "seed": seed}
    overrides.update({k: v for k, v in flat.items() if v is not None})
    if env_option:
        overrides["env_options"] = parse_pairs(env_option, "--env-option")
    if samples_per_round is not None:
        overrides.setdefault("teacher", {})["samples_per_round"] = samples_per_round
    if teacher is not None:
        overrides.setdefault("teacher", {})["brain"] = teacher
    if trainer is not None:
        overrides.setdefault("train", {})["trainer"] = trainer
    llm = {"base_url": teacher_base_url, "model": teacher_model}
    if any(v is not None for v in llm.values()):
        overrides.setdefault("teacher", {}).setdefault("llm", {}).update(
            {k: v for k, v in llm.items() if v is not None}
        )
    merged = merge(base, overrides)
    if teacher == "openai":
        merged.setdefault("policy", "llm")
    cfg = build_config(merged)
    quiet_libraries()
    prepared = runner.prepare(cfg, run_dir)
    err.print(f"run directory: {prepared.store.root}")
    _closing(runner.start(prepared, _progress), prepared.store.root)


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(help="a run directory")]) -> None:
    """Continue a stopped or killed run from its last checkpoint."""
    from teachloop.loop import runner

    quiet_libraries()
    _closing(runner.resume(run_dir, _progress), run_dir)


@app.command()
def status(
    run_dir: Annotated[Path | None, typer.Argument(help="a run directory (default: list ./runs)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a run's progress and accuracy by round, or list the runs under ./runs."""
    from teachloop.loop import runner

    if run_dir is not None:
        st = runner.status(run_dir)
        if as_json:
            out.print_json(json.dumps({**st.summary, "next": list(st.next_nodes)}))
            return
        if st.summary["rounds"]:
            out.print(_accuracy_table(st.summary, "test"))
        where = f"next: {', '.join(st.next_nodes)}" if st.next_nodes else "finished"
        out.print(f"{st.summary['status']} · {where} · {st.summary['total_seconds']:.0f}s")
        return
    runs = sorted(p for p in Path("runs").glob("*") if (p / "config.yaml").is_file())
    rows = [runner.status(p) for p in runs]
    if as_json:
        out.print_json(json.dumps([{**s.summary, "next": list(s.next_nodes)} for s in rows]))
        return
    table = Table(title="runs")
    for col in ("run", "status", "rounds", "test accuracy", "seconds"):
        table.add_column(col)
    for st in rows:
        tested = [r for r in st.summary["rounds"] if "test" in r]
        acc = " → ".join(_pct(r["test"]["accuracy"]) for r in tested) or "-"
        table.add_row(
            str(st.root),
            st.summary["status"],
            str(max(0, len(tested) - 1)),
            acc,
            f"{st.summary['total_seconds']:.0f}",
        )
    out.print(table)


@envs_app.command("list")
def envs_list() -> None:
    """Installed environments (entry point group teachloop.environments); a broken plug-in says why."""
    from teachloop.environments.registry import environment_entry_points, plugin_info

    for name, ep in sorted(environment_entry_points().items()):
        info = plugin_info(name, ep)
        out.print(
            f"{info.name}  ({info.package})  {info.loader}", highlight=False, markup=False, soft_wrap=True
        )
        about = f"BROKEN: {info.error}" if info.error else info.description
        out.print(
            f"    {about}", highlight=False, markup=False, soft_wrap=True, style="red" if info.error else None
        )


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


@envs_app.command("show")
def envs_show(
    name: str,
    env_option: Annotated[list[str], typer.Option("--env-option", help="environment option key=value")] = [],  # noqa: B006
) -> None:
    """An environment's skills, split sizes at the default config, whether it generates tasks, and a sample."""
    from teachloop.environments.base import TaskGenerator
    from teachloop.environments.registry import load_environment
    from teachloop.evals.config import EvalConfig

    env = load_environment(name, parse_pairs(env_option, "--env-option"))
    sizes = EvalConfig()
    dev = env.tasks("dev", sizes.dev_per_skill, 0)
    test = env.tasks("test", sizes.test_per_skill, 0)
    table = Table(title=f"environment {env.name}")
    table.add_column("skill", no_wrap=True)
    for col in ("levels", "eval at", "dev", "test", "description"):
        table.add_column(col)
    for s in env.skills:
        n_dev = sum(t.skill == s.name for t in dev)
        n_test = sum(t.skill == s.name for t in test)
        levels = f"{s.min_difficulty}-{s.max_difficulty}"
        table.add_row(s.name, levels, str(s.eval_difficulty), str(n_dev), str(n_test), s.description)
    out.print(table)
    out.print(
        f"splits at the default sizes ({sizes.dev_per_skill} dev, {sizes.test_per_skill} test per skill): "
        f"{len(dev)} dev, {len(test)} test tasks",
        highlight=False,
    )
    generator = "yes (the heuristic teacher can make data)" if isinstance(env, TaskGenerator) else "no"
    out.print(f"task generator: {generator}", highlight=False)
    sample = dev[0]
    out.print(f"sample task ({sample.skill}):", highlight=False)
    for message in env.prompt(sample):
        out.print(f"  [{message.role}] {_clip(message.content)}", highlight=False, markup=False)
    out.print(f"  [gold answer] {_clip(sample.answer)}", highlight=False, markup=False)


def main() -> None:
    try:
        app(standalone_mode=False)
    except ResourceError as e:  # out of memory or disk: the run is resumable once that is fixed
        _fail(str(e), code=3)
    except TeachloopError as e:
        _fail(str(e))
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted; continue with 'teachloop resume RUN_DIR'", highlight=False)
        sys.exit(130)
    except typer.TyperException as e:  # usage errors: unknown option, a value of the wrong type
        _fail(e.format_message() if hasattr(e, "format_message") else str(e))


def _fail(message: str, code: int = 2) -> None:
    # one line whatever the message quotes: a newline or control character in a user's key or
    # file becomes its escape (\\n, \\x1e) instead of breaking the line
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    err.print(f"error: {line}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(code)
