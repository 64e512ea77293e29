"""How the command line's own results look on a terminal: live progress, the accuracy tables
``run``, ``resume`` and ``status`` print, an environment's skills, mined criteria, training results.

Command functions parse options, call the library and hand what came back to a function here, so
the look of an output changes in one place and a command reads as what it does. The ``inspect``
views are drawn by :mod:`teachloop.reports.inspector` the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from teachloop.agents.planner import Plan
    from teachloop.criteria.agents import CriteriaReport
    from teachloop.environments.base import Environment, Task
    from teachloop.environments.registry import PluginInfo
    from teachloop.environments.selfcheck import CheckRow
    from teachloop.evals.config import EvalConfig
    from teachloop.loop.dryrun import DryRun
    from teachloop.loop.runner import RunStatus
    from teachloop.tracing.progress import ProgressUpdate


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _pct_or_dash(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


# -- run, resume, status ------------------------------------------------------------------------


def progress_prefix(node: str, round_: int) -> str:
    """What every progress line of a node starts with."""
    return f"round {round_}  {node:<9}"


#: How a reported number reads: a label before it, or a unit after it (``rows_per_s``: 12.5 rows/s).
_STAT_UNITS = {"rows_per_s": "rows/s"}
_STAT_SECONDS = {"eta_s": "eta"}


def progress_stats(update: ProgressUpdate) -> str:
    """A count's numbers, ``loss 2.31 · 12.5 rows/s · eta 40s``."""
    parts = []
    for key, value in update.stats.items():
        if key in _STAT_UNITS:
            parts.append(f"{value} {_STAT_UNITS[key]}")
        elif key in _STAT_SECONDS:
            parts.append(f"{_STAT_SECONDS[key]} {float(value):.0f}s")
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return " · ".join(parts)


def progress_count(update: ProgressUpdate) -> str:
    """One count as a plain line: ``sft steps 3/8 · loss 2.31 · 12.5 rows/s · eta 40s``."""
    count = f"{update.done}/{update.total}" if update.total is not None else str(update.done)
    stats = progress_stats(update)
    return f"{update.task} {count}" + (f" · {stats}" if stats else "")


def print_progress(console: Console, node: str, round_: int, phase: str, seconds: float | None) -> None:
    """One line per node as it starts and as it ends."""
    if phase == "start":
        console.print(f"[dim]round {round_}[/dim]  {node:<9} …", highlight=False)
    else:
        console.print(
            f"[dim]round {round_}[/dim]  {node:<9} [green]done[/green] in {seconds:.1f}s", highlight=False
        )


_OVERALL = "all (95% CI)"


def skill_names(summary: dict[str, Any], split: str) -> list[str]:
    """The skills any round of ``split`` scored, sorted."""
    skills = {s for r in summary["rounds"] if split in r for s in r[split]["skills"]}
    return sorted(skills)


#: How a round's column is marked when the forgetting guard flagged it (agents/guard.py).
_GUARD_LABELS = {"rolled_back": " (rolled back)", "repaired": " (repaired)"}


def accuracy_table(summary: dict[str, Any], split: str) -> Table:
    """Per-skill accuracy of ``split`` by round, with counts, and the overall 95% interval."""
    rounds = [r for r in summary["rounds"] if split in r]
    table = Table(title=f"{split} accuracy by round ({summary['run_id']})")
    # Skill names never wrap or shorten (on 80 columns the count cells wrap instead).
    labels = [*skill_names(summary, split), _OVERALL]
    table.add_column("skill", no_wrap=True, min_width=max(len(label) for label in labels))
    for r in rounds:
        verdict = _GUARD_LABELS.get((r.get("guard") or {}).get("action", ""), "")
        table.add_column(f"round {r['round']}{verdict}", justify="right")
    for skill in skill_names(summary, split):
        cells = []
        for r in rounds:
            m = r[split]["skills"].get(skill)
            cells.append(f"{pct(m['accuracy'])} ({m['solved']}/{m['n']})" if m else "-")
        table.add_row(skill, *cells)
    table.add_row(
        _OVERALL,
        *[
            f"{pct(r[split]['accuracy'])} [{pct(r[split]['ci95'][0])}-{pct(r[split]['ci95'][1])}]"
            for r in rounds
        ],
        style="bold",
    )
    return table


def print_closing(console: Console, summary: dict[str, Any], run_dir: Path) -> None:
    """What ``run`` and ``resume`` end with: test accuracy by round, then status, reason, time, where."""
    if summary["rounds"]:
        console.print(accuracy_table(summary, "test"))
        kept, last = summary.get("student_round"), summary["rounds"][-1]["round"]
        if kept is not None and kept != last:
            console.print(f"the forgetting guard rolled back to round {kept}'s model: the run ends with it")
    status = summary["status"]
    reason = f": {summary['stop_reason']}" if summary.get("stop_reason") else ""
    if waiting := summary.get("waiting_for_review"):
        status = (
            f"paused: round {waiting['round']}'s {waiting['gate']} waits for 'teachloop review {run_dir}'"
        )
    console.print(f"{status}{reason} · {summary['total_seconds']:.0f}s · {run_dir}")


def status_json(st: RunStatus) -> dict[str, Any]:
    return {**st.summary, "next": list(st.next_nodes)}


def print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data))


def print_status(console: Console, st: RunStatus) -> None:
    """One run: test accuracy by round, then its status, what runs next and its time so far."""
    if st.summary["rounds"]:
        console.print(accuracy_table(st.summary, "test"))
    where = f"next: {', '.join(st.next_nodes)}" if st.next_nodes else "finished"
    console.print(f"{st.summary['status']} · {where} · {st.summary['total_seconds']:.0f}s")


def print_runs(console: Console, statuses: Sequence[RunStatus]) -> None:
    """Every run, one row each: status, rounds trained, test accuracy round by round, seconds."""
    table = Table(title="runs")
    for col in ("run", "status", "rounds", "test accuracy", "seconds"):
        table.add_column(col)
    for st in statuses:
        tested = [r for r in st.summary["rounds"] if "test" in r]
        acc = " → ".join(pct(r["test"]["accuracy"]) for r in tested) or "-"
        table.add_row(
            str(st.root),
            st.summary["status"],
            str(max(0, len(tested) - 1)),
            acc,
            f"{st.summary['total_seconds']:.0f}",
        )
    console.print(table)


# -- envs ---------------------------------------------------------------------------------------


def print_plugin(console: Console, info: PluginInfo) -> None:
    """An installed environment: name, package and loader, then what it is or why it is broken."""
    console.print(
        f"{info.name}  ({info.package})  {info.loader}", highlight=False, markup=False, soft_wrap=True
    )
    about = f"BROKEN: {info.error}" if info.error else info.description
    console.print(
        f"    {about}", highlight=False, markup=False, soft_wrap=True, style="red" if info.error else None
    )


def print_env_check(console: Console, name: str, rows: Sequence[CheckRow]) -> None:
    """``envs check``: one row per check, pass or fail, then how many failed."""
    table = Table(title=f"envs check {name}")
    for col in ("check", "scope", "result", "detail"):  # the scope (skill and level) is never cut
        table.add_column(col, no_wrap=col in ("scope", "result"))
    for r in rows:
        table.add_row(r.check, r.scope, "pass" if r.passed else "FAIL", r.detail)
    console.print(table)
    failed = sum(not r.passed for r in rows)
    console.print(f"{len(rows) - failed} passed, {failed} failed", highlight=False)


def print_environment(
    console: Console,
    env: Environment,
    sizes: EvalConfig,
    dev: Sequence[Task],
    test: Sequence[Task],
    generates: bool,
) -> None:
    """An environment's skills with their split sizes, whether it generates tasks, and a sample."""
    table = Table(title=f"environment {env.name}")
    table.add_column("skill", no_wrap=True)
    for col in ("levels", "eval at", "dev", "test", "description"):
        table.add_column(col)
    for s in env.skills:
        n_dev = sum(t.skill == s.name for t in dev)
        n_test = sum(t.skill == s.name for t in test)
        levels = f"{s.min_difficulty}-{s.max_difficulty}"
        table.add_row(s.name, levels, str(s.eval_difficulty), str(n_dev), str(n_test), s.description)
    console.print(table)
    console.print(
        f"splits at the default sizes ({sizes.dev_per_skill} dev, {sizes.test_per_skill} test per skill): "
        f"{len(dev)} dev, {len(test)} test tasks",
        highlight=False,
    )
    generator = "yes (the heuristic teacher can make data)" if generates else "no"
    console.print(f"task generator: {generator}", highlight=False)
    sample = dev[0]
    console.print(f"sample task ({sample.skill}):", highlight=False)
    for message in env.prompt(sample):
        console.print(f"  [{message.role}] {_clip(message.content)}", highlight=False, markup=False)
    console.print(f"  [gold answer] {_clip(sample.answer)}", highlight=False, markup=False)


# -- criteria -----------------------------------------------------------------------------------


def print_criteria_report(console: Console, report: CriteriaReport, file: Path) -> None:
    """Each mined criterion with its accuracies, the combined and plain held-out agreement, what was
    dropped, and where the report is."""
    table = Table(
        title=f"criteria mined on {report.mining_pairs} pairs, reported on {report.held_out_pairs} more"
    )
    for column in ("criterion", "status", "mining", "held out", "description"):
        table.add_column(column)
    for c in report.criteria:
        table.add_row(
            c.criterion.name,
            c.status,
            _pct_or_dash(c.accuracy),
            _pct_or_dash(c.held_out_accuracy),
            c.criterion.description,
        )
    console.print(table)
    console.print(
        f"held-out agreement with the people: combined criteria {_pct_or_dash(report.combined_held_out)}, "
        f"plain 'which is better' prompt {_pct_or_dash(report.plain_held_out)}; dropped: "
        f"{', '.join(d['criterion']['name'] for d in report.dropped) or 'none'}",
        soft_wrap=True,
    )
    console.print(f"-> {file}", soft_wrap=True)


def print_distilled(console: Console, result: dict[str, Any], out_dir: Path) -> None:
    """How well a distilled reward model agrees with the criteria (and with people, when checked)."""
    console.print(
        f"reward model trained on {result['train_pairs']} criteria-labelled pairs: agrees with the criteria on "
        f"{_pct_or_dash(result['held_out_accuracy'])} of {result['held_out_pairs']} held-out pairs"
        + (
            f", with the people on {_pct_or_dash(result['human_agreement'])} of {result['human_pairs']} pairs"
            if result["human_pairs"]
            else ""
        )
        + f" -> {out_dir}",
        soft_wrap=True,
    )


# -- reviser ------------------------------------------------------------------------------------


def print_reviser_trained(console: Console, metrics: dict[str, float], out_dir: Path) -> None:
    console.print(
        f"trained a reviser on {int(metrics['pairs'])} pairs (loss {metrics['train_loss']:.3f}) -> {out_dir}",
        highlight=False,
    )


def print_waiting_plan(console: Console, plan: Plan) -> None:
    """A plan waiting for review: each skill's samples, level, trainer and the planner's reasons."""
    table = Table(title=f"round {plan.round}'s plan ({plan.policy}, {plan.total} samples) waits for review")
    for column in ("skill", "samples", "level", "trainer", "why"):
        table.add_column(column, overflow="fold")
    for a in plan.allocations:
        table.add_row(a.skill, str(a.n), str(a.difficulty), a.trainer, a.reason)
    console.print(table)


def print_waiting_samples(console: Console, round_: int, rows: Sequence[dict[str, Any]], total: int) -> None:
    """Selected samples waiting for review, with the scores they were selected by."""
    table = Table(title=f"round {round_}'s selected samples wait for review ({len(rows)} of {total} shown)")
    for column in ("id", "skill", "level", "origin", "score", "question", "answer"):
        table.add_column(column, overflow="fold")
    for r in rows:
        score = "-" if r["score"] is None else f"{r['score']:.2f}"
        table.add_row(
            r["id"],
            r["skill"],
            str(r["level"]),
            r["origin"],
            score,
            _clip(r["question"], 120),
            _clip(r["answer"], 60),
        )
    console.print(table)


def print_dry_run(console: Console, dry: DryRun) -> None:
    """``run --dry-run``: the run's size, then the teacher LLM's calls, tokens and cost per role."""
    console.print(
        "dry run: nothing is written, no model is loaded, no request is sent", highlight=False, soft_wrap=True
    )
    console.print(
        f"{dry.env} · student {dry.student} · {dry.rounds} round(s) · {dry.skills} skills · "
        f"{dry.eval_items} dev and test items evaluated after every round",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"per round: {dry.samples_per_round} training samples planned, about {dry.candidates_per_round} "
        "candidates made and checked",
        highlight=False,
        soft_wrap=True,
    )
    brains = ", ".join(f"{r} {b}" for r, b in dry.brains.items())
    console.print(f"brains: {brains}", highlight=False, soft_wrap=True)
    if not dry.roles:
        console.print(
            "teacher LLM: not used (every role is heuristic): 0 tokens, $0", highlight=False, soft_wrap=True
        )
        return
    table = Table(title="teacher LLM over the run (estimate)")
    table.add_column("role", no_wrap=True)
    table.add_column("model")
    for col in ("calls", "prompt tokens", "completion tokens", "USD"):
        table.add_column(col, justify="right")
    for r in dry.roles:
        cells = [r.calls, r.prompt_tokens, r.completion_tokens]
        usd = "-" if r.cost_usd is None else f"{r.cost_usd:.4f}"
        table.add_row(r.role, r.model, *["-" if c is None else f"{c:,}" for c in cells], usd)
    table.add_row("total", "", "", "", f"{dry.tokens:,} tokens", f"{dry.cost_usd:.4f}")
    console.print(table)
    for r in dry.roles:
        if r.note:
            console.print(f"{r.role}: {r.note}", highlight=False, soft_wrap=True)
    prices = "; ".join(f"{m} {p.prompt:g} prompt, {p.completion:g} completion" for m, p in dry.prices.items())
    console.print(
        f"prices used (USD per million tokens, teacher.llm.prices): {prices or 'none of these models'}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "tokens are estimated at ~4 characters each; the reviser is assumed to get a third of the "
        "teacher-written tasks (see docs/llm-teacher.md, 'Budgets')",
        highlight=False,
        soft_wrap=True,
    )
