"""Your own questions and answers as an environment (entry point ``jsonl``).

One JSON object per line::

    {"question": "What is the capital of France?", "answer": "Paris", "skill": "geography"}

``skill`` is optional (default ``default``). Scoring compares the student's final answer (see
``environments/answer.py``) with the gold one:

- ``exact``: equal after case folding and collapsing whitespace (a trailing period is ignored);
- ``numeric``: both parse as numbers and differ by at most ``tolerance`` (relative, at least
  absolute for numbers below 1); every answer in the file must be a number;
- ``regex``: each line also has a ``pattern`` (a Python regular expression) that the answer
  must match in full, ignoring case; the line's ``answer`` must match its own pattern.

The file is split per skill by ``split_seed`` into dev, test and a training pool from which the
heuristic teacher draws (see ``environments/pool.py``); every skill needs at least two distinct
questions. Problems with the file are reported as one line naming the file and line.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Literal, cast

from teachloop.environments.answer import extract_answer
from teachloop.environments.base import Score, Skill, Split, Task
from teachloop.environments.pool import TaskPool
from teachloop.foundation.errors import ConfigError
from teachloop.foundation.types import Message

Scoring = Literal["exact", "numeric", "regex"]
SYSTEM_PROMPT = "Answer with the final answer only."
DEFAULT_SKILL = "default"
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def _normalize(text: str) -> str:
    return " ".join(text.casefold().split()).removesuffix(".").strip()


def parse_number(text: str) -> float | None:
    """A number written plainly, with thousands separators, a currency sign or a percent sign."""
    cleaned = text.strip().replace(",", "").removeprefix("$").removesuffix("%").strip()
    if not _NUMBER.match(cleaned):
        return None
    value = float(cleaned)
    return value if math.isfinite(value) else None


def _text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def read_tasks(path: Path, scoring: Scoring) -> list[Task]:
    """Parse and check the file; the first problem raises a ``ConfigError`` naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines: U+2028 may sit in a string
    except FileNotFoundError:
        raise ConfigError(f"JSONL file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read JSONL file {path}: {err}") from None
    tasks = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{where} is not valid JSON: {err.msg} (column {err.colno})") from None
        if not isinstance(row, dict):
            raise ConfigError(
                f"{where} must be a JSON object with question and answer, not {type(row).__name__}"
            )
        fields = {"question", "answer"} | ({"pattern"} if scoring == "regex" else set())
        missing = sorted(f for f in fields if f not in row)
        if missing:
            raise ConfigError(f"{where} has no {' or '.join(repr(m) for m in missing)} field")
        question, answer = _text(row["question"]), _text(row["answer"])
        if not question or not question.strip():
            raise ConfigError(f"{where}: 'question' must be a non-empty string")
        if answer is None or not answer.strip():
            raise ConfigError(f"{where}: 'answer' must be a non-empty string or number")
        skill = row.get("skill", DEFAULT_SKILL)
        if not isinstance(skill, str) or not skill.strip():
            raise ConfigError(f"{where}: 'skill' must be a non-empty string")
        metadata: dict[str, Any] = {"line": number}
        if scoring == "numeric" and parse_number(answer) is None:
            raise ConfigError(f"{where}: answer {answer!r} is not a number (scoring is numeric)")
        if scoring == "regex":
            pattern = row["pattern"]
            if not isinstance(pattern, str):
                raise ConfigError(f"{where}: 'pattern' must be a string")
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except re.error as err:
                raise ConfigError(f"{where}: 'pattern' is not a valid regular expression: {err}") from None
            if not compiled.fullmatch(answer.strip()):
                raise ConfigError(f"{where}: answer {answer!r} does not match its own pattern")
            metadata["pattern"] = pattern
        tasks.append(
            Task(
                skill=skill.strip(),
                question=question,
                answer=answer.strip(),
                source=f"jsonl:{path.name}",
                metadata=metadata,
            )
        )
    if not tasks:
        raise ConfigError(f"JSONL file {path} holds no questions")
    return tasks


class JsonlEnvironment:
    """Questions from a JSONL file, split into dev / test / training pool, scored by rule."""

    def __init__(
        self,
        path: Path,
        scoring: Scoring = "exact",
        tolerance: float = 1e-6,
        dev_fraction: float = 0.2,
        test_fraction: float = 0.3,
        split_seed: int = 0,
        system_prompt: str = SYSTEM_PROMPT,
    ) -> None:
        self.name = "jsonl"
        self.path = path
        self.scoring = scoring
        self.tolerance = tolerance
        self.system_prompt = system_prompt
        self.pool = TaskPool(read_tasks(path, scoring), dev_fraction, test_fraction, split_seed)
        train = self.pool.sizes("train")
        self.skills = [
            Skill(name=skill, description=f"from {path.name} ({train[skill]} training questions)")
            for skill in self.pool.sizes("dev")
        ]

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        return self.pool.tasks(split, n, seed)

    def prompt(self, task: Task) -> list[Message]:
        return [
            Message(role="system", content=self.system_prompt),
            Message(role="user", content=task.question),
        ]

    def _matches(self, task: Task, candidate: str) -> bool:
        if self.scoring == "numeric":
            got, want = parse_number(candidate), parse_number(task.answer)
            return (
                got is not None
                and want is not None
                and abs(got - want) <= self.tolerance * max(1.0, abs(want))
            )
        if self.scoring == "regex":
            return re.fullmatch(task.metadata["pattern"], candidate.strip(), re.IGNORECASE) is not None
        return _normalize(candidate) == _normalize(task.answer)

    def score(self, task: Task, completion: str) -> Score:
        answer = extract_answer(completion)
        solved = self._matches(task, answer) or self._matches(task, completion)
        feedback = "correct" if solved else f"expected {task.answer!r}, got {answer!r}"
        return Score(reward=1.0 if solved else 0.0, feedback=feedback, parsed_answer=answer)

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        """Draw from the training pool (questions in neither dev nor test); difficulty is not used."""
        return self.pool.draw(skill, n, seed)


def load_environment(
    path: str = "",
    scoring: str = "exact",
    tolerance: float = 1e-6,
    dev_fraction: float = 0.2,
    test_fraction: float = 0.3,
    split_seed: int = 0,
    system_prompt: str = SYSTEM_PROMPT,
) -> JsonlEnvironment:
    """Your own questions from a JSONL file, e.g. ``--env-option path=qa.jsonl --env-option scoring=numeric``."""
    if not path:
        raise ConfigError("the jsonl environment needs a file: --env-option path=FILE.jsonl")
    if scoring not in ("exact", "numeric", "regex"):
        raise ConfigError(f"scoring must be exact, numeric or regex, not {scoring!r}")
    if not tolerance >= 0:
        raise ConfigError(f"tolerance must be at least 0, not {tolerance}")
    return JsonlEnvironment(
        Path(path).expanduser(),
        cast(Scoring, scoring),
        float(tolerance),
        float(dev_fraction),
        float(test_fraction),
        int(split_seed),
        system_prompt,
    )
