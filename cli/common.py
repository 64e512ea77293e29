"""What every command group shares: the consoles it prints to, ``key=value`` options, quiet libraries.

One place, so that every group prints user text the same way (never as markup) and parses
``--set`` / ``--env-option`` pairs by the same rules.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from rich.console import Console

from teachloop.foundation.errors import ConfigError

out = Console(markup=False)  # names and paths from users, criteria from an LLM: text, never markup
err = Console(stderr=True)  # progress and one-line errors


def quiet_libraries() -> None:
    """Keep library progress bars and warnings out of the live view; teachloop logs what matters."""
    import datasets
    import transformers

    os.environ.setdefault("TQDM_DISABLE", "1")  # TRL's own progress bars (DPO reference log-probs)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow logs at INFO from its import on
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``key=value`` pairs; dotted keys nest; values are parsed as YAML scalars (numbers, booleans)."""
    import yaml

    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {pair!r} must look like key=value")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = result
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{what} {pair!r} conflicts with an earlier value")
        node[leaf] = value
    return result
