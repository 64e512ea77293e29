"""End to end with a real teacher server: ``transformers serve`` on loopback with a local model
(the tiny random Llama, which answers garbage quickly), and one round of the loop with the LLM
teacher in every role. Whatever the model says, the loop completes, every unparseable reply gets
one repair and is then counted as malformed, each role falls back, and the trace shows every call.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import TINY_ARGS, teachloop
from teachloop.agents.reviser import RevisionRecord
from teachloop.criteria.pairs import EXAMPLE_PAIRS
from teachloop.environments.base import Task
from teachloop.tracing.spans import read_spans
from teachloop.tracing.store import RunStore

STRUCTURED_PURPOSES = ("ask", "judge")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def teacher_model(tmp_path_factory: pytest.TempPathFactory, tiny_student: Path) -> Path:
    """A copy of the tiny model with a 4096-token context instead of 1024: a diagnoser prompt with
    its repair request comes near 1024, and transformers 5.25 answers a request past the context
    with HTTP 400 (a real limit of a real teacher, which the loop falls back from; not what these
    tests are about)."""
    teacher = tmp_path_factory.mktemp("teacher") / "tiny-teacher"
    shutil.copytree(tiny_student, teacher)
    config = json.loads((teacher / "config.json").read_text())
    (teacher / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4096}))
    return teacher


@pytest.fixture(scope="module")
def served_teacher(tmp_path_factory: pytest.TempPathFactory, teacher_model: Path) -> Iterator[str]:
    """``transformers serve`` pinned to ``teacher_model``; yields its OpenAI base URL."""
    home = tmp_path_factory.mktemp("hf")
    (home / "hub").mkdir()
    log = (home / "serve.log").open("w")
    # The port is probed, then handed to the server: another process can take it in between, so a
    # server that exits because its port is in use is started again on a fresh one.
    for _attempt in range(3):
        port = _free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "transformers"),
                "serve",
                str(teacher_model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline, ready = time.monotonic() + 120, False
        while not ready and server.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    ready = r.status == 200
            except OSError:
                time.sleep(0.5)
        if server.poll() is None or "address already in use" not in (home / "serve.log").read_text().lower():
            break
    try:
        if not ready:
            pytest.fail(f"transformers serve did not start:\n{(home / 'serve.log').read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def served_run(
    served_teacher: str, teacher_model: Path, model_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    tmp = tmp_path_factory.mktemp("served")
    run_dir = tmp / "run"
    result = teachloop(
        "run", *TINY_ARGS, "--rounds", "1", "--run-dir", str(run_dir), "--set", f"model_cache={model_cache}",
        "--teacher", "openai", "--teacher-base-url", served_teacher, "--teacher-model", str(teacher_model),
        "--set", "teacher.llm.max_tokens=32", "--set", "teacher.llm.concurrency=2",
        "--set", "teacher.llm.timeout_s=60", "--set", "teacher.diagnoser_examples=1",
        "--set", "teacher.revision.scope=all", "--set", "teacher.revision.max_per_round=3",
        cwd=tmp, model_cache=model_cache,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_one_round_with_a_real_served_teacher_completes(served_run: Path) -> None:
    summary = json.loads((served_run / "summary.json").read_text())
    assert summary["status"] == "complete" and [r["round"] for r in summary["rounds"]] == [0, 1]
    assert summary["rounds"][1]["samples"]["selected"] == 24
    assert set(summary["llm_usage"]) == {"diagnoser", "planner", "synthesizer", "reviser"}


def test_every_call_is_traced_and_every_malformed_reply_repaired_or_counted(served_run: Path) -> None:
    spans = read_spans(served_run / "traces.sqlite")
    llm = [s for s in spans if s.kind == "llm"]
    assert {s.name.split(".")[0] for s in llm} == {"diagnoser", "planner", "synthesizer", "reviser"}
    assert all(s.status == "ok" and s.outputs is not None and s.completion_tokens for s in llm)
    firsts = [s for s in llm if s.name.split(".", 1)[1] in STRUCTURED_PURPOSES]
    repairs = [s for s in llm if s.name.endswith("repair")]
    unparsed = [s for s in firsts if json.loads(s.attrs or "{}")["parsed"] is False]
    assert len(repairs) == len(unparsed)  # one repair per reply that did not parse, no more
    usage = json.loads((served_run / "summary.json").read_text())["llm_usage"]
    assert sum(u["repaired"] + u["malformed"] for u in usage.values()) == len(unparsed)
    assert sum(u["requests"] for u in usage.values()) == len(llm)
    # each LLM span sits under its agent span, under the node that made the call
    by_id = {s.id: s for s in spans}
    for s in llm:
        agent = by_id[s.parent_id or ""]
        assert agent.kind == "agent" and agent.name.split(".")[0] == s.name.split(".")[0]
        assert by_id[agent.parent_id or ""].kind == "node"


def test_roles_fall_back_where_the_model_said_nothing_usable(served_run: Path) -> None:
    store = RunStore(served_run)
    agents = {
        s.name: json.loads(s.attrs or "{}")
        for s in read_spans(served_run / "traces.sqlite")
        if s.kind == "agent"
    }
    weakness = json.loads(store.round(0).weakness.read_text())
    plan = json.loads(store.round(1).plan.read_text())
    if "fallback" in agents["diagnoser.openai"]:
        assert weakness["brain"] == "heuristic"
    if "fallback" in agents["planner.llm"]:
        assert plan["policy"] == "deficit" and plan["allocations"][0]["reason"].startswith(
            "LLM plan unusable"
        )
    assert sum(a["n"] for a in plan["allocations"]) == 24
    generated = store.read_models(store.round(1).generated, Task)
    assert len(generated) >= 24  # the procedural generator made up for what the synthesizer could not write
    records = store.read_models(store.round(1).revisions, RevisionRecord)
    assert len(records) == 3 and all(r.prompt and r.original_question for r in records)
    assert all(r.kept is False or r.check_passed for r in records)


def test_criteria_mining_and_scoring_with_a_real_served_judge(
    served_teacher: str, teacher_model: Path, model_cache: Path, tmp_path: Path
) -> None:
    """CritiQ on a real server: whatever the judge says, mining ends with criteria from the seed
    library (the manager's unusable proposal falls back), every criterion's held-out accuracy and
    the plain prompt's are reported, and a loop scores its samples with the mined file."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(EXAMPLE_PAIRS.read_text().splitlines(keepends=True)[:6]))
    llm = [
        "--set",
        "teacher.llm.max_tokens=32",
        "--set",
        "teacher.llm.concurrency=2",
        "--set",
        "teacher.llm.timeout_s=60",
    ]
    mined = teachloop(
        "criteria", "mine", "--pairs", str(pairs), "--out", str(tmp_path / "mined"),
        "--teacher-base-url", served_teacher, "--teacher-model", str(teacher_model), *llm,
        "--set", "teacher.criteria.proposals=2", "--set", "teacher.criteria.votes=2",
        "--set", "teacher.criteria.iterations=2", "--set", "teacher.criteria.held_out=0.34",
        cwd=tmp_path, model_cache=model_cache,
    )  # fmt: skip
    assert mined.returncode == 0, mined.stderr[-3000:]
    report = json.loads((tmp_path / "mined" / "criteria.json").read_text())
    assert report["mining_pairs"] == 4 and report["held_out_pairs"] == 2
    assert report["criteria"] or report["dropped"]
    assert all(0 <= c["accuracy"] <= 1 and 0 <= c["held_out_accuracy"] <= 1 for c in report["criteria"])
    assert 0 <= report["plain_held_out"] <= 1
    spans = read_spans(tmp_path / "mined" / "traces.sqlite")
    roles = {s.name.split(".")[0] for s in spans if s.kind == "llm"}
    assert {"criteria_manager", "criteria_worker"} <= roles
    assert all(s.status == "ok" for s in spans if s.kind == "llm")
    if not report["criteria"]:
        return  # everything was dropped: nothing to score with
    run_dir = tmp_path / "run"
    result = teachloop(
        "run", *TINY_ARGS, "--rounds", "1", "--run-dir", str(run_dir), "--set", f"model_cache={model_cache}",
        "--teacher-base-url", served_teacher, "--teacher-model", str(teacher_model), *llm,
        "--set", f"teacher.criteria.file={tmp_path / 'mined' / 'criteria.json'}",
        cwd=tmp_path, model_cache=model_cache,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    judged = [s for s in read_spans(run_dir / "traces.sqlite") if s.name == "judge.criteria"]
    assert (
        len(judged) == 1
        and json.loads(judged[0].outputs or "{}")["judged"]
        + json.loads(judged[0].outputs or "{}")["unusable"]
        == json.loads((run_dir / "summary.json").read_text())["rounds"][1]["samples"]["usable"]
    )
