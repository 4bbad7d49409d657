"""Every grader on right, wrong and malformed answers; the registry; the judge via the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.evals.runner_fixtures import model_entry
from tests.support.upstream import Rule, Upstream
from tradeoff.evals.errors import ConfigError, UsageError
from tradeoff.evals.graders import GRADERS, GradingError, Item, Score, get_grader, reference_free
from tradeoff.evals.graders.tool_calls import CallText, render_calls
from tradeoff.evals.registry import parse_entry


def item(reference: str | None = None, **metadata: Any) -> Item:
    return Item("d", "1", "t", prompt="q", reference=reference, metadata=metadata)


def score(grader: str, response: str, ref: str | None = None, **meta: Any) -> float:
    return get_grader(grader).grade(response, item(ref, **meta)).value


def test_exact_and_normalized_exact() -> None:
    assert score("exact", " Paris\n", "Paris") == 1.0
    assert score("exact", "paris", "Paris") == 0.0
    assert score("normalized_exact", "The  Paris!", "paris") == 1.0
    assert score("normalized_exact", "Lyon", "Paris") == 0.0


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The answer is (B).", 1.0),
        ("Answer: B", 1.0),
        ("B", 1.0),
        ("B) because ...", 1.0),
        ("I think (C) is right", 0.0),
        ("Both options seem fine", 0.0),
    ],
)
def test_choice_letter(response: str, expected: float) -> None:
    assert score("choice", response, "B") == expected


def test_numeric_last_number_with_tolerance() -> None:
    assert score("numeric", "so the total is 1,234.0 apples", "1234") == 1.0
    assert score("numeric", "it is 3.14", "3.14159", tolerance=0.001) == 1.0
    assert score("numeric", "it is 3.14", "3.14159") == 0.0
    no_number = get_grader("numeric").grade("no idea", item("7"))
    assert no_number == Score(0.0, "no number in response")


def test_regex_and_contains() -> None:
    assert score("regex", "order #A-1234 shipped", r"#[A-Z]-\d{4}") == 1.0
    assert score("regex", "order shipped", r"#[A-Z]-\d{4}") == 0.0
    assert score("contains", "It is PARIS, France", "paris") == 1.0
    assert score("contains", "It is PARIS", "paris", case_sensitive=True) == 0.0
    with pytest.raises(UsageError, match="bad pattern"):
        get_grader("regex", pattern="(")


def test_json_valid_and_schema() -> None:
    assert score("json_valid", '```json\n{"a": 1}\n```') == 1.0
    bad = get_grader("json_valid").grade("{'a': 1}", item())
    assert bad.value == 0.0 and "not JSON" in bad.reason
    schema = {"type": "object", "required": ["name"], "properties": {"age": {"type": "integer"}}}
    assert score("json_schema", '{"name": "x", "age": 3}', schema=schema) == 1.0
    wrong = get_grader("json_schema").grade('{"name": "x", "age": "3"}', item(schema=schema))
    assert wrong.value == 0.0 and "schema" in wrong.reason
    with pytest.raises(UsageError, match="invalid schema"):
        get_grader("json_schema", schema={"type": 12})


def test_code_against_mbpp_and_humaneval_style_tests() -> None:
    answer = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```"
    assert score("code", answer, tests=["assert add(1, 2) == 3", "assert add(0, 0) == 0"]) == 1
    wrong = get_grader("code").grade(
        "def add(a, b):\n    return a - b", item(tests=["assert add(1, 2) == 3"])
    )
    assert wrong.value == 0.0 and "AssertionError" in wrong.reason
    humaneval = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    assert score("code", answer, humaneval, entry_point="add") == 1.0


def my_grader(response: str, item: Item) -> float:
    """A user's own grader (used through `module:function`)."""
    return 1.0 if response.startswith(item.reference or "") else 0.25


def test_user_callable_by_module_and_function() -> None:
    spec = "tests.evals.test_graders:my_grader"
    assert get_grader(spec).grade("yes sir", item("yes")).value == 1.0
    assert get_grader(spec).grade("no", item("yes")).value == 0.25
    with pytest.raises(UsageError, match="cannot import"):
        get_grader("no_such_module_xyz:grade")
    with pytest.raises(UsageError, match="has no"):
        get_grader("tests.evals.test_graders:missing")


def test_unknown_grader_names_the_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        get_grader("fuzzy")
    assert "'fuzzy'" in str(info.value) and "numeric" in str(info.value)


def test_registry_and_reference_free_verifiers() -> None:
    assert set(GRADERS) >= {
        "exact", "normalized_exact", "choice", "numeric", "regex", "contains",
        "json_valid", "json_schema", "code", "judge", "callable",
    }  # fmt: skip
    assert reference_free() == [
        "answer_parses", "code", "json_schema", "json_valid", "judge", "prompt_tests",
        "self_consistency", "tool_calls",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("response", "passes"),
    [
        ("so the total is \\boxed{42}", True),
        ("The answer is B", True),
        ("Final answer: Paris", True),
        ("C", True),
        ("I am not sure, it could be several things", False),
        ("", False),
    ],
)
def test_answer_parses_needs_no_reference(response: str, passes: bool) -> None:
    item = Item(dataset="d", item_id="1", task="t", prompt="q", reference=None)
    assert get_grader("answer_parses").grade(response, item).value == float(passes)


@pytest.fixture(scope="module")
def judge_upstream() -> Iterator[Upstream]:
    rules = [
        Rule(model="judge", contains="Paris is the capital", reply="Correct. SCORE: 9"),
        Rule(model="judge", contains="Response to grade", reply="Wrong answer. SCORE: 2"),
        Rule(model="mute-judge", reply="I refuse to grade"),
    ]
    with Upstream(rules) as up:
        yield up


async def test_judge_scores_through_the_configured_model(
    judge_upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEOFF_TEST_KEY", "k")
    judge = get_grader("judge", model=parse_entry(model_entry("judge", judge_upstream.url), "t"))
    q = Item("d", "1", "geo", prompt="Capital of France?", reference="Paris", metadata={})
    assert (await judge.agrade("Paris is the capital of France.", q)).value == pytest.approx(0.9)
    assert (await judge.agrade("Lyon", q)).value == pytest.approx(0.2)
    sent = judge_upstream.requests[-1]["messages"][0]["content"]
    assert "Capital of France?" in sent and "Paris" in sent and "Rubric" in sent
    assert getattr(judge, "spend_usd", 0) > 0
    mute = get_grader(
        "judge", model=parse_entry(model_entry("mute-judge", judge_upstream.url), "t")
    )
    with pytest.raises(GradingError, match="SCORE"):
        await mute.agrade("Paris", q)


def test_judge_without_a_model_fails_before_any_call() -> None:
    with pytest.raises(UsageError, match="--judge"):
        get_grader("judge")


def test_judge_without_its_env_key_fails_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEOFF_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="TRADEOFF_TEST_KEY"):
        get_grader("judge", model=parse_entry(model_entry("judge", "http://127.0.0.1:9"), "t"))


def test_tool_calls_grader_checks_recorded_calls_against_the_items_tools() -> None:
    lookup = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "required": ["city"],
                           "properties": {"city": {"type": "string"}}},
        },
    }  # fmt: skip
    item = Item(dataset="d", item_id="1", task="t", prompt="?", metadata={"tools": [lookup]})
    grader = get_grader("tool_calls")

    def answer(name: str, arguments: str) -> str:
        return render_calls("", [CallText(name, arguments)])

    assert grader.grade(answer("lookup", '{"city": "Paris"}'), item) == Score(1.0)
    assert "do not fit its schema" in grader.grade(answer("lookup", '{"town": 3}'), item).reason
    assert "not JSON" in grader.grade(answer("lookup", '{"city": '), item).reason
    assert "not one of the tools offered" in grader.grade(answer("find", "{}"), item).reason
    assert grader.grade("It is sunny.", item) == Score(0.0, "no tool was called")
    # As a refine variant's check, a text answer goes to the text check (here: none, passes).
    lenient = get_grader("tool_calls", calls_only=False)
    assert lenient.grade("It is sunny.", item).passed
    strict_text = get_grader("tool_calls", text_check=get_grader("json_valid"))
    assert not strict_text.grade("It is sunny.", item).passed
