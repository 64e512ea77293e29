"""CritiQ: mine checkable quality criteria from a few human preference pairs, then judge with them.

A *manager* proposes criteria (from the seed library or new), *workers* compare every pair under
every criterion, and each criterion's accuracy against the people's choices decides its fate:
kept at ``keep`` or above, revised by the manager (after reflecting on the pairs it got wrong)
between ``drop`` and ``keep``, dropped and replaced at ``drop`` or below. The graph that repeats
this until nothing changes lives in ``core/criteria_graph.py``; this module holds the pieces.

A worker's verdict on one pair is a majority over ``votes`` samples, half of them with the two
samples shown in swapped order, so a judge that always prefers "A" scores exactly chance. A tie
(equal votes, or a judge that cannot tell) counts as half right: the expected score of a coin flip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.roles import record_fallback
from teachloop.criteria.library import Criterion, Domain, slug
from teachloop.criteria.pairs import PairSample, PreferencePair
from teachloop.environments.base import Skill
from teachloop.foundation.types import Message
from teachloop.llm.client import ChatRequest, Structured, TeacherSession
from teachloop.llm.templates import render
from teachloop.tracing.spans import current_span

Vote = Literal["A", "B", "tie"]
Choice = Literal["a", "b", "tie"]
Fate = Literal["keep", "revise", "drop"]
#: How many pairs the manager sees when proposing, and how many wrong ones when revising.
MANAGER_PAIRS = 12


class CompareReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    better: Vote
    reason: str = ""


class CriterionReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    domain: Domain = "general"
    description: str = Field(min_length=10)

    def criterion(self, origin: Literal["proposed", "revised"]) -> Criterion:
        return Criterion(
            name=slug(self.name), domain=self.domain, description=self.description, origin=origin
        )


class ProposalReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    criteria: list[CriterionReply] = Field(min_length=1)


class CheckReply(BaseModel):
    model_config = ConfigDict(frozen=True)

    met: dict[str, bool]


class CriterionJudge(Protocol):
    """A worker: which of two samples meets ``criterion`` better (``None``: which is better overall).
    ``None`` as the answer means the judge gave no usable verdict."""

    async def compare(
        self, criterion: Criterion | None, first: PairSample, second: PairSample, sample: int
    ) -> Vote | None: ...


class CriteriaManager(Protocol):
    async def propose(self, pairs: Sequence[PreferencePair], n: int) -> list[Criterion]: ...

    async def revise(
        self, criterion: Criterion, accuracy: float, wrong: Sequence[PreferencePair]
    ) -> Criterion | None: ...

    async def replace(
        self,
        dropped: Criterion,
        accuracy: float,
        active: Sequence[Criterion],
        tried: set[str],
        pairs: Sequence[PreferencePair],
    ) -> Criterion | None: ...


class CriterionResult(BaseModel):
    """A criterion's verdicts on a set of pairs and its agreement with the people."""

    model_config = ConfigDict(frozen=True)

    criterion: Criterion
    choices: dict[str, Choice]
    accuracy: float
    wrong: list[str] = Field(default_factory=list, description="ids of pairs it decided against the people")


class MinedCriterion(BaseModel):
    model_config = ConfigDict(frozen=True)

    criterion: Criterion
    status: Literal["kept", "weak"] = Field(description="kept: accuracy >= keep; weak: between drop and keep")
    accuracy: float = Field(description="agreement with the people on the pairs it was mined on")
    held_out_accuracy: float | None = Field(
        description="agreement on pairs it never saw (None: no held-out pairs)"
    )


class CriteriaReport(BaseModel):
    """``criteria.json``: what mining kept, what it dropped, and how far to trust the result."""

    model_config = ConfigDict(frozen=True)

    criteria: list[MinedCriterion]
    dropped: list[dict[str, Any]] = Field(default_factory=list)
    history: list[dict[str, Any]] = Field(default_factory=list)
    mining_pairs: int
    held_out_pairs: int
    combined_held_out: float | None = Field(
        description="the accuracy-weighted vote of the criteria, held out"
    )
    plain_held_out: float | None = Field(
        description="a plain 'which is better' prompt on the same judge, held out"
    )
    settings: dict[str, Any] = Field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "criteria": {
                c.criterion.name: [c.status, c.accuracy, c.held_out_accuracy] for c in self.criteria
            },
            "dropped": [d["criterion"]["name"] for d in self.dropped],
            "combined_held_out": self.combined_held_out,
            "plain_held_out": self.plain_held_out,
        }

    @property
    def scoring_criteria(self) -> list[MinedCriterion]:
        """What the score node judges with: the kept criteria, or the weak ones when none was kept."""
        kept = [c for c in self.criteria if c.status == "kept"]
        return kept or list(self.criteria)


def majority(first_votes: Sequence[Choice]) -> Choice:
    a, b = first_votes.count("a"), first_votes.count("b")
    return "a" if a > b else "b" if b > a else "tie"


def agreement(choices: dict[str, Choice], pairs: Sequence[PreferencePair]) -> float:
    """Share of pairs decided as the people did; a tie counts half."""
    if not pairs:
        return 0.0
    points = sum(1.0 if choices[p.id] == p.better else 0.5 if choices[p.id] == "tie" else 0.0 for p in pairs)
    return points / len(pairs)


def fate(accuracy: float, keep: float, drop: float) -> Fate:
    if accuracy >= keep:
        return "keep"
    return "drop" if accuracy <= drop else "revise"


async def judge_pair(
    judge: CriterionJudge, criterion: Criterion | None, pair: PreferencePair, votes: int
) -> Choice:
    """The majority over ``votes`` verdicts, every other one with the samples in swapped order."""

    async def one(i: int) -> Choice | None:
        swapped = i % 2 == 1
        first, second = (pair.b, pair.a) if swapped else (pair.a, pair.b)
        vote = await judge.compare(criterion, first, second, sample=i // 2)
        if vote is None or vote == "tie":
            return None
        return ("b" if vote == "A" else "a") if swapped else ("a" if vote == "A" else "b")

    verdicts = await asyncio.gather(*(one(i) for i in range(votes)))
    return majority([v for v in verdicts if v is not None])


async def evaluate_criterion(
    judge: CriterionJudge, criterion: Criterion | None, pairs: Sequence[PreferencePair], votes: int
) -> tuple[dict[str, Choice], float]:
    choices = await asyncio.gather(*(judge_pair(judge, criterion, p, votes) for p in pairs))
    by_id = {p.id: c for p, c in zip(pairs, choices, strict=True)}
    return by_id, agreement(by_id, pairs)


def result_of(
    criterion: Criterion, choices: dict[str, Choice], pairs: Sequence[PreferencePair]
) -> CriterionResult:
    return CriterionResult(
        criterion=criterion,
        choices=choices,
        accuracy=agreement(choices, pairs),
        wrong=[p.id for p in pairs if choices[p.id] not in (p.better, "tie")],
    )


def combined_choices(
    results: Sequence[tuple[float, dict[str, Choice]]], pairs: Sequence[PreferencePair]
) -> dict[str, Choice]:
    """The criteria's joint verdict per pair: each votes with weight ``accuracy - 0.5`` (a
    criterion at chance has no say)."""
    out: dict[str, Choice] = {}
    for p in pairs:
        total = sum(
            (acc - 0.5) * (1 if c[p.id] == "a" else -1 if c[p.id] == "b" else 0) for acc, c in results
        )
        out[p.id] = "a" if total > 0 else "b" if total < 0 else "tie"
    return out


def _show(sample: PairSample) -> dict[str, str]:
    return sample.model_dump()


def _shown_pairs(pairs: Sequence[PreferencePair]) -> list[dict[str, object]]:
    """What the manager sees of a pair: the samples and the people's choice, never their reason."""
    return [{"better": p.better, "a": _show(p.a), "b": _show(p.b)} for p in pairs[:MANAGER_PAIRS]]


def _library_view(library: Sequence[Criterion]) -> list[dict[str, str]]:
    return [c.model_dump(include={"name", "domain", "description"}) for c in library]


def unique_name(criterion: Criterion, taken: set[str]) -> Criterion:
    """The criterion under a name not yet used in this mining run (revisions keep their lineage's stem)."""
    name, n = criterion.name, 2
    while name in taken:
        suffix = f"_v{n}"
        name, n = criterion.name[: 64 - len(suffix)] + suffix, n + 1
    return criterion.model_copy(update={"name": name})


class LLMJudge:
    """A CritiQ worker on the teacher LLM (role ``criteria_worker``)."""

    def __init__(self, session: TeacherSession, temperature: float, round_: int | None = None) -> None:
        self.session = session
        self.temperature = temperature
        self.round = round_

    async def compare(
        self, criterion: Criterion | None, first: PairSample, second: PairSample, sample: int
    ) -> Vote | None:
        view = criterion.model_dump(include={"name", "description"}) if criterion else None
        messages = render("criteria_worker", criterion=view, a=_show(first), b=_show(second))
        request = ChatRequest(
            role="criteria_worker", messages=messages, temperature=self.temperature, sample=sample
        )
        purpose = f"compare.{criterion.name}" if criterion else "compare.plain"
        reply = await self.session.ask(request, CompareReply, self.round, purpose)
        return reply.value.better if reply.value else None


class LibraryManager:
    """The heuristic manager: picks seed criteria in library order and never rewrites one (a
    criterion it would revise is replaced by the next untried library criterion instead)."""

    def __init__(self, library: Sequence[Criterion]) -> None:
        self.library = list(library)

    async def propose(self, pairs: Sequence[PreferencePair], n: int) -> list[Criterion]:
        return self.library[:n]

    async def revise(
        self, criterion: Criterion, accuracy: float, wrong: Sequence[PreferencePair]
    ) -> Criterion | None:
        return None

    async def replace(
        self,
        dropped: Criterion,
        accuracy: float,
        active: Sequence[Criterion],
        tried: set[str],
        pairs: Sequence[PreferencePair],
    ) -> Criterion | None:
        return next((c for c in self.library if c.name not in tried), None)


class LLMManager:
    """The CritiQ manager on the teacher LLM (role ``criteria_manager``), starting from the library.

    An unusable reply to ``propose`` or ``revise`` gets the ``fallback`` manager's answer (the seed
    library; no rewrite); one to ``replace`` leaves the dropped criterion unreplaced. Either way the
    current agent span records it (``record_fallback``)."""

    def __init__(
        self,
        session: TeacherSession,
        library: Sequence[Criterion],
        temperature: float,
        fallback: CriteriaManager,
    ) -> None:
        self.session = session
        self.library = list(library)
        self.temperature = temperature
        self.fallback = fallback

    def _messages(self, task: str, pairs: Sequence[PreferencePair], **extra: object) -> list[Message]:
        return render(
            "criteria_manager",
            task=task,
            pairs=_shown_pairs(pairs),
            library=_library_view(self.library),
            **extra,
        )

    async def propose(self, pairs: Sequence[PreferencePair], n: int) -> list[Criterion]:
        request = ChatRequest(role="criteria_manager", messages=self._messages("propose", pairs, n=n))
        reply = await self.session.ask(request, ProposalReply, purpose="propose")
        if reply.value is None:
            record_fallback(current_span(), "seed library", reply.error)
            return await self.fallback.propose(pairs, n)
        out: list[Criterion] = []
        for item in reply.value.criteria[:n]:
            known = next((c for c in self.library if c.name == slug(item.name)), None)
            candidate = known or item.criterion("proposed")
            out.append(unique_name(candidate, {c.name for c in out}))
        return out

    async def _one(
        self, task: str, pairs: Sequence[PreferencePair], **extra: object
    ) -> Structured[CriterionReply]:
        request = ChatRequest(
            role="criteria_manager",
            messages=self._messages(task, pairs, **extra),
            temperature=self.temperature,
        )
        return await self.session.ask(request, CriterionReply, purpose=task)

    async def revise(
        self, criterion: Criterion, accuracy: float, wrong: Sequence[PreferencePair]
    ) -> Criterion | None:
        reply = await self._one("revise", wrong, criterion=criterion.model_dump(), accuracy=accuracy)
        if reply.value is None:
            record_fallback(current_span(), "no revision (seed library manager)", reply.error)
            return await self.fallback.revise(criterion, accuracy, wrong)
        return reply.value.criterion("revised")

    async def replace(
        self,
        dropped: Criterion,
        accuracy: float,
        active: Sequence[Criterion],
        tried: set[str],
        pairs: Sequence[PreferencePair],
    ) -> Criterion | None:
        reply = await self._one(
            "replace",
            pairs,
            criterion=dropped.model_dump(),
            accuracy=accuracy,
            active=[c.name for c in active],
        )
        if reply.value is None:  # not the library's next criterion: mining results stay as they were
            record_fallback(current_span(), "no replacement", reply.error)
            return None
        return reply.value.criterion("proposed")


def check_prompt(skill: dict[str, str], sample: PairSample, criteria: Sequence[Criterion]) -> list[Message]:
    return render(
        "criteria_check",
        skill=skill,
        sample=_show(sample),
        criteria=[c.model_dump(include={"name", "description"}) for c in criteria],
    )


def criteria_score(met: dict[str, bool], weights: dict[str, float]) -> float:
    """The accuracy-weighted share of criteria a sample meets; a criterion the judge skipped counts as unmet."""
    total = sum(weights.values())
    return sum(w for name, w in weights.items() if met.get(name)) / total if total else 0.0


async def check_samples(
    session: TeacherSession,
    skills: dict[str, Skill],
    samples: Sequence[tuple[str, PairSample]],
    criteria: Sequence[MinedCriterion],
    round_: int | None = None,
) -> list[float | None]:
    """Each (skill, sample)'s criteria score from the judge LLM (role ``judge``), one request per
    sample; ``None`` where the reply was unusable (the sample is then ranked without it)."""
    weights = {c.criterion.name: c.accuracy for c in criteria}
    shown = [c.criterion for c in criteria]

    async def one(skill: str, sample: PairSample) -> float | None:
        info = skills.get(skill, Skill(name=skill))
        messages = check_prompt({"name": info.name, "description": info.description}, sample, shown)
        reply = await session.ask(ChatRequest(role="judge", messages=messages), CheckReply, round_, "check")
        return criteria_score(reply.value.met, weights) if reply.value else None

    return list(await asyncio.gather(*(one(skill, s) for skill, s in samples)))
