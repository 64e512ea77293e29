"""A trainer's steps as live progress: step of N, loss, rows per second and time left.

transformers calls the callback on every process of a distributed job; only the main one
reports, so a step is counted once however many GPUs train it.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from teachloop.tracing.progress import report


class ProgressCallback(TrainerCallback):
    """Reports ``<trainer> steps`` after every logged step (the stages log every step)."""

    def __init__(self, trainer: str) -> None:
        self.task = f"{trainer} steps"
        self._start = time.perf_counter()

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._start = time.perf_counter()
        if state.is_world_process_zero:
            report(self.task, 0, state.max_steps)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        step, total = state.global_step, state.max_steps
        rows = step * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        report(
            self.task,
            step,
            total,
            loss=round(float(logs["loss"]), 4),
            rows_per_s=round(rows / elapsed, 1),
            eta_s=round(elapsed / max(step, 1) * (total - step), 1),
        )
