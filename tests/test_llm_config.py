"""Teacher configuration: one brain per role, the CLI's teacher options, fixable errors, and run
directories whose config.yaml an earlier teachloop wrote (other keys for the same brains)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from helpers import cli_env, cli_in_process, teachloop
from teachloop.agents.config import BrainRole
from teachloop.foundation.errors import ConfigError
from teachloop.loop import runner
from teachloop.loop.config import (
    RunConfig,
    build_config,
    load_saved_config,
    merge,
    upgraded,
    with_teacher,
)


def test_each_role_has_its_brain_and_the_defaults_are_todays() -> None:
    cfg = build_config(
        {"teacher": {"brains": {"diagnoser": "openai", "planner": "openai"}, "llm": {"model": "m"}}}
    )
    assert cfg.llm_roles == ["diagnoser", "planner"] and cfg.teacher.brains.synthesizer == "heuristic"
    default = build_config({})
    assert default.llm_roles == [] and default.policy == "deficit"
    # the criteria manager is on the LLM by default, but only matters when there are pairs to mine
    assert default.teacher.brains.criteria_manager == "openai" and not default.uses_llm("criteria_manager")
    mining = build_config({"teacher": {"criteria": {"pairs": "pairs.jsonl"}, "llm": {"model": "m"}}})
    assert mining.llm_roles == ["criteria_manager", "criteria_worker", "judge"]
    library = {"teacher": {"criteria": {"pairs": "p.jsonl"}, "brains": {"criteria_manager": "heuristic"}}}
    assert build_config(merge(library, {"teacher": {"llm": {"model": "m"}}})).llm_roles == [
        "criteria_worker",
        "judge",
    ]


def test_a_role_on_the_llm_needs_a_model_from_somewhere() -> None:
    with pytest.raises(ConfigError, match=r"^bad config: the openai brain of diagnoser needs a model"):
        build_config({"teacher": {"brains": {"diagnoser": "openai"}}})
    per_role = {
        "teacher": {"brains": {"planner": "openai"}, "llm": {"endpoints": {"planner": {"model": "local"}}}}
    }
    assert build_config(per_role).llm_roles == ["planner"]
    with pytest.raises(ConfigError, match=r"teacher\.llm\.api_key_env"):
        build_config({"teacher": {"llm": {"api_key_env": "not a name"}}})


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"teacher": {"brain": "openai"}}, "teacher.brains.<role>"),
        ({"policy": "llm"}, "teacher.brains.planner: openai"),
        ({"teacher": {"criteria": {"manager": "heuristic"}}}, "teacher.brains.criteria_manager"),
    ],
)
def test_an_old_key_in_a_users_config_names_the_new_one(old: dict[str, Any], new: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config(old)
    message = str(caught.value)
    assert "\n" not in message and "was replaced by" in message and new in message


def test_teacher_option_sets_every_role_the_config_leaves_unset() -> None:
    everyone = with_teacher({}, "openai")["teacher"]["brains"]
    assert everyone == {r: "openai" for r in get_args(BrainRole)}
    mixed = with_teacher({"teacher": {"brains": {"reviser": "heuristic"}}}, "openai")["teacher"]["brains"]
    assert mixed["reviser"] == "heuristic" and mixed["diagnoser"] == "openai"
    # as before teacher.brains.planner existed: a policy given with --teacher openai keeps the planner
    assert "planner" not in with_teacher({"policy": "bandit"}, "openai")["teacher"]["brains"]
    assert with_teacher({"policy": "bandit"}, "heuristic")["teacher"]["brains"]["planner"] == "heuristic"
    with pytest.raises(ConfigError, match=r"^--teacher 'clever': choose heuristic or openai"):
        with_teacher({}, "clever")


def _old_shape(config: RunConfig, brain: str, policy: str, manager: str, **overrides: Any) -> dict[str, Any]:
    """``config`` as the previous teachloop's ``RunConfig.to_yaml`` wrote it."""
    data = config.model_dump(mode="json")
    data["policy"] = policy
    teacher = data["teacher"]
    del teacher["brains"]
    teacher = {"brain": brain, "brains": {"diagnoser": None, "synthesizer": None, "reviser": None}, **teacher}
    teacher["brains"].update(overrides)
    teacher["criteria"]["manager"] = manager
    data["teacher"] = teacher
    return data


def test_a_saved_config_of_the_previous_shape_becomes_the_brains_it_ran_with(tmp_path: Path) -> None:
    base = build_config({"teacher": {"llm": {"model": "m"}}})
    old = _old_shape(base, "openai", "llm", "heuristic", reviser="heuristic")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(old, sort_keys=False))
    loaded = load_saved_config(path)
    assert loaded.teacher.brains.model_dump() == {
        "diagnoser": "openai",
        "planner": "openai",
        "synthesizer": "openai",
        "reviser": "heuristic",
        "criteria_manager": "heuristic",
    }
    assert loaded.policy == "deficit"  # the old LLM planner always fell back to deficit
    heuristic = upgraded(_old_shape(base, "heuristic", "bandit", "openai"))
    assert heuristic["policy"] == "bandit" and heuristic["teacher"]["brains"] == {
        "diagnoser": "heuristic",
        "synthesizer": "heuristic",
        "reviser": "heuristic",
        "criteria_manager": "openai",
    }
    assert build_config(heuristic) == build_config({"policy": "bandit", "teacher": {"llm": {"model": "m"}}})
    current = base.model_dump(mode="json")
    assert upgraded(current) is current  # a config in today's shape is left alone
    with pytest.raises(ConfigError, match=r"teacher\.brain was replaced"):
        build_config(old)  # the same keys from a user are refused


def test_a_run_dir_of_the_previous_shape_resumes_and_reports(
    finished_run: Path, tmp_path: Path, capsys: Any
) -> None:
    run_dir = tmp_path / "old"
    shutil.copytree(finished_run, run_dir)
    saved = load_saved_config(run_dir / "config.yaml")
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(_old_shape(saved, "heuristic", "deficit", "openai"), sort_keys=False)
    )
    before = (run_dir / "config.yaml").read_bytes()
    assert runner.load_run(run_dir).config == saved
    assert cli_in_process("status", str(run_dir)) == 0
    assert cli_in_process("resume", str(run_dir)) == 0  # finished: the summary, nothing re-run
    assert cli_in_process("inspect", str(run_dir), "plan", "--round", "1") == 0
    err = capsys.readouterr().err
    assert "error" not in err.lower(), err
    assert (run_dir / "config.yaml").read_bytes() == before  # translated when read, never rewritten


def _run(tmp_path: Path, model_cache: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return teachloop(
        "run", *args, "--run-dir", str(tmp_path / "run"), cwd=tmp_path, model_cache=model_cache, env=env
    )


@pytest.mark.parametrize(
    ("args", "mention"),
    [
        (["--teacher", "openai"], "needs a model: pass --teacher-model"),
        (["--teacher", "clever"], "--teacher 'clever': choose heuristic or openai"),
        (["--set", "teacher.brains.planner=clever"], "bad config value teacher.brains.planner"),
        (["--policy", "llm"], "policy llm was replaced by teacher.brains.planner: openai"),
        (["--set", "teacher.brain=openai"], "teacher.brain was replaced by teacher.brains.<role>"),
        (["--teacher", "openai", "--teacher-model", "gpt-x"], "set the environment variable OPENAI_API_KEY"),
    ],
)
def test_bad_teacher_input_fails_in_one_line(
    tmp_path: Path, model_cache: Path, args: list[str], mention: str
) -> None:
    env = {k: v for k, v in cli_env(model_cache).items() if k != "OPENAI_API_KEY"}
    result = _run(tmp_path, model_cache, *args, env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and mention in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
