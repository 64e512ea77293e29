"""The run configuration: one validated, frozen model composed of each package's settings, saved as
config.yaml in every run.

Unknown keys are errors (a typo must not silently fall back to a default). Defaults are the
README's default run, chosen from measurements on a 2-core CPU (see README, "Measured results").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import Field, ValidationError, model_validator

from teachloop.agents.config import (
    Brain,
    BrainRole,
    BrainsConfig,
    CurriculumConfig,
    FeedbackLevel,
    Gate,
    GuardConfig,
    Policy,
    RevisionConfig,
    ScoringConfig,
    SynthesisConfig,
)
from teachloop.criteria.config import CriteriaConfig
from teachloop.evals.config import EvalConfig
from teachloop.foundation.errors import ConfigError
from teachloop.foundation.settings import Settings
from teachloop.llm.config import OLD_PRICE_KEYS, LLMConfig, LLMRole, with_model_prices
from teachloop.tracing.config import TracingConfig
from teachloop.tracing.tracking_config import TrackingConfig
from teachloop.training.config import TrainConfig


class TeacherConfig(Settings):
    brains: BrainsConfig = Field(
        default_factory=BrainsConfig,
        description="each role's brain, heuristic or openai (--teacher sets every role)",
    )
    llm: LLMConfig = Field(default_factory=LLMConfig)
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    revision: RevisionConfig = Field(default_factory=RevisionConfig)
    criteria: CriteriaConfig = Field(default_factory=CriteriaConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    diagnoser_examples: int = Field(
        4, ge=1, le=50, description="failures per skill the LLM diagnoser reads (with the student's answers)"
    )
    samples_per_round: int = Field(480, ge=1, description="training samples the teacher makes per round")
    min_share: float = Field(
        0.1,
        ge=0,
        le=1,
        description="least share of the budget any skill gets, so learnt skills are rehearsed",
    )
    replay_fraction: float = Field(
        0.0, ge=0, lt=1, description="share of each round's data drawn from earlier rounds' selected data"
    )
    oversample: float = Field(1.25, ge=1, description="generate this many times the plan, then select")
    curriculum: CurriculumConfig = Field(
        default_factory=CurriculumConfig,
        description="the curriculum policy: each skill's generation level follows the student's frontier",
    )
    guard: GuardConfig = Field(
        default_factory=GuardConfig,
        description="the forgetting guard: a round that made a skill worse on dev is rolled back",
    )
    feedback: FeedbackLevel = Field(
        "skill_list",
        description="what the teacher sees of an evaluation: open_ended (errors, no skill tags), "
        "skill_list (accuracy per skill) or skill_tree (skills grouped under parent skills)",
    )


class StopConfig(Settings):
    target_accuracy: float | None = Field(None, ge=0, le=1, description="stop once dev accuracy reaches this")
    patience: int | None = Field(None, ge=1, description="stop after this many rounds without dev gain")
    max_minutes: float | None = Field(None, gt=0, description="stop starting rounds after this wall time")
    max_samples: int | None = Field(None, ge=1, description="stop once this many samples were trained on")
    max_llm_tokens: int | None = Field(
        None,
        ge=1,
        description="stop at the next node boundary once the teacher LLM used this many tokens "
        "(prompt + completion); raise it in config.yaml and resume to go on",
    )
    max_cost_usd: float | None = Field(
        None,
        gt=0,
        description="stop at the next node boundary once the teacher LLM cost this many USD "
        "(teacher.llm.prices); raise it in config.yaml and resume to go on",
    )


class RunConfig(Settings):
    env: str = Field("reasoning-basics", description="environment name (teachloop envs list)")
    env_options: dict[str, Any] = Field(
        default_factory=dict, description="keyword options for the environment"
    )
    student: str = Field("smollm2-135m-instruct", description="student alias or local model directory")
    rounds: int = Field(3, ge=0, le=1000, description="training rounds after the round-0 evaluation")
    policy: Policy = Field(
        "deficit",
        description="how the heuristic planner splits the budget over skills (also the LLM planner's "
        "fallback)",
    )
    seed: int = Field(0, ge=0)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    stop: StopConfig = Field(default_factory=StopConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    tracking: TrackingConfig = Field(
        default_factory=TrackingConfig, description="experiment tracking: MLflow, TensorBoard or wandb"
    )
    model_cache: Path | None = Field(None, description="where converted students are cached")
    review: list[Gate] = Field(
        default_factory=list,
        description="pause for a person after planning (plan) and/or selection (data): teachloop review",
    )

    def uses_llm(self, role: LLMRole) -> bool:
        """Whether ``role`` talks to the teacher LLM in this run: its brain in ``teacher.brains``,
        and for the CritiQ roles, whether there is anything to mine or judge with."""
        criteria, brains = self.teacher.criteria, self.teacher.brains
        if role == "criteria_manager":
            return criteria.pairs is not None and brains.criteria_manager == "openai"
        if role == "criteria_worker":
            return criteria.pairs is not None
        if role == "judge":
            return criteria.enabled and criteria.scorer is None
        brain: Brain = getattr(brains, role)
        return brain == "openai"

    @property
    def llm_roles(self) -> list[LLMRole]:
        return [r for r in get_args(LLMRole) if self.uses_llm(r)]

    @model_validator(mode="after")
    def _teacher_model_named(self) -> RunConfig:
        llm = self.teacher.llm
        missing = [
            r for r in self.llm_roles if not ((e := llm.endpoints.get(r)) and e.model) and not llm.model
        ]
        if missing:
            raise ValueError(
                f"the openai brain of {', '.join(missing)} needs a model: pass --teacher-model "
                "or set teacher.llm.model"
            )
        return self

    @model_validator(mode="after")
    def _vllm_needs_full_models(self) -> RunConfig:
        if self.eval.backend == "vllm" and self.train.lora:
            raise ValueError("eval.backend vllm loads whole models: set train.lora false or eval.backend hf")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    extra = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    if not first["loc"]:  # a check across sections: its message names the settings itself
        return f"bad config: {first['msg'].removeprefix('Value error, ')}{extra}"
    where = ".".join(str(p) for p in first["loc"])
    return f"bad config value {where}: {first['msg']}{extra}"


def build_config(data: dict[str, Any]) -> RunConfig:
    """The config a user gave (a file, ``--set``): a key of an earlier teachloop fails in one line
    naming the key that replaced it."""
    _refuse_old_keys(data)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from None


def load_saved_config(path: Path) -> RunConfig:
    """A run's own config.yaml, also one written by an earlier teachloop (translated, not rewritten)."""
    return build_config(upgraded(load_config_file(path)))


#: Roles ``--teacher`` sets, and the roles an earlier ``teacher.brain`` set for all.
_ROLES: tuple[BrainRole, ...] = get_args(BrainRole)
_OLD_BRAIN_ROLES = ("diagnoser", "synthesizer", "reviser")


def _section(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, dict) else None


def _refuse_old_keys(data: dict[str, Any]) -> None:
    teacher = _section(data, "teacher") or {}
    if "brain" in teacher:
        raise ConfigError(
            "teacher.brain was replaced by teacher.brains.<role> (diagnoser, planner, synthesizer, "
            "reviser, criteria_manager: heuristic or openai); --teacher heuristic|openai sets every role"
        )
    if data.get("policy") == "llm":
        raise ConfigError(
            "policy llm was replaced by teacher.brains.planner: openai (--set teacher.brains.planner=openai); "
            "policy names the heuristic planner, which is also the LLM planner's fallback"
        )
    if "manager" in (_section(teacher, "criteria") or {}):
        raise ConfigError(
            "teacher.criteria.manager was replaced by teacher.brains.criteria_manager (heuristic or openai)"
        )
    if any(k in (_section(teacher, "llm") or {}) for k in OLD_PRICE_KEYS):
        raise ConfigError(
            "teacher.llm.prompt_price and completion_price were replaced by prices per model: "
            "--set teacher.llm.prices.<model>.prompt=<USD per million tokens> (and .completion)"
        )


def upgraded(data: dict[str, Any]) -> dict[str, Any]:
    """A saved config in the current shape. Runs written before ``teacher.brains`` named every role
    hold ``teacher.brain`` (the default of three roles), ``teacher.brains`` with those three as
    overrides (null: follow the default), ``policy: llm`` for the LLM planner (which fell back to
    deficit) and ``teacher.criteria.manager``; they become the brains those runs used. Flat
    ``teacher.llm.prompt_price``/``completion_price`` become the price of the run's model."""
    teacher = _section(data, "teacher")
    if teacher is None:
        return data
    if (llm := _section(teacher, "llm")) is not None and (priced := with_model_prices(llm)) is not llm:
        teacher = {**teacher, "llm": priced}
        data = {**data, "teacher": teacher}
    criteria = _section(teacher, "criteria")
    old = (
        "brain" in teacher or data.get("policy") == "llm" or (criteria is not None and "manager" in criteria)
    )
    if not old:
        return data
    teacher = dict(teacher)
    brains = {k: v for k, v in (_section(teacher, "brains") or {}).items() if v is not None}
    default = teacher.pop("brain", None)
    if default is not None:
        for role in _OLD_BRAIN_ROLES:
            brains.setdefault(role, default)
    out = dict(data)
    if out.get("policy") == "llm":
        out["policy"] = "deficit"
        brains["planner"] = "openai"
    if criteria is not None and "manager" in criteria:
        criteria = dict(criteria)
        brains.setdefault("criteria_manager", criteria.pop("manager"))
        teacher["criteria"] = criteria
    teacher["brains"] = brains
    out["teacher"] = teacher
    return out


def with_teacher(data: dict[str, Any], brain: str) -> dict[str, Any]:
    """``--teacher``: ``brain`` for every role the config or ``--set`` leaves unset (a role set
    there keeps its brain). As before ``teacher.brains.planner`` existed, a ``policy`` given with
    ``--teacher openai`` keeps the planner on that policy."""
    if brain not in get_args(Brain):
        raise ConfigError(f"--teacher {brain!r}: choose heuristic or openai (sets teacher.brains.<role>)")
    teacher = dict(_section(data, "teacher") or {})
    brains = dict(_section(teacher, "brains") or {})
    for role in _ROLES:
        if role == "planner" and brain == "openai" and "policy" in data:
            continue
        brains.setdefault(role, brain)
    teacher["brains"] = brains
    return {**data, "teacher": teacher}


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(raw).__name__}")
    return raw


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge CLI overrides (dotted keys already nested) onto a config file's values."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
