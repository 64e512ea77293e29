"""Human preference pairs: two training samples for the same skill, and which one is better.

CritiQ mines quality criteria from a few such pairs (about 30 are enough), so the file format is
small and strict: one JSON object per line,

    {"id": "p01", "skill": "chain_sum",
     "a": {"question": "...", "solution": "...", "answer": "..."},
     "b": {"question": "...", "solution": "", "answer": "..."},
     "better": "a", "why": "b's answer is wrong"}

``id`` must be unique, ``solution`` and ``why`` may be empty or missing (``why`` is for people;
no agent sees it, or mining would be told the answer). A bad line is reported with its number.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from teachloop.agents.review import ReviewRecord
from teachloop.agents.selector import SelectedSample
from teachloop.environments.base import Task
from teachloop.foundation.errors import ConfigError

#: The default environment's shipped example pairs (docs/criteria.md describes how they were made).
EXAMPLE_PAIRS = (
    Path(__file__).resolve().parent.parent / "environments" / "data" / "reasoning_basics_pairs.jsonl"
)


class PairSample(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str = Field(min_length=1)
    solution: str = ""
    answer: str


class PreferencePair(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    skill: str = ""
    a: PairSample
    b: PairSample
    better: Literal["a", "b"]
    why: str = ""

    @property
    def chosen(self) -> PairSample:
        return self.a if self.better == "a" else self.b

    @property
    def rejected(self) -> PairSample:
        return self.b if self.better == "a" else self.a


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "line"
    return f"{where}: {first['msg']}"


def load_pairs(path: Path) -> list[PreferencePair]:
    """Every pair in a JSONL file; a ConfigError naming the file and line for anything unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"pairs file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read pairs file {path}: {err}") from None
    pairs: list[PreferencePair] = []
    seen: set[str] = set()
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 may sit in a string
        if not line.strip():
            continue
        try:
            pair = PreferencePair.model_validate(json.loads(line))
        except json.JSONDecodeError as err:
            raise ConfigError(f"pairs file {path}, line {number}: not JSON ({err.msg})") from None
        except RecursionError:
            raise ConfigError(f"pairs file {path}, line {number}: JSON nested too deeply") from None
        except ValidationError as err:
            raise ConfigError(f"pairs file {path}, line {number}: {_one_line(err)}") from None
        if pair.id in seen:
            raise ConfigError(f"pairs file {path}, line {number}: duplicate id {pair.id!r}")
        seen.add(pair.id)
        pairs.append(pair)
    if len(pairs) < 2:
        raise ConfigError(f"pairs file {path} holds {len(pairs)} pair(s); mining needs at least 2")
    return pairs


def split_pairs(
    pairs: list[PreferencePair], held_out: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """Pairs to mine on and pairs to report on: criteria are never scored on the pairs that made them."""
    order = sorted(pairs, key=lambda p: p.id)
    random.Random(seed).shuffle(order)
    n_held = min(len(order) - 1, max(1, round(len(order) * held_out))) if held_out > 0 else 0
    return order[n_held:], order[:n_held]


def _pair_sample(task: Task) -> PairSample:
    return PairSample(question=task.question, solution=task.solution, answer=task.answer)


def review_pairs(record: ReviewRecord, kept: list[SelectedSample]) -> list[PreferencePair]:
    """Preference pairs a data review made: each edited answer over its original, and each rejected
    sample against the first kept, unedited sample of its skill (none when its skill kept nothing)."""
    decision = record.decision
    by = f"reviewer {decision.reviewer}" + (f": {decision.note}" if decision.note else "")
    k = decision.round
    pairs = [
        PreferencePair(
            id=f"review-r{k}-edit-{e.after.id}",
            skill=e.after.skill,
            a=_pair_sample(e.after),
            b=_pair_sample(e.before),
            better="a",
            why=f"answer corrected by {by}",
        )
        for e in record.edited
    ]
    edited = {e.after.id for e in record.edited}
    for task in record.rejected:
        partner = next((s.task for s in kept if s.task.skill == task.skill and s.task.id not in edited), None)
        if partner is not None:
            pairs.append(
                PreferencePair(
                    id=f"review-r{k}-reject-{task.id}",
                    skill=task.skill,
                    a=_pair_sample(partner),
                    b=_pair_sample(task),
                    better="a",
                    why=f"rejected by {by}",
                )
            )
    return pairs
