"""The run configuration: one validated, frozen model, saved as config.yaml in every run.

Unknown keys are errors (a typo must not silently fall back to a default). Defaults are the
README's default run, chosen from measurements on a 2-core CPU (see README, "Measured results").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from teachloop.agents.criteria_library import Domain
from teachloop.core.errors import ConfigError

Policy = Literal["deficit", "uniform", "bandit", "llm"]
#: How a round trains: one trainer for every skill, or ``auto`` (per skill, SFT -> DPO -> GRPO when gains stall).
Recipe = Literal["sft", "dpo", "grpo", "auto"]
#: Who does an agent role's thinking: offline rules, or an LLM behind an OpenAI-compatible endpoint.
Brain = Literal["heuristic", "openai"]
#: Agent roles whose brain can be chosen; the planner's brain is ``policy`` (``llm`` is its LLM brain).
BrainRole = Literal["diagnoser", "synthesizer", "reviser"]
#: Roles that talk to the teacher LLM (each has its own endpoint override, usage and cost).
LLMRole = Literal[
    "diagnoser", "planner", "synthesizer", "reviser", "criteria_manager", "criteria_worker", "judge"
]
FeedbackLevel = Literal["open_ended", "skill_list", "skill_tree"]
#: How the selector fills an allocation from scored samples (agents/selector.py).
Selection = Literal["top_k", "threshold", "sample"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalConfig(_Section):
    dev_per_skill: int = Field(24, ge=1, description="dev items per skill; agents see these results")
    test_per_skill: int = Field(40, ge=1, description="test items per skill; only reports see these")
    max_new_tokens: int = Field(16, ge=1, le=4096, description="answer length limit when the student answers")
    batch_size: int = Field(64, ge=1, description="prompts generated together")
    dtype: Literal["auto", "bfloat16", "float32"] = Field(
        "auto",
        description="weights dtype when the student answers; auto: bfloat16 where the hardware computes "
        "it natively (CUDA, AVX-512 BF16/AMX CPUs), else float32 (emulated bf16 was 3-4x slower on AVX2)",
    )
    backend: Literal["hf", "vllm"] = Field(
        "hf", description="hf: batched transformers generate; vllm: a vLLM engine (needs vllm and a CUDA GPU)"
    )
    kv_cache: Literal["dynamic", "static"] = Field(
        "dynamic",
        description="static: a fixed-shape KV cache, which transformers compiles on CUDA (prompts padded to "
        "multiples of 64 so shapes repeat); dynamic: grow the cache as tokens come (best on a CPU)",
    )


class DPOSettings(_Section):
    """Direct preference optimisation on pairs made from the student's own samples (TRL DPOTrainer)."""

    learning_rate: float = Field(
        5e-6, gt=0, description="peak learning rate of round 1 (decays per round like train.learning_rate)"
    )
    beta: float = Field(
        0.1, gt=0, description="strength of the pull towards the reference (the round's start)"
    )
    samples: int = Field(
        4, ge=1, description="completions sampled per prompt to find chosen/rejected answers"
    )
    temperature: float = Field(1.0, gt=0, description="sampling temperature of those completions")
    epochs: float = Field(1.0, gt=0, description="passes over the round's pairs (few: DPO overfits fast)")


class GRPOSettings(_Section):
    """RL with verifiable rewards (TRL GRPOTrainer): the environment's verifier is the reward."""

    learning_rate: float = Field(
        5e-6, gt=0, description="peak learning rate of round 1 (decays per round like train.learning_rate)"
    )
    num_generations: int = Field(4, ge=2, description="completions per prompt in a GRPO group")
    max_completion_length: int = Field(
        16, ge=1, description="tokens per GRPO completion (short keeps a CPU fast)"
    )
    temperature: float = Field(1.0, gt=0, description="sampling temperature of GRPO completions")
    beta: float = Field(
        0.0, ge=0, description="KL weight to a reference model (0: no reference model is loaded)"
    )
    probe_samples: int = Field(
        4,
        ge=2,
        description="samples per prompt that measure its pass rate; only 0 < pass rate < 1 goes to GRPO",
    )
    format_weight: float = Field(
        0.2, ge=0, description="weight of the format reward (a bare answer) beside the verifier's (weight 1)"
    )
    epochs: float = Field(1.0, gt=0, description="passes over the round's GRPO prompts")
    use_vllm: bool = Field(False, description="generate GRPO completions with vLLM (TRL use_vllm; CUDA only)")
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="colocate: vLLM shares the training GPUs; server: a running 'trl vllm-serve'"
    )
    vllm_server_base_url: str | None = Field(
        None, description="URL of the 'trl vllm-serve' server (server mode)"
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
    bf16: bool | Literal["auto"] = Field(
        "auto",
        description="bf16 mixed precision; auto: where the hardware computes bf16 natively (CUDA, AVX-512 "
        "BF16/AMX CPUs)",
    )
    lora: bool = Field(False, description="train a LoRA adapter instead of every weight")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    trainer: Recipe = Field(
        "sft",
        description="sft, dpo or grpo for every skill, or auto: a skill moves SFT -> DPO -> GRPO (TULU 3's "
        "order) when a round on its current trainer gained less than stall_threshold",
    )
    stall_threshold: float = Field(
        0.05, ge=0, le=1, description="auto: a dev accuracy gain below this (absolute) counts as a stall"
    )
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    grpo: GRPOSettings = Field(default_factory=GRPOSettings)
    launcher: Literal["inprocess", "accelerate"] = Field(
        "inprocess",
        description="inprocess: train inside the loop's process; accelerate: run the round's training as "
        "'accelerate launch -m teachloop.training.launch' (several GPUs or nodes, DeepSpeed, FSDP)",
    )
    accelerate_config: Path | None = Field(
        None, description="accelerate config file for the accelerate launcher (accelerate config / docs)"
    )
    accelerate_args: list[str] = Field(
        default_factory=list,
        description="extra 'accelerate launch' arguments, e.g. ['--num_processes', '1', '--cpu']",
    )

    @model_validator(mode="after")
    def _grpo_batches(self) -> TrainConfig:
        if (self.batch_size * self.gradient_accumulation_steps) % self.grpo.num_generations:
            raise ValueError(
                "train.batch_size * train.gradient_accumulation_steps must be a multiple of "
                f"train.grpo.num_generations ({self.grpo.num_generations}): GRPO scores whole groups"
            )
        return self

    def stage_learning_rate(self, trainer: str) -> float:
        return {"dpo": self.dpo.learning_rate, "grpo": self.grpo.learning_rate}.get(
            trainer, self.learning_rate
        )

    def for_round(self, round_: int) -> TrainConfig:
        """This round's settings: later rounds refine what earlier ones taught instead of overwriting it.

        Every trainer's peak learning rate decays by the same factor per round.
        """
        factor = self.round_lr_decay ** (round_ - 1)
        return self.model_copy(
            update={
                "learning_rate": self.learning_rate * factor,
                "dpo": self.dpo.model_copy(update={"learning_rate": self.dpo.learning_rate * factor}),
                "grpo": self.grpo.model_copy(update={"learning_rate": self.grpo.learning_rate * factor}),
            }
        )


class EndpointConfig(_Section):
    """Where one role's LLM lives; unset fields fall back to ``teacher.llm``'s."""

    base_url: str | None = Field(
        None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"
    )
    model: str | None = Field(None, description="model name the endpoint serves")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")


class LLMConfig(_Section):
    """The teacher LLM client. The API key is read from ``api_key_env`` at run time and never stored."""

    base_url: str | None = Field(
        None, description="OpenAI-compatible base URL (vllm serve, transformers serve, Ollama); unset: OpenAI"
    )
    model: str | None = Field(None, description="teacher model name; required when any role uses openai")
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="name of the environment variable holding the API key (a keyless local server works)",
    )
    endpoints: dict[LLMRole, EndpointConfig] = Field(
        default_factory=dict, description="per-role endpoint overrides, e.g. a locally trained reviser"
    )
    concurrency: int = Field(8, ge=1, le=1024, description="requests in flight at once")
    timeout_s: float = Field(120.0, gt=0, description="seconds before one request is abandoned and retried")
    max_retries: int = Field(
        5, ge=0, le=50, description="retries on rate limits, 5xx, timeouts, lost connections"
    )
    backoff_s: float = Field(1.0, ge=0, description="first retry wait; doubles per retry, with jitter")
    backoff_max_s: float = Field(30.0, ge=0, description="longest wait between retries")
    temperature: float = Field(0.8, ge=0, le=2, description="sampling temperature of the writing roles")
    max_tokens: int = Field(1024, ge=1, description="reply length limit per request")
    cache: bool = Field(True, description="reuse replies to identical requests (reruns and resumes are free)")
    cache_path: Path | None = Field(None, description="a shared response cache file; default: in the run dir")
    prompt_price: float = Field(0.0, ge=0, description="USD per million prompt tokens, for cost accounting")
    completion_price: float = Field(0.0, ge=0, description="USD per million completion tokens")


class BrainsConfig(_Section):
    """Per-role brain overrides; an unset role follows ``teacher.brain``."""

    diagnoser: Brain | None = None
    synthesizer: Brain | None = None
    reviser: Brain | None = None


DEFAULT_PERSONAS = [
    "a primary-school teacher writing a worksheet",
    "a puzzle-book author",
    "an exam setter who likes tricky edge cases",
    "a programmer writing unit tests",
    "a tutor explaining to a struggling student",
    "a quiz-show writer",
]


class SynthesisConfig(_Section):
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


class RevisionConfig(_Section):
    """The CoachLM reviser: rewrite weak samples, keep a rewrite only when a judge is confident."""

    scope: Literal["weak", "all"] = Field(
        "weak", description="revise only samples that fail a check (weak), or offer every sample (all)"
    )
    max_per_round: int = Field(64, ge=0, description="most samples revised per round")
    min_confidence: float = Field(
        0.7, ge=0, le=1, description="judge confidence needed to keep a revision over its original"
    )


#: The seed-library domains of the default environment (arithmetic, sequences, logic puzzles).
DEFAULT_DOMAINS: tuple[Domain, ...] = ("math", "logic", "general")


class CriteriaConfig(_Section):
    """CritiQ: quality criteria mined from human preference pairs, used to score generated data."""

    pairs: Path | None = Field(
        None,
        description="preference pairs (JSONL, docs/criteria.md); given: the loop mines criteria at setup",
    )
    file: Path | None = Field(
        None,
        description="criteria already mined (criteria.json from 'teachloop criteria mine'); skips mining",
    )
    scorer: Path | None = Field(
        None,
        description="a distilled reward model ('teachloop criteria distill'): scores samples without LLM calls",
    )
    manager: Brain = Field(
        "openai", description="openai: the LLM proposes and revises criteria; heuristic: seed library only"
    )
    domains: list[Domain] = Field(
        default_factory=lambda: list(DEFAULT_DOMAINS),
        min_length=1,
        description="seed-library domains the manager starts from (math, code, logic, instruction, general)",
    )
    proposals: int = Field(6, ge=1, le=40, description="criteria proposed at the start")
    votes: int = Field(
        4, ge=1, le=20, description="worker verdicts per pair and criterion (half in swapped order); majority"
    )
    iterations: int = Field(3, ge=1, le=20, description="most judge -> keep/revise/drop passes")
    keep: float = Field(0.75, gt=0, le=1, description="accuracy at which a criterion is kept")
    drop: float = Field(0.5, ge=0, lt=1, description="accuracy at or below which it is dropped and replaced")
    held_out: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="share of pairs kept out of mining to report each criterion's accuracy on",
    )
    temperature: float = Field(0.7, ge=0, le=2, description="sampling temperature of the workers' votes")

    @model_validator(mode="after")
    def _thresholds(self) -> CriteriaConfig:
        if self.drop >= self.keep:
            raise ValueError("teacher.criteria.drop must be below teacher.criteria.keep")
        if self.pairs is not None and self.file is not None:
            raise ValueError("set teacher.criteria.pairs (mine) or teacher.criteria.file (mined), not both")
        return self

    @property
    def enabled(self) -> bool:
        return self.pairs is not None or self.file is not None


class ScoringConfig(_Section):
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


class TeacherConfig(_Section):
    brain: Brain = Field(
        "heuristic",
        description="brain of every role (diagnoser, synthesizer, reviser); the planner's is the policy",
    )
    brains: BrainsConfig = Field(default_factory=BrainsConfig)
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
    feedback: FeedbackLevel = Field(
        "skill_list",
        description="what the teacher sees of an evaluation: open_ended (errors, no skill tags), "
        "skill_list (accuracy per skill) or skill_tree (skills grouped under parent skills)",
    )

    def brain_for(self, role: BrainRole) -> Brain:
        return getattr(self.brains, role) or self.brain


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

    def uses_llm(self, role: LLMRole) -> bool:
        """Whether ``role`` thinks with the teacher LLM (the planner does when the policy is ``llm``)."""
        criteria = self.teacher.criteria
        if role == "planner":
            return self.policy == "llm"
        if role == "criteria_manager":
            return criteria.pairs is not None and criteria.manager == "openai"
        if role == "criteria_worker":
            return criteria.pairs is not None
        if role == "judge":
            return criteria.enabled and criteria.scorer is None
        return self.teacher.brain_for(role) == "openai"

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
