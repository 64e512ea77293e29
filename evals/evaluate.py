"""Evaluation runner: the student answers a split, the environment's verifier scores every answer."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from teachloop.core.config import EvalConfig
from teachloop.environments.base import Environment, Task
from teachloop.evals.metrics import ItemResult
from teachloop.training.generation import generate


def answer_and_score(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    tasks: Sequence[Task],
    settings: EvalConfig,
) -> list[ItemResult]:
    completions = generate(
        model,
        tokenizer,
        [env.prompt(t) for t in tasks],
        max_new_tokens=settings.max_new_tokens,
        batch_size=settings.batch_size,
    )
    results = []
    for task, (completion,) in zip(tasks, completions, strict=True):
        score = env.score(task, completion)
        results.append(
            ItemResult(
                task_id=task.id,
                skill=task.skill,
                question=task.question,
                answer=task.answer,
                completion=completion,
                parsed_answer=score.parsed_answer,
                reward=score.reward,
                feedback=score.feedback,
            )
        )
    return results
