"""Training really trains: a few SFT steps through the functions a round calls change the tiny
model's weights and lower its loss on what it trained on, and GRPO on a shipped environment
(reasoning-basics' chain_sum) rewards each completion with that environment's own verifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from teachloop.environments.registry import load_environment
from teachloop.tracing.store import RunStore
from teachloop.training import rewards
from teachloop.training.common import STEPS_FILE
from teachloop.training.config import TrainConfig
from teachloop.training.job import build_job, run_stage
from teachloop.training.rollouts import grpo_rows, judge
from teachloop.training.student import load_student

SYSTEM = {"role": "system", "content": "Answer with the final answer only."}


def _sft_rows() -> list[dict[str, Any]]:
    """Rows shaped as a round writes them (rounds/<n>/sft.parquet): four facts, each twice."""
    facts = [("2 + 3 =", "5"), ("7 + 1 =", "8"), ("4 + 4 =", "8"), ("9 + 0 =", "9")]
    return [
        {
            "prompt": [SYSTEM, {"role": "user", "content": q}],
            "completion": [{"role": "assistant", "content": a}],
            "skill": "chain_sum",
            "task_id": f"t{i}-{k}",
            "origin": "new",
        }
        for k in range(2)
        for i, (q, a) in enumerate(facts)
    ]


def _answer_loss(model_dir: Path, rows: list[dict[str, Any]]) -> float:
    """Mean loss of the completion tokens (what SFT trains on), computed here, not by the trainer."""
    model, tokenizer = load_student(model_dir)
    model.eval()
    losses = []
    with torch.no_grad():
        for row in rows:
            prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
            full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
            assert full.startswith(prompt)
            ids = tokenizer(full, return_tensors="pt", add_special_tokens=False).input_ids
            start = len(tokenizer(prompt, add_special_tokens=False).input_ids)
            labels = ids.clone()
            labels[:, :start] = -100
            losses.append(float(model(input_ids=ids, labels=labels).loss))
    return sum(losses) / len(losses)


def _train(
    tiny_student: Path, tmp_path: Path, rows: list[dict[str, Any]], trainer: str, **settings: Any
) -> Path:
    """One stage of a round's training job, as the train node builds and runs it in process."""
    store = RunStore(tmp_path / "run")
    paths = store.round(1)
    paths.dir.mkdir(parents=True)
    data = paths.rows(trainer)  # type: ignore[arg-type]
    store.write_rows(data, rows)
    config = TrainConfig.model_validate({"bf16": False, **settings})
    env = load_environment("reasoning-basics") if trainer == "grpo" else None
    job = build_job(tiny_student, paths, {trainer: (data, len(rows))}, [], config, 0, "reasoning-basics", {})  # type: ignore[dict-item]
    metrics = run_stage(job, 0, env)
    assert metrics["train_loss"] == metrics["train_loss"]  # not NaN
    return paths.model


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def test_a_few_sft_steps_change_the_weights_and_lower_the_loss(tiny_student: Path, tmp_path: Path) -> None:
    rows = _sft_rows()
    model = _train(tiny_student, tmp_path, rows, "sft", learning_rate=3e-3, epochs=3, batch_size=4)
    before, after = _weights(tiny_student), _weights(model)
    assert before.keys() == after.keys()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) >= len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
    loss_before, loss_after = _answer_loss(tiny_student, rows), _answer_loss(model, rows)
    # Six steps from ~ln(vocabulary): a clear fall (about 1.4 nats here), none at a learning rate near 0.
    assert loss_after < loss_before - 0.5, (loss_before, loss_after)
    # The trainer's own per-step log is saved with the weights it led to.
    steps = json.loads((model / STEPS_FILE).read_text())
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5, 6]  # 8 rows in batches of 4, 3 epochs
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.5, steps


def test_grpo_rewards_chain_sum_completions_with_the_environments_verifier(
    tiny_student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = load_environment("reasoning-basics")
    tasks = [t for t in env.tasks("dev", 15, 0) if t.skill == "chain_sum"][:2]
    assert len(tasks) == 2
    # The reward function alone, on gold and wrong answers: the verifier, not a stand-in.
    verifier = rewards.verifier_reward(env)
    as_json = [t.model_dump_json() for t in tasks]
    assert verifier([None] * 4, [t.answer for t in tasks] + ["-1", "nope"], as_json + as_json) == [
        1.0,
        1.0,
        0.0,
        0.0,
    ]

    seen: list[tuple[str, str, float | None]] = []

    def spying(env_: Any) -> rewards.RewardFn:
        inner = rewards.verifier_reward(env_)

        def verifier(prompts: Any, completions: Any, task: Any, **kw: Any) -> list[float | None]:
            out = inner(prompts, completions, task, **kw)
            seen.extend(zip(task, [rewards.completion_text(c) for c in completions], out, strict=True))
            return out

        return verifier

    monkeypatch.setattr("teachloop.training.grpo.verifier_reward", spying)
    rows = grpo_rows(env, [judge(env, t, "grpo", ["x", t.answer]) for t in tasks])
    assert len(rows) == 2  # mixed outcomes: both kept for GRPO
    _train(
        tiny_student,
        tmp_path,
        rows,
        "grpo",
        batch_size=4,
        grpo={"num_generations": 2, "max_completion_length": 4, "learning_rate": 1e-4},
    )
    assert seen, "GRPO never called the verifier reward"
    by_id = {t.id: t for t in tasks}
    for task_json, completion, reward in seen:
        task = by_id[json.loads(task_json)["id"]]
        assert reward == env.score(task, completion).reward
