"""The environment contract: what the student should get better at.

An environment names its skills, hands out dev and test tasks with gold answers, says how the
student is asked (``prompt``) and scores an answer (``score``, the verifier). Environments that
can make new verified tasks also implement ``TaskGenerator``; the heuristic teacher needs it.
One that groups its skills under parent skills implements ``SkillTree``.
Everything that crosses this boundary is a frozen pydantic model with a content-hash id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from teachloop.foundation.types import Message, Split


class Skill(BaseModel):
    """One thing the student can be good or bad at; difficulty levels are integers, low is easy."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    min_difficulty: int = 0
    max_difficulty: int = 0
    eval_difficulty: int = 0

    @model_validator(mode="after")
    def _ordered(self) -> Skill:
        if not self.min_difficulty <= self.eval_difficulty <= self.max_difficulty:
            raise ValueError(f"skill {self.name!r}: need min_difficulty <= eval_difficulty <= max_difficulty")
        return self


def content_id(*parts: object) -> str:
    """A stable short id from content, so the same task gets the same id in every process."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class Task(BaseModel):
    """A question with its gold answer. ``metadata`` is whatever the verifier needs (JSON-safe).

    Tasks a teacher wrote carry its worked ``solution``; tasks a reviser rewrote keep the text they
    had before in ``original_question`` / ``original_answer``, so every rewrite can be shown as a diff.
    """

    model_config = ConfigDict(frozen=True)

    id: str = ""
    skill: str
    question: str
    answer: str
    difficulty: int = 0
    source: str = "environment"
    metadata: dict[str, Any] = Field(default_factory=dict)
    solution: str = ""
    original_question: str | None = None
    original_answer: str | None = None

    @model_validator(mode="after")
    def _fill_id(self) -> Task:
        if not self.id:
            object.__setattr__(self, "id", content_id(self.skill, self.question, self.answer))
        return self


class Score(BaseModel):
    """The verifier's verdict: reward in [0, 1] (1 = solved) and feedback a teacher can read."""

    model_config = ConfigDict(frozen=True)

    reward: float = Field(ge=0.0, le=1.0)
    feedback: str = ""
    parsed_answer: str | None = None

    @property
    def solved(self) -> bool:
        return self.reward >= 1.0


@runtime_checkable
class Environment(Protocol):
    """What every environment provides. Construct with ``load_environment(**options)``."""

    name: str
    skills: list[Skill]

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        """``n`` tasks per skill for a split, the same for the same seed. Dev and test never overlap."""
        ...

    def prompt(self, task: Task) -> list[Message]:
        """The chat messages the student sees for a task."""
        ...

    def score(self, task: Task, completion: str) -> Score:
        """Verify a raw student completion against the task's gold answer."""
        ...


@runtime_checkable
class TaskGenerator(Protocol):
    """Optional capability: make new tasks with verified gold answers, on demand."""

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]: ...


@runtime_checkable
class TaskChecker(Protocol):
    """Optional capability: judge a task someone else wrote (a teacher) without trusting its answer.

    Most verifiers compare an answer with the task's gold answer, which proves nothing about a
    gold answer an LLM made up. An environment that can decide from the question and metadata
    alone (run a function against its tests, check a stated constraint) implements this, and the
    synthesizer trusts its verdict instead of sampling the teacher for agreement.
    """

    def check_task(self, task: Task) -> Score: ...


@runtime_checkable
class SkillTree(Protocol):
    """Optional capability: group the skills under parent skills (the skill-tree feedback level)."""

    def skill_groups(self) -> dict[str, list[str]]: ...


def normalize_question(text: str) -> str:
    """The key used to compare questions for duplicates and dev/test contamination."""
    return " ".join(text.lower().split())
