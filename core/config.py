"""The run configuration: one validated, frozen model, saved as config.yaml in every run.

Unknown keys are errors (a typo must not silently fall back to a default). Defaults are the
README's default run, chosen from measurements on a 2-core CPU (see README, "Measured results").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from teachloop.core.errors import ConfigError

Policy = Literal["deficit", "uniform", "bandit"]
FeedbackLevel = Literal["open_ended", "skill_list", "skill_tree"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalConfig(_Section):
    dev_per_skill: int = Field(24, ge=1, description="dev items per skill; agents see these results")
    test_per_skill: int = Field(40, ge=1, description="test items per skill; only reports see these")
    max_new_tokens: int = Field(16, ge=1, le=4096, description="answer length limit when the student answers")
    batch_size: int = Field(64, ge=1, description="prompts generated together")
    dtype: Literal["bfloat16", "float32"] = Field(
        "bfloat16", description="weights dtype for evaluation (bf16 is about 2x faster on AVX-512 CPUs)"
    )


class TrainConfig(_Section):
    learning_rate: float = Field(2e-4, gt=0, description="peak learning rate of each round")
    round_lr_decay: float = Field(
        0.5, gt=0, le=1, description="each round's peak learning rate is the previous round's times this"
    )
    lr_scheduler: Literal["constant", "linear", "cosine", "constant_with_warmup"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    epochs: float = Field(1.0, gt=0)
    batch_size: int = Field(16, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(256, ge=8, description="tokens per sample; longer samples are truncated")
    bf16: bool = Field(True, description="bf16 mixed precision (CPUs with AVX-512 BF16, CUDA GPUs)")
    lora: bool = Field(False, description="train a LoRA adapter instead of every weight")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)

    def for_round(self, round_: int) -> TrainConfig:
        """This round's settings: later rounds refine what earlier ones taught instead of overwriting it."""
        return self.model_copy(
            update={"learning_rate": self.learning_rate * self.round_lr_decay ** (round_ - 1)}
        )


class TeacherConfig(_Section):
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
    feedback: FeedbackLevel = Field(
        "skill_list",
        description="what the teacher sees of an evaluation: open_ended (errors, no skill tags), "
        "skill_list (accuracy per skill) or skill_tree (skills grouped under parent skills)",
    )


class StopConfig(_Section):
    target_accuracy: float | None = Field(None, ge=0, le=1, description="stop once dev accuracy reaches this")
    patience: int | None = Field(None, ge=1, description="stop after this many rounds without dev gain")
    max_minutes: float | None = Field(None, gt=0, description="stop starting rounds after this wall time")
    max_samples: int | None = Field(None, ge=1, description="stop once this many samples were trained on")


class TracingConfig(_Section):
    otlp_endpoint: str | None = Field(
        None,
        description="also send spans to this OTLP/HTTP traces endpoint (needs teachloop[otel]; "
        "headers such as an API key come from OTEL_EXPORTER_OTLP_HEADERS)",
    )
    service_name: str = Field("teachloop", description="OpenTelemetry service.name of exported spans")


class RunConfig(_Section):
    env: str = Field("reasoning-basics", description="environment name (teachloop envs list)")
    env_options: dict[str, Any] = Field(
        default_factory=dict, description="keyword options for the environment"
    )
    student: str = Field("smollm2-135m-instruct", description="student alias or local model directory")
    rounds: int = Field(3, ge=0, le=1000, description="training rounds after the round-0 evaluation")
    policy: Policy = Field("deficit", description="how the planner splits the budget over skills")
    seed: int = Field(0, ge=0)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    stop: StopConfig = Field(default_factory=StopConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    model_cache: Path | None = Field(None, description="where converted students are cached")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    extra = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"bad config value {where}: {first['msg']}{extra}"


def build_config(data: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from None


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
