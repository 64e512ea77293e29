"""The criteria judge of the score node: a quality score per usable sample, from the mined criteria.

Three brains, chosen once per run (loop/brains.py): ``Unscored`` when the run has no criteria (the
quality part of the ranking is not measured), ``LLMSampleJudge`` when it has criteria (the judge LLM,
role ``judge``, says which criteria a sample meets; one request per sample), and ``RewardModelJudge``
when ``teacher.criteria.scorer`` names a distilled reward model (no LLM calls; its rewards become
percentiles within the round). The LLM judge falls back to ``Unscored`` for a sample whose reply
was unusable: that sample is ranked without a criteria score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from teachloop.agents.roles import record_fallback
from teachloop.criteria.agents import check_samples
from teachloop.criteria.graph import load_report
from teachloop.criteria.pairs import PairSample
from teachloop.environments.base import Skill, Task
from teachloop.llm.client import Teacher
from teachloop.tracing.spans import Tracer


class SampleJudge(Protocol):
    """A round's usable tasks -> a quality score in [0, 1] each (``None``: not measured)."""

    def score(self, round_: int, tasks: list[Task]) -> list[float | None]: ...


class Unscored:
    """The heuristic: no criteria, no quality score."""

    def score(self, round_: int, tasks: list[Task]) -> list[float | None]:
        return [None] * len(tasks)


class LLMSampleJudge:
    """The judge LLM with the run's mined criteria (read at each round: setup writes them)."""

    def __init__(
        self,
        teacher: Teacher,
        skills: list[Skill],
        criteria_path: Path,
        tracer: Tracer,
        fallback: SampleJudge,
    ) -> None:
        self.teacher = teacher
        self.skills = {s.name: s for s in skills}
        self.criteria_path = criteria_path
        self.tracer = tracer
        self.fallback = fallback

    def score(self, round_: int, tasks: list[Task]) -> list[float | None]:
        if not tasks or not self.criteria_path.is_file():
            return self.fallback.score(round_, tasks)
        chosen = load_report(self.criteria_path).scoring_criteria
        if not chosen:  # mining dropped every criterion: nothing to judge with
            return self.fallback.score(round_, tasks)
        inputs = {"samples": len(tasks), "criteria": [c.criterion.name for c in chosen]}
        with self.tracer.span("agent", "judge.criteria", round=round_, inputs=inputs) as sp:
            samples = [
                (t.skill, PairSample(question=t.question, solution=t.solution, answer=t.answer))
                for t in tasks
            ]
            scores = self.teacher.run(lambda s: check_samples(s, self.skills, samples, chosen, round_))
            judged = [x for x in scores if x is not None]
            sp.outputs = {
                "judged": len(judged),
                "unusable": len(scores) - len(judged),
                "mean": sum(judged) / len(judged) if judged else None,
            }
            unusable = [i for i, x in enumerate(scores) if x is None]
            if unusable:
                instead = self.fallback.score(round_, [tasks[i] for i in unusable])
                for i, x in zip(unusable, instead, strict=True):
                    scores[i] = x
                why = f"unusable judge reply for {len(unusable)} of {len(tasks)} samples"
                record_fallback(sp, "ranked without a criteria score", why)
        return scores


class RewardModelJudge:
    """A distilled reward model ('teachloop criteria distill'): scores without LLM calls."""

    def __init__(self, scorer_dir: Path, tracer: Tracer) -> None:
        self.scorer_dir = scorer_dir
        self.tracer = tracer

    def score(self, round_: int, tasks: list[Task]) -> list[float | None]:
        if not tasks:
            return []
        from teachloop.criteria.distill import RewardScorer, percentiles, sample_text  # torch: lazily

        inputs = {"samples": len(tasks)}
        with self.tracer.span("tool", "reward_model.score", round=round_, inputs=inputs) as sp:
            rewards = RewardScorer.load(self.scorer_dir).score(
                [sample_text(t.question, t.solution, t.answer) for t in tasks]
            )
            sp.outputs = {"min": min(rewards), "max": max(rewards)}
        return list(percentiles(rewards))
