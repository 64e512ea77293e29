"""Redaction: keep API keys and passwords out of everything a run writes about itself.

Traces, reports and exported spans hold the inputs and outputs of agents and tools, and an LLM
client's request may carry an ``Authorization`` header or an ``api_key`` argument; an error
message may quote a URL with a token in it. Two rules catch these before anything is stored:
the value of any mapping key that names a secret (``api_key``, ``access_token``, ``password``,
``Authorization``, ...) is replaced whole, and text that looks like a credential (``sk-...``,
``Bearer ...``, ``hf_...``, ``key=...`` pairs, the ``user:password@`` of a URL, ...) is replaced
wherever it appears. Only text is redacted by key: ``max_new_tokens: 16`` is a count, not a secret,
but ``api_keys: [...]`` or ``credentials: {user: ..., password: ...}`` hold text and go whole.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(^|[_\-.])(api[_\-]?key|key|token|secret|password|passwd|pwd|authorization|auth|credentials?|cookie)s?$",
    re.IGNORECASE,
)

_SECRET_TEXT = re.compile(
    "|".join(
        [
            r"\bsk-[A-Za-z0-9_\-]{12,}",  # OpenAI and OpenAI-style keys (sk-..., sk-proj-...)
            r"\bsk-ant-[A-Za-z0-9_\-]{12,}",  # Anthropic
            r"\bhf_[A-Za-z0-9]{20,}",  # Hugging Face
            r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub
            r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack
            r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
            r"\blsv2_[A-Za-z0-9_]{20,}",  # LangSmith
            r"\bAIza[0-9A-Za-z_\-]{30,}",  # Google
        ]
    )
)
#: ``Authorization`` header values: the scheme stays readable, the credential goes.
_AUTH_SCHEME = re.compile(
    r"\b([Bb]earer|BEARER)\s+[A-Za-z0-9._~+/=\-]{8,}|\b(Basic)\s+(?=[A-Za-z+/]*[0-9=])[A-Za-z0-9+/]{12,}=*"
)

#: ``api_key=abc``, ``"password": "abc"``, ``token: abc`` inside free text (URLs, error messages).
_SECRET_PAIR = re.compile(
    r"(?i)\b((?:[a-z0-9]+[_\-])*(?:api[_\-]?key|token|secret|password|passwd)s?)"
    r"(\"?\s*[:=]\s*\"?)(?![\d.]+\b)([^\s\"'&,;}]{6,})"
)


#: The userinfo of a URL (``https://user:password@host``, ``https://TOKEN@host``): all of it goes,
#: since the user part is often the token itself. It ends at the last ``@`` before the path.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#@]*(?:@[^\s/?#@]*)*@(?=[^\s/?#@])")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def _holds_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    if isinstance(value, dict):
        return any(_holds_text(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_text(v) for v in value)
    return False


def is_secret_item(key: Any, value: Any) -> bool:
    """Whether ``value`` under mapping key ``key`` is replaced whole: the key names a secret and the
    value holds text (a string, or a list or mapping with one in it), not only counts."""
    return is_secret_key(str(key)) and _holds_text(value)


def redact_text(text: str) -> str:
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = _SECRET_TEXT.sub(REDACTED, text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", text)
    return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like: dicts, lists, scalars) with secrets replaced."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: REDACTED if is_secret_item(k, v) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def secret_paths(value: Any, where: str = "") -> list[str]:
    """The dotted paths in ``value`` that ``redact`` would change: where a secret sits."""
    if isinstance(value, str):
        return [where or "value"] if redact_text(value) != value else []
    if isinstance(value, dict):
        found: list[str] = []
        for k, v in value.items():
            path = f"{where}.{k}" if where else str(k)
            found += [path] if is_secret_item(k, v) else secret_paths(v, path)
        return found
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in secret_paths(v, f"{where}[{i}]")]
    return []
