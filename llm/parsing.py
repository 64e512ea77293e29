"""Structured replies out of plain text: find JSON in what a model said, validate it, explain failures.

Many OpenAI-compatible servers (``transformers serve``, older vLLM, Ollama without a schema) ignore
``response_format``, and models wrap JSON in prose or code fences. Slicing from the first ``{`` to
the last ``}`` breaks on two objects or a brace inside a string, so every ``{`` or ``[`` is tried as
the start of a complete JSON value (``json.JSONDecoder.raw_decode``) and the first value that the
expected schema accepts wins. When none does, the error says why, in words a repair prompt can
show the model.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from teachloop.llm.quoting import without_data

M = TypeVar("M", bound=BaseModel)

_DECODER = json.JSONDecoder()
#: Error messages shown to the model stay short enough for a repair prompt.
_MAX_ERROR_CHARS = 800


class ReplyError(ValueError):
    """A reply that holds no value the schema accepts; the message says what is wrong."""


def json_values(text: str) -> list[Any]:
    """Every complete JSON object or array in ``text``, outermost first, in order of appearance."""
    values: list[Any] = []
    index = 0
    while index < len(text):
        starts = [i for i in (text.find("{", index), text.find("[", index)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        values.append(value)
        index = end
    return values


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{where}: {e['msg']}")
    more = f" (and {err.error_count() - 5} more)" if err.error_count() > 5 else ""
    return "; ".join(parts) + more


def parse_reply(text: str, schema: type[M]) -> M:
    """The first JSON value in ``text`` that ``schema`` validates; ReplyError if there is none.
    Data blocks the model quoted back (``llm/quoting.py``) are not its reply and are skipped."""
    values = json_values(without_data(text))
    if not values:
        raise ReplyError("the reply contains no JSON object")
    first_error = ""
    for value in values:
        try:
            return schema.model_validate(value)
        except ValidationError as err:
            first_error = first_error or _describe(err)
    raise ReplyError(f"the JSON does not match the expected schema: {first_error}"[:_MAX_ERROR_CHARS])


def schema_hint(schema: type[BaseModel]) -> str:
    """The JSON schema of a reply, compact, for prompts that ask for it."""
    return json.dumps(schema.model_json_schema(), separators=(",", ":"))
