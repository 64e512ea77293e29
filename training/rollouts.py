"""Rollouts: the student answers each selected task of a DPO or GRPO skill k times, the verifier
judges every answer, and the verdicts decide what the round trains each task with.

- A DPO task needs a rejected answer: a verified failure of the student. Chosen is a verified
  correct answer, the student's own where one of its samples passed, else the gold answer. A task
  whose samples all passed has nothing to reject and gets SFT instead.
- A GRPO task needs a group with mixed outcomes: its pass rate over the k samples must lie
  strictly between 0 and 1 (all-right or all-wrong groups give GRPO no signal). The others get
  SFT instead.

Sampling is seeded, so a node re-run after a crash makes the same rollouts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from teachloop.environments.base import Environment, Task
from teachloop.training.config import TrainConfig, Trainer
from teachloop.training.generation import TokenUsage, generate


class Rollout(BaseModel):
    """One task's k samples with the verifier's verdicts, and what the round trains it with."""

    model_config = ConfigDict(frozen=True)

    task: Task
    planned: Trainer
    completions: list[str]
    rewards: list[float]
    solved: list[bool]
    use: Trainer
    reason: str

    @property
    def pass_rate(self) -> float:
        return sum(self.solved) / max(1, len(self.solved))


def _decide(planned: Trainer, solved: list[bool]) -> tuple[Trainer, str]:
    passed, k = sum(solved), len(solved)
    if planned == "dpo":
        if passed == k:
            return "sft", f"all {k} samples correct: nothing to reject"
        return "dpo", f"{k - passed}/{k} samples failed: a rejected answer"
    if 0 < passed < k:
        return "grpo", f"pass rate {passed}/{k}: mixed outcomes"
    return "sft", f"pass rate {passed}/{k}: no signal for GRPO"


def judge(env: Environment, task: Task, planned: Trainer, completions: list[str]) -> Rollout:
    scores = [env.score(task, c) for c in completions]
    solved = [s.solved for s in scores]
    use, reason = _decide(planned, solved)
    return Rollout(
        task=task,
        planned=planned,
        completions=completions,
        rewards=[s.reward for s in scores],
        solved=solved,
        use=use,
        reason=reason,
    )


def sample_rollouts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    tasks: Sequence[tuple[Task, Trainer]],
    settings: TrainConfig,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    usage: TokenUsage | None = None,
) -> list[Rollout]:
    """Rollouts for ``(task, planned trainer)`` pairs (DPO or GRPO), in the order given."""
    plans: dict[Trainer, tuple[int, float, int]] = {
        "dpo": (settings.dpo.samples, settings.dpo.temperature, max_new_tokens),
        "grpo": (settings.grpo.probe_samples, settings.grpo.temperature, settings.grpo.max_completion_length),
    }
    out: dict[int, Rollout] = {}
    for trainer, (k, temperature, length) in plans.items():
        group = [(i, task) for i, (task, t) in enumerate(tasks) if t == trainer]
        if not group:
            continue
        group_tasks = [task for _, task in group]
        completions = sample_answers(
            model, tokenizer, env, group_tasks, k, temperature, length, batch_size, seed, usage
        )
        for (i, task), samples in zip(group, completions, strict=True):
            out[i] = judge(env, task, trainer, samples)
    return [out[i] for i in range(len(tasks)) if i in out]


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def dpo_rows(env: Environment, rollouts: Sequence[Rollout]) -> list[dict[str, Any]]:
    """Conversational prompt/chosen/rejected rows, one pair per task the round trains with DPO."""
    rows = []
    for r in rollouts:
        if r.use != "dpo":
            continue
        own = [c for c, ok in zip(r.completions, r.solved, strict=True) if ok]
        rejected = next(c for c, ok in zip(r.completions, r.solved, strict=True) if not ok)
        source: Literal["student", "gold"] = "student" if own else "gold"
        rows.append(
            {
                "prompt": [m.model_dump() for m in env.prompt(r.task)],
                "chosen": _assistant(own[0] if own else r.task.answer),
                "rejected": _assistant(rejected),
                "chosen_source": source,
                "skill": r.task.skill,
                "task_id": r.task.id,
            }
        )
    return rows


def grpo_rows(env: Environment, rollouts: Sequence[Rollout]) -> list[dict[str, Any]]:
    """Conversational prompts with the task as JSON (what the verifier reward needs)."""
    return [
        {
            "prompt": [m.model_dump() for m in env.prompt(r.task)],
            "task": r.task.model_dump_json(),
            "skill": r.task.skill,
            "task_id": r.task.id,
            "pass_rate": r.pass_rate,
        }
        for r in rollouts
        if r.use == "grpo"
    ]


def rollout_counts(rollouts: Sequence[Rollout]) -> dict[str, Any]:
    """What the rollouts decided, per skill: for traces and the node's log."""
    return {
        "tasks": len(rollouts),
        "use": dict(Counter(r.use for r in rollouts)),
        "use_by_skill": {
            skill: dict(Counter(r.use for r in rollouts if r.task.skill == skill))
            for skill in sorted({r.task.skill for r in rollouts})
        },
        "pass_rate_by_skill": {
            skill: sum(r.pass_rate for r in rollouts if r.task.skill == skill)
            / sum(1 for r in rollouts if r.task.skill == skill)
            for skill in sorted({r.task.skill for r in rollouts})
        },
    }


def sample_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    tasks: Sequence[Task],
    k: int,
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    usage: TokenUsage | None = None,
) -> list[list[str]]:
    """``k`` sampled student answers per task; ``batch_size`` counts sequences, so fewer prompts
    go into one call the more samples each gets."""
    return generate(
        model,
        tokenizer,
        [env.prompt(t) for t in tasks],
        max_new_tokens=max_new_tokens,
        batch_size=max(1, batch_size // k),
        temperature=temperature,
        num_samples=k,
        seed=seed,
        usage=usage,
    )


def pass_rates(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    tasks: Sequence[Task],
    k: int,
    temperature: float,
    max_new_tokens: int,
    batch_size: int,
    seed: int,
    usage: TokenUsage | None = None,
) -> list[float]:
    """Each task's pass rate over ``k`` sampled student answers: how hard it is for this student now."""
    completions = sample_answers(
        model, tokenizer, env, tasks, k, temperature, max_new_tokens, batch_size, seed, usage
    )
    return [sum(env.score(t, c).solved for c in cs) / k for t, cs in zip(tasks, completions, strict=True)]
