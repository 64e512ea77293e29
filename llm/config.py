"""Settings of the teacher LLM client: endpoint, per-role overrides, concurrency, retries, cache, prices."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from teachloop.foundation.settings import Settings
from teachloop.llm.prices import DEFAULT_PRICES, FREE, ModelPrice

#: Roles that talk to the teacher LLM (each has its own endpoint override, usage and cost).
LLMRole = Literal[
    "diagnoser", "planner", "synthesizer", "reviser", "criteria_manager", "criteria_worker", "judge"
]


def no_credentials(url: str | None) -> str | None:
    """Refuse a base URL that carries ``user:password@``: the config is saved with the run as
    config.yaml (what ``resume`` reads), so a credential in it would be written to disk. Scrubbing
    it instead would make the saved config a different, failing endpoint on resume."""
    if url is not None and urlsplit(url).netloc.rpartition("@")[1]:
        raise ValueError(
            "a base URL may not carry user:password@ (the config is saved in the run directory): "
            "put the key in the environment variable named by api_key_env, sent as a Bearer token"
        )
    return url


class EndpointConfig(Settings):
    """Where one role's LLM lives; unset fields fall back to ``teacher.llm``'s."""

    base_url: str | None = Field(
        None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"
    )
    model: str | None = Field(None, description="model name the endpoint serves")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")

    _base_url_has_no_credentials = field_validator("base_url")(no_credentials)


class LLMConfig(Settings):
    """The teacher LLM client. The API key is read from ``api_key_env`` at run time and never stored."""

    base_url: str | None = Field(
        None, description="OpenAI-compatible base URL (vllm serve, transformers serve, Ollama); unset: OpenAI"
    )
    model: str | None = Field(None, description="teacher model name; required when any role uses openai")
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="name of the environment variable holding the API key (a keyless local server works)",
    )
    endpoints: dict[LLMRole, EndpointConfig] = Field(
        default_factory=dict, description="per-role endpoint overrides, e.g. a locally trained reviser"
    )
    concurrency: int = Field(8, ge=1, le=1024, description="requests in flight at once")
    timeout_s: float = Field(120.0, gt=0, description="seconds before one request is abandoned and retried")
    max_retries: int = Field(
        5, ge=0, le=50, description="retries on rate limits, 5xx, timeouts, lost connections"
    )
    backoff_s: float = Field(1.0, ge=0, description="first retry wait; doubles per retry, with jitter")
    backoff_max_s: float = Field(30.0, ge=0, description="longest wait between retries")
    temperature: float = Field(0.8, ge=0, le=2, description="sampling temperature of the writing roles")
    max_tokens: int = Field(1024, ge=1, description="reply length limit per request")
    cache: bool = Field(True, description="reuse replies to identical requests (reruns and resumes are free)")
    cache_path: Path | None = Field(None, description="a shared response cache file; default: in the run dir")
    prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="USD per million prompt and completion tokens by model name, for cost accounting and "
        "stop.max_cost_usd; entries given here add to or replace the default table (llm/prices.py)",
    )

    _base_url_has_no_credentials = field_validator("base_url")(no_credentials)

    @field_validator("prices", mode="before")
    @classmethod
    def _over_default_table(cls, value: Any) -> Any:
        return {**DEFAULT_PRICES, **value} if isinstance(value, dict) else value

    def price(self, model: str) -> ModelPrice:
        """What ``model``'s tokens cost; a model missing from the table (a local server) costs nothing."""
        return self.prices.get(model, FREE)


#: Flat prices of an earlier teachloop, for whichever model ``teacher.llm.model`` named.
OLD_PRICE_KEYS = ("prompt_price", "completion_price")


def with_model_prices(llm: dict[str, Any]) -> dict[str, Any]:
    """A saved ``teacher.llm`` section whose flat ``prompt_price``/``completion_price`` become the
    price of its model in ``prices`` (what those runs were charged at)."""
    if not any(k in llm for k in OLD_PRICE_KEYS):
        return llm
    out = {k: v for k, v in llm.items() if k not in OLD_PRICE_KEYS}
    if out.get("model"):
        flat = {"prompt": llm.get("prompt_price", 0.0), "completion": llm.get("completion_price", 0.0)}
        out["prices"] = {**out.get("prices", {}), out["model"]: flat}
    return out
