"""The teacher LLM budget: a run against the scripted teacher pauses at a node boundary once
``stop.max_llm_tokens`` is spent, says why, stays paused on resume, and completes every remaining
node exactly once after the budget in its config.yaml is raised; cost budgets read the price table.
``run --dry-run`` estimates that run's tokens within 25% and writes nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_openai import FakeOpenAI
from teacher_script import ScriptedTeacher

from helpers import cli_in_process, scripted_teacher_args, tiny_run_args
from teachloop.environments.registry import load_environment
from teachloop.foundation.errors import ConfigError
from teachloop.llm.usage import RoleUsage
from teachloop.loop import runner
from teachloop.loop.budget import budget_stop, spent
from teachloop.loop.config import build_config, load_saved_config
from teachloop.loop.dryrun import estimate
from teachloop.loop.state import LLMSpend, LoopState
from teachloop.tracing.spans import read_spans


def _state(*usages: RoleUsage) -> LoopState:
    return {
        "llm_usage": [
            LLMSpend(round=0, node="diagnose", roles={"diagnoser": u, "planner": u}) for u in usages
        ]
    }


def test_tokens_and_cost_budgets_are_spent_by_all_roles_together() -> None:
    state = _state(RoleUsage(prompt_tokens=300, completion_tokens=100, cost_usd=0.25))
    assert spent(state).prompt_tokens == 600 and spent(state).cost_usd == 0.5
    tokens = build_config({"stop": {"max_llm_tokens": 800}}).stop
    assert budget_stop(state, tokens) == (
        "LLM token budget of 800 spent (800 used): raise stop.max_llm_tokens in the run's config.yaml, "
        "then 'teachloop resume' it"
    )
    assert budget_stop(state, build_config({"stop": {"max_llm_tokens": 801}}).stop) is None
    cost = build_config({"stop": {"max_cost_usd": 0.5}}).stop
    assert budget_stop(state, cost) == (
        "LLM cost budget of $0.5 spent ($0.5000 used): raise stop.max_cost_usd in the run's config.yaml, "
        "then 'teachloop resume' it"
    )
    assert budget_stop(state, build_config({"stop": {"max_cost_usd": 0.51}}).stop) is None
    assert budget_stop(state, build_config({}).stop) is None


def _node_runs(run_dir: Path) -> Counter[tuple[int | None, str]]:
    return Counter((s.round, s.name) for s in read_spans(run_dir / "traces.sqlite") if s.kind == "node")


@pytest.fixture(scope="module")
def budgeted_run(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, tiny_student: Path
) -> dict[str, Any]:
    """A one-round run against the scripted teacher with a 1-token budget: paused, resumed while
    still over budget, then resumed with the budget raised. What each step left is recorded."""
    seen: dict[str, Any] = {"run_dir": tmp_path_factory.mktemp("budget") / "run"}
    run_dir = seen["run_dir"]
    with FakeOpenAI(ScriptedTeacher()) as server:
        args = [
            *tiny_run_args(model_cache, run_dir, rounds=1),
            *scripted_teacher_args(server.base_url),
            "--set",
            "teacher.diagnoser_examples=2",
            "--set",
            "stop.max_llm_tokens=1",
        ]
        seen["run_code"] = cli_in_process(*args)
        seen["paused"] = json.loads((run_dir / "summary.json").read_text())
        seen["next"] = runner.status(run_dir).next_nodes
        seen["nodes_paused"] = _node_runs(run_dir)
        requests = server.counts["requests"]
        seen["resume_over_budget_code"] = cli_in_process("resume", str(run_dir))
        seen["nodes_after_resume_over_budget"] = _node_runs(run_dir)
        seen["requests_after_resume_over_budget"] = server.counts["requests"] - requests
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        config["stop"]["max_llm_tokens"] = 10**9
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
        seen["resume_code"] = cli_in_process("resume", str(run_dir))
    seen["final"] = json.loads((run_dir / "summary.json").read_text())
    return seen


@pytest.mark.slow
def test_a_spent_budget_pauses_the_run_and_raising_it_completes_it(budgeted_run: dict[str, Any]) -> None:
    seen = budgeted_run
    assert seen["run_code"] == 0
    paused = seen["paused"]
    assert paused["status"] == "stopped"
    assert paused["stop_reason"].startswith("LLM token budget of 1 spent (")
    # the diagnoser's tokens spent it: the run paused after round 0's diagnosis
    assert seen["next"] == ("frontier",)
    before = seen["nodes_paused"]
    assert before[(0, "diagnose")] == 1 and (1, "plan") not in before
    # resumed while still over budget: nothing runs, nothing is asked
    assert seen["resume_over_budget_code"] == 0
    assert seen["nodes_after_resume_over_budget"] == before
    assert seen["requests_after_resume_over_budget"] == 0
    assert seen["resume_code"] == 0
    final = seen["final"]
    assert (final["status"], final["stop_reason"]) == ("complete", "completed 1 round(s)")
    runs = _node_runs(seen["run_dir"])
    assert set(runs.values()) == {1}, runs  # no node ran twice
    assert {(1, n) for n in ("plan", "generate", "revise", "train")} <= set(runs)
    assert final["llm_usage"]["synthesizer"]["requests"] > 0


@pytest.mark.slow
def test_the_dry_run_estimate_is_within_a_quarter_of_the_real_tokens(budgeted_run: dict[str, Any]) -> None:
    """The same config, estimated before the run, against what the scripted teacher's server
    counted (it counts whitespace-separated words as tokens, so the estimate counts the same way:
    what is tested is the calls and the prompt and reply sizes, not a tokenizer)."""
    run_dir = budgeted_run["run_dir"]
    config = load_saved_config(run_dir / "config.yaml")
    dry = estimate(config, load_environment(config.env, config.env_options), lambda text: len(text.split()))
    usage = budgeted_run["final"]["llm_usage"]
    real = sum(u["prompt_tokens"] + u["completion_tokens"] for u in usage.values())
    assert abs(dry.tokens - real) / real <= 0.25, (dry.tokens, real, dry.roles, usage)
    calls = {r.role: r.calls for r in dry.roles}
    assert calls["diagnoser"] == usage["diagnoser"]["requests"] == 1
    assert calls["planner"] == usage["planner"]["requests"] == 1
    # writes and votes; the votes on kept rewrites (same question) were cache hits, as assumed
    assert calls["synthesizer"] == usage["synthesizer"]["requests"] == 62


def _files(*roots: Path) -> set[Path]:
    return {p for root in roots for p in root.rglob("*")}


def test_dry_run_prints_the_plan_and_estimate_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    before = _files(tmp_path)
    code = cli_in_process(
        "run", "--dry-run", "--rounds", "2", "--samples-per-round", "40", "--run-dir", str(tmp_path / "run"),
        "--set", f"model_cache={cache}", "--teacher", "openai", "--teacher-model", "gpt-4o-mini",
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and _files(tmp_path) == before  # no run directory, no model, no cache
    assert "2 round(s) · 5 skills" in out and "40 training samples planned, about 50 candidates" in out
    for role in ("diagnoser", "planner", "synthesizer", "reviser"):
        assert f"│ {role}" in out
    assert "gpt-4o-mini 0.15 prompt, 0.6 completion" in out
    heuristic = cli_in_process("run", "--dry-run", "--set", f"model_cache={cache}")
    assert heuristic == 0 and "teacher LLM: not used" in capsys.readouterr().out
    assert _files(tmp_path) == before


def test_a_saved_config_with_flat_prices_loads_as_its_models_price(tmp_path: Path) -> None:
    saved = {"teacher": {"llm": {"model": "my-model", "prompt_price": 1.5, "completion_price": 6.0}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    llm = load_saved_config(tmp_path / "config.yaml").teacher.llm
    assert (llm.price("my-model").prompt, llm.price("my-model").completion) == (1.5, 6.0)
    assert llm.price("gpt-4o-mini").prompt == 0.15 and llm.price("unknown").prompt == 0.0
    with pytest.raises(ConfigError, match=r"--set teacher.llm.prices.<model>.prompt="):
        build_config(saved)  # a user's config: one line naming the new key
