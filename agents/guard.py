"""The forgetting guard: before a round is accepted, did any skill get worse on dev?

A round's training can undo what earlier rounds taught (FACTS: products 0.73 -> 0.33 -> 0.80 across
rounds; results.md: aiw 68% -> 20% when deficit moved its data away). The guard compares the
student after training with the student it trained from, skill by skill, on the dev items — the
same items both times, answered greedily, so the comparison is paired: what matters is the items
a skill *lost* (right before, wrong after: MUSCLE's negative flips) against the items it *gained*.

The rule: a skill dropped when its losses outnumber its gains by more than chance allows —
under "no change", each changed item is lost or gained with probability 1/2, so the one-sided
exact sign test (McNemar's exact test) gives p = P(X >= lost), X ~ Binomial(lost + gained, 1/2).
A skill is flagged when p < alpha / skills (Bonferroni), which keeps the chance of a false alarm
in a round at most ``alpha`` whatever the number of skills. Why this rule and not an interval
per accuracy: a Wilson upper bound below the previous accuracy treats the previous accuracy as
exact (too many false alarms); two independent-proportion intervals ignore that the items are
the same (too few alarms). With 24 dev items per skill and five skills, a net loss of 7 items
with no gains (29 points) is flagged; 8 lost against 1 gained is not.

The check costs no model call: the loop reuses the dev results of the evaluation after training.
What a flagged round leads to (``teacher.guard.action``):
- ``repair`` (default): a round that gained more dev items than it lost over all skills is kept
  and the next round repairs the dropped skills (part of their data replays what earlier rounds
  taught them); a round that did not is undone. Undoing a round that taught four skills to save
  a fifth throws away more than it saves: on the default run (seed 0, native bf16) rolling back
  round 2 for aiw ended the run at 53.0% test accuracy, against 67.5% when the round is kept.
- ``rollback`` undoes every flagged round (the student goes back to the model it trained from,
  and the next round replays earlier data for every skill);
- ``warn`` keeps it with the evidence recorded, ``off`` skips the check.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from teachloop.agents.config import GuardAction
from teachloop.evals.metrics import ItemResult

Verdict = Literal["accepted", "repaired", "rolled_back", "warned"]


class SkillCheck(BaseModel):
    """One skill's dev results before and after a round's training, item by item."""

    model_config = ConfigDict(frozen=True)

    skill: str
    n: int = Field(description="dev items scored both times")
    before: float = Field(description="accuracy of the model the round trained from")
    after: float = Field(description="accuracy of the model the round trained")
    lost: int = Field(description="items right before and wrong after (negative flips)")
    gained: int = Field(description="items wrong before and right after")
    p_value: float = Field(
        description="one-sided exact sign test: P(at least `lost` of the changed items lost)"
    )
    dropped: bool


class GuardDecision(BaseModel):
    """What the guard decided about one round, with its evidence (``rounds/<k>/guard.json``)."""

    model_config = ConfigDict(frozen=True)

    round: int
    baseline_round: int = Field(
        description="the round whose model this round trained from (and is compared with)"
    )
    accepted: bool = Field(description="whether the round's model is the student from now on")
    action: Verdict
    alpha: float = Field(description="false-alarm rate per round over all skills")
    skill_alpha: float = Field(description="each skill's test level (alpha / skills)")
    checks: list[SkillCheck]
    student: str = Field(description="the student after the decision (a model directory)")
    reason: str

    @property
    def dropped(self) -> list[str]:
        """The skills that dropped: after a repair, the ones the next round replays."""
        return [c.skill for c in self.checks if c.dropped]


def sign_test(lost: int, gained: int) -> float:
    """P(X >= lost) for X ~ Binomial(lost + gained, 1/2); 1.0 when nothing changed."""
    changed = lost + gained
    if changed == 0 or lost == 0:
        return 1.0
    return sum(math.comb(changed, k) for k in range(lost, changed + 1)) / 2**changed


def check_skills(before: Sequence[ItemResult], after: Sequence[ItemResult], alpha: float) -> list[SkillCheck]:
    """Per skill, the items scored in both evaluations (matched by task id), and whether it dropped."""
    earlier = {r.task_id: r for r in before}
    pairs: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for r in after:
        if (b := earlier.get(r.task_id)) is not None:
            pairs[r.skill].append((b.solved, r.solved))
    skill_alpha = alpha / max(1, len(pairs))
    checks = []
    for skill in sorted(pairs):
        items = pairs[skill]
        lost = sum(b and not a for b, a in items)
        gained = sum(a and not b for b, a in items)
        p = sign_test(lost, gained)
        checks.append(
            SkillCheck(
                skill=skill,
                n=len(items),
                before=sum(b for b, _ in items) / len(items),
                after=sum(a for _, a in items) / len(items),
                lost=lost,
                gained=gained,
                p_value=p,
                dropped=p < skill_alpha,
            )
        )
    return checks


def decide(
    round_: int,
    baseline_round: int,
    checks: list[SkillCheck],
    alpha: float,
    action: GuardAction,
    trained: str,
    kept: str,
) -> GuardDecision:
    """Accept the round (its model ``trained`` becomes the student) unless a skill dropped; then,
    by ``action``, keep it for repair when it gained more dev items than it lost over all skills,
    roll back to ``kept`` (the model it trained from), or keep it with a warning."""
    dropped = [c for c in checks if c.dropped]
    skill_alpha = alpha / max(1, len(checks))
    evidence = ", ".join(
        f"{c.skill} {c.before:.0%} -> {c.after:.0%} ({c.lost} lost, {c.gained} gained, p={c.p_value:.2g})"
        for c in dropped
    )
    lost, gained = sum(c.lost for c in checks), sum(c.gained for c in checks)
    overall = f"{gained} dev items gained, {lost} lost over all skills"
    verdict: Verdict
    if not dropped:
        verdict, accepted = "accepted", True
        reason = f"no skill dropped on dev (each tested at p < {skill_alpha:.3g})"
    elif action == "repair" and gained > lost:
        verdict, accepted = "repaired", True
        reason = f"dropped: {evidence}; kept ({overall}), the next round replays the dropped skills' data"
    elif action in ("repair", "rollback"):
        verdict, accepted = "rolled_back", False
        reason = f"dropped: {evidence}; {overall}; back to round {baseline_round}'s model"
    else:
        verdict, accepted = "warned", True
        reason = f"dropped: {evidence}; kept (teacher.guard.action={action})"
    return GuardDecision(
        round=round_,
        baseline_round=baseline_round,
        accepted=accepted,
        action=verdict,
        alpha=alpha,
        skill_alpha=skill_alpha,
        checks=checks,
        student=trained if accepted else kept,
        reason=reason,
    )


def decision_of(decisions: Sequence[GuardDecision], round_: int) -> GuardDecision | None:
    """What the guard decided about round ``round_`` (None before it ran, or with the guard off)."""
    return next((d for d in decisions if d.round == round_), None)


def kept_round(decisions: Sequence[GuardDecision], round_: int) -> int:
    """The round whose model is the student once round ``round_`` is decided: ``round_`` itself
    unless the guard rolled it back (then the round it went back to)."""
    decision = decision_of(decisions, round_)
    return decision.baseline_round if decision is not None and not decision.accepted else round_
