"""Checks of training and evaluation settings against this machine, before a run starts.

The config schema checks values; these check what a value needs from outside it: an optional
package (vllm), a file (the accelerate config). A run that would fail rounds later fails at
once instead, with a message that says how to fix it, and writes nothing.
"""

from __future__ import annotations

import importlib.util

from teachloop.foundation.errors import ConfigError
from teachloop.loop.config import RunConfig

# No torch here: the CLI imports this to fail fast on bad input, in a second.


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def check_run(config: RunConfig) -> None:
    wanted = [
        name
        for name, on in (
            ("eval.backend=vllm", config.eval.backend == "vllm"),
            ("train.grpo.use_vllm=true", config.train.grpo.use_vllm),
        )
        if on
    ]
    if wanted and not vllm_installed():
        raise ConfigError(
            f"{' and '.join(wanted)} need vllm, which is not installed; on a machine with a CUDA GPU run "
            "pip install 'teachloop[vllm]', or use eval.backend=hf and train.grpo.use_vllm=false"
        )
    accelerate_config = config.train.accelerate_config
    if accelerate_config is not None and not accelerate_config.is_file():
        raise ConfigError(
            f"train.accelerate_config {accelerate_config} does not exist; write one with 'accelerate config "
            "--config_file PATH' (see docs/training.md)"
        )
