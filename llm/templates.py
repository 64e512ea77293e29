"""Prompt templates: one Jinja file per agent role in ``prompts/``, rendered into chat messages.

A template holds a ``system`` block (optional) and a ``user`` block, so a person reads a role's
whole prompt in one file. Rendering uses ``StrictUndefined``: a variable the code forgot to pass
is an error, not an empty string in a prompt. The ``json`` filter writes compact JSON without
HTML escaping (Jinja's own ``tojson`` escapes ``<`` and ``&`` for web pages); the ``quote`` filter
shows data (samples, questions) to a judge as fenced JSON it cannot break out of (``llm/quoting.py``).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from teachloop.foundation.types import Message
from teachloop.llm.quoting import quote

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


def _json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["json"] = _json
    env.filters["quote"] = quote
    return env


def render(name: str, **variables: Any) -> list[Message]:
    """The chat messages of template ``prompts/<name>.jinja`` filled with ``variables``."""
    template = _environment().get_template(f"{name}.jinja")
    if "user" not in template.blocks:
        raise ValueError(f"prompt template {name}.jinja needs a {{% block user %}}")
    context = template.new_context(variables)
    messages = []
    for role in ("system", "user"):
        block = template.blocks.get(role)
        if block is not None:
            text = "".join(block(context)).strip()
            messages.append(Message(role=role, content=text))
    return messages


@cache
def template_hash(name: str) -> str:
    """``name@<12 hex digits of sha256>`` of template ``prompts/<name>.jinja``: which prompt made a
    sample an LLM wrote, recorded with it so an exported dataset says so even after prompts change."""
    digest = hashlib.sha256((PROMPTS_DIR / f"{name}.jinja").read_bytes()).hexdigest()[:12]
    return f"{name}@{digest}"
