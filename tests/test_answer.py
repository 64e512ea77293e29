"""The answer rule: one answer, stated once (see environments/answer.py)."""

import pytest

from teachloop.environments.answer import boxed, extract_answer


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        # well-formed answers and the usual ways of stating one
        ("42", "42"),
        ("  42.\n", "42"),
        ("The answer is 42.", "42"),
        ("The answer is: 42", "42"),
        ("Final answer: -7", "-7"),
        ("Answer:\n42", "42"),
        ("so the result = 12", "12"),
        ("We get \\boxed{3/4} here", "3/4"),
        ("\\boxed{\\frac{3}{4}}", "\\frac{3}{4}"),
        ("\\boxed{4}, that is, \\boxed{ 4 }", "4"),
        ("'abc'", "abc"),
        ("0.5", "0.5"),
        ("cat, dog, sun", "cat, dog, sun"),
        ("", ""),
        # a final answer wins over earlier statements
        ("The answer is 3, or so I thought. Final answer: 4", "4"),
        ("answer: 4\nanswer: 4", "4"),
        # several different answers are no answer
        ("\\boxed{3} or \\boxed{4}", ""),
        ("Answer: 3\nAnswer: 4\nAnswer: 5", ""),
        ("Final answer: 3\nFinal answer: 4", ""),
        # without a statement the whole completion is the answer: nothing after it is dropped
        ("cat, dog, sun\nbecause reversed", "cat, dog, sun\nbecause reversed"),
        ("3\n4\n5", "3\n4\n5"),
    ],
)
def test_extract_answer(completion: str, expected: str) -> None:
    assert extract_answer(completion) == expected


def test_boxes_nest_and_an_unclosed_box_is_not_an_answer() -> None:
    assert boxed("\\boxed{a{b}c} and \\boxed{d}") == ["a{b}c", "d"]
    assert boxed("\\boxed{open") == []
