"""Batched generation with a Hugging Face model: the student answering many prompts at once.

Prompts are sorted by token length before batching so a batch pads to nearly nothing, then the
answers are put back in the caller's order. Decoding stops for a batch as soon as every row has
produced its end-of-turn token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from teachloop.environments.base import Message


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
) -> list[list[str]]:
    """Return ``num_samples`` completions per prompt (greedy when temperature is 0).

    ``usage``, when given, is increased by the prompt and completion tokens of this call.
    """
    texts = [chat_text(tokenizer, p) for p in prompts]
    lengths = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    out: list[list[str]] = [[] for _ in texts]
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    generator_seed = torch.Generator().manual_seed(seed)
    sample = temperature > 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(device) for k, v in enc.items()}
        if sample:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator_seed)))
        result = model.generate(  # type: ignore[operator]
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            temperature=temperature if sample else None,
            top_p=None,
            top_k=None,
            num_return_sequences=num_samples,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new = result[:, enc["input_ids"].shape[1] :]
        if usage is not None:
            usage.prompt_tokens += num_samples * sum(lengths[i] for i in idx)
            usage.completion_tokens += int((new != tokenizer.pad_token_id).sum())
        decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
        for row, i in enumerate(idx):
            out[i] = decoded[row * num_samples : (row + 1) * num_samples]
    return out
