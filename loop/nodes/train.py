"""rollout and train: the student's own samples for DPO/GRPO, then the round's training stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teachloop.agents.engine import derived_seed
from teachloop.agents.selector import SelectedSample
from teachloop.loop.context import LoopContext
from teachloop.loop.nodes.common import (
    current_plan,
    load_current_student,
    memory_hint,
)
from teachloop.loop.state import LoopState
from teachloop.tracing.tracking import trainer_logging
from teachloop.training.config import Trainer
from teachloop.training.generation import TokenUsage
from teachloop.training.job import TRAINER_CLASSES, build_job, clear_outputs, run_stage, stage_metrics
from teachloop.training.launch import launch_job
from teachloop.training.rollouts import (
    Rollout,
    dpo_rows,
    grpo_rows,
    rollout_counts,
    sample_rollouts,
)


def needs_rollouts(state: LoopState) -> bool:
    """Whether this round's plan gives any skill data for DPO or GRPO (which need the student's samples)."""
    return any(a.trainer != "sft" and a.n > 0 for a in current_plan(state).allocations)


def rollout_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """The student samples each selected task of a DPO/GRPO skill; the verdicts make the DPO pairs
    and GRPO prompts (rollouts.parquet, dpo.parquet, grpo.parquet). See training/rollouts.py."""
    plan = current_plan(state)
    trainers = {a.skill: a.trainer for a in plan.allocations}
    selected = ctx.store.read_models(ctx.store.round(plan.round).selected, SelectedSample)
    todo = [(s.task, trainers[s.task.skill]) for s in selected if trainers.get(s.task.skill, "sft") != "sft"]
    cfg = ctx.config
    model, tokenizer = load_current_student(ctx, state)
    inputs = {
        "tasks": len(todo),
        "dpo_samples": cfg.train.dpo.samples,
        "grpo_probe": cfg.train.grpo.probe_samples,
    }
    with (
        memory_hint(ctx, plan.round, "sampling rollouts", "eval.batch_size", cfg.eval.batch_size),
        ctx.tracer.span("tool", "student.rollout", inputs=inputs) as sp,
    ):
        usage = TokenUsage()
        rollouts = sample_rollouts(
            model,
            tokenizer,
            ctx.env,
            todo,
            cfg.train,
            max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            seed=derived_seed(cfg.seed, plan.round, "rollout"),
            usage=usage,
        )
        sp.add_tokens(usage.prompt_tokens, usage.completion_tokens)
        sp.outputs = rollout_counts(rollouts)
    ctx.store.write_models(ctx.store.round(plan.round).rollouts, rollouts)
    ctx.store.write_rows(ctx.store.round(plan.round).rows("dpo"), dpo_rows(ctx.env, rollouts))
    ctx.store.write_rows(ctx.store.round(plan.round).rows("grpo"), grpo_rows(ctx.env, rollouts))
    return {}


def train_node(state: LoopState, ctx: LoopContext) -> dict[str, Any]:
    """Train the round's stages in order (SFT, DPO, GRPO; see training/job.py), in this process
    or under ``accelerate launch`` (train.launcher)."""
    round_ = current_plan(state).round
    paths = ctx.store.round(round_)
    cfg = ctx.config
    rows: dict[Trainer, tuple[Path, int]] = {}
    rollouts_path = paths.rollouts
    rollouts = ctx.store.read_models(rollouts_path, Rollout) if rollouts_path.exists() else []
    taken = [r.task.id for r in rollouts if r.use != "sft"]
    sft_path = paths.rows("sft")
    rows["sft"] = (sft_path, len(ctx.store.read_dataset(sft_path)) - len(taken))
    for trainer in ("dpo", "grpo"):
        if rollouts:
            path = paths.rows(trainer)
            rows[trainer] = (path, len(ctx.store.read_dataset(path)))
    settings = cfg.train.for_round(round_)
    job = build_job(
        Path(state["student"]),
        paths,
        rows,
        taken,
        settings,
        derived_seed(cfg.seed, round_),
        cfg.env,
        cfg.env_options,
    )
    if not job.stages:  # e.g. a finite training pool the earlier rounds used up: keep the student
        ctx.store.write_json(job.result, {"rows": 0.0})
        return {"round": round_, "student": state["student"]}
    clear_outputs(job)
    job_path = paths.train_job
    with trainer_logging(ctx.tracking, round_):  # TRL logs to the tracked run (report_to)
        if settings.launcher == "accelerate":
            launched = {"stages": [s.trainer for s in job.stages], "config": str(settings.accelerate_config)}
            with ctx.tracer.span("tool", "accelerate.launch", inputs=launched) as sp:
                metrics = launch_job(
                    job,
                    job_path,
                    settings.accelerate_config,
                    settings.accelerate_args,
                    paths.train_log,
                )
                sp.outputs = metrics
        else:
            ctx.store.write_json(job_path, job.model_dump(mode="json"))
            metrics = {}
            for index, stage in enumerate(job.stages):
                inputs: dict[str, Any] = {
                    "rows": stage.rows,
                    "student": str(job.start_of(index)),
                    "out": str(stage.out),
                    "learning_rate": settings.stage_learning_rate(stage.trainer),
                    **settings.model_dump(include={"epochs", "batch_size", "lora", "lr_scheduler"}),
                }
                with (
                    memory_hint(ctx, round_, "training", "train.batch_size", settings.batch_size),
                    ctx.tracer.span("tool", f"trl.{TRAINER_CLASSES[stage.trainer]}", inputs=inputs) as sp,
                ):
                    part = stage_metrics(stage, run_stage(job, index, ctx.env))
                    sp.outputs = part
                metrics |= part
            ctx.store.write_json(job.result, metrics)
    return {"round": round_, "student": str(paths.model)}
