"""CritiQ's keep / revise / drop logic, with a scripted judge and manager (no LLM).

The scripted judge knows which pair each sample came from and answers per criterion by rule:
``answer_correct`` always sides with the people, ``always_a`` always says "A" (position bias),
``half_right`` sides with the people on two pairs of three, and its revision ``half_right_fixed``
always does. The manager revises by appending ``_fixed`` and replaces with ``replacement``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from teachloop.criteria.agents import (
    CriteriaManager,
    CriterionJudge,
    Vote,
    agreement,
    combined_choices,
    fate,
    judge_pair,
)
from teachloop.criteria.config import CriteriaConfig
from teachloop.criteria.graph import REPORT_FILE, mine_with
from teachloop.criteria.library import Criterion
from teachloop.criteria.pairs import PairSample, PreferencePair
from teachloop.tracing.spans import Tracer, read_spans


def _pair(i: int) -> PreferencePair:
    good = PairSample(question=f"What is {i} + 1? (pair {i})", answer=str(i + 1))
    bad = PairSample(question=f"What is {i} + 1? (pair {i})", answer=str(i + 7))
    better = "a" if i % 2 else "b"
    a, b = (good, bad) if better == "a" else (bad, good)
    return PreferencePair(id=f"p{i:02d}", skill="add", a=a, b=b, better=better)


PAIRS = [_pair(i) for i in range(12)]


def _criterion(name: str, origin: str = "seed") -> Criterion:
    return Criterion(name=name, description=f"scripted criterion {name}", origin=origin)  # type: ignore[arg-type]


class ScriptedJudge:
    def __init__(self) -> None:
        self.calls = 0

    async def compare(
        self, criterion: Criterion | None, first: PairSample, second: PairSample, sample: int
    ) -> Vote | None:
        self.calls += 1
        name = criterion.name if criterion else "plain"
        right: Vote = "A" if int(first.answer) < int(second.answer) else "B"  # the correct sum is smaller
        wrong: Vote = "B" if right == "A" else "A"
        if name == "always_a":
            return "A"
        if name == "half_right":
            pair_number = int(first.question.rsplit(" ", 1)[1].rstrip(")"))
            return right if pair_number % 3 else wrong
        if name == "unusable":
            return None
        return right


class ScriptedManager:
    def __init__(self, proposals: list[Criterion]) -> None:
        self.proposals = proposals
        self.revised: list[str] = []
        self.replaced: list[str] = []

    async def propose(self, pairs: Sequence[PreferencePair], n: int) -> list[Criterion]:
        return self.proposals[:n]

    async def revise(
        self, criterion: Criterion, accuracy: float, wrong: Sequence[PreferencePair]
    ) -> Criterion | None:
        self.revised.append(criterion.name)
        assert wrong and all(p.id in {q.id for q in PAIRS} for p in wrong)
        return _criterion(f"{criterion.name}_fixed", "revised")

    async def replace(
        self,
        dropped: Criterion,
        accuracy: float,
        active: Sequence[Criterion],
        tried: set[str],
        pairs: Sequence[PreferencePair],
    ) -> Criterion | None:
        self.replaced.append(dropped.name)
        assert dropped.name in tried
        return _criterion("replacement", "proposed")


def _runner(
    judge: CriterionJudge, manager: CriteriaManager
) -> Callable[[Callable[[CriterionJudge, CriteriaManager], Awaitable[Any]]], Any]:
    return lambda work: asyncio.run(work(judge, manager))


def _mine(tmp_path: Path, manager: ScriptedManager, judge: ScriptedJudge, **settings: Any) -> Any:
    config = CriteriaConfig(**{"held_out": 0.25, "votes": 2, **settings})
    with Tracer(tmp_path / "traces.sqlite") as tracer:
        return mine_with(PAIRS, config, tmp_path / "mined", 0, tracer, _runner(judge, manager))


def test_fates_follow_the_thresholds() -> None:
    assert fate(0.75, 0.75, 0.5) == "keep"
    assert fate(0.74, 0.75, 0.5) == "revise"
    assert fate(0.5, 0.75, 0.5) == "drop"


def test_swapped_votes_cancel_a_position_biased_judge() -> None:
    judge = ScriptedJudge()
    assert asyncio.run(judge_pair(judge, _criterion("always_a"), PAIRS[0], votes=4)) == "tie"
    assert asyncio.run(judge_pair(judge, _criterion("answer_correct"), PAIRS[0], votes=4)) == PAIRS[0].better
    assert asyncio.run(judge_pair(judge, _criterion("unusable"), PAIRS[0], votes=4)) == "tie"


def test_a_tie_counts_half_and_the_combined_vote_weighs_by_accuracy() -> None:
    pairs = PAIRS[:2]  # better: b, a
    assert agreement({"p00": "b", "p01": "tie"}, pairs) == 0.75
    strong = (0.9, {"p00": "b", "p01": "a"})
    weak_wrong = (0.6, {"p00": "a", "p01": "b"})
    assert combined_choices([strong, weak_wrong], pairs) == {"p00": "b", "p01": "a"}
    assert combined_choices([(0.5, {"p00": "a", "p01": "b"})], pairs) == {"p00": "tie", "p01": "tie"}


def test_mining_keeps_revises_and_drops(tmp_path: Path) -> None:
    manager = ScriptedManager(
        [_criterion("answer_correct"), _criterion("always_a"), _criterion("half_right")]
    )
    report = _mine(tmp_path, manager, ScriptedJudge(), proposals=3)
    assert manager.revised == ["half_right"]
    assert manager.replaced == ["always_a"]
    final = {c.criterion.name: c for c in report.criteria}
    assert set(final) == {"answer_correct", "half_right_fixed", "replacement"}
    assert all(
        c.status == "kept" and c.accuracy == 1.0 and c.held_out_accuracy == 1.0 for c in final.values()
    )
    assert final["half_right_fixed"].criterion.origin == "revised"
    assert [d["criterion"]["name"] for d in report.dropped] == ["always_a"]
    assert report.dropped[0]["accuracy"] == 0.5
    fates = {(h["iteration"], h["criterion"]): h["fate"] for h in report.history}
    assert fates[(1, "half_right")] == "revise" and fates[(1, "always_a")] == "drop"
    assert fates[(2, "replacement")] == "keep"
    assert report.mining_pairs == 9 and report.held_out_pairs == 3
    assert report.combined_held_out == 1.0 and report.plain_held_out == 1.0
    assert (tmp_path / "mined" / REPORT_FILE).is_file()
    names = {s.name for s in read_spans(tmp_path / "traces.sqlite")}
    assert {"criteria_manager.propose", "criteria_worker.judge", "criteria_manager.reflect"} <= names


def test_mining_stops_after_its_iterations_and_marks_weak_criteria(tmp_path: Path) -> None:
    manager = ScriptedManager([_criterion("half_right")])
    report = _mine(tmp_path, manager, ScriptedJudge(), proposals=1, iterations=1)
    assert manager.revised == [] and manager.replaced == []  # the only pass just records fates
    assert [(c.criterion.name, c.status) for c in report.criteria] == [("half_right", "weak")]
    assert report.scoring_criteria == report.criteria  # no kept criterion: the weak ones score


def test_finished_mining_is_read_back_without_judging_again(tmp_path: Path) -> None:
    proposals = [_criterion("answer_correct")]
    first = _mine(tmp_path, ScriptedManager(proposals), ScriptedJudge(), proposals=1)
    judge = ScriptedJudge()
    again = _mine(tmp_path, ScriptedManager(proposals), judge, proposals=1)
    assert again == first and judge.calls == 0
    (tmp_path / "mined" / REPORT_FILE).unlink()  # a finished mining whose report was deleted mines again
    assert _mine(tmp_path, ScriptedManager(proposals), judge, proposals=1) == first and judge.calls > 0


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="drop must be below"):
        CriteriaConfig(keep=0.5, drop=0.6)


def test_a_mining_that_crashed_resumes_without_judging_finished_criteria_again(tmp_path: Path) -> None:
    class Crashing(ScriptedManager):
        async def revise(
            self, criterion: Criterion, accuracy: float, wrong: Sequence[PreferencePair]
        ) -> Criterion | None:
            raise RuntimeError("the manager's machine went away")

    proposals = [_criterion("answer_correct"), _criterion("half_right")]
    first_judge = ScriptedJudge()
    with pytest.raises(RuntimeError, match="went away"):
        _mine(tmp_path, Crashing(proposals), first_judge, proposals=2)
    assert first_judge.calls == 2 * 9 * 2  # both criteria judged on the 9 mining pairs, 2 votes each
    judge = ScriptedJudge()
    report = _mine(tmp_path, ScriptedManager(proposals), judge, proposals=2)
    assert {c.criterion.name for c in report.criteria} == {"answer_correct", "half_right_fixed"}
    # only the revision (9 pairs) and the held-out report (2 criteria + plain, 3 pairs) were judged
    assert judge.calls == 9 * 2 + 3 * 3 * 2
