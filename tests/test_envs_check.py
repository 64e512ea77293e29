"""``teachloop envs check``: the example plug-in package passes every check; a copy whose gold
answers for one skill carry a thousands separator (which its scorer strips) fails with exit 2 and one stderr line per failing check; the
test plug-ins in tests/plugins pass."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rich.console import Console

from helpers import cli_in_process
from teachloop.cli.render import print_env_check
from teachloop.environments.selfcheck import CheckRow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "environments" / "examples" / "unit_conversion"
MODULE = "teachloop_unit_conversion"


def _install(site: Path, source: str) -> Path:
    """The example laid out as ``pip install --target`` leaves it: the package and its entry point."""
    (site / MODULE).mkdir(parents=True)
    (site / MODULE / "__init__.py").write_text(source)
    info = site / "teachloop_unit_conversion-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: teachloop-unit-conversion\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        f"[teachloop.environments]\nunit-conversion = {MODULE}:load_environment\n"
    )
    return site


def _source() -> str:
    return (EXAMPLE / MODULE / "__init__.py").read_text()


def test_the_example_package_passes_every_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(_install(tmp_path, _source())))
    assert cli_in_process("envs", "check", "unit-conversion", "--per-skill", "3") == 0
    out, err = capsys.readouterr()
    # load, contract, 3 skills x 2 splits, 3 skills x levels 0, 2 and 3
    assert "17 passed, 0 failed" in out and err == ""
    assert out.count(" pass ") == 17


def test_a_broken_copy_fails_with_one_line_per_failing_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    right = "answer=str(amount * factor),"
    assert right in _source()
    # a gold answer written with a thousands separator, which the scorer strips from the completion
    broken = _source().replace(
        right, 'answer=f"{amount * factor:,}" if skill == "kg_to_g" else str(amount * factor),'
    )
    monkeypatch.syspath_prepend(str(_install(tmp_path, broken)))
    for mod in [m for m in list(sys.modules) if m.startswith(MODULE)]:
        monkeypatch.delitem(sys.modules, mod)
    assert cli_in_process("envs", "check", "unit-conversion", "--per-skill", "3") == 2
    out, err = capsys.readouterr()
    assert "11 passed, 6 failed" in out
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "FAIL contract [load-time check]",
        "FAIL gold answers (dev) [kg_to_g]",
        "FAIL gold answers (test) [kg_to_g]",
        "FAIL generated gold [kg_to_g @ level 0]",
        "FAIL generated gold [kg_to_g @ level 2]",
        "FAIL generated gold [kg_to_g @ level 3]",
    ]
    assert "fails its own scorer" in lines[0]
    assert all("3 of 3 gold answers fail their own scorer" in line for line in lines[1:])


@pytest.mark.usefixtures("test_plugins")
@pytest.mark.parametrize("name", ["coin", "hush"])
def test_the_test_plugins_pass(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_in_process("envs", "check", name) == 0, capsys.readouterr()
    assert ", 0 failed" in capsys.readouterr().out


def test_a_plugin_that_does_not_load_is_one_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(_install(tmp_path, "raise ImportError('no such dependency')")))
    for mod in [m for m in list(sys.modules) if m.startswith(MODULE)]:
        monkeypatch.delitem(sys.modules, mod)
    assert cli_in_process("envs", "check", "unit-conversion") == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "FAIL load [loader]: environment plug-in 'unit-conversion' failed to import: ImportError: "
        "no such dependency"
    ]


def test_check_table_keeps_skill_and_level_whole_on_80_columns() -> None:
    console = Console(width=80, record=True)
    rows = [
        CheckRow(check="generated gold", scope="word_sequence_reversal @ level 0", passed=True, detail="5/5"),
        CheckRow(check="gold answers (test)", scope="family_relationships", passed=False, detail="x " * 60),
    ]
    print_env_check(console, "reasoning-basics", rows)
    text = console.export_text()
    assert "word_sequence_reversal @ level 0" in text
    assert max(len(line) for line in text.splitlines()) <= 80
