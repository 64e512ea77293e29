"""GPU benchmark of the three trainers and of evaluation, through teachloop's own training code.

    python bench/gpu_training.py --preset 1.7b --rows 512 --batch-size 16 --out bench-gpu.json
    python bench/gpu_training.py --preset tiny --rows 16 --batch-size 4 --skip-eval   # smoke test, any machine

A randomly initialised model of the preset's shape (``1.7b``: SmolLM2-1.7B's Llama config) is
saved once and trained for one epoch by ``fit_sft``, ``fit_dpo`` and ``fit_grpo`` (the functions a
loop round calls) in bf16 on rows shaped like the loop's: SFT prompt/completion rows, DPO pairs
(gold answer chosen, a wrong one rejected) and GRPO prompts, all from reasoning-basics tasks.

Per trainer it reports TRL's token count over the trainer's runtime (tokens/s), the peak GPU
memory (``torch.cuda.max_memory_allocated``) and model FLOPs utilisation:

    MFU = tokens/s * FLOPs per token / peak FLOP/s of the GPU (--peak-tflops, bf16 dense)

with FLOPs per token = 6 N + 12 L d s (N parameters, L layers, width d, mean sequence s; forward
and backward) for SFT; 8 N + ... for DPO (plus the reference model's forward pass, precomputed
inside the run); for GRPO the same 6 N per trained token, generation not counted, so GRPO's MFU
is a lower bound and its tokens/s is the figure to compare.

Evaluation: the real student (SmolLM2-135M-Instruct) answers the default dev split with batched
generation (dynamic and static KV cache) and one item at a time; new tokens per second each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import torch
from datasets import Dataset
from transformers import LlamaConfig, LlamaForCausalLM

from teachloop.environments.base import TaskGenerator
from teachloop.environments.registry import load_environment
from teachloop.evals.config import EvalConfig
from teachloop.training.config import TrainConfig
from teachloop.training.dpo import fit_dpo
from teachloop.training.generation import TokenUsage, generate
from teachloop.training.grpo import fit_grpo
from teachloop.training.grpo_config import GRPOSettings
from teachloop.training.sft import fit_sft
from teachloop.training.student import DEFAULT_STUDENT, load_student, resolve_student, smollm2_tokenizer

KVCache = Literal["dynamic", "static"]

PRESETS: dict[str, dict[str, Any]] = {
    "1.7b": {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
    },
    "360m": {
        "hidden_size": 960,
        "intermediate_size": 2560,
        "num_hidden_layers": 32,
        "num_attention_heads": 15,
    },
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
}


def from_config_model(preset: str, out: Path) -> LlamaConfig:
    """A random-weight Llama of the preset's shape with SmolLM2's tokenizer, saved to ``out``."""
    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=PRESETS[preset]["num_attention_heads"],
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **PRESETS[preset],
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return config


def loop_rows(n: int) -> dict[str, Dataset]:
    env = load_environment("reasoning-basics")
    assert isinstance(env, TaskGenerator)  # the default environment generates its tasks
    per_skill = -(-n // len(env.skills))
    tasks = [t for s in env.skills for t in env.generate(s.name, per_skill, difficulty=1, seed=7)][:n]
    sft, dpo, grpo = [], [], []
    for t in tasks:
        prompt = [m.model_dump() for m in env.prompt(t)]
        sft.append({"prompt": prompt, "completion": [{"role": "assistant", "content": t.answer}]})
        dpo.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": t.answer}],
                "rejected": [{"role": "assistant", "content": t.answer[::-1] + " 0"}],
            }
        )
        grpo.append({"prompt": prompt, "task": t.model_dump_json()})
    return {k: Dataset.from_list(v) for k, v in (("sft", sft), ("dpo", dpo), ("grpo", grpo))}


def sft_tokens(rows: Dataset, max_length: int) -> float:
    """Tokens SFTTrainer trains on: each row's chat text, truncated to ``max_length``."""
    tokenizer = smollm2_tokenizer()
    texts = [tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=False) for r in rows]
    return float(sum(min(len(ids), max_length) for ids in tokenizer(texts)["input_ids"]))


def flops_per_token(config: LlamaConfig, params: int, seq: float, trainer: str) -> float:
    attention = 12 * config.num_hidden_layers * config.hidden_size * seq
    passes = {"sft": 6, "dpo": 8, "grpo": 6}[trainer]
    return passes * params + attention * passes / 6


def bench_trainers(args: argparse.Namespace, cuda: bool) -> list[dict[str, Any]]:
    env = load_environment("reasoning-basics")
    assert isinstance(env, TaskGenerator)  # the default environment generates its tasks
    data = loop_rows(args.rows)
    settings = TrainConfig(
        batch_size=args.batch_size,
        max_length=args.max_length,
        bf16=cuda or args.bf16_cpu,
        grpo=GRPOSettings(num_generations=4, max_completion_length=64),
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        config = from_config_model(args.preset, model_dir)
        params = sum(p.numel() for p in LlamaForCausalLM(config).parameters())
        for trainer, fit in (("sft", fit_sft), ("dpo", fit_dpo), ("grpo", fit_grpo)):
            if trainer not in args.trainers:
                continue
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            extra = (env,) if trainer == "grpo" else ()
            out = Path(tmp) / trainer
            metrics = fit(model_dir, data[trainer], out, settings, 0, *extra)
            # TRL logs num_tokens for DPO and GRPO; the loop's SFT trainer (answer-only loss) does not.
            tokens = metrics.get("num_tokens") or sft_tokens(data["sft"], settings.max_length)
            seconds = metrics["train_runtime"]
            seq = tokens / (len(data[trainer]) * (settings.grpo.num_generations if trainer == "grpo" else 1))
            per_token = flops_per_token(config, params, seq, trainer)
            results.append(
                {
                    "trainer": trainer,
                    "params": params,
                    "rows": len(data[trainer]),
                    "tokens": tokens,
                    "seconds": seconds,
                    "tokens_per_s": tokens / seconds,
                    "mfu": tokens / seconds * per_token / (args.peak_tflops * 1e12) if cuda else None,
                    "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
                }
            )
    return results


def bench_eval(cuda: bool) -> dict[str, Any]:
    settings = EvalConfig()
    env = load_environment("reasoning-basics")
    assert isinstance(env, TaskGenerator)  # the default environment generates its tasks
    prompts = [env.prompt(t) for t in env.tasks("dev", settings.dev_per_skill, seed=0)]
    device = "cuda" if cuda else "cpu"
    model, tokenizer = load_student(resolve_student(DEFAULT_STUDENT), device=device, dtype="bfloat16")
    runs: dict[str, Any] = {}
    modes: tuple[tuple[str, int, KVCache], ...] = (
        ("batched_dynamic", settings.batch_size, "dynamic"),
        ("batched_static", settings.batch_size, "static"),
        ("one_at_a_time", 1, "dynamic"),
    )
    for name, batch_size, cache in modes:
        if cache == "static" and not cuda:
            continue
        generate(model, tokenizer, prompts[:batch_size], settings.max_new_tokens, batch_size, kv_cache=cache)
        usage = TokenUsage()
        start = time.perf_counter()
        generate(model, tokenizer, prompts, settings.max_new_tokens, batch_size, usage=usage, kv_cache=cache)
        seconds = time.perf_counter() - start
        runs[name] = {"seconds": seconds, "new_tokens_per_s": usage.completion_tokens / seconds}
    runs["items"] = len(prompts)
    runs["speedup"] = runs["one_at_a_time"]["seconds"] / runs["batched_dynamic"]["seconds"]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="1.7b")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--trainers", nargs="+", default=["sft", "dpo", "grpo"])
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak (H100 SXM: 989)")
    parser.add_argument("--bf16-cpu", action="store_true", help="bf16 on a CPU too (smoke tests)")
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-gpu.json"))
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "preset": args.preset,
        "trainers": bench_trainers(args, cuda),
    }
    if not args.skip_eval:
        report["eval"] = bench_eval(cuda)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{report['device']}, preset {args.preset}")
    print("| trainer | params | tokens/s | MFU | peak memory |")
    print("|---|---|---|---|---|")
    for r in report["trainers"]:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        mem = f"{r['peak_memory_gib']:.1f} GiB" if r["peak_memory_gib"] is not None else "-"
        print(f"| {r['trainer']} | {r['params'] / 1e6:.0f}M | {r['tokens_per_s']:.0f} | {mfu} | {mem} |")
    if "eval" in report:
        e = report["eval"]
        for name in ("batched_dynamic", "batched_static", "one_at_a_time"):
            if name in e:
                print(
                    f"eval {name}: {e[name]['new_tokens_per_s']:.0f} new tokens/s ({e[name]['seconds']:.1f}s)"
                )
        print(f"eval batched vs one at a time: {e['speedup']:.1f}x over {e['items']} dev items")


if __name__ == "__main__":
    main()
