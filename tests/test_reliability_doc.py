"""docs/reliability.md names a test for every guarantee: each one it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_reliability_page_names_exists() -> None:
    page = (ROOT / "docs" / "reliability.md").read_text()
    named = set(re.findall(r"(tests/\w+\.py)::(\w+)", page))
    assert len(named) >= 25
    missing = []
    for path, name in sorted(named):
        tree = ast.parse((ROOT / path).read_text())
        if name not in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert not missing, missing
