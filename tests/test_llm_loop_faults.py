"""One round of the real loop with the LLM teacher in every role, against a loopback server that
answers ~30% of requests with a fault (429, 500 echoing the API key, a hang past the timeout, a
broken body, content that is not JSON): the round completes, every fault is counted in the traces,
the teacher's work reaches the run's artifacts, no key reaches any file, and the kept revisions
become the training rows of a local reviser."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from fake_openai import FakeOpenAI
from teacher_script import ScriptedTeacher

from helpers import cli_env, cli_in_process, scripted_teacher_args, teachloop, tiny_run_args
from teachloop.agents.reviser import RevisionRecord, RevisionReply
from teachloop.agents.reviser_training import reviser_rows, revision_records
from teachloop.environments.base import Task
from teachloop.tracing.spans import Span, read_spans
from teachloop.tracing.store import RunStore

FAKE_KEY = "sk-planted-9f8e7d6c5b4a3210PLANT"
TRANSIENT = ("429", "500", "hang", "broken_body")


def llm_args(base_url: str, model_cache: Path, run_dir: Path) -> list[str]:
    return [
        *tiny_run_args(model_cache, run_dir, rounds=1),
        *scripted_teacher_args(base_url),
        "--set",
        "teacher.diagnoser_examples=2",
        "--set",
        "teacher.llm.concurrency=4",
        "--set",
        "teacher.llm.timeout_s=1",
        "--set",
        "teacher.llm.backoff_s=0.01",
        "--set",
        "teacher.llm.backoff_max_s=0.05",
        "--set",
        "teacher.llm.max_retries=12",
        "--set",
        "teacher.llm.prices.scripted.prompt=1.5",
    ]


@pytest.fixture(scope="module")
def faulty_run(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, tiny_student: Path
) -> tuple[Path, Counter[str], str]:
    tmp = tmp_path_factory.mktemp("faults")
    run_dir = tmp / "run"
    with FakeOpenAI(ScriptedTeacher(), fault_rate=0.3, hang_s=1.5, seed=7) as server:
        env = {**cli_env(model_cache), "OPENAI_API_KEY": FAKE_KEY}
        result = teachloop(
            *llm_args(server.base_url, model_cache, run_dir), cwd=tmp, model_cache=model_cache, env=env
        )
        counts = Counter(server.counts)
        assert all(a == f"Bearer {FAKE_KEY}" for a in server.authorizations)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, counts, result.stdout + result.stderr


def _attrs(span: Span) -> dict[str, object]:
    return json.loads(span.attrs or "{}")


def test_round_completes_with_faults_counted_in_traces(faulty_run: tuple[Path, Counter[str], str]) -> None:
    run_dir, counts, _ = faulty_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and [r["round"] for r in summary["rounds"]] == [0, 1]
    injected = sum(counts[f] for f in TRANSIENT)
    assert all(counts[f] > 0 for f in (*TRANSIENT, "malformed_content")), counts
    assert 0.2 < (injected + counts["malformed_content"]) / counts["requests"] < 0.4
    spans = [s for s in read_spans(run_dir / "traces.sqlite") if s.kind == "llm"]
    assert {s.name.split(".")[0] for s in spans} == {"diagnoser", "planner", "synthesizer", "reviser"}
    # every transient fault is one recorded error on the span of the request it hit
    assert sum(len(_attrs(s).get("errors", [])) for s in spans) == injected  # type: ignore[arg-type]
    assert sum(int(_attrs(s).get("retries", 0)) for s in spans) == injected  # type: ignore[call-overload]
    # every request the server answered is a span; a reply that did not parse got a repair or was counted
    answered = counts["requests"] - injected
    assert sum(not _attrs(s).get("cache_hit") for s in spans) == answered
    unparsed_first = [s for s in spans if _attrs(s).get("parsed") is False and "repair" not in s.name]
    usage = summary["llm_usage"]
    assert unparsed_first and sum(u["repaired"] + u["malformed"] for u in usage.values()) == len(
        unparsed_first
    )
    assert sum(u["requests"] for u in usage.values()) == counts["requests"]
    assert sum(u["retries"] for u in usage.values()) == injected
    assert usage["diagnoser"]["cost_usd"] > 0 and summary["rounds"][1]["llm"]["planner"]["requests"] >= 1


def test_the_teachers_work_reaches_the_artifacts(faulty_run: tuple[Path, Counter[str], str]) -> None:
    run_dir, _, _ = faulty_run
    store = RunStore(run_dir)
    agents = {s.name: _attrs(s) for s in read_spans(run_dir / "traces.sqlite") if s.kind == "agent"}
    # a role whose ask and repair were both hit by a content fault falls back, and says so
    weakness = json.loads(store.round(0).weakness.read_text())
    if "fallback" in agents["diagnoser.openai"]:
        assert weakness["brain"] == "heuristic" and weakness["patterns"] == []
    else:
        assert weakness["brain"] == "openai" and len(weakness["patterns"]) == 5
    plan = json.loads(store.round(1).plan.read_text())
    assert sum(a["n"] for a in plan["allocations"]) == 24
    if "fallback" in agents["planner.llm"]:
        assert plan["policy"] == "deficit"
        assert all(a["reason"].startswith("LLM plan unusable") for a in plan["allocations"])
    else:
        assert plan["policy"] == "llm"
        assert all(a["focus"] == [f"{a['skill']} basics"] for a in plan["allocations"])
    generated = store.read_models(store.round(1).generated, Task)
    written = [t for t in generated if t.source == "teacher:synthesizer"]
    assert written and any(t.source.startswith("reasoning-gym") for t in generated)
    assert all(t.metadata["teacher_check"]["method"] == "agreement" for t in written)
    records = store.read_models(store.round(1).revisions, RevisionRecord)
    kept = [r for r in records if r.kept]
    assert kept and all(r.judge_verdict == "revised" and r.check_passed for r in kept)
    revised = store.read_models(store.round(1).revised, Task)
    fixed = [t for t in revised if t.original_answer is not None]
    assert {t.id for t in fixed} == {r.revised_task_id for r in kept}
    assert all(t.metadata["teacher_check"]["passed"] for t in revised if t.source == "teacher:synthesizer")
    selected = [row["task"] for row in store.read_rows(store.round(1).selected)]
    assert len(selected) == 24 and any(t["source"] == "teacher:synthesizer" for t in selected)


def test_a_rerun_with_the_cache_makes_no_request(
    faulty_run: tuple[Path, Counter[str], str], model_cache: Path
) -> None:
    run_dir, _, _ = faulty_run
    again = run_dir.parent / "again"
    with FakeOpenAI(lambda body: "a request the cache should have answered") as server:
        args = [
            *llm_args(server.base_url, model_cache, again),
            "--set",
            f"teacher.llm.cache_path={run_dir / 'llm_cache.sqlite'}",
        ]
        assert cli_in_process(*args) == 0
        assert server.counts["requests"] == 0
    first, second = RunStore(run_dir), RunStore(again)
    for name in ("generated.parquet", "revised.parquet", "selected.parquet"):
        ids = [
            [r["task"]["id"] if "task" in r else r["id"] for r in s.read_rows(s.round(1).dir / name)]
            for s in (first, second)
        ]
        assert ids[0] == ids[1], name
    usage = json.loads((again / "summary.json").read_text())["llm_usage"]
    llm_spans = [s for s in read_spans(again / "traces.sqlite") if s.kind == "llm"]
    assert sum(u["cache_hits"] for u in usage.values()) == len(llm_spans) > 0
    assert all(u["requests"] == 0 and u["cost_usd"] == 0 for u in usage.values())
    assert not (again / "llm_cache.sqlite").exists()


def test_the_api_key_reaches_no_file_and_no_output(faulty_run: tuple[Path, Counter[str], str]) -> None:
    run_dir, counts, output = faulty_run
    assert counts["500"] > 0  # the server echoed the key back in those error bodies
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "traces.sqlite" for p in files) and any(p.name == "llm_cache.sqlite" for p in files)
    for path in files:
        assert FAKE_KEY.encode() not in path.read_bytes(), path
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["policy"] == "deficit" and set(config["teacher"]["brains"].values()) == {"openai"}
    assert (
        config["teacher"]["llm"]["model"] == "scripted"
        and config["teacher"]["llm"]["api_key_env"] == "OPENAI_API_KEY"
    )
    assert FAKE_KEY not in output
    assert "[REDACTED]" in (run_dir / "traces.sqlite").read_bytes().decode("utf-8", "replace")


def test_kept_revisions_become_reviser_training_rows(faulty_run: tuple[Path, Counter[str], str]) -> None:
    """What ``teachloop reviser train`` trains on (its training is tested in test_reviser_train.py)."""
    run_dir, _, _ = faulty_run
    records = revision_records([run_dir])
    rows = reviser_rows(records)
    assert len(rows) == sum(r.kept for r in records) > 0
    for row, record in zip(rows, [r for r in records if r.kept], strict=True):
        assert row["prompt"] == [m.model_dump() for m in record.prompt]
        revision = RevisionReply.model_validate_json(row["completion"][0]["content"])
        assert (revision.question, revision.answer) == (record.revised_question, record.revised_answer)


def test_the_diagnose_node_shows_its_llm_calls_live(faulty_run: tuple[Path, Counter[str], str]) -> None:
    """The last progress line of round 0's diagnose node (its only LLM node) counts the calls,
    failures, retries and tokens the summary records for it."""
    run_dir, _, output = faulty_run
    lines = [ln for ln in output.splitlines() if ln.startswith("round 0  diagnose  llm calls ")]
    usage = json.loads((run_dir / "summary.json").read_text())["rounds"][0]["llm"]["diagnoser"]
    calls = usage["requests"] - usage["retries"] + usage["cache_hits"]
    tokens = usage["prompt_tokens"] + usage["completion_tokens"]
    assert lines[-1] == (
        f"round 0  diagnose  llm calls {calls} · failed {usage['failures']} · "
        f"retried {usage['retries']} · tokens {tokens}"
    )
