"""CPU benchmark of the batching and precision choices the loop makes, with the real student.

    python bench/training_cpu.py [--eval-items 120] [--sft-rows 96] [--out bench-training-cpu.json]

1. Evaluation: the default dev split (reasoning-basics, 24 items per skill) answered with the
   loop's batched generation (``eval.batch_size`` prompts per ``generate`` call, sorted by
   length) against one ``generate`` call per item; both greedy, same outputs expected.
2. SFT: TRL's SFTTrainer over the same rows (the loop's prompt/completion rows for tasks of every
   default skill) with length-grouped batches (what the loop uses) against plain random batches.
3. Precision: batched evaluation in float32 against bf16, the choice ``auto`` (``eval.dtype``,
   ``train.bf16``) makes from whether the CPU computes bf16 natively; with ``--sft-bf16`` grouped
   SFT too (on a CPU that emulates bf16 one SFT step took minutes: leave it off there).

Other jobs may share the CPU, so the ratios are the figures to read, not the absolute speeds;
each side runs once, in alternation, after a warm-up. Prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from teachloop.environments.base import Task, TaskGenerator
from teachloop.environments.registry import load_environment
from teachloop.evals.config import EvalConfig
from teachloop.training.config import TrainConfig
from teachloop.training.generation import TokenUsage, generate
from teachloop.training.sft import AnswerOnlySFTTrainer, sft_config
from teachloop.training.student import DEFAULT_STUDENT, load_student, resolve_student, weights_dtype


def bench_eval(student: Path, tasks: list[Task], settings: EvalConfig) -> dict[str, Any]:
    env = load_environment("reasoning-basics")
    prompts = [env.prompt(t) for t in tasks]
    result: dict[str, Any] = {
        "items": len(tasks),
        "max_new_tokens": settings.max_new_tokens,
        "auto_dtype": weights_dtype("auto", "cpu"),
    }
    answers = {}
    runs = (
        ("batched", settings.batch_size, "float32"),
        ("one_at_a_time", 1, "float32"),
        ("batched_bf16", settings.batch_size, "bfloat16"),
    )
    for name, batch_size, dtype in runs:
        model, tokenizer = load_student(student, device="cpu", dtype=dtype)
        generate(model, tokenizer, prompts[:4], settings.max_new_tokens, batch_size=4)  # warm-up
        usage = TokenUsage()
        start = time.perf_counter()
        answers[name] = generate(
            model, tokenizer, prompts, settings.max_new_tokens, batch_size=batch_size, usage=usage
        )
        seconds = time.perf_counter() - start
        result[name] = {
            "batch_size": batch_size,
            "seconds": seconds,
            "items_per_s": len(tasks) / seconds,
            "new_tokens_per_s": usage.completion_tokens / seconds,
        }
    result["speedup"] = result["one_at_a_time"]["seconds"] / result["batched"]["seconds"]
    result["bf16_speedup"] = result["batched"]["seconds"] / result["batched_bf16"]["seconds"]
    result["same_answers"] = sum(
        a == b for a, b in zip(answers["batched"], answers["one_at_a_time"], strict=True)
    )
    return result


def sft_rows(n: int) -> list[dict[str, Any]]:
    """The loop's SFT rows for ``n`` tasks spread over the default skills (lengths vary by skill)."""
    env = load_environment("reasoning-basics")
    assert isinstance(env, TaskGenerator)  # the default environment generates its tasks
    per_skill = -(-n // len(env.skills))
    tasks = [t for s in env.skills for t in env.generate(s.name, per_skill, difficulty=1, seed=7)][:n]
    return [
        {
            "prompt": [m.model_dump() for m in env.prompt(t)],
            "completion": [{"role": "assistant", "content": t.answer}],
        }
        for t in tasks
    ]


def train_once(
    student: Path, rows: list[dict[str, Any]], settings: TrainConfig, grouped: bool
) -> dict[str, float]:
    model, tokenizer = load_student(student)
    model.train()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = AnswerOnlySFTTrainer(
            model=model,
            args=sft_config(settings, Path(tmp), seed=0, group_by_length=grouped),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
        loader = trainer.get_train_dataloader()
        real = padded = 0
        for batch in loader:
            mask = batch["attention_mask"]
            real += int(mask.sum())
            padded += mask.numel()
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows_per_s": len(rows) / seconds,
        "tokens_per_s": real / seconds,
        "padding_share": 1 - real / padded,
    }


def bench_sft(student: Path, n_rows: int, batch_size: int, with_bf16: bool) -> dict[str, Any]:
    rows = sft_rows(n_rows)
    settings = TrainConfig(batch_size=batch_size, epochs=1.0, bf16=False)
    train_once(student, rows[:batch_size], settings, grouped=True)  # warm-up
    result: dict[str, Any] = {"rows": len(rows), "batch_size": batch_size}
    result["grouped"] = train_once(student, rows, settings, grouped=True)
    result["plain"] = train_once(student, rows, settings, grouped=False)
    result["speedup"] = result["grouped"]["rows_per_s"] / result["plain"]["rows_per_s"]
    if with_bf16:
        bf16 = settings.model_copy(update={"bf16": True})
        result["grouped_bf16"] = train_once(student, rows, bf16, grouped=True)
        result["bf16_speedup"] = result["grouped_bf16"]["rows_per_s"] / result["grouped"]["rows_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval-items", type=int, default=None, help="dev items (default: the whole split)")
    parser.add_argument("--sft-rows", type=int, default=96)
    parser.add_argument("--sft-batch-size", type=int, default=16)
    parser.add_argument("--sft-bf16", action="store_true", help="also time grouped SFT in bf16")
    parser.add_argument("--out", type=Path, default=Path("bench-training-cpu.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    student = resolve_student(DEFAULT_STUDENT)
    eval_settings = EvalConfig()
    dev = load_environment("reasoning-basics").tasks("dev", eval_settings.dev_per_skill, seed=0)
    evaluation = bench_eval(student, dev[: args.eval_items], eval_settings)
    print(f"eval: {json.dumps(evaluation)}", flush=True)  # partial result, should SFT be cut short
    sft = bench_sft(student, args.sft_rows, args.sft_batch_size, args.sft_bf16)
    report = {"threads": torch.get_num_threads(), "eval": evaluation, "sft": sft}
    args.out.write_text(json.dumps(report, indent=2))
    e, s = evaluation, sft
    print("| measure (float32) | batched / grouped | one at a time / plain | ratio |")
    print("|---|---|---|---|")
    print(
        f"| eval, {e['items']} dev items, {e['max_new_tokens']} new tokens (items/s) | "
        f"{e['batched']['items_per_s']:.2f} | {e['one_at_a_time']['items_per_s']:.2f} | {e['speedup']:.1f}x |"
    )
    print(
        f"| SFT, {s['rows']} rows, batch {s['batch_size']} (rows/s) | {s['grouped']['rows_per_s']:.2f} | "
        f"{s['plain']['rows_per_s']:.2f} | {s['speedup']:.2f}x |"
    )
    print(
        f"| SFT padding share | {s['grouped']['padding_share']:.0%} | {s['plain']['padding_share']:.0%} | |"
    )
    print()
    print("| measure (batched / grouped) | float32 | bf16 | bf16 speed-up |")
    print("|---|---|---|---|")
    print(
        f"| eval (items/s) | {e['batched']['items_per_s']:.2f} | {e['batched_bf16']['items_per_s']:.2f} | "
        f"{e['bf16_speedup']:.2f}x |"
    )
    if "grouped_bf16" in s:
        print(
            f"| SFT (rows/s) | {s['grouped']['rows_per_s']:.2f} | {s['grouped_bf16']['rows_per_s']:.2f} | "
            f"{s['bf16_speedup']:.2f}x |"
        )
    print(f"auto precision on this CPU: {e['auto_dtype']}")
    print(
        f"eval answers identical in {e['same_answers']}/{e['items']} items; {report['threads']} torch threads"
    )


if __name__ == "__main__":
    main()
