"""Bad input, generated: config files, CLI options, JSONL environment files, run directories
handed to the read-only commands, preference-pair files (the CritiQ flow) and environment
plug-ins returning wrong types. Whatever
hypothesis comes up with, the CLI either accepts it or prints exactly one ``error:`` line and exits
with code 2: never a traceback, never a run directory created or changed.

The CLI runs in this process (``main``, with its error handling) so each example costs
milliseconds; the few subprocess tests in test_cli_errors.py check the same through a real process.
Preference-pair files are checked at the loader: a usable file or a one-line ConfigError.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from pydantic import BaseModel

from helpers import cli_in_process, snapshot
from teachloop.criteria.pairs import PreferencePair, load_pairs
from teachloop.environments.base import Score, Skill, Task
from teachloop.environments.contract import checked, validate_environment
from teachloop.foundation.errors import ConfigError, PluginError
from teachloop.foundation.types import Message
from teachloop.loop import runner
from teachloop.loop.config import RunConfig, build_config, load_config_file

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every machine: a failure reproduces
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every config key as a dotted path (``train.learning_rate``), sections included."""
    paths = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        kind = field.annotation
        if get_origin(kind) is not None:
            kind = next((a for a in get_args(kind) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            paths += _field_paths(kind, f"{path}.")
    return paths


CONFIG_PATHS = _field_paths(RunConfig)
#: Keys that would reach outside this test if valid (a server to contact, a student to download).
OUTWARD = (
    "student",
    "model_cache",
    "env",
    "env_options",
    "teacher.brains",
    "teacher.llm",
    "tracing",
    "policy",
)
SAFE_PATHS = [p for p in CONFIG_PATHS if not p.startswith(OUTWARD)]

texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.sampled_from(["0", "-1", "1e309", "nan", "[1, 2", "{a: 1}", "[bold]x[/]", "~", "yes", "1_000"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(texts, scalars, max_size=2))
keys = st.one_of(st.sampled_from(CONFIG_PATHS), texts.map(lambda t: f"x{t}"))


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[leaf] = value
    return out


mappings = st.dictionaries(keys, values, max_size=4).map(_nest)
#: Mostly mappings (they reach the validation of every field), some not-a-mapping and broken YAML.
config_docs = st.one_of(
    mappings.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    mappings.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    mappings.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.one_of(values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)), texts),
    st.sampled_from(
        ["rounds: [1, 2\n", "a: b: c", "\t- x", "!!python/object:os.system {}", "{", "--- 1\n--- 2"]
    ),
)


def _assert_one_line_error(code: int, err: str, out: str) -> str:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + out
    if currently_in_test_context():  # the share of each error in --hypothesis-show-statistics
        event(f"rejected: {lines[0][7:60]}")
    return lines[0]


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _build(text: str, where: Path) -> bool:
    """Whether ``text`` is a valid config file; anything but a ConfigError is a bug."""
    path = where / "config.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        build_config(load_config_file(path))
    except ConfigError:
        return False
    return True


@FUZZ
@given(doc=config_docs)
def test_config_files(doc: str, capsys: Any) -> None:
    with _scratch() as tmp:
        if _build(doc, tmp):
            event("valid config")
            return  # a valid config would start a real run; the options test covers valid input
        run_dir = tmp / "run"
        code = cli_in_process("run", "--config", str(tmp / "config.yaml"), "--run-dir", str(run_dir))
        captured = capsys.readouterr()
        _assert_one_line_error(code, captured.err, captured.out)
        assert not run_dir.exists()


class _Started(Exception):
    """Raised in place of starting the loop: everything before it was checked and accepted."""


plausible = st.one_of(st.integers(0, 64), st.floats(0, 2), st.booleans())
safe_set = st.tuples(st.just("--set"), st.tuples(st.sampled_from(SAFE_PATHS), st.one_of(plausible, values)))
#: Mostly known config keys with values of every type, then unknown keys, flags and options.
run_options = st.lists(
    st.one_of(
        safe_set,
        safe_set,
        safe_set,
        st.tuples(st.sampled_from(["--rounds", "--seed", "--samples-per-round"]), scalars),
        st.one_of(
            st.tuples(st.just("--set"), st.tuples(texts, scalars)),
            st.tuples(st.just("--env-option"), texts),
            st.tuples(st.sampled_from(["--no-such-option", "-x", "--set"]), st.just(None)),
        ),
    ),
    min_size=1,
    max_size=3,
)


def _argv(options: list[tuple[str, Any]]) -> list[str]:
    argv = []
    for flag, value in options:
        argv.append(flag)
        if flag == "--set" and isinstance(value, tuple):
            key, raw = value
            argv.append(f"{key}={raw if isinstance(raw, str) else yaml.safe_dump(raw).strip()}")
        elif value is not None:
            argv.append(value if isinstance(value, str) else json.dumps(value))
    return argv


@FUZZ
@given(options=run_options)
def test_run_options(
    options: list[tuple[str, Any]],
    model_cache: Path,
    tiny_student: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def started(prepared: runner.PreparedRun, progress: Any = None) -> dict[str, Any]:
        assert not prepared.store.root.exists(), "checking the input wrote into the run directory"
        raise _Started

    monkeypatch.setattr(runner, "start", started)
    capsys.readouterr()  # what an earlier, accepted example printed
    base = ["run", "--student", "tiny-random-llama", "--set", f"model_cache={model_cache}"]
    with _scratch() as tmp:
        run_dir = tmp / "run"
        try:
            code = cli_in_process(*base, "--run-dir", str(run_dir), *_argv(options))
        except _Started:
            event("accepted")
            return  # accepted: every check passed and nothing was written
        captured = capsys.readouterr()
        _assert_one_line_error(code, captured.err, captured.out)
        assert not run_dir.exists()


#: Names and texts that are also rich markup, quotes or control characters: shown as they are.
odd_names = st.sampled_from(["[/]", "[bold]x", "a[b]c", "[red]", "'\"", "\x1b[31m", "ok"])
good_lines = st.lists(st.tuples(odd_names, st.one_of(texts, odd_names)), min_size=2, max_size=8).map(
    lambda rows: [
        json.dumps({"question": f"q{i} {a}", "answer": a.strip() or "x", "skill": skill}, ensure_ascii=False)
        for i, (skill, a) in enumerate(rows)
    ]
)
bad_lines = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "question": st.one_of(texts, scalars),
                "answer": st.one_of(texts, scalars),
                "skill": st.one_of(texts, scalars, odd_names),
                "pattern": st.one_of(st.sampled_from(["(", "[a-", "\\d+", ".*", "a{2,1}"]), scalars),
            },
        ).map(lambda d: json.dumps(d, ensure_ascii=False)),
        values.map(json.dumps),
        texts,
    ),
    max_size=2,
)
#: A usable file with up to two bad lines put in anywhere.
jsonl_files = st.tuples(good_lines, bad_lines, st.integers(0, 8)).map(
    lambda t: "\n".join(t[0][: t[2]] + t[1] + t[0][t[2] :])
)


@FUZZ
@given(text=jsonl_files, scoring=st.sampled_from(["exact", "exact", "exact", "numeric", "regex", "fuzzy"]))
def test_jsonl_environment_files(text: str, scoring: str, capsys: Any) -> None:
    with _scratch() as tmp:
        path = tmp / "tasks.jsonl"
        path.write_text(text, encoding="utf-8")
        options = ["--env-option", f"path={path}", "--env-option", f"scoring={scoring}"]
        code = cli_in_process("envs", "show", "jsonl", *options)
        captured = capsys.readouterr()
        if code != 0:
            _assert_one_line_error(code, captured.err, captured.out)
        else:
            event("accepted")
            assert "Traceback" not in captured.err and "skill" in captured.out


# -- preference-pair files (CritiQ) ---------------------------------------------------------------

pair_samples = st.fixed_dictionaries(
    {"question": st.one_of(st.just("2 + 3 ="), texts), "answer": st.one_of(st.just("5"), texts)},
    optional={"solution": st.one_of(texts, scalars), "notes": scalars},
)
#: Mostly complete rows (ids from a small set, so duplicates come up), some with fields missing or
#: of the wrong type, an unknown key, or a ``better`` other than a and b.
pair_rows = st.fixed_dictionaries(
    {
        "id": st.one_of(st.sampled_from(["p1", "p2", "p3", "p4"]), texts),
        "a": st.one_of(pair_samples, pair_samples, pair_samples, scalars),
        "b": pair_samples,
        "better": st.one_of(st.sampled_from(["a", "b", "a", "b", "c", "A", ""]), scalars),
    },
    optional={"skill": st.one_of(texts, odd_names, scalars), "why": st.one_of(texts, scalars), "x": scalars},
)
good_pair_lines = st.lists(
    st.tuples(odd_names, st.one_of(texts, odd_names), st.sampled_from(["a", "b"]), texts),
    min_size=2,
    max_size=6,
).map(
    lambda rows: [
        json.dumps(
            {
                "id": f"p{i}",
                "skill": skill,
                "a": {"question": f"q{i} {answer}", "solution": why, "answer": answer},
                "b": {"question": f"q{i}", "answer": ""},
                "better": better,
                "why": why,
            },
            ensure_ascii=i % 2 == 0,
        )
        for i, (skill, answer, better, why) in enumerate(rows)
    ]
)
bad_pair_lines = st.lists(
    st.one_of(
        pair_rows.map(lambda d: json.dumps(d, ensure_ascii=False)),
        pair_rows.map(json.dumps),
        values.map(json.dumps),
        texts,
    ),
    max_size=2,
)
#: A usable file with up to two bad lines put in anywhere, or any text or bytes at all.
pair_files = st.one_of(
    st.tuples(good_pair_lines, bad_pair_lines, st.integers(0, 6), st.sampled_from(["\n", "\r\n"])).map(
        lambda t: t[3].join(t[0][: t[2]] + t[1] + t[0][t[2] :])
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200),
    st.binary(max_size=200),
)


@FUZZ
@given(content=pair_files)
def test_preference_pair_files(content: str | bytes) -> None:
    with _scratch() as tmp:
        path = tmp / "pairs.jsonl"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        try:
            pairs = load_pairs(path)
        except ConfigError as err:
            message = str(err)
            assert len(message.splitlines()) == 1 and str(path) in message, message
            event(f"rejected: {message.replace(str(path), '<path>')[:40]}")
            return
        event("accepted")
        assert len(pairs) >= 2 and all(isinstance(p, PreferencePair) for p in pairs)
        assert len({p.id for p in pairs}) == len(pairs)


def test_a_deeply_nested_pairs_line_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("[" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1"):
        load_pairs(path)


@pytest.fixture(scope="module")
def finished_copy(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("readonly") / "run"
    shutil.copytree(finished_run, run_dir)
    return run_dir


reader_args = st.one_of(
    st.tuples(
        st.just("inspect"),
        st.sampled_from(["rounds", "plan", "samples", "trace", "nope", ""]),
        st.lists(
            st.one_of(
                st.tuples(
                    st.sampled_from(
                        [
                            "--round",
                            "--skill",
                            "--min-score",
                            "--max-score",
                            "--origin",
                            "--source",
                            "--limit",
                        ]
                    ),
                    st.one_of(texts, st.integers(-3, 5).map(str), st.floats().map(str)),
                ),
                st.tuples(
                    st.sampled_from(["--json", "--kept", "--dropped", "--full", "--revised", "--bogus"])
                ),
            ),
            max_size=3,
        ),
    ),
    st.tuples(
        st.sampled_from(["status", "resume", "report"]), st.just(""), st.lists(st.tuples(texts), max_size=2)
    ),
)


@FUZZ
@given(command=reader_args)
def test_commands_on_an_existing_run_change_nothing(
    command: tuple[str, str, list[tuple[str, ...]]], finished_copy: Path, capsys: Any
) -> None:
    name, sub, options = command
    argv = [name, str(finished_copy), *([sub] if sub else []), *[part for opt in options for part in opt]]
    if name in ("resume", "report") and not options:
        argv.append("--no-such-option")  # these write by design; here only their bad input is tried
    before = snapshot(finished_copy)
    code = cli_in_process(*argv)
    captured = capsys.readouterr()
    if code != 0:
        _assert_one_line_error(code, captured.err, captured.out)
    assert snapshot(finished_copy) == before


@FUZZ
@given(doc=config_docs)
def test_resume_after_a_bad_edit_of_the_config(doc: str, finished_copy: Path, capsys: Any) -> None:
    """The out-of-memory message tells users to edit config.yaml; a bad edit must not cost the run."""
    with _scratch() as tmp:
        if _build(doc, tmp):
            return
    config = finished_copy / "config.yaml"
    original = config.read_text()
    config.write_text(doc, encoding="utf-8")
    try:
        before = snapshot(finished_copy)
        code = cli_in_process("resume", str(finished_copy))
        captured = capsys.readouterr()
        _assert_one_line_error(code, captured.err, captured.out)
        assert snapshot(finished_copy) == before
    finally:
        config.write_text(original)


# -- plug-ins returning wrong types ---------------------------------------------------------------

SKILL = Skill(name="echo")
wrong = st.one_of(
    values,
    st.builds(Message, role=st.just("user"), content=texts),
    st.lists(
        st.one_of(
            st.builds(Task, skill=st.sampled_from(["echo", "other"]), question=texts, answer=texts), values
        ),
        max_size=3,
    ),
    st.builds(Score, reward=st.floats(0, 1)),
    st.lists(st.just(SKILL), max_size=2),
    st.just(Task(skill="echo", question="q", answer="a")),
)


class _Fuzzed:
    """A valid environment with one part replaced by whatever hypothesis drew."""

    name = "fuzzed"

    def __init__(self, part: str, value: Any) -> None:
        self.part, self.value = part, value
        self.skills: Any = value if part == "skills" else [SKILL]
        if part == "name":
            self.name = value

    def tasks(self, split: str, n: int, seed: int) -> Any:
        if self.part == "tasks":
            return self.value
        return [Task(skill="echo", question=f"{split} {i}", answer=f"{split} {i}") for i in range(n)]

    def prompt(self, task: Task) -> Any:
        return self.value if self.part == "prompt" else [Message(role="user", content=task.question)]

    def score(self, task: Task, completion: str) -> Any:
        return self.value if self.part == "score" else Score(reward=float(completion == task.answer))


def _acceptable(part: str, value: Any) -> bool:
    """Whether the contract must accept ``value`` as ``part`` of an otherwise valid plug-in."""
    if part == "name":
        return isinstance(value, str) and bool(value)
    if part == "skills":
        return isinstance(value, list) and len(value) == 1 and isinstance(value[0], Skill)
    if part == "prompt":
        return isinstance(value, list) and bool(value) and all(isinstance(m, Message) for m in value)
    if part == "score":
        return isinstance(value, Score) and value.solved  # the gold answer must pass its own scorer
    return False  # tasks: the same list for dev and test shares a question, or is not a task list


@FUZZ
@given(part=st.sampled_from(["name", "skills", "tasks", "prompt", "score"]), value=wrong)
def test_plugins_returning_wrong_types_are_named(part: str, value: Any) -> None:
    env = _Fuzzed(part, value)
    try:
        validate_environment(env, "fuzzed")  # type: ignore[arg-type]
        wrapped = checked(env, "fuzzed")  # type: ignore[arg-type]
        for task in wrapped.tasks("dev", 2, 0):
            wrapped.score(task, wrapped.prompt(task)[0].content)
        event("accepted")
        accepted = True
    except PluginError as err:
        assert "plug-in 'fuzzed'" in str(err) and "\n" not in str(err)
        event(f"rejected: {str(err)[22:50]}")
        accepted = False
    assert accepted == _acceptable(part, value), (part, value)


@pytest.mark.parametrize("name", ["state.sqlite", "traces.sqlite"])
@pytest.mark.parametrize("damage", ["garbage", "cut short"])
def test_a_damaged_database_is_one_line_and_changes_nothing(
    name: str, damage: str, finished_run: Path, tmp_path: Path, capsys: Any
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    data = (run_dir / name).read_bytes()
    (run_dir / name).write_bytes(
        b"not a database at all" * 64 if damage == "garbage" else data[: len(data) // 2]
    )
    before = snapshot(run_dir)
    for command in ("status", "resume"):
        code = cli_in_process(command, str(run_dir))
        captured = capsys.readouterr()
        line = _assert_one_line_error(code, captured.err, captured.out)
        assert line.startswith(f"error: {run_dir / name} is damaged (")
    assert snapshot(run_dir) == before
