"""Batched generation with a Hugging Face model: the student answering many prompts at once.

Prompts are sorted by token length before batching so a batch pads to nearly nothing, then the
answers are put back in the caller's order. The tokens every prompt of a call starts with (the
chat markup and an environment's system prompt: 15 of a default dev prompt's 47 tokens) are
encoded once, and each batch starts from a copy of that prefix's KV cache; rows are padded between
the prefix and their own tokens, so positions stay what they would be unpadded. Decoding stops for a batch as soon as every row has
produced its end-of-turn token. A batch is as large as asked, or as fits in the memory left
(KV cache, activations and last-position logits per row; see ``rows_that_fit``), whichever is
smaller.

``kv_cache="static"`` decodes with a fixed-shape KV cache, which transformers compiles on CUDA
(``torch.compile`` of the forward pass); prompts are then padded to multiples of 64 tokens so
batches repeat the same shapes instead of recompiling for each. On a CPU the dynamic cache is
the faster choice (nothing is compiled there), and it is the default.
"""

from __future__ import annotations

import copy
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
#: A shared prefix shorter than this is encoded with each batch (a cache copy would cost more).
MIN_PREFIX = 4


def shared_prefix(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all ``rows`` share, leaving each row at least one token of its own."""
    if not rows:
        return 0
    longest = min(len(r) for r in rows) - 1
    first = rows[0]
    n = 0
    while n < longest and all(r[n] == first[n] for r in rows):
        n += 1
    return n


def padded_batch(
    rows: Sequence[Sequence[int]], prefix: int, pad_id: int, multiple: int = 1
) -> dict[str, torch.Tensor]:
    """``rows`` as one batch: the shared ``prefix`` tokens, then padding, then each row's own tokens.

    With ``prefix`` 0 this is ordinary left padding. The attention mask is 0 over the padding, and
    generation derives positions from the mask, so a row's tokens sit where they would unpadded.
    """
    own = [r[prefix:] for r in rows]
    width = -(-max(len(o) for o in own) // multiple) * multiple
    ids = [list(r[:prefix]) + [pad_id] * (width - len(o)) + list(o) for r, o in zip(rows, own, strict=True)]
    mask = [[1] * prefix + [0] * (width - len(o)) + [1] * len(o) for o in own]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


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
    prefix_cache: bool = True,
) -> list[list[str]]:
    """Return ``num_samples`` completions per prompt (greedy when temperature is 0: one answer, repeated).

    ``batch_size`` prompts go into one ``generate`` call at most, fewer when memory is short.
    ``usage``, when given, is increased by the prompt and completion tokens of this call.
    ``prefix_cache`` encodes the prompts' shared prefix once (dynamic KV cache only).
    """
    texts = [chat_text(tokenizer, p) for p in prompts]
    encoded = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    lengths = [len(e) for e in encoded]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    out: list[list[str]] = [[] for _ in texts]
    device = next(model.parameters()).device
    prefix = shared_prefix(encoded) if prefix_cache and kv_cache == "dynamic" else 0
    prefix = prefix if prefix >= MIN_PREFIX else 0
    prefix_kv = (
        model(torch.tensor([encoded[0][:prefix]], device=device), use_cache=True, logits_to_keep=1).cache
        if prefix
        else None
    )
    if texts:
        longest = max(lengths) + max_new_tokens + (STATIC_PAD if kv_cache == "static" else 0)
        batch_size = max(
            1, min(batch_size, rows_that_fit(model, longest, free_memory(device)) // num_samples)
        )
    static = {"cache_implementation": "static"} if kv_cache == "static" else {}
    generator_seed = torch.Generator().manual_seed(seed)
    sample = temperature > 0
    returned = num_samples if sample else 1  # greedy answers are all the same: decode one
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = padded_batch(
            [encoded[i] for i in idx], prefix, tokenizer.pad_token_id, STATIC_PAD if static else 1
        )
        enc = {k: v.to(device) for k, v in batch.items()}
        cache: dict[str, object] = {}
        if prefix_kv is not None:  # generate expands the rows, not the cache: repeat it for every sample
            cache["cache"] = copy.deepcopy(prefix_kv)
            cache["cache"].batch_repeat_interleave(len(idx) * returned)  # type: ignore[attr-defined]
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
            **cache,
        )
        new = result[:, enc["input_ids"].shape[1] :]
        if usage is not None:
            usage.prompt_tokens += returned * sum(lengths[i] for i in idx)  # the prompts' tokens
            usage.completion_tokens += int((new != tokenizer.pad_token_id).sum())
        decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
        for row, i in enumerate(idx):
            out[i] = decoded[row * returned : (row + 1) * returned] * (num_samples // returned)
        report("student answers", start + len(idx), len(texts))
    return out
