"""One real round with the default student (SmolLM2-135M-Instruct) on a CPU: it must get better."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import cli_in_process


@pytest.mark.slow
def test_one_round_with_the_real_student_improves_it(tmp_path: Path, model_cache: Path) -> None:
    run_dir = tmp_path / "run"
    code = cli_in_process(  # the CLI's main in this process: no second start-up of torch and TRL
        "run",
        "--rounds",
        "1",
        "--run-dir",
        str(run_dir),
        "--samples-per-round",
        "160",
        "--set",
        "eval.dev_per_skill=10",
        "--set",
        "eval.test_per_skill=20",
        "--set",
        f"model_cache={model_cache}",
    )
    assert code == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    before, after = summary["rounds"][0]["test"], summary["rounds"][1]["test"]
    assert before["accuracy"] < 0.1
    assert after["accuracy"] > before["accuracy"] + 0.1, (before, after)
