"""Pull the final answer out of a free-form completion, the same way for every model.

The rule is "one answer, stated once", so that hedging never pays: a verifier sees exactly one
candidate, and a completion that offers several gets none (it scores like a wrong answer).

1. ``\\boxed{...}``: when the completion boxes anything, the boxed text is the answer; boxes that
   disagree (``\\boxed{3} or \\boxed{4}``) give no answer.
2. Otherwise a stated answer: the rest of the line after "final answer:", "the answer is",
   "answer:", "result =" (and the like). "Final answer" statements win over the others; statements
   of the winning kind that disagree (a list of guesses, the prompt repeated with its own
   "answer:" lines) give no answer.
3. Otherwise the whole completion is the answer, every line of it: text after a bare answer (a
   second guess, the prompt repeated, a flood) is part of what the verifier compares, not dropped.

Surrounding quotes, backticks, asterisks and a trailing period are stripped ("'42.'" gives
``42``). The student is taught to answer with the bare result, which rule 3 leaves unchanged.
The verifier, not the parser, decides what is right; the parser only decides what was said.
"""

from __future__ import annotations

import re

_MARK = r"\b(?P<kind>final answer|answer|result)\s*(?:is\s*:?|:|=)"
#: A statement's value runs to the end of its line or to the next statement on that line.
_STATED = re.compile(
    _MARK + r"[ \t]*(?P<value>(?:(?!" + _MARK.replace("?P<kind>", "?:") + r")[^\n])*)", re.IGNORECASE
)
_STRIP = " \t\r\n\"'`*"
NO_ANSWER = ""


def _clean(text: str) -> str:
    return text.strip(_STRIP).removesuffix(".").strip(_STRIP)


def _same(text: str) -> str:
    return " ".join(text.casefold().split())


def boxed(text: str) -> list[str]:
    """The contents of every ``\\boxed{...}`` (braces may nest, as in ``\\boxed{\\frac{3}{4}}``)."""
    found = []
    start = text.find("\\boxed{")
    while start >= 0:
        depth, i = 1, start + len("\\boxed{")
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found.append(text[start + len("\\boxed{") : i - 1])
        start = text.find("\\boxed{", i if depth == 0 else start + 1)
    return found


def _next_line(text: str, end: int) -> str:
    """ "Answer:" alone on its line states what the next non-empty line says."""
    return next((line for line in text[end:].splitlines() if line.strip()), "")


def _one(candidates: list[str]) -> str:
    """The candidate when they all say the same; no answer when they disagree."""
    cleaned = [_clean(c) for c in candidates]
    return cleaned[0] if len({_same(c) for c in cleaned}) == 1 else NO_ANSWER


def extract_answer(completion: str) -> str:
    """The one answer a completion states, or ``""`` when it states none or several."""
    text = completion.strip()
    in_boxes = boxed(text)
    if in_boxes:
        return _one(in_boxes)
    statements = [
        (m["kind"].lower(), m["value"] or _next_line(text, m.end())) for m in _STATED.finditer(text)
    ]
    final = [value for kind, value in statements if kind == "final answer"]
    if final or statements:
        return _one(final or [value for _, value in statements])
    return _clean(text)
