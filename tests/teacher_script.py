"""A scripted teacher for loop tests: valid replies for every role, worked out from the prompt.

It plays each role by reading what the real prompts ask (``prompts/*.jinja``): the diagnoser names
one weakness per skill, the planner splits the budget evenly, the synthesizer writes fresh
addition problems (every third with a wrong answer, so answer checks and the reviser have work),
the solver adds, the reviser corrects the answer and the judge prefers the version whose answer
is right. As CritiQ's manager it proposes ``sum_is_correct`` (right), ``first_is_better`` (position
bias) and ``answer_is_short`` (right on odd sums only); it revises by appending ``_fixed`` with a
description that checks the sum, and replaces with ``sum_checked``. Its workers side with the
correct sum under any criterion whose description says "sum", with sample A under
``first_is_better``, and with the shorter answer otherwise; as the criteria checker it says a
sample meets every criterion when its question has an even length. Repair requests get the same
valid reply as the request they repair.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from typing import Any

_ADDITION = re.compile(r"What is (\d+) \+ (\d+)\?")
#: Data blocks as the judge prompts quote them (llm/quoting.py).
_DATA = re.compile(
    r'<data name="(?P<name>[^"]*)" id="(?P<id>[0-9a-f]+)">\n(?P<body>.*?)\n</data id="(?P=id)">', re.S
)


def _data(text: str) -> dict[str, Any]:
    """The quoted data blocks of a prompt, by name."""
    return {m["name"]: json.loads(m["body"]) for m in _DATA.finditer(text)}


def _outside(text: str) -> str:
    """The prompt without its data: what the judge is actually asked."""
    return _DATA.sub("", text)


def _sum(text: str) -> int | None:
    match = _ADDITION.search(text)
    return int(match.group(1)) + int(match.group(2)) if match else None


class ScriptedTeacher:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        messages = body["messages"]
        system = messages[0]["content"]
        user = next(m["content"] for m in messages if m["role"] == "user")
        if "the diagnoser" in system:
            return self._diagnose(user)
        if "the planner" in system:
            return self._plan(user)
        if "You write training problems" in system:
            return self._synthesize(user)
        if "You solve problems" in system:
            total = _sum(user)
            return f"Adding the two numbers.\nFinal answer: {total}"
        if "You are a coach" in system:
            return self._revise(user)
        if "You judge" in system:
            return self._judge(user)
        if "manager of a data-quality team" in system:
            return self._manage(user)
        if "You compare training samples" in system:
            return self._compare(user)
        if "You check training samples" in system:
            names = re.findall(r"^- (\w+): ", _outside(user), re.MULTILINE)
            question = _data(user).get("Sample", {}).get("question")
            met = question is not None and len(question) % 2 == 0
            return json.dumps({"met": dict.fromkeys(names, met)})
        return "unexpected prompt"

    def _manage(self, user: str) -> str:
        def criterion(name: str, description: str) -> dict[str, str]:
            return {"name": name, "domain": "math", "description": description}

        if "Propose " in user:
            return json.dumps(
                {
                    "criteria": [
                        criterion("sum_is_correct", "The answer is the correct sum of the numbers."),
                        criterion("first_is_better", "The sample shown first is better than the other."),
                        criterion("answer_is_short", "The answer is the shorter of the two answers."),
                    ]
                }
            )
        if "Reflect on why" in user:
            name = re.search(r'The criterion "(\w+)"', user).group(1)  # type: ignore[union-attr]
            return json.dumps(
                criterion(f"{name}_fixed", "The answer field holds the correct sum, nothing else.")
            )
        return json.dumps(criterion("sum_checked", "Adding the numbers gives exactly the stated sum."))

    def _compare(self, user: str) -> str:
        data = _data(user)
        a, b = data["Sample A"], data["Sample B"]
        rest = _outside(user)
        ask = rest.split("Criterion", 1)[1] if "Criterion" in rest else ""

        def answer(sample: dict[str, str]) -> str:
            return sample["answer"].strip()

        def right(sample: dict[str, str]) -> bool:
            return str(_sum(sample["question"])) == answer(sample)

        if "first_is_better" in ask:
            better = "A"
        elif "sum" in ask or not ask:
            better = "A" if right(a) and not right(b) else "B" if right(b) and not right(a) else "tie"
        else:
            better = "A" if len(answer(a)) < len(answer(b)) else "B"
        return json.dumps({"better": better, "reason": "scripted"})

    def _diagnose(self, user: str) -> str:
        skills = re.search(r"one of: ([^)]+)\)", user)
        names = [s.strip() for s in skills.group(1).split(",")] if skills else []
        ids = re.findall(r"^\[(\w+)\] skill: (\S+)", user, re.MULTILINE)
        patterns = [
            {
                "name": f"{name} basics",
                "skill": name,
                "description": f"misses the basic step of {name}",
                "severity": "high",
                "evidence": [i for i, s in ids if s == name][:2],
            }
            for name in names
        ]
        return "Here is my analysis:\n" + json.dumps({"summary": "Weak everywhere.", "patterns": patterns})

    def _plan(self, user: str) -> str:
        budget = int(re.search(r"budget: (\d+)", user).group(1))  # type: ignore[union-attr]
        names = re.findall(r"^- (\S+): ", user, re.MULTILINE)
        share, extra = divmod(budget, len(names))
        allocations = [
            {
                "skill": n,
                "n": share + (i < extra),
                "difficulty": 0,
                "focus": [f"{n} basics"],
                "reason": "even",
            }
            for i, n in enumerate(names)
        ]
        return json.dumps({"allocations": allocations})

    def _synthesize(self, user: str) -> str:
        n = int(re.search(r"Write (\d+) new problems", user).group(1))  # type: ignore[union-attr]
        tasks = []
        for _ in range(n):
            with self._lock:
                k = next(self._counter)
            a, b = 100 + k, 7 * k
            answer = a + b + (1 if k % 3 == 0 else 0)
            tasks.append({"question": f"What is {a} + {b}?", "solution": f"{a} + {b}", "answer": str(answer)})
        return "```json\n" + json.dumps({"tasks": tasks}) + "\n```"

    def _revise(self, user: str) -> str:
        question = re.search(r"^Question: (.*)$", user.split("The sample:")[-1], re.MULTILINE)
        text = question.group(1) if question else "What is 1 + 1?"
        total = _sum(text)
        return json.dumps(
            {
                "problems": ["the answer was wrong"],
                "question": text,
                "solution": "added",
                "answer": str(total),
            }
        )

    def _judge(self, user: str) -> str:
        data = _data(user)
        a, b = data["Version A"], data["Version B"]

        def right(sample: dict[str, str]) -> bool:
            return str(_sum(sample["question"])) == sample["answer"].strip()

        better = "A" if right(a) and not right(b) else "B" if right(b) and not right(a) else "same"
        return json.dumps({"better": better, "confidence": 0.9, "reason": "checked the sums"})
