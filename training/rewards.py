"""The environment as GRPO rewards, in TRL's batched reward-function style.

A reward function takes ``(prompts, completions, **dataset_columns)`` and returns one float per
completion, or ``None`` where it does not apply. GRPO datasets carry each task as JSON in a
``task`` column, so the environment's own verifier can score a completion without any state.

- ``verifier_reward``: ``env.score(task, completion).reward`` (RLVR: reward only for what the
  verifier accepts; partial credit where the environment gives it);
- ``format_reward``: 1 for a bare answer (the whole completion is the answer the environment's
  parser read), 0.5 for an answer wrapped in other text, 0 for nothing usable; ``None`` for an
  environment that does not report what it parsed.

Both are plain functions of their inputs, testable without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from teachloop.environments.base import Environment, Task

RewardFn = Callable[..., list[float | None]]
Completion = str | Sequence[dict[str, str]]


def completion_text(completion: Completion) -> str:
    """The answer text of a completion: TRL passes conversational ones as a list of messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] for m in completion if m.get("role") == "assistant")


def verifier_reward(env: Environment) -> RewardFn:
    def verifier(
        prompts: Sequence[Any], completions: Sequence[Completion], task: Sequence[str], **_: Any
    ) -> list[float | None]:
        return [
            env.score(Task.model_validate_json(t), completion_text(c)).reward
            for c, t in zip(completions, task, strict=True)
        ]

    return verifier


def format_reward(env: Environment) -> RewardFn:
    def answer_format(
        prompts: Sequence[Any], completions: Sequence[Completion], task: Sequence[str], **_: Any
    ) -> list[float | None]:
        out: list[float | None] = []
        for c, t in zip(completions, task, strict=True):
            text = completion_text(c).strip()
            parsed = env.score(Task.model_validate_json(t), text).parsed_answer
            if parsed is None:
                out.append(None)
            elif not parsed.strip():
                out.append(0.0)
            else:
                out.append(1.0 if parsed.strip() == text else 0.5)
        return out

    return answer_format
