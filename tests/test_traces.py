"""Spans: nesting, bounded JSON fields, redaction of secrets, sinks, and OpenTelemetry export."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from helpers import cli_in_process, teachloop, tiny_run_args
from teachloop.foundation.errors import ConfigError
from teachloop.foundation.redact import REDACTED, redact, redact_text, secret_paths
from teachloop.loop.config import RunConfig, build_config
from teachloop.reports.report import render_report
from teachloop.reports.rundata import RunData
from teachloop.tracing.spans import MAX_FIELD_CHARS, MAX_ITEMS, MAX_STRING_CHARS, Span, Tracer, read_spans

SECRETS = [
    "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
    "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
    "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "ghp_0123456789abcdefghijABCDEFGHIJ",
    "lsv2_pt_0123456789abcdef0123456789abcdef",
    "AKIAIOSFODNN7EXAMPLE",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_known_key_formats_are_redacted_in_free_text(secret: str) -> None:
    text = f"calling the API with {secret} now"
    assert secret not in redact_text(text)
    assert redact_text(text).startswith("calling the API with ")


def test_authorization_values_and_key_value_pairs_are_redacted() -> None:
    assert redact_text("Authorization: Bearer abc.DEF-123_xyz") == f"Authorization: Bearer {REDACTED}"
    assert redact_text("GET /v1?api_key=s3cr3tvalue&x=1") == f"GET /v1?api_key={REDACTED}&x=1"
    assert redact_text('{"password": "hunter2hunter2"}') == f'{{"password": "{REDACTED}"}}'
    assert redact_text("client_secret=abcdef123456") == f"client_secret={REDACTED}"


def test_ordinary_text_is_left_alone() -> None:
    for text in [
        "basic arithmetic with max_new_tokens=16",
        "Basic Arithmetic",
        "The tokenizer saw 1451 prompt tokens",
        "skills: chain_sum, word_sequence_reversal",
        "Patricia has 1 sisters and she also has 2 brothers.",
    ]:
        assert redact_text(text) == text


def test_values_of_secret_named_keys_are_redacted_but_counts_are_not() -> None:
    data = {
        "api_key": "abc",
        "OPENAI_API_KEY": "whatever",
        "headers": {"Authorization": "Bearer xyz", "Content-Type": "application/json"},
        "access_token": "t",
        "password": "p",
        "max_new_tokens": 16,
        "prompt_tokens": 1200,
        "question": "what is 2 + 2?",
    }
    out = redact(data)
    assert out["api_key"] == out["OPENAI_API_KEY"] == out["access_token"] == out["password"] == REDACTED
    assert out["headers"] == {"Authorization": REDACTED, "Content-Type": "application/json"}
    assert out["max_new_tokens"] == 16 and out["prompt_tokens"] == 1200
    assert out["question"] == "what is 2 + 2?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:password@host/v1", f"https://{REDACTED}@host/v1"),
        (
            "GET http://bob:p@ss@example.com:8080/x?to=a@b.c failed",
            f"GET http://{REDACTED}@example.com:8080/x?to=a@b.c failed",
        ),
        ("clone https://ghtoken123@github.com/o/r", f"clone https://{REDACTED}@github.com/o/r"),
        ("http://127.0.0.1:8000/v1?mail=a@b.c", "http://127.0.0.1:8000/v1?mail=a@b.c"),
        ("write to a@b.com", "write to a@b.com"),
    ],
)
def test_credentials_in_urls_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_lists_and_mappings_under_secret_keys_are_redacted_whole() -> None:
    data = {
        "api_keys": ["abc123", "def456"],
        "credentials": {"user": "bob", "password": "hunter2"},
        "tokens": {"prompt": 120, "completion": 7},  # counts, not secrets
        "secrets": [],
        "nested": [{"access_token": ["t1"]}],
    }
    out = redact(data)
    assert out["api_keys"] == out["credentials"] == REDACTED
    assert out["nested"] == [{"access_token": REDACTED}]
    assert out["tokens"] == {"prompt": 120, "completion": 7} and out["secrets"] == []
    assert secret_paths(data) == ["api_keys", "credentials", "nested[0].access_token"]


def test_no_secret_reaches_the_trace_file(tmp_path: Path) -> None:
    """Inputs, outputs, attributes and errors are all redacted before they are written."""
    db = tmp_path / "traces.sqlite"
    with Tracer(db) as tracer:
        with tracer.span(
            "llm",
            "teacher.chat",
            round=1,
            inputs={"messages": [{"role": "user", "content": f"my key is {SECRETS[0]}"}], "api_key": "plain"},
            base_url="https://proxyuser:hunter2pass@proxy.example.com/v1",
            headers={"Authorization": f"Bearer {SECRETS[2]}"},
            api_keys=["plainkey-one", "plainkey-two"],
        ) as sp:
            sp.outputs = {"text": f"echo {SECRETS[1]}", "token": "tok-plain"}
        with pytest.raises(RuntimeError), tracer.span("tool", "fails"):
            raise RuntimeError(f"401 for https://api.example.com/?api_key={SECRETS[3]}")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("traces.sqlite*"))
    for secret in [*SECRETS[:4], "plain", "tok-plain", "hunter2pass", "proxyuser", "plainkey-"]:
        assert secret.encode() not in raw, secret
    spans = {s.name: s for s in read_spans(db)}
    assert spans["teacher.chat"].decoded("inputs")["api_key"] == REDACTED
    attrs = spans["teacher.chat"].decoded("attrs")
    assert attrs["base_url"] == f"https://{REDACTED}@proxy.example.com/v1"  # host and path stay readable
    assert attrs["api_keys"] == REDACTED
    assert spans["fails"].status == "error" and REDACTED in (spans["fails"].error or "")


def test_spans_nest_inherit_the_round_and_count_tokens(tmp_path: Path) -> None:
    db = tmp_path / "traces.sqlite"
    tracer = Tracer(db)
    with tracer.span("run", "loop"), tracer.span("node", "evaluate", round=3) as node:
        with tracer.span("tool", "student.generate") as tool:
            tool.add_tokens(100, 20)
            tool.add_tokens(50, 5)
        node.outputs = {"ok": True}
    tracer.close()
    spans = {s.name: s for s in read_spans(db)}
    assert spans["loop"].parent_id is None and spans["loop"].round is None
    assert spans["evaluate"].parent_id == spans["loop"].id and spans["evaluate"].round == 3
    assert spans["student.generate"].parent_id == spans["evaluate"].id
    assert spans["student.generate"].round == 3
    assert (spans["student.generate"].prompt_tokens, spans["student.generate"].completion_tokens) == (150, 25)
    assert spans["evaluate"].start <= spans["student.generate"].start <= spans["student.generate"].end
    assert spans["student.generate"].end <= spans["evaluate"].end


def test_big_fields_are_bounded_and_stay_valid_json(tmp_path: Path) -> None:
    db = tmp_path / "traces.sqlite"
    big = {
        "samples": [{"question": "q" * 5000, "n": i} for i in range(500)],
        "nested": {"a": {"b": {"c": {"d": {"e": {"f": {"g": "deep"}}}}}}},
        "keys": {f"k{i}": i for i in range(500)},
        "blob": b"\x00" * 10,
    }
    with Tracer(db) as tracer, tracer.span("tool", "big", inputs=big):
        pass
    (span,) = read_spans(db)
    assert span.inputs is not None and len(span.inputs) <= MAX_FIELD_CHARS
    data = json.loads(span.inputs)  # shrunk with tighter limits until it fitted, never cut
    assert data["samples"][-1].endswith(" more items") and len(data["samples"]) < MAX_ITEMS
    assert (
        data["samples"][0]["question"].startswith("qqq") and "more chars]" in data["samples"][0]["question"]
    )
    assert "deep" in json.dumps(data["nested"]) and "more keys" in data["keys"]["..."]
    assert data["blob"] == "<10 bytes>"


def test_a_field_within_limits_is_kept_whole(tmp_path: Path) -> None:
    value = {
        "samples": [{"question": "q" * (MAX_STRING_CHARS - 1)} for _ in range(3)],
        "n": list(range(MAX_ITEMS)),
    }
    with Tracer(tmp_path / "t.sqlite") as tracer, tracer.span("tool", "small", inputs=value):
        pass
    (span,) = read_spans(tmp_path / "t.sqlite")
    assert span.decoded("inputs") == value


def test_a_null_tracer_writes_nothing_and_sinks_see_every_span(tmp_path: Path) -> None:
    seen: list[Span] = []

    class Collect:
        def export(self, span: Span) -> None:
            seen.append(span)

        def shutdown(self) -> None:
            seen.append(
                Span(
                    id="end",
                    parent_id=None,
                    kind="run",
                    name="shutdown",
                    round=None,
                    start=0,
                    end=0,
                    status="ok",
                )
            )

    class Broken:
        def export(self, span: Span) -> None:
            raise ConnectionError("collector down")

        def shutdown(self) -> None:
            raise ConnectionError("collector down")

    tracer = Tracer(None, [Broken(), Collect()])
    with tracer.span("node", "a", inputs={"password": "x"}), tracer.span("tool", "b"):
        pass
    tracer.close()
    assert [s.name for s in seen] == ["b", "a", "shutdown"]
    assert seen[1].decoded("inputs") == {"password": REDACTED}
    assert not list(tmp_path.iterdir())


# -- OpenTelemetry ------------------------------------------------------------------------------


def test_spans_export_to_opentelemetry_with_parents_tokens_and_errors(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from teachloop.tracing.otel import OtelSink, trace_id_for

    exporter = InMemorySpanExporter()
    sink = OtelSink(SimpleSpanProcessor(exporter), trace_id_for(tmp_path), service_name="test-run")
    with Tracer(tmp_path / "traces.sqlite", [sink]) as tracer, tracer.span("node", "evaluate", round=2):
        with tracer.span("llm", "teacher.chat", inputs={"api_key": "secret-value"}) as sp:
            sp.add_tokens(12, 3)
        with pytest.raises(ValueError), tracer.span("tool", "verify"):
            raise ValueError("bad answer")
    exported = {s.name: s for s in exporter.get_finished_spans()}
    stored = {s.name: s for s in read_spans(tmp_path / "traces.sqlite")}
    assert set(exported) == {"evaluate", "teacher.chat", "verify"}
    node, chat, verify = exported["evaluate"], exported["teacher.chat"], exported["verify"]
    assert {s.context.trace_id for s in exported.values()} == {trace_id_for(tmp_path)}
    assert node.parent is None
    assert chat.parent is not None and chat.parent.span_id == node.context.span_id
    assert node.context.span_id == int(stored["evaluate"].id[:16], 16)
    assert chat.attributes["gen_ai.usage.input_tokens"] == 12
    assert chat.attributes["gen_ai.usage.output_tokens"] == 3
    assert chat.attributes["langsmith.span.kind"] == "llm" and chat.attributes["teachloop.round"] == 2
    assert "secret-value" not in chat.attributes["gen_ai.prompt"]
    assert verify.status.status_code == StatusCode.ERROR and "bad answer" in (verify.status.description or "")
    assert node.resource.attributes["service.name"] == "test-run"
    assert chat.start_time == int(stored["teacher.chat"].start * 1e9)


class _Collector(BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP collector: keeps every protobuf request body it is sent."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    _Collector.bodies = []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1/traces", _Collector.bodies
    finally:
        server.shutdown()


def exported_span_names(bodies: list[bytes]) -> list[str]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    names = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        names += [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    return names


def test_spans_reach_an_otlp_http_collector(tmp_path: Path, collector: tuple[str, list[bytes]]) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    from teachloop.tracing.otel import otlp_sink

    endpoint, bodies = collector
    tracer = Tracer(tmp_path / "traces.sqlite", [otlp_sink(endpoint, tmp_path)])
    with tracer.span("node", "plan", round=1), tracer.span("agent", "planner.deficit"):
        pass
    tracer.close()  # flushes the batch to the collector
    assert sorted(exported_span_names(bodies)) == ["plan", "planner.deficit"]


def test_a_run_configured_for_otlp_exports_its_spans(
    tmp_path: Path, model_cache: Path, tiny_student: Path, collector: tuple[str, list[bytes]]
) -> None:
    """The runner wires the exporter from the config: a real (round-0 only) loop reaches the collector."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    endpoint, bodies = collector
    run_dir = tmp_path / "run"
    args = tiny_run_args(model_cache, run_dir, rounds=0)
    result = teachloop(
        *args, "--set", f"tracing.otlp_endpoint={endpoint}", cwd=tmp_path, model_cache=model_cache
    )
    assert result.returncode == 0, result.stderr
    names = exported_span_names(bodies)
    stored = [s.name for s in read_spans(run_dir / "traces.sqlite")]
    assert sorted(names) == sorted(stored)
    assert {"loop", "setup", "evaluate", "student.generate"} <= set(names)


@pytest.mark.parametrize("where", ["teacher.llm.base_url", "teacher.llm.endpoints.judge.base_url"])
def test_a_base_url_with_credentials_is_refused_not_saved(where: str) -> None:
    """config.yaml is the run's resumable config: a password in it would be on disk, and a scrubbed
    one would resume against a different endpoint, so such a URL is refused up front."""
    data: dict[str, Any] = {}
    node = data
    *parents, leaf = where.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = "https://proxyuser:hunter2pass@proxy.example.com/v1"
    with pytest.raises(ConfigError, match="api_key_env") as err:
        build_config(data)
    assert where in str(err.value) and "hunter2pass" not in str(err.value)
    node[leaf] = "https://proxy.example.com/v1"
    build_config(data)


@pytest.mark.parametrize(
    "setting",
    [
        "teacher.llm.base_url=http://proxyuser:hunter2pass@127.0.0.1:9/v1",
        "env_options.api_key=hunter2pass",
        "env_options.note=use sk-proj-hunter2passhunter2pass",
    ],
)
def test_a_run_with_a_secret_in_its_config_writes_nothing(
    setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    code = cli_in_process(
        "run", "--student", "tiny-random-llama", "--run-dir", str(run_dir), "--set", setting
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert not run_dir.exists()
    assert "hunter2pass" not in err and setting.split("=")[0] in err


def test_the_reports_config_section_carries_no_secret(tmp_path: Path) -> None:
    """A config.yaml edited by hand (or written by an older teachloop) with secrets in it: the
    report shows the config with each of them redacted."""
    run = tmp_path / "edited"
    run.mkdir()
    config = yaml.safe_load(RunConfig().to_yaml())
    config["teacher"]["llm"]["base_url"] = "https://proxyuser:hunter2pass@proxy.example.com/v1"
    config["env_options"] = {
        "api_keys": ["plainkey-one"],
        "note": f"key {SECRETS[0]}",
        "password": "pw-plain",
    }
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    page = render_report(RunData(run))
    for secret in ["hunter2pass", "proxyuser", "plainkey-one", SECRETS[0], "pw-plain"]:
        assert secret not in page, secret
    assert "proxy.example.com/v1" in page and page.count(REDACTED) >= 4
