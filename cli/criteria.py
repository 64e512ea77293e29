"""``teachloop criteria mine``, ``show`` and ``distill``: mine quality criteria from people's
preference pairs, look at what was mined, and distil the criteria into a reward model.

The loop can then judge its training data by criteria people agree with (or by the distilled
scorer, without LLM calls). Tables and result lines are drawn by :mod:`teachloop.cli.render`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from teachloop.cli import render
from teachloop.cli.common import out, parse_pairs, quiet_libraries

criteria_app = typer.Typer(no_args_is_help=True, help="Mine quality criteria (CritiQ) and distil a scorer.")


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
    from teachloop.criteria.graph import REPORT_FILE, STATE_FILE, mine
    from teachloop.criteria.pairs import load_pairs
    from teachloop.foundation.errors import ConfigError
    from teachloop.loop.config import build_config, load_config_file, merge
    from teachloop.loop.runner import check_teacher, teacher_client
    from teachloop.tracing.spans import Tracer

    overrides: dict[str, Any] = parse_pairs(set_, "--set")
    teacher = overrides.setdefault("teacher", {})
    teacher.setdefault("criteria", {})["pairs"] = str(pairs)
    if manager is not None:
        teacher.setdefault("brains", {})["criteria_manager"] = manager
    llm = {k: v for k, v in {"base_url": teacher_base_url, "model": teacher_model}.items() if v is not None}
    teacher.setdefault("llm", {}).update(llm)
    if seed is not None:
        overrides["seed"] = seed
    cfg = build_config(merge(load_config_file(config) if config else {}, overrides))
    loaded = load_pairs(pairs)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / STATE_FILE).exists():
        raise ConfigError(f"{out_dir} already holds other files; choose another --out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / ".writable").touch()
        (out_dir / ".writable").unlink()
    except OSError as err:
        raise ConfigError(f"cannot write to {out_dir}: {err.strerror or err}") from None
    check_teacher(cfg)
    with Tracer(out_dir / "traces.sqlite") as tracer, teacher_client(cfg, out_dir, tracer) as client:
        assert client is not None  # pairs are set, so the criteria workers think with the LLM
        brain = cfg.teacher.brains.criteria_manager
        report = mine(loaded, cfg.teacher.criteria, client, out_dir, cfg.seed, manager=brain)
    render.print_criteria_report(out, report, out_dir / REPORT_FILE)


@criteria_app.command("show")
def show_command(
    path: Annotated[Path, typer.Argument(help="a criteria.json, or a run directory that mined criteria")],
) -> None:
    """Print mined criteria: status, accuracy on the mining and held-out pairs, what was dropped."""
    from teachloop.criteria.graph import CRITERIA_DIR, REPORT_FILE, load_report

    file = path / CRITERIA_DIR / REPORT_FILE if path.is_dir() else path
    render.print_criteria_report(out, load_report(file), file)


@criteria_app.command("distill")
def distill_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="runs whose samples the criteria judge scored")],
    out_dir: Annotated[Path, typer.Option("--out", help="where the reward model is saved")],
    pairs: Annotated[
        Path | None, typer.Option(help="human preference pairs to check the scorer against (not trained on)")
    ] = None,
    base: Annotated[str, typer.Option(help="base model: a student alias or a local model directory")] = (
        "smollm2-135m-instruct"
    ),
    min_gap: Annotated[
        float, typer.Option(help="least criteria-score gap between chosen and rejected")
    ] = 0.25,
    held_out: Annotated[float, typer.Option(help="share of criteria-labelled pairs kept to check on")] = 0.2,
    epochs: Annotated[float, typer.Option(help="passes over the pairs")] = 3.0,
    learning_rate: Annotated[float, typer.Option(help="peak learning rate")] = 1e-4,
    batch_size: Annotated[int, typer.Option(help="pairs per step")] = 8,
    max_length: Annotated[int, typer.Option(help="tokens per text; longer pairs are left out")] = 256,
    model_cache: Annotated[Path | None, typer.Option(help="where converted base models are cached")] = None,
    seed: Annotated[int, typer.Option(help="training and split seed")] = 0,
) -> None:
    """Train a reward model (TRL RewardTrainer, Bradley-Terry) on pairs the mined criteria labelled;
    set teacher.criteria.scorer to it and the loop scores samples without LLM calls."""
    import random

    from teachloop.criteria.distill import (
        RewardScorer,
        RewardSettings,
        distillation_pairs,
        pairwise_accuracy,
        sample_text,
        train_reward_model,
    )
    from teachloop.criteria.pairs import load_pairs
    from teachloop.foundation.errors import ConfigError
    from teachloop.foundation.files import atomic_write_json
    from teachloop.training.student import resolve_student

    if out_dir.exists():
        raise ConfigError(f"{out_dir} already exists; choose another --out")
    human = load_pairs(pairs) if pairs else []
    labelled = distillation_pairs(_criteria_scored(run_dirs), min_gap)
    if len(labelled) < 2:
        raise ConfigError(
            f"{len(labelled)} criteria-labelled pair(s) in {', '.join(map(str, run_dirs))}: run the loop with "
            "teacher.criteria.pairs or teacher.criteria.file first, or lower --min-gap"
        )
    base_dir = resolve_student(base, model_cache)
    quiet_libraries()
    random.Random(seed).shuffle(labelled)
    n_check = min(len(labelled) - 1, round(len(labelled) * held_out))
    check, train = labelled[:n_check], labelled[n_check:]
    settings = RewardSettings(
        learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, max_length=max_length, seed=seed
    )
    metrics = train_reward_model(train, base_dir, out_dir, settings)
    scorer = RewardScorer.load(out_dir)
    result = {
        **metrics,
        "train_pairs": len(train),
        "held_out_pairs": len(check),
        "held_out_accuracy": pairwise_accuracy(scorer, check) if check else None,
        "human_pairs": len(human),
        "human_agreement": pairwise_accuracy(
            scorer,
            [(sample_text(**p.chosen.model_dump()), sample_text(**p.rejected.model_dump())) for p in human],
        )
        if human
        else None,
    }
    atomic_write_json(out_dir / "distill.json", result)
    render.print_distilled(out, result, out_dir)


def _criteria_scored(run_dirs: list[Path]) -> list[tuple[str, str, float]]:
    """(round and skill, sample text, criteria score) of every sample a judge scored in these runs."""
    from teachloop.agents.scorer import ScoredSample
    from teachloop.criteria.distill import sample_text
    from teachloop.foundation.errors import ConfigError
    from teachloop.tracing.store import RunStore

    scored = []
    for run_dir in run_dirs:
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{run_dir} is not a teachloop run directory (no config.yaml)")
        store = RunStore(run_dir)
        for path in sorted(run_dir.glob("rounds/*/scored.parquet")):
            for s in store.read_models(path, ScoredSample):
                if s.quality is not None:
                    t = s.task
                    scored.append(
                        (
                            f"{run_dir}:{path.parent.name}:{t.skill}",
                            sample_text(t.question, t.solution, t.answer),
                            s.quality,
                        )
                    )
    return scored
