import pytest

from teachloop.environments.answer import extract_answer


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("42", "42"),
        ("  42.\n", "42"),
        ("The answer is 42.", "42"),
        ("Final answer: -7", "-7"),
        ("so the result = 12", "12"),
        ("We get \\boxed{3/4} here", "3/4"),
        ("cat, dog, sun\nbecause reversed", "cat, dog, sun"),
        ("'abc'", "abc"),
        ("0.5", "0.5"),
        ("", ""),
    ],
)
def test_extract_answer(completion: str, expected: str) -> None:
    assert extract_answer(completion) == expected
