"""ruff (lint + format) and mypy stay clean on the package."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lint_format_and_types_are_clean() -> None:
    env_bin = Path(sys.executable).parent
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "lint.sh")],
        capture_output=True,
        text=True,
        env={"PATH": f"{env_bin}:/usr/bin:/bin"},
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
