"""How the student is evaluated: split sizes, answer length, batching, precision, backend."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from teachloop.foundation.settings import Settings


class EvalConfig(Settings):
    dev_per_skill: int = Field(24, ge=1, description="dev items per skill; agents see these results")
    test_per_skill: int = Field(40, ge=1, description="test items per skill; only reports see these")
    max_new_tokens: int = Field(16, ge=1, le=4096, description="answer length limit when the student answers")
    batch_size: int = Field(64, ge=1, description="prompts generated together")
    dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto",
        description="weights dtype when the student answers; auto: bfloat16 where the hardware computes "
        "it natively (CUDA, AVX-512 BF16/AMX CPUs), else float32 (emulated bf16 was 3-4x slower on AVX2)",
    )
    backend: Literal["hf", "vllm"] = Field(
        "hf", description="hf: batched transformers generate; vllm: a vLLM engine (needs vllm and a CUDA GPU)"
    )
    prefix_cache: bool = Field(
        True,
        description="encode the prompts' shared prefix (chat markup, system prompt) once and start every "
        "batch from its KV cache (dynamic cache only); off: each batch encodes it again",
    )
    kv_cache: Literal["dynamic", "static"] = Field(
        "dynamic",
        description="static: a fixed-shape KV cache, which transformers compiles on CUDA (prompts padded to "
        "multiples of 64 so shapes repeat); dynamic: grow the cache as tokens come (best on a CPU)",
    )
