"""``teachloop reviser train``: fine-tune a local CoachLM reviser on the (raw, revised) pairs runs kept.

A local reviser improves generated samples without calls to a hosted LLM; serve it and point
``teacher.llm.endpoints.reviser`` at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from teachloop.cli import render
from teachloop.cli.common import out, quiet_libraries
from teachloop.training.config import TrainConfig

reviser_app = typer.Typer(no_args_is_help=True, help="Train a local CoachLM reviser on stored revisions.")


@reviser_app.command("train")
def train(
    run_dirs: Annotated[list[Path], typer.Argument(help="run directories whose kept revisions to train on")],
    out_dir: Annotated[Path, typer.Option("--out", help="where the trained reviser is saved")],
    base: Annotated[
        str, typer.Option(help="base model: a student alias or a local model directory")
    ] = "smollm2-135m-instruct",
    epochs: Annotated[float, typer.Option(help="passes over the pairs")] = 2.0,
    learning_rate: Annotated[float, typer.Option(help="peak learning rate")] = 1e-4,
    batch_size: Annotated[int, typer.Option(help="pairs per step")] = 8,
    max_length: Annotated[int, typer.Option(help="tokens per pair; longer ones are truncated")] = 1024,
    min_confidence: Annotated[float, typer.Option(help="least judge confidence of a pair")] = 0.0,
    model_cache: Annotated[Path | None, typer.Option(help="where converted base models are cached")] = None,
    seed: Annotated[int, typer.Option(help="training seed")] = 0,
) -> None:
    """Fine-tune a reviser with TRL SFT on the revisions runs kept; serve it and set
    teacher.llm.endpoints.reviser to use it."""
    from teachloop.agents.reviser_training import train_reviser
    from teachloop.training.student import resolve_student

    quiet_libraries()

    settings = TrainConfig(
        learning_rate=learning_rate,
        epochs=epochs,
        batch_size=batch_size,
        max_length=max_length,
    )
    metrics = train_reviser(
        run_dirs, resolve_student(base, model_cache), out_dir, settings, min_confidence, seed
    )
    render.print_reviser_trained(out, metrics, out_dir)
