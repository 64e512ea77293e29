"""Score: check every candidate before it can be trained on.

Each candidate gets flags a user can filter on in the run's ``scored.parquet``:
- ``verified``: the gold answer passes the environment's own verifier (a generator bug or a bad
  synthetic answer must never become training data);
- ``duplicate``: the question was already made this round or trained on in an earlier round;
- ``contaminated``: the question is in the dev or test split (training on it would inflate every
  number the run reports).
Only candidates with none of these problems get a positive score.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from teachloop.environments.base import Environment, Task, normalize_question


class ScoredSample(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: Task
    verified: bool
    duplicate: bool
    contaminated: bool
    score: float

    @property
    def usable(self) -> bool:
        return self.score > 0


def score_candidates(
    env: Environment, candidates: Iterable[Task], trained_questions: set[str], eval_questions: set[str]
) -> list[ScoredSample]:
    seen = set(trained_questions)
    out = []
    for task in candidates:
        key = normalize_question(task.question)
        verified = env.score(task, task.answer).solved
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
