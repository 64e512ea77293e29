"""The teacher's endpoint goes away. Down at the start (or at a resume): one line, exit code 2,
nothing written. Down in the middle of a round: every role whose requests fail falls back to its
heuristic brain, the round completes, and the failures are counted and traced. Through all of
it, a planted API key that looks like no known key format reaches no file the run writes
(SQLite, parquet, JSON, YAML, the HTML report) and no output."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_openai import FakeOpenAI
from teacher_script import ScriptedTeacher

from helpers import (
    cli_env,
    cli_in_process,
    refused_url,
    scripted_teacher_args,
    snapshot,
    teachloop,
    tiny_run_args,
)
from teachloop.foundation.errors import ConfigError
from teachloop.llm.client import Endpoint, check_reachable
from teachloop.tracing.spans import read_spans

#: Matches none of core/redact.py's key patterns: only scrubbing the key's own value catches it.
PLANTED_KEY = "PLANTED0KEY0e4b1c9a77f2"


def _llm_args(base_url: str, model_cache: Path, run_dir: Path) -> list[str]:
    return [
        *tiny_run_args(model_cache, run_dir, rounds=1),
        *scripted_teacher_args(base_url),
        "--set",
        "teacher.llm.timeout_s=2",
        "--set",
        "teacher.llm.max_retries=2",
        "--set",
        "teacher.llm.backoff_s=0.01",
        "--set",
        "teacher.llm.backoff_max_s=0.02",
    ]


def test_a_teacher_down_at_the_start_is_one_line_and_writes_nothing(
    tmp_path: Path, model_cache: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    run_dir = tmp_path / "run"
    with refused_url() as url:
        assert cli_in_process(*_llm_args(url, model_cache, run_dir)) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"error: teacher endpoint {url} is not reachable ([Errno 111] Connection refused): "
        "start the server or fix --teacher-base-url, then try again"
    ]
    assert not run_dir.exists() and PLANTED_KEY not in err


def test_a_teacher_down_at_resume_is_one_line_and_changes_nothing(
    tmp_path: Path, finished_run: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["rounds"] = 3  # one more round, now with an LLM diagnoser whose server is down
    config["teacher"]["brains"] = {"diagnoser": "openai"}
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    with refused_url() as url:
        config["teacher"]["llm"].update(base_url=url, model="scripted")
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
        before = snapshot(run_dir)
        assert cli_in_process("resume", str(run_dir)) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: teacher endpoint http://127.0.0.1:")
    assert snapshot(run_dir) == before


def _endpoints(base_url: str) -> dict[Any, Endpoint]:
    return {"diagnoser": Endpoint(base_url=base_url, model="m", api_key_env="OPENAI_API_KEY")}


def test_only_a_server_that_cannot_be_connected_to_counts_as_down() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        started = time.perf_counter()
        check_reachable(_endpoints(f"http://127.0.0.1:{port}/v1"), timeout_s=0.3)  # slow is not down
        assert time.perf_counter() - started < 5
    with FakeOpenAI(lambda body: "ok") as server:
        check_reachable(_endpoints(server.base_url), timeout_s=5)
    refused = r"is not reachable \(\[Errno 111\] Connection refused\)"
    with refused_url() as url, pytest.raises(ConfigError, match=refused):
        check_reachable(_endpoints(url), timeout_s=5)
    for url in ("localhost:8000/v1", "ftp://127.0.0.1/v1", "http://[::1/v1"):
        with pytest.raises(ConfigError, match="is not an http\\(s\\) URL"):
            check_reachable(_endpoints(url), timeout_s=5)


@pytest.fixture(scope="module")
def outage_run(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, tiny_student: Path
) -> tuple[Path, str, dict[str, int]]:
    """A 1-round run whose teacher answers its first requests (some with HTTP 500s that echo the
    key), then disappears: the port is closed for the rest of the run."""
    tmp = tmp_path_factory.mktemp("outage")
    run_dir = tmp / "run"
    server = FakeOpenAI(ScriptedTeacher(), fault_rate=0.25, faults=("500",), seed=3)
    stop = threading.Event()

    def pull_the_plug() -> None:
        while not stop.is_set() and server.counts["requests"] < 12:
            time.sleep(0.01)
        server.__exit__()

    with server:
        watcher = threading.Thread(target=pull_the_plug, daemon=True)
        watcher.start()
        env = {**cli_env(model_cache), "OPENAI_API_KEY": PLANTED_KEY}
        result = teachloop(
            *_llm_args(server.base_url, model_cache, run_dir), cwd=tmp, model_cache=model_cache, env=env
        )
        stop.set()
        watcher.join()
    assert result.returncode == 0, result.stderr[-3000:]
    report = teachloop("report", str(run_dir), cwd=tmp, model_cache=model_cache, env=env)
    assert report.returncode == 0, report.stderr[-3000:]
    inspect = teachloop("inspect", str(run_dir), "trace", "--json", cwd=tmp, model_cache=model_cache, env=env)
    assert inspect.returncode == 0, inspect.stderr[-3000:]
    output = result.stdout + result.stderr + report.stdout + report.stderr + inspect.stdout + inspect.stderr
    return run_dir, output, dict(server.counts)


@pytest.mark.slow
def test_a_teacher_down_mid_round_falls_back_and_the_round_completes(
    outage_run: tuple[Path, str, dict[str, int]],
) -> None:
    run_dir, _, counts = outage_run
    assert counts["500"] > 0 and counts["requests"] >= 12
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and [r["round"] for r in summary["rounds"]] == [0, 1]
    usage = summary["llm_usage"]
    assert usage["synthesizer"]["failures"] > 0 and usage["reviser"]["failures"] > 0
    agents = {
        s.name: s.decoded("outputs") for s in read_spans(run_dir / "traces.sqlite") if s.kind == "agent"
    }
    # tasks the synthesizer wrote but the downed teacher could not confirm are not trained on; the
    # reviser's failed rewrites are counted; the procedural generator fills the plan
    assert agents["synthesizer.openai"]["unconfirmed"] > 0
    assert agents["reviser.openai"]["unusable_replies"] == agents["reviser.openai"]["offered"] > 0
    assert summary["rounds"][1]["samples"]["selected"] == summary["rounds"][1]["samples"]["planned"] == 24
    assert json.loads((run_dir / "rounds" / "1" / "train_metrics.json").read_text())["train_loss"] >= 0


@pytest.mark.slow
def test_the_planted_key_reaches_no_file_and_no_output(outage_run: tuple[Path, str, dict[str, int]]) -> None:
    run_dir, output, _ = outage_run
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in written}
    assert {".sqlite", ".parquet", ".json", ".yaml", ".html", ".safetensors"} <= kinds, kinds
    for path in written:
        assert PLANTED_KEY.encode() not in path.read_bytes(), path
    assert PLANTED_KEY not in output
    assert "[REDACTED]" in (run_dir / "traces.sqlite").read_bytes().decode("utf-8", "replace")
