"""Reasoning-gym tasks as a teachloop environment, and the default skill mix.

reasoning-gym has 100+ procedural generators, each with a verifier. Any list of them becomes an
environment: a skill per task, difficulty levels from the task's curriculum (or given
explicitly), dev and test items interleaved from one seeded stream of distinct questions (test
takes the even places, dev the odd ones: the same distribution, never a shared question, and
either split's size leaves the other unchanged), and a generator that makes new verified items
at any level for the teacher.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import reasoning_gym
from pydantic import BaseModel, ConfigDict, Field
from reasoning_gym.factory import DATASETS, create_curriculum, has_curriculum

from teachloop.environments.answer import extract_answer
from teachloop.environments.base import Score, Skill, Split, Task, content_id, normalize_question
from teachloop.foundation.errors import ConfigError
from teachloop.foundation.types import Message

SYSTEM_PROMPT = "Answer with the final answer only."
_SPLIT_PARITY: dict[str, int] = {"test": 0, "dev": 1}
_POOL = 10**9  # reasoning-gym items are generated lazily per index; this is only an upper bound
_MAX_TRIES_PER_ITEM = 50


class SkillSpec(BaseModel):
    """A reasoning-gym task as a skill. ``levels`` are the task's config overrides per difficulty."""

    model_config = ConfigDict(frozen=True)

    task: str
    name: str = ""
    description: str = ""
    levels: list[dict[str, Any]] = Field(default_factory=list)
    eval_level: int = 0

    @property
    def skill_name(self) -> str:
        return self.name or self.task


def _curriculum_levels(task: str) -> list[dict[str, Any]]:
    """Config overrides for each global curriculum level of a task (easy first)."""
    if not has_curriculum(task):
        return [{}]
    curriculum = create_curriculum(task)
    levels: list[dict[str, Any]] = []
    level = 0
    while True:
        curriculum.set_global_level(level)
        config = dataclasses.asdict(curriculum.generate_configuration())
        config = {k: v for k, v in config.items() if k not in ("seed", "size")}
        if levels and config == levels[-1]:
            return levels
        levels.append(config)
        level += 1


def contains_gold(answer: str, gold: str) -> bool:
    """Whether ``answer`` holds the gold answer among other text (commas ignored, as reasoning-gym's
    numeric scorers ignore them)."""
    pairs = [(answer, gold), (answer.replace(",", ""), gold.replace(",", ""))]
    return any(g.strip() and g in a and a.strip() != g.strip() for a, g in pairs)


def _seed(*parts: object) -> int:
    return int(content_id(*parts), 16) % (2**31)


class ReasoningGymEnvironment:
    """An environment over a list of reasoning-gym tasks (see ``SkillSpec``)."""

    def __init__(self, name: str, specs: list[SkillSpec], system_prompt: str = SYSTEM_PROMPT) -> None:
        if not specs:
            raise ConfigError("a reasoning-gym environment needs at least one task")
        unknown = [s.task for s in specs if s.task not in DATASETS]
        if unknown:
            raise ConfigError(
                f"unknown reasoning-gym task(s) {', '.join(unknown)}; see reasoning_gym.factory.DATASETS"
            )
        self.name = name
        self.system_prompt = system_prompt
        self._specs: dict[str, SkillSpec] = {}
        self._levels: dict[str, list[dict[str, Any]]] = {}
        for spec in specs:
            levels = spec.levels or _curriculum_levels(spec.task)
            if not 0 <= spec.eval_level < len(levels):
                raise ConfigError(f"skill {spec.skill_name!r}: eval_level must be in 0..{len(levels) - 1}")
            self._specs[spec.skill_name] = spec
            self._levels[spec.skill_name] = levels
        self.skills = [
            Skill(
                name=spec.skill_name,
                description=spec.description or f"reasoning-gym task {spec.task}",
                min_difficulty=0,
                max_difficulty=len(self._levels[spec.skill_name]) - 1,
                eval_difficulty=spec.eval_level,
            )
            for spec in self._specs.values()
        ]

    def _dataset(self, skill: str, level: int, seed: int) -> Any:
        spec = self._specs[skill]
        return reasoning_gym.create_dataset(spec.task, seed=seed, size=_POOL, **self._levels[skill][level])

    def _task(self, skill: str, level: int, item: dict[str, Any]) -> Task:
        # JSON round trip: metadata must survive parquet and checkpoints unchanged.
        metadata = json.loads(json.dumps(item["metadata"], default=str))
        return Task(
            skill=skill,
            question=item["question"],
            answer=str(item["answer"]),
            difficulty=level,
            source=f"reasoning-gym:{self._specs[skill].task}",
            metadata=metadata,
        )

    def _draw(self, skill: str, level: int, n: int, seed: int) -> list[Task]:
        """The first ``n`` distinct tasks of a seeded stream (the same ones for the same seed)."""
        dataset = self._dataset(skill, level, seed)
        seen: set[str] = set()
        out: list[Task] = []
        for index in range(n * _MAX_TRIES_PER_ITEM):
            if len(out) == n:
                break
            item = dataset[index]
            key = normalize_question(item["question"])
            if key not in seen:
                seen.add(key)
                out.append(self._task(skill, level, item))
        return out

    def _require_skill(self, skill: str) -> None:
        if skill not in self._specs:
            raise ConfigError(
                f"environment {self.name!r} has no skill {skill!r}; it has {', '.join(self._specs)}"
            )

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        if split not in _SPLIT_PARITY:
            raise ConfigError(f"split must be dev or test, not {split!r}")
        out: list[Task] = []
        parity = _SPLIT_PARITY[split]
        for skill in self._specs:
            stream = self._draw(skill, self._specs[skill].eval_level, 2 * n, _seed("eval", seed, skill))
            out.extend(stream[parity::2])
        return out

    def prompt(self, task: Task) -> list[Message]:
        return [
            Message(role="system", content=self.system_prompt),
            Message(role="user", content=task.question),
        ]

    def score(self, task: Task, completion: str) -> Score:
        spec = self._specs.get(task.skill)
        if spec is None:
            return Score(reward=0.0, feedback=f"unknown skill {task.skill!r}")
        answer = extract_answer(completion)
        entry = {"question": task.question, "answer": task.answer, "metadata": task.metadata}
        try:
            reward = float(reasoning_gym.get_score_answer_fn(spec.task)(answer, entry))
        except (ValueError, TypeError, ArithmeticError, IndexError, KeyError):
            # reasoning-gym verifiers parse the answer themselves and raise on malformed ones.
            return Score(reward=0.0, feedback=f"unparseable answer {answer!r}", parsed_answer=answer)
        reward = min(1.0, max(0.0, reward))
        if reward < 1.0 and contains_gold(answer, task.answer):
            # reasoning-gym's default scorers give len(gold) / len(answer) to an answer that merely
            # contains the gold one: a list of guesses or a flood would earn what a wrong answer does not
            return Score(
                reward=0.0,
                feedback=f"expected {task.answer!r}, got {answer[:200]!r} (more than the answer)",
                parsed_answer=answer,
            )
        feedback = "correct" if reward >= 1.0 else f"expected {task.answer!r}, got {answer!r}"
        return Score(reward=reward, feedback=feedback, parsed_answer=answer)

    def skill_groups(self) -> dict[str, list[str]]:
        """The skill tree: reasoning-gym's own categories (arithmetic, algorithmic, cognition, ...)."""
        groups: dict[str, list[str]] = {}
        for name, spec in self._specs.items():
            category = DATASETS[spec.task][0].__module__.split(".")[1]
            groups.setdefault(category, []).append(name)
        return groups

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        self._require_skill(skill)
        top = len(self._levels[skill]) - 1
        level = min(max(difficulty, 0), top)
        return self._draw(skill, level, n, _seed("train", seed, skill, level))


#: The default mix: skills SmolLM2-135M-Instruct starts near 0% on and learns on a CPU in minutes
#: (see README, "Measured results"); each needs the skill itself, not just the answer format.
#: Skills without explicit levels use reasoning-gym's curriculum and are evaluated at its level 0.
DEFAULT_SKILLS: list[SkillSpec] = [
    SkillSpec(
        task="chain_sum",
        description="add or subtract two numbers of one or two digits",
        levels=[
            {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1},
            {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2},
            {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
        ],
        eval_level=1,
    ),
    SkillSpec(
        task="word_sequence_reversal",
        description="reverse a list of three words",
        levels=[
            {"min_words": 2, "max_words": 2},
            {"min_words": 3, "max_words": 3},
            {"min_words": 4, "max_words": 5},
        ],
        eval_level=1,
    ),
    SkillSpec(
        task="aiw",
        description="Alice-in-Wonderland sibling counting ('how many sisters does her brother have?')",
    ),
    SkillSpec(
        task="family_relationships",
        description="name the relation between two people in a short family story",
    ),
    SkillSpec(task="number_sequence", description="continue an integer sequence"),
]


def default_environment(**options: Any) -> ReasoningGymEnvironment:
    """The default: five reasoning-gym skills a 135M student starts near 0% on (entry point ``reasoning-basics``)."""
    if options:
        raise ConfigError(f"the default environment takes no options, got {', '.join(options)}")
    return ReasoningGymEnvironment("reasoning-basics", DEFAULT_SKILLS)


def load_environment(tasks: str | list[str] = "", **options: Any) -> ReasoningGymEnvironment:
    """Any list of reasoning-gym tasks (entry point ``reasoning-gym``), e.g. ``tasks=gcd,lcm``."""
    if options:
        raise ConfigError(f"the reasoning-gym environment takes only 'tasks', got {', '.join(options)}")
    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)
    names = [n for n in names if n]
    if not names:
        raise ConfigError("the reasoning-gym environment needs tasks, e.g. --env-option tasks=gcd,lcm")
    return ReasoningGymEnvironment("reasoning-gym", [SkillSpec(task=n) for n in names])
