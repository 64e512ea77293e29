"""``teachloop export RUN_DIR --out DIR``: a run's training data as a Hugging Face dataset (and
JSONL) with provenance per row and a dataset card, and its improved student with a model card
(:mod:`teachloop.reports.export`); ``--push-to-hub REPO`` uploads both.

Everything is checked before anything is written: an unfinished run (without ``--allow-partial``),
an export directory that is not empty, or a Hub repository id or token that cannot work is one
line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from teachloop.cli.common import out, quiet_libraries
from teachloop.foundation.errors import ConfigError


def export(
    run_dir: Annotated[Path, typer.Argument(help="a run directory")],
    dest: Annotated[Path, typer.Option("--out", "-o", help="an empty or new directory to write to")],
    allow_partial: Annotated[
        bool, typer.Option("--allow-partial", help="export an unfinished run's data and latest student")
    ] = False,
    model: Annotated[
        str, typer.Option(help="which student: final (the one the run ended with) or best (by dev accuracy)")
    ] = "final",
    push_to_hub: Annotated[
        str | None,
        typer.Option(help="also upload to this Hub dataset repo (namespace/name; the model to NAME-model)"),
    ] = None,
) -> None:
    """Export a run's training data (datasets + JSONL, with provenance and a card) and its student."""
    from teachloop.environments.registry import load_environment
    from teachloop.loop.config import load_saved_config
    from teachloop.reports import export as exporter
    from teachloop.reports.rundata import RunData

    if model not in ("final", "best"):
        raise ConfigError(f"--model must be final or best, not {model!r}")
    if push_to_hub is not None:
        exporter.check_hub_repo(push_to_hub)
    run = RunData(run_dir)
    config = load_saved_config(run.store.config_path)
    env = load_environment(config.env, config.env_options)
    quiet_libraries()
    result = exporter.export_run(
        run,
        dest,
        lambda task: env.score(task, task.answer).reward,
        allow_partial=allow_partial,
        model="final" if model == "final" else "best",
    )
    student = f"; student of round {result.model_round} in {dest / 'model'}" if result.model_round else ""
    out.print(f"exported {result.rows} rows of rounds {result.rounds} to {dest}{student}", soft_wrap=True)
    if push_to_hub is not None:
        exporter.push_to_hub(result, push_to_hub)
        out.print(f"pushed to https://huggingface.co/datasets/{push_to_hub}", soft_wrap=True)
