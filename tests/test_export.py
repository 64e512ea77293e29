"""``teachloop export``: a finished tiny run's data loads back with ``datasets.load_from_disk`` and
trains with TRL's SFTTrainer as it is; the cards hold the run's own figures; bad input is one line."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from datasets import load_from_disk
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from helpers import cli_in_process
from teachloop.agents.selector import SelectedSample
from teachloop.agents.synthesizer import with_provenance
from teachloop.environments.base import Task
from teachloop.llm.templates import PROMPTS_DIR
from teachloop.reports.export import origin_of
from teachloop.tracing.store import RunStore


@pytest.fixture(scope="module")
def exported(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "out"
    assert cli_in_process("export", str(finished_run), "--out", str(out)) == 0
    return out


def test_export_holds_every_trained_sample_with_provenance(finished_run: Path, exported: Path) -> None:
    store = RunStore(finished_run)
    data = load_from_disk(str(exported / "dataset"))
    jsonl = [json.loads(line) for line in (exported / "data.jsonl").read_text().splitlines()]
    assert data.to_list() == jsonl
    selected = {r: store.read_models(store.round(r).selected, SelectedSample) for r in (1, 2)}
    assert [(row["round"], row["task_id"]) for row in jsonl] == [
        (r, s.task.id) for r in (1, 2) for s in selected[r]
    ]
    sft = {(r, row["task_id"]): row for r in (1, 2) for row in store.read_rows(store.round(r).rows("sft"))}
    for row in jsonl:
        trained = sft[(row["round"], row["task_id"])]
        assert row["messages"] == trained["prompt"] + trained["completion"]  # exactly what trained
        assert row["skill"] == trained["skill"]
        assert row["origin"] == "engine" and row["teacher_model"] is None and row["prompt_template"] is None
        assert row["verifier_reward"] == 1.0  # every gold answer passes the environment's verifier
        assert row["review"] == "not_reviewed"
    levels = {(r, s.task.id): s.task.difficulty for r in (1, 2) for s in selected[r]}
    assert [row["level"] for row in jsonl] == [levels[(row["round"], row["task_id"])] for row in jsonl]


def test_cards_hold_the_runs_figures(finished_run: Path, exported: Path) -> None:
    jsonl = [json.loads(line) for line in (exported / "data.jsonl").read_text().splitlines()]
    card = (exported / "README.md").read_text()
    assert card.startswith("---\n") and f"num_examples: {len(jsonl)}\n" in card
    for skill, n in Counter(r["skill"] for r in jsonl).items():
        assert f"| {skill} | {n} |" in card
    for round_, n in Counter(r["round"] for r in jsonl).items():
        assert f"| {round_} | {n} |" in card
    summary = json.loads((finished_run / "summary.json").read_text())
    k = summary["student_round"]
    assert (exported / "model" / "model.safetensors").read_bytes() == (
        finished_run / "rounds" / str(k) / "model" / "model.safetensors"
    ).read_bytes()
    model_card = (exported / "model" / "README.md").read_text()
    assert f"after round {k} of teachloop run {finished_run.name}" in model_card
    rounds = {r["round"]: r for r in summary["rounds"]}
    for skill, m in rounds[k]["test"]["skills"].items():
        low, high = m["ci95"]
        cell = f"{100 * m['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] ({m['solved']}/{m['n']})"
        assert f"| {skill} |" in model_card and cell in model_card.split(f"| {skill} |")[1].splitlines()[0]
    assert f"{len(jsonl)} examples from rounds 1..{k}" in model_card


def test_exported_dataset_trains_with_sft_trainer_as_it_is(
    exported: Path, tiny_student: Path, tmp_path: Path
) -> None:
    data = load_from_disk(str(exported / "dataset"))
    model = AutoModelForCausalLM.from_pretrained(tiny_student)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=AutoTokenizer.from_pretrained(tiny_student),
    )
    result = trainer.train()
    assert result.global_step == 2 and result.training_loss > 0
    changed = [k for k, v in model.state_dict().items() if not v.equal(before[k])]
    assert changed


def _fail(capsys: Any, *args: str) -> str:
    assert cli_in_process(*args) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    return str(captured.err)


def test_bad_export_input_is_one_line(
    finished_run: Path, exported: Path, tmp_path: Path, capsys: Any
) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text((finished_run / "config.yaml").read_text())
    summary = json.loads((finished_run / "summary.json").read_text())
    (unfinished / "summary.json").write_text(
        json.dumps({**summary, "status": "incomplete", "stop_reason": None})
    )
    assert "is not finished" in _fail(capsys, "export", str(unfinished), "--out", str(tmp_path / "a"))
    assert not (tmp_path / "a").exists()
    assert "not empty" in _fail(capsys, "export", str(finished_run), "--out", str(exported))
    assert "namespace/name" in _fail(
        capsys, "export", str(finished_run), "--out", str(tmp_path / "b"), "--push-to-hub", "no repo"
    )
    assert "--model" in _fail(
        capsys, "export", str(finished_run), "--out", str(tmp_path / "c"), "--model", "x"
    )


def test_llm_written_samples_carry_their_model_and_prompt_template() -> None:
    session: Any = SimpleNamespace(
        teacher=SimpleNamespace(endpoint=lambda role: SimpleNamespace(model="m-7b"))
    )
    task = Task(skill="chain_sum", question="2 + 3 =", answer="5", source="teacher:synthesizer")
    written = with_provenance(task, session, "synthesizer", "synthesizer")
    digest = hashlib.sha256((PROMPTS_DIR / "synthesizer.jinja").read_bytes()).hexdigest()[:12]
    assert written.metadata["llm"] == {"model": "m-7b", "template": f"synthesizer@{digest}"}
    assert origin_of(SelectedSample(task=written, origin="new")) == "llm"
    assert origin_of(SelectedSample(task=written, origin="replay")) == "replay"
    revised = written.model_copy(update={"answer": "6", "original_answer": "5"})
    assert origin_of(SelectedSample(task=revised, origin="new")) == "revision"
    assert origin_of(SelectedSample(task=task, origin="new")) == "engine"
