"""Curriculum at the student's frontier: the difficulty level each skill's new data is made at, and
the share of the budget each skill gets from its learning progress at that level.

Evaluation stays at the environment's level (dev and test never move); only generation does.
Per skill, with L the level it trained at last round (its evaluation level E at first):

- **mastered**: accuracy at L >= ``mastery`` -> one level up; at the top level it stays
  (maintenance data, through the planner's ``min_share`` floor).
- **slipped**: L is above E and the evaluation level is clearly no longer mastered (the Wilson
  upper bound of its dev accuracy is below ``mastery``) -> one level down, towards E.
- **out of reach**: accuracy at L <= ``out_of_reach`` after a round of training at L that gained
  less than ``min_gain`` there -> one level down, unless the level below is already mastered
  (then there is no easier level left to learn at, and it stays). An untrained student is not
  judged out of reach: a 135M model starts near 0% everywhere for want of the answer format.
- otherwise it is learning, or has not been tried: it stays.
Levels never leave the skill's [min_difficulty, max_difficulty].

Accuracy at E is the dev result. At any other level it comes from a **probe**: ``probe_items``
tasks of the environment's generator at that level (the same tasks every round, never trained
on), answered greedily by the current student. Only levels a rule needs are probed: L itself
when it is not E, and the level a move goes to (so its accuracy before training there is known).

**Learning progress** (Matiisen et al.'s teacher-student curriculum, per (skill, level); the
``bandit`` policy measures it per skill at E only): the absolute accuracy change at the level a
skill trained at, per 100 examples it got there. The ``curriculum`` policy splits the budget by it,
with a share (``exploration``) by the deficit at the chosen level, and the planner's floor. A skill
that just moved has no progress measured at its new level and gets the mean of the measured ones;
after a rolled-back round (agents/guard.py) nothing was learnt, so each skill keeps its earlier
estimate. With nothing measured yet (the first round) the split is uniform.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from teachloop.agents.config import CurriculumConfig
from teachloop.agents.engine import derived_seed
from teachloop.agents.planner import Allocation, Plan, floored, split_budget
from teachloop.environments.base import Skill, Task, TaskGenerator, normalize_question
from teachloop.evals.metrics import ItemResult, wilson_interval

Move = Literal["stay", "up", "down"]


class LevelResult(BaseModel):
    """The student's accuracy on one skill at one difficulty level."""

    model_config = ConfigDict(frozen=True)

    level: int
    n: int = Field(ge=0)
    solved: int = Field(ge=0)
    source: Literal["dev", "probe"]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def accuracy(self) -> float:
        return self.solved / self.n if self.n else 0.0

    def describe(self) -> str:
        return f"{self.accuracy:.0%} ({self.solved}/{self.n} {self.source})"


class SkillLevel(BaseModel):
    """One skill's generation level for a round, and why."""

    model_config = ConfigDict(frozen=True)

    skill: str
    level: int
    previous: int = Field(description="the level it trained at last round (its evaluation level at first)")
    move: Move
    reason: str
    progress: float | None = Field(
        None,
        description="learning progress at `level`: |accuracy change| per 100 examples of the last round "
        "there (None: not measured at this level yet)",
    )
    stalled: bool | None = Field(
        None, description="last round trained at `previous` and gained less than min_gain (None: unknown)"
    )
    measured: list[LevelResult] = Field(default_factory=list)

    def at(self, level: int) -> LevelResult | None:
        return next((m for m in self.measured if m.level == level), None)


class Curriculum(BaseModel):
    """Every skill's level for one round (``rounds/<k>/curriculum.json``)."""

    model_config = ConfigDict(frozen=True)

    round: int
    skills: list[SkillLevel]
    probed: int = Field(0, description="probe tasks the student answered to choose these levels")

    def of(self, skill: str) -> SkillLevel | None:
        return next((s for s in self.skills if s.skill == skill), None)


class ProbeResult(ItemResult):
    """A probe task's answer, with the level it was generated at (``rounds/<k>/probe.parquet``)."""

    level: int


def probe_tasks(
    env: TaskGenerator, skill: str, level: int, n: int, seed: int, exclude: set[str]
) -> list[Task]:
    """``n`` tasks of ``skill`` at ``level`` to measure the student with: drawn with a seed fixed per
    (run seed, skill, level), skipping questions in ``exclude`` (dev, test, trained on). Training
    never uses a probe question afterwards, so a level is measured on the same tasks every round."""
    out: list[Task] = []
    seen = set(exclude)
    for task in env.generate(skill, 3 * n, level, seed=derived_seed(seed, "probe", skill, level)):
        key = normalize_question(task.question)
        if key not in seen:
            seen.add(key)
            out.append(task)
        if len(out) == n:
            break
    return out


def level_results(results: list[ProbeResult]) -> dict[tuple[str, int], LevelResult]:
    """Probe answers pooled per (skill, level)."""
    pooled: dict[tuple[str, int], list[ProbeResult]] = {}
    for r in results:
        pooled.setdefault((r.skill, r.level), []).append(r)
    return {
        key: LevelResult(level=key[1], n=len(rs), solved=sum(r.solved for r in rs), source="probe")
        for key, rs in pooled.items()
    }


# -- the rules ------------------------------------------------------------------------------------


def _decide(
    skill: Skill, current: int, measured: dict[int, LevelResult], stalled: bool | None, s: CurriculumConfig
) -> tuple[Move, int, str]:
    """The move the rules make from the accuracies measured so far (``current`` must be measured)."""
    here = measured[current]
    top, bottom, evaluated = skill.max_difficulty, skill.min_difficulty, skill.eval_difficulty
    if here.accuracy >= s.mastery:
        if current >= top:
            return "stay", current, f"mastered level {current}, the hardest: maintenance"
        return "up", current + 1, f"mastered level {current}"
    dev = measured.get(evaluated)
    if current > evaluated and dev is not None and wilson_interval(dev.solved, dev.n)[1] < s.mastery:
        return "down", current - 1, f"evaluation level {evaluated} no longer mastered ({dev.describe()})"
    if here.accuracy <= s.out_of_reach and stalled:
        if current <= bottom:
            return "stay", current, f"level {current} out of reach, but it is the easiest"
        return "down", current - 1, f"level {current} out of reach (no gain after a round there)"
    if stalled is None:
        return "stay", current, f"level {current} not trained at yet"
    return "stay", current, f"learning at level {current}" if not stalled else f"stalled at level {current}"


def needed_probe(
    skill: Skill,
    current: int,
    measured: dict[int, LevelResult],
    stalled: bool | None,
    settings: CurriculumConfig,
) -> int | None:
    """The next level whose accuracy the choice needs and that is not measured yet (None: enough).

    The current level first (it is measured by dev only at the evaluation level), then the level a
    move goes to (its accuracy before training there is the baseline of its learning progress, and
    a step down is cancelled when that level is mastered already).
    """
    if current not in measured:
        return current
    move, target, _ = _decide(skill, current, measured, stalled, settings)
    if move != "stay" and target not in measured:
        return target
    return None


def choose_level(
    skill: Skill,
    current: int,
    measured: dict[int, LevelResult],
    settings: CurriculumConfig,
    stalled: bool | None = None,
    progress: float | None = None,
) -> SkillLevel:
    """The level ``skill`` trains at next, from the accuracies ``measured`` at each level (dev at the
    evaluation level, probes elsewhere; ``needed_probe`` says which are missing). ``stalled`` and
    ``progress`` describe the last round at ``current`` (None: not trained there, or not measured)."""
    current = min(max(current, skill.min_difficulty), skill.max_difficulty)
    if current not in measured:
        return SkillLevel(
            skill=skill.name,
            level=current,
            previous=current,
            move="stay",
            reason=f"level {current} not measured: stays",
            progress=progress,
            stalled=stalled,
            measured=sorted(measured.values(), key=lambda m: m.level),
        )
    move, target, why = _decide(skill, current, measured, stalled, settings)
    reason = f"level {current}: {measured[current].describe()}; {why}"
    landing = measured.get(target)
    if move == "down" and landing is not None and landing.accuracy >= settings.mastery:
        move, target = "stay", current
        reason += (
            f", but level {landing.level} is mastered ({landing.describe()}): no easier level to learn at"
        )
    elif move != "stay":
        seen = f" ({landing.describe()})" if landing is not None else ""
        reason += f": to level {target}{seen}"
    target = min(max(target, skill.min_difficulty), skill.max_difficulty)
    return SkillLevel(
        skill=skill.name,
        level=target,
        previous=current,
        move=move,
        reason=reason,
        progress=progress if target == current else None,
        stalled=stalled,
        measured=sorted(measured.values(), key=lambda m: m.level),
    )


def last_round_at_level(
    earlier: SkillLevel | None,
    trained: int,
    now: dict[int, LevelResult],
    settings: CurriculumConfig,
    rolled_back: bool = False,
) -> tuple[float | None, bool | None]:
    """(learning progress, stalled) at the level a skill trained at last round.

    ``earlier`` is that round's choice (with what was measured before training), ``trained`` the
    examples the skill got, ``now`` what is measured after. A rolled-back round taught nothing:
    the earlier estimate is kept and nothing is judged stalled.
    """
    if earlier is None:
        return None, None
    if rolled_back or trained <= 0:
        return earlier.progress, None
    before, after = earlier.at(earlier.level), now.get(earlier.level)
    if before is None or after is None:
        return earlier.progress, None
    gain = after.accuracy - before.accuracy
    return 100 * abs(gain) / trained, gain < settings.min_gain


# -- the budget -----------------------------------------------------------------------------------


def _normalised(values: dict[str, float]) -> dict[str, float]:
    total = sum(values.values())
    return {k: v / total for k, v in values.items()} if total > 0 else dict.fromkeys(values, 0.0)


def curriculum_weights(skills: list[SkillLevel], min_share: float, exploration: float) -> dict[str, float]:
    """Each skill's share: learning progress at its level (unmeasured: the mean measured), plus
    ``exploration`` of the deficit at its level, floored at ``min_share``; uniform with no progress
    measured anywhere."""
    known = [s.progress for s in skills if s.progress is not None]
    if not known:
        return {s.skill: 1.0 for s in skills}
    mean = sum(known) / len(known)
    progress = _normalised({s.skill: s.progress if s.progress is not None else mean for s in skills})
    deficit = _normalised({s.skill: 1.0 - (m.accuracy if (m := s.at(s.level)) else 0.0) for s in skills})
    raw = {k: (1 - exploration) * progress[k] + exploration * deficit[k] for k in progress}
    return floored(raw, min_share)


def apply_curriculum(plan: Plan, curriculum: Curriculum, min_share: float, exploration: float) -> Plan:
    """``plan`` with each skill at its curriculum level and the budget split by learning progress."""
    chosen = {s.skill: s for s in curriculum.skills}
    covered = [chosen[a.skill] for a in plan.allocations if a.skill in chosen]
    others = sum(a.n for a in plan.allocations if a.skill not in chosen)
    shares = split_budget(curriculum_weights(covered, min_share, exploration), plan.budget - others)
    allocations: list[Allocation] = []
    for a in plan.allocations:
        choice = chosen.get(a.skill)
        if choice is None:
            allocations.append(a)
            continue
        progress = (
            f"progress {choice.progress:.2f} points per 100 examples"
            if choice.progress is not None
            else "progress not measured at this level yet"
        )
        allocations.append(
            a.model_copy(
                update={
                    "n": shares[a.skill],
                    "difficulty": choice.level,
                    "reason": f"{choice.reason}; {progress}",
                }
            )
        )
    return plan.model_copy(update={"allocations": allocations})
