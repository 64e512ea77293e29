"""The data side of CritiQ criteria mining: the shipped seed library of criteria, the shipped
example preference pairs for the default environment, and the pairs file loader and splitter."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from teachloop.criteria.library import SEED_LIBRARY, seed_library
from teachloop.criteria.pairs import EXAMPLE_PAIRS, PreferencePair, load_pairs, split_pairs
from teachloop.environments.reasoning_gym import DEFAULT_SKILLS
from teachloop.foundation.errors import ConfigError

DOMAINS = ("math", "code", "logic", "instruction", "general")


# -- seed library ---------------------------------------------------------------------------------


def test_seed_library_loads_with_unique_names() -> None:
    criteria = seed_library()
    assert len(criteria) >= 40
    names = [c.name for c in criteria]
    assert len(names) == len(set(names)), [n for n, k in Counter(names).items() if k > 1]
    assert all(c.origin == "seed" for c in criteria)


def test_seed_library_covers_every_domain() -> None:
    per_domain = Counter(c.domain for c in seed_library())
    for domain in DOMAINS:
        assert per_domain[domain] >= 8, per_domain


def test_seed_library_descriptions_are_short_sentences() -> None:
    for criterion in seed_library():
        text = criterion.description
        assert text.endswith("."), criterion.name
        assert "\n" not in text and len(text) <= 200, criterion.name


def test_seed_library_file_is_the_shipped_one(tmp_path: Path) -> None:
    assert SEED_LIBRARY.name == "seed.yaml" and SEED_LIBRARY.is_file()
    shipped = yaml.safe_load(SEED_LIBRARY.read_text(encoding="utf-8"))["criteria"]
    assert [(c.name, c.domain, c.description) for c in seed_library()] == [
        (item["name"], item.get("domain", "general"), item["description"]) for item in shipped
    ]
    # The loader reads the file it is given, not the shipped one.
    edited = tmp_path / "seed.yaml"
    edited.write_text(
        yaml.safe_dump(
            {
                "criteria": [
                    *shipped[:2],
                    {"name": "planted_one", "description": "A criterion planted by the test."},
                ]
            }
        )
    )
    assert [c.name for c in seed_library(edited)] == [shipped[0]["name"], shipped[1]["name"], "planted_one"]


# -- example pairs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_pairs() -> list[PreferencePair]:
    return load_pairs(EXAMPLE_PAIRS)


def test_example_pairs_load(example_pairs: list[PreferencePair]) -> None:
    assert len(example_pairs) >= 30
    assert len({p.id for p in example_pairs}) == len(example_pairs)


def test_example_pairs_cover_the_default_skills(example_pairs: list[PreferencePair]) -> None:
    skills = {p.skill for p in example_pairs}
    assert skills == {spec.skill_name for spec in DEFAULT_SKILLS}


def test_example_pairs_are_balanced(example_pairs: list[PreferencePair]) -> None:
    share_a = sum(p.better == "a" for p in example_pairs) / len(example_pairs)
    assert 0.4 <= share_a <= 0.6


def test_example_pairs_have_a_reason_and_differ(example_pairs: list[PreferencePair]) -> None:
    for pair in example_pairs:
        assert pair.why, pair.id
        assert pair.chosen != pair.rejected, pair.id


# -- load_pairs errors ----------------------------------------------------------------------------


def _row(pid: str, **change: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": pid,
        "skill": "chain_sum",
        "a": {"question": "2 + 3 =", "solution": "2 + 3 = 5.", "answer": "5"},
        "b": {"question": "4 + 4 =", "solution": "", "answer": "9"},
        "better": "a",
        "why": "b is wrong",
    }
    row.update(change)
    return row


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _good_lines(n: int = 2) -> list[str]:
    return [json.dumps(_row(f"p{i}")) for i in range(n)]


def test_a_good_file_loads(tmp_path: Path) -> None:
    lines = _good_lines(3)
    lines.insert(1, "   ")  # blank lines are skipped
    pairs = load_pairs(_write(tmp_path / "pairs.jsonl", lines))
    assert [p.id for p in pairs] == ["p0", "p1", "p2"]
    assert pairs[0].chosen.answer == "5" and pairs[0].rejected.answer == "9"


def _without(key: str) -> str:
    row = _row("px")
    del row[key]
    return json.dumps(row)


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("{not json", "line 3: not JSON"),
        (_without("a"), "line 3: a: "),
        (_without("better"), "line 3: better: "),
        (json.dumps(_row("px", better="c")), "line 3: better: "),
        (json.dumps(_row("p0")), "line 3: duplicate id 'p0'"),
        (json.dumps(_row("px", extra=1)), "line 3: extra: "),
        (json.dumps(_row("px", a={"question": "q", "answer": "1", "notes": "x"})), "line 3: a.notes: "),
        (json.dumps(_row("px", a={"question": "", "answer": "1"})), "line 3: a.question: "),
        (json.dumps([1, 2]), "line 3"),
    ],
    ids=[
        "not-json",
        "missing-a",
        "missing-better",
        "better-c",
        "duplicate-id",
        "extra-key",
        "extra-sample-key",
        "empty-question",
        "not-an-object",
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, bad: str, expected: str) -> None:
    path = _write(tmp_path / "pairs.jsonl", [*_good_lines(2), bad])
    with pytest.raises(ConfigError) as caught:
        load_pairs(path)
    message = str(caught.value)
    assert expected in message, message
    assert str(path) in message and "\n" not in message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_pairs(tmp_path / "nope.jsonl")


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read"):
        load_pairs(path)


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_pairs(tmp_path: Path, n: int) -> None:
    with pytest.raises(ConfigError, match=f"holds {n} pair"):
        load_pairs(_write(tmp_path / "pairs.jsonl", _good_lines(n)))


# -- split_pairs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("held_out", [0.01, 0.2, 0.5, 0.8, 0.99])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_is_a_partition(example_pairs: list[PreferencePair], held_out: float, seed: int) -> None:
    mine, report = split_pairs(example_pairs, held_out, seed)
    mine_ids, report_ids = {p.id for p in mine}, {p.id for p in report}
    assert not mine_ids & report_ids
    assert mine_ids | report_ids == {p.id for p in example_pairs}
    assert len(mine) + len(report) == len(example_pairs)
    assert mine and report


@pytest.mark.parametrize("held_out", [0.01, 0.5, 0.99])
def test_split_of_two_pairs_keeps_one_each_side(example_pairs: list[PreferencePair], held_out: float) -> None:
    mine, report = split_pairs(example_pairs[:2], held_out, 3)
    assert len(mine) == len(report) == 1


def test_split_is_deterministic_per_seed(example_pairs: list[PreferencePair]) -> None:
    first = split_pairs(example_pairs, 0.3, 11)
    assert split_pairs(example_pairs, 0.3, 11) == first
    assert split_pairs(list(reversed(example_pairs)), 0.3, 11) == first  # input order does not matter
    others = {tuple(p.id for p in split_pairs(example_pairs, 0.3, s)[1]) for s in range(5)}
    assert len(others) > 1  # the seed matters


def test_split_with_nothing_held_out(example_pairs: list[PreferencePair]) -> None:
    mine, report = split_pairs(example_pairs, 0.0, 0)
    assert len(mine) == len(example_pairs) and report == []


def test_a_line_separator_inside_a_string_is_text(tmp_path: Path) -> None:
    rows = [json.dumps(_row(f"p{i}", why="one\u2028two"), ensure_ascii=False) for i in range(2)]
    pairs = load_pairs(_write(tmp_path / "pairs.jsonl", rows))
    assert pairs[0].why == "one\u2028two"
