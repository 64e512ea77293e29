"""The teacher client: JSON extraction, repair, cache, retry classification, accounting, redaction.

Requests go over real HTTP to a loopback server (tests/fake_openai.py) through the real openai SDK.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from fake_openai import FakeOpenAI
from pydantic import BaseModel

from teachloop.foundation.errors import ConfigError
from teachloop.foundation.types import Message
from teachloop.llm.cache import CachedReply, ResponseCache, request_key
from teachloop.llm.client import ChatRequest, Teacher, is_transient, read_keys, resolve_endpoints
from teachloop.llm.config import LLMConfig
from teachloop.llm.parsing import ReplyError, json_values, parse_reply
from teachloop.llm.usage import RoleUsage
from teachloop.tracing.spans import Tracer, read_spans

FAKE_KEY = "sk-planted-0123456789abcdefTEST"


class Point(BaseModel):
    x: int
    y: int


def _request(text: str = "where?", sample: int = 0) -> ChatRequest:
    return ChatRequest(role="diagnoser", messages=[Message(role="user", content=text)], sample=sample)


def _teacher(tmp_path: Path, base_url: str, cache: bool = True, **settings: Any) -> Teacher:
    cfg = LLMConfig(
        base_url=base_url,
        model="fake-model",
        timeout_s=settings.pop("timeout_s", 2.0),
        backoff_s=0.01,
        backoff_max_s=0.05,
        **settings,
    )
    tracer = Tracer(tmp_path / "traces.sqlite")
    return Teacher(cfg, ["diagnoser"], tracer, ResponseCache(tmp_path / "cache.sqlite") if cache else None)


# -- JSON out of text --------------------------------------------------------------------------


def test_json_values_finds_balanced_values_around_prose_fences_and_braces_in_strings() -> None:
    text = 'Sure! ```json\n{"a": "x}y{", "b": [1, {"c": 2}]}\n``` and also [3, 4] but not {broken'
    assert json_values(text) == [{"a": "x}y{", "b": [1, {"c": 2}]}, [3, 4]]
    assert json_values("no json here") == []


def test_parse_reply_takes_the_first_value_the_schema_accepts() -> None:
    text = 'First {"x": "not a number"}, then {"note": 1}, then the answer {"x": 1, "y": 2}.'
    assert parse_reply(text, Point) == Point(x=1, y=2)


def test_naive_brace_slicing_would_fail_where_parse_reply_does_not() -> None:
    text = 'I think {"x": 1, "y": 2} is right; the format was {like this}.'
    assert parse_reply(text, Point) == Point(x=1, y=2)


def test_parse_reply_explains_what_is_wrong() -> None:
    with pytest.raises(ReplyError, match="no JSON"):
        parse_reply("\n\n\n", Point)
    with pytest.raises(ReplyError, match="y: Field required"):
        parse_reply('{"x": 1}', Point)


# -- requests, repair, fallback ----------------------------------------------------------------


def test_valid_reply_is_parsed_and_traced(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: 'Here you go: {"x": 3, "y": 4}') as server:
        teacher = _teacher(tmp_path, server.base_url)
        result = teacher.run(lambda s: s.ask(_request(), Point, round_=2))
    assert result.value == Point(x=3, y=4) and not result.repaired and result.error is None
    [span] = read_spans(tmp_path / "traces.sqlite")
    assert span.kind == "llm" and span.name == "diagnoser.ask" and span.round == 2
    attrs = json.loads(span.attrs or "{}")
    assert attrs["parsed"] is True and attrs["cache_hit"] is False and attrs["retries"] == 0
    assert span.prompt_tokens and span.completion_tokens


def test_malformed_reply_gets_one_repair_showing_the_error(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def responder(body: dict[str, Any]) -> str:
        seen.append(body)
        return '{"x": 1, "y": 2}' if len(seen) == 2 else '{"x": 1}'

    with FakeOpenAI(responder) as server:
        teacher = _teacher(tmp_path, server.base_url)
        result = teacher.run(lambda s: s.ask(_request(), Point))
    assert result.value == Point(x=1, y=2) and result.repaired
    repair = seen[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"x": 1}'}
    assert "y: Field required" in repair[-1]["content"] and '"properties"' in repair[-1]["content"]
    assert teacher.take_usage()["diagnoser"].repaired == 1
    names = [s.name for s in read_spans(tmp_path / "traces.sqlite")]
    assert names == ["diagnoser.ask", "diagnoser.repair"]


def test_reply_still_malformed_after_repair_is_kept_raw_and_counted(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: "I would rather not.") as server:
        teacher = _teacher(tmp_path, server.base_url)
        result = teacher.run(lambda s: s.ask(_request(), Point))
        assert server.counts["requests"] == 2  # the ask and exactly one repair
    assert result.value is None and result.raw == "I would rather not."
    assert result.error is not None and "no JSON" in result.error
    usage = teacher.take_usage()["diagnoser"]
    assert usage.malformed == 1 and usage.repaired == 0 and usage.requests == 2
    spans = read_spans(tmp_path / "traces.sqlite")
    assert all(json.loads(s.attrs or "{}")["parsed"] is False for s in spans)


# -- cache -------------------------------------------------------------------------------------


def test_cache_answers_identical_requests_and_tells_samples_apart(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: '{"x": 1, "y": 1}') as server:
        teacher = _teacher(tmp_path, server.base_url)
        teacher.run(lambda s: s.ask(_request(), Point))
        teacher.run(lambda s: s.ask(_request(), Point))
        teacher.run(lambda s: s.ask(_request(sample=1), Point))
        assert server.counts["requests"] == 2
    usage = teacher.take_usage()["diagnoser"]
    assert usage.cache_hits == 1 and usage.requests == 2
    hit = [json.loads(s.attrs or "{}")["cache_hit"] for s in read_spans(tmp_path / "traces.sqlite")]
    assert hit == [False, True, False]


def test_cache_survives_a_new_process_and_key_covers_every_setting(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0}
    cache.put(request_key(body), "m", CachedReply(text="hello", prompt_tokens=3, completion_tokens=1))
    cache.close()
    again = ResponseCache(tmp_path / "c.sqlite")
    assert again.get(request_key(body)) == CachedReply(text="hello", prompt_tokens=3, completion_tokens=1)
    for change in ({"model": "other"}, {"temperature": 0.5}, {"messages": []}):
        assert again.get(request_key({**body, **change})) is None
    assert request_key(dict(reversed(body.items()))) == request_key(body)


def test_a_disabled_cache_asks_every_time(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: '{"x": 1, "y": 1}') as server:
        teacher = _teacher(tmp_path, server.base_url, cache=False)
        for _ in range(2):
            teacher.run(lambda s: s.ask(_request(), Point))
        assert server.counts["requests"] == 2


# -- retries -----------------------------------------------------------------------------------


def _status_error(code: int) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(code, request=request, json={"error": {"message": "x"}})
    cls = {429: openai.RateLimitError, 400: openai.BadRequestError, 401: openai.AuthenticationError}
    return cls.get(code, openai.InternalServerError)("x", response=response, body=None)


def test_retry_classification() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1/")
    assert (
        is_transient(_status_error(429))
        and is_transient(_status_error(500))
        and is_transient(_status_error(503))
    )
    assert is_transient(openai.APITimeoutError(request=request))
    assert is_transient(openai.APIConnectionError(request=request))
    assert is_transient(json.JSONDecodeError("x", "{", 0))
    assert not is_transient(_status_error(400)) and not is_transient(_status_error(401))
    assert not is_transient(ValueError("a bug"))


@pytest.mark.parametrize("fault", ["429", "500", "hang", "broken_body"])
def test_transient_faults_are_retried_then_succeed(tmp_path: Path, fault: str) -> None:
    with FakeOpenAI(
        lambda body: '{"x": 5, "y": 6}', fault_rate=0.5, faults=(fault,), hang_s=1.0, seed=3
    ) as server:
        teacher = _teacher(tmp_path, server.base_url, timeout_s=0.4, max_retries=8)
        results = teacher.run(lambda s: asyncio.gather(*(s.ask(_request(str(i)), Point) for i in range(6))))
        faults, requests = server.counts[fault], server.counts["requests"]
    assert all(r.value == Point(x=5, y=6) for r in results)
    assert faults > 0
    usage = teacher.take_usage()["diagnoser"]
    # Every fault was retried; on a loaded machine a healthy reply can also miss the 0.4 s timeout
    # and be retried, so faults bound the retries from below; each retry is one more request.
    assert faults <= usage.retries == requests - 6 and usage.failures == 0
    traced = sum(json.loads(s.attrs or "{}")["retries"] for s in read_spans(tmp_path / "traces.sqlite"))
    assert traced == usage.retries


def test_retries_give_up_and_the_failure_is_counted_not_raised(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: "{}", fault_rate=1.0, faults=("500",)) as server:
        teacher = _teacher(tmp_path, server.base_url, max_retries=2)
        result = teacher.run(lambda s: s.ask(_request(), Point))
        assert server.counts["requests"] == 3
    assert result.value is None and result.error and "after 3 attempt(s)" in result.error
    usage = teacher.take_usage()["diagnoser"]
    assert usage.failures == 1 and usage.retries == 2
    [span] = read_spans(tmp_path / "traces.sqlite")
    assert span.status == "error" and len(json.loads(span.attrs or "{}")["errors"]) == 3


def test_a_bad_request_is_not_retried(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: "{}", model="served-model") as server:
        teacher = _teacher(tmp_path, server.base_url, max_retries=5)  # asks for fake-model
        result = teacher.run(lambda s: s.ask(_request(), Point))
        assert server.counts["requests"] == 1
    assert result.value is None and "BadRequestError (HTTP 400)" in (result.error or "")
    assert teacher.take_usage()["diagnoser"].retries == 0


# -- accounting and keys -----------------------------------------------------------------------


def test_tokens_and_cost_per_role(tmp_path: Path) -> None:
    """Each role pays its own model's price; a model missing from the table (a local one) costs 0."""
    with FakeOpenAI(lambda body: '{"x": 1, "y": 2} done') as server:
        cfg = LLMConfig(
            base_url=server.base_url,
            model="fake-model",
            prices={"fake-model": {"prompt": 2.0, "completion": 10.0}},
            endpoints={"planner": {"model": "local-model"}},
        )
        tracer = Tracer(tmp_path / "traces.sqlite")
        teacher = Teacher(cfg, ["diagnoser", "planner"], tracer, ResponseCache(tmp_path / "cache.sqlite"))
        teacher.run(lambda s: s.ask(_request("one two three"), Point))
        teacher.run(lambda s: s.ask(_request("one two three"), Point))  # a cache hit costs nothing
        teacher.run(lambda s: s.ask(_request("one two three").model_copy(update={"role": "planner"}), Point))
    usage = teacher.take_usage()
    assert (usage["diagnoser"].prompt_tokens, usage["diagnoser"].completion_tokens) == (3, 5)
    assert usage["diagnoser"].cost_usd == pytest.approx((3 * 2.0 + 5 * 10.0) / 1e6)
    assert usage["planner"].prompt_tokens == 3 and usage["planner"].cost_usd == 0.0
    assert LLMConfig(model="m").price("gpt-4o-mini").completion == 0.60  # the default table
    assert teacher.take_usage() == {}
    total = RoleUsage(requests=1, cost_usd=0.1).add(RoleUsage(requests=2, cost_usd=0.2))
    assert total.requests == 3 and total.cost_usd == pytest.approx(0.3)


def test_keys_come_from_the_named_variable_and_a_local_server_needs_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MY_TEACHER_KEY", FAKE_KEY)
    named = LLMConfig(model="m", api_key_env="MY_TEACHER_KEY")
    assert read_keys(resolve_endpoints(named, ["planner"])) == {"MY_TEACHER_KEY": FAKE_KEY}
    local = LLMConfig(model="m", base_url="http://127.0.0.1:1/v1")
    assert read_keys(resolve_endpoints(local, ["planner"])) == {"OPENAI_API_KEY": "no-key"}
    with pytest.raises(ConfigError, match="set the environment variable OPENAI_API_KEY"):
        read_keys(resolve_endpoints(LLMConfig(model="m"), ["planner"]))


def test_a_key_echoed_by_the_server_never_reaches_traces_or_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    with FakeOpenAI(lambda body: f"my key is {FAKE_KEY}", fault_rate=0.5, faults=("500",), seed=1) as server:
        teacher = _teacher(tmp_path, server.base_url, max_retries=6)
        teacher.run(lambda s: asyncio.gather(*(s.ask(_request(str(i)), Point) for i in range(4))))
        assert server.counts["500"] > 0
        assert all(a == f"Bearer {FAKE_KEY}" for a in server.authorizations)
    teacher.close()
    assert FAKE_KEY not in repr(teacher)
    for path in tmp_path.iterdir():
        assert FAKE_KEY.encode() not in path.read_bytes(), path
    assert any("[REDACTED]" in (s.outputs or "") for s in read_spans(tmp_path / "traces.sqlite"))


def test_concurrency_limit_is_respected(tmp_path: Path) -> None:
    with FakeOpenAI(lambda body: '{"x": 1, "y": 1}', latency_s=0.1) as server:
        teacher = _teacher(tmp_path, server.base_url, concurrency=3)
        teacher.run(lambda s: asyncio.gather(*(s.ask(_request(str(i)), Point) for i in range(12))))
        # Never more than the limit; exactly 3 at once depends on scheduling on a loaded machine.
        assert 2 <= server.max_in_flight <= 3
