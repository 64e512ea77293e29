"""Batched generation that encodes the prompts' shared prefix once: the answers must be exactly the
ones each prompt gets when encoded whole (greedy and sampled, in float32), and the prefix must in
fact be encoded once, also for a saved student whose config turns the cache off (as trained
students' configs do)."""

from __future__ import annotations

from pathlib import Path

from teachloop.foundation.types import Message
from teachloop.training.generation import chat_text, generate, shared_prefix
from teachloop.training.student import load_student

SYSTEM = Message(role="system", content="Answer with the final answer only.")
QUESTIONS = ["2 + 3 =", "Reverse the words: cat dog bird fish owl", "9 + 0 =", "How many letters in seven?"]


def _prompts() -> list[list[Message]]:
    return [[SYSTEM, Message(role="user", content=q)] for q in QUESTIONS * 3]


def test_shared_prefix_leaves_each_row_a_token_of_its_own() -> None:
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert shared_prefix([[1, 2, 3], [1, 2, 3]]) == 2
    assert shared_prefix([[7, 1], [8, 1]]) == 0
    assert shared_prefix([]) == 0


def test_prefix_cache_gives_the_answers_of_whole_prompts_and_encodes_the_prefix_once(
    tiny_student: Path,
) -> None:
    model, tokenizer = load_student(tiny_student)
    model.config.use_cache = False  # a trained student's saved config
    embedded: list[int] = []
    model.get_input_embeddings().register_forward_hook(lambda _m, args, _o: embedded.append(args[0].numel()))
    runs = {}
    for cached in (False, True):
        embedded.clear()
        greedy = generate(model, tokenizer, _prompts(), max_new_tokens=6, batch_size=5, prefix_cache=cached)
        prompt_tokens = sum(embedded)  # every forward pass's input tokens
        sampled = generate(
            model,
            tokenizer,
            _prompts(),
            6,
            batch_size=5,
            temperature=1.0,
            num_samples=3,
            seed=4,
            prefix_cache=cached,
        )
        runs[cached] = (greedy, sampled, prompt_tokens)
    assert runs[True][0] == runs[False][0]
    assert runs[True][1] == runs[False][1]
    assert len({tuple(s) for s in runs[True][1]}) > 1  # sampling did sample
    prefix = shared_prefix(
        [tokenizer(chat_text(tokenizer, p), add_special_tokens=False).input_ids for p in _prompts()]
    )
    assert prefix >= 8  # the chat markup and the system prompt
    # 12 prompts: with the cache the prefix is encoded once instead of once per row.
    assert runs[False][2] - runs[True][2] >= (12 - 1) * prefix
