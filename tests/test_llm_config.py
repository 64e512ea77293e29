"""Teacher configuration: brains per role, the CLI's teacher options, and fixable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import cli_env, teachloop
from teachloop.foundation.errors import ConfigError
from teachloop.loop.config import build_config


def test_brains_per_role_follow_the_default_unless_overridden() -> None:
    cfg = build_config(
        {"teacher": {"brain": "openai", "brains": {"reviser": "heuristic"}, "llm": {"model": "m"}}}
    )
    assert cfg.llm_roles == ["diagnoser", "synthesizer"]  # the planner's brain is the policy (deficit)
    mixed = build_config(
        {"policy": "llm", "teacher": {"brains": {"diagnoser": "openai"}, "llm": {"model": "m"}}}
    )
    assert (
        mixed.llm_roles == ["diagnoser", "planner"] and mixed.teacher.brain_for("synthesizer") == "heuristic"
    )
    assert build_config({}).llm_roles == []


def test_a_role_on_the_llm_needs_a_model_from_somewhere() -> None:
    with pytest.raises(ConfigError, match=r"^bad config: the openai brain of diagnoser needs a model"):
        build_config({"teacher": {"brains": {"diagnoser": "openai"}}})
    per_role = {"policy": "llm", "teacher": {"llm": {"endpoints": {"planner": {"model": "local-planner"}}}}}
    assert build_config(per_role).llm_roles == ["planner"]
    with pytest.raises(ConfigError, match=r"teacher\.llm\.api_key_env"):
        build_config({"teacher": {"llm": {"api_key_env": "not a name"}}})


def _run(tmp_path: Path, model_cache: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return teachloop(
        "run", *args, "--run-dir", str(tmp_path / "run"), cwd=tmp_path, model_cache=model_cache, env=env
    )


@pytest.mark.parametrize(
    ("args", "mention"),
    [
        (["--teacher", "openai"], "needs a model: pass --teacher-model"),
        (["--teacher", "clever"], "teacher.brain"),
        (["--set", "teacher.brains.planner=openai"], "teacher.brains.planner"),
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
