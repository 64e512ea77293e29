"""The teacher LLM budget: a run against the scripted teacher pauses at a node boundary once
``stop.max_llm_tokens`` is spent, says why, stays paused on resume, and completes every remaining
node exactly once after the budget in its config.yaml is raised; cost budgets read the price table."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from fake_openai import FakeOpenAI
from teacher_script import ScriptedTeacher

from helpers import TINY_ARGS, cli_in_process
from teachloop.foundation.errors import ConfigError
from teachloop.llm.usage import RoleUsage
from teachloop.loop import runner
from teachloop.loop.budget import budget_stop, spent
from teachloop.loop.config import build_config, load_saved_config
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


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_student")
def test_a_spent_budget_pauses_the_run_and_raising_it_completes_it(
    tmp_path: Path, model_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    with FakeOpenAI(ScriptedTeacher()) as server:
        args = [
            *TINY_ARGS,
            "--rounds",
            "1",
            "--run-dir",
            str(run_dir),
            "--set",
            f"model_cache={model_cache}",
            "--teacher",
            "openai",
            "--teacher-base-url",
            server.base_url,
            "--teacher-model",
            "scripted",
            "--set",
            "teacher.diagnoser_examples=2",
            "--set",
            "stop.max_llm_tokens=1",
        ]
        assert cli_in_process("run", *args) == 0
        out = capsys.readouterr().out
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "stopped"
        assert summary["stop_reason"].startswith("LLM token budget of 1 spent (")
        assert "stopped: LLM token budget of 1 spent" in out
        # the diagnoser's tokens spent it: the run paused after round 0's diagnosis
        assert runner.status(run_dir).next_nodes == ("frontier",)
        before = _node_runs(run_dir)
        assert before[(0, "diagnose")] == 1 and (1, "plan") not in before
        requests = server.counts["requests"]

        assert cli_in_process("resume", str(run_dir)) == 0  # still over budget: nothing runs
        assert _node_runs(run_dir) == before and server.counts["requests"] == requests
        assert "stopped: LLM token budget of 1 spent" in capsys.readouterr().out

        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        config["stop"]["max_llm_tokens"] = 10**9
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
        assert cli_in_process("resume", str(run_dir)) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["stop_reason"]) == ("complete", "completed 1 round(s)")
    runs = _node_runs(run_dir)
    assert set(runs.values()) == {1}, runs  # no node ran twice
    assert {(1, n) for n in ("plan", "generate", "revise", "train")} <= set(runs)
    assert summary["llm_usage"]["synthesizer"]["requests"] > 0


def test_a_saved_config_with_flat_prices_loads_as_its_models_price(tmp_path: Path) -> None:
    saved = {"teacher": {"llm": {"model": "my-model", "prompt_price": 1.5, "completion_price": 6.0}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    llm = load_saved_config(tmp_path / "config.yaml").teacher.llm
    assert (llm.price("my-model").prompt, llm.price("my-model").completion) == (1.5, 6.0)
    assert llm.price("gpt-4o-mini").prompt == 0.15 and llm.price("unknown").prompt == 0.0
    with pytest.raises(ConfigError, match=r"--set teacher.llm.prices.<model>.prompt="):
        build_config(saved)  # a user's config: one line naming the new key
