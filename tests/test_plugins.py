"""Broken environment plug-ins fail at load time (or at the broken call) with a PluginError that
names the plug-in, in-process and through the CLI; ``envs list`` reports a plug-in that cannot
be imported instead of crashing."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

from helpers import cli_env, teachloop
from teachloop.agents.feedback import skill_tree
from teachloop.environments.base import Score, SkillTree, Task, TaskGenerator
from teachloop.environments.contract import validate_environment
from teachloop.environments.registry import load_environment
from teachloop.foundation.errors import PluginError

PLUGINS = textwrap.dedent(
    '''
    from teachloop.foundation.types import Message
    from teachloop.environments.base import Score, Skill, Task


    class Good:
        """A small valid environment; the broken variants below each break one thing."""

        name = "good"
        skills = [Skill(name="echo")]

        def tasks(self, split, n, seed):
            return [Task(skill="echo", question=f"{split} {i}", answer=f"{split} {i}") for i in range(n)]

        def prompt(self, task):
            return [Message(role="user", content=task.question)]

        def score(self, task, completion):
            if completion == "boom":
                raise RuntimeError("kaboom")
            return Score(reward=float(completion.strip() == task.answer))


    class DictTasks(Good):
        def tasks(self, split, n, seed):
            return [{"question": "q", "answer": "a"}]


    class StringSkills(Good):
        skills = ["echo"]


    class RaisingScore(Good):
        def score(self, task, completion):
            raise KeyError("metadata")


    class FloatScore(Good):
        def score(self, task, completion):
            return 1.0


    class WrongGold(Good):
        def score(self, task, completion):
            return Score(reward=0.0, feedback="never right")


    class SharedSplits(Good):
        def tasks(self, split, n, seed):
            return [Task(skill="echo", question="same", answer="same")]


    class FlakyScore(Good):
        """Passes the load-time check (gold and empty answers) but breaks on a real student's answer."""

        def score(self, task, completion):
            if completion not in (task.answer, ""):
                raise ValueError("cannot parse")
            return Score(reward=float(completion == task.answer))


    class Grouped(Good):
        def skill_groups(self):
            return {"parent": ["echo"]}


    class BadGroups(Good):
        def skill_groups(self):
            return {"parent": ["echo", "nope"]}


    def grouped(**options):
        return Grouped()


    def bad_groups(**options):
        return BadGroups()


    def flaky_score(**options):
        return FlakyScore()


    def good(**options):
        """A valid plug-in."""
        return Good()


    def raising(**options):
        raise RuntimeError("cannot find my data")


    def not_an_env(**options):
        return {"name": "x"}


    def dict_tasks(**options):
        return DictTasks()


    def string_skills(**options):
        return StringSkills()


    def raising_score(**options):
        return RaisingScore()


    def float_score(**options):
        return FloatScore()


    def wrong_gold(**options):
        return WrongGold()


    def shared_splits(**options):
        return SharedSplits()
    '''
)

ENTRY_POINTS = {
    "good": "broken_envs:good",
    "import-error": "no_such_module_xyz:load",
    "missing-loader": "broken_envs:no_such_loader",
    "raising-loader": "broken_envs:raising",
    "not-an-env": "broken_envs:not_an_env",
    "dict-tasks": "broken_envs:dict_tasks",
    "string-skills": "broken_envs:string_skills",
    "raising-score": "broken_envs:raising_score",
    "float-score": "broken_envs:float_score",
    "wrong-gold": "broken_envs:wrong_gold",
    "shared-splits": "broken_envs:shared_splits",
    "flaky-score": "broken_envs:flaky_score",
    "grouped": "broken_envs:grouped",
    "bad-groups": "broken_envs:bad_groups",
}


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory laid out as ``pip install --target`` would leave a package with these entry points."""
    root = tmp_path_factory.mktemp("plugins")
    (root / "broken_envs.py").write_text(PLUGINS)
    info = root / "broken_envs-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-envs\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text(f"[teachloop.environments]\n{lines}\n")
    return root


@pytest.fixture
def plugins(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(plugin_dir))
    return plugin_dir


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("import-error", "failed to import: ModuleNotFoundError"),
        ("missing-loader", "failed to import: AttributeError"),
        ("raising-loader", "failed to load: RuntimeError: cannot find my data"),
        ("not-an-env", "returned dict, which lacks"),
        ("dict-tasks", "tasks('dev', 1, 0) must return a list of Task, got a list holding dict"),
        ("string-skills", "skills must return a list of Skill, got a list holding str"),
        ("raising-score", "raised KeyError: 'metadata'"),
        ("float-score", "score() must return a Score, got float"),
        ("wrong-gold", "fails its own scorer (reward 0: never right)"),
        ("shared-splits", "dev and test share a question"),
        ("bad-groups", "skill_groups() names unknown skill(s) nope"),
    ],
)
def test_a_broken_plugin_is_named_at_load_time(plugins: Path, name: str, message: str) -> None:
    with pytest.raises(PluginError) as caught:
        load_environment(name)
    assert f"'{name}'" in str(caught.value) and message in str(caught.value)


def test_a_good_plugin_loads_and_a_call_that_breaks_later_is_named(plugins: Path) -> None:
    env = load_environment("good")
    task = Task(skill="echo", question="q", answer="a")
    assert env.score(task, "a") == Score(reward=1.0)
    with pytest.raises(
        PluginError, match=r"plug-in 'good': score\(\) of task \w+ raised RuntimeError: kaboom"
    ):
        env.score(task, "boom")


def test_the_checked_wrapper_has_exactly_the_plugins_capabilities(plugins: Path) -> None:
    grouped, plain = load_environment("grouped"), load_environment("good")
    assert isinstance(grouped, SkillTree) and skill_tree(grouped) == {"parent": ["echo"]}
    assert not isinstance(plain, SkillTree) and not isinstance(plain, TaskGenerator)
    assert skill_tree(plain) == {"all": ["echo"]}
    basics = load_environment("reasoning-basics")
    assert isinstance(basics, TaskGenerator) and isinstance(basics, SkillTree)
    assert skill_tree(basics)["arithmetic"] == ["chain_sum"]


def test_the_example_in_the_guide_passes_validation() -> None:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "environments.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", guide, re.DOTALL) if "class Doubling" in b)
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/environments.md", "exec"), namespace)
    env = namespace["load_environment"]()  # type: ignore[operator]
    validate_environment(env, "doubling")
    assert len(env.tasks("dev", 5, 0)) == 5 and len(env.generate("double", 3, 1, 0)) == 3


def test_cli_reports_broken_plugins_in_one_line(plugins: Path, model_cache: Path, tmp_path: Path) -> None:
    env = cli_env(model_cache)
    env["PYTHONPATH"] = os.pathsep.join([str(plugins), env.get("PYTHONPATH", "")])
    listed = teachloop("envs", "list", cwd=tmp_path, model_cache=model_cache, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "reasoning-basics" in listed.stdout and "good  (broken-envs 0.1)" in listed.stdout
    assert "BROKEN: ModuleNotFoundError" in listed.stdout
    run_dir = tmp_path / "run"
    run = teachloop(
        "run",
        "--env",
        "raising-score",
        "--run-dir",
        str(run_dir),
        cwd=tmp_path,
        model_cache=model_cache,
        env=env,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: environment plug-in 'raising-score': score() of task "
        f"{Task(skill='echo', question='dev 0', answer='dev 0').id} raised KeyError: 'metadata'"
    ]
    assert not run_dir.exists()


def test_a_plugin_that_breaks_mid_run_stops_it_with_one_line(
    plugins: Path, model_cache: Path, tiny_student: Path, tmp_path: Path
) -> None:
    env = cli_env(model_cache)
    env["PYTHONPATH"] = os.pathsep.join([str(plugins), env.get("PYTHONPATH", "")])
    run_dir = tmp_path / "run"
    args = [
        "--student",
        "tiny-random-llama",
        "--set",
        "eval.dev_per_skill=2",
        "--set",
        "eval.test_per_skill=2",
    ]
    run = teachloop(
        "run", "--env", "flaky-score", *args, "--run-dir", str(run_dir), "--set", f"model_cache={model_cache}",
        cwd=tmp_path, model_cache=model_cache, env=env,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: environment plug-in 'flaky-score': score() of task ")
    assert last.endswith("raised ValueError: cannot parse") and "Traceback" not in run.stderr
    assert (run_dir / "config.yaml").is_file()  # the run stopped cleanly and can be resumed after a fix
