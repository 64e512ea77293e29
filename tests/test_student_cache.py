"""The student model cache when several processes start at once (two runs on a fresh machine, or
parallel test workers): one builds the model, the others wait for it and reuse it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from teachloop.training.student import TINY_STUDENT

RESOLVE = """
import logging, sys
from pathlib import Path
from teachloop.training.student import resolve_student
logging.basicConfig(level=logging.INFO, format="%(message)s")
print(resolve_student(sys.argv[1], Path(sys.argv[2])))
"""


def test_processes_starting_together_build_the_model_once(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RESOLVE, TINY_STUDENT, str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    assert {out.strip() for out, _ in outputs} == {str(cache / TINY_STUDENT)}
    built = sum(err.count("preparing student model") for _, err in outputs)
    assert built == 1, [err[-2000:] for _, err in outputs]
    assert (cache / TINY_STUDENT / "config.json").is_file()
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [TINY_STUDENT]  # no temporaries left
