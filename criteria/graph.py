"""The CritiQ flow as a LangGraph subgraph, checkpointed like the loop so a killed mining resumes.

```
propose -> judge -> reflect -> judge ... (until every criterion is kept, nothing changed, or the
                       \\-> report        iterations are spent)
```

- **propose**: the manager picks ``proposals`` criteria (seed library or new).
- **judge**: workers compare every mining pair under every criterion not judged yet.
- **reflect**: each criterion's accuracy decides: keep, revise (the manager rewrites it after
  seeing the pairs it got wrong), or drop and replace. The last pass only records the fates.
- **report**: the surviving criteria's accuracy on the held-out pairs, the combined judge's
  agreement there, and a plain "which is better" prompt on the same judge for comparison.

``teachloop criteria mine`` runs it alone; the loop's setup node runs it when given pairs. The
output is ``criteria.json`` (a ``CriteriaReport``).
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import ValidationError

from teachloop.agents.config import Brain
from teachloop.agents.roles import record_fallback
from teachloop.criteria.agents import (
    Choice,
    CriteriaManager,
    CriteriaReport,
    CriterionJudge,
    CriterionResult,
    LibraryManager,
    LLMJudge,
    LLMManager,
    MinedCriterion,
    agreement,
    combined_choices,
    evaluate_criterion,
    fate,
    result_of,
    unique_name,
)
from teachloop.criteria.config import CriteriaConfig
from teachloop.criteria.library import Criterion, seed_library
from teachloop.criteria.pairs import PreferencePair, split_pairs
from teachloop.foundation.errors import ConfigError
from teachloop.foundation.files import atomic_write_text
from teachloop.llm.client import Teacher, TeacherSession
from teachloop.tracing.spans import Tracer

T = TypeVar("T")
THREAD = RunnableConfig(configurable={"thread_id": "criteria"})
#: Where a loop run keeps its criteria (``RUN_DIR/criteria/criteria.json``).
CRITERIA_DIR = "criteria"
REPORT_FILE = "criteria.json"
STATE_FILE = "criteria_state.sqlite"


class CriteriaState(TypedDict, total=False):
    iteration: int
    active: list[dict[str, Any]]
    results: dict[str, dict[str, Any]]
    dropped: Annotated[list[dict[str, Any]], operator.add]
    history: Annotated[list[dict[str, Any]], operator.add]
    done: bool


@dataclass
class MiningContext:
    mining: list[PreferencePair]
    held_out: list[PreferencePair]
    settings: CriteriaConfig
    tracer: Tracer
    out_dir: Path
    run: Callable[[Callable[[CriterionJudge, CriteriaManager], Awaitable[Any]]], Any]

    def evaluate(
        self, criterion: Criterion | None, pairs: list[PreferencePair]
    ) -> tuple[dict[str, Choice], float]:
        return self.run(lambda worker, _: evaluate_criterion(worker, criterion, pairs, self.settings.votes))

    def revise(self, criterion: Criterion, result: CriterionResult) -> Criterion | None:
        wrong = [p for p in self.mining if p.id in result.wrong]
        return self.run(lambda _, manager: manager.revise(criterion, result.accuracy, wrong))

    def replace(
        self, criterion: Criterion, result: CriterionResult, others: list[Criterion], tried: set[str]
    ) -> Criterion | None:
        return self.run(
            lambda _, manager: manager.replace(criterion, result.accuracy, others, tried, self.mining)
        )


def _criteria(state: CriteriaState) -> list[Criterion]:
    return [Criterion.model_validate(c) for c in state.get("active", [])]


def _results(state: CriteriaState) -> dict[str, CriterionResult]:
    return {k: CriterionResult.model_validate(v) for k, v in state.get("results", {}).items()}


def propose(state: CriteriaState, runtime: Runtime[MiningContext]) -> dict[str, Any]:
    ctx = runtime.context
    n = ctx.settings.proposals
    with ctx.tracer.span(
        "agent", "criteria_manager.propose", inputs={"pairs": len(ctx.mining), "n": n}
    ) as sp:
        proposed: list[Criterion] = ctx.run(lambda _, manager: manager.propose(ctx.mining, n))
        if not proposed:  # a manager that proposed nothing: start from the library instead
            record_fallback(sp, "seed library", "the manager proposed no criteria")
            proposed = list(seed_library_for(ctx.settings)[:n])
        sp.outputs = [c.name for c in proposed]
    return {"iteration": 0, "active": [c.model_dump() for c in proposed], "results": {}, "done": False}


def judge(state: CriteriaState, runtime: Runtime[MiningContext]) -> dict[str, Any]:
    ctx = runtime.context
    results = dict(state.get("results", {}))
    todo = [c for c in _criteria(state) if c.name not in results]
    votes = ctx.settings.votes
    for criterion in todo:
        inputs = {"criterion": criterion.name, "pairs": len(ctx.mining), "votes": votes}
        with ctx.tracer.span("agent", "criteria_worker.judge", inputs=inputs) as sp:
            choices, _ = ctx.evaluate(criterion, ctx.mining)
            result = result_of(criterion, choices, ctx.mining)
            sp.outputs = {"accuracy": result.accuracy, "wrong": result.wrong}
        results[criterion.name] = result.model_dump()
    return {"results": results}


def reflect(state: CriteriaState, runtime: Runtime[MiningContext]) -> dict[str, Any]:
    ctx, settings = runtime.context, runtime.context.settings
    iteration = state.get("iteration", 0) + 1
    results = _results(state)
    active = _criteria(state)
    fates = {c.name: fate(results[c.name].accuracy, settings.keep, settings.drop) for c in active}
    history = [
        {
            "iteration": iteration,
            "criterion": c.name,
            "accuracy": results[c.name].accuracy,
            "fate": fates[c.name],
        }
        for c in active
    ]
    last = iteration >= settings.iterations
    if last or all(f == "keep" for f in fates.values()):
        survivors = [c for c in active if fates[c.name] != "drop"]
        dropped = [_dropped(c, results[c.name], iteration) for c in active if fates[c.name] == "drop"]
        return _reflected(iteration, survivors, results, dropped, history, done=True)
    tried = {c.name for c in active} | {d["criterion"]["name"] for d in state.get("dropped", [])}
    survivors, dropped = [], []
    with ctx.tracer.span("agent", "criteria_manager.reflect", inputs=history) as sp:
        changes = []
        for c in active:
            result = results[c.name]
            if fates[c.name] == "keep":
                survivors.append(c)
                continue
            new: Criterion | None = None
            if fates[c.name] == "revise":
                new = ctx.revise(c, result)
            if new is None:  # dropped, or a revision the manager could not make
                dropped.append(_dropped(c, result, iteration))
                new = ctx.replace(c, result, [s for s in active if s.name != c.name], tried)
            if new is not None:
                new = unique_name(new, tried)
                tried.add(new.name)
                survivors.append(new)
                changes.append({"from": c.name, "to": new.name, "how": new.origin})
        sp.outputs = changes
    return _reflected(iteration, survivors, results, dropped, history, done=not changes and not dropped)


def _dropped(criterion: Criterion, result: CriterionResult, iteration: int) -> dict[str, Any]:
    return {"criterion": criterion.model_dump(), "accuracy": result.accuracy, "iteration": iteration}


def _reflected(
    iteration: int,
    survivors: list[Criterion],
    results: dict[str, CriterionResult],
    dropped: list[dict[str, Any]],
    history: list[dict[str, Any]],
    done: bool,
) -> dict[str, Any]:
    kept_results = {c.name: results[c.name].model_dump() for c in survivors if c.name in results}
    return {
        "iteration": iteration,
        "active": [c.model_dump() for c in survivors],
        "results": kept_results,
        "dropped": dropped,
        "history": history,
        "done": done,
    }


def report(state: CriteriaState, runtime: Runtime[MiningContext]) -> dict[str, Any]:
    ctx, settings = runtime.context, runtime.context.settings
    results = _results(state)
    held = ctx.held_out
    final = _criteria(state)
    held_choices: dict[str, dict[str, Choice]] = {}
    combined = plain = None
    with ctx.tracer.span("agent", "criteria_worker.held_out", inputs={"pairs": len(held)}) as sp:
        if held:
            for c in final:
                held_choices[c.name], _ = ctx.evaluate(c, held)
            weights = [(results[c.name].accuracy, held_choices[c.name]) for c in final]
            combined = agreement(combined_choices(weights, held), held)
            _, plain = ctx.evaluate(None, held)
        sp.outputs = {"combined": combined, "plain": plain}
    mined = CriteriaReport(
        criteria=[
            MinedCriterion(
                criterion=c,
                status="kept" if results[c.name].accuracy >= settings.keep else "weak",
                accuracy=results[c.name].accuracy,
                held_out_accuracy=agreement(held_choices[c.name], held) if held else None,
            )
            for c in final
        ],
        dropped=state.get("dropped", []),
        history=state.get("history", []),
        mining_pairs=len(ctx.mining),
        held_out_pairs=len(held),
        combined_held_out=combined,
        plain_held_out=plain,
        settings=settings.model_dump(mode="json"),
    )
    atomic_write_text(ctx.out_dir / REPORT_FILE, mined.model_dump_json(indent=2))
    return {}


def _after_reflect(state: CriteriaState) -> str:
    return "report" if state.get("done") else "judge"


def build_graph() -> StateGraph[CriteriaState, MiningContext, CriteriaState, CriteriaState]:
    graph = StateGraph(CriteriaState, context_schema=MiningContext)
    graph.add_node("propose", propose)
    graph.add_node("judge", judge)
    graph.add_node("reflect", reflect)
    graph.add_node("report", report)
    graph.add_edge(START, "propose")
    graph.add_edge("propose", "judge")
    graph.add_edge("judge", "reflect")
    graph.add_conditional_edges("reflect", _after_reflect, ["judge", "report"])
    graph.add_edge("report", END)
    return graph


def seed_library_for(settings: CriteriaConfig) -> list[Criterion]:
    """The seed criteria of the configured domains, in library order."""
    return [c for c in seed_library() if c.domain in settings.domains]


def mine(
    pairs: Sequence[PreferencePair],
    settings: CriteriaConfig,
    teacher: Teacher,
    out_dir: Path,
    seed: int,
    *,
    manager: Brain,
) -> CriteriaReport:
    """Mine criteria into ``out_dir/criteria.json``; a finished mining is read back, a killed one
    resumes. ``manager`` is the criteria manager's brain (``teacher.brains.criteria_manager``)."""
    library = seed_library_for(settings)

    def run(work: Callable[[CriterionJudge, CriteriaManager], Awaitable[T]]) -> T:
        def with_session(session: TeacherSession) -> Awaitable[T]:
            worker = LLMJudge(session, settings.temperature)
            heuristic = LibraryManager(library)
            chosen: CriteriaManager = (
                LLMManager(session, library, teacher.settings.temperature, fallback=heuristic)
                if manager == "openai"
                else heuristic
            )
            return work(worker, chosen)

        return teacher.run(with_session)

    return mine_with(pairs, settings, out_dir, seed, teacher.tracer, run)


def mine_with(
    pairs: Sequence[PreferencePair],
    settings: CriteriaConfig,
    out_dir: Path,
    seed: int,
    tracer: Tracer,
    run: Callable[[Callable[[CriterionJudge, CriteriaManager], Awaitable[Any]]], Any],
) -> CriteriaReport:
    """``mine`` with the agents given by ``run``, which awaits a piece of work on a (worker, manager)."""
    report_path = out_dir / REPORT_FILE
    mining_pairs, held_out = split_pairs(list(pairs), settings.held_out, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = MiningContext(
        mining=mining_pairs,
        held_out=held_out,
        settings=settings,
        tracer=tracer,
        out_dir=out_dir,
        run=run,
    )
    conn = sqlite3.connect(out_dir / STATE_FILE, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        graph = build_graph().compile(checkpointer=saver)
        resumable = bool(graph.get_state(THREAD).next)
        if not resumable and report_path.is_file():
            return load_report(report_path)
        if not resumable:  # never started, or finished with its report since deleted: mine afresh
            saver.delete_thread(THREAD["configurable"]["thread_id"])  # (the LLM cache makes it cheap)
        inputs = {"mining_pairs": len(mining_pairs), "held_out_pairs": len(held_out), "resumed": resumable}
        with tracer.span("agent", "criteria.mine", inputs=inputs) as sp:
            graph.invoke(None if resumable else {}, THREAD, context=context, durability="sync")
            report = load_report(report_path)
            sp.outputs = report.summary()
    finally:
        conn.close()
    return report


def load_report(path: Path) -> CriteriaReport:
    """A criteria file, or a ConfigError saying why it cannot be used."""
    try:
        return CriteriaReport.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"criteria file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read criteria file {path}: {err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ConfigError(
            f"criteria file {path} is not a 'teachloop criteria mine' result ({where}: {first['msg']})"
        ) from None
