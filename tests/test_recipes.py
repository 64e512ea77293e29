"""Training recipes: the per-skill trainer choice (``auto``'s rule, unit-tested), the rollouts'
verdicts, and one real loop round per trainer through the CLI with the tiny model, in process
and under ``accelerate launch`` with one CPU process.

GRPO needs tasks the student sometimes but not always solves; a random tiny model never solves
reasoning-basics, so GRPO rounds use the ``coin`` test plug-in (tests/plugins), whose verifier
passes about half of any model's answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import cli_in_process
from teachloop.agents.diagnoser import SkillWeakness, WeaknessReport
from teachloop.agents.planner import Allocation, Plan
from teachloop.agents.recipe import assign_trainers
from teachloop.environments.base import Score, Task
from teachloop.foundation.types import Message
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore
from teachloop.training.config import Trainer
from teachloop.training.rewards import format_reward, verifier_reward
from teachloop.training.rollouts import Rollout, dpo_rows, grpo_rows, judge

pytestmark = pytest.mark.usefixtures("test_plugins")


# -- auto's rule ---------------------------------------------------------------------------------


def _plan(round_: int, trainers: dict[str, Trainer], n: int = 8) -> Plan:
    allocations = [
        Allocation(skill=s, n=n, difficulty=1, trainer=t, reason="planned") for s, t in trainers.items()
    ]
    return Plan(round=round_, policy="deficit", budget=n * len(trainers), allocations=allocations)


def _report(changes: dict[str, tuple[float, float | None]]) -> WeaknessReport:
    """Per skill: (dev accuracy, change since the previous round)."""
    return WeaknessReport(
        round=1,
        skills=[
            SkillWeakness(skill=s, accuracy=acc, n=10, deficit=1 - acc, change=change, severity="medium")
            for s, (acc, change) in changes.items()
        ],
    )


def _auto(report: WeaknessReport, previous: Plan | None, skills: list[str]) -> dict[str, tuple[str, str]]:
    plan = _plan(2, dict.fromkeys(skills, "sft"))
    chosen = assign_trainers(plan, report, previous, "auto", stall_threshold=0.05)
    return {a.skill: (a.trainer, a.reason) for a in chosen.allocations}


def test_auto_starts_every_skill_on_sft() -> None:
    got = _auto(_report({"a": (0.2, None)}), None, ["a"])
    assert got["a"] == ("sft", "planned; auto: SFT first")


def test_auto_moves_a_stalled_skill_along_sft_dpo_grpo_and_keeps_grpo() -> None:
    skills = ["gaining", "stalled_sft", "stalled_dpo", "stalled_grpo", "solved", "no_data", "unmeasured"]
    previous = _plan(1, {s: "sft" for s in skills})
    previous = previous.model_copy(
        update={
            "allocations": [
                a.model_copy(
                    update={
                        "trainer": {"stalled_dpo": "dpo", "stalled_grpo": "grpo"}.get(a.skill, "sft"),
                        "n": 0 if a.skill == "no_data" else a.n,
                    }
                )
                for a in previous.allocations
            ]
        }
    )
    report = _report(
        {
            "gaining": (0.5, 0.10),
            "stalled_sft": (0.5, 0.02),
            "stalled_dpo": (0.6, -0.05),
            "stalled_grpo": (0.6, 0.0),
            "solved": (1.0, 0.0),
            "no_data": (0.3, 0.0),
            "unmeasured": (0.3, None),
        }
    )
    got = _auto(report, previous, skills)
    assert got["gaining"][0] == "sft" and "gained +10% (>= 5%), kept" in got["gaining"][1]
    assert (
        got["stalled_sft"][0] == "dpo"
        and "SFT gained +2% (< 5%) at 50%: moved to DPO" in got["stalled_sft"][1]
    )
    assert got["stalled_dpo"][0] == "grpo" and "moved to GRPO" in got["stalled_dpo"][1]
    assert got["stalled_grpo"][0] == "grpo" and "last stage" in got["stalled_grpo"][1]
    assert got["solved"] == ("sft", "planned; auto: SFT (solved on dev)")
    assert got["no_data"][0] == "sft" and "no measured gain" in got["no_data"][1]
    assert got["unmeasured"][0] == "sft" and "no measured gain" in got["unmeasured"][1]


def test_a_fixed_recipe_gives_every_skill_its_trainer() -> None:
    plan = assign_trainers(_plan(1, {"a": "sft", "b": "sft"}), _report({}), None, "grpo", 0.05)
    assert [(a.trainer, a.reason) for a in plan.allocations] == [
        ("grpo", "planned; trainer GRPO (train.trainer)")
    ] * 2


# -- rollouts ------------------------------------------------------------------------------------


class _Exact:
    """Verifier double: an answer is right when it equals the gold answer."""

    name = "exact"

    def prompt(self, task: Task) -> list[Message]:
        return [Message(role="user", content=task.question)]

    def score(self, task: Task, completion: str) -> Score:
        return Score(reward=float(completion == task.answer), parsed_answer=completion)


def _judge(planned: Trainer, completions: list[str]) -> Rollout:
    task = Task(skill="s", question="1+1?", answer="2")
    return judge(_Exact(), task, planned, completions)  # type: ignore[arg-type]


def test_dpo_pairs_prefer_the_students_own_right_answer_then_gold() -> None:
    own, gold, nothing = _judge("dpo", ["3", "2"]), _judge("dpo", ["3", "4"]), _judge("dpo", ["2", "2"])
    assert (own.use, gold.use, nothing.use) == ("dpo", "dpo", "sft")
    assert "nothing to reject" in nothing.reason
    rows = dpo_rows(_Exact(), [own, gold, nothing])  # type: ignore[arg-type]
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"], r["chosen_source"]) for r in rows] == [
        ("2", "3", "student"),
        ("2", "3", "gold"),
    ]


def test_grpo_takes_only_prompts_with_mixed_outcomes() -> None:
    mixed, right, wrong = _judge("grpo", ["2", "3"]), _judge("grpo", ["2", "2"]), _judge("grpo", ["1", "3"])
    assert (mixed.use, right.use, wrong.use) == ("grpo", "sft", "sft")
    rows = grpo_rows(_Exact(), [mixed, right, wrong])  # type: ignore[arg-type]
    assert len(rows) == 1 and rows[0]["pass_rate"] == 0.5
    assert Task.model_validate_json(rows[0]["task"]).answer == "2"


def test_rewards_are_the_verifier_plus_a_format_reward() -> None:
    task = Task(skill="s", question="1+1?", answer="2").model_dump_json()
    completions = [[{"role": "assistant", "content": c}] for c in ("2", "3", " ")]
    prompts = [[]] * 3
    assert verifier_reward(_Exact())(prompts, completions, task=[task] * 3) == [1.0, 0.0, 0.0]  # type: ignore[arg-type]

    class _Wrapped(_Exact):
        def score(self, task: Task, completion: str) -> Score:  # parses the last word
            last = completion.split()[-1] if completion.split() else ""
            return Score(reward=float(last == task.answer), parsed_answer=last)

    wordy = [[{"role": "assistant", "content": c}] for c in ("2", "it is 2", " ")]
    assert format_reward(_Wrapped())(prompts, wordy, task=[task] * 3) == [1.0, 0.5, 0.0]  # type: ignore[arg-type]


# -- loop rounds through the CLI -----------------------------------------------------------------


def _run(
    tmp_path: Path,
    model_cache: Path,
    *args: str,
    coin: bool = False,
    rounds: int = 1,
    student: str = "tiny-random-llama",
) -> Path:
    """A loop through the CLI's ``main`` in this process (no second start-up of torch and TRL)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    run_dir = tmp_path / "run"
    sizes = ("8", "4") if coin else ("3", "3")  # coin: enough dev items to measure a pass rate
    if coin:
        args = ("--env", "coin", *args)
    code = cli_in_process(
        "run",
        "--student",
        student,
        "--samples-per-round",
        "8",
        "--rounds",
        str(rounds),
        "--run-dir",
        str(run_dir),
        "--set",
        f"model_cache={model_cache}",
        "--set",
        f"eval.dev_per_skill={sizes[0]}",
        "--set",
        f"eval.test_per_skill={sizes[1]}",
        "--set",
        "train.batch_size=8",
        *args,
    )
    assert code == 0
    return run_dir


def _trainers(run_dir: Path, round_: int) -> list[tuple[str, str]]:
    plan = json.loads((run_dir / "rounds" / str(round_) / "plan.json").read_text())
    return [(a["trainer"], a["reason"]) for a in plan["allocations"]]


def _tool_spans(run_dir: Path) -> list[str]:
    return [s.name for s in read_spans(run_dir / "traces.sqlite") if s.kind == "tool"]


def test_sft_round_records_its_trainer(finished_run: Path) -> None:
    for round_ in (1, 2):
        assert {t for t, _ in _trainers(finished_run, round_)} == {"sft"}
        assert all(r.endswith("; trainer SFT (train.trainer)") for _, r in _trainers(finished_run, round_))
    assert not RunStore(finished_run).round(1).rollouts.exists()  # no rollouts for SFT
    assert "trl.SFTTrainer" in _tool_spans(finished_run)


def test_dpo_round_trains_on_pairs_from_the_students_failures(
    tmp_path: Path, model_cache: Path, tiny_student: Path
) -> None:
    run_dir = _run(tmp_path, model_cache, "--trainer", "dpo")
    store = RunStore(run_dir)
    assert {t for t, _ in _trainers(run_dir, 1)} == {"dpo"}
    pairs = store.read_rows(store.round(1).rows("dpo"))
    assert pairs and all(p["chosen"] != p["rejected"] for p in pairs)
    metrics = json.loads(store.round(1).train_metrics.read_text())
    assert metrics["rows/dpo"] == len(pairs) and "dpo/train_loss" in metrics
    assert (store.round(1).model / "model.safetensors").is_file()
    assert "trl.DPOTrainer" in _tool_spans(run_dir) and "student.rollout" in _tool_spans(run_dir)


def test_grpo_round_rewards_with_the_verifier(tmp_path: Path, model_cache: Path, tiny_student: Path) -> None:
    run_dir = _run(tmp_path, model_cache, "--trainer", "grpo", coin=True)
    store = RunStore(run_dir)
    ((trainer, reason),) = _trainers(run_dir, 1)
    assert trainer == "grpo" and reason.endswith("; trainer GRPO (train.trainer)")
    prompts = store.read_rows(store.round(1).rows("grpo"))
    assert prompts and all(0 < p["pass_rate"] < 1 for p in prompts)
    metrics = json.loads(store.round(1).train_metrics.read_text())
    assert metrics["rows/grpo"] == len(prompts)
    assert "grpo/rewards/verifier/mean" in metrics and "grpo/rewards/answer_format/mean" in metrics
    assert (store.round(1).model / "model.safetensors").is_file()
    assert "trl.GRPOTrainer" in _tool_spans(run_dir)


def test_auto_moves_a_stalled_skill_from_sft_to_dpo(
    tmp_path: Path, model_cache: Path, tiny_student: Path
) -> None:
    # A threshold of 100% makes any round a stall, so round 2 must move coin from SFT to DPO.
    run_dir = _run(
        tmp_path, model_cache, "--trainer", "auto", "--set", "train.stall_threshold=1.0", coin=True, rounds=2
    )
    (first,) = _trainers(run_dir, 1)
    (second,) = _trainers(run_dir, 2)
    assert first[0] == "sft" and first[1].endswith("auto: SFT first")
    assert second[0] == "dpo" and "(< 100%)" in second[1] and second[1].endswith("moved to DPO")
    store = RunStore(run_dir)
    assert not store.round(1).rollouts.exists() and store.round(2).rollouts.is_file()


def test_round_trains_under_accelerate_launch_with_one_cpu_process(
    tmp_path: Path, model_cache: Path, tiny_student: Path
) -> None:
    run_dir = _run(
        tmp_path,
        model_cache,
        "--trainer",
        "grpo",
        "--set",
        "train.launcher=accelerate",
        "--set",
        "train.accelerate_args=[--num_processes, '1', --num_machines, '1', --mixed_precision, 'no', --cpu]",
        coin=True,
    )
    store = RunStore(run_dir)
    log = store.round(1).train_log.read_text()
    assert "accelerate.commands.launch" in log and "-m teachloop.training.launch" in log
    metrics = json.loads(store.round(1).train_metrics.read_text())
    assert metrics["rows/grpo"] > 0 and "grpo/train_loss" in metrics
    assert (store.round(1).model / "model.safetensors").is_file()
    assert "accelerate.launch" in _tool_spans(run_dir)
    # the launched job's progress (forwarded to the loop's console while it trains)
    progress = [
        json.loads(ln) for ln in (store.round(1).dir / "train_progress.jsonl").read_text().splitlines()
    ]
    assert progress[-1]["task"] == "grpo steps" and progress[-1]["done"] == progress[-1]["total"] > 0
    assert "loss" in progress[-1]["stats"]


@pytest.mark.slow
def test_real_student_runs_a_dpo_and_a_grpo_round(tmp_path: Path, model_cache: Path) -> None:
    """SmolLM2-135M-Instruct on CPU: a DPO round on reasoning-basics, then a GRPO round on coin."""
    small = (  # later values override _run's: a CPU round in a few minutes
        "--samples-per-round",
        "6",
        *("--set", "eval.dev_per_skill=2", "--set", "eval.test_per_skill=2"),
        *("--set", "eval.max_new_tokens=6", "--set", "train.batch_size=4"),
        *("--set", "train.dpo.samples=2", "--set", "train.grpo.probe_samples=3"),
        *("--set", "train.grpo.num_generations=2", "--set", "train.grpo.max_completion_length=4"),
    )
    real = "smollm2-135m-instruct"
    dpo_dir = _run(tmp_path / "dpo", model_cache, "--trainer", "dpo", *small, student=real)
    grpo_dir = _run(tmp_path / "grpo", model_cache, "--trainer", "grpo", *small, coin=True, student=real)
    dpo = json.loads((dpo_dir / "rounds/1/train_metrics.json").read_text())
    grpo = json.loads((grpo_dir / "rounds/1/train_metrics.json").read_text())
    assert dpo["rows/dpo"] > 0 and "dpo/train_loss" in dpo
    assert grpo["rows/grpo"] > 0 and "grpo/rewards/verifier/mean" in grpo


@pytest.mark.parametrize(("temperature", "greedy"), [("0", True), ("1", False)])
def test_difficulty_answers_are_greedy_at_temperature_0(
    tmp_path: Path, model_cache: Path, tiny_student: Path, temperature: str, greedy: bool
) -> None:
    """Two answers per candidate: greedy ones are the same answer twice, so every pass rate is 0 or 1;
    sampled ones differ, and on ``coin`` some candidates are then solved once in two."""
    run_dir = _run(
        tmp_path, model_cache, "--set", "teacher.scoring.difficulty_samples=2",
        "--set", f"teacher.scoring.difficulty_temperature={temperature}", coin=True,
    )  # fmt: skip
    store = RunStore(run_dir)
    rates = [r["pass_rate"] for r in store.read_rows(store.round(1).scored)]
    assert len(rates) >= 8 and all(r is not None for r in rates)
    assert (set(rates) <= {0.0, 1.0}) == greedy, rates
