"""The reference-free verifiers added for replay: self-consistency and the prompt's own tests."""

from __future__ import annotations

import pytest

from tradeoff.evals.graders import Item, get_grader
from tradeoff.evals.graders.prompt_tests import prompt_checks
from tradeoff.evals.graders.self_consistency import final_answer

ITEM = Item(dataset="d", item_id="1", task="t", prompt="q")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so \\boxed{ 42 } it is", "42"),
        ("The answer is (B).", "b"),
        ("Final answer: 1,234", "1234"),
        ("B", "b"),
        ("we get 3 then 7", "7"),
        ("no idea", None),
    ],
)
def test_final_answer(text: str, answer: str | None) -> None:
    assert final_answer(text) == answer


def test_self_consistency_accepts_the_majority_of_a_group() -> None:
    grader = get_grader("self_consistency")
    scores = grader.grade_group(["The answer is 4", "answer: 4.", "\\boxed{5}"], ITEM)
    assert [s.passed for s in scores] == [True, True, False]
    tied = grader.grade_group(["The answer is 4", "\\boxed{5}"], ITEM)
    assert not any(s.passed for s in tied) and "no majority" in tied[0].reason
    assert grader.grade("The answer is 4", ITEM).passed  # one answer agrees with itself
    assert not grader.grade("hmm", ITEM).passed


HUMANEVAL = '''def add(a, b):
    """ Add two numbers.
    >>> add(1, 2)
    3
    >>> add(-1,
    ...     1)
    0
    """
'''
MBPP = "Write a function to add.\nYour code should pass these tests:\n\nassert add(1, 2) == 3\n"
LIVECODE = "Return a + b.\nExample 1:\n\nInput: a = 1, b = 2\nOutput: 3\n\nExample 2:\n\nInput: a = 0, b = 0\nOutput: 0\n"


@pytest.mark.parametrize("prompt", [HUMANEVAL, MBPP, LIVECODE])
def test_prompt_tests_run_the_prompts_own_examples(prompt: str) -> None:
    grader = get_grader("prompt_tests")
    item = Item(dataset="d", item_id="1", task="code", prompt=prompt)
    right = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```"
    wrong = "```python\ndef add(a, b):\n    return a - b\n```"
    assert grader.grade(right, item).passed
    assert not grader.grade(wrong, item).passed


def test_prompt_tests_on_a_solution_class_and_without_tests() -> None:
    grader = get_grader("prompt_tests")
    item = Item(dataset="d", item_id="1", task="code", prompt=LIVECODE)
    solution = "class Solution:\n    def plus(self, a, b):\n        return a + b\n"
    assert grader.grade(solution, item).passed
    assert prompt_checks("What is the capital of France?") is None
    free = Item(dataset="d", item_id="2", task="qa", prompt="What is the capital of France?")
    score = grader.grade("Paris", free)
    assert score.passed and score.reason == "no tests in the prompt"
