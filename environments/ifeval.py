"""IFEval-style instruction following (entry point ``ifeval``): verifiable constraints, one skill each.

Each task asks for a few sentences about a topic under a constraint from IFEval ("refrain from
the use of any commas", "wrap your entire response with double quotation marks", "answer with
less than 40 words", ...). The constraint's wording and its checker come from the
``if-verifiable`` package (Google's IFEval instruction registry); a response is scored by those
checkers (strict mode): the reward is the share of the task's constraints it follows, and it is
solved when it follows all of them.

IFEval's own prompts are a data set on the Hugging Face Hub, which this offline environment does
not download. Instead a generator composes new prompts per constraint type: a request about a
topic (``environments/ifeval_topics.py``) plus the constraint, with parameters drawn by seed.
Its gold responses are built programmatically from the topic's sentences so that they satisfy
the constraint (bullets, titles, postscripts, casing, counts chosen from the finished text), and
every gold response is checked with the constraint's own checker before it is used.

Difficulty 0 is one constraint with small parameters, 1 one constraint with larger ones, 2 the
skill's constraint plus a second, compatible one (IFEval's conflict table; none is compatible
with ``constrained_response``). 22 of IFEval's 25 constraint types are here; the two whose
checkers need NLTK models (a separate download) and the response-language one are not. Dev and
test use a third of the topics, the generator the other two thirds, so no training prompt shares
a topic with an evaluation prompt.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import langdetect
from if_verifiable.common import evaluate_instructions
from if_verifiable.ifeval.instructions_registry import INSTRUCTION_CONFLICTS, INSTRUCTION_DICT
from if_verifiable.ifeval.instructions_util import count_words

from teachloop.environments.base import Score, Skill, Split, Task, content_id, normalize_question
from teachloop.environments.ifeval_topics import TOPICS
from teachloop.foundation.errors import ConfigError
from teachloop.foundation.types import Message

# langdetect (used by the casing checkers) samples at random unless seeded; scoring must be repeatable.
langdetect.DetectorFactory.seed = 0

REQUESTS = [
    "Write a short description of {topic}.",
    "Tell me about {topic}.",
    "Explain {topic} to a curious child.",
    "Write a few sentences about {topic}.",
    "What should everyone know about {topic}?",
    "Give me a brief overview of {topic}.",
]
YES_NO_REQUESTS = [
    "Is {topic} worth learning about?",
    "Would you recommend reading about {topic}?",
    "Is {topic} interesting to study?",
]
YES_NO_ANSWERS = ["My answer is yes.", "My answer is maybe."]
SECTION_SPLITTERS = ["Section", "SECTION", "Part"]
END_PHRASES = ["Any other questions?", "Is there anything else I can help with?", "That is all for now."]
POSTSCRIPTS = ["Thanks for asking.", "I hope this helps.", "Ask me if you want more."]
PLACEHOLDERS = ["[name]", "[city]", "[date]"]
SYSTEM_PROMPT = "Follow every instruction in the request exactly."
CONSTRAINED = "detectable_format:constrained_response"
#: The options of ``constrained_response``, as IFEval words them.
CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
_SPLIT_PARITY = {"test": 0, "dev": 1}
_MAX_TRIES_PER_ITEM = 30


@dataclass
class Draft:
    """A gold response under construction; ``render`` lays it out."""

    topic: str
    sentences: list[str]
    request: str = ""
    repeat: bool = False
    layout: str = "plain"
    splitter: str = ""
    highlights: int = 0
    extra: str = ""
    title: str = ""
    postscript: str = ""
    end_phrase: str = ""
    case: str = ""
    wrap: str = ""

    def render(self) -> str:
        parts = [f"*{s}*" if i < self.highlights else s for i, s in enumerate(self.sentences)]
        if self.extra:
            parts[-1] = f"{parts[-1]} {self.extra}"
        half = (len(parts) + 1) // 2
        if self.layout == "bullets":
            body = "\n".join(f"* {p}" for p in parts)
        elif self.layout == "paragraphs":
            body = "\n\n***\n\n".join(parts)
        elif self.layout == "blocks":
            body = "\n\n".join(parts)
        elif self.layout == "sections":
            body = "\n\n".join(f"{self.splitter} {i}\n{p}" for i, p in enumerate(parts, start=1))
        elif self.layout == "two":
            body = f"{' '.join(parts[:half])}\n******\n{' '.join(parts[half:])}"
        else:
            body = " ".join(parts)
        if self.title:
            body = f"<<{self.title}>>\n\n{body}"
        if self.postscript:
            body = f"{body}\n\n{self.postscript}"
        if self.end_phrase:
            body = f"{body}\n\n{self.end_phrase}"
        if self.repeat:
            body = f"{self.request}\n\n{body}"
        if self.case == "lower":
            body = body.lower()
        elif self.case == "upper":
            body = body.upper()
        if self.wrap == "quotes":
            body = f'"{body}"'
        elif self.wrap == "json":
            body = json.dumps({"answer": body})
        return body


#: A constraint shapes the draft and returns how to compute its checker's kwargs from the final
#: text (``None`` when the text offers nothing to ask for, e.g. no paragraph starts with a word).
Kwargs = Callable[[str], dict[str, Any] | None]
Shaper = Callable[[Draft, random.Random, int], Kwargs]


def _none(text: str) -> dict[str, Any]:
    return {}


def _fixed(kwargs: dict[str, Any]) -> Kwargs:
    return lambda text: kwargs


def _words(sentences: list[str]) -> list[str]:
    return sorted(
        {
            w.strip(".?!").lower()
            for s in sentences
            for w in s.split()
            if len(w.strip(".?!")) >= 5 and w.strip(".?!").isalpha()
        }
    )


def _no_comma(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.sentences = [s.replace(",", "") for s in d.sentences]
    return _none


def _lowercase(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.case = "lower"
    return _none


def _capital(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.case = "upper"
    return _none


def _quotation(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.wrap = "quotes"
    return _none


def _json(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.wrap = "json"
    return _none


def _title(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.title = d.topic.title()
    return _none


def _end_phrase(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.end_phrase = rng.choice(END_PHRASES)
    return _fixed({"end_phrase": d.end_phrase})


def _postscript(d: Draft, rng: random.Random, level: int) -> Kwargs:
    marker = rng.choice(["P.S.", "P.P.S"])
    d.postscript = f"{marker} {rng.choice(POSTSCRIPTS)}"
    return _fixed({"postscript_marker": marker})


def _placeholders(d: Draft, rng: random.Random, level: int) -> Kwargs:
    n = 1 if level == 0 else rng.randint(2, 3)
    d.extra = (
        "Written by "
        + " in ".join(PLACEHOLDERS[: min(n, 2)])
        + (f" on {PLACEHOLDERS[2]}." if n == 3 else ".")
    )
    return _fixed({"num_placeholders": n})


def _bullets(d: Draft, rng: random.Random, level: int) -> Kwargs:
    n = rng.randint(2, 3) if level == 0 else 4
    d.sentences = TOPICS[d.topic][:n]
    d.layout = "bullets"
    return _fixed({"num_bullets": n})


def _paragraphs(d: Draft, rng: random.Random, level: int) -> Kwargs:
    n = 2 if level == 0 else rng.randint(3, 4)
    d.sentences = TOPICS[d.topic][:n]
    d.layout = "paragraphs"
    return _fixed({"num_paragraphs": n})


def _highlights(d: Draft, rng: random.Random, level: int) -> Kwargs:
    n = min(len(d.sentences), 1 if level == 0 else rng.randint(2, 3))
    d.highlights = n
    return _fixed({"num_highlights": n})


def _keywords(d: Draft, rng: random.Random, level: int) -> Kwargs:
    words = rng.sample(_words(d.sentences), 1 if level == 0 else 2)
    return _fixed({"keywords": words})


def _forbidden(d: Draft, rng: random.Random, level: int) -> Kwargs:
    own = set(_words(TOPICS[d.topic]))
    others = sorted({w for t, s in TOPICS.items() if t != d.topic for w in _words(s)} - own)
    return _fixed({"forbidden_words": rng.sample(others, 1 if level == 0 else 2)})


def _number_words(d: Draft, rng: random.Random, level: int) -> Kwargs:
    slack = 10 if level == 0 else 2

    def kwargs(text: str) -> dict[str, Any]:
        count = count_words(text)
        if rng.random() < 0.5:
            return {"num_words": count + rng.randint(1, slack), "relation": "less than"}
        return {"num_words": max(1, count - rng.randint(0, slack)), "relation": "at least"}

    return kwargs


def _letter_frequency(d: Draft, rng: random.Random, level: int) -> Kwargs:
    def kwargs(text: str) -> dict[str, Any]:
        letters = sorted({c for c in text.lower() if "a" <= c <= "z"})
        letter = rng.choice(letters)
        count = text.lower().count(letter)
        if rng.random() < 0.5:
            return {"letter": letter, "let_frequency": count + rng.randint(1, 3), "let_relation": "less than"}
        return {
            "letter": letter,
            "let_frequency": max(1, count - rng.randint(0, 2)),
            "let_relation": "at least",
        }

    return kwargs


def _keyword_frequency(d: Draft, rng: random.Random, level: int) -> Kwargs:
    def kwargs(text: str) -> dict[str, Any] | None:
        words = [w for w in _words(d.sentences) if w in text.lower()]
        if not words:
            return None
        word = rng.choice(words)
        count = len(re.findall(word, text, flags=re.IGNORECASE))  # as the checker counts
        if rng.random() < 0.5:
            return {"keyword": word, "frequency": count + rng.randint(1, 2), "relation": "less than"}
        return {"keyword": word, "frequency": max(1, count - rng.randint(0, 1)), "relation": "at least"}

    return kwargs


def _repeat_prompt(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.repeat = True
    return lambda text: {"prompt_to_repeat": d.request}


def _two_responses(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.sentences = TOPICS[d.topic][: 2 if level == 0 else 4]
    d.layout = "two"
    return _none


def _constrained(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.request = rng.choice(YES_NO_REQUESTS).format(topic=d.topic)
    d.sentences = [rng.choice(YES_NO_ANSWERS), *d.sentences[: 1 if level == 0 else 2]]
    return _none


def _sections(d: Draft, rng: random.Random, level: int) -> Kwargs:
    n = 2 if level == 0 else rng.randint(3, 4)
    d.sentences = TOPICS[d.topic][:n]
    d.layout = "sections"
    d.splitter = rng.choice(SECTION_SPLITTERS)
    return _fixed({"section_spliter": d.splitter, "num_sections": n})


def _first_word(paragraph: str) -> str:
    """The first word of a paragraph as the checker reads it."""
    word = paragraph.split()[0].lstrip("'\"")
    return re.split(r"[.,?!'\"]", word, maxsplit=1)[0].lower()


def _nth_paragraph(d: Draft, rng: random.Random, level: int) -> Kwargs:
    d.sentences = TOPICS[d.topic][: rng.randint(2, 3) if level == 0 else 4]
    d.layout = "blocks"

    def kwargs(text: str) -> dict[str, Any] | None:
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        words = [(i, _first_word(p)) for i, p in enumerate(paragraphs, start=1)]
        usable = [(i, w) for i, w in words if w.isalpha() and (level > 0 or i == 1)]
        if not usable:
            return None
        nth, word = rng.choice(usable)
        return {"num_paragraphs": len(paragraphs), "nth_paragraph": nth, "first_word": word}

    return kwargs


#: IFEval instruction id -> (short description, how a gold response is shaped to follow it).
CONSTRAINTS: dict[str, tuple[str, Shaper]] = {
    "punctuation:no_comma": ("write without any commas", _no_comma),
    "change_case:english_lowercase": ("answer in lowercase letters only", _lowercase),
    "change_case:english_capital": ("answer in capital letters only", _capital),
    "startend:quotation": ("wrap the whole answer in double quotes", _quotation),
    "startend:end_checker": ("finish with an exact phrase", _end_phrase),
    "detectable_format:title": ("give the answer a <<title>>", _title),
    "detectable_format:json_format": ("answer in JSON", _json),
    "detectable_format:number_bullet_lists": ("use exactly N markdown bullet points", _bullets),
    "detectable_format:number_highlighted_sections": ("highlight at least N *sections*", _highlights),
    "length_constraints:number_paragraphs": ("write exactly N paragraphs separated by ***", _paragraphs),
    "length_constraints:number_words": ("stay under or above a word count", _number_words),
    "detectable_content:postscript": ("end with a postscript (P.S.)", _postscript),
    "detectable_content:number_placeholders": ("include N [placeholders]", _placeholders),
    "keywords:existence": ("include given keywords", _keywords),
    "keywords:forbidden_words": ("avoid given words", _forbidden),
    "keywords:letter_frequency": ("use a letter fewer or more than N times", _letter_frequency),
    "keywords:frequency": ("use a word fewer or more than N times", _keyword_frequency),
    "combination:repeat_prompt": ("repeat the request word for word, then answer", _repeat_prompt),
    "combination:two_responses": ("give two different responses separated by ******", _two_responses),
    "detectable_format:constrained_response": ("answer with one of given options", _constrained),
    "detectable_format:multiple_sections": ("mark N sections with Section X", _sections),
    "length_constraints:nth_paragraph_first_word": (
        "write N paragraphs, paragraph K starting with a given word",
        _nth_paragraph,
    ),
}


def _conflict(a: str, b: str) -> bool:
    return b in INSTRUCTION_CONFLICTS.get(a, set()) or a in INSTRUCTION_CONFLICTS.get(b, set())


def describe(instruction_id: str, kwargs: dict[str, Any]) -> str:
    """The constraint as IFEval words it."""
    return str(INSTRUCTION_DICT[instruction_id](instruction_id).build_description(**kwargs))


def _letters(text: str) -> str:
    """Text as letters and digits only, lowercase: what survives quoting, casing and JSON escaping."""
    return "".join(c for c in text.casefold() if c.isalnum())


def echoed(task: Task, response: str) -> list[str]:
    """The task's constraints whose own wording the response repeats (the prompt echoed back)."""
    said = _letters(response)
    return [
        i
        for i, kwargs in zip(task.metadata["instruction_id_list"], task.metadata["kwargs"], strict=True)
        if len(wording := _letters(describe(i, kwargs))) >= 20 and wording in said
    ]


def _options_given(response: str) -> int:
    """How many of ``constrained_response``'s options a response gives (IFEval accepts any that
    contains one, so listing them all would pass)."""
    return sum(option in response for option in CONSTRAINED_OPTIONS)


def check(task: Task, response: str) -> list[tuple[str, bool]]:
    """Each of the task's constraints with whether ``response`` follows it (strict).

    Stricter than IFEval in two ways that keep hedging from paying: a response that repeats the
    wording of any of the task's constraints follows none of them (echoing the prompt puts its
    keywords, phrases and options in the response for free), and ``constrained_response`` needs
    exactly one of its options."""
    results, _ = evaluate_instructions(
        response=response,
        instruction_id_list=task.metadata["instruction_id_list"],
        kwargs_list=task.metadata["kwargs"],
        prompt=task.question,
        instruction_registry=INSTRUCTION_DICT,
    )
    followed = {r.instruction_id: r.strict_pass for r in results}
    if echoed(task, response):
        return [(i, False) for i in task.metadata["instruction_id_list"]]
    if _options_given(response) > 1:
        followed[CONSTRAINED] = False
    return [(i, followed.get(i, False)) for i in task.metadata["instruction_id_list"]]


def _seed(*parts: object) -> int:
    return int(content_id(*parts), 16) % (2**31)


class IFEvalEnvironment:
    """Verifiable-constraint instruction following; every skill is one IFEval constraint type."""

    def __init__(self, skills: list[str], eval_level: int = 0) -> None:
        unknown = [s for s in skills if s not in CONSTRAINTS]
        if unknown:
            raise ConfigError(f"unknown constraint(s) {', '.join(unknown)}; known: {', '.join(CONSTRAINTS)}")
        if not 0 <= eval_level <= 2:
            raise ConfigError(f"eval_level must be 0, 1 or 2, not {eval_level}")
        self.name = "ifeval"
        self.skills = [
            Skill(name=s, description=CONSTRAINTS[s][0], max_difficulty=2, eval_difficulty=eval_level)
            for s in skills
        ]
        topics = sorted(TOPICS, key=lambda t: content_id("ifeval-topics", t))
        self.eval_topics = topics[: len(topics) // 3]
        self.train_topics = topics[len(topics) // 3 :]

    def _compose(self, skill: str, level: int, topics: list[str], rng: random.Random) -> Task | None:
        topic = rng.choice(topics)
        chosen = [skill]
        partners = [c for c in CONSTRAINTS if c != skill and not _conflict(c, skill)]
        if level >= 2 and partners:
            chosen.append(rng.choice(partners))
        sentences = TOPICS[topic]
        draft = Draft(
            topic=topic,
            sentences=sentences[: rng.randint(2, 3)],
            request=rng.choice(REQUESTS).format(topic=topic),
        )
        kwarg_fns = [CONSTRAINTS[c][1](draft, rng, level) for c in chosen]
        response = draft.render()
        found = [fn(response) for fn in kwarg_fns]
        kwargs = [k for k in found if k is not None]
        if len(kwargs) < len(found):
            return None
        question = " ".join([draft.request, *(describe(c, k) for c, k in zip(chosen, kwargs, strict=True))])
        task = Task(
            skill=skill,
            question=question,
            answer=response,
            difficulty=level,
            source="ifeval-generator",
            metadata={"instruction_id_list": chosen, "kwargs": kwargs, "topic": topic},
        )
        # the gate: a gold response that its own checkers reject is never handed out
        return task if all(ok for _, ok in check(task, response)) else None

    def _require_skill(self, skill: str) -> None:
        if skill not in CONSTRAINTS or skill not in {s.name for s in self.skills}:
            raise ConfigError(f"environment 'ifeval' has no skill {skill!r}")

    def _draw(self, skill: str, level: int, n: int, seed: int, topics: list[str]) -> list[Task]:
        """The first ``n`` distinct tasks of a seeded stream (item ``i`` depends only on seed and ``i``)."""
        seen: set[str] = set()
        out: list[Task] = []
        for index in range(n * _MAX_TRIES_PER_ITEM):
            if len(out) == n:
                break
            task = self._compose(skill, level, topics, random.Random(_seed(seed, skill, level, index)))
            if task is not None and normalize_question(task.question) not in seen:
                seen.add(normalize_question(task.question))
                out.append(task)
        return out

    def tasks(self, split: Split, n: int, seed: int) -> list[Task]:
        if split not in _SPLIT_PARITY:
            raise ConfigError(f"split must be dev or test, not {split!r}")
        out: list[Task] = []
        for skill in self.skills:
            stream = self._draw(
                skill.name, skill.eval_difficulty, 2 * n, _seed("eval", seed), self.eval_topics
            )
            out.extend(stream[_SPLIT_PARITY[split] :: 2])
        return out

    def prompt(self, task: Task) -> list[Message]:
        return [Message(role="system", content=SYSTEM_PROMPT), Message(role="user", content=task.question)]

    def score(self, task: Task, completion: str) -> Score:
        results = check(task, completion)
        followed = sum(ok for _, ok in results)
        missed = [i for i, ok in results if not ok]
        feedback = "followed every instruction" if not missed else f"did not follow: {', '.join(missed)}"
        if echoed(task, completion):
            feedback = "repeats the instructions instead of following them: " + ", ".join(missed)
        return Score(reward=followed / len(results), feedback=feedback)

    def generate(self, skill: str, n: int, difficulty: int, seed: int) -> list[Task]:
        self._require_skill(skill)
        level = min(max(difficulty, 0), 2)
        return self._draw(skill, level, n, _seed("train", seed), self.train_topics)


def load_environment(skills: str | list[str] = "", eval_level: int = 0) -> IFEvalEnvironment:
    """IFEval-style verifiable constraints, one skill per constraint type (``skills=a,b`` picks some)."""
    names = [s.strip() for s in skills.split(",")] if isinstance(skills, str) else list(skills)
    names = [n for n in names if n] or list(CONSTRAINTS)
    return IFEvalEnvironment(names, int(eval_level))
