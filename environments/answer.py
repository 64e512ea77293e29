"""Pull the final answer out of a free-form completion, the same way for every model.

Fair to the student: it is taught to answer with the bare result, but an answer stated as
"The answer is 42." or ``\\boxed{42}`` still reaches the verifier as ``42``. The verifier, not
the parser, decides what is right.
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_STATED = re.compile(r"(?:final answer|answer|result)\s*(?:is|:|=)\s*(.+)", re.IGNORECASE)
_STRIP = " \t\"'`*"


def extract_answer(completion: str) -> str:
    text = completion.strip()
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1].strip()
    stated = _STATED.search(text)
    if stated:
        text = stated.group(1)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    return first_line.strip(_STRIP).removesuffix(".").strip(_STRIP)
