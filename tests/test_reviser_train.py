"""``teachloop reviser train``: the kept (raw, revised) pairs runs stored train a local CoachLM reviser
with real TRL on the tiny random Llama. The pairs are written as a run writes them (real reviser
prompts rendered from prompts/reviser.jinja); the faults test checks that a real run's records
turn into the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import cli_in_process
from teachloop.agents.reviser import RevisionRecord, RevisionReply, revision_prompt
from teachloop.agents.reviser_training import reviser_rows, revision_records, train_reviser
from teachloop.environments.base import Skill, Task
from teachloop.foundation.errors import ConfigError, RunDirError
from teachloop.loop.config import RunConfig
from teachloop.tracing.store import RunStore
from teachloop.training.config import TrainConfig

SKILL = Skill(name="chain_sum", description="add and subtract a chain of integers")


def _record(i: int, round_: int, kept: bool, confidence: float) -> RevisionRecord:
    task = Task(skill=SKILL.name, question=f"{i} + {i}", answer=f"The answer is {2 * i}.")
    reasons = ["the answer holds more than the final answer", "the question is too short to be clear"]
    return RevisionRecord(
        round=round_,
        task_id=task.id,
        skill=task.skill,
        source=task.source,
        weak_reasons=reasons,
        original_question=task.question,
        original_solution="",
        original_answer=task.answer,
        prompt=revision_prompt(task, reasons, SKILL, [{"question": "3 + 4 - 2 =", "answer": "5"}]),
        revised_task_id=f"r{i}",
        revised_question=f"What is {i} + {i}? Give only the number.",
        revised_solution=f"{i} + {i} = {2 * i}",
        revised_answer=str(2 * i),
        problems_fixed=["the answer is now the number alone"],
        judge_verdict="revised" if kept else "original",
        judge_confidence=confidence,
        check_passed=True if kept else None,
        kept=kept,
    )


@pytest.fixture(scope="module")
def revised_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding revision attempts in two rounds: 6 kept (two at low confidence), 3 not."""
    root = tmp_path_factory.mktemp("revised") / "run"
    store = RunStore(root)
    root.mkdir()
    store.config_path.write_text(RunConfig().to_yaml())
    records = [
        _record(i, 1 if i < 5 else 2, kept=i < 6, confidence=0.6 if i in (4, 5) else 0.9) for i in range(9)
    ]
    store.write_models(store.round(1).revisions, records[:5])
    store.write_models(store.round(2).revisions, records[5:])
    return root


def test_only_kept_and_confident_revisions_become_training_rows(revised_run: Path) -> None:
    records = revision_records([revised_run])
    assert [r.round for r in records] == [1] * 5 + [2] * 4
    rows = reviser_rows(records)
    assert len(rows) == 6
    assert len(reviser_rows(records, min_confidence=0.8)) == 4
    row = rows[0]
    assert row["prompt"] == [m.model_dump() for m in records[0].prompt]
    (completion,) = row["completion"]
    revision = RevisionReply.model_validate(json.loads(completion["content"]))
    assert (
        completion["role"] == "assistant" and revision.answer == "0" and revision.question.startswith("What")
    )


def test_reviser_train_fine_tunes_a_local_model(
    revised_run: Path, model_cache: Path, tiny_student: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = revised_run.parent / "reviser"
    code = cli_in_process(
        "reviser", "train", str(revised_run), "--out", str(out), "--base", "tiny-random-llama",
        "--model-cache", str(model_cache), "--epochs", "1", "--batch-size", "4",
    )  # fmt: skip
    shown = capsys.readouterr()
    assert code == 0, shown.err[-2000:]
    assert "trained a reviser on 6 pairs" in shown.out and (out / "model.safetensors").is_file()
    assert "Writing model shards" not in shown.err  # library progress bars stay quiet
    with pytest.raises(ConfigError, match="already exists"):
        train_reviser([revised_run], tiny_student, out, TrainConfig())


def test_reviser_train_refuses_bad_input_in_one_line(revised_run: Path, tiny_student: Path) -> None:
    empty = revised_run.parent / "no-revisions"
    empty.mkdir()
    (empty / "config.yaml").write_text((revised_run / "config.yaml").read_text())
    with pytest.raises(ConfigError, match="no kept revisions"):
        train_reviser([empty], tiny_student, revised_run.parent / "unused", TrainConfig())
    with pytest.raises(RunDirError, match="not a teachloop run directory"):
        train_reviser([revised_run.parent], tiny_student, revised_run.parent / "unused", TrainConfig())
