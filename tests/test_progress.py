"""Live progress: the lines a real run prints when stderr is not a terminal, the plain reporter's
pacing, a launched job's progress reaching the loop, and a closing table that keeps skill names
whole on an 80-column terminal. ``--quiet`` is checked by the tracked runs of test_tracking.py."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from teachloop.cli.progress import ConsoleProgress
from teachloop.cli.render import accuracy_table
from teachloop.tracing.progress import JsonLinesReporter, ProgressUpdate, forward_new_lines, report, reporting


def test_a_run_on_a_pipe_prints_each_long_node_moving(finished_run: Path) -> None:
    """The shared 2-round tiny run (a subprocess, stderr captured): evaluation counts answers,
    generate counts tasks, train counts SFT steps with loss, rows/s and time left."""
    lines = (finished_run.parent / "stderr.txt").read_text().splitlines()
    for round_ in (0, 1, 2):  # dev (15) and test (15) are answered in one pass
        assert f"round {round_}  evaluate  student answers 30/30" in lines
    for round_ in (1, 2):
        generated = [ln for ln in lines if ln.startswith(f"round {round_}  generate  generated tasks ")]
        assert generated and re.fullmatch(r".* (\d+)/\1 · skills 5/5", generated[-1]), generated
        steps = [ln for ln in lines if ln.startswith(f"round {round_}  train     sft steps ")]
        assert steps[0] == f"round {round_}  train     sft steps 0/3"  # 24 samples, batch 8
        assert re.fullmatch(
            rf"round {round_}  train     sft steps 3/3 · loss \d+\.\d+ · \d+\.\d rows/s · eta 0s", steps[-1]
        ), steps
        # every count line sits between its node's start and end lines
        start = lines.index(f"round {round_}  train     …")
        end = next(i for i, ln in enumerate(lines) if ln.startswith(f"round {round_}  train     done in"))
        assert start < lines.index(steps[-1]) < end


def _plain(interval: float) -> tuple[ConsoleProgress, io.StringIO]:
    buffer = io.StringIO()
    return ConsoleProgress(Console(file=buffer, width=200), interval=interval), buffer


def test_plain_lines_show_start_end_and_what_a_node_left_unfinished() -> None:
    progress, buffer = _plain(interval=3600)
    with reporting(progress):
        progress.node("train", 1, "start", None)
        for step in range(11):
            report("sft steps", step, 10, loss=1.0)
        report("generated tasks", 3, 9)
        report("generated tasks", 5, 9)  # the generator ran dry at 5 of 9
        progress.node("train", 1, "end", 2.0)
    assert buffer.getvalue().splitlines() == [
        "round 1  train     …",
        "round 1  train     sft steps 0/10 · loss 1.0",
        "round 1  train     sft steps 10/10 · loss 1.0",
        "round 1  train     generated tasks 3/9",
        "round 1  train     generated tasks 5/9",
        "round 1  train     done in 2.0s",
    ]


def test_plain_lines_repeat_at_the_interval() -> None:
    progress, buffer = _plain(interval=0)
    with reporting(progress):
        progress.node("diagnose", 0, "start", None)
        report("llm calls", 1, failed=0, retried=1, tokens=120)
        report("llm calls", 2, failed=1, retried=1, tokens=300)
    assert buffer.getvalue().splitlines()[1:] == [
        "round 0  diagnose  llm calls 1 · failed 0 · retried 1 · tokens 120",
        "round 0  diagnose  llm calls 2 · failed 1 · retried 1 · tokens 300",
    ]


def test_a_launched_jobs_progress_file_reaches_the_reporter(tmp_path: Path) -> None:
    path = tmp_path / "train_progress.jsonl"
    with reporting(JsonLinesReporter(path)):
        report("grpo steps", 1, 4, loss=0.5)
    with path.open("a") as out:
        out.write('{"task": "grpo steps", "done": 2')  # a line the job is still writing
    seen: list[ProgressUpdate] = []

    class Collect:
        def update(self, update: ProgressUpdate) -> None:
            seen.append(update)

    with reporting(Collect()):
        offset = forward_new_lines(path, 0)
        assert [(u.task, u.done, u.total, u.stats) for u in seen] == [("grpo steps", 1, 4, {"loss": 0.5})]
        with path.open("a") as out:
            out.write(', "total": 4}\n')
        forward_new_lines(path, offset)
    assert [u.done for u in seen] == [1, 2]


def test_closing_table_keeps_skill_names_whole_on_80_columns() -> None:
    skills = ["word_sequence_reversal", "family_relationships", "number_sequence", "chain_sum", "aiw"]
    entry = {
        "accuracy": 0.45,
        "ci95": [0.38, 0.52],
        "skills": {s: {"accuracy": 0.4, "solved": 16, "n": 40} for s in skills},
    }
    summary = {
        "run_id": "20261203-120000-reasoning-basics",
        "rounds": [{"round": r, "test": entry} for r in range(5)],
    }
    buffer = io.StringIO()
    Console(file=buffer, width=80).print(accuracy_table(summary, "test"))
    lines = buffer.getvalue().splitlines()
    assert max(len(ln) for ln in lines) <= 80
    for skill in [*skills, "all (95% CI)"]:
        assert any(f"│ {skill} " in ln or f"┃ {skill} " in ln for ln in lines), skill
