"""``teachloop criteria``: mine quality criteria from preference pairs, and distil them into a scorer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

criteria_app = typer.Typer(no_args_is_help=True, help="Mine quality criteria (CritiQ) and distil a scorer.")
out = Console(markup=False)  # criteria come from an LLM: text, never markup


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


@criteria_app.command("mine")
def mine_command(
    pairs: Annotated[Path, typer.Option(help="preference pairs, JSONL (docs/criteria.md)")],
    out_dir: Annotated[Path, typer.Option("--out", help="where criteria.json, traces and the cache go")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML config (teacher.* is used)")
    ] = None,
    teacher_base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint of the judge")
    ] = None,
    teacher_model: Annotated[str | None, typer.Option(help="judge / manager model name")] = None,
    manager: Annotated[
        str | None, typer.Option(help="openai (LLM proposes and revises) or heuristic (seed library only)")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="seed of the mining / held-out split")] = None,
    set_: Annotated[
        list[str], typer.Option("--set", help="any config value, e.g. teacher.criteria.votes=2")
    ] = [],  # noqa: B006
) -> None:
    """Mine criteria with a manager and workers (CritiQ), report them on held-out pairs.

    Rerunning on the same --out continues a stopped mining or prints the finished result."""
    from teachloop.agents.preferences import load_pairs
    from teachloop.cli import _parse_pairs
    from teachloop.core.config import build_config, load_config_file, merge
    from teachloop.core.criteria_graph import mine
    from teachloop.core.errors import ConfigError
    from teachloop.core.llm import Teacher
    from teachloop.core.llm_cache import ResponseCache
    from teachloop.core.runner import check_teacher
    from teachloop.core.traces import Tracer

    overrides: dict[str, Any] = _parse_pairs(set_, "--set")
    teacher = overrides.setdefault("teacher", {})
    teacher.setdefault("criteria", {})["pairs"] = str(pairs)
    if manager is not None:
        teacher["criteria"]["manager"] = manager
    llm = {k: v for k, v in {"base_url": teacher_base_url, "model": teacher_model}.items() if v is not None}
    teacher.setdefault("llm", {}).update(llm)
    if seed is not None:
        overrides["seed"] = seed
    cfg = build_config(merge(load_config_file(config) if config else {}, overrides))
    loaded = load_pairs(pairs)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "criteria_state.sqlite").exists():
        raise ConfigError(f"{out_dir} already holds other files; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / ".writable").touch()
        (out_dir / ".writable").unlink()
    except OSError as err:
        raise ConfigError(f"cannot write to {out_dir}: {err.strerror or err}") from None
    check_teacher(cfg)
    settings = cfg.teacher.llm
    with Tracer(out_dir / "traces.sqlite") as tracer:
        cache = ResponseCache(settings.cache_path or out_dir / "llm_cache.sqlite") if settings.cache else None
        client = Teacher(settings, cfg.llm_roles, tracer, cache)
        try:
            report = mine(loaded, cfg.teacher.criteria, client, out_dir, cfg.seed)
        finally:
            client.close()
    table = Table(
        title=f"criteria mined on {report.mining_pairs} pairs, reported on {report.held_out_pairs} more"
    )
    for column in ("criterion", "status", "mining", "held out", "description"):
        table.add_column(column)
    for c in report.criteria:
        table.add_row(
            c.criterion.name, c.status, _pct(c.accuracy), _pct(c.held_out_accuracy), c.criterion.description
        )
    out.print(table)
    out.print(
        f"held-out agreement with the people: combined criteria {_pct(report.combined_held_out)}, "
        f"plain 'which is better' prompt {_pct(report.plain_held_out)}; dropped: "
        f"{', '.join(d['criterion']['name'] for d in report.dropped) or 'none'}",
        soft_wrap=True,
    )
    out.print(f"-> {out_dir / 'criteria.json'}", soft_wrap=True)
