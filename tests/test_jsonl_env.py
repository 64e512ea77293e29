"""The JSONL environment: splits by seed, the three scoring rules, and one-line errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teachloop.environments.base import TaskGenerator, normalize_question
from teachloop.environments.registry import load_environment
from teachloop.foundation.errors import ConfigError


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def _qa(tmp_path: Path) -> Path:
    rows = [
        {"question": f"What is {a} plus {b}?", "answer": a + b, "skill": "add"}
        for a in range(4)
        for b in range(5)
    ]
    rows += [
        {"question": f"Spell the number {n}.", "answer": w, "skill": "spell"}
        for n, w in enumerate(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        )
    ]
    return _write(tmp_path / "qa.jsonl", rows)


def test_splits_are_disjoint_deterministic_and_feed_the_generator(tmp_path: Path) -> None:
    env = load_environment("jsonl", {"path": str(_qa(tmp_path))})
    assert isinstance(env, TaskGenerator)
    assert [s.name for s in env.skills] == ["add", "spell"]
    dev, test = env.tasks("dev", 100, 0), env.tasks("test", 100, 0)
    pool = env.generate("add", 100, 0, seed=1) + env.generate("spell", 100, 0, seed=1)
    assert len(dev) == 4 + 2 and len(test) == 6 + 3 and len(pool) == 10 + 5
    keys = [{normalize_question(t.question) for t in part} for part in (dev, test, pool)]
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]
    assert [t.id for t in env.tasks("dev", 100, 0)] == [t.id for t in dev]
    assert len(env.tasks("dev", 1, 0)) == 2
    other = load_environment("jsonl", {"path": str(tmp_path / "qa.jsonl"), "split_seed": 7})
    assert {t.id for t in other.tasks("dev", 100, 0)} != {t.id for t in dev}


def test_exact_scoring_reads_the_final_answer(tmp_path: Path) -> None:
    env = load_environment("jsonl", {"path": str(_qa(tmp_path))})
    task = next(t for t in env.tasks("dev", 10, 0) if t.skill == "spell")
    assert env.score(task, task.answer.upper() + ".").solved
    assert env.score(task, f"The answer is {task.answer}").solved
    assert not env.score(task, "eleven").solved


def test_numeric_scoring_with_tolerance(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.jsonl", [{"question": f"q{i}", "answer": 1000 + i / 4} for i in range(10)])
    env = load_environment("jsonl", {"path": str(path), "scoring": "numeric", "tolerance": 0.001})
    task = next(t for t in env.tasks("dev", 5, 0))
    want = float(task.answer)
    assert env.score(task, f"{want:,.2f}").solved
    assert env.score(task, str(want + 0.5)).solved  # within 0.1% of about 1000
    assert not env.score(task, str(want + 5)).solved
    assert not env.score(task, "about a thousand").solved


def test_regex_scoring(tmp_path: Path) -> None:
    rows = [{"question": f"Name colour {i}", "answer": "grey", "pattern": "gr[ae]y"} for i in range(6)]
    env = load_environment("jsonl", {"path": str(_write(tmp_path / "r.jsonl", rows)), "scoring": "regex"})
    task = env.tasks("dev", 1, 0)[0]
    assert env.score(task, "Gray").solved and env.score(task, "grey.").solved
    assert not env.score(task, "greyish").solved


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        (None, {}, "does not exist"),
        ([{"question": "a", "answer": "b"}, '{"question": "c", "answer": '], {}, "line 2 is not valid JSON"),
        ([{"question": "a", "answer": "b"}, {"question": "c"}], {}, "line 2 has no 'answer' field"),
        (["[1, 2]"], {}, "line 1 must be a JSON object"),
        ([{"question": "", "answer": "b"}], {}, "line 1: 'question' must be a non-empty string"),
        ([{"question": "a", "answer": "b", "skill": 3}], {}, "line 1: 'skill' must be a non-empty string"),
        (
            [{"question": "a", "answer": "seven"}],
            {"scoring": "numeric"},
            "line 1: answer 'seven' is not a number",
        ),
        ([{"question": "a", "answer": "b"}], {"scoring": "regex"}, "line 1 has no 'pattern' field"),
        (
            [{"question": "a", "answer": "b", "pattern": "("}],
            {"scoring": "regex"},
            "not a valid regular expression",
        ),
        (
            [{"question": "a", "answer": "b", "pattern": "c"}],
            {"scoring": "regex"},
            "does not match its own pattern",
        ),
        ([""], {}, "holds no questions"),
        ([{"question": "a", "answer": "b"}], {}, "skill 'default' has only 1 distinct question"),
        (
            [{"question": "a", "answer": "b"}] * 2,
            {"scoring": "fuzzy"},
            "scoring must be exact, numeric or regex",
        ),
    ],
)
def test_bad_files_and_options_are_one_line_errors(
    tmp_path: Path, rows: list[object] | None, options: dict[str, object], message: str
) -> None:
    path = tmp_path / "data.jsonl"
    if rows is not None:
        _write(path, rows)
    with pytest.raises(ConfigError, match=message) as caught:
        load_environment("jsonl", {"path": str(path), **options})
    assert "\n" not in str(caught.value)
    if rows is not None and "line" in message:
        assert str(path) in str(caught.value)


def test_missing_path_option() -> None:
    with pytest.raises(ConfigError, match="needs a file"):
        load_environment("jsonl")
