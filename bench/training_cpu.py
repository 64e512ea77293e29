"""CPU benchmark of the batching and precision choices the loop makes, with the real student.

    python bench/training_cpu.py [--eval-items 120] [--sft-rows 96] [--out bench-training-cpu.json]
    python bench/training_cpu.py --paths-only [--path-rows 480] [--path-steps 6]

1. Evaluation: the default dev split (reasoning-basics, 24 items per skill) answered with the
   loop's batched generation (``eval.batch_size`` prompts per ``generate`` call, sorted by
   length) against one ``generate`` call per item; both greedy, same outputs expected.
2. SFT: TRL's SFTTrainer over the same rows (the loop's prompt/completion rows for tasks of every
   default skill) with length-grouped batches (what the loop uses) against plain random batches.
3. Precision: batched evaluation in float32 against bf16, the choice ``auto`` (``eval.dtype``,
   ``train.bf16``) makes from whether the CPU computes bf16 natively; with ``--sft-bf16`` grouped
   SFT too (on a CPU that emulates bf16 one SFT step took minutes: leave it off there).
4. SFT paths on a round's worth of rows (480, the default budget): today's padded, length-grouped
   batches against padding-free ones (``train.padding_free``), each for the same first steps:
   trained tokens per second, the padding share (over the whole epoch), and the useful tokens'
   FLOP rate (6 x the non-embedding parameters per token) as a share of a 2048x2048 matmul's rate
   in the training dtype, measured in the same run.

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
from transformers import PrinterCallback

from teachloop.environments.base import Task, TaskGenerator
from teachloop.environments.registry import load_environment
from teachloop.evals.config import EvalConfig
from teachloop.training.config import TrainConfig
from teachloop.training.generation import TokenUsage, generate
from teachloop.training.sft import sft_trainer
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


def _token_counts(batch: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(real, trained) tokens of a batch; a padding-free batch is one flattened sequence of real tokens."""
    mask = batch.get("attention_mask")
    trained = batch["input_ids"].numel()
    return (trained if mask is None else int(mask.sum())), trained


def bench_sft(student: Path, n_rows: int, batch_size: int, with_bf16: bool) -> dict[str, Any]:
    rows = sft_rows(n_rows)
    settings = TrainConfig(batch_size=batch_size, epochs=1.0, bf16=False)
    train_rows(student, rows[:batch_size], settings)  # warm-up
    result: dict[str, Any] = {"rows": len(rows), "batch_size": batch_size}
    result["grouped"] = train_rows(student, rows, settings)
    result["plain"] = train_rows(student, rows, settings, grouped=False)
    result["speedup"] = result["grouped"]["rows_per_s"] / result["plain"]["rows_per_s"]
    if with_bf16:
        bf16 = settings.model_copy(update={"bf16": True})
        result["grouped_bf16"] = train_rows(student, rows, bf16)
        result["bf16_speedup"] = result["grouped_bf16"]["rows_per_s"] / result["grouped"]["rows_per_s"]
    return result


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """The machine's dense matmul rate in ``dtype``: the roofline a training step is compared with."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def train_rows(
    student: Path,
    rows: list[dict[str, Any]],
    settings: TrainConfig,
    grouped: bool = True,
    steps: int | None = None,
) -> dict[str, float]:
    """SFT on ``rows`` as the loop batches them under ``settings``: one epoch, or its first ``steps``."""
    model, tokenizer = load_student(student)
    model.train()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = sft_trainer(
            model, tokenizer, Dataset.from_list(rows), settings, Path(tmp), seed=0, group_by_length=grouped
        )
        trainer.remove_callback(PrinterCallback)
        counts = [_token_counts(batch) for batch in trainer.get_train_dataloader()]
        if steps is not None:
            trainer.args.max_steps = steps
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    useful, trained = (sum(c[i] for c in counts[:steps]) for i in (0, 1))
    params = sum(p.numel() for name, p in model.named_parameters() if "embed" not in name)
    return {
        "seconds": seconds,
        "rows_per_s": (len(rows) if steps is None else steps * settings.batch_size) / seconds,
        "trained_tokens": trained,
        "useful_tokens": useful,
        "padding_share": 1 - sum(c[0] for c in counts) / sum(c[1] for c in counts),
        "trained_tokens_per_s": trained / seconds,
        "useful_tokens_per_s": useful / seconds,
        "useful_gflops": 6 * params * useful / seconds / 1e9,
    }


def bench_paths(student: Path, n_rows: int, steps: int) -> dict[str, Any]:
    """Padded (length-grouped) against padding-free SFT, in alternation, in the loop's training dtype."""
    rows = sft_rows(n_rows)
    dtype = weights_dtype("auto", "cpu")
    bf16 = dtype == "bfloat16"
    padded = TrainConfig(bf16=bf16)
    free = padded.model_copy(update={"padding_free": True})
    train_rows(student, rows, padded, steps=1)  # warm-up
    result: dict[str, Any] = {"rows": n_rows, "steps": steps, "dtype": dtype}
    result["matmul_gflops"] = matmul_gflops(getattr(torch, dtype))
    result["padded"] = train_rows(student, rows, padded, steps=steps)
    result["padding_free"] = train_rows(student, rows, free, steps=steps)
    for name in ("padded", "padding_free"):
        result[name]["roofline_share"] = result[name]["useful_gflops"] / result["matmul_gflops"]
    result["speedup"] = result["padded"]["seconds"] / result["padding_free"]["seconds"]
    return result


def print_paths(p: dict[str, Any]) -> None:
    print(
        f"| SFT path ({p['rows']} rows, first {p['steps']} steps, {p['dtype']}) | padded, grouped | padding-free |"
    )
    print("|---|---|---|")
    for key, label, fmt in (
        ("seconds", "seconds", "{:.1f}"),
        ("padding_share", "padding share of the round's trained tokens", "{:.1%}"),
        ("trained_tokens_per_s", "trained tokens/s", "{:.0f}"),
        ("useful_tokens_per_s", "useful tokens/s", "{:.0f}"),
        ("useful_gflops", "useful GFLOP/s", "{:.1f}"),
        ("roofline_share", f"share of the {p['matmul_gflops']:.0f} GFLOP/s matmul roofline", "{:.0%}"),
    ):
        print(f"| {label} | {fmt.format(p['padded'][key])} | {fmt.format(p['padding_free'][key])} |")
    print(f"padding-free speed-up: {p['speedup']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eval-items", type=int, default=None, help="dev items (default: the whole split)")
    parser.add_argument("--sft-rows", type=int, default=96)
    parser.add_argument("--sft-batch-size", type=int, default=16)
    parser.add_argument("--sft-bf16", action="store_true", help="also time grouped SFT in bf16")
    parser.add_argument(
        "--path-rows", type=int, default=480, help="rows for the SFT paths (a round's budget)"
    )
    parser.add_argument("--path-steps", type=int, default=6, help="SFT steps timed per path")
    parser.add_argument("--paths-only", action="store_true", help="only the padded/padding-free comparison")
    parser.add_argument("--out", type=Path, default=Path("bench-training-cpu.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    student = resolve_student(DEFAULT_STUDENT)
    paths = bench_paths(student, args.path_rows, args.path_steps)
    print_paths(paths)
    if args.paths_only:
        args.out.write_text(json.dumps({"threads": torch.get_num_threads(), "sft_paths": paths}, indent=2))
        return
    eval_settings = EvalConfig()
    dev = load_environment("reasoning-basics").tasks("dev", eval_settings.dev_per_skill, seed=0)
    evaluation = bench_eval(student, dev[: args.eval_items], eval_settings)
    print(f"eval: {json.dumps(evaluation)}", flush=True)  # partial result, should SFT be cut short
    sft = bench_sft(student, args.sft_rows, args.sft_batch_size, args.sft_bf16)
    report = {"threads": torch.get_num_threads(), "eval": evaluation, "sft": sft, "sft_paths": paths}
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
