"""Score: check every candidate before it can be trained on.

Each candidate gets flags a user can filter on in the run's ``scored.parquet``:
- ``verified``: the gold answer passes the environment's own verifier, the same gate that
  ``environments/contract.py`` applies to a plug-in's gold answers at load time, here applied to
  every task a plug-in's generator or the teacher made (a generator bug or a bad synthetic answer
  must never become training data); a teacher-written task whose answer check failed
  (``agents/synthesizer.py``, ``confirmed``) is not verified either, whatever the verifier says
  (comparing an answer with itself proves nothing);
- ``duplicate``: the question was already made this round or trained on in an earlier round;
- ``contaminated``: the question is in the dev or test split (training on it would inflate every
  number the run reports).
Only candidates with none of these problems are ``usable``. Usable candidates are then ranked by
``score`` in [0, 1]: the weighted mean of the components that are measured (``combine``), each
in [0, 1], or 1 when none is:
- ``quality``: the mined criteria's verdict (CritiQ; an LLM judge or a distilled reward model);
- ``difficulty``: 1 - the current student's pass rate over a few samples (what it already solves
  teaches it little).
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from teachloop.agents.synthesizer import confirmed
from teachloop.environments.base import Environment, Task, normalize_question


class ScoredSample(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: Task
    verified: bool
    duplicate: bool
    contaminated: bool
    score: float
    quality: float | None = None
    pass_rate: float | None = None

    @property
    def usable(self) -> bool:
        return self.verified and not self.duplicate and not self.contaminated


def combine(
    quality: float | None, pass_rate: float | None, quality_weight: float, difficulty_weight: float
) -> float:
    parts = [(quality_weight, quality)] if quality is not None else []
    if pass_rate is not None:
        parts.append((difficulty_weight, 1.0 - pass_rate))
    total = sum(w for w, _ in parts)
    return sum(w * v for w, v in parts) / total if total else 1.0


def rescored(
    sample: ScoredSample,
    quality: float | None,
    pass_rate: float | None,
    quality_weight: float,
    difficulty_weight: float,
) -> ScoredSample:
    """The sample with its measured components and their combined score (unusable ones stay at 0)."""
    score = combine(quality, pass_rate, quality_weight, difficulty_weight) if sample.usable else 0.0
    return sample.model_copy(update={"quality": quality, "pass_rate": pass_rate, "score": score})


def score_candidates(
    env: Environment, candidates: Iterable[Task], trained_questions: set[str], eval_questions: set[str]
) -> list[ScoredSample]:
    seen = set(trained_questions)
    out = []
    for task in candidates:
        key = normalize_question(task.question)
        verified = confirmed(task) and env.score(task, task.answer).solved
        duplicate = key in seen
        contaminated = key in eval_questions
        seen.add(key)
        ok = verified and not duplicate and not contaminated
        out.append(
            ScoredSample(
                task=task,
                verified=verified,
                duplicate=duplicate,
                contaminated=contaminated,
                score=1.0 if ok else 0.0,
            )
        )
    return out
