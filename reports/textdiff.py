"""Word-level diffs of a sample's text before and after revision, for the inspector and the report.

Words are the unit a reader compares in a rewritten question; whitespace stays attached to the
word before it, so joining the pieces of either side gives that side's text back exactly.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

_TOKEN = re.compile(r"\S+\s*|\s+")


class DiffPiece(BaseModel):
    model_config = ConfigDict(frozen=True)

    op: Literal["equal", "delete", "insert"]
    text: str


def word_diff(before: str, after: str) -> list[DiffPiece]:
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    pieces: list[DiffPiece] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            pieces.append(DiffPiece(op="equal", text="".join(a[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(DiffPiece(op="delete", text="".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(DiffPiece(op="insert", text="".join(b[j1:j2])))
    return pieces
