"""Settings of the teacher's agent roles: planner policy, brains, synthesizer, reviser, scoring and selection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from teachloop.foundation.settings import Settings

#: How the heuristic planner splits the budget (agents/planner.py); also the LLM planner's fallback.
Policy = Literal["deficit", "uniform", "bandit", "curriculum"]
#: Who does an agent role's thinking: offline rules, or an LLM behind an OpenAI-compatible endpoint.
Brain = Literal["heuristic", "openai"]
#: Agent roles whose brain is chosen in ``teacher.brains`` (the criteria workers and the judge have
#: no choice: they use the LLM whenever the run has criteria to mine or to judge with).
BrainRole = Literal["diagnoser", "planner", "synthesizer", "reviser", "criteria_manager"]
FeedbackLevel = Literal["open_ended", "skill_list", "skill_tree"]
#: How the selector fills an allocation from scored samples (agents/selector.py).
Selection = Literal["top_k", "threshold", "sample"]
#: Where a run can pause for a person (``review``; agents/review.py): after planning, after selection.
Gate = Literal["plan", "data"]


class BrainsConfig(Settings):
    """Each teacher role's brain. An ``openai`` brain keeps the role's heuristic as its fallback
    for a reply that is unusable (agents/roles.py)."""

    diagnoser: Brain = Field(
        "heuristic", description="openai: the LLM names error patterns in the failures (DataEnvGym)"
    )
    planner: Brain = Field(
        "heuristic", description="heuristic: split the budget by `policy`; openai: the LLM splits it"
    )
    synthesizer: Brain = Field(
        "heuristic",
        description="heuristic: the environment's generator; openai: the LLM writes tasks with solutions",
    )
    reviser: Brain = Field(
        "heuristic", description="openai: the LLM rewrites weak samples (CoachLM); heuristic: none"
    )
    criteria_manager: Brain = Field(
        "openai",
        description="with teacher.criteria.pairs: openai proposes and revises criteria; heuristic "
        "takes the seed library only",
    )


DEFAULT_PERSONAS = [
    "a primary-school teacher writing a worksheet",
    "a puzzle-book author",
    "an exam setter who likes tricky edge cases",
    "a programmer writing unit tests",
    "a tutor explaining to a struggling student",
    "a quiz-show writer",
]


class SynthesisConfig(Settings):
    """The LLM synthesizer: new tasks with solutions, answers checked before they count."""

    share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="share of each allocation the LLM writes when the environment also has a procedural "
        "generator (the rest comes from the generator); environments without one get everything from the LLM",
    )
    tasks_per_call: int = Field(4, ge=1, le=50, description="tasks the synthesizer writes per request")
    agreement_samples: int = Field(
        3, ge=1, le=20, description="independent teacher answers per task where no verifier can check it"
    )
    min_agreement: float = Field(
        0.6, gt=0, le=1, description="share of those answers that must match the task's answer (0.6: 2 of 3)"
    )
    personas: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PERSONAS), description="voices the synthesizer writes in"
    )
    seed_examples: int = Field(3, ge=0, le=20, description="example tasks shown per request")


class RevisionConfig(Settings):
    """The CoachLM reviser: rewrite weak samples, keep a rewrite only when a judge is confident."""

    scope: Literal["weak", "all"] = Field(
        "weak", description="revise only samples that fail a check (weak), or offer every sample (all)"
    )
    max_per_round: int = Field(64, ge=0, description="most samples revised per round")
    min_confidence: float = Field(
        0.7, ge=0, le=1, description="judge confidence needed to keep a revision over its original"
    )


#: The seed-library domains of the default environment (arithmetic, sequences, logic puzzles).


class ScoringConfig(Settings):
    """How usable samples are ranked and picked (after the verifier, duplicate and contamination checks)."""

    criteria_weight: float = Field(
        1.0, ge=0, description="weight of the mined-criteria score (when criteria are set)"
    )
    difficulty_samples: int = Field(
        0,
        ge=0,
        le=32,
        description="student samples per candidate measuring its pass rate (0: off); harder-for-the-student "
        "scores higher",
    )
    difficulty_temperature: float = Field(
        1.0,
        ge=0,
        description="sampling temperature of the student's answers that measure difficulty; 0: greedy, which "
        "with difficulty_samples=1 asks whether the student answers it right now, as evaluation does",
    )
    difficulty_weight: float = Field(1.0, ge=0, description="weight of the difficulty score")
    selection: Selection = Field(
        "top_k",
        description="top_k: best scores first; threshold: generation order among scores >= threshold; "
        "sample: draw with scores as logits at a temperature (QuRating)",
    )
    threshold: float = Field(0.5, ge=0, le=1, description="least score the threshold selection accepts")
    temperature: float = Field(
        0.25, gt=0, description="sample selection: lower follows the scores more closely"
    )


class CurriculumConfig(Settings):
    """The ``curriculum`` policy: each skill's generation level follows the student's frontier
    (agents/curriculum.py); evaluation stays at the environment's level."""

    mastery: float = Field(
        0.85, gt=0, le=1, description="accuracy at a level that counts as mastered: the skill steps up"
    )
    out_of_reach: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="accuracy at or below which a level the skill trained at without gaining is out of "
        "reach: the skill steps down",
    )
    min_gain: float = Field(
        0.05, ge=0, le=1, description="accuracy gain at the trained level below which a round stalled there"
    )
    probe_items: int = Field(
        12,
        ge=1,
        le=200,
        description="generated tasks per probed level, answered greedily by the student (levels other "
        "than the evaluation level, and only those a rule needs)",
    )
    exploration: float = Field(
        0.2, ge=0, le=1, description="share of the allocation weight given to the deficit at the chosen level"
    )


GuardAction = Literal["repair", "rollback", "warn", "off"]


class GuardConfig(Settings):
    """The forgetting guard (agents/guard.py): after training, every skill is checked on dev."""

    action: GuardAction = Field(
        "repair",
        description="what a round with a skill that dropped leads to. repair: kept when it gained more dev "
        "items than it lost over all skills, and the next round replays the dropped skills' earlier data; "
        "undone otherwise. rollback: always undone (the student goes back to the model before it, and the next "
        "round replays earlier data for every skill); warn: recorded but kept; off: no check",
    )
    alpha: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="false-alarm rate per round over all skills (Bonferroni: each skill is tested at "
        "alpha / skills) of the one-sided exact sign test on dev items lost against items gained",
    )
    replay_fraction: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="after a flagged round, the next round draws at least this share of a skill's data from "
        "earlier rounds' data of that skill: every skill after a rollback, the dropped ones after a repair",
    )
