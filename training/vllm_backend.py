"""Optional vLLM backend for evaluation (``eval.backend: vllm``); GRPO uses TRL's own vLLM
integration (``train.grpo.use_vllm``).

HF ``generate`` is the slow link on a GPU (about 3k new tokens/s for a 135M model at batch 256
on an H100, far below what the memory bandwidth allows); vLLM's paged attention and continuous
batching exist for exactly this. vllm needs a CUDA GPU and is not a dependency: settings that
use it are checked before a run starts (``training.preflight``) and fail with a fixable message
where it is missing.

Untested in this project's CI: vllm cannot be installed on its CPU-only machines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from teachloop.foundation.types import Message
from teachloop.training.generation import TokenUsage


def generate_vllm(
    model_dir: Path,
    prompts: Sequence[Sequence[Message]],
    max_new_tokens: int,
    dtype: str,
    usage: TokenUsage | None = None,
) -> list[list[str]]:
    """Greedy answers to chat prompts from a vLLM engine over a saved (merged) model directory."""
    from vllm import LLM, SamplingParams

    engine = LLM(model=str(model_dir), dtype=dtype, seed=0)
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    outputs = engine.chat([[m.model_dump() for m in p] for p in prompts], params, use_tqdm=False)
    if usage is not None:
        usage.prompt_tokens += sum(len(o.prompt_token_ids or []) for o in outputs)
        usage.completion_tokens += sum(len(c.token_ids) for o in outputs for c in o.outputs)
    return [[c.text for c in o.outputs] for o in outputs]
