"""The gold-answer gate reaches past load time: a plug-in's generated tasks and the teacher's
synthetic tasks are checked against the environment's own verifier before they can be trained on
(``agents/scorer.py`` marks them ``verified``; ``select`` takes only usable ones)."""

from __future__ import annotations

import random

from teachloop.agents.planner import Allocation, Plan
from teachloop.agents.scorer import score_candidates
from teachloop.agents.selector import select
from teachloop.agents.synthesizer import SYNTH_SOURCE, AnswerCheck, with_check
from teachloop.environments.base import Message, Score, Skill, Task
from teachloop.environments.contract import checked, validate_environment

SKILL = "add"


class SloppyAdder:
    """Honest verifier, sloppy generator: right at seed 0 (what the load-time check draws), off by
    one on every third task of other seeds."""

    def __init__(self) -> None:
        self.name = "sloppy-adder"
        self.skills = [Skill(name=SKILL)]

    def _task(self, a: int, b: int, wrong: bool) -> Task:
        return Task(
            skill=SKILL,
            question=f"What is {a} + {b}?",
            answer=str(a + b + wrong),
            metadata={"a": a, "b": b},
        )

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        offset = 0 if split == "dev" else 500
        return [self._task(offset + i, 1, False) for i in range(n)]

    def prompt(self, task: Task) -> list[Message]:
        return [Message(role="user", content=task.question)]

    def score(self, task: Task, completion: str) -> Score:
        right = str(task.metadata["a"] + task.metadata["b"])
        return Score(reward=float(completion.strip() == right), feedback=f"expected {right}")

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        rng = random.Random(seed)
        return [self._task(1000 + rng.randrange(10**6), 2, seed != 0 and i % 3 == 0) for i in range(n)]


def test_generated_tasks_with_a_wrong_gold_answer_are_never_selected() -> None:
    plugin = SloppyAdder()
    validate_environment(plugin, "sloppy-adder")  # the load-time check sees only seed 0: it passes
    env = checked(plugin, "sloppy-adder")
    generated = env.generate(SKILL, 9, 0, seed=4)
    scored = score_candidates(env, generated, set(), set())
    bad = {t.id for i, t in enumerate(generated) if i % 3 == 0}
    assert {s.task.id for s in scored if not s.verified} == bad
    assert not any(s.usable for s in scored if s.task.id in bad)
    allocation = Allocation(skill=SKILL, n=9, difficulty=0, reason="test")
    plan = Plan(round=1, policy="test", budget=9, allocations=[allocation])
    chosen = select(scored, plan, [], replay={}, seed=0)
    assert len(chosen) == 6 and not {c.task.id for c in chosen} & bad


def test_a_synthetic_task_whose_answer_check_failed_is_not_verified() -> None:
    """Comparing a teacher's answer with itself proves nothing: the synthesizer's check decides."""
    env = checked(SloppyAdder(), "sloppy-adder")
    made_up = Task(
        skill=SKILL, question="What is 7 + 2?", answer="9", source=SYNTH_SOURCE, metadata={"a": 7, "b": 2}
    )
    failed = with_check(made_up, AnswerCheck(method="agreement", passed=False, agreement=0.0, votes=3))
    passed = with_check(made_up, AnswerCheck(method="agreement", passed=True, agreement=1.0, votes=3))
    flags = [s.verified for s in score_candidates(env, [failed, passed], set(), set())]
    assert flags == [False, True]
