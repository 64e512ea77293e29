"""The teacher LLM client: any OpenAI-compatible endpoint, through the ``openai`` SDK.

What a long unattended loop needs from a client, in one place:
- concurrency: requests run on asyncio with a semaphore (``teacher.llm.concurrency``);
- retries: ``tenacity`` with exponential backoff and jitter on rate limits (honouring
  ``Retry-After``), 5xx answers, timeouts, dropped connections and garbled response bodies; other
  errors (a bad request, a wrong key) fail at once. The SDK's own retries are off, so every retry
  is counted here;
- structured replies: a pydantic schema per reply, parsed out of plain text (``llm_json``); a
  reply that does not validate gets ONE repair request showing the model its reply and the error;
  a reply still malformed after that is kept raw, counted and traced, and the caller falls back
  (to the heuristic brain): malformed output never stops the loop;
- a response cache keyed by the full request (``llm_cache``), so a rerun or resume is free;
- accounting: calls, cache hits, retries, failures, malformed and repaired replies, tokens and
  cost per role;
- a ``llm`` trace span for every request (role, model, purpose, cache hit, retries, errors).

API keys are read from the environment variable the config names, live only inside this object
and the SDK's HTTP headers, and are scrubbed from every text this module writes or logs (replies,
error messages), so a server that echoes a key back cannot leak it into traces.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import openai
from pydantic import BaseModel, ConfigDict
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential, wait_random

from teachloop.foundation.errors import ConfigError
from teachloop.foundation.redact import redact_text
from teachloop.foundation.types import Message
from teachloop.llm.cache import CachedReply, ResponseCache, request_key
from teachloop.llm.config import LLMConfig, LLMRole
from teachloop.llm.parsing import ReplyError, parse_reply, schema_hint
from teachloop.llm.templates import render
from teachloop.llm.usage import RoleUsage
from teachloop.tracing.progress import report
from teachloop.tracing.spans import SpanHandle, Tracer

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

REDACTED = "[REDACTED]"
#: What the SDK is given when a local server needs no key (it refuses to start without one).
NO_KEY = "no-key"
_MAX_REPAIR_REPLY_CHARS = 3000
_MIN_SCRUBBED_KEY_CHARS = 4


class ChatRequest(BaseModel):
    """One chat completion request. ``sample`` tells independent samples of one prompt apart in the
    cache (three answers to one question are three requests); it is never sent to the server."""

    model_config = ConfigDict(frozen=True)

    role: LLMRole
    messages: list[Message]
    temperature: float = 0.0
    max_tokens: int | None = None
    sample: int = 0


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    retries: int = 0


@dataclass
class Structured(Generic[M]):
    """A structured reply: ``value`` when it validated (maybe after repair), else ``None`` beside
    the raw text and the reason, so the caller can fall back and the run keeps the evidence."""

    value: M | None
    raw: str
    repaired: bool = False
    error: str | None = None


class LLMError(Exception):
    """A request that failed for good: retries spent, or an error no retry can fix."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str | None
    model: str
    api_key_env: str


def is_transient(err: BaseException) -> bool:
    """Errors worth retrying: rate limits, server errors, timeouts, lost connections, garbled bodies."""
    if isinstance(err, openai.APIConnectionError | openai.APIResponseValidationError | json.JSONDecodeError):
        return True  # APITimeoutError is an APIConnectionError
    if isinstance(err, openai.APIStatusError):
        return err.status_code in (408, 409, 429) or err.status_code >= 500
    return False


def _describe(err: BaseException) -> str:
    if isinstance(err, openai.APIStatusError):
        return f"{type(err).__name__} (HTTP {err.status_code}): {err.message}"
    return f"{type(err).__name__}: {err}"


def _retry_after(err: BaseException | None) -> float | None:
    if not isinstance(err, openai.APIStatusError):
        return None
    value = err.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _usage(response: Any) -> tuple[int, int]:
    usage = getattr(response, "usage", None)
    return (int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0))


def resolve_endpoints(settings: LLMConfig, roles: list[LLMRole]) -> dict[LLMRole, Endpoint]:
    """Each role's endpoint: its override where set, else the teacher's defaults."""
    out = {}
    for role in roles:
        override = settings.endpoints.get(role)
        model = (override.model if override else None) or settings.model
        if not model:
            raise ConfigError(f"the openai brain of {role} needs a model: pass --teacher-model")
        out[role] = Endpoint(
            base_url=(override.base_url if override else None) or settings.base_url,
            model=model,
            api_key_env=(override.api_key_env if override else None) or settings.api_key_env,
        )
    return out


def read_keys(endpoints: dict[LLMRole, Endpoint]) -> dict[str, str]:
    """API keys by variable name, read from the environment; a local server may go without one."""
    keys: dict[str, str] = {}
    for endpoint in endpoints.values():
        key = os.environ.get(endpoint.api_key_env, "")
        if not key and endpoint.base_url is None:
            raise ConfigError(
                f"the OpenAI API needs a key: set the environment variable {endpoint.api_key_env} "
                "(or point --teacher-base-url at a local server)"
            )
        keys[endpoint.api_key_env] = keys.get(endpoint.api_key_env) or key or NO_KEY
    return keys


#: Where the SDK sends requests when no base URL is set.
OPENAI_BASE_URL = "https://api.openai.com/v1"
_MAX_REACH_TIMEOUT_S = 10.0


def check_reachable(endpoints: dict[LLMRole, Endpoint], timeout_s: float) -> None:
    """Fail before a run starts (or resumes) when a teacher endpoint is down.

    Mid-run, a request that fails for good makes its role fall back to the heuristic brain; at
    the start that would quietly turn a whole LLM-teacher run into a heuristic one, so a server
    that cannot be connected to is an error instead. Anything that answers ``GET /models`` (a 404
    or 401 included), or accepts the connection and is slow to answer, counts as up: the client's
    retries handle a slow server.
    """
    timeout = httpx.Timeout(min(timeout_s, _MAX_REACH_TIMEOUT_S))
    for base_url in sorted({e.base_url or OPENAI_BASE_URL for e in endpoints.values()}):
        shown = redact_text(base_url)
        try:
            httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise ConfigError(
                f"teacher endpoint {shown!r} is not an http(s) URL, e.g. http://127.0.0.1:8000/v1"
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            raise ConfigError(
                f"teacher endpoint {shown} is not reachable ({redact_text(str(err)) or type(err).__name__}): "
                "start the server or fix --teacher-base-url, then try again"
            ) from None
        except httpx.HTTPError:
            pass  # connected, then slow or odd: up, as far as this check can tell


class Teacher:
    """One per run: endpoints, keys, cache, usage. ``run`` executes async agent work on it."""

    def __init__(
        self, settings: LLMConfig, roles: list[LLMRole], tracer: Tracer, cache: ResponseCache | None
    ) -> None:
        self.settings = settings
        self.tracer = tracer
        self.cache = cache
        self._endpoints = resolve_endpoints(settings, roles)
        self._keys = read_keys(self._endpoints)
        self._usage: dict[str, RoleUsage] = {}
        self._backoff = wait_exponential(
            multiplier=settings.backoff_s, max=settings.backoff_max_s
        ) + wait_random(0, settings.backoff_s)

    def __repr__(self) -> str:
        return f"Teacher(roles={sorted(self._endpoints)})"

    # -- configuration ----------------------------------------------------------------------

    def endpoint(self, role: LLMRole) -> Endpoint:
        try:
            return self._endpoints[role]
        except KeyError:
            raise ConfigError(f"role {role} does not use the openai brain in this run") from None

    def scrub(self, text: str) -> str:
        """``text`` with every API key this teacher holds replaced."""
        for key in self._keys.values():
            if key != NO_KEY and len(key) >= _MIN_SCRUBBED_KEY_CHARS:
                text = text.replace(key, REDACTED)
        return text

    # -- accounting -------------------------------------------------------------------------

    def _account(self, role: str, **counts: float) -> None:
        current = self._usage.get(role, RoleUsage())
        self._usage[role] = current.add(RoleUsage(**counts))
        spent = RoleUsage()
        for usage in self._usage.values():
            spent = spent.add(usage)
        report(  # live progress of the node's calls so far (open-ended: no total)
            "llm calls",
            spent.requests - spent.retries + spent.cache_hits,
            failed=spent.failures,
            retried=spent.retries,
            tokens=spent.prompt_tokens + spent.completion_tokens,
        )

    def take_usage(self) -> dict[str, RoleUsage]:
        """Usage per role since the last call (each node reports what it spent)."""
        usage, self._usage = self._usage, {}
        return usage

    def cost(self, role: LLMRole, prompt_tokens: int, completion_tokens: int) -> float:
        """At the price of the model ``role`` talks to."""
        return self.settings.price(self.endpoint(role).model).cost(prompt_tokens, completion_tokens)

    # -- running ----------------------------------------------------------------------------

    def run(self, work: Callable[[TeacherSession], Awaitable[T]]) -> T:
        """Run async agent work to completion from synchronous code (a graph node)."""

        async def main() -> T:
            session = TeacherSession(self)
            try:
                return await work(session)
            finally:
                await session.aclose()

        return asyncio.run(main())

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, or the server's ``Retry-After`` when it asks for longer."""
        base = self._backoff(state)
        err = state.outcome.exception() if state.outcome else None
        asked = _retry_after(err)
        return max(base, min(asked, self.settings.backoff_max_s)) if asked is not None else base


@dataclass
class _Attempts:
    retries: int = 0
    errors: list[str] = field(default_factory=list)


class TeacherSession:
    """The async side of a ``Teacher`` inside one event loop: SDK clients and the semaphore."""

    def __init__(self, teacher: Teacher) -> None:
        self.teacher = teacher
        self.settings = teacher.settings
        self._semaphore = asyncio.Semaphore(teacher.settings.concurrency)
        self._clients: dict[tuple[str | None, str], openai.AsyncOpenAI] = {}

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def _client(self, endpoint: Endpoint) -> openai.AsyncOpenAI:
        slot = (endpoint.base_url, endpoint.api_key_env)
        if slot not in self._clients:
            self._clients[slot] = openai.AsyncOpenAI(
                api_key=self.teacher._keys[endpoint.api_key_env],
                base_url=endpoint.base_url,
                timeout=self.settings.timeout_s,
                max_retries=0,
            )
        return self._clients[slot]

    # -- public -----------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, round_: int | None = None, purpose: str = "ask") -> Reply:
        """A plain-text reply. Raises LLMError when the request fails for good."""
        reply, _, _ = await self._call(request, round_, purpose, None)
        return reply

    async def ask(
        self, request: ChatRequest, schema: type[M], round_: int | None = None, purpose: str = "ask"
    ) -> Structured[M]:
        """A reply validated against ``schema``, with one repair request; never raises for bad output."""
        role = request.role
        try:
            reply, value, first_error = await self._call(request, round_, purpose, schema)
        except LLMError as err:
            return Structured(value=None, raw="", error=str(err))
        if value is not None:
            return Structured(value=value, raw=reply.text)
        repair = ChatRequest(
            role=role,
            messages=[
                *request.messages,
                Message(role="assistant", content=reply.text[:_MAX_REPAIR_REPLY_CHARS]),
                *[
                    m
                    for m in render("repair", error=first_error, schema=schema_hint(schema))
                    if m.role == "user"
                ],
            ],
            temperature=0.0,
            max_tokens=request.max_tokens,
            sample=request.sample,
        )
        try:
            repaired, value, error = await self._call(
                repair, round_, "repair" if purpose == "ask" else f"{purpose}.repair", schema
            )
        except LLMError as err:
            self.teacher._account(role, malformed=1)
            log.warning("%s reply malformed and its repair failed: %s", role, err)
            return Structured(value=None, raw=reply.text, error=f"{first_error}; repair failed: {err}")
        if value is not None:
            self.teacher._account(role, repaired=1)
            return Structured(value=value, raw=repaired.text, repaired=True)
        self.teacher._account(role, malformed=1)
        log.warning("%s reply still malformed after a repair request: %s", role, error)
        return Structured(value=None, raw=reply.text, error=f"{first_error}; after repair: {error}")

    # -- internals --------------------------------------------------------------------------

    def _body(self, request: ChatRequest, endpoint: Endpoint) -> dict[str, Any]:
        return {
            "model": endpoint.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens or self.settings.max_tokens,
        }

    async def _call(
        self, request: ChatRequest, round_: int | None, purpose: str, schema: type[M] | None
    ) -> tuple[Reply, M | None, str]:
        """The reply, its parsed value (None without a schema or when it does not validate) and
        the parse error ("" when none)."""
        teacher = self.teacher
        endpoint = teacher.endpoint(request.role)
        body = self._body(request, endpoint)
        key = request_key({**body, "sample": request.sample})
        inputs = {k: v for k, v in body.items() if k != "model"} | {"sample": request.sample}
        with teacher.tracer.span(
            "llm",
            f"{request.role}.{purpose}",
            round=round_,
            inputs=json.loads(teacher.scrub(json.dumps(inputs, ensure_ascii=False))),
            role=request.role,
            model=endpoint.model,
            purpose=purpose,
        ) as span:
            cached = teacher.cache.get(key) if teacher.cache is not None else None
            if cached is not None:
                reply = Reply(**cached.model_dump(), cached=True)
                teacher._account(request.role, cache_hits=1)
            else:
                reply = await self._send(request.role, endpoint, body, span)
                if teacher.cache is not None:
                    teacher.cache.put(
                        key,
                        endpoint.model,
                        CachedReply(
                            text=reply.text,
                            prompt_tokens=reply.prompt_tokens,
                            completion_tokens=reply.completion_tokens,
                        ),
                    )
            span.outputs = reply.text
            span.prompt_tokens, span.completion_tokens = reply.prompt_tokens, reply.completion_tokens
            span.attrs["cache_hit"] = reply.cached
            span.attrs["cost_usd"] = (
                0.0
                if reply.cached
                else teacher.cost(request.role, reply.prompt_tokens, reply.completion_tokens)
            )
            value: M | None = None
            error = ""
            if schema is not None:
                try:
                    value = parse_reply(reply.text, schema)
                except ReplyError as err:
                    error = str(err)
                    span.attrs["parse_error"] = error
                span.attrs["parsed"] = value is not None
            return reply, value, error

    async def _send(self, role: LLMRole, endpoint: Endpoint, body: dict[str, Any], span: SpanHandle) -> Reply:
        teacher = self.teacher
        attempts = _Attempts()

        def note(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome else None
            attempts.retries += 1
            attempts.errors.append(teacher.scrub(_describe(err)) if err else "unknown error")

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=teacher.wait,
            retry=retry_if_exception(is_transient),
            before_sleep=note,
            reraise=True,
        )
        client = self._client(endpoint)
        try:
            async for attempt in retrying:
                with attempt:
                    async with self._semaphore:
                        response = await client.chat.completions.create(**body)
        except (openai.OpenAIError, ValueError) as err:  # ValueError: a body that is not JSON
            final = teacher.scrub(_describe(err))
            attempts.errors.append(final)
            span.attrs.update(retries=attempts.retries, errors=attempts.errors)
            teacher._account(role, requests=attempts.retries + 1, retries=attempts.retries, failures=1)
            raise LLMError(
                f"{role} request failed after {attempts.retries + 1} attempt(s): {final}"
            ) from None
        choices = getattr(response, "choices", None) or []
        text = (choices[0].message.content if choices and choices[0].message else None) or ""
        prompt_tokens, completion_tokens = _usage(response)
        span.attrs.update(retries=attempts.retries, errors=attempts.errors)
        teacher._account(
            role,
            requests=attempts.retries + 1,
            retries=attempts.retries,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=teacher.cost(role, prompt_tokens, completion_tokens),
        )
        return Reply(
            text=teacher.scrub(text),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            retries=attempts.retries,
        )
