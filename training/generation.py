"""Batched generation with a Hugging Face model: the student answering many prompts at once.

Prompts are sorted by token length before batching so a batch pads to nearly nothing, then the
answers are put back in the caller's order. Decoding stops for a batch as soon as every row has
produced its end-of-turn token. A batch is as large as asked, or as fits in the memory left
(KV cache, activations and last-position logits per row; see ``rows_that_fit``), whichever is
smaller.

``kv_cache="static"`` decodes with a fixed-shape KV cache, which transformers compiles on CUDA
(``torch.compile`` of the forward pass); prompts are then padded to multiples of 64 tokens so
batches repeat the same shapes instead of recompiling for each. On a CPU the dynamic cache is
the faster choice (nothing is compiled there), and it is the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import psutil
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from teachloop.foundation.types import Message
from teachloop.tracing.progress import report


@dataclass
class TokenUsage:
    """Tokens a generation call read and wrote (padding excluded), for traces and budgets."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


def chat_text(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message]) -> str:
    return str(
        tokenizer.apply_chat_template(
            [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
        )
    )


#: Share of free memory a generation batch may use (the rest is headroom for the allocator).
MEMORY_SHARE = {"cuda": 0.8, "cpu": 0.5}
#: Prompt lengths are padded to a multiple of this with a static cache, so compiled shapes repeat.
STATIC_PAD = 64


def free_memory(device: torch.device) -> int:
    """Bytes a generation batch may use on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * MEMORY_SHARE["cuda"])
    return int(psutil.virtual_memory().available * MEMORY_SHARE["cpu"])


def rows_that_fit(model: PreTrainedModel, tokens_per_row: int, budget: int) -> int:
    """How many sequences of ``tokens_per_row`` tokens one ``generate`` call can hold in ``budget`` bytes.

    Per row: the KV cache of every layer, one layer's activations at a time during the prompt's
    forward pass, and the float32 logits (and probabilities) of the last position.
    """
    cfg = model.config.get_text_config()
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    intermediate = getattr(cfg, "intermediate_size", None) or 4 * cfg.hidden_size
    width = next(model.parameters()).element_size()
    kv = 2 * cfg.num_hidden_layers * kv_heads * head_dim * width
    activations = (4 * cfg.hidden_size + 2 * intermediate) * width
    per_row = tokens_per_row * (kv + activations) + 2 * 4 * cfg.vocab_size
    return max(1, budget // per_row)


@torch.inference_mode()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[Message]],
    max_new_tokens: int,
    batch_size: int = 32,
    temperature: float = 0.0,
    num_samples: int = 1,
    seed: int = 0,
    usage: TokenUsage | None = None,
    kv_cache: Literal["dynamic", "static"] = "dynamic",
) -> list[list[str]]:
    """Return ``num_samples`` completions per prompt (greedy when temperature is 0: one answer, repeated).

    ``batch_size`` prompts go into one ``generate`` call at most, fewer when memory is short.
    ``usage``, when given, is increased by the prompt and completion tokens of this call.
    """
    texts = [chat_text(tokenizer, p) for p in prompts]
    lengths = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    out: list[list[str]] = [[] for _ in texts]
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    if texts:
        longest = max(lengths) + max_new_tokens + (STATIC_PAD if kv_cache == "static" else 0)
        batch_size = max(
            1, min(batch_size, rows_that_fit(model, longest, free_memory(device)) // num_samples)
        )
    static = {"cache_implementation": "static"} if kv_cache == "static" else {}
    padding = {"pad_to_multiple_of": STATIC_PAD} if kv_cache == "static" else {}
    generator_seed = torch.Generator().manual_seed(seed)
    sample = temperature > 0
    returned = num_samples if sample else 1  # greedy answers are all the same: decode one
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False, **padding
        )
        enc = {k: v.to(device) for k, v in enc.items()}
        if sample:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator_seed)))
        result = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=None,
            top_k=None,
            num_return_sequences=returned,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **static,
        )
        new = result[:, enc["input_ids"].shape[1] :]
        if usage is not None:
            usage.prompt_tokens += returned * sum(lengths[i] for i in idx)  # the tokens computed
            usage.completion_tokens += int((new != tokenizer.pad_token_id).sum())
        decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
        for row, i in enumerate(idx):
            out[i] = decoded[row * returned : (row + 1) * returned] * (num_samples // returned)
        report("student answers", start + len(idx), len(texts))
    return out
