"""Types shared by every layer: a chat message is what the student is asked and what the teacher
LLM is sent, and a split names where results and artifacts belong, so they live below both."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

#: The fixed evaluation splits: agents see dev results; only reports see test.
Split = Literal["dev", "test"]
SPLITS: tuple[Split, ...] = ("dev", "test")


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str
