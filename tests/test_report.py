"""``teachloop report``: a self-contained page rendered from a real tiny-model run, checked as a
browser sees it (headless Chromium, Debian's ``chromium`` package), with planted hostile text."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import teachloop
from teachloop.reports.report import render_report
from teachloop.reports.rundata import RunData
from teachloop.tracing.store import RunStore

SKILLS = ["aiw", "chain_sum", "family_relationships", "number_sequence", "word_sequence_reversal"]
PAYLOAD = "<script>document.title='pwned'</script>"
IMG_PAYLOAD = "<img src=x onerror=\"document.title='pwned-img'\">"


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install -y chromium)")


def dump_dom(page: Path, tmp_path: Path) -> str:
    """The page's DOM after load, as Chromium serialises it (scripts, if any, would have run)."""
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=2000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<html" in result.stdout, result.stderr[-2000:]
    return result.stdout


def title(dom: str) -> str:
    match = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert match, "no <title> in the DOM"
    return html.unescape(match.group(1))


def test_report_command_writes_one_self_contained_page(
    finished_run: Path, model_cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = teachloop("report", str(finished_run), "--out", str(out), cwd=tmp_path, model_cache=model_cache)
    assert result.returncode == 0, result.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no script, stylesheet, image, font or frame from anywhere.
    assert not re.search(r"<(script|link|iframe|object|embed|img)\b", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "@import" not in page and "url(" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    for section in ("accuracy", "round-0", "round-1", "round-2", "trace", "config"):
        assert f'id="{section}"' in page
    assert page.count("<svg") == 1 + len(SKILLS) + 1  # overall, one per skill, the timeline


def test_report_renders_charts_and_samples_in_chromium(finished_run: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report(RunData(finished_run)))
    dom = dump_dom(page, tmp_path)
    assert title(dom) == f"teachloop report: {finished_run.name}"
    assert dom.count("<svg") == 1 + len(SKILLS) + 1
    assert dom.count("<polyline") == 2 * (1 + len(SKILLS))  # a dev and a test line per chart
    assert dom.count('class="span"') == len(RunData(finished_run).spans)  # one timeline bar per span
    for skill in SKILLS:
        assert f"{skill}</text>" in dom  # each per-skill chart carries its title
    store = RunStore(finished_run)
    kept = [r["task"] for r in store.read_rows(store.round(1).selected)]
    for task in kept[:5]:
        assert html.escape(task["question"], quote=False) in dom
    assert dom.count('<tr class="sample">') == len(RunData(finished_run).all_samples())
    assert "Plan" in dom and "Diagnosis after round 0" in dom and "trl.SFTTrainer" in dom


def plant_hostile_text(finished_run: Path, run: Path) -> None:
    """Model output and data that try to run script, in every place the report shows text."""
    shutil.copytree(finished_run, run, ignore=shutil.ignore_patterns("model", ".lock"))
    store = RunStore(run)
    scored = store.read_rows(store.round(1).scored)
    task = scored[0]["task"]
    scored[0]["task"] = {**task, "question": f"{task['question']} {PAYLOAD}", "answer": PAYLOAD}
    scored[0]["original_question"] = f"{task['question']} {IMG_PAYLOAD}"
    for row in scored[1:]:
        row["original_question"] = None
    store.write_rows(store.round(1).scored, scored, encode_json=True)
    evals = store.read_rows(store.round(1).eval("dev"))
    evals[0]["completion"] = f"{PAYLOAD} and {IMG_PAYLOAD}"
    store.write_rows(store.round(1).eval("dev"), evals, encode_json=True)
    weakness = store.round(1).weakness
    weakness.write_text(weakness.read_text().replace('"summary": "', f'"summary": "{PAYLOAD} ', 1))


def test_planted_script_in_model_output_stays_inert(finished_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "hostile"
    plant_hostile_text(finished_run, run)
    page = tmp_path / "report.html"
    page.write_text(render_report(RunData(run)))
    source = page.read_text()
    assert "<script" not in source.lower() and "<img" not in source.lower()
    dom = dump_dom(page, tmp_path)
    assert title(dom) == "teachloop report: hostile"  # no script ran
    assert "<script" not in dom.lower() and "<img" not in dom.lower()  # no element was made
    escaped = html.escape(PAYLOAD, quote=False)
    assert dom.count(escaped) >= 4  # question, answer, student's answer, diagnosis: shown as text
    assert html.escape(IMG_PAYLOAD, quote=False) in dom
    assert "<del>" in dom and "<ins>" in dom  # the planted revision is shown as a diff


def test_a_run_that_has_not_evaluated_yet_still_gets_a_report(finished_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "fresh"
    run.mkdir()
    shutil.copy(finished_run / "config.yaml", run / "config.yaml")
    page = render_report(RunData(run))
    assert "teachloop run <code>fresh</code>" in page and "No spans recorded." in page
    assert 'id="round-0"' not in page
