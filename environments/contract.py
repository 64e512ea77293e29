"""Checking that an environment plug-in keeps the contract of ``environments/base.py``.

Two gates, so that a broken plug-in fails with a message naming it instead of deep in the loop:

- ``validate_environment`` runs once when the plug-in is loaded, without a model (like the
  ``validate()`` of Prime Intellect's verifiers): the types are right, dev and test do not
  share a question, and the gold answer of a few dev, test and generated tasks passes the
  environment's own scorer (a plug-in whose gold answers fail its verifier would teach wrong
  answers and report wrong accuracies).
- ``checked`` wraps the environment for the run: every call's result is type-checked and any
  exception other than a ``TeachloopError`` becomes a ``PluginError`` that names the plug-in and
  the call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import TypeVar, cast

from teachloop.environments.base import (
    Environment,
    Score,
    Skill,
    SkillTree,
    Split,
    Task,
    TaskChecker,
    TaskGenerator,
    normalize_question,
)
from teachloop.foundation.errors import PluginError, TeachloopError
from teachloop.foundation.types import Message

T = TypeVar("T")


def _call(label: str, what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except TeachloopError:
        raise
    except Exception as err:
        raise PluginError(
            f"environment plug-in {label!r}: {what} raised {type(err).__name__}: {err}"
        ) from None


def _list_of(label: str, what: str, value: object, kind: type[T]) -> list[T]:
    if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
        got = type(value).__name__
        if isinstance(value, list):
            got = f"a list holding {', '.join(sorted({type(v).__name__ for v in value}))}"
        raise PluginError(
            f"environment plug-in {label!r}: {what} must return a list of {kind.__name__}, got {got}"
        )
    return value


def _score(label: str, env: Environment, task: Task, completion: str) -> Score:
    score = _call(label, f"score() of task {task.id}", lambda: env.score(task, completion))
    if not isinstance(score, Score):
        raise PluginError(
            f"environment plug-in {label!r}: score() must return a Score, got {type(score).__name__}"
        )
    return score


def _tasks(label: str, skills: set[str], what: str, fn: Callable[[], object]) -> list[Task]:
    tasks = _list_of(label, what, _call(label, what, fn), Task)
    stray = sorted({t.skill for t in tasks} - skills)
    if stray:
        raise PluginError(
            f"environment plug-in {label!r}: {what} returned tasks of unknown skill(s) {', '.join(stray)}"
        )
    return tasks


def skill_names(label: str, env: Environment) -> set[str]:
    """The names of ``env``'s skills, once they are a non-empty list of uniquely named ``Skill``s."""
    if not isinstance(env.name, str) or not env.name:
        raise PluginError(f"environment plug-in {label!r}: name must be a non-empty string")
    skills = _list_of(label, "skills", env.skills, Skill)
    names = [s.name for s in skills]
    if not names:
        raise PluginError(f"environment plug-in {label!r} has no skills")
    if len(set(names)) != len(names):
        raise PluginError(f"environment plug-in {label!r}: skill names must be unique")
    return set(names)


def _skill_groups(label: str, env: SkillTree, skills: set[str]) -> dict[str, list[str]]:
    groups = _call(label, "skill_groups()", env.skill_groups)
    if not isinstance(groups, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v)
        for k, v in groups.items()
    ):
        raise PluginError(
            f"environment plug-in {label!r}: skill_groups() must return a dict of str to a list of "
            f"skill names, got {type(groups).__name__}"
        )
    stray = sorted({s for members in groups.values() for s in members} - skills)
    if stray:
        raise PluginError(
            f"environment plug-in {label!r}: skill_groups() names unknown skill(s) {', '.join(stray)}"
        )
    return groups


def validate_environment(env: Environment, label: str) -> None:
    """Check ``env`` without a model; raise a ``PluginError`` naming ``label`` on the first problem."""
    skills = skill_names(label, env)
    if isinstance(env, SkillTree):
        _skill_groups(label, env, skills)
    drawn: dict[Split, list[Task]] = {}
    for split in ("dev", "test"):
        drawn[split] = _tasks(label, skills, f"tasks({split!r}, 1, 0)", partial(env.tasks, split, 1, 0))
        if not drawn[split]:
            raise PluginError(f"environment plug-in {label!r}: tasks({split!r}, 1, 0) returned no tasks")
    shared = {normalize_question(t.question) for t in drawn["dev"]} & {
        normalize_question(t.question) for t in drawn["test"]
    }
    if shared:
        raise PluginError(f"environment plug-in {label!r}: dev and test share a question")
    candidates = drawn["dev"] + drawn["test"]
    if isinstance(env, TaskGenerator):
        for skill in env.skills:
            candidates += _tasks(
                label,
                {skill.name},
                f"generate({skill.name!r}, 1, {skill.eval_difficulty}, 0)",
                partial(env.generate, skill.name, 1, skill.eval_difficulty, 0),
            )
    for task in candidates:
        messages = _list_of(label, "prompt()", _call(label, "prompt()", partial(env.prompt, task)), Message)
        if not messages:
            raise PluginError(f"environment plug-in {label!r}: prompt() returned no messages")
        score = _score(label, env, task, task.answer)
        if not score.solved:
            raise PluginError(
                f"environment plug-in {label!r}: the gold answer of task {task.id} ({task.skill}) fails "
                f"its own scorer (reward {score.reward:g}: {score.feedback})"
            )
    _score(label, env, candidates[0], "")


class CheckedEnvironment:
    """An environment whose every call is checked. ``checked`` adds the optional capabilities
    (``TaskGenerator``, ``SkillTree``, ``TaskChecker``) exactly when the plug-in has them, so ``isinstance`` checks
    against them answer for the plug-in; the unwrapped object is ``plugin``."""

    def __init__(self, env: Environment, label: str) -> None:
        self._env = env
        self._label = label
        self._skill_set = {s.name for s in env.skills}
        self.name = env.name
        self.skills = env.skills

    @property
    def plugin(self) -> Environment:
        """The environment as the plug-in made it."""
        return self._env

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        what = f"tasks({split!r}, {n}, {seed})"
        return _tasks(self._label, self._skill_set, what, lambda: self._env.tasks(split, n, seed))

    def prompt(self, task: Task) -> list[Message]:
        return _list_of(
            self._label, "prompt()", _call(self._label, "prompt()", lambda: self._env.prompt(task)), Message
        )

    def score(self, task: Task, completion: str) -> Score:
        return _score(self._label, self._env, task, completion)


class CheckedGenerator(CheckedEnvironment):
    """A checked environment that also generates tasks."""

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        generator = cast(TaskGenerator, self._env)  # ``checked`` uses this class only for generators
        what = f"generate({skill!r}, {n}, {difficulty}, {seed})"
        return _tasks(
            self._label, self._skill_set, what, partial(generator.generate, skill, n, difficulty, seed)
        )


class CheckedSkillTree(CheckedEnvironment):
    """A checked environment that also groups its skills."""

    def skill_groups(self) -> dict[str, list[str]]:
        return _skill_groups(self._label, cast(SkillTree, self._env), self._skill_set)


class CheckedTaskChecker(CheckedEnvironment):
    """A checked environment that also judges tasks a teacher wrote."""

    def check_task(self, task: Task) -> Score:
        checker = cast(TaskChecker, self._env)
        what = f"check_task({task.id!r})"
        score = _call(self._label, what, partial(checker.check_task, task))
        if not isinstance(score, Score):
            raise PluginError(
                f"environment plug-in {self._label!r}: {what} must return a Score, got {type(score).__name__}"
            )
        return score


#: Each optional capability and the wrapper mixin that carries it.
_CAPABILITIES: list[tuple[type, type[CheckedEnvironment]]] = [
    (TaskGenerator, CheckedGenerator),
    (SkillTree, CheckedSkillTree),
    (TaskChecker, CheckedTaskChecker),
]


@cache
def _wrapper(mixins: tuple[type[CheckedEnvironment], ...]) -> type[CheckedEnvironment]:
    if not mixins:
        return CheckedEnvironment
    name = "Checked" + "".join(m.__name__.removeprefix("Checked") for m in mixins)
    return type(name, mixins, {})


def checked(env: Environment, label: str) -> CheckedEnvironment:
    """Wrap ``env`` so that a broken call raises a ``PluginError`` naming ``label``."""
    mixins = tuple(mixin for capability, mixin in _CAPABILITIES if isinstance(env, capability))
    return _wrapper(mixins)(env, label)
