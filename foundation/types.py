"""Types shared by every layer: a chat message is what the student is asked and what the teacher
LLM is sent, so it lives below both."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str
