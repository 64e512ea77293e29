"""Start, resume and inspect runs: everything the CLI does, without the printing.

Every input is checked before the run directory is created, so a bad environment name, model
path or config value leaves nothing behind. A run directory is locked while a process works in
it; ``resume`` continues from the last checkpoint and never redoes a finished node.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig

from teachloop.environments.base import Environment
from teachloop.environments.registry import load_environment
from teachloop.foundation.errors import ConfigError, ResourceError, RunDirError
from teachloop.foundation.faults import is_disk_full
from teachloop.foundation.redact import secret_paths
from teachloop.loop.budget import budget_stop
from teachloop.loop.config import RunConfig, load_saved_config
from teachloop.loop.preflight import check_run
from teachloop.loop.state import typed, untyped_channels
from teachloop.loop.summary import build_summary, write_summary
from teachloop.tracing.spans import SpanSink, Tracer
from teachloop.tracing.store import RunStore
from teachloop.tracing.tracking import RunTracking, open_tracking
from teachloop.tracing.tracking import check_installed as check_tracker_installed
from teachloop.training.student import resolve_student

if TYPE_CHECKING:
    from teachloop.llm.client import Teacher
    from teachloop.loop.context import ProgressFn

# The graph (torch, TRL) and the LLM client (openai) are imported only once they are needed: bad
# input fails in a second.

THREAD = RunnableConfig(configurable={"thread_id": "loop"})


@dataclass
class PreparedRun:
    config: RunConfig
    store: RunStore
    env: Environment
    base_student: Path


def default_run_dir(config: RunConfig) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.env}"


def prepare(config: RunConfig, run_dir: Path | None) -> PreparedRun:
    """Validate everything a new run needs; writes nothing into the run directory."""
    root = (run_dir or default_run_dir(config)).expanduser()
    RunStore.check_creatable(root)
    check_no_secrets(config)
    return _checked(config, RunStore(root))


def _checked(config: RunConfig, store: RunStore) -> PreparedRun:
    """The checks a new and a resumed run share; the environment and student they load."""
    check_teacher(config)
    check_criteria(config)
    env = load_environment(config.env, config.env_options)
    base = resolve_student(config.student, config.model_cache)
    _check_tracing(config)
    check_run(config)
    return PreparedRun(config=config, store=store, env=env, base_student=base)


def start(prepared: PreparedRun, progress: ProgressFn | None = None) -> dict[str, Any]:
    with _disk_full_hint(prepared.store):
        prepared.store.create(prepared.config.to_yaml())
    return _execute(prepared, progress)


@contextmanager
def _disk_full_hint(store: RunStore) -> Iterator[None]:
    """A full disk becomes one line: every artifact is written whole or not at all and the
    checkpoint is a SQLite transaction, so after freeing space ``resume`` redoes the failed node."""
    try:
        yield
    except Exception as err:
        if not is_disk_full(err):
            raise
        then = (
            f"run 'teachloop resume {store.root}'" if store.config_path.is_file() else "start the run again"
        )
        raise ResourceError(
            f"disk full while writing {store.root} ({type(err).__name__}); free some space, then {then}"
        ) from err


def check_no_secrets(config: RunConfig) -> None:
    """Refuse a config with a secret in it before it is saved as config.yaml: that file is the
    run's resumable config, kept beside its artifacts, so keys belong in environment variables."""
    found = secret_paths(config.model_dump(mode="json"))
    if found:
        raise ConfigError(
            f"config value {found[0]} looks like a secret, and the config is saved in the run directory: "
            "pass API keys through environment variables (teacher.llm.api_key_env), not the config"
        )


def check_criteria(config: RunConfig) -> None:
    """Fail before anything is written on an unusable pairs file, criteria file or scorer."""
    settings = config.teacher.criteria
    if settings.pairs is not None:
        from teachloop.criteria.pairs import load_pairs

        load_pairs(settings.pairs)
    if settings.file is not None:
        from teachloop.criteria.graph import load_report

        load_report(settings.file)
    if settings.scorer is not None and not (settings.scorer / "config.json").is_file():
        raise ConfigError(
            f"teacher.criteria.scorer {settings.scorer} is not a model directory (no config.json); "
            "train one with 'teachloop criteria distill'"
        )


def check_teacher(config: RunConfig) -> None:
    """Fail before anything is written when a role on the LLM has no model, no key or no server."""
    if config.llm_roles:
        from teachloop.llm.client import check_reachable, read_keys, resolve_endpoints

        endpoints = resolve_endpoints(config.teacher.llm, config.llm_roles)
        read_keys(endpoints)
        check_reachable(endpoints, config.teacher.llm.timeout_s)


def load_run(run_dir: Path) -> PreparedRun:
    store = RunStore(run_dir)
    if not store.config_path.is_file():
        raise RunDirError(f"{run_dir} is not a teachloop run directory (no config.yaml)")
    config = load_saved_config(store.config_path)
    check_databases(store)
    return _checked(config, store)


#: What to do about each damaged database; the run cannot go on from a damaged checkpoint.
_DAMAGE_FIX = {
    "state.sqlite": "its checkpoints are lost: start a new run",
    "traces.sqlite": "move it aside to resume without the earlier spans",
    "llm_cache.sqlite": "delete it to resume without the cached teacher replies",
}


def check_databases(store: RunStore) -> None:
    """Fail in one line when a run's SQLite file was damaged outside teachloop (a disk error, a
    copy cut short): teachloop's own writes are transactions, but a damaged file would otherwise
    surface as a traceback deep inside LangGraph or the tracer."""
    for name, fix in _DAMAGE_FIX.items():
        path = store.root / name
        if not path.is_file():
            continue
        try:
            db = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
            try:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                db.close()
        except sqlite3.DatabaseError as err:
            verdict = str(err)
        if verdict != "ok":
            raise RunDirError(f"{path} is damaged ({verdict}); {fix}")


def _check_tracing(config: RunConfig) -> None:
    if config.tracing.otlp_endpoint:
        from teachloop.tracing.otel import check_installed

        check_installed()
    check_tracker_installed(config.tracking)


def _span_sinks(config: RunConfig, store: RunStore) -> list[SpanSink]:
    if not config.tracing.otlp_endpoint:
        return []
    from teachloop.tracing.otel import otlp_sink

    return [otlp_sink(config.tracing.otlp_endpoint, store.root, config.tracing.service_name)]


def resume(run_dir: Path, progress: ProgressFn | None = None) -> dict[str, Any]:
    return _execute(load_run(run_dir), progress)


@contextmanager
def _locked(store: RunStore) -> Iterator[None]:
    fd = os.open(store.root / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"another teachloop process is working in {store.root}") from None
        yield
    finally:
        os.close(fd)


@contextmanager
def _tracked(config: RunConfig, store: RunStore) -> Iterator[RunTracking | None]:
    """The run's experiment tracker (tracing/tracking.py), ended as FINISHED with the summary
    attached, or as FAILED when the run raised (a resume continues the same tracker run)."""
    tracking = open_tracking(config.tracking, store.root, config.model_dump(mode="json"))
    if tracking is None:
        yield None
        return
    try:
        yield tracking
    except BaseException:
        tracking.finish(ok=False)
        raise
    tracking.log_artifact(store.summary_path)
    tracking.finish(ok=True)


def track_files(run_dir: Path, paths: list[Path]) -> None:
    """Attach files made after the run ended (the CLI's HTML report) to its tracker run."""
    config = load_saved_config(RunStore(run_dir).config_path)
    tracking = open_tracking(config.tracking, run_dir, config.model_dump(mode="json"))
    if tracking is not None:
        for path in paths:
            tracking.log_artifact(path)
        tracking.finish(ok=True)  # the run had ended well; this closes what reopening opened


@contextmanager
def teacher_client(config: RunConfig, root: Path, tracer: Tracer) -> Iterator[Teacher | None]:
    """The LLM teacher, when any role thinks with one; its cache lives in ``root`` by default."""
    if not config.llm_roles:
        yield None
        return
    from teachloop.llm.cache import ResponseCache
    from teachloop.llm.client import Teacher

    settings = config.teacher.llm
    cache = ResponseCache(settings.cache_path or root / "llm_cache.sqlite") if settings.cache else None
    teacher = Teacher(settings, config.llm_roles, tracer, cache)
    try:
        yield teacher
    finally:
        teacher.close()


def _execute(prepared: PreparedRun, progress: ProgressFn | None) -> dict[str, Any]:
    from langgraph.types import Command, Overwrite

    from teachloop.loop.brains import build_brains
    from teachloop.loop.context import LoopContext
    from teachloop.loop.gates import decision_for, pending_review
    from teachloop.loop.graph import compiled_graph

    store, config = prepared.store, prepared.config
    sinks = _span_sinks(config, store)
    with (
        _disk_full_hint(store),
        _locked(store),
        Tracer(store.traces_db, sinks) as tracer,
        teacher_client(config, store.root, tracer) as teacher,
        compiled_graph(store.state_db) as graph,
        _tracked(config, store) as tracking,
    ):
        context = LoopContext(
            config=config,
            store=store,
            env=prepared.env,
            tracer=tracer,
            base_student=prepared.base_student,
            brains=build_brains(config, prepared.env, teacher, tracer, store.root),
            progress=progress,
            teacher=teacher,
            tracking=tracking,
        )

        def written(values: dict[str, Any]) -> dict[str, Any]:
            """summary.json now, and to the tracker the rounds that became final."""
            summary = write_summary(store, values, config)  # type: ignore[arg-type]
            if tracking is not None:
                tracking.update(summary)
            return summary

        run_config = RunnableConfig(
            configurable=THREAD["configurable"], recursion_limit=16 + 12 * (config.rounds + 1)
        )
        snapshot = graph.get_state(run_config)
        if old := untyped_channels(snapshot.values):  # checkpointed by an earlier teachloop
            typed_values = typed(snapshot.values)
            graph.update_state(run_config, {c: Overwrite(typed_values[c]) for c in old})  # type: ignore[literal-required]
            snapshot = graph.get_state(run_config)
        values: dict[str, Any] = dict(snapshot.values)
        if values and (not snapshot.next or budget_stop(values, config.stop)):  # type: ignore[arg-type]
            return written(values)
        start_input: Any = None if values else _first_input(config)
        if waiting := pending_review(snapshot):  # paused at a review gate: continue with the decision
            start_input = Command(resume=decision_for(store, waiting).model_dump(mode="json"))
        with tracer.span("run", "loop", inputs={"resumed": bool(values)}) as sp:
            for values in graph.stream(
                start_input, run_config, context=context, stream_mode="values", durability="sync"
            ):
                written(values)
                if not values.get("stop_reason") and budget_stop(values, config.stop):  # type: ignore[arg-type]
                    break  # at a node boundary: the checkpoint names the next node, resume runs it
            sp.outputs = {"round": values.get("round"), "stop_reason": values.get("stop_reason")}
        summary = written(values)
        if waiting := pending_review(graph.get_state(run_config)):
            summary["waiting_for_review"] = waiting.model_dump()
            store.write_json(store.summary_path, summary)
        return summary


def _first_input(config: RunConfig) -> dict[str, Any]:
    """A new run's input: the review gates it pauses at (none: the state has no such channel)."""
    return {"review_gates": list(config.review)} if config.review else {}


@dataclass
class RunStatus:
    root: Path
    summary: dict[str, Any]
    next_nodes: tuple[str, ...]


def status(run_dir: Path) -> RunStatus:
    store = RunStore(run_dir)
    if not store.config_path.is_file():
        raise RunDirError(f"{run_dir} is not a teachloop run directory (no config.yaml)")
    config = load_saved_config(store.config_path)
    check_databases(store)
    next_nodes: tuple[str, ...] = ()
    values: dict[str, Any] = {}
    if store.state_db.exists():
        from teachloop.loop.graph import compiled_graph

        with compiled_graph(store.state_db) as graph:
            snapshot = graph.get_state(THREAD)
            values, next_nodes = dict(typed(snapshot.values)), tuple(snapshot.next)
    if not values:
        next_nodes = ("setup",)
    return RunStatus(root=run_dir, summary=build_summary(values, config, run_dir.name), next_nodes=next_nodes)  # type: ignore[arg-type]
