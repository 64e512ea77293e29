"""CPU benchmark of the loop's training and evaluation paths, old and new side by side, with the real student.

    python bench/training_cpu.py [--path-rows 480] [--path-steps 8] [--loop 0 1 2] [--out F.json]
    python bench/training_cpu.py --choices [--eval-items 120] [--sft-rows 96] [--sft-bf16]

Default: the paths before and after issue 22 (``OLD_PATH``: SDPA attention while training,
the shared prompt prefix encoded with every batch; the new path is the default config), measured
in one run:

1. SFT on a round's worth of rows (480, the default budget), old, new, and new with whole-epoch
   length-sorted batches (``train.batching=sorted``) or padding-free ones, each for the same first steps: trained and useful tokens per second, the padding share
   (over the whole epoch), and the useful tokens' FLOP rate (6 x the non-embedding parameters per
   token) as a share of a 2048x2048 matmul's rate in the training dtype, measured in the same run.
2. Evaluation of the default dev and test splits (320 items) in the evaluation dtype, the shared
   prefix encoded per batch (old) or once (new): items per second, accuracy, identical answers.
3. With ``--loop SEEDS``: the README's default run (``teachloop run --seed S``) on the old path and
   on the new one, seed by seed: seconds per node and test accuracy after the last round.

``--choices`` runs the earlier comparisons instead (docs/training.md): batched evaluation against
one ``generate`` call per item, grouped against random SFT batches, float32 against bf16.

Other jobs may share the CPU, so the ratios are the figures to read, not the absolute speeds;
the sides run in alternation, after a warm-up. Prints Markdown tables and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
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
from teachloop.training.common import load_for_training
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
    settings = _old_train(TrainConfig(batch_size=batch_size, epochs=1.0, bf16=False))
    train_rows(student, rows[:batch_size], settings)  # warm-up
    result: dict[str, Any] = {"rows": len(rows), "batch_size": batch_size}
    result["grouped"] = train_rows(student, rows, settings)
    result["plain"] = train_rows(student, rows, settings.model_copy(update={"batching": "random"}))
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
    steps: int | None = None,
) -> dict[str, float]:
    """SFT on ``rows`` as the loop batches them under ``settings``: one epoch, or its first ``steps``."""
    model, tokenizer = load_for_training(student, settings)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = sft_trainer(model, tokenizer, Dataset.from_list(rows), settings, Path(tmp), seed=0)
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


#: The settings of the path before issue 22 (SDPA attention while training, every batch encoding
#: the shared prompt prefix); the new path is the default config.
OLD_PATH = {"train.attention": "sdpa", "eval.prefix_cache": "false"}


def _old_train(settings: TrainConfig) -> TrainConfig:
    return settings.model_copy(update={"attention": "sdpa", "batching": "grouped"})


def bench_paths(student: Path, n_rows: int, steps: int) -> dict[str, Any]:
    """The old SFT path against the new one (and padding-free batches), in alternation, in the loop's
    training dtype, with the machine's matmul roofline measured in the same run."""
    rows = sft_rows(n_rows)
    dtype = weights_dtype("auto", "cpu")
    new = TrainConfig(bf16=dtype == "bfloat16")
    paths = {
        "old": _old_train(new),
        "new": new,
        "padding_free": new.model_copy(update={"padding_free": True}),
    }
    train_rows(student, rows, new, steps=1)  # warm-up
    result: dict[str, Any] = {"rows": n_rows, "steps": steps, "dtype": dtype}
    result["matmul_gflops"] = matmul_gflops(getattr(torch, dtype))
    for name, settings in paths.items():
        result[name] = train_rows(student, rows, settings, steps=steps)
        result[name]["roofline_share"] = result[name]["useful_gflops"] / result["matmul_gflops"]
    result["speedup"] = result["new"]["useful_tokens_per_s"] / result["old"]["useful_tokens_per_s"]
    return result


def print_paths(p: dict[str, Any]) -> None:
    print(
        f"| SFT ({p['rows']} rows, first {p['steps']} steps, {p['dtype']}) | old: sdpa, grouped | "
        "new: eager, grouped | eager, sorted | eager, padding-free |"
    )
    print("|---|---|---|---|---|")
    for key, label, fmt in (
        ("seconds", "seconds", "{:.1f}"),
        ("padding_share", "padding share of the round's trained tokens", "{:.1%}"),
        ("trained_tokens_per_s", "trained tokens/s", "{:.0f}"),
        ("useful_tokens_per_s", "useful tokens/s", "{:.0f}"),
        ("useful_gflops", "useful GFLOP/s", "{:.1f}"),
        ("roofline_share", f"share of the {p['matmul_gflops']:.0f} GFLOP/s matmul roofline", "{:.0%}"),
    ):
        cells = " | ".join(fmt.format(p[name][key]) for name in ("old", "new", "sorted", "padding_free"))
        print(f"| {label} | {cells} |")
    print(f"new/old useful tokens/s: {p['speedup']:.2f}x")


def bench_eval_paths(student: Path, tasks: list[Task], settings: EvalConfig, repeats: int) -> dict[str, Any]:
    """Batched evaluation encoding the shared prompt prefix with every batch (old) or once (new)."""
    env = load_environment("reasoning-basics")
    prompts = [env.prompt(t) for t in tasks]
    dtype = weights_dtype(settings.dtype, "cpu")
    model, tokenizer = load_student(student, device="cpu", dtype=dtype)
    generate(model, tokenizer, prompts[:4], settings.max_new_tokens, batch_size=4)  # warm-up
    result: dict[str, Any] = {"items": len(tasks), "dtype": dtype, "student": str(student)}
    answers: dict[str, list[list[str]]] = {}
    seconds: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(repeats):
        for name, cached in (("old", False), ("new", True)):
            start = time.perf_counter()
            answers[name] = generate(
                model, tokenizer, prompts, settings.max_new_tokens, settings.batch_size, prefix_cache=cached
            )
            seconds[name].append(time.perf_counter() - start)
    for name in ("old", "new"):
        scores = [env.score(t, a[0]).reward for t, a in zip(tasks, answers[name], strict=True)]
        best = min(seconds[name])
        result[name] = {
            "seconds": best,
            "items_per_s": len(tasks) / best,
            "accuracy": sum(scores) / len(tasks),
        }
    result["speedup"] = result["old"]["seconds"] / result["new"]["seconds"]
    result["same_answers"] = sum(a == b for a, b in zip(answers["old"], answers["new"], strict=True))
    return result


def print_eval_paths(e: dict[str, Any]) -> None:
    print(
        f"| evaluation ({e['items']} dev+test items, {e['dtype']}) | old: prefix per batch | new: prefix cached |"
    )
    print("|---|---|---|")
    for key, label, fmt in (
        ("seconds", "seconds (best of the repeats)", "{:.1f}"),
        ("items_per_s", "items/s", "{:.1f}"),
        ("accuracy", "accuracy", "{:.1%}"),
    ):
        print(f"| {label} | {fmt.format(e['old'][key])} | {fmt.format(e['new'][key])} |")
    print(f"new/old: {e['speedup']:.2f}x; the same answer for {e['same_answers']}/{e['items']} items")


def run_loop(seed: int, out: Path, old: bool) -> dict[str, Any]:
    """The README's default run (``teachloop run --seed S``) on the old or the new path."""
    run_dir = out / f"{'old' if old else 'new'}-seed{seed}"
    overrides = [a for k, v in OLD_PATH.items() for a in ("--set", f"{k}={v}")] if old else []
    command = [sys.executable, "-m", "teachloop", "run", "--seed", str(seed), "--run-dir", str(run_dir)]
    start = time.perf_counter()
    subprocess.run([*command, *overrides], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    summary = json.loads((run_dir / "summary.json").read_text())
    nodes: dict[str, float] = {}
    for r in summary["rounds"]:
        for node, sec in r["seconds"].items():
            nodes[node] = nodes.get(node, 0.0) + sec
    return {
        "seed": seed,
        "wall_seconds": wall,
        "node_seconds": summary["total_seconds"],
        "per_node": nodes,
        "test": [r["test"] for r in summary["rounds"]],
    }


def bench_loop(seeds: list[int], out: Path) -> list[dict[str, Any]]:
    """Old and new default runs, in alternation, seed by seed."""
    return [{"old": run_loop(s, out, old=True), "new": run_loop(s, out, old=False)} for s in seeds]


def print_loop(pairs: list[dict[str, Any]]) -> None:
    nodes = sorted({n for p in pairs for side in ("old", "new") for n in p[side]["per_node"]})
    shown = [
        n for n in nodes if any(p[side]["per_node"].get(n, 0) >= 1 for p in pairs for side in ("old", "new"))
    ]
    print(
        "| seed | path | "
        + " | ".join(shown)
        + " | all nodes (s) | wall (s) | test accuracy after the last round |"
    )
    print("|---" * (len(shown) + 5) + "|")
    for p in pairs:
        for side in ("old", "new"):
            r = p[side]
            last = r["test"][-1]
            cells = " | ".join(f"{r['per_node'].get(n, 0.0):.0f}" for n in shown)
            print(
                f"| {r['seed']} | {side} | {cells} | {r['node_seconds']:.0f} | {r['wall_seconds']:.0f} | "
                f"{last['accuracy']:.1%} [{last['ci95'][0]:.1%}, {last['ci95'][1]:.1%}] |"
            )
        print(
            f"| {p['old']['seed']} | new/old | | | | {p['old']['node_seconds'] / p['new']['node_seconds']:.2f}x faster |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--path-rows", type=int, default=480, help="rows for the SFT paths (a round's budget)"
    )
    parser.add_argument("--path-steps", type=int, default=8, help="SFT steps timed per path")
    parser.add_argument(
        "--eval-student", type=Path, default=None, help="model directory (default: the student)"
    )
    parser.add_argument("--eval-repeats", type=int, default=2)
    parser.add_argument(
        "--loop", type=int, nargs="*", metavar="SEED", help="also the default loop, old and new"
    )
    parser.add_argument("--loop-out", type=Path, default=Path("runs/bench-speed"))
    parser.add_argument(
        "--choices", action="store_true", help="the earlier batching and precision comparisons"
    )
    parser.add_argument("--eval-items", type=int, default=None, help="--choices: dev items (default: all)")
    parser.add_argument("--sft-rows", type=int, default=96, help="--choices: SFT rows")
    parser.add_argument("--sft-batch-size", type=int, default=16)
    parser.add_argument("--sft-bf16", action="store_true", help="--choices: also time grouped SFT in bf16")
    parser.add_argument("--out", type=Path, default=Path("bench-training-cpu.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    student = resolve_student(DEFAULT_STUDENT)
    report: dict[str, Any] = {"threads": torch.get_num_threads()}
    if args.choices:
        report["choices"] = run_choices(student, args)
    else:
        report["sft_paths"] = bench_paths(student, args.path_rows, args.path_steps)
        print_paths(report["sft_paths"])
        settings = EvalConfig()
        env = load_environment("reasoning-basics")
        items = env.tasks("dev", settings.dev_per_skill, seed=0) + env.tasks(
            "test", settings.test_per_skill, seed=0
        )
        report["eval_paths"] = bench_eval_paths(
            args.eval_student or student, items, settings, args.eval_repeats
        )
        print_eval_paths(report["eval_paths"])
    if args.loop:
        report["loop"] = bench_loop(args.loop, args.loop_out)
        print_loop(report["loop"])
    args.out.write_text(json.dumps(report, indent=2))


def run_choices(student: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Batched against one-at-a-time evaluation, grouped against random SFT batches, float32 against bf16."""
    eval_settings = EvalConfig()
    dev = load_environment("reasoning-basics").tasks("dev", eval_settings.dev_per_skill, seed=0)
    evaluation = bench_eval(student, dev[: args.eval_items], eval_settings)
    print(f"eval: {json.dumps(evaluation)}", flush=True)  # partial result, should SFT be cut short
    sft = bench_sft(student, args.sft_rows, args.sft_batch_size, args.sft_bf16)
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
    print(f"eval answers identical in {e['same_answers']}/{e['items']} items")
    return {"eval": evaluation, "sft": sft}


if __name__ == "__main__":
    main()
